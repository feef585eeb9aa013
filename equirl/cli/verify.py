"""``equirl verify``: check a declared symmetry against an environment's dynamics and print the verifier's report.

Examples::

    equirl verify CartPole-v1
    equirl verify MiniGrid-DoorKey-5x5-v0/full-D4 --seeds 0 1 2 --steps 1000
    equirl verify --all --steps 100        # every catalogue entry
    equirl verify --list                   # catalogue names

``ENV`` is a catalogue name (see ``--list``); ``--symmetry`` picks another catalogue entry's symmetry
for the same environment (its state mapper is used). Exit status 0 when every report is OK, 1 otherwise.
"""

from __future__ import annotations

import argparse
from typing import Any

from equirl.cli import UsageError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Attach ``verify`` to the ``equirl`` subparsers."""
    p = sub.add_parser(
        "verify",
        help="check a declared symmetry against an environment's dynamics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("env", nargs="?", help="catalogue name / environment id")
    p.add_argument("--symmetry", default=None, help="catalogue name of the symmetry (default: ENV)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=500, help="lockstep steps per seed and group element")
    p.add_argument("--obs-atol", type=float, default=1e-6)
    p.add_argument("--obs-rtol", type=float, default=0.0)
    p.add_argument("--reward-atol", type=float, default=1e-9)
    p.add_argument("--horizon", type=int, default=None, help="re-sync period for inexact (physics) mappers")
    p.add_argument("--all", action="store_true", help="verify every catalogue entry")
    p.add_argument("--list", action="store_true", help="print the catalogue and exit")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Verify as ``args`` says; returns 0 when every report is OK, 1 otherwise."""
    from equirl.envs import catalogue_table, list_symmetries, verify_symmetry

    if args.list:
        print(catalogue_table())
        return 0
    names = list_symmetries() if args.all else [args.env]
    if names == [None]:
        raise UsageError("give ENV, --all or --list")
    all_ok = True
    total_steps, total_s = 0, 0.0
    for name in names:
        report = verify_symmetry(
            name,
            args.symmetry or name,
            seeds=args.seeds,
            steps=args.steps,
            obs_atol=args.obs_atol,
            obs_rtol=args.obs_rtol,
            reward_atol=args.reward_atol,
            horizon=args.horizon,
            progress=not args.no_progress and not args.all,
        )
        print(
            report
            if not args.all
            else f"{'OK    ' if report.ok else 'FAILED'} {name:45s} {report.group:3s} "
            f"{report.steps_checked:7d} steps {report.steps_per_second:8.0f} steps/s"
        )
        if args.all and not report.ok:
            print(report)
        all_ok &= report.ok
        total_steps += report.steps_checked
        total_s += report.seconds
    if args.all:
        print(
            f"{len(names)} entries, {total_steps} checked steps in {total_s:.1f} s "
            f"({total_steps / max(total_s, 1e-9):.0f} steps/s); {'all OK' if all_ok else 'FAILURES'}"
        )
    return 0 if all_ok else 1
