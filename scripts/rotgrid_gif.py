"""A GIF of a pretrained RotGrid agent made equivariant, playing a task it never saw (zero-shot).

    python scripts/rotgrid_gif.py --out docs/img/rotgrid_transfer.gif

The shipped plain agent ``rotgrid_bottom_plain`` was trained with the goal in the bottom-right corner; the task
here puts the goal in a top corner (``goal_corners=(0, 1)``). ``--method`` symmetrises it over D4 without any
training (``equivariant_from_pretrained``); the GIF shows the pretrained agent itself (left) and the symmetrised
one (right) on the same episodes. Prints each episode's return (+1 at the goal, -0.01 per step). Needs the ``gif`` extra (imageio).
"""

from __future__ import annotations

import argparse

import torch
from equirl.agents import equivariant_from_pretrained
from equirl.agents.hyperparams import pretrained_path
from equirl.envs import get_symmetry, make_env, record_gif

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
    torch.set_num_threads(1)
    pretrained = pretrained_path("rotgrid_bottom_plain")
    plain = equivariant_from_pretrained(pretrained, None, "plain")
    model = equivariant_from_pretrained(pretrained, get_symmetry(ENV), args.method)

    def env():  # type: ignore[no-untyped-def]
        return make_env(ENV, goal_corners=(0, 1), render_mode="rgb_array", tile_size=16)

    returns: list[list[float]] = []
    path = record_gif(
        [plain, model], env(), args.out, args.episodes, args.seed, args.fps, overwrite=args.overwrite,
        episode_returns=returns,
    )  # fmt: skip
    for ep in range(args.episodes):
        print(
            f"episode {ep} (reset seed {args.seed + ep}): plain {returns[0][ep]:.2f}, {args.method} {returns[1][ep]:.2f}"
        )
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
