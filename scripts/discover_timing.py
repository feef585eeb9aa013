"""Time ``discover_symmetry`` on a list of environments and print a markdown table.

    python scripts/discover_timing.py [ENV ...] [--verify-steps 200] [--no-8d] [--raw docs/results/discover_timing]

Columns: the group found, the catalogue's group for the same name (when there is one), seconds (wall clock, one
torch thread), candidates pruned before stepping (by reason), stepped, failed the one-step check, verified, and
whether the whole group re-verified. The measurement is :func:`equirl.envs.symmetry_reports.measure_discovery`
(by default the environments of ``DISCOVER_ENVS`` and the 8-dimensional TwoCartPoles search). ``--raw DIR`` also
writes the raw results (:mod:`equirl.rawresults`) that docs/symmetry.md's table is rebuilt from
(``equirl bench tables``).
"""

from __future__ import annotations

import argparse
import time

import torch
from equirl.envs.symmetry_reports import DISCOVER_ENVS, measure_discovery, render_discovery

from equirl import rawresults


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("envs", nargs="*", default=list(DISCOVER_ENVS))
    p.add_argument("--verify-steps", type=int, default=200)
    p.add_argument("--no-8d", action="store_true", help="skip the 8-dimensional TwoCartPoles search")
    rawresults.add_raw_arguments(p)
    args = p.parse_args()
    started = rawresults.start_raw(p, args)
    torch.set_num_threads(1)
    t0 = time.time()
    rows = measure_discovery(args.envs, args.verify_steps, eight_dim=not args.no_8d)
    print(render_discovery(rows))
    if args.raw:
        settings = {"envs": args.envs, "verify_steps": args.verify_steps, "eight_dim": not args.no_8d,
                    "torch_threads": 1}  # fmt: skip
        rawresults.write_raw(
            args.raw, rows, settings, seconds=time.time() - t0, started=started, overwrite=args.overwrite
        )
        print(f"wrote the raw results to {args.raw}")


if __name__ == "__main__":
    main()
