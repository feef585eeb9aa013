"""PPO or QR-DQN on CartPole-v1, plain vs equivariant (EquiActorCriticPolicy, EquiQRDQNPolicy), a short
budget: raw results and a table.

    python scripts/bench_actor_critic.py run --methods plain lambda --seeds 0 1 2 3 4 --steps 20000 --out docs/benchmark/ppo_cartpole
    python scripts/bench_actor_critic.py table --out docs/benchmark/ppo_cartpole
    python scripts/bench_actor_critic.py run --algo qrdqn --steps 20000 --out docs/benchmark/qrdqn_cartpole

``run`` writes one JSON file per (method, seed) (never overwriting one that exists); ``table`` prints the
final greedy return (10 episodes) per method: IQM and mean with 95% stratified-bootstrap intervals, sample
std, P(method > plain), and the training-time ratio to plain. Hyperparameters: rl-zoo3's PPO CartPole-v1
(8 envs, n_steps 32, batch 256, gae_lambda 0.8, gamma 0.98, n_epochs 20, lr 1e-3 and clip 0.2, both
linear); for QR-DQN rl-zoo3's QR-DQN CartPole-v1 (lr 2.3e-3, batch 64, buffer 1e5, learning_starts 1000,
gamma 0.99, target_update_interval 10, train_freq 256, gradient_steps 128, exploration 0.16 / 0.04,
net_arch [256, 256], 10 quantiles). Budgets cut to ``--steps``. One torch thread.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from equirl.agents import EquiActorCriticPolicy
from equirl.agents.evaluation import evaluate_episodes
from equirl.agents.io import write_atomic
from equirl.agents.stats import bootstrap_ci, iqm, mean, probability_of_improvement, sample_std
from equirl.envs import get_symmetry
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

ENV = "CartPole-v1"


def linear(start: float):  # noqa: ANN201 - SB3 schedule
    return lambda progress: progress * start


def make_model(algo: str, method: str, seed: int) -> Any:
    """The PPO or QR-DQN model for ``method`` ("plain" or one of equirl.METHODS) with rl-zoo3's hyperparameters."""
    sym = dict(symmetry=get_symmetry(ENV), method=method) if method != "plain" else {}
    if algo == "qrdqn":
        from equirl.agents import EquiQRDQNPolicy
        from sb3_contrib import QRDQN

        return QRDQN(EquiQRDQNPolicy if sym else "MlpPolicy", ENV, learning_rate=2.3e-3, batch_size=64,
                     buffer_size=100_000, learning_starts=1000, gamma=0.99, target_update_interval=10,
                     train_freq=256, gradient_steps=128, exploration_fraction=0.16, exploration_final_eps=0.04,
                     policy_kwargs=dict(net_arch=[256, 256], n_quantiles=10, **sym), seed=seed, device="cpu")  # fmt: skip
    policy: Any = EquiActorCriticPolicy if sym else "MlpPolicy"
    return PPO(policy, make_vec_env(ENV, n_envs=8, seed=seed), n_steps=32, batch_size=256, gae_lambda=0.8,
               gamma=0.98, n_epochs=20, ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2),
               policy_kwargs=sym, seed=seed, device="cpu")  # fmt: skip


def run_one(algo: str, method: str, seed: int, steps: int, out: Path) -> None:
    path = out / f"{method}_seed{seed}.json"
    if path.exists():
        print(f"skip {path} (exists)")
        return
    th.set_num_threads(1)
    model = make_model(algo, method, seed)
    start = time.perf_counter()
    model.learn(steps)
    seconds = time.perf_counter() - start
    returns, _ = evaluate_episodes(model, lambda: gym.make(ENV), n_episodes=10)
    row = dict(env=ENV, algo=algo.upper(), method=method, seed=seed, steps=steps, train_seconds=seconds,
               final_return=float(np.mean(returns)), returns=returns)  # fmt: skip
    write_atomic(path, json.dumps(row, indent=1) + "\n")
    print(row)


def table(out: Path) -> None:
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*_seed*.json"))]
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["method"], []).append(r)
    plain = [r["final_return"] for r in by.get("plain", [])]
    plain_time = float(np.mean([r["train_seconds"] for r in by["plain"]])) if plain else float("nan")
    print(f"{rows[0]['algo'] if rows else '?'} {ENV}, {rows[0]['steps'] if rows else '?'} steps, final greedy return over 10 episodes")
    print("| method | n | IQM [95% CI] | mean [95% CI] | ± (sample std) | P(> plain) | time / plain |")
    print("|---|---|---|---|---|---|---|")
    for method in sorted(by, key=lambda m: (m != "plain", m)):
        rs = by[method]
        s = [r["final_return"] for r in rs]
        lo, hi = bootstrap_ci(s, iqm)
        mlo, mhi = bootstrap_ci(s, mean)
        poi = f"{probability_of_improvement(s, plain):.2f}" if plain and method != "plain" else "-"
        ratio = float(np.mean([r["train_seconds"] for r in rs])) / plain_time
        std = f"{sample_std(s):.1f}" if len(s) > 1 else "-"
        print(f"| {method} | {len(s)} | {iqm(s):.1f} [{lo:.1f}, {hi:.1f}] | {mean(s):.1f} [{mlo:.1f}, {mhi:.1f}] | "
              f"{std} | {poi} | {ratio:.2f} |")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["run", "table"])
    p.add_argument("--algo", choices=["ppo", "qrdqn"], default="ppo")
    p.add_argument("--methods", nargs="+", default=["plain", "lambda"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--out", type=Path, default=Path("docs/benchmark/ppo_cartpole"))
    a = p.parse_args()
    if a.command == "table":
        table(a.out)
        return
    a.out.mkdir(parents=True, exist_ok=True)
    for seed in a.seeds:
        for method in a.methods:
            run_one(a.algo, method, seed, a.steps, a.out)


if __name__ == "__main__":
    main()
