"""Greedy evaluation of DQN agents, the evaluation callback that logs it the way SB3 does, and the
checks that stop training and evaluation at the first non-finite observation, reward, Q-value or weight.

:class:`EvalCSVCallback` is an SB3 :class:`~stable_baselines3.common.callbacks.EvalCallback`: at every
evaluation it records SB3's tags (``eval/mean_reward``, ``eval/mean_ep_length``, plus ``eval/std_reward``),
dumps the logger at that step (so tensorboard holds every evaluation point at its own step), writes SB3's
``evaluations.npz`` (``timesteps``, ``results``, ``ep_lengths``) and our ``eval.csv`` beside it.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from equirl.agents.io import save_zip_atomic, write_atomic
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback, EventCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecCheckNan, VecEnv

__all__ = [
    "CSV_FIELDS",
    "evaluate",
    "evaluate_episodes",
    "EvalCSVCallback",
    "NonFiniteError",
    "check_finite_weights",
    "checked",
    "FiniteQCallback",
]

EnvFactory = Callable[[], gym.Env]

CSV_FIELDS = ("timesteps", "mean_return", "std_return", "wall_seconds", "mean_ep_length")
"""Columns of ``eval.csv``, one row per evaluation."""


def check_finite_weights(model: BaseAlgorithm, when: str) -> None:
    """Raise :class:`NonFiniteError` when a weight of the Q-network (or its target) is NaN or inf."""
    for name, p in model.policy.named_parameters():
        if not th.isfinite(p).all():
            raise NonFiniteError(
                f"non-finite weight {name} {when} (step {model.num_timesteps}): training diverged, so every "
                "Q-value is NaN or inf. Lower the learning rate or check the rewards."
            )


class NonFiniteError(FloatingPointError):
    """A NaN or inf in an observation, reward, Q-value or weight, found by the package's own entry points."""


def checked(venv: VecEnv) -> VecEnv:
    """``venv`` wrapped in SB3's ``VecCheckNan``: the first NaN or inf observation or reward is an error."""
    return VecCheckNan(venv, raise_exception=True, check_inf=True)


class FiniteQCallback(BaseCallback):
    """Stops training at the end of the first rollout whose last observation gets a non-finite Q-value."""

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        obs = self.model._last_obs  # type: ignore[union-attr]
        if obs is None:
            return
        policy: Any = self.model.policy
        t, _ = policy.obs_to_tensor(obs)
        with th.no_grad():
            q = policy.q_net(t)
        if not th.isfinite(q).all():
            check_finite_weights(self.model, "during training")  # type: ignore[arg-type]
            raise NonFiniteError(f"non-finite Q-values {q.tolist()} at step {self.num_timesteps}.")


def evaluate_episodes(
    model: BaseAlgorithm, env_factory: EnvFactory, n_episodes: int = 10, seed: int = 10_000
) -> tuple[list[float], list[int]]:
    """Undiscounted returns and lengths of ``n_episodes`` greedy episodes on a fresh ``env_factory()``.

    The environment is seeded with ``seed`` first, so every call plays the same starts; it is closed after.
    A NaN or inf observation or reward, or a non-finite weight, stops it with :class:`NonFiniteError`
    (not a silent action 0).
    """
    check_finite_weights(model, "before evaluation")
    env = Monitor(env_factory())
    venv = checked(DummyVecEnv([lambda: env]))
    try:
        env.reset(seed=seed)
        returns, lengths = evaluate_policy(
            model, venv, n_eval_episodes=n_episodes, deterministic=True, return_episode_rewards=True
        )
    finally:
        venv.close()
    return [float(r) for r in returns], [int(n) for n in lengths]  # type: ignore[union-attr]


def evaluate(
    model: BaseAlgorithm, env_factory: EnvFactory, n_episodes: int = 10, seed: int = 10_000
) -> tuple[float, float]:
    """Mean and std of the undiscounted return of the greedy policy over ``n_episodes`` (see :func:`evaluate_episodes`)."""
    returns, _ = evaluate_episodes(model, env_factory, n_episodes, seed)
    return float(np.mean(returns)), float(np.std(returns))


class EvalCSVCallback(EvalCallback):
    """SB3's ``EvalCallback`` on our schedule, with a CSV, the best model and resumable state.

    Evaluates the greedy policy for ``n_episodes`` episodes on a fresh environment from ``env_factory``
    seeded with ``seed`` (the same starts every time): once when training starts (unless an evaluation
    at that step is already recorded), whenever the step count reaches the next multiple of ``eval_freq``
    (a fixed grid: an evaluation in between, such as at the end of an earlier ``learn`` call, does not
    shift it), and when training ends. Each evaluation

    - records ``eval/mean_reward``, ``eval/std_reward``, ``eval/mean_ep_length`` and dumps the logger at
      the current step (SB3's ``EvalCallback`` does the same), so every point reaches tensorboard;
    - appends to ``evaluations_timesteps`` / ``evaluations_results`` / ``evaluations_length`` and, with a
      ``log_path``, rewrites ``log_path/evaluations.npz`` (SB3's layout);
    - appends a row to ``rows`` (with ``train_seconds``: ``wall_seconds`` less the time spent evaluating
      so far, this evaluation included; this callback is the one owner of evaluation time,
      ``eval_seconds``) and rewrites ``csv_path`` (columns :data:`CSV_FIELDS`);
    - with ``best_model_path``, saves the model there when it is the best so far (latest on ties) and
      keeps its row in ``best``.

    :param env_factory: ``() -> gym.Env`` for evaluation (a new environment per evaluation, closed after).
    :param eval_freq: environment steps between evaluations (>= 1).
    :param csv_path: the CSV file (default: none).
    :param n_episodes: episodes per evaluation.
    :param seed: the evaluation environment's seed.
    :param best_model_path: where the best model's zip goes (default: none).
    :param log_path: folder for ``evaluations.npz`` (default: the CSV's folder; none without a CSV).
    """

    def __init__(
        self,
        env_factory: EnvFactory,
        eval_freq: int,
        csv_path: str | Path | None = None,
        n_episodes: int = 10,
        seed: int = 10_000,
        best_model_path: str | Path | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        if eval_freq < 1:
            raise ValueError(f"eval_freq must be >= 1 environment step, got {eval_freq}.")
        # EvalCallback.__init__ would build its environment now; ours are built per evaluation (and
        # closed after), so the attributes it sets are set here instead.
        EventCallback.__init__(self, None, verbose=0)
        self.callback_on_new_best = None
        self.n_eval_episodes = n_episodes
        self.eval_freq = eval_freq
        self.best_mean_reward = -np.inf
        self.last_mean_reward = -np.inf
        self.deterministic = True
        self.render = False
        self.warn = True
        self.eval_env = None  # type: ignore[assignment]
        self.best_model_save_path = None
        self.csv_path = Path(csv_path) if csv_path else None
        folder = Path(log_path) if log_path else (self.csv_path.parent if self.csv_path else None)
        self.log_path = str(folder / "evaluations") if folder else None  # type: ignore[assignment]
        self.evaluations_results: list[list[float]] = []
        self.evaluations_timesteps: list[int] = []
        self.evaluations_length: list[list[int]] = []
        self._is_success_buffer: list[bool] = []
        self.evaluations_successes: list[list[bool]] = []

        self.env_factory = env_factory
        self.n_episodes = n_episodes
        self.seed = seed
        self.rows: list[dict[str, float]] = []
        self.best_model_path = Path(best_model_path) if best_model_path else None
        self.best: dict[str, float] = {}
        self._last = -1
        self._offset = 0.0
        self._start = time.perf_counter()
        self.eval_seconds = 0.0  # time spent evaluating (not training), restored with set_state

    # -- state for checkpoints ----------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """What a checkpoint keeps: the rows and episodes so far, the step of the last evaluation, the wall time."""
        return {
            "rows": [dict(r) for r in self.rows],
            "last": self._last,
            "elapsed": time.perf_counter() - self._start,
            "eval_seconds": self.eval_seconds,
            "best": dict(self.best),
            "evaluations": {
                "timesteps": list(self.evaluations_timesteps),
                "results": [list(r) for r in self.evaluations_results],
                "ep_lengths": [list(n) for n in self.evaluations_length],
            },
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s output; the CSV and ``evaluations.npz`` are rewritten to hold exactly it."""
        self.rows = [dict(r) for r in state["rows"]]
        self._last = int(state["last"])
        self.best = dict(state.get("best", {}))
        self._offset = float(state.get("elapsed", 0.0))
        self.eval_seconds = float(state.get("eval_seconds", 0.0))
        ev = state.get("evaluations", {})
        self.evaluations_timesteps = [int(t) for t in ev.get("timesteps", [])]
        self.evaluations_results = [list(r) for r in ev.get("results", [])]
        self.evaluations_length = [list(n) for n in ev.get("ep_lengths", [])]
        if self.best:
            self.best_mean_reward = float(self.best["mean_return"])
        if self.rows:
            self.last_mean_reward = float(self.rows[-1]["mean_return"])
        self._write_files()

    # -- files --------------------------------------------------------------------------------------
    def _write_files(self) -> None:
        if self.csv_path:
            text = io.StringIO()
            w = csv.writer(text)
            w.writerow(CSV_FIELDS)
            for r in self.rows:
                w.writerow([r.get(k, "") for k in CSV_FIELDS])
            write_atomic(self.csv_path, text.getvalue())
        if self.log_path and self.evaluations_timesteps:
            data = io.BytesIO()
            np.savez(
                data,
                timesteps=np.asarray(self.evaluations_timesteps),
                results=np.asarray(self.evaluations_results, dtype=np.float64),
                ep_lengths=np.asarray(self.evaluations_length, dtype=np.int64),
            )
            write_atomic(self.log_path + ".npz", data.getvalue())

    # -- SB3 hooks ----------------------------------------------------------------------------------
    def _init_callback(self) -> None:
        pass  # folders are made when files are written

    def _on_training_start(self) -> None:
        self._start = time.perf_counter() - self._offset
        if self._last < 0:
            self._evaluate_now()

    def _on_step(self) -> bool:
        # a fixed grid of multiples of eval_freq: an extra evaluation (the end of an earlier learn() call, such as
        # λ-equitune's fit inside a transfer budget) does not shift the later ones, so runs share their budgets K
        if self.num_timesteps // self.eval_freq > self._last // self.eval_freq:
            self._evaluate_now()
        return True

    def _on_training_end(self) -> None:
        if self.num_timesteps != self._last:
            self._evaluate_now()

    def _evaluate_now(self) -> None:
        """Evaluate at the model's current step: log, dump, write files, keep the best model (see the class docstring)."""
        self.num_timesteps = self.model.num_timesteps  # also when called outside ``learn``
        eval_start = time.perf_counter()
        returns, lengths = evaluate_episodes(self.model, self.env_factory, self.n_episodes, self.seed)
        self.eval_seconds += time.perf_counter() - eval_start
        mean, std = float(np.mean(returns)), float(np.std(returns))
        mean_len = float(np.mean(lengths))
        wall = time.perf_counter() - self._start
        row = {
            "timesteps": float(self.num_timesteps),
            "mean_return": mean,
            "std_return": std,
            "wall_seconds": wall,
            "mean_ep_length": mean_len,
            "train_seconds": wall - self.eval_seconds,  # the one place evaluation time is taken out
        }
        self.rows.append(row)
        self._last = self.num_timesteps
        self.evaluations_timesteps.append(int(self.num_timesteps))
        self.evaluations_results.append(returns)
        self.evaluations_length.append(lengths)
        self.last_mean_reward = mean
        if not self.best or mean >= self.best["mean_return"]:  # ties go to the later (longer-trained) model
            self.best = dict(row)
            self.best_mean_reward = mean
            if self.best_model_path:
                save_zip_atomic(self.model, self.best_model_path)
        self._write_files()
        self.logger.record("eval/mean_reward", mean)
        self.logger.record("eval/std_reward", std)
        self.logger.record("eval/mean_ep_length", mean_len)
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
