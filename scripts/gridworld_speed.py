"""Raw steps per second of RotGrid (and of MiniGrid for comparison), and the verifier's checked steps/s.

    python scripts/gridworld_speed.py --steps 200000 [--raw docs/results/gridworld_speed]

Prints two markdown tables (the measurements are :func:`equirl.envs.speed.measure`). Random actions; environments
reset on episode end. ``--raw DIR`` also writes the raw results (:mod:`equirl.rawresults`) that docs/envs.md's
tables are rebuilt from (``equirl bench tables``).
"""

from __future__ import annotations

import argparse
import time

from equirl.envs.speed import measure, render

from equirl import rawresults


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200_000, help="environment steps per raw measurement")
    p.add_argument("--verify-steps", type=int, default=500, help="verifier steps per seed and element")
    rawresults.add_raw_arguments(p)
    args = p.parse_args()
    started = rawresults.start_raw(p, args)
    t0 = time.time()
    rows = measure(args.steps, args.verify_steps)
    print(render(rows, "env") + "\n" + render(rows, "verifier"))
    if args.raw:
        settings = {"steps": args.steps, "verify_steps": args.verify_steps}
        rawresults.write_raw(
            args.raw, rows, settings, seconds=time.time() - t0, started=started, overwrite=args.overwrite
        )
        print(f"wrote the raw results to {args.raw}")


if __name__ == "__main__":
    main()
