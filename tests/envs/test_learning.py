"""Slow learning checks: an equivariant DQN solves RotGrid within a stated budget; MiniGrid agents train equivariantly.

The RotGrid bar comes from the committed benchmark (docs/benchmark/, 5 seeds, 10 episodes per
evaluation): from 9k steps on, every evaluation of every equitune run scored >= 0.83 (most 0.95) and
of every equizero-td run 0.95 (docs/benchmark/equizero_td_2core/), while plain DQN scored 0.46-0.71
at 9k steps, the paper's equizero -0.28, and a random policy -0.28. The tests ask for 0.75 at 9k
steps over 20 episodes: a margin of 0.08 below the suite's lowest, and above plain's best.
"""

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


def _train(name: str, steps: int, method: str = "equitune", schedule_steps: int | None = None) -> DQN:
    """Train ``method`` on ``name`` for ``steps``; with ``schedule_steps``, ε decays as in a run of that length."""
    torch.set_num_threads(1)
    entry = next(v for k, v in HYPERPARAMS_FROM.items() if name.startswith(k))
    hp = load_hyperparams(entry)
    if schedule_steps is not None:
        hp["exploration_fraction"] = float(hp["exploration_fraction"]) * schedule_steps / steps
    model = build_dqn(envs.make_env(name), method, envs.get_symmetry(name), hp, device="cpu")
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


ROTGRID_BUDGET = 9_000
"""Environment steps: the first 9k of a benchmark run (dqn.yml's RotGrid entry, ε as in a 15k run)."""
ROTGRID_BAR = 0.75
"""Greedy mean return over 20 episodes that an equivariant agent must reach within ROTGRID_BUDGET."""


def test_rotgrid_equitune_solves_within_budget() -> None:
    """equitune reaches 0.75 within 9k steps (suite: >= 0.83 at every evaluation from 9k) and stays equivariant."""
    model = _train("equirl/RotGrid-v0", ROTGRID_BUDGET, schedule_steps=15_000)
    _check_equivariant(model, "equirl/RotGrid-v0")
    assert _greedy_return(model, "equirl/RotGrid-v0") >= ROTGRID_BAR


def test_rotgrid_equizero_td_solves_within_budget() -> None:
    """equizero-td reaches 0.75 within 9k steps (suite: 0.95 at every evaluation from 9k; the paper's
    equizero never leaves -0.28) and its online and target networks stay equivariant."""
    model = _train("equirl/RotGrid-v0", ROTGRID_BUDGET, method="equizero-td", schedule_steps=15_000)
    _check_equivariant(model, "equirl/RotGrid-v0")
    assert _greedy_return(model, "equirl/RotGrid-v0") >= ROTGRID_BAR


def test_minigrid_empty_8x8_trains() -> None:
    """Trains and stays equivariant. Not a learning check: in the suite 2 of 5 equitune runs solve it
    within 25k steps, too wide a spread for a bar one seed can be held to (docs/benchmark.md)."""
    model = _train("MiniGrid-Empty-8x8-v0", 25_000)
    _check_equivariant(model, "MiniGrid-Empty-8x8-v0")
    assert np.isfinite(_greedy_return(model, "MiniGrid-Empty-8x8-v0", episodes=3))


def test_minigrid_doorkey_5x5_trains() -> None:
    """DoorKey needs far more steps to solve; here: it trains, stays equivariant, Q-values stay finite."""
    model = _train("MiniGrid-DoorKey-5x5-v0/full-D4", 3_000, method="lambda")
    _check_equivariant(model, "MiniGrid-DoorKey-5x5-v0/full-D4")
    model2 = _train("MiniGrid-DoorKey-5x5-v0", 3_000, method="lambda")
    _check_equivariant(model2, "MiniGrid-DoorKey-5x5-v0")
