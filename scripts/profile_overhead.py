"""Where the symmetrisation's time goes: tensor-operation counts and a one-observation ``predict`` profile.

    # the committed measurement of docs/overhead.md (one torch thread)
    python scripts/profile_overhead.py --raw docs/overhead/raw/profile/after
    # an older commit exported as docs/overhead.md's Reproduce section shows (EQUIRL_BENCH_COMMIT names it)
    PYTHONPATH=/tmp/before EQUIRL_BENCH_COMMIT=5a7070b python scripts/profile_overhead.py --time-cases \\
        --raw docs/overhead/raw/profile/before-5a7070b
    # fewer cases, a quick look
    python scripts/profile_overhead.py --cases cartpole-C2 --time-cases cartpole-C2 --rounds 5

Counts the ATen operations of one ``model.train(1, B)`` and one one-observation ``model.predict`` for every method
and same-arithmetic reference (deterministic), and times the parts of one-observation ``predict`` (process CPU
time, interleaved rounds); prints the tables. ``--raw DIR`` also writes the raw results (:mod:`equirl.rawresults`:
results.csv + meta.json) that ``make tables`` rebuilds docs/overhead.md's tables from. The library is
:mod:`equirl.agents.overhead_profile`.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from equirl.agents import overhead, overhead_profile

import equirl
from equirl import rawresults


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cases = list(overhead.CASES)
    p.add_argument("--cases", nargs="*", choices=cases, default=cases, help="cases whose operations are counted")
    p.add_argument(
        "--time-cases", nargs="*", choices=cases, default=["cartpole-C2", "rotgrid-C4"],
        help="cases whose one-observation predict is timed (none: counts only)",
    )  # fmt: skip
    p.add_argument("--rounds", type=int, default=30, help="interleaved rounds of the predict profile")
    p.add_argument("--calls", type=int, default=200, help="calls per timed block")
    p.add_argument("--seed", type=int, default=0, help="seed of the block order")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, see benchmark_overhead.py)")
    rawresults.add_raw_arguments(p)
    args = p.parse_args(argv)
    if args.rounds < 1 or args.calls < 1:
        p.error(f"--rounds and --calls must be >= 1, got {args.rounds} and {args.calls}.")
    started = rawresults.start_raw(p, args)
    if started is not None and os.environ.get("EQUIRL_BENCH_COMMIT"):  # an older commit outside git (docs/overhead.md)
        started["code_version"] = os.environ["EQUIRL_BENCH_COMMIT"]
    torch.set_num_threads(args.threads)
    t0 = time.time()
    rows = overhead_profile.measure_ops(args.cases)
    rows += overhead_profile.measure_predict_time(args.time_cases, args.rounds, args.calls, args.seed)
    for measure in ("train", "predict"):
        print(overhead_profile.render_ops(rows, measure))
    for case in args.time_cases:
        table, words = overhead_profile.render_predict_profile(rows, case)
        print(f"{case}, one-observation predict ({words}):\n{table}")
    if args.raw:
        settings = {"cases": args.cases, "time_cases": args.time_cases, "rounds": args.rounds, "calls": args.calls,
                    "seed": args.seed, "threads": args.threads,
                    "package": str(Path(equirl.__file__).resolve().parent)}  # fmt: skip
        rawresults.write_raw(
            args.raw, rows, settings, seconds=time.time() - t0, started=started, overwrite=args.overwrite
        )
        print(f"wrote the raw results to {args.raw}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
