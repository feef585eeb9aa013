"""Building, training and evaluating plain and equivariant DQN agents with one code path.

The environment and its symmetry come from the caller (``envs``), the hyperparameters from
``agents/hyperparams`` (:func:`agents.hyperparams.load_hyperparams`), so that plain DQN and the
three equivariant methods differ only in the policy.
"""

from __future__ import annotations

import json
import pickle
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch as th
from equirl.agents.callbacks import GroupWeightLogger
from equirl.agents.evaluation import EvalCSVCallback, evaluate
from equirl.agents.hyperparams import split_hyperparams
from equirl.agents.policies import EquiDQNPolicy
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import Monitor

from equirl import METHODS, Symmetry
from equirl.extras import require

__all__ = [
    "PLAIN",
    "ALL_METHODS",
    "build_dqn",
    "evaluate",
    "EvalCSVCallback",
    "check_logging_extras",
    "CheckpointCallback",
    "TrainResult",
    "train",
    "latest_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "write_metadata",
    "read_metadata",
]

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
        symmetry = symmetry if symmetry is not None else equi_kwargs.pop("symmetry", None)  # a zoo entry's name
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


class CheckpointCallback(BaseCallback):
    """Saves a resumable checkpoint every ``save_freq`` environment steps (see :func:`save_checkpoint`).

    Checkpoints are taken at the start of a rollout, the one point of SB3's off-policy loop where
    no transition or gradient step is half done; with SB3's ``train_freq`` of ``k`` steps they land
    on the first multiple of ``k`` at or after each multiple of ``save_freq``.

    :param directory: where ``ckpt_<steps>/`` folders and the ``latest`` pointer go.
    :param save_freq: environment steps between checkpoints (>= 1).
    :param total_timesteps: the run's planned length, stored so that a resume knows where to stop.
    :param extra_state: ``() -> dict`` of picklable state to store with it (other callbacks' state).
    :param keep: how many checkpoints to keep (older ones are deleted).
    """

    def __init__(
        self,
        directory: str | Path,
        save_freq: int,
        total_timesteps: int,
        extra_state: Callable[[], dict[str, Any]] | None = None,
        keep: int = 2,
    ) -> None:
        super().__init__()
        if save_freq < 1:
            raise ValueError(f"save_freq must be >= 1 environment step, got {save_freq}.")
        self.directory = Path(directory)
        self.save_freq = save_freq
        self.total_timesteps = total_timesteps
        self.extra_state = extra_state
        self.keep = max(1, keep)
        self._last = 0

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if self.num_timesteps > 0 and self.num_timesteps - self._last >= self.save_freq:
            extra = self.extra_state() if self.extra_state else {}
            save_checkpoint(self.model, self.directory, self.total_timesteps, extra, keep=self.keep)  # type: ignore[arg-type]
            self._last = self.num_timesteps


def _rng_state(model: DQN) -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": th.get_rng_state(),
        "action_space": model.action_space.np_random.bit_generator.state,
    }


def _set_rng_state(model: DQN, state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    th.set_rng_state(state["torch"])
    model.action_space.np_random.bit_generator.state = state["action_space"]


def save_checkpoint(
    model: DQN, directory: str | Path, total_timesteps: int, extra: dict[str, Any] | None = None, keep: int = 2
) -> Path:
    """Write ``directory/ckpt_<steps>/`` with everything a run needs to continue exactly.

    Contents: ``model.zip`` (SB3: weights, optimizer, counters, exploration rate, last observation),
    ``replay_buffer.pkl``, and ``state.pkl`` (the vectorised training environment mid-episode, the
    Python/NumPy/torch RNG states, the action space's RNG used for ε-greedy, ``extra``). The folder is
    written under a temporary name and renamed, then ``directory/latest`` names it; only the newest
    ``keep`` checkpoints stay. Returns the checkpoint folder.
    """
    import cloudpickle

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"ckpt_{model.num_timesteps:09d}"
    tmp = directory / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    model.save(tmp / "model.zip")
    model.save_replay_buffer(tmp / "replay_buffer.pkl")
    try:
        env_bytes: bytes | None = cloudpickle.dumps(model.get_env())
    except Exception:  # noqa: BLE001 - an unpicklable env only costs a reset on resume
        env_bytes = None
    state = {
        "rng": _rng_state(model),
        "env": env_bytes,
        "num_timesteps": model.num_timesteps,
        "total_timesteps": int(total_timesteps),
        "extra": extra or {},
    }
    with open(tmp / "state.pkl", "wb") as f:
        pickle.dump(state, f)
    final = directory / name
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    (directory / "latest").write_text(name + "\n")
    for old in sorted(directory.glob("ckpt_*"))[: -keep or None]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest complete checkpoint folder under ``directory`` (or ``directory/checkpoints``), or None."""
    directory = Path(directory)
    for d in (directory, directory / "checkpoints"):
        pointer = d / "latest"
        if pointer.exists():
            ckpt = d / pointer.read_text().strip()
            if (ckpt / "state.pkl").exists():
                return ckpt
    return None


def load_checkpoint(
    path: str | Path, env_factory: EnvFactory | None = None, device: str = "auto", **load_kwargs: Any
) -> tuple[DQN, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint`; returns ``(model, state)``.

    The training environment is the pickled one, mid-episode, when it could be pickled; otherwise a
    fresh ``env_factory()`` (which is then reset: the one thing that makes a resumed run differ from an
    uninterrupted one). RNG states are restored last, after SB3's ``load`` has re-seeded everything.
    ``state`` holds ``num_timesteps``, ``total_timesteps``, ``extra`` and ``env_restored``.
    """
    import cloudpickle

    path = Path(path)
    with open(path / "state.pkl", "rb") as f:
        state = pickle.load(f)
    env: Any = cloudpickle.loads(state["env"]) if state["env"] is not None else None
    state["env_restored"] = env is not None
    if env is None:
        if env_factory is None:
            raise ValueError(f"Checkpoint {path} holds no environment; pass env_factory to resume it.")
        env = Monitor(env_factory())
    model = DQN.load(path / "model.zip", env=env, device=device, force_reset=env is None, **load_kwargs)
    if not state["env_restored"]:
        model._last_obs = None  # type: ignore[assignment]
    model.load_replay_buffer(path / "replay_buffer.pkl")
    _set_rng_state(model, state["rng"])
    return model, state


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: DQN
    method: str
    seed: int
    timesteps: int
    train_seconds: float  # wall-clock of learning, periodic evaluations excluded
    mean_return: float
    std_return: float
    curve: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int | None = None

    @property
    def steps_per_second(self) -> float:
        return self.timesteps / self.train_seconds if self.train_seconds > 0 else float("nan")


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, type):
        return x.__name__
    return repr(x)


def write_metadata(path: str | Path, **fields: Any) -> dict[str, Any]:
    """Write a small JSON metadata file (values made JSON-safe; classes by name); returns what was written.

    Adds ``versions`` (equirl-agents' dependencies that decide whether a zip loads) and ``created``.
    """
    data = _jsonable(fields)
    data.setdefault(
        "versions",
        {"stable_baselines3": stable_baselines3.__version__, "torch": th.__version__, "gymnasium": gym.__version__},
    )
    data.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
    return data  # type: ignore[no-any-return]


def read_metadata(zip_path: str | Path) -> dict[str, Any]:
    """The metadata JSON next to a model zip (``model.zip`` -> ``model.json``); {} when there is none."""
    p = Path(zip_path).with_suffix(".json")
    if not p.exists():
        return {}
    with open(p) as f:
        return json.load(f)  # type: ignore[no-any-return]


def check_logging_extras(tensorboard_log: str | Path | None, progress_bar: bool) -> None:
    """Raise :class:`equirl.extras.MissingExtraError` naming the ``train`` extra when tensorboard logging or
    SB3's progress bar is asked for and its packages are missing (instead of SB3's error deep inside ``learn``)."""
    if tensorboard_log:
        require("tensorboard", "train", f"Tensorboard logging (tensorboard_log={str(tensorboard_log)!r})")
    if progress_bar:
        require("tqdm", "train", "The progress bar (progress_bar=True)")
        require("rich", "train", "The progress bar (progress_bar=True)")


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
    checkpoint_freq: int | None = None,
    resume: bool = False,
    metadata: dict[str, Any] | None = None,
    keep_checkpoints: int = 2,
    **overrides: Any,
) -> TrainResult:
    """Train one agent (from scratch, or from the newest checkpoint with ``resume``) and evaluate it.

    :param env_factory: ``() -> gym.Env`` (training and evaluation environments are separate).
    :param total_timesteps: default: the entry's ``n_timesteps``.
    :param eval_freq: evaluate every this many steps (default: 10 points), also at the start and the end, into
        ``out_dir/eval.csv``, ``out_dir/evaluations.npz`` (SB3's layout) and the logger (``eval/mean_reward``,
        ``eval/mean_ep_length``, dumped at each evaluation's step; see :class:`EvalCSVCallback`).
    :param tensorboard_log: folder for tensorboard logs (needs the ``train`` extra).
    :param progress_bar: SB3's progress bar (needs the ``train`` extra).
    :param checkpoint_freq: save a resumable checkpoint into ``out_dir/checkpoints`` every this many
        steps (needs ``out_dir``; default: none).
    :param resume: continue from the newest checkpoint in ``out_dir`` if there is one (else start fresh).
        The resumed run reproduces the uninterrupted one exactly when the environment pickles.
    :param metadata: extra fields for ``out_dir/model.json`` (env id, the command, ...).
    Writes ``out_dir/model.zip``, ``out_dir/best_model.zip`` (best periodic evaluation) and ``out_dir/model.json``
    (env, method, steps, seed, evaluation return, hyperparameters, command). Returns a :class:`TrainResult`
    with the final greedy return over ``n_eval_episodes`` and the curve.
    """
    steps = int(total_timesteps if total_timesteps is not None else hyperparams["n_timesteps"])
    out = Path(out_dir) if out_dir else None
    check_logging_extras(tensorboard_log, progress_bar)
    if (checkpoint_freq or resume) and out is None:
        raise ValueError("checkpoint_freq and resume need out_dir (where the checkpoints live).")
    evaluator = EvalCSVCallback(
        env_factory,
        eval_freq or max(1, steps // 10),
        out / "eval.csv" if out else None,
        n_episodes=n_eval_episodes,
        best_model_path=out / "best_model.zip" if out else None,
    )
    ckpt = latest_checkpoint(out / "checkpoints") if (resume and out) else None
    resumed_from: int | None = None
    if ckpt is not None:
        model, state = load_checkpoint(ckpt, env_factory, tensorboard_log=tensorboard_log)
        evaluator.set_state(state["extra"]["eval"])
        resumed_from = int(state["num_timesteps"])
        steps = int(total_timesteps if total_timesteps is not None else state["total_timesteps"])
    else:
        env = Monitor(env_factory())
        model = build_dqn(env, method, symmetry, hyperparams, seed=seed, tensorboard_log=tensorboard_log, **overrides)
    cbs: list[BaseCallback] = [evaluator, GroupWeightLogger(), *(callbacks or [])]
    if checkpoint_freq and out is not None:
        cbs.append(
            CheckpointCallback(
                out / "checkpoints", checkpoint_freq, steps, lambda: {"eval": evaluator.get_state()}, keep_checkpoints
            )
        )
    remaining = steps - model.num_timesteps
    start = time.perf_counter()
    if remaining > 0:
        model.learn(
            remaining,
            callback=CallbackList(cbs),
            progress_bar=progress_bar,
            tb_log_name=f"{method}_s{seed}",
            reset_num_timesteps=resumed_from is None,
        )
    seconds = time.perf_counter() - start - evaluator.eval_seconds  # training only, evaluations excluded
    if not evaluator.rows or evaluator.rows[-1]["timesteps"] != model.num_timesteps:
        evaluator.init_callback(model)
        evaluator._evaluate_now()
    final = evaluator.rows[-1]
    if out is not None:
        model.save(out / "model.zip")
        _, policy_kwargs, equi_kwargs = split_hyperparams(hyperparams)
        write_metadata(
            out / "model.json",
            **{
                **(metadata or {}),
                "method": method,
                "seed": seed,
                "timesteps": int(model.num_timesteps),
                "eval_mean_return": final["mean_return"],
                "eval_std_return": final["std_return"],
                "n_eval_episodes": n_eval_episodes,
                "best_eval": evaluator.best,
                "train_seconds": seconds,
                "resumed_from": resumed_from,
                "policy": type(model.policy).__name__,
                "hyperparams": hyperparams,
                "command": (metadata or {}).get("command", " ".join(sys.argv)),
            },
        )
    return TrainResult(
        model,
        method,
        seed,
        int(model.num_timesteps),
        seconds,
        final["mean_return"],
        final["std_return"],
        list(evaluator.rows),
        resumed_from,
    )
