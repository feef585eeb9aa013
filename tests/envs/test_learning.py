"""Slow learning checks: equivariant DQNs train on RotGrid, MiniGrid-Empty-8x8 and MiniGrid-DoorKey-5x5."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from equirl.agents import build_dqn, evaluate, load_hyperparams
from stable_baselines3 import DQN

from equirl import envs, equivariance_error

pytestmark = pytest.mark.slow


# Which dqn.yml entry each environment trains with (the same pairing as the package's benchmark.yml).
HYPERPARAMS_FROM = {"equirl/RotGrid": "equirl/RotGrid-Corner-v0", "MiniGrid": "MiniGrid-Empty-5x5-v0"}


def _train(name: str, steps: int, method: str = "equitune") -> DQN:
    torch.set_num_threads(1)
    entry = next(v for k, v in HYPERPARAMS_FROM.items() if name.startswith(k))
    model = build_dqn(envs.make_env(name), method, envs.get_symmetry(name), load_hyperparams(entry), device="cpu")
    model.learn(steps)
    return model


def _greedy_return(model: DQN, name: str, episodes: int = 20) -> float:
    return evaluate(model, lambda: envs.make_env(name), episodes)[0]


def _check_equivariant(model: DQN, name: str) -> None:
    env = envs.make_env(name)
    obs = np.stack([env.reset(seed=s)[0] for s in range(8)])
    x, _ = model.policy.obs_to_tensor(obs)
    assert equivariance_error(model.q_net, envs.get_symmetry(name), x) <= 1e-5
    assert equivariance_error(model.q_net_target, envs.get_symmetry(name), x) <= 1e-5


def test_rotgrid_trains() -> None:
    """Trains and stays equivariant (online and target networks); solving is the benchmark's job."""
    model = _train("equirl/RotGrid-v0", 8_000)
    _check_equivariant(model, "equirl/RotGrid-v0")
    assert np.isfinite(_greedy_return(model, "equirl/RotGrid-v0"))


def test_minigrid_empty_8x8_trains() -> None:
    """Trains and stays equivariant; solving is the benchmark's job (docs/benchmark.md)."""
    model = _train("MiniGrid-Empty-8x8-v0", 25_000)
    _check_equivariant(model, "MiniGrid-Empty-8x8-v0")
    assert np.isfinite(_greedy_return(model, "MiniGrid-Empty-8x8-v0", episodes=3))


def test_minigrid_doorkey_5x5_trains() -> None:
    """DoorKey needs far more steps to solve; here: it trains, stays equivariant, Q-values stay finite."""
    model = _train("MiniGrid-DoorKey-5x5-v0/full-D4", 3_000, method="lambda")
    _check_equivariant(model, "MiniGrid-DoorKey-5x5-v0/full-D4")
    model2 = _train("MiniGrid-DoorKey-5x5-v0", 3_000, method="lambda")
    _check_equivariant(model2, "MiniGrid-DoorKey-5x5-v0")
