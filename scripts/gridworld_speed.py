"""Raw steps per second of RotGrid (and of MiniGrid for comparison), and the verifier's checked steps/s.

    python scripts/gridworld_speed.py --steps 200000

Prints a markdown table. Random actions; environments reset on episode end.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from equirl import envs


def env_steps_per_second(make: object, steps: int, n_actions: int, desc: str) -> float:
    """Steps per second of ``make()`` under uniformly random actions (resets included)."""
    env = make()  # type: ignore[operator]
    env.reset(seed=0)
    acts = np.random.default_rng(0).integers(n_actions, size=steps)
    t = time.perf_counter()
    for a in tqdm(acts, desc=desc, mininterval=1.0, leave=False):
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=200_000, help="environment steps per raw measurement")
    p.add_argument("--verify-steps", type=int, default=500, help="verifier steps per seed and element")
    args = p.parse_args()

    rows = []
    for label, make, n_act, steps in [
        ("RotGrid 7x7, RotGridEnv() direct", lambda: envs.RotGridEnv(), 4, args.steps),
        ("RotGrid 7x7, gymnasium.make('equirl/RotGrid-v0')", lambda: gym.make("equirl/RotGrid-v0"), 4, args.steps),
        (
            "RotGrid 7x7 flat, make_env('equirl/RotGrid-v0/flat')",
            lambda: envs.make_env("equirl/RotGrid-v0/flat"),
            4,
            args.steps,
        ),
        (
            "MiniGrid-Empty-8x8 ego one-hot, make_env",
            lambda: envs.make_env("MiniGrid-Empty-8x8-v0"),
            3,
            args.steps // 20,
        ),
        (
            "MiniGrid-Empty-8x8 full one-hot, make_env",
            lambda: envs.make_env("MiniGrid-Empty-8x8-v0/full-D4"),
            3,
            args.steps // 20,
        ),
    ]:
        rows.append((label, env_steps_per_second(make, steps, n_act, label)))
    print("| environment | raw steps/s |\n|---|---|")
    for label, sps in rows:
        print(f"| {label} | {sps:,.0f} |")

    print("\n| verifier: catalogue name | group | checked steps | checked steps/s |\n|---|---|---|---|")
    for name in [
        "CartPole-v1",
        "Acrobot-v1",
        "equirl/RotGrid-v0",
        "equirl/RotGrid-v0/flat",
        "MiniGrid-Empty-8x8-v0",
        "MiniGrid-DoorKey-5x5-v0/full-D4",
    ]:
        r = envs.verify_symmetry(name, seeds=(0, 1, 2), steps=args.verify_steps)
        assert r.ok, str(r)
        print(f"| `{name}` | {r.group} | {r.steps_checked} | {r.steps_per_second:,.0f} |")


if __name__ == "__main__":
    main()
