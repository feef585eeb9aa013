"""Measure the statistical verifier's false-alarm rate and power on ``equirl/NoisyCartPole-v0``.

For each configuration (test, states, rollouts, with or without a state mapper) the true mirror and three
near-miss maps are verified ``--reps`` times with independent seeds; the table gives the fraction of runs
that FAILED (for the true symmetry: the false-alarm rate, to compare with ``alpha``; for a near miss: the
power) and the mean seconds per run. Prints a markdown table; ``--out FILE`` also writes it (atomically).

    python scripts/verify_calibration.py --reps 100 --alpha 0.05
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import gymnasium as gym
import torch

from equirl import PermutationAction, SignFlipAction, Symmetry, TrivialAction, cyclic, envs


def candidates() -> dict[str, Symmetry]:
    """The true mirror and three near misses of NoisyCartPole."""
    c2 = cyclic(2)
    true = envs.get_symmetry("CartPole-v1")
    return {
        "true mirror": true,
        "wrong sign on θ̇": Symmetry(c2, SignFlipAction(c2, [[-1.0, -1.0, -1.0, 1.0]]), PermutationAction(c2, [[1, 0]])),
        "actions not swapped": dataclasses.replace(true, output_action=TrivialAction(c2)),
        "x and θ swapped": Symmetry(
            c2, PermutationAction(c2, [[2, 1, 0, 3]], signs=[[-1.0] * 4]), PermutationAction(c2, [[1, 0]])
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=100)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--out", default=None)
    p.add_argument("--only-wind", action="store_true", help="skip the near-miss table")
    args = p.parse_args()
    torch.set_num_threads(1)
    configs = [
        ("ks", 8, 32, True),
        ("mmd", 8, 32, True),
        ("ks", 4, 8, True),
        ("mmd", 4, 8, True),
        ("ks", 8, 64, False),
    ]
    cands = candidates()
    rows = [
        f"Statistical verifier on {envs.NOISY_CARTPOLE_ID}: fraction of {args.reps} runs that FAILED "
        f"(alpha = {args.alpha:g}, Holm correction, one seed per run, seeds 0..{args.reps - 1}).",
        "",
        "| test | mapper | states × rollouts | " + " | ".join(cands) + " | s/run |",
        "|---|---|---|" + "---|" * len(cands) + "---|",
    ]
    for test, states, rollouts, with_mapper in [] if args.only_wind else configs:
        cells, seconds = [], []
        for sym in cands.values():
            fails = 0
            for rep in range(args.reps):
                t0 = time.perf_counter()
                if with_mapper:
                    r = envs.verify_symmetry(
                        envs.NOISY_CARTPOLE_ID, sym, mode="statistical", state_mapper=envs.mappers.cartpole_mapper(),
                        seeds=(rep,), steps=200, states=states, rollouts=rollouts, test=test, alpha=args.alpha,
                    )  # fmt: skip
                else:
                    r = envs.verify_symmetry(
                        lambda: envs.make_env(envs.NOISY_CARTPOLE_ID), sym, mode="statistical", seeds=(rep,),
                        states=states, rollouts=rollouts, test=test, alpha=args.alpha,
                    )  # fmt: skip
                seconds.append(time.perf_counter() - t0)
                fails += not r.ok
            cells.append(f"{fails / args.reps:.2f}")
        per_side = f"{states} × {rollouts}" if with_mapper else f"{states * rollouts} episodes per side"
        rows.append(
            f"| {test} | {'yes' if with_mapper else 'no'} | {per_side} | "
            + " | ".join(cells)
            + f" | {sum(seconds) / len(seconds):.2f} |"
        )
        print(rows[-1], flush=True)
    # power against a real asymmetry of the environment: a steady wind (the gust's mean), true mirror map
    winds = [0.25, 0.5, 1.0, 2.0]
    rows += [
        "",
        f"Power against a steady wind of w newtons (gust N(w, 3²); the mirror is then not a symmetry), {args.reps} runs:",
        "",
        "| test | states × rollouts | " + " | ".join(f"w = {w:g}" for w in winds) + " |",
        "|---|---|" + "---|" * len(winds),
    ]
    for test, states, rollouts in [("ks", 8, 32), ("mmd", 8, 32), ("ks", 16, 64)]:
        cells = []
        for w in winds:
            fails = 0
            for rep in range(args.reps):
                r = envs.verify_symmetry(
                    lambda w=w: gym.make(envs.NOISY_CARTPOLE_ID, wind=w), cands["true mirror"], mode="statistical",
                    state_mapper=envs.mappers.cartpole_mapper(), seeds=(rep,), steps=200, states=states,
                    rollouts=rollouts, test=test, alpha=args.alpha,
                )  # fmt: skip
                fails += not r.ok
            cells.append(f"{fails / args.reps:.2f}")
        rows.append(f"| {test} | {states} × {rollouts} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    text = "\n".join(rows)
    print(text)
    if args.out:
        out = Path(args.out)
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        tmp.write_text(text + "\n")
        tmp.replace(out)


if __name__ == "__main__":
    main()
