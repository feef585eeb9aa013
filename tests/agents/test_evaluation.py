"""Evaluation logging in SB3's conventions: every evaluation point in tensorboard at its own step, npz and CSV."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from equirl.agents.evaluation import CSV_FIELDS, EvalCSVCallback
from equirl.agents.hyperparams import pretrained_path
from equirl.agents.training import train
from equirl.agents.transfer import run_transfer
from equirl.envs import get_symmetry
from stable_baselines3.common.callbacks import EvalCallback

TINY: dict[str, Any] = {
    "policy": "MlpPolicy",
    "learning_rate": 1e-3,
    "batch_size": 32,
    "buffer_size": 5000,
    "learning_starts": 50,
    "target_update_interval": 50,
    "train_freq": 4,
    "gradient_steps": 1,
    "exploration_fraction": 0.5,
    "policy_kwargs": {"net_arch": [16]},
}


def cartpole() -> gym.Env:
    return gym.make("CartPole-v1")


def tb_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """``tag -> [(step, value), ...]`` from every tensorboard event file under ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(folder.rglob("events.out.tfevents.*"))
    assert files, f"no tensorboard event files under {folder}"
    out: dict[str, list[tuple[int, float]]] = {}
    for f in files:
        acc = EventAccumulator(str(f))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return out


def test_callback_is_sb3_eval_callback() -> None:
    cb = EvalCSVCallback(cartpole, eval_freq=10)
    assert isinstance(cb, EvalCallback)
    with pytest.raises(ValueError, match="eval_freq"):
        EvalCSVCallback(cartpole, eval_freq=0)


def test_evaluations_stay_on_the_grid_after_an_extra_one() -> None:
    """Two learn() calls (as λ-equitune's fit, then finetuning): the end of the first is evaluated, and the later
    evaluations stay on the multiples of eval_freq, so runs with and without the split share their budgets."""
    from stable_baselines3 import DQN

    model = DQN(env=cartpole(), seed=0, device="cpu", **TINY)
    cb = EvalCSVCallback(cartpole, eval_freq=200, n_episodes=1)
    model.learn(300, callback=cb)
    model.learn(700, callback=cb, reset_num_timesteps=False)
    assert [int(r["timesteps"]) for r in cb.rows] == [0, 200, 300, 400, 600, 800, 1000]
    plain = DQN(env=cartpole(), seed=0, device="cpu", **TINY)
    one = EvalCSVCallback(cartpole, eval_freq=200, n_episodes=1)
    plain.learn(1000, callback=one)
    assert [int(r["timesteps"]) for r in one.rows] == [0, 200, 400, 600, 800, 1000]


def test_the_evaluation_schedule_does_not_change_training() -> None:
    """Evaluating greedily draws nothing from the training's random streams: evaluations every 200 or every 300
    steps leave the same weights (docs/transfer.md relies on it when two runs differ only in their schedule)."""
    from stable_baselines3 import DQN

    def weights(freq: int) -> torch.Tensor:
        model = DQN(env=cartpole(), seed=0, device="cpu", **TINY)
        model.learn(900, callback=EvalCSVCallback(cartpole, eval_freq=freq, n_episodes=1))
        return torch.cat([p.detach().flatten() for p in model.policy.parameters()])

    assert torch.equal(weights(200), weights(300))


def test_every_evaluation_reaches_tensorboard_at_its_step(tmp_path: Path) -> None:
    """13 evaluations (start, every 100 steps, end), most between two episode ends: all 13 are logged."""
    res = train(
        cartpole,
        "lambda",
        get_symmetry("CartPole-v1"),
        TINY,
        seed=0,
        total_timesteps=1160,
        eval_freq=100,
        n_eval_episodes=2,
        out_dir=tmp_path,
        tensorboard_log=str(tmp_path / "tb"),
    )
    steps = [int(r["timesteps"]) for r in res.curve]
    assert steps == [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1160]
    scalars = tb_scalars(tmp_path / "tb")
    logged = dict(scalars["eval/mean_reward"])
    assert sorted(logged) == steps  # each point once, at its own step
    for r in res.curve:
        assert logged[int(r["timesteps"])] == pytest.approx(r["mean_return"], rel=1e-6)
        assert dict(scalars["eval/mean_ep_length"])[int(r["timesteps"])] == pytest.approx(r["mean_ep_length"])
    # SB3's evaluations.npz and our CSV hold the same points
    npz = np.load(tmp_path / "evaluations.npz")
    assert npz["timesteps"].tolist() == steps
    assert npz["results"].shape == (len(steps), 2) and npz["ep_lengths"].shape == (len(steps), 2)
    np.testing.assert_allclose(npz["results"].mean(1), [r["mean_return"] for r in res.curve])
    with open(tmp_path / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_FIELDS
    assert [int(float(r["timesteps"])) for r in rows] == steps


def test_transfer_run_logs_to_tensorboard(tmp_path: Path) -> None:
    """λ-equitune transfer: the zero-shot point (K = 0), λ's fitting stage and finetuning in one tensorboard run."""
    run = run_transfer(
        pretrained_path("cartpole_plain"),
        get_symmetry("CartPole-v1"),
        "lambda",
        cartpole,
        finetune_steps=300,
        lambda_fit_steps=100,
        eval_freq=100,
        n_eval_episodes=1,
        hyperparams={"learning_starts": 10, "train_freq": 4, "gradient_steps": 1},
        tensorboard_log=tmp_path / "tb",
        log_dir=tmp_path / "evals",
    )
    steps = [int(r["timesteps"]) for r in run.curve]
    assert steps == [0, 100, 200, 300]  # K = 0 before any task step; 100 = the end of λ's fit
    assert run.lambda_fit_steps == 100
    runs = [p for p in (tmp_path / "tb").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs  # one folder for the fit stage and finetuning
    logged = dict(tb_scalars(runs[0])["eval/mean_reward"])
    assert sorted(logged) == steps
    assert logged[0] == pytest.approx(run.zero_shot)
    assert np.load(tmp_path / "evals" / "evaluations.npz")["timesteps"].tolist() == steps
