"""First look: does an equivariant DQN learn a catalogue environment faster than plain DQN?

Same hyperparameters, same features extractor (SmallKernelCNN for images), same seeds; the only
difference is ``EquiDQNPolicy(symmetry=envs.get_symmetry(name), method=...)`` versus SB3's plain
``DQNPolicy``. Every ``--eval-every`` steps the greedy policy is evaluated on ``--eval-episodes``
fixed-seed episodes. Prints a markdown table of mean evaluation return per checkpoint.

    python scripts/envs_first_look.py equirl/RotGrid-v0 --steps 15000
    python scripts/envs_first_look.py MiniGrid-Empty-8x8-v0 --steps 30000

This is a first look (one or two seeds, short runs), not the benchmark.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.dqn.policies import DQNPolicy

import envs
from agents import EquiDQNPolicy, SmallKernelCNN


def evaluate(model: DQN, name: str, episodes: int) -> tuple[float, float]:
    """Mean return and success rate (return > 0) of the greedy policy over fixed seeds 10_000..."""
    env = envs.make_env(name)
    rets = []
    for i in range(episodes):
        obs, _ = env.reset(seed=10_000 + i)
        done, ret = False, 0.0
        while not done:
            a, _ = model.predict(obs, deterministic=True)
            obs, r, term, trunc, _ = env.step(int(a))
            ret += float(r)
            done = term or trunc
        rets.append(ret)
    return float(np.mean(rets)), float(np.mean(np.array(rets) > 0))


class EvalEvery(BaseCallback):
    """Evaluates every ``every`` steps into ``self.curve`` as ``(step, mean_return, success)``."""

    def __init__(self, name: str, every: int, episodes: int) -> None:
        super().__init__()
        self.name, self.every, self.episodes = name, every, episodes
        self.curve: list[tuple[int, float, float]] = []

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            self.curve.append((self.num_timesteps, *evaluate(self.model, self.name, self.episodes)))  # type: ignore[arg-type]
        return True


def run(name: str, equivariant: bool, method: str, seed: int, args: argparse.Namespace) -> tuple[list, float]:
    env = envs.make_env(name)
    image = len(env.observation_space.shape) == 3
    pk: dict[str, Any] = dict(net_arch=[64])
    if image:
        pk.update(features_extractor_class=SmallKernelCNN, features_extractor_kwargs=dict(features_dim=64))
    if equivariant:
        pk.update(symmetry=envs.get_symmetry(name), method=method)
    model = DQN(
        EquiDQNPolicy if equivariant else DQNPolicy,
        env,
        learning_rate=args.lr,
        buffer_size=50_000,
        learning_starts=1000,
        batch_size=64,
        gamma=0.99,
        train_freq=4,
        target_update_interval=500,
        exploration_fraction=args.exploration_fraction,
        exploration_final_eps=0.05,
        policy_kwargs=pk,
        seed=seed,
        device="cpu",
    )
    cb = EvalEvery(name, args.eval_every, args.eval_episodes)
    t = time.perf_counter()
    model.learn(args.steps, callback=cb, progress_bar=True)
    return cb.curve, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("env")
    p.add_argument("--steps", type=int, default=15_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--method", default="equitune", choices=["equitune", "equizero", "lambda"])
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--exploration-fraction", type=float, default=0.3)
    p.add_argument("--eval-every", type=int, default=2500)
    p.add_argument("--eval-episodes", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(1)

    results = {}
    for label, equi in (
        ("plain DQN", False),
        (f"equivariant DQN ({args.method}, {envs.get_symmetry(args.env).group.name})", True),
    ):
        for seed in args.seeds:
            curve, secs = run(args.env, equi, args.method, seed, args)
            results[(label, seed)] = (curve, secs)
            print(
                f"{label} seed {seed} ({secs:.0f} s): " + ", ".join(f"{s}: {r:.2f}/{sr:.2f}" for s, r, sr in curve),
                flush=True,
            )
    steps = [s for s, _, _ in next(iter(results.values()))[0]]
    print(f"\n{args.env}: mean greedy return / success rate over {args.eval_episodes} episodes")
    print("| agent | seed | wall s | " + " | ".join(f"{s}" for s in steps) + " |")
    print("|---|---|---|" + "---|" * len(steps))
    for (label, seed), (curve, secs) in results.items():
        cells = " | ".join(f"{r:.2f} / {sr:.2f}" for _, r, sr in curve)
        print(f"| {label} | {seed} | {secs:.0f} | {cells} |")


if __name__ == "__main__":
    main()
