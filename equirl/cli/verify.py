"""``equirl verify``: check a declared symmetry against an environment's dynamics and print the verifier's report.

Examples::

    equirl verify CartPole-v1
    equirl verify MiniGrid-DoorKey-5x5-v0/full-D4 --seeds 0 1 2 --steps 1000
    equirl verify --all --steps 100        # every catalogue entry
    equirl verify --list                   # catalogue names
    equirl verify Acrobot-v1 --tol "obs[4]=1e-5" --exclude truncated
    equirl verify equirl/NoisyCartPole-v0 --symmetry CartPole-v1 --mode statistical
    equirl verify my/Env-v0 --import my_package.symmetries   # code that calls envs.register_symmetry
    equirl verify Acrobot-v1 --symmetry-json acrobot.json     # a spec written by `equirl discover --json`

``ENV`` is a catalogue name (see ``--list``) or, with ``--symmetry``, any gymnasium id; ``--symmetry`` picks
another catalogue entry's symmetry for the same environment (its state mapper is used). ``--import`` loads
a module (a dotted name on the Python path, or a ``.py`` file) first, so that the symmetries it registers
can be named. ``--mode statistical`` compares distributions (for stochastic environments); without a
registered state mapper it compares random trajectories. Exit status 0 when every report is OK, 1 otherwise.
``--symmetry-json FILE`` reads the symmetry from a JSON spec (``equirl.Symmetry.to_dict`` format, as
``equirl discover --json FILE`` writes it); the environment's registered state mapper is used, if any.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from equirl.cli import UsageError


def add_common(p: argparse.ArgumentParser) -> None:
    """``--import``, shared with ``equirl discover``."""
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module (dotted name or .py file) that registers symmetries; repeatable",
    )


def import_user_modules(names: list[str]) -> None:
    """Import each of ``names`` (a dotted module name, or a path to a ``.py`` file); UsageError when one fails."""
    for name in names:
        try:
            if name.endswith(".py"):
                path = Path(name)
                if not path.is_file():
                    raise UsageError(f"--import {name}: no such file.")
                spec = importlib.util.spec_from_file_location(path.stem, path)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[path.stem] = module
                spec.loader.exec_module(module)
            else:
                importlib.import_module(name)
        except UsageError:
            raise
        except ImportError as err:
            raise UsageError(
                f"--import {name}: {err}. Give a module importable from here (check the Python path, or "
                "`pip install -e` your package) or a path to a .py file."
            ) from err
        except Exception as err:  # the user's module raised while registering
            raise UsageError(f"--import {name}: the module raised {type(err).__name__}: {err}") from err


def read_symmetry_json(path: str) -> Any:
    """The :class:`equirl.Symmetry` in the JSON spec at ``path``; UsageError naming the file when it is unusable."""
    import json

    from equirl import Symmetry

    try:
        with open(path) as f:
            data = json.load(f)
        return Symmetry.from_dict(data)
    except FileNotFoundError as err:
        raise UsageError(f"--symmetry-json {path}: no such file.") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"--symmetry-json {path}: not valid JSON ({err}).") from err
    except (KeyError, TypeError, ValueError) as err:
        raise UsageError(
            f"--symmetry-json {path}: not a symmetry spec ({err}); write one with equirl discover ENV --json FILE "
            "or equirl.Symmetry.to_dict()."
        ) from err


def parse_tolerances(items: list[str]) -> dict[str, float]:
    """``["obs[3]=1e-4", "reward=0.01"]`` -> ``{"obs[3]": 1e-4, "reward": 0.01}``; UsageError on bad items."""
    out: dict[str, float] = {}
    for item in items:
        field, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[field.strip()] = float(value)
        except ValueError:
            raise UsageError(
                f"--tol {item!r}: expected FIELD=ATOL, for example --tol 'obs[3]=1e-4' or --tol reward=0.01."
            ) from None
    return out


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Attach ``verify`` to the ``equirl`` subparsers."""
    p = sub.add_parser(
        "verify",
        help="check a declared symmetry against an environment's dynamics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("env", nargs="?", help="catalogue name / environment id")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--symmetry", default=None, help="catalogue name of the symmetry (default: ENV)")
    which.add_argument("--symmetry-json", default=None, metavar="FILE", help="a JSON symmetry spec (Symmetry.to_dict)")
    add_common(p)
    p.add_argument("--mode", choices=("lockstep", "statistical"), default="lockstep")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=500, help="lockstep steps per seed and group element")
    p.add_argument("--obs-atol", type=float, default=1e-6)
    p.add_argument("--obs-rtol", type=float, default=0.0)
    p.add_argument("--reward-atol", type=float, default=1e-9)
    p.add_argument(
        "--tol", action="append", default=[], metavar="FIELD=ATOL", help="per-field tolerance (obs[i], reward)"
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="FIELD",
        help="field not compared: observation, obs[i], reward, terminated, truncated; repeatable",
    )
    p.add_argument("--horizon", type=int, default=None, help="re-sync period for inexact (physics) mappers")
    stat = p.add_argument_group("statistical mode")
    stat.add_argument("--states", type=int, default=16, help="states sampled per seed")
    stat.add_argument("--rollouts", type=int, default=64, help="one-step rollouts per state and side")
    stat.add_argument("--test", choices=("ks", "mmd"), default="ks")
    stat.add_argument("--alpha", type=float, default=0.01, help="family-wise false-alarm rate")
    stat.add_argument("--correction", choices=("holm", "bonferroni"), default="holm")
    p.add_argument("--all", action="store_true", help="verify every catalogue entry")
    p.add_argument("--list", action="store_true", help="print the catalogue and exit")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Verify as ``args`` says; returns 0 when every report is OK, 1 otherwise."""
    import_user_modules(args.imports)
    from equirl.envs import catalogue_table, list_symmetries, verify_symmetry

    if args.list:
        print(catalogue_table())
        return 0
    names = list_symmetries() if args.all else [args.env]
    if names == [None]:
        raise UsageError("give ENV, --all or --list")
    tolerances = parse_tolerances(args.tol)
    spec = read_symmetry_json(args.symmetry_json) if args.symmetry_json else None
    if spec is not None and args.all:
        raise UsageError("--symmetry-json names one symmetry; give ENV instead of --all.")
    all_ok = True
    total_steps, total_s = 0, 0.0
    for name in names:
        try:
            report = verify_symmetry(
                name,
                spec if spec is not None else (args.symmetry or name),
                mode=args.mode,
                seeds=args.seeds,
                steps=args.steps,
                obs_atol=args.obs_atol,
                obs_rtol=args.obs_rtol,
                reward_atol=args.reward_atol,
                tolerances=tolerances,
                exclude=args.exclude,
                horizon=args.horizon,
                progress=not args.no_progress and not args.all,
                states=args.states,
                rollouts=args.rollouts,
                test=args.test,
                alpha=args.alpha,
                correction=args.correction,
            )
        except TypeError as err:  # for example a continuous action space
            raise UsageError(str(err)) from err
        steps = getattr(report, "steps_checked", getattr(report, "samples", 0))
        print(
            report
            if not args.all
            else f"{'OK    ' if report.ok else 'FAILED'} {name:45s} {report.group:3s} "
            f"{steps:7d} {'steps' if args.mode == 'lockstep' else 'samples'} in {report.seconds:6.2f} s"
        )
        if args.all and not report.ok:
            print(report)
        all_ok &= report.ok
        total_steps += steps
        total_s += report.seconds
    if args.all:
        print(
            f"{len(names)} entries, {total_steps} checked {'steps' if args.mode == 'lockstep' else 'samples'} "
            f"in {total_s:.1f} s ({total_steps / max(total_s, 1e-9):.0f}/s); {'all OK' if all_ok else 'FAILURES'}"
        )
    return 0 if all_ok else 1
