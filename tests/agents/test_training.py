"""Training entry points: checkpoints, exact resume, metadata, hyperparameter files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import torch as th
from equirl.agents import load_hyperparams
from equirl.agents.hyperparams import known_environments
from equirl.agents.training import latest_checkpoint, read_metadata, train
from equirl.envs import get_symmetry
from stable_baselines3.common.callbacks import BaseCallback

TINY: dict[str, Any] = {
    "policy": "MlpPolicy",
    "learning_rate": 1e-3,
    "batch_size": 32,
    "buffer_size": 5000,
    "learning_starts": 100,
    "gamma": 0.99,
    "target_update_interval": 50,
    "train_freq": 16,
    "gradient_steps": 8,
    "exploration_fraction": 0.5,
    "exploration_final_eps": 0.05,
    "policy_kwargs": {"net_arch": [32, 32]},
}


def cartpole() -> gym.Env:
    return gym.make("CartPole-v1")


class StopAt(BaseCallback):
    """Simulates an interruption: stops training at ``step``."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def _on_step(self) -> bool:
        return self.num_timesteps < self.step


def _state(model: Any) -> dict[str, th.Tensor]:
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


@pytest.mark.parametrize("method", [pytest.param("plain", marks=pytest.mark.slow), "lambda"])
def test_resume_equals_uninterrupted_run(tmp_path: Path, method: str) -> None:
    """Stop after 440 steps, resume from the last checkpoint (384), finish 512: same weights, same curve.

    Exact, because a checkpoint holds the weights, optimizer, replay buffer, the training env mid-episode
    and every RNG state (Python, NumPy, torch, the action space's ε-greedy RNG).
    """
    sym = get_symmetry("CartPole-v1")
    kw = dict(seed=3, total_timesteps=512, eval_freq=256, n_eval_episodes=1, checkpoint_freq=128)
    full = train(cartpole, method, sym, TINY, out_dir=tmp_path / "full", **kw)  # type: ignore[arg-type]
    cut = train(cartpole, method, sym, TINY, out_dir=tmp_path / "cut", callbacks=[StopAt(440)], **kw)  # type: ignore[arg-type]
    assert cut.timesteps < 512
    ckpt = latest_checkpoint(tmp_path / "cut")
    assert ckpt is not None and ckpt.name.startswith("ckpt_")
    resumed = train(cartpole, method, sym, TINY, out_dir=tmp_path / "cut", resume=True, **kw)  # type: ignore[arg-type]
    assert resumed.resumed_from is not None and 128 <= resumed.resumed_from < 440
    assert resumed.timesteps == full.timesteps == 512
    a, b = _state(full.model), _state(resumed.model)
    assert a.keys() == b.keys()
    for k in a:
        assert th.equal(a[k], b[k]), f"{k} differs after resume"
    assert [r["mean_return"] for r in full.curve] == [r["mean_return"] for r in resumed.curve]
    assert [r["timesteps"] for r in full.curve] == [r["timesteps"] for r in resumed.curve]
    # the CSV holds each evaluation once
    lines = (tmp_path / "cut" / "eval.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + len(full.curve)


def test_resume_differs_without_checkpoint_state(tmp_path: Path) -> None:
    """The test above can fail: a run with another seed ends with other weights."""
    kw = dict(total_timesteps=400, eval_freq=400, n_eval_episodes=1)
    a = train(cartpole, "plain", None, TINY, seed=1, **kw)  # type: ignore[arg-type]
    b = train(cartpole, "plain", None, TINY, seed=2, **kw)  # type: ignore[arg-type]
    sa, sb = _state(a.model), _state(b.model)
    assert any(not th.equal(sa[k], sb[k]) for k in sa)


def test_metadata_written(tmp_path: Path) -> None:
    res = train(
        cartpole,
        "equitune",
        get_symmetry("CartPole-v1"),
        TINY,
        seed=0,
        total_timesteps=200,
        n_eval_episodes=1,
        out_dir=tmp_path,
        metadata={"env_id": "CartPole-v1", "command": "pytest"},
    )
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["env_id"] == "CartPole-v1" and meta["method"] == "equitune" and meta["seed"] == 0
    assert meta["timesteps"] >= 200 and meta["command"] == "pytest"
    assert meta["eval_mean_return"] == pytest.approx(res.mean_return)
    assert meta["policy"] == "EquiDQNPolicy"
    assert read_metadata(tmp_path / "model.zip") == meta
    assert (tmp_path / "eval.csv").exists()


def test_resume_requires_out_dir() -> None:
    with pytest.raises(ValueError, match="out_dir"):
        train(cartpole, "plain", None, TINY, total_timesteps=10, resume=True)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1"])
def test_rl_zoo_values_kept(env_id: str) -> None:
    hp = load_hyperparams(env_id)
    expected = {
        "CartPole-v1": {"learning_rate": 2.3e-3, "batch_size": 64, "train_freq": 256, "gradient_steps": 128},
        "Acrobot-v1": {"learning_rate": 6.3e-4, "batch_size": 128, "train_freq": 4, "target_update_interval": 250},
    }[env_id]
    for k, v in expected.items():
        assert hp[k] == v
    assert env_id in known_environments()
