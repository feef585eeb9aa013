"""Time ``discover_symmetry`` on a list of environments and print a markdown table.

Columns: the group found, how it compares with the catalogue's group for the same name (when there is one),
seconds (wall clock, one CPU thread), candidates pruned before stepping, stepped, verified, and whether the
whole group re-verified. ``--out FILE`` also writes the table (atomically).

    python scripts/discover_timing.py CartPole-v1 Acrobot-v1 MountainCar-v0 equirl/RotGrid-v0
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from equirl import envs


class TwoCartPoles(gym.Env):
    """Two independent CartPoles side by side: obs ``[x, ẋ, θ, θ̇]`` of each (8 entries), action ``2·a1 + a2``;
    reward 1 per step, the episode ends when either pole falls. Symmetry: D4 (mirror either cart, swap them)."""

    observation_space = gym.spaces.Box(
        np.tile(CartPoleEnv().observation_space.low, 2), np.tile(CartPoleEnv().observation_space.high, 2)
    )
    action_space = gym.spaces.Discrete(4)

    def __init__(self) -> None:
        self.carts = (CartPoleEnv(), CartPoleEnv())

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        obs = [c.reset(seed=None if seed is None else seed + i)[0] for i, c in enumerate(self.carts)]
        return np.concatenate(obs), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = (int(action) // 2, int(action) % 2)
        out = [c.step(ai) for c, ai in zip(self.carts, a, strict=True)]
        return np.concatenate([o[0] for o in out]), 1.0, bool(out[0][2] or out[1][2]), False, {}


def two_cartpoles() -> gym.Env:
    return gym.wrappers.TimeLimit(TwoCartPoles(), 500)


TWO_CARTPOLES_CODEC = envs.ObsStateCodec(
    observe=lambda u: np.concatenate([np.array(c.state, dtype=np.float64) for c in u.carts]),
    set_obs=lambda u, o: [setattr(c, "state", np.array(o[4 * i : 4 * i + 4])) for i, c in enumerate(u.carts)] and None,
)

DEFAULT = [
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "equirl/NoisyCartPole-v0",
    "equirl/RotGrid-v0",
    "equirl/RotGrid-Maze-v0",
    "MiniGrid-Empty-8x8-v0",
    "MiniGrid-DoorKey-5x5-v0",
    "MiniGrid-Empty-6x6-v0/full-D4",
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("envs", nargs="*", default=DEFAULT)
    p.add_argument("--verify-steps", type=int, default=200)
    p.add_argument("--out", default=None)
    p.add_argument("--no-8d", action="store_true", help="skip the 8-dimensional TwoCartPoles search")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = [
        "| environment | found | catalogue | seconds | pruned before stepping | stepped | verified | whole group |",
        "|---|---|---|---|---|---|---|---|",
    ]
    runs: list[tuple[str, dict]] = [(n, {}) for n in args.envs]
    if not args.no_8d:
        runs.append(("TwoCartPoles (8-dim, script-local)", {"codec": TWO_CARTPOLES_CODEC}))
    for name, kw in runs:
        target = two_cartpoles if kw else name
        r = envs.discover_symmetry(target, verify_steps=args.verify_steps, **kw)
        catalogue = envs.get_symmetry(name).group.name if name in envs.list_symmetries() else "—"
        if kw:
            print(r)
        verified = sum(c.verdict in ("verified", "in the group") for c in r.candidates)
        whole = "—" if r.verification is None else ("OK" if r.verification.ok else "FAILED")
        rows.append(
            f"| `{name}` | {r.group} | {catalogue} | {r.seconds:.1f} | {sum(r.pruned.values())} | "
            f"{len(r.candidates)} | {verified} | {whole} ({'statistical' if r.stochastic else 'lockstep'}) |"
        )
        print(rows[-1], flush=True)
    text = "\n".join(rows)
    print(text)
    if args.out:
        out = Path(args.out)
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        tmp.write_text(text + "\n")
        tmp.replace(out)


if __name__ == "__main__":
    main()
