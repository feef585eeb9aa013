"""Transfer from a pretrained plain PPO (or A2C, QR-DQN, DQN) agent to transformed tasks, every method.

A thin wrapper around :mod:`equirl.agents.policy_transfer`::

    # pretrain plain PPO on RotGrid's bottom-corner goals (3 seeds), then zero-shot and after K steps on the
    # rotated-goal tasks; raw results into OUT/runs.csv + curves.csv
    python scripts/transfer_policy.py run --out docs/benchmark/ppo_transfer_rotgrid
    # the table from the raw results (also rebuilt by `make tables`)
    python scripts/transfer_policy.py table --out docs/benchmark/ppo_transfer_rotgrid
"""

from __future__ import annotations

import argparse

from equirl.agents import policy_transfer


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["run", "table"])
    p.add_argument("--out", required=True, help="folder for the pretrained weights and the raw results")
    p.add_argument("--env", default=policy_transfer.DEFAULT_ENV, help="catalogue environment (its transfer tasks)")
    p.add_argument("--algo", default="ppo")
    p.add_argument("--methods", nargs="+", default=["plain", "equitune", "equizero", "lambda"])
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (one pretrained agent each)")
    p.add_argument("--budgets", type=int, nargs="+", default=[0, 1024, 4096], help="target-task steps K")
    p.add_argument("--pretrain-steps", type=int, default=20480)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    a = p.parse_args()
    if a.command == "run":
        import torch

        torch.set_num_threads(a.threads)
        policy_transfer.run(a.out, a.env, None, a.methods, range(a.seeds), a.budgets, a.pretrain_steps, a.algo,
                            a.eval_episodes, overwrite=a.overwrite)  # fmt: skip
    runs, curves = policy_transfer.read_raw(a.out)
    print(policy_transfer.transfer_table(runs, curves))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
