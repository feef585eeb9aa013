"""Slow learning checks: equivariant DQNs train on RotGrid, MiniGrid-Empty-8x8 and MiniGrid-DoorKey-5x5."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import DQN

import envs
from agents import EquiDQNPolicy, SmallKernelCNN
from equirl import equivariance_error

pytestmark = pytest.mark.slow


def _train(name: str, steps: int, method: str = "equitune") -> DQN:
    torch.set_num_threads(1)
    env = envs.make_env(name)
    model = DQN(
        EquiDQNPolicy,
        env,
        learning_rate=5e-4,
        buffer_size=50_000,
        learning_starts=1000,
        batch_size=64,
        train_freq=4,
        target_update_interval=500,
        exploration_fraction=0.3,
        exploration_final_eps=0.05,
        policy_kwargs=dict(
            symmetry=envs.get_symmetry(name),
            method=method,
            net_arch=[64],
            features_extractor_class=SmallKernelCNN,
            features_extractor_kwargs=dict(features_dim=64),
        ),
        seed=0,
        device="cpu",
    )
    model.learn(steps)
    return model


def _greedy_return(model: DQN, name: str, episodes: int = 20) -> float:
    env = envs.make_env(name)
    total = 0.0
    for i in range(episodes):
        obs, _ = env.reset(seed=10_000 + i)
        done = False
        while not done:
            obs, r, term, trunc, _ = env.step(int(model.predict(obs, deterministic=True)[0]))
            total += float(r)
            done = term or trunc
    return total / episodes


def _check_equivariant(model: DQN, name: str) -> None:
    env = envs.make_env(name)
    obs = np.stack([env.reset(seed=s)[0] for s in range(8)])
    x, _ = model.policy.obs_to_tensor(obs)
    assert equivariance_error(model.q_net, envs.get_symmetry(name), x) <= 1e-5
    assert equivariance_error(model.q_net_target, envs.get_symmetry(name), x) <= 1e-5


def test_rotgrid_trains() -> None:
    """Trains and stays equivariant (online and target networks). Solving is not asserted yet: with these
    untuned settings the first look (docs/envs.md) saw 70% success at 2k steps, then a collapse by 6k."""
    model = _train("equirl/RotGrid-v0", 8_000)
    _check_equivariant(model, "equirl/RotGrid-v0")
    assert np.isfinite(_greedy_return(model, "equirl/RotGrid-v0"))


def test_minigrid_empty_8x8_trains() -> None:
    """Trains and stays equivariant. Not asserted: solving; with these settings neither plain nor
    equivariant DQN reached the goal greedily within 25k steps (docs/envs.md, first look)."""
    model = _train("MiniGrid-Empty-8x8-v0", 25_000)
    _check_equivariant(model, "MiniGrid-Empty-8x8-v0")
    assert np.isfinite(_greedy_return(model, "MiniGrid-Empty-8x8-v0", episodes=3))


def test_minigrid_doorkey_5x5_trains() -> None:
    """DoorKey needs far more steps to solve; here: it trains, stays equivariant, Q-values stay finite."""
    model = _train("MiniGrid-DoorKey-5x5-v0/full-D4", 3_000, method="lambda")
    _check_equivariant(model, "MiniGrid-DoorKey-5x5-v0/full-D4")
    model2 = _train("MiniGrid-DoorKey-5x5-v0", 3_000, method="lambda")
    _check_equivariant(model2, "MiniGrid-DoorKey-5x5-v0")
