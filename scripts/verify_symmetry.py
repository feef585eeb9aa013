"""Check a declared symmetry against an environment's dynamics.

A thin wrapper around ``equirl verify`` (the same arguments; ``equirl verify --help`` lists them), kept so
that ``python scripts/verify_symmetry.py ...`` works from a clone. The implementation is :mod:`equirl.cli.verify`.
"""

import sys

from equirl.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["verify", *sys.argv[1:]]))
