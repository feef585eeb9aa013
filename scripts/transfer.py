"""Transfer a pretrained DQN to its environment's transformed tasks with every method.

A thin wrapper around ``equirl transfer`` (the same arguments; ``equirl transfer --help`` lists them), kept so
that ``python scripts/transfer.py ...`` works from a clone. The implementation is :mod:`equirl.cli.transfer`.
"""

import sys

from equirl.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["transfer", *sys.argv[1:]]))
