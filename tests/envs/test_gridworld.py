"""RotGrid: dynamics, variants, checkers, exact symmetry."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from equirl.envs.gridworld import AGENT, DOWN, GOAL, HAZARD, RIGHT, UP, WALL, RotGridEnv
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from equirl import envs

# SB3's checker warns about every 3-D Box that is not a 0..255 image of at least 36x36; ours are 0..1
# one-hot planes on purpose (so SB3 neither transposes nor divides by 255) and small.
_EXPECTED_SB3_WARNINGS = ("is an image but the upper and lower bounds", "minimal resolution", "Treating image space")


def _sb3_check(env: gym.Env) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(env)
    unexpected = [str(w.message) for w in caught if not any(k in str(w.message) for k in _EXPECTED_SB3_WARNINGS)]
    assert not unexpected, unexpected


@pytest.mark.parametrize("env_id", list(envs.ROTGRID_IDS))
@pytest.mark.parametrize("obs_mode", ["image", "flat"])
def test_checkers_pass(env_id: str, obs_mode: str) -> None:
    env = gym.make(env_id, obs_mode=obs_mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium's checker must be silent
        gym_check_env(env.unwrapped)
    _sb3_check(env)


def test_moves_walls_and_rewards() -> None:
    env = RotGridEnv(size=5, goal_corners=(2,), start="center", step_penalty=-0.01)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 5, 5) and obs.dtype == np.uint8
    assert obs[AGENT, 2, 2] == 1 and obs[GOAL, 4, 4] == 1 and obs[AGENT].sum() == 1
    obs, r, term, trunc, _ = env.step(UP)
    assert obs[AGENT, 1, 2] == 1 and r == pytest.approx(-0.01) and not term and not trunc
    env.step(UP)
    obs, *_ = env.step(UP)  # off the grid: stays
    assert obs[AGENT, 0, 2] == 1
    for a in (RIGHT, RIGHT, DOWN, DOWN, DOWN):
        obs, r, term, trunc, _ = env.step(a)
    assert not term
    obs, r, term, trunc, _ = env.step(DOWN)
    assert term and r == 1.0 and obs[AGENT, 4, 4] == 1
    # hazards end the episode with -1; walls block
    maze = RotGridEnv(layout="maze", start="center")
    planes = maze.reset(seed=0)[0]
    assert planes[WALL].sum() > 0 and planes[HAZARD].sum() > 0
    state, steps = maze.get_state()
    state[AGENT] = 0
    state[AGENT, 2, 4] = 1  # next to the hazard at (2, 5)
    maze.set_state((state, steps))
    _, r, term, _, _ = maze.step(RIGHT)
    assert term and r == -1.0
    state[AGENT] = 0
    state[AGENT, 0, 1] = 1  # above the wall at (1, 1)
    maze.set_state((state, 0))
    obs, *_ = maze.step(DOWN)
    assert obs[AGENT, 0, 1] == 1


def test_truncation() -> None:
    env = RotGridEnv(max_steps=3, goal_corners=(0,), start="center")
    env.reset(seed=1)
    flags = [env.step(DOWN)[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_variants() -> None:
    train = gym.make("equirl/RotGrid-Corner-v0")
    test = gym.make("equirl/RotGrid-CornerRotated-v0")
    goals_train = {tuple(np.argwhere(train.reset(seed=s)[0][GOAL])[0]) for s in range(40)}
    goals_test = {tuple(np.argwhere(test.reset(seed=s)[0][GOAL])[0]) for s in range(40)}
    assert goals_train == {(6, 6)}
    assert goals_test == {(0, 0), (0, 6), (6, 0)}
    # a rotated layout is the rotated image of the layout, goal included
    base = gym.make("equirl/RotGrid-Maze-v0").reset(seed=0)[0]
    for k in (1, 2, 3):
        rot = gym.make("equirl/RotGrid-Maze-v0", layout_rotation=k).reset(seed=0)[0]
        assert np.array_equal(rot[:3], np.rot90(base[:3], k, axes=(1, 2)))
    with pytest.raises(ValueError, match="layout"):
        RotGridEnv(layout="maze", size=5)
    with pytest.raises(ValueError, match="goal_corners"):
        RotGridEnv(goal_corners=(4,))


def test_symmetry_is_exact_on_reachable_states() -> None:
    report = envs.verify_symmetry("equirl/RotGrid-Maze-v0", seeds=(0, 1, 2, 3), steps=400)
    assert report.ok and report.max_obs_diff == 0.0 and report.max_reward_diff == 0.0
    # and the flat variant is the same map
    sym_img, sym_flat = envs.get_symmetry("equirl/RotGrid-v0"), envs.get_symmetry("equirl/RotGrid-v0/flat")
    x = torch.randint(0, 2, (5, 4, 7, 7))
    assert torch.equal(sym_img.input_action.orbit(x).reshape(8, 5, -1), sym_flat.input_action.orbit(x.reshape(5, -1)))
