"""``equirl discover``: search an environment's symmetries and print the group, its elements and the code declaring it.

Examples::

    equirl discover CartPole-v1
    equirl discover equirl/RotGrid-v0
    equirl discover MiniGrid-DoorKey-5x5-v0 --verify-steps 100
    equirl discover my/Env-v0 --import my_package.envs     # a module that registers the environment

``ENV`` is a catalogue name or a gymnasium id. Vector observations need a way to set a state from an
observation (built in for CartPole, Acrobot and MountainCar; from Python, pass ``codec=``); grid observations
a way to turn and mirror the world (built in for RotGrid and MiniGrid; from Python, ``world_maps=``). See
docs/symmetry.md. Exit status 0 when the search ran (whatever it found).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from equirl.cli import UsageError
from equirl.cli.verify import add_common, import_user_modules


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Attach ``discover`` to the ``equirl`` subparsers."""
    p = sub.add_parser(
        "discover",
        help="search an environment's symmetry group (and print code that declares it)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("env", help="catalogue name / gymnasium id")
    add_common(p)
    p.add_argument("--seed", type=int, default=0, help="seeds the sampled states")
    p.add_argument("--verify-seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--verify-steps", type=int, default=200, help="lockstep steps per seed and element")
    p.add_argument("--check-states", type=int, default=4, help="states for the one-step checks")
    p.add_argument("--rollouts", type=int, default=32, help="stochastic dynamics: rollouts per state")
    p.add_argument("--all-candidates", action="store_true", help="list every candidate that was stepped")
    p.add_argument(
        "--json", default=None, metavar="FILE", help="also write the symmetry found as a JSON spec (for verify)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Discover as ``args`` says; prints the report and the snippet."""
    import_user_modules(args.imports)
    from equirl.envs import discover_symmetry

    if args.json and Path(args.json).exists() and not args.overwrite:
        raise UsageError(f"--json {args.json} exists; pass --overwrite to replace it.")

    try:
        report = discover_symmetry(
            args.env,
            seed=args.seed,
            check_states=args.check_states,
            verify_seeds=args.verify_seeds,
            verify_steps=args.verify_steps,
            rollouts=args.rollouts,
        )
    except TypeError as err:
        raise UsageError(str(err)) from err
    print(report)
    if args.all_candidates:
        print("  every candidate stepped:")
        for c in report.candidates:
            print(f"    {c.verdict:20s} {c.description} (order {c.order}){': ' + c.reason if c.reason else ''}")
    print("\nPython:\n")
    print(report.snippet)
    if args.json:
        import json

        from equirl.agents.io import write_atomic

        write_atomic(args.json, json.dumps(report.symmetry.to_dict(), indent=2) + "\n")
        print(f"\nwrote {args.json} (equirl verify {args.env} --symmetry-json {args.json})")
    return 0
