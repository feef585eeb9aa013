"""Every algorithm through one training path: build_agent, train(algo=...), n_envs, the algorithm's files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from equirl.agents.algorithms import ALGORITHMS, get_algorithm
from equirl.agents.hyperparams import known_environments, load_hyperparams
from equirl.agents.training import build_agent, build_dqn, train
from equirl.envs import get_symmetry, make_env
from stable_baselines3.common.vec_env import VecEnv

TINY_PPO: dict[str, Any] = {
    "n_envs": 2,
    "n_steps": 32,
    "batch_size": 32,
    "n_epochs": 1,
    "policy_kwargs": {"net_arch": [16]},
}


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
@pytest.mark.parametrize("method", ["plain", "lambda"])
def test_build_agent_uses_the_registry(algo: str, method: str) -> None:
    """The model is the algorithm's class, the policy its equivariant one (plain: SB3's)."""
    if algo == "qrdqn":
        pytest.importorskip("sb3_contrib")
    a = get_algorithm(algo)
    hp = load_hyperparams("CartPole-v1", algo=algo)
    sym = None if method == "plain" else get_symmetry("CartPole-v1")
    model = build_agent(algo, gym.make("CartPole-v1"), method, sym, hp, device="cpu")
    assert type(model) is a.model_class()
    assert (type(model.policy) is a.policy_class()) == (method != "plain")


def test_build_agent_refuses_another_algorithms_entry() -> None:
    hp = load_hyperparams("CartPole-v1", algo="dqn")
    with pytest.raises(ValueError, match=r"not arguments of PPO.*algo='ppo'"):
        build_agent("ppo", gym.make("CartPole-v1"), "plain", None, hp)
    with pytest.raises(ValueError, match="Unknown algorithm 'sac'"):
        build_agent("sac", gym.make("CartPole-v1"), "plain", None, hp)


def test_build_dqn_is_build_agent() -> None:
    hp = load_hyperparams("CartPole-v1")
    a = build_dqn(gym.make("CartPole-v1"), "equitune", get_symmetry("CartPole-v1"), hp, seed=3, device="cpu")
    b = build_agent("dqn", gym.make("CartPole-v1"), "equitune", get_symmetry("CartPole-v1"), hp, seed=3, device="cpu")
    sa, sb = a.policy.state_dict(), b.policy.state_dict()
    assert sa.keys() == sb.keys() and all((sa[k] == sb[k]).all() for k in sa)


def test_train_ppo_vectorised_records_algo(tmp_path: Path) -> None:
    """n_envs gives PPO that many training environments; evaluation plays one; the records name the algorithm."""
    result = train(
        lambda: make_env("CartPole-v1"),
        "equitune",
        get_symmetry("CartPole-v1"),
        TINY_PPO,
        seed=0,
        total_timesteps=128,
        eval_freq=64,
        n_eval_episodes=2,
        out_dir=tmp_path,
        algo="ppo",
        device="cpu",
    )
    env = result.model.get_env()
    assert isinstance(env, VecEnv) and env.num_envs == 2
    assert result.algo == "ppo" and result.timesteps == 128
    assert [r["timesteps"] for r in result.curve] == [0.0, 64.0, 128.0]
    assert json.loads((tmp_path / "model.json").read_text())["algo"] == "ppo"
    assert json.loads((tmp_path / "run.json").read_text())["algo"] == "ppo"
    assert (tmp_path / "model.zip").exists()


def test_train_pendulum_ppo_continuous(tmp_path: Path) -> None:
    hp = {"n_envs": 1, "n_steps": 64, "batch_size": 32, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}}
    result = train(lambda: make_env("Pendulum-v1"), "lambda", get_symmetry("Pendulum-v1"), hp,
                   total_timesteps=64, n_eval_episodes=1, algo="ppo", device="cpu")  # fmt: skip
    assert result.timesteps == 64 and result.mean_return < 0


def test_checkpoints_are_dqn_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="DQN-only"):
        train(lambda: make_env("CartPole-v1"), "plain", None, TINY_PPO, total_timesteps=64, out_dir=tmp_path,
              checkpoint_freq=32, algo="ppo")  # fmt: skip
    with pytest.raises(ValueError, match="DQN-only"):
        train(lambda: make_env("CartPole-v1"), "plain", None, TINY_PPO, total_timesteps=64, out_dir=tmp_path,
              resume=True, algo="a2c")  # fmt: skip


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_algorithm_has_its_file(algo: str) -> None:
    """Each algorithm's hyperparams_file exists and every entry in it loads for that algorithm."""
    if algo == "qrdqn":
        pytest.importorskip("sb3_contrib")
    path = get_algorithm(algo).hyperparams_file
    assert path.exists()
    envs = known_environments(algo=algo)
    assert {"CartPole-v1", "Acrobot-v1"} <= set(envs)
    for env_id in envs:
        load_hyperparams(env_id, algo=algo)
