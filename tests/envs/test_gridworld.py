"""RotGrid: dynamics, variants, checkers, exact symmetry."""

from __future__ import annotations

import warnings
from pathlib import Path

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


# -- rendering and use by id (gymnasium and SB3 conventions) -------------------------------------
def _tile_centres(img: np.ndarray, tile: int) -> np.ndarray:
    return img[tile // 2 :: tile, tile // 2 :: tile]


def test_rgb_array_shows_the_state() -> None:
    """Each tile's centre has its cell's colour, so the picture is the observation, oriented the same way."""
    env = RotGridEnv(layout="maze", start="center", render_mode="rgb_array", tile_size=8)
    obs, _ = env.reset(seed=0)
    env.step(RIGHT)
    obs = env.get_state()[0]
    img = env.render()
    assert isinstance(img, np.ndarray) and img.shape == (56, 56, 3) and img.dtype == np.uint8
    centres = _tile_centres(img, 8)
    from equirl.envs.gridworld import _COLOURS

    for plane, name in ((WALL, "wall"), (HAZARD, "hazard"), (GOAL, "goal"), (AGENT, "agent")):
        cells = obs[plane] == 1
        assert cells.any()
        assert (centres[cells] == _COLOURS[name]).all(), name
    free = ~obs.any(0)
    assert (centres[free] == _COLOURS["free"]).all()
    # rendering the rotated state gives the rotated picture (at tile centres)
    env.set_state((np.rot90(obs, 1, axes=(1, 2)).copy(), 0))
    assert np.array_equal(_tile_centres(env.render(), 8), np.rot90(centres, 1, axes=(0, 1)))
    assert RotGridEnv(render_mode="ansi").render() is not None
    with pytest.raises(ValueError, match="render_mode"):
        RotGridEnv(render_mode="video")


def test_human_mode_without_display(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pygame")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # a window on SDL's headless driver
    env = gym.make("equirl/RotGrid-v0", render_mode="human")
    env.reset(seed=0)
    env.step(0)  # gymnasium's human mode renders on reset and step
    assert env.unwrapped._window is not None
    env.close()
    assert env.unwrapped._window is None


def test_sb3_uses_rotgrid_by_id() -> None:
    """``DQN("MlpPolicy", id)``, ``make_vec_env`` and ``SubprocVecEnv`` by id (SB3 asks for rgb_array)."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    model = DQN("MlpPolicy", "equirl/RotGrid-v0", learning_starts=50, seed=0)
    model.learn(100)
    assert model.env.render_mode == "rgb_array" and model.env.render().ndim == 3
    venv = make_vec_env("equirl/RotGrid-Corner-v0", n_envs=2, vec_env_cls=SubprocVecEnv, seed=0)
    try:
        obs = venv.reset()
        assert obs.shape == (2, 4, 7, 7) and obs[:, GOAL, 6, 6].all()
        assert venv.get_images()[0].shape == (112, 112, 3)
    finally:
        venv.close()


def test_record_gif(tmp_path: Path) -> None:
    imageio = pytest.importorskip("imageio.v2")

    class GoDown:  # walks down, then right: reaches the bottom-right goal from the centre
        def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
            r, c = np.argwhere(obs[AGENT])[0]
            return np.array(DOWN if r < 6 else RIGHT), None

    env = gym.make("equirl/RotGrid-Corner-v0", start="center", render_mode="rgb_array")
    path = envs.record_gif(GoDown(), env, tmp_path / "walk.gif", fps=4, hold_last=2)
    frames = imageio.mimread(path)
    assert len(frames) == 1 + 6  # the start, then 3 down + 3 right
    assert frames[0].shape[:2] == (112, 112)
    from PIL import Image

    with Image.open(path) as gif:
        gif.seek(gif.n_frames - 1)
        assert gif.info["duration"] == 750  # the last frame is held 1 + 2 frame-times of 250 ms
    with pytest.raises(FileExistsError, match="overwrite"):
        envs.record_gif(GoDown(), env, path)

    class Stay:  # walks into the top wall from the top row: times out
        def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
            return np.array(UP), None

    returns: list[list[float]] = []
    pair = envs.record_gif([GoDown(), Stay()], env, tmp_path / "pair.gif", episode_returns=returns)
    frames = imageio.mimread(pair)
    assert frames[0].shape[:2] == (112, 112 + 4 + 112)
    assert returns[0] == [pytest.approx(0.95)] and returns[1][0] < 0  # one each: goal after 6 steps, a time-out
    with pytest.raises(ValueError, match="rgb_array"):
        envs.record_frames(GoDown(), gym.make("equirl/RotGrid-v0"))


@pytest.mark.slow
def test_sb3_dqn_learns_rotgrid_by_id() -> None:
    """Plain SB3 DQN on the id alone, with the entry's hyperparameters from dqn.yml, reaches the goal."""
    from equirl.agents.hyperparams import load_hyperparams, split_hyperparams
    from stable_baselines3 import DQN
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)
    dqn_kwargs, policy_kwargs, _ = split_hyperparams(load_hyperparams("equirl/RotGrid-Corner-v0"))
    model = DQN("MlpPolicy", "equirl/RotGrid-Corner-v0", policy_kwargs=policy_kwargs, seed=0, **dqn_kwargs)
    model.learn(20_000)
    mean, _ = evaluate_policy(model, gym.make("equirl/RotGrid-Corner-v0"), n_eval_episodes=20)
    assert mean > 0.8  # +1 at the goal minus 0.01 a step: 0.88-0.99 from any start
