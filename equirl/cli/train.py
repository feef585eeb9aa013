"""``equirl train``: train a plain or equivariant agent (DQN, QR-DQN, PPO, A2C) on a catalogue environment.

Examples::

    equirl train CartPole-v1 --method plain --seed 0 --steps 50000
    equirl train equirl/RotGrid-Corner-v0 --method lambda --seed 1
    equirl train Pendulum-v1 --algo ppo --method equitune --steps 20000   # rl-zoo3's PPO settings, no gSDE
    equirl train CartPole-v1 --algo qrdqn --method lambda                  # needs the qrdqn extra
    equirl train CartPole-v1 --method plain --out runs/cp --resume     # continue after a crash
    equirl train CartPole-v1 --method plain --out runs/cp --overwrite  # replace the run in runs/cp
    equirl train CartPole-v1 --method plain --save-pretrained cartpole_plain  # -> equirl/agents/pretrained/

The environment and its symmetry come from the catalogue (``equirl.envs.make_env(ENV)``,
``equirl.envs.get_symmetry(ENV)``), the hyperparameters from the package's ``<algo>.yml`` (``dqn.yml``,
``qrdqn.yml``, ``ppo.yml``, ``a2c.yml``: the entry named ENV, or ENV without its last ``/suffix``; an entry's
``n_envs`` gives PPO/A2C that many training environments). Writes ``OUT/eval.csv`` (periodic greedy
evaluation), ``OUT/model.zip`` and ``OUT/model.json`` (algorithm, env, method, steps, seed, evaluation
return, command), tensorboard logs under ``OUT/tb`` and, for DQN, ``OUT/checkpoints/`` (``--resume``;
checkpoints are DQN-only for now).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Attach ``train`` to the ``equirl`` subparsers."""
    from equirl.agents.algorithms import ALGORITHMS
    from equirl.averaging import METHODS

    p = sub.add_parser(
        "train",
        help="train a plain or equivariant agent (DQN, QR-DQN, PPO, A2C)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("env", help="catalogue name, e.g. CartPole-v1, Acrobot-v1, equirl/RotGrid-Corner-v0, MiniGrid-...")
    p.add_argument("--algo", default="dqn", help=f"the algorithm: one of {', '.join(ALGORITHMS)} (default dqn)")
    p.add_argument("--method", choices=("plain", *METHODS), default="plain")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="environment steps (default: the entry's n_timesteps)")
    p.add_argument(
        "--env-kwargs", type=json.loads, default={}, help="JSON passed to make_env, e.g. '{\"goal_corners\": [1]}'"
    )
    p.add_argument(
        "--task",
        type=json.loads,
        default=None,
        help="JSON task of equirl.envs.make_task_env (wrappers on top of --env-kwargs), e.g. "
        '\'{"half_track": {"low": 0.8, "high": 1.6}}\' (a transfer suite\'s pretraining task)',
    )
    p.add_argument("--symmetry", default=None, help="catalogue symmetry (default: ENV)")
    p.add_argument("--hyperparams", default=None, help="YAML file (default: the package's <algo>.yml)")
    p.add_argument("--hyperparams-key", default=None, help="entry in the YAML file (default: ENV)")
    p.add_argument("--out", default=None, help="output folder (default runs/train/<ENV>/<method>_s<seed>)")
    p.add_argument("--eval-freq", type=int, default=None, help="steps between evaluations (default: steps/10)")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument(
        "--checkpoint-freq", type=int, default=None, help="steps between checkpoints (DQN; default: steps/5)"
    )
    p.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint in --out")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out (default: refuse)")
    p.add_argument(
        "--save-pretrained",
        default=None,
        metavar="NAME",
        help="copy the result to the package's pretrained/NAME (safe folder) and NAME.zip",
    )
    p.add_argument("--force", action="store_true", help="let --save-pretrained replace an existing agent NAME")
    p.add_argument(
        "--select",
        choices=("final", "best"),
        default="final",
        help="which model --save-pretrained copies: the final one or the best periodic evaluation (latest on ties)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest for small networks)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Train as ``args`` says; returns the exit status."""
    import torch

    from equirl.agents import train
    from equirl.agents.algorithms import get_algorithm
    from equirl.agents.hyperparams import PRETRAINED_DIR, hyperparams_for
    from equirl.agents.training import RunFolderError
    from equirl.cli import UsageError
    from equirl.envs import get_symmetry, make_env

    torch.set_num_threads(args.threads)
    try:
        algorithm = get_algorithm(args.algo)
    except ValueError as err:
        raise UsageError(f"--algo: {err}") from err
    if algorithm.name != "dqn" and (args.resume or args.checkpoint_freq):
        raise UsageError(
            f"--resume and --checkpoint-freq are DQN-only for now; {algorithm.class_name} runs are not checkpointed."
        )
    if algorithm.name != "dqn" and args.save_pretrained:
        raise UsageError(f"--save-pretrained is DQN-only for now; {algorithm.class_name} agents stay in --out.")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be >= 1 environment step, got {args.steps}.")
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other: continue the run, or replace it.")
    targets = []
    if args.save_pretrained:
        name = args.save_pretrained
        if not name or "/" in name or name.startswith("."):
            raise UsageError(f"--save-pretrained takes a plain name (like cartpole_plain), got {name!r}.")
        targets = [PRETRAINED_DIR / name, PRETRAINED_DIR / f"{name}.zip", PRETRAINED_DIR / f"{name}.json"]
        taken = [str(t) for t in targets if t.exists()]
        if taken and not args.force:
            raise UsageError(
                f"--save-pretrained {name}: {', '.join(taken)} already exist(s); pass --force to replace them "
                "(the shipped agents are what the transfer results were measured with)."
            )
    try:
        key, hp = hyperparams_for(args.env, args.hyperparams_key, args.hyperparams, algo=algorithm.name)
    except KeyError as err:
        raise UsageError(str(err.args[0])) from err
    steps = int(args.steps if args.steps is not None else hp["n_timesteps"])
    symmetry = get_symmetry(args.symmetry or args.env) if args.method != "plain" else None
    env_kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in args.env_kwargs.items()}
    prefix = "" if algorithm.name == "dqn" else f"{algorithm.name}_"
    out = Path(args.out or Path("runs/train") / args.env.replace("/", "_") / f"{prefix}{args.method}_s{args.seed}")
    command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])

    def env_factory() -> Any:
        if args.task:
            from equirl.envs.wrappers import make_task_env

            return make_task_env(
                args.env, {**args.task, "env_kwargs": {**args.task.get("env_kwargs", {}), **env_kwargs}}
            )
        return make_env(args.env, **env_kwargs)

    try:
        result = train(
            env_factory,
            args.method,
            symmetry,
            hp,
            seed=args.seed,
            total_timesteps=steps,
            eval_freq=args.eval_freq,
            n_eval_episodes=args.eval_episodes,
            out_dir=out,
            tensorboard_log=str(out / "tb"),
            progress_bar=not args.no_progress,
            checkpoint_freq=(args.checkpoint_freq or max(1, steps // 5)) if algorithm.name == "dqn" else None,
            resume=args.resume,
            overwrite=args.overwrite,
            metadata={
                "env_id": args.env,
                "env_kwargs": env_kwargs,
                **({"task": args.task} if args.task else {}),
                "symmetry": symmetry.name if symmetry else None,
                "hyperparams_entry": key,
                "command": command,
            },
            algo=algorithm.name,
            device=args.device,
        )
    except RunFolderError as err:
        raise UsageError(str(err)) from err
    print(
        f"{args.env} {algorithm.class_name} {args.method} seed={args.seed}: {result.timesteps} steps in {result.train_seconds:.0f}s, "
        f"greedy return {result.mean_return:.2f} ± {result.std_return:.2f} over {args.eval_episodes} episodes -> {out}"
    )
    if args.save_pretrained:
        _save_pretrained(args, out, hp, env_factory, targets)
    return 0


def _save_pretrained(
    args: argparse.Namespace, out: Path, hp: dict[str, Any], env_factory: Any, targets: list[Path]
) -> None:
    """Copy the chosen model of ``out`` to the package's pretrained agents: a safe folder, the zip and its metadata."""
    from equirl.agents.io import read_json, read_sb3_zip, save_agent, write_atomic

    folder, zip_path, meta_path = targets
    meta = read_json(out / "model.json", "run metadata")
    src = out / "model.zip"
    if args.select == "best" and meta.get("best_eval"):
        best = meta["best_eval"]
        src = out / "best_model.zip"
        meta.update(
            selected="best periodic evaluation (latest on ties)",
            final_timesteps=meta["timesteps"],
            final_eval_mean_return=meta["eval_mean_return"],
            timesteps=int(best["timesteps"]),
            eval_mean_return=best["mean_return"],
            eval_std_return=best["std_return"],
        )
    else:
        meta["selected"] = "final"
    train_freq = hp.get("train_freq", 4)
    train_freq = tuple(train_freq) if isinstance(train_freq, list) else train_freq
    model = read_sb3_zip(src, env_factory(), device="cpu", train_freq=train_freq)  # our own file, still read safely
    save_agent(model, folder, overwrite=args.force, training_state=False)
    write_atomic(zip_path, src.read_bytes())
    write_atomic(meta_path, json.dumps(meta, indent=2) + "\n")
    print(f"saved {folder}/ and {zip_path}")
