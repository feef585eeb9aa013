"""Training speed of the README quick start with torch's default thread count against one thread.

    python scripts/threads_speed.py --steps 3000 --threads default,1 [--reps 2] [--raw docs/results/threads_speed]

Each setting runs in a fresh process (torch's thread count is fixed once work has started), training the quick
start's λ-equitune DQN (CartPole-v1, ``net_arch=[256, 256]``, SB3's other defaults) and a plain SB3 DQN for
``--steps`` environment steps (:func:`equirl.agents.threads.measure`). Prints a markdown table of environment steps
per second; ``--raw DIR`` also writes the raw results (:mod:`equirl.rawresults`) that docs/ecosystem.md's table is
rebuilt from (``equirl bench tables``). Leave ``OMP_NUM_THREADS`` as it is: the runs drop it.
"""

from __future__ import annotations

import argparse
import os
import time

from equirl.agents import threads

from equirl import rawresults


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3000, help="environment steps per run")
    p.add_argument("--threads", default="default,1", help="comma-separated thread settings ('default' = torch's)")
    p.add_argument("--reps", type=int, default=1, help="runs per setting (interleaved)")
    rawresults.add_raw_arguments(p)
    args = p.parse_args()
    settings = args.threads.split(",")
    if args.reps < 1 or any(s != "default" and not (s.isdigit() and int(s) > 0) for s in settings):
        p.error(f"--threads takes 'default' or positive numbers and --reps >= 1; got {args.threads!r}, {args.reps}.")
    started = rawresults.start_raw(p, args)
    print(f"CPU cores: {os.cpu_count()}; {args.steps} steps per run\n")
    t0 = time.time()
    rows = threads.measure(args.steps, settings, args.reps)
    print(threads.render(rows))
    if args.raw:
        st = {"steps": args.steps, "threads": settings, "reps": args.reps, "cpu_count": os.cpu_count()}
        rawresults.write_raw(args.raw, rows, st, seconds=time.time() - t0, started=started, overwrite=args.overwrite)
        print(f"wrote the raw results to {args.raw}")


if __name__ == "__main__":
    main()
