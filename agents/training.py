"""Building, training and evaluating plain and equivariant DQN agents with one code path.

The environment and its symmetry come from the caller (``envs``), the hyperparameters from
``agents/hyperparams`` (:func:`agents.hyperparams.load_hyperparams`), so that plain DQN and the
three equivariant methods differ only in the policy.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from agents.callbacks import GroupWeightLogger
from agents.hyperparams import split_hyperparams
from agents.policies import EquiDQNPolicy
from equirl import METHODS, Symmetry

__all__ = ["PLAIN", "ALL_METHODS", "build_dqn", "evaluate", "EvalCSVCallback", "TrainResult", "train"]

PLAIN = "plain"
ALL_METHODS = (PLAIN, *METHODS)
"""``plain`` (SB3's own policy) and the three equivariant methods."""

EnvFactory = Callable[[], gym.Env]


def build_dqn(
    env: gym.Env | Any,
    method: str,
    symmetry: Symmetry | None,
    hyperparams: dict[str, Any],
    seed: int = 0,
    tensorboard_log: str | None = None,
    device: str = "auto",
    verbose: int = 0,
    **overrides: Any,
) -> DQN:
    """An SB3 DQN for ``method`` in :data:`ALL_METHODS` with the given hyperparameter entry.

    ``plain`` uses the entry's SB3 policy (``MlpPolicy``/``CnnPolicy``); the others use
    :class:`EquiDQNPolicy` with ``symmetry``. ``overrides`` replace DQN arguments of the entry.
    """
    if method not in ALL_METHODS:
        raise ValueError(f"Unknown method {method!r}; expected one of {ALL_METHODS}.")
    dqn_kwargs, policy_kwargs, equi_kwargs = split_hyperparams(hyperparams)
    dqn_kwargs.update(overrides)
    policy: Any
    if method == PLAIN:
        policy = hyperparams.get("policy", "MlpPolicy")
    else:
        if symmetry is None:
            raise ValueError(f"method={method!r} needs a symmetry (for example envs.get_symmetry(env_id)).")
        policy = EquiDQNPolicy
        policy_kwargs = {**policy_kwargs, **equi_kwargs, "symmetry": symmetry, "method": method}
    return DQN(
        policy,
        env,
        policy_kwargs=policy_kwargs,
        seed=seed,
        tensorboard_log=tensorboard_log,
        device=device,
        verbose=verbose,
        **dqn_kwargs,
    )


def evaluate(model: DQN, env_factory: EnvFactory, n_episodes: int = 10, seed: int = 10_000) -> tuple[float, float]:
    """Mean and std of the undiscounted return of the greedy policy over ``n_episodes``."""
    env = Monitor(env_factory())
    env.reset(seed=seed)
    returns, _ = evaluate_policy(model, env, n_eval_episodes=n_episodes, deterministic=True, return_episode_rewards=True)
    env.close()
    return float(np.mean(returns)), float(np.std(returns))


class EvalCSVCallback(BaseCallback):
    """Evaluates the greedy policy every ``eval_freq`` environment steps and appends to a CSV.

    Columns: ``timesteps, mean_return, std_return, wall_seconds``; the same values go to the logger
    as ``eval/mean_return`` and ``eval/std_return``. ``rows`` keeps them in memory.
    """

    def __init__(
        self,
        env_factory: EnvFactory,
        eval_freq: int,
        csv_path: str | Path | None = None,
        n_episodes: int = 10,
        seed: int = 10_000,
    ) -> None:
        super().__init__()
        if eval_freq < 1:
            raise ValueError(f"eval_freq must be >= 1 environment step, got {eval_freq}.")
        self.env_factory = env_factory
        self.eval_freq = eval_freq
        self.csv_path = Path(csv_path) if csv_path else None
        self.n_episodes = n_episodes
        self.seed = seed
        self.rows: list[dict[str, float]] = []
        self._last = -1
        self._start = time.perf_counter()

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()
        if self.csv_path and not self.csv_path.exists():
            self.csv_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.csv_path, "w", newline="") as f:
                csv.writer(f).writerow(["timesteps", "mean_return", "std_return", "wall_seconds"])

    def _evaluate_now(self) -> None:
        mean, std = evaluate(self.model, self.env_factory, self.n_episodes, self.seed)  # type: ignore[arg-type]
        row = {
            "timesteps": float(self.num_timesteps),
            "mean_return": mean,
            "std_return": std,
            "wall_seconds": time.perf_counter() - self._start,
        }
        self.rows.append(row)
        self._last = self.num_timesteps
        self.logger.record("eval/mean_return", mean)
        self.logger.record("eval/std_return", std)
        if self.csv_path:
            with open(self.csv_path, "a", newline="") as f:
                csv.writer(f).writerow([row["timesteps"], mean, std, row["wall_seconds"]])

    def _on_step(self) -> bool:
        if self._last < 0 or self.num_timesteps - self._last >= self.eval_freq:
            self._evaluate_now()
        return True

    def _on_training_end(self) -> None:
        if self.num_timesteps != self._last:
            self._evaluate_now()


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: DQN
    method: str
    seed: int
    timesteps: int
    train_seconds: float
    mean_return: float
    std_return: float
    curve: list[dict[str, float]] = field(default_factory=list)

    @property
    def steps_per_second(self) -> float:
        return self.timesteps / self.train_seconds if self.train_seconds > 0 else float("nan")


def train(
    env_factory: EnvFactory,
    method: str,
    symmetry: Symmetry | None,
    hyperparams: dict[str, Any],
    seed: int = 0,
    total_timesteps: int | None = None,
    eval_freq: int | None = None,
    n_eval_episodes: int = 10,
    out_dir: str | Path | None = None,
    tensorboard_log: str | None = None,
    progress_bar: bool = False,
    callbacks: list[BaseCallback] | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train one agent from scratch and evaluate it.

    :param env_factory: ``() -> gym.Env`` (training and evaluation environments are separate).
    :param total_timesteps: default: the entry's ``n_timesteps``.
    :param eval_freq: evaluate every this many steps into ``out_dir/eval.csv`` (default: 10 points).
    Returns a :class:`TrainResult` with the final greedy return over ``n_eval_episodes`` and the curve.
    """
    steps = int(total_timesteps if total_timesteps is not None else hyperparams["n_timesteps"])
    env = Monitor(env_factory())
    model = build_dqn(env, method, symmetry, hyperparams, seed=seed, tensorboard_log=tensorboard_log, **overrides)
    evaluator = EvalCSVCallback(
        env_factory,
        eval_freq or max(1, steps // 10),
        Path(out_dir) / "eval.csv" if out_dir else None,
        n_episodes=n_eval_episodes,
    )
    cbs: list[BaseCallback] = [evaluator, GroupWeightLogger(), *(callbacks or [])]
    start = time.perf_counter()
    model.learn(steps, callback=CallbackList(cbs), progress_bar=progress_bar, tb_log_name=f"{method}_s{seed}")
    seconds = time.perf_counter() - start
    final = evaluator.rows[-1]
    if out_dir:
        model.save(Path(out_dir) / "model.zip")
    return TrainResult(
        model, method, seed, steps, seconds, final["mean_return"], final["std_return"], list(evaluator.rows)
    )
