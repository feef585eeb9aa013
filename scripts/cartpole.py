"""The main job: a λ-equituned DQN and a plain SB3 DQN on CartPole-v1, trained the same way.

Both use rl-zoo3's CartPole-v1 hyperparameters (agents/hyperparams/dqn.yml); they differ only in
the policy. Progress bars while training, tensorboard logs under ``--log-dir``, then a results
table (greedy return over evaluation episodes, training time, equivariance error of the Q-network).

    python scripts/cartpole.py [--steps 50000] [--seed 0] [--methods plain lambda] [--log-dir runs/cartpole]
    python scripts/cartpole.py --raw docs/results/cartpole_make_run    # also keep the raw results (README's table)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch
from equirl.agents import ALL_METHODS, load_hyperparams, train
from equirl.agents.io import write_atomic
from equirl.agents.reports import train_rows, train_table
from equirl.envs import get_symmetry

import equirl
from equirl import rawresults

ENV_ID = "CartPole-v1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help="environment steps per agent (default: rl-zoo3's 5e4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=["plain", "lambda"], choices=ALL_METHODS)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--log-dir", default="runs/cartpole", help="tensorboard logs, eval CSVs and models")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for this small MLP)")
    rawresults.add_raw_arguments(parser)
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be positive, got {args.steps}")
    started = rawresults.start_raw(parser, args)
    t0 = time.time()
    torch.set_num_threads(args.threads)

    hp = load_hyperparams(ENV_ID)
    symmetry = get_symmetry(ENV_ID)
    log_dir = Path(args.log_dir)
    probe = torch.randn(256, 4) * torch.tensor([1.0, 1.0, 0.1, 1.0])
    rows = []
    for method in args.methods:
        print(f"\n== {method}: {ENV_ID}, seed {args.seed}, {args.steps or hp['n_timesteps']} steps", flush=True)
        result = train(
            lambda: gym.make(ENV_ID),
            method,
            symmetry,
            hp,
            seed=args.seed,
            total_timesteps=args.steps,
            n_eval_episodes=args.eval_episodes,
            out_dir=log_dir / f"{method}_s{args.seed}",
            tensorboard_log=str(log_dir / "tb"),
            progress_bar=True,
        )
        err = equirl.equivariance_error(result.model.q_net, symmetry, probe)
        rows += train_rows(result, err, args.eval_episodes)
    table = train_table(rows)
    print(
        f"\nCartPole-v1, seed {args.seed}: greedy return over {args.eval_episodes} episodes (max 500), "
        f"evaluated every {(args.steps or hp['n_timesteps']) // 10} steps:\n"
    )
    print(table)
    write_atomic(log_dir / "results.md", table)
    if args.raw:
        settings = {k: v for k, v in vars(args).items() if k not in ("raw", "overwrite")}
        settings |= {"env_id": ENV_ID, "steps": args.steps or hp["n_timesteps"]}
        rawresults.write_raw(
            args.raw, rows, settings, seconds=time.time() - t0, started=started, overwrite=args.overwrite
        )
        print(f"Raw results: {args.raw}")
    print(f"\nTensorboard: tensorboard --logdir {log_dir / 'tb'}    Table: {log_dir / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
