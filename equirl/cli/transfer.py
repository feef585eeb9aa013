"""``equirl transfer``: transfer a pretrained (plain) DQN to its environment's tasks with every method.

For each task (the original one and its transformed variants), each method and each seed, the
pretrained Q-network is made equivariant, evaluated before any step of the task (K = 0, true zero-shot),
then finetuned and evaluated every --eval-freq task steps, so that every method is compared after the same
K steps (λ-equitune's frozen-backbone fit counts inside K; see :mod:`equirl.agents.transfer_suite`). Writes
``OUT/runs.csv`` and ``suite.json`` (the raw results, with command, code version and machine),
``runs.jsonl``, ``table.md`` and ``transfer.png``, each to a temporary name renamed into place.
``--views`` trains nothing: it measures how far the pretrained Q-network is from equivariant on its task. The pretrained
agent (a shipped name, a saved agent folder or an SB3 zip) is read without unpickling anything unless
``--trusted`` is given.

Examples::

    equirl transfer equirl/RotGrid-Corner-v0 --seeds 5
    equirl transfer CartPole-v1 --pretrained cartpole_plain --seeds 5 --steps 5000 --jobs 2
    equirl transfer CartPole-v1 --pretrained my_dqn.zip --methods plain,equizero --steps 0
    equirl transfer CartPole-v1/half-track --seeds 3 --steps 3000 --eval-freq 1000
    equirl transfer equirl/RotGrid-Corner-v0 --views --eval-episodes 20 --out docs/benchmark/transfer_views
    equirl transfer equirl/RotGrid-Cross-v0 --pretrained rotgrid_bottom_plain --symmetry equirl/RotGrid-Cross-v0/C4

For an environment without listed tasks the tasks are the original world and the world seen through each
non-identity element g of the symmetry (observations g·o, actions mapped accordingly; --tasks picks some).
Each run also writes tensorboard logs (OUT/tb) and its eval.csv / evaluations.npz (OUT/evals).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Attach ``transfer`` to the ``equirl`` subparsers."""
    p = sub.add_parser(
        "transfer",
        help="zero-shot and finetuned transfer of a pretrained DQN",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "env",
        help="catalogue environment: its tasks in equirl.agents.transfer_suite.TASKS, else the worlds seen through "
        "each element of its symmetry (a registered environment and symmetry of your own work too)",
    )
    p.add_argument("--pretrained", default=None, help="shipped agent name or SB3 DQN zip (default: the env's agent)")
    p.add_argument("--symmetry", default=None, help="catalogue symmetry (default: ENV)")
    p.add_argument("--methods", default="plain,equitune,equizero,lambda", help="comma-separated")
    p.add_argument("--tasks", default=None, help="comma-separated task indices (default: all)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=None, help="finetuning budget (default: the YAML's finetune.steps)")
    p.add_argument("--lambda-fit-steps", type=int, default=None, help="λ's frozen-backbone stage (default: YAML)")
    p.add_argument("--eval-freq", type=int, default=None)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--out", default=None, help="output folder (default results/transfer/<env>)")
    p.add_argument("--plot", default=None, help="also write the plot here (e.g. docs/img/transfer_rotgrid.png)")
    p.add_argument(
        "--summarise-only",
        action="store_true",
        help="only rebuild table and plot from OUT/runs.jsonl, with the settings recorded in OUT/suite.json",
    )
    p.add_argument(
        "--views",
        action="store_true",
        help="no training: measure how far the pretrained Q-network is from equivariant on the states of its greedy "
        "episodes on each task of --tasks (default: the pretraining task), --eval-episodes episodes; writes "
        "OUT/views.csv and views.json",
    )
    p.add_argument(
        "--trusted",
        action="store_true",
        help="load an SB3 zip with SB3's own loader, which unpickles it and so runs any code it holds "
        "(default: read it without unpickling; only for files you made yourself)",
    )
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the transfer suite as ``args`` says and print its table; returns the exit status."""
    from equirl.agents.transfer_suite import run_suite

    command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    if args.views:
        return _views(args, command)
    table = run_suite(
        args.env,
        pretrained=args.pretrained,
        symmetry=args.symmetry,
        methods=[m.strip() for m in args.methods.split(",") if m.strip()],
        task_indices=[int(i) for i in args.tasks.split(",")] if args.tasks else None,
        seeds=args.seeds,
        steps=args.steps,
        lambda_fit_steps=args.lambda_fit_steps,
        eval_freq=args.eval_freq,
        eval_episodes=args.eval_episodes,
        jobs=args.jobs,
        threads=args.threads,
        out=args.out,
        plot_path=args.plot,
        summarise_only=args.summarise_only,
        command=command,
        trusted=args.trusted,
    )
    print(table)
    return 0


def _views(args: argparse.Namespace, command: str) -> int:
    """``--views``: :func:`equirl.agents.transfer_suite.view_agreement` on each task; writes OUT/views.csv."""
    from equirl.agents.transfer_suite import code_version, machine, view_agreement, views_table, write_views

    rows = []
    for i in [int(i) for i in args.tasks.split(",")] if args.tasks else [0]:
        rows += view_agreement(
            args.env, i, pretrained=args.pretrained, symmetry=args.symmetry, episodes=args.eval_episodes,
            trusted=args.trusted,
        )  # fmt: skip
    out = Path(args.out or Path("results/transfer") / args.env.replace("/", "_"))
    meta = {"command": command, "code_version": code_version(), "machine": machine(), "episodes": args.eval_episodes}
    write_views(rows, out / "views.csv", meta)
    print(views_table(rows))
    return 0
