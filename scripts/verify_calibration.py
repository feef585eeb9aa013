"""Measure the statistical verifier's false-alarm rate and power on ``equirl/NoisyCartPole-v0``.

    python scripts/verify_calibration.py --reps 100 --alpha 0.05 [--raw docs/results/verify_calibration]

``calibration``: for each configuration (test, states, rollouts, with or without a state mapper) the true mirror
and three near-miss maps are verified ``--reps`` times with independent seeds; the table gives the fraction of runs
that FAILED (for the true symmetry: the false-alarm rate, to compare with ``alpha``; for a near miss: the power)
and the mean seconds per run. ``wind``: the true mirror against a steady wind (a real asymmetry), the fraction of
runs that FAILED (the power). The measurements are :func:`equirl.envs.symmetry_reports.measure_calibration` and
``measure_wind``. ``--raw DIR`` also writes one row per run (:mod:`equirl.rawresults`) that docs/symmetry.md's two
tables are rebuilt from (``equirl bench tables``).
"""

from __future__ import annotations

import argparse
import time

import torch
from equirl.envs.symmetry_reports import WINDS, measure_calibration, measure_wind, render_calibration

from equirl import rawresults


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=100, help="runs (seeds 0..reps-1) per configuration and case")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--parts", nargs="+", choices=["calibration", "wind"], default=["calibration", "wind"])
    p.add_argument("--winds", type=float, nargs="+", default=list(WINDS), help="steady winds (N) of the wind part")
    rawresults.add_raw_arguments(p)
    args = p.parse_args()
    if args.reps < 1:
        p.error(f"--reps must be at least 1, got {args.reps}.")
    started = rawresults.start_raw(p, args)
    torch.set_num_threads(1)
    t0 = time.time()
    rows = []
    if "calibration" in args.parts:
        rows += measure_calibration(args.reps, args.alpha)
        print(render_calibration(rows, "calibration"), flush=True)
    if "wind" in args.parts:
        rows += measure_wind(args.reps, args.alpha, args.winds)
        print(render_calibration(rows, "wind"), flush=True)
    if args.raw:
        settings = {"reps": args.reps, "alpha": args.alpha, "parts": args.parts, "winds": args.winds,
                    "correction": "holm", "env": "equirl/NoisyCartPole-v0", "torch_threads": 1}  # fmt: skip
        rawresults.write_raw(
            args.raw, rows, settings, seconds=time.time() - t0, started=started, overwrite=args.overwrite
        )
        print(f"wrote the raw results to {args.raw}")


if __name__ == "__main__":
    main()
