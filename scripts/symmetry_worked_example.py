"""The worked example of docs/symmetry.md: an environment outside the catalogue, from discovery to a trained agent.

    python scripts/symmetry_worked_example.py --steps 5000 --seeds 0 1 2 [--raw docs/results/symmetry_worked_example]

``equirl/NoisyCartPole-v0`` (CartPole with a random gust on the cart every step) has no catalogue entry. The
script (:func:`equirl.agents.worked_example.run`) (1) discovers its symmetry through a user-written
:class:`envs.ObsStateCodec`, (2) verifies the result statistically, (3) per seed trains an equivariant DQN
(λ-equitune, CartPole's rl-zoo3 hyperparameters) and a plain DQN for ``--steps`` steps, evaluates both greedily and
measures the trained Q-network's equivariance error. Prints each stage's report and the result table; ``--raw DIR``
also writes the raw results (:mod:`equirl.rawresults`) that docs/symmetry.md's table is rebuilt from
(``equirl bench tables``).
"""

from __future__ import annotations

import argparse
import time

import torch
from equirl.agents import worked_example

from equirl import rawresults


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--eval-episodes", type=int, default=20)
    rawresults.add_raw_arguments(p)
    args = p.parse_args()
    started = rawresults.start_raw(p, args)
    torch.set_num_threads(1)
    t0 = time.time()
    rows = worked_example.run(args.seeds, args.steps, args.eval_episodes)
    print(worked_example.render(rows))
    if args.raw:
        settings = {"steps": args.steps, "seeds": args.seeds, "eval_episodes": args.eval_episodes,
                    "check_seeds": list(worked_example.CHECK_SEEDS), "torch_threads": 1}  # fmt: skip
        rawresults.write_raw(
            args.raw, rows, settings, seconds=time.time() - t0, started=started, overwrite=args.overwrite
        )
        print(f"wrote the raw results to {args.raw}")


if __name__ == "__main__":
    main()
