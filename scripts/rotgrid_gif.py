"""A GIF of a pretrained RotGrid agent made equivariant, playing a task it never saw (zero-shot).

    python scripts/rotgrid_gif.py --out docs/img/rotgrid_transfer.gif

The shipped plain agent ``rotgrid_bottom_plain`` was trained with the goal in the bottom-right corner; the task
here puts the goal in a top corner (``goal_corners=(0, 1)``). ``--method`` symmetrises it over D4 without any
training (``equivariant_from_pretrained``); the GIF shows the pretrained agent itself (left) and the symmetrised
one (right) on the same episodes. Prints each episode's return (+1 at the goal, -0.01 per step). Needs the ``gif`` extra (imageio).
``make tables`` redraws ``docs/img/rotgrid_transfer.gif`` the same way (``equirl.agents.reports.agents_gif``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from equirl.agents.hyperparams import PRETRAINED_DIR
from equirl.agents.reports import agents_gif

ENV = "equirl/RotGrid-Corner-v0"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/rotgrid_transfer.gif")
    p.add_argument("--method", default="equitune", choices=("equitune", "equizero", "lambda"))
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fps", type=int, default=5)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        p.error(f"{out} exists; pass --overwrite to replace it.")
    torch.set_num_threads(1)
    returns = agents_gif(
        [PRETRAINED_DIR], out, agent="rotgrid_bottom_plain", env_id=ENV, methods=("plain", args.method),
        env_kwargs={"goal_corners": (0, 1)}, episodes=args.episodes, seed=args.seed, fps=args.fps,
    )  # fmt: skip
    for ep in range(args.episodes):
        print(
            f"episode {ep} (reset seed {args.seed + ep}): plain {returns[0][ep]:.2f}, {args.method} {returns[1][ep]:.2f}"
        )
    print(f"wrote {out} ({out.stat().st_size / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
