"""The ``equirl`` command: one entry point with a subcommand per job.

``equirl train | transfer | verify | discover | bench`` (``equirl SUBCOMMAND --help`` for each). This package is the
project's command layer (what ``scripts/`` used to hold): it may import :mod:`equirl.agents` and
:mod:`equirl.envs`, and nothing in the core imports it. Each subcommand is a module here with
``add_parser(subparsers)`` (which sets ``run`` as the parser's default) and ``run(args) -> int``;
heavy imports happen inside ``run`` so that ``equirl --help`` is quick.

User mistakes (``UsageError``, unknown names, missing files, bad values, a missing optional extra) print one paragraph and exit 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["SUBCOMMANDS", "UsageError", "build_parser", "main"]

SUBCOMMANDS = ("train", "transfer", "verify", "discover", "bench")
"""Module names in ``equirl.cli``, in the order ``equirl --help`` lists them."""


class UsageError(Exception):
    """A mistake in what the user asked for; its message is printed as the whole error."""


def build_parser() -> argparse.ArgumentParser:
    """The ``equirl`` parser with every subcommand attached."""
    from equirl import __version__

    p = argparse.ArgumentParser(
        prog="equirl",
        description="Exactly equivariant deep Q-learning from pretrained networks (equitune, equizero, λ-equitune).",
    )
    p.add_argument("--version", action="version", version=f"equirl {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"equirl.cli.{name}").add_parser(sub)
    for subparser in sub.choices.values():  # `equirl train ... --debug` works too
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    from equirl.extras import MissingExtraError

    args = build_parser().parse_args(list(argv) if argv is not None else None)
    if args.debug:
        return int(args.run(args))
    try:
        return int(args.run(args))
    except (UsageError, KeyError, FileNotFoundError, ValueError, MissingExtraError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"equirl {args.command}: error: {message}\n(run with --debug for the traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"equirl {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`equirl verify ... | head`): stop quietly, as Unix tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
