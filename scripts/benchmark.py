"""Sample-efficiency benchmark: plain vs equivariant DQN over environments x methods x seeds.

A thin wrapper around ``equirl bench`` (the same arguments; ``equirl bench --help`` lists them), kept so
that ``python scripts/benchmark.py ...`` works from a clone. The implementation is :mod:`equirl.cli.bench`.
"""

import sys

from equirl.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
