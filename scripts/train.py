"""Train a plain or equivariant DQN on a catalogue environment.

A thin wrapper around ``equirl train`` (the same arguments; ``equirl train --help`` lists them), kept so
that ``python scripts/train.py ...`` works from a clone. The implementation is :mod:`equirl.cli.train`.
"""

import sys

from equirl.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *sys.argv[1:]]))
