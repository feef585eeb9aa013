"""Building, training and evaluating plain and equivariant agents (DQN, QR-DQN, PPO, A2C) with one code path.

The environment and its symmetry come from the caller (``envs``), the algorithm from the registry
(:mod:`equirl.agents.algorithms`), the hyperparameters from ``agents/hyperparams/<algo>.yml``
(:func:`agents.hyperparams.load_hyperparams` with ``algo=``), so that plain and the equivariant methods
differ only in the policy.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch as th
from equirl.agents.algorithms import get_algorithm
from equirl.agents.callbacks import GroupWeightLogger
from equirl.agents.evaluation import (
    EvalCSVCallback,
    FiniteQCallback,
    NonFiniteError,
    checked,
    evaluate,
)
from equirl.agents.hyperparams import model_arguments, split_hyperparams
from equirl.agents.io import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    AgentFormatError,
    agent_data,
    load_agent,
    read_json,
    replace_dir,
    save_zip_atomic,
    write_agent_files,
    write_atomic,
)
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper

from equirl import METHODS, Symmetry
from equirl.extras import require

__all__ = [
    "PLAIN",
    "ALL_METHODS",
    "build_agent",
    "build_dqn",
    "evaluate",
    "NonFiniteError",
    "checked",
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


def build_agent(
    algo: str,
    env: gym.Env | Any,
    method: str,
    symmetry: Symmetry | None,
    hyperparams: dict[str, Any],
    seed: int = 0,
    tensorboard_log: str | None = None,
    device: str = "auto",
    verbose: int = 0,
    **overrides: Any,
) -> BaseAlgorithm:
    """An SB3 model of ``algo`` (a name of :mod:`equirl.agents.algorithms`: ``"dqn"``, ``"qrdqn"``, ``"ppo"``,
    ``"a2c"``) for ``method`` in :data:`ALL_METHODS` with the given hyperparameter entry (``load_hyperparams(...,
    algo=algo)``).

    ``plain`` uses the entry's SB3 policy (``MlpPolicy``/``CnnPolicy``); the others use the algorithm's
    equivariant policy (``Algorithm.policy_class()``) with ``symmetry`` (or the entry's ``equivariant.symmetry``).
    ``overrides`` replace constructor arguments of the entry. ``env`` is used as given: an entry's ``n_envs``
    is for :func:`train`, which builds the vectorised training environment. ``ValueError`` for an unknown
    method or a key that is not an argument of ``algo``'s constructor (an entry meant for another algorithm).
    """
    algorithm = get_algorithm(algo)
    if method not in ALL_METHODS:
        raise ValueError(f"Unknown method {method!r}; expected one of {ALL_METHODS}.")
    model_kwargs, policy_kwargs, equi_kwargs = split_hyperparams(hyperparams)
    model_kwargs.update(overrides)
    foreign = sorted(set(model_kwargs) - model_arguments(algorithm.name))
    if foreign:
        raise ValueError(
            f"{foreign} are not arguments of {algorithm.class_name}: the hyperparameters were meant for another "
            f"algorithm. Load them with load_hyperparams(env_id, algo={algorithm.name!r})."
        )
    policy: Any
    if method == PLAIN:
        policy = hyperparams.get("policy", "MlpPolicy")
    else:
        symmetry = symmetry if symmetry is not None else equi_kwargs.pop("symmetry", None)  # a zoo entry's name
        if symmetry is None:
            raise ValueError(f"method={method!r} needs a symmetry (for example envs.get_symmetry(env_id)).")
        policy = algorithm.policy_class()
        policy_kwargs = {**policy_kwargs, **equi_kwargs, "symmetry": symmetry, "method": method}
    return algorithm.model_class()(  # type: ignore[no-any-return]
        policy,
        env,
        policy_kwargs=policy_kwargs,
        seed=seed,
        tensorboard_log=tensorboard_log,
        device=device,
        verbose=verbose,
        **model_kwargs,
    )


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
    """:func:`build_agent` for SB3's DQN (``EquiDQNPolicy`` for the equivariant methods)."""
    return build_agent(  # type: ignore[return-value]
        "dqn", env, method, symmetry, hyperparams, seed, tensorboard_log, device, verbose, **overrides
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


def _rng_state(model: DQN) -> tuple[dict[str, Any], dict[str, th.Tensor]]:
    """The Python, NumPy, torch and action-space RNG states as JSON and tensors (no pickle)."""
    version, internal, gauss = random.getstate()
    np_state: Any = np.random.get_state(legacy=True)
    data = {
        "python": [version, list(internal), gauss],
        "numpy": [np_state[0], np.asarray(np_state[1]).tolist(), *[_plain_number(v) for v in np_state[2:]]],
        "action_space": model.action_space.np_random.bit_generator.state,
    }
    return data, {"rng.torch": th.get_rng_state()}


def _plain_number(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _set_rng_state(model: DQN, data: dict[str, Any], tensors: dict[str, th.Tensor]) -> None:
    version, internal, gauss = data["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = data["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    th.set_rng_state(tensors["rng.torch"])
    model.action_space.np_random.bit_generator.state = data["action_space"]


class EnvLog(VecEnvWrapper):
    """Records what the training environment was told (seeds, resets, actions), so that a checkpoint can
    restore it mid-episode by replaying the record through a fresh copy, without pickling it.

    ``events``: one ``{"seed": s, "start": t}`` per reset (``s`` the seed pending at that reset, ``t`` the
    number of actions before it); ``actions``: every action, ``[T, n_envs]``.
    """

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.events: list[dict[str, Any]] = []
        self._actions = np.zeros((1024, venv.num_envs), dtype=np.int64)  # grows by doubling
        self._n = 0
        self._pending_seed: int | None = None

    @property
    def actions(self) -> np.ndarray:
        """Every action given so far, ``[T, n_envs]`` int64."""
        return self._actions[: self._n]

    def seed(self, seed: int | None = None) -> Any:
        self._pending_seed = seed
        return self.venv.seed(seed)

    def reset(self) -> Any:
        self.events.append({"seed": self._pending_seed, "start": self._n})
        self._pending_seed = None
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        if self._n == len(self._actions):
            self._actions = np.concatenate([self._actions, np.zeros_like(self._actions)])
        self._actions[self._n] = np.asarray(actions).reshape(self.num_envs)
        self._n += 1
        self.venv.step_async(actions)

    def step_wait(self) -> Any:
        return self.venv.step_wait()

    def replay(self, events: list[dict[str, Any]], actions: np.ndarray, top: VecEnv) -> Any:
        """Drive ``top`` (this wrapper or a wrapper of it) through the recorded ``events`` and ``actions``;
        returns the last observation, as ``top`` gives it."""
        obs = None
        bounds = [e["start"] for e in events[1:]] + [len(actions)]
        for event, stop in zip(events, bounds, strict=True):
            if event["seed"] is not None:
                top.seed(int(event["seed"]))
            obs = top.reset()
            for t in range(int(event["start"]), int(stop)):
                obs, *_ = top.step(actions[t])
        return obs


def _env_log(model: DQN) -> EnvLog | None:
    env = model.get_env()
    while env is not None:
        if isinstance(env, EnvLog):
            return env
        env = getattr(env, "venv", None)
    return None


def make_training_env(env_factory: EnvFactory, n_envs: int = 1, record: bool = True) -> VecEnv:
    """The training environment as :func:`train` builds it: ``n_envs`` copies of ``Monitor(env_factory())`` in a
    ``DummyVecEnv`` (the model seeds copy ``i`` with ``seed + i``), with ``record`` recorded by :class:`EnvLog`
    so that checkpoints can restore it (DQN's; integer actions), checked for NaN/inf by :func:`checked`."""
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1 training environment, got {n_envs}.")
    venv: VecEnv = DummyVecEnv([lambda: Monitor(env_factory()) for _ in range(n_envs)])
    return checked(EnvLog(venv) if record else venv)  # type: ignore[return-value]


CHECKPOINT_STATE = "state.json"
CHECKPOINT_TENSORS = "state.safetensors"


def save_checkpoint(
    model: DQN, directory: str | Path, total_timesteps: int, extra: dict[str, Any] | None = None, keep: int = 2
) -> Path:
    """Write ``directory/ckpt_<steps>/`` with everything a run needs to continue exactly, with no pickle.

    Contents: the agent (``config.json`` + ``model.safetensors``: weights, optimizer, counters, last
    observation; see :func:`equirl.agents.save_agent`), ``state.safetensors`` (the replay buffer, the
    torch RNG state and the training environment's record of actions) and ``state.json`` (Python,
    NumPy and action-space RNG states, the environment's seeds and resets, ``extra``). The environment
    is restored on resume by replaying its record through a fresh copy (no pickled environment).
    The folder is written under a temporary name and renamed, then ``directory/latest`` is replaced
    atomically; only the newest ``keep`` checkpoints stay. Returns the checkpoint folder.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"ckpt_{model.num_timesteps:09d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=directory))
    try:
        config, tensors = agent_data(model, training_state=True)
        write_agent_files(tmp, config, tensors)
        rng, state_tensors = _rng_state(model)
        rb = model.replay_buffer
        assert rb is not None
        n = rb.buffer_size if rb.full else rb.pos
        arrays = {}
        for key in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
            value = getattr(rb, key, None)
            if isinstance(value, np.ndarray):
                arrays[key] = value
                state_tensors[f"replay.{key}"] = th.from_numpy(np.ascontiguousarray(value[:n]))
        log = _env_log(model)
        if log is not None and len(log.actions):
            state_tensors["env.actions"] = th.from_numpy(log.actions.copy())
        save_file(state_tensors, str(tmp / CHECKPOINT_TENSORS))
        state = {
            "num_timesteps": int(model.num_timesteps),
            "total_timesteps": int(total_timesteps),
            "rng": rng,
            "replay": {"pos": int(rb.pos), "full": bool(rb.full), "stored": int(n), "arrays": sorted(arrays)},
            "env": None if log is None else {"events": log.events, "n_actions": len(log.actions)},
            "extra": extra or {},
        }
        (tmp / CHECKPOINT_STATE).write_text(json.dumps(state, indent=1, allow_nan=False) + "\n")
        final = directory / name
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_atomic(directory / "latest", name + "\n")
    for old in sorted(directory.glob("ckpt_*"))[: -keep or None]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _complete(ckpt: Path) -> bool:
    """Whether ``ckpt`` holds every file of a checkpoint and its state parses."""
    needed = (CHECKPOINT_STATE, CHECKPOINT_TENSORS, CONFIG_FILE, WEIGHTS_FILE)
    if not all((ckpt / f).is_file() for f in needed):
        return False
    try:
        json.loads((ckpt / CHECKPOINT_STATE).read_text())
    except (ValueError, OSError):
        return False
    return True


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest complete checkpoint under ``directory`` (or ``directory/checkpoints``), or None.

    The ``latest`` pointer is followed when it names a complete checkpoint; when it is missing,
    damaged or points at an incomplete folder, the newest complete ``ckpt_*`` folder is used instead
    (with a warning naming the pointer).
    """
    import warnings

    directory = Path(directory)
    for d in (directory, directory / "checkpoints"):
        pointer = d / "latest"
        candidates = sorted((p for p in d.glob("ckpt_*") if p.is_dir()), reverse=True)
        if not pointer.exists() and not candidates:
            continue
        try:
            named = pointer.read_text().strip()
        except (OSError, UnicodeDecodeError):
            named = ""
        if named and "/" not in named and _complete(d / named):
            return d / named
        for ckpt in candidates:
            if _complete(ckpt):
                warnings.warn(
                    f"{pointer} is missing or damaged (or names an incomplete checkpoint); using {ckpt}, "
                    "the newest complete checkpoint.",
                    stacklevel=2,
                )
                return ckpt
    return None


def load_checkpoint(
    path: str | Path, env_factory: EnvFactory, device: str = "auto", **load_kwargs: Any
) -> tuple[DQN, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint` (no pickle); returns ``(model, state)``.

    The training environment is a fresh ``env_factory()`` driven through the recorded seeds, resets and
    actions to the state it had (environments that are deterministic given their seed come back exactly;
    a replay that does not reach the saved observation is an error). RNG states are restored last.
    ``state`` holds ``num_timesteps``, ``total_timesteps``, ``extra`` and ``env_restored``.
    """
    from safetensors.torch import load_file

    path = Path(path)
    state = read_json(path / CHECKPOINT_STATE, "checkpoint state")
    try:
        tensors = load_file(str(path / CHECKPOINT_TENSORS), device="cpu")
    except Exception as err:  # noqa: BLE001 - safetensors raises several types
        raise AgentFormatError(f"{path / CHECKPOINT_TENSORS} is damaged: {err}") from err
    venv = make_training_env(env_factory)
    model = load_agent(path, env=venv, device=device, keep_last_obs=True, **load_kwargs)
    saved_obs = model._last_obs
    env_state = state.get("env")
    state["env_restored"] = False
    if env_state is not None and env_state["events"]:
        actions = tensors["env.actions"].numpy() if "env.actions" in tensors else np.zeros((0, 1), np.int64)
        log = _env_log(model)
        assert log is not None
        obs = log.replay(env_state["events"], actions, model.get_env())  # type: ignore[arg-type]
        if saved_obs is not None and not np.array_equal(obs, saved_obs):
            raise AgentFormatError(
                f"{path}: replaying the training environment's record did not reach the saved observation "
                "(the environment is not deterministic given its seed); this checkpoint cannot be resumed exactly."
            )
        state["env_restored"] = True
    else:
        model._last_obs = None  # type: ignore[assignment]
    rb = model.replay_buffer
    assert rb is not None
    replay = state["replay"]
    n = int(replay["stored"])
    for key in replay["arrays"]:
        target = getattr(rb, key)
        src = tensors[f"replay.{key}"].numpy()
        if src.shape[1:] != target.shape[1:] or src.shape[0] != n or n > target.shape[0]:
            raise AgentFormatError(
                f"{path / CHECKPOINT_TENSORS}: replay.{key} has shape {src.shape}, expected {n} rows of {target.shape[1:]}."
            )
        target[:n] = src
    rb.pos, rb.full = int(replay["pos"]), bool(replay["full"])
    _set_rng_state(model, state["rng"], tensors)
    return model, state


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: BaseAlgorithm
    method: str
    seed: int
    timesteps: int
    train_seconds: float  # wall-clock of learning, periodic evaluations excluded
    mean_return: float
    std_return: float
    curve: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int | None = None
    eval_seconds: float = 0.0  # wall-clock of all evaluations of this process, the final one included
    algo: str = "dqn"

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
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
    return data  # type: ignore[no-any-return]


def read_metadata(zip_path: str | Path) -> dict[str, Any]:
    """The metadata JSON next to a model zip (``model.zip`` -> ``model.json``); {} when there is none."""
    p = Path(zip_path).with_suffix(".json")
    if not p.exists():
        return {}
    return read_json(p, "metadata file")  # type: ignore[no-any-return]


RUN_FILE = "run.json"
"""What :func:`train` records about a run in its folder (method, seed, budget, hyperparameters, ...)."""
RUN_ARTIFACTS = ("eval.csv", "model.zip", "best_model.zip", "model.json", RUN_FILE, "checkpoints")
"""What a run writes into its folder: ``overwrite=True`` removes exactly these."""


class RunFolderError(FileExistsError):
    """A run folder that holds another run, or a resume that does not match the recorded run."""


def run_settings(
    algo: str,
    method: str,
    seed: int,
    hyperparams: dict[str, Any],
    total_timesteps: int,
    eval_freq: int,
    n_eval_episodes: int,
    metadata: dict[str, Any] | None,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """The settings that define a run (JSON-safe), as recorded in ``run.json`` and compared on resume."""
    meta = metadata or {}
    return _jsonable(
        {
            "algo": algo,
            "method": method,
            "seed": seed,
            "total_timesteps": total_timesteps,
            "eval_freq": eval_freq,
            "n_eval_episodes": n_eval_episodes,
            "hyperparams": hyperparams,
            "overrides": {k: v for k, v in overrides.items() if k != "device"},
            **{k: meta[k] for k in ("env_id", "env_kwargs", "symmetry", "hyperparams_entry") if k in meta},
        }
    )


def _differences(recorded: dict[str, Any], requested: dict[str, Any]) -> list[str]:
    out = []
    for k in sorted(set(recorded) | set(requested)):
        if recorded.get(k) != requested.get(k):
            out.append(f"{k}: recorded {recorded.get(k)!r}, requested {requested.get(k)!r}")
    return out


def _prepare_run_folder(out: Path, settings: dict[str, Any], resume: bool, overwrite: bool) -> None:
    """Refuse a folder holding another run (unless ``overwrite``), and a resume that does not match."""
    holds = [name for name in RUN_ARTIFACTS if (out / name).exists()]
    if resume:
        run_file = out / RUN_FILE
        if run_file.exists():
            recorded = read_json(run_file, "run record")
            recorded.setdefault("algo", "dqn")  # recorded before runs named their algorithm
            diff = _differences(recorded, settings)
            if diff:
                raise RunFolderError(
                    f"--resume: the arguments differ from the run recorded in {run_file}: "
                    + "; ".join(diff)
                    + ". Resume with the recorded arguments, or start a new run in another folder."
                )
        return
    if holds and not overwrite:
        raise RunFolderError(
            f"{out} already holds a run ({', '.join(holds)}). Continue it with resume (--resume), replace it with "
            "overwrite (--overwrite), or choose another output folder."
        )
    for name in holds:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()


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
    overwrite: bool = False,
    algo: str = "dqn",
    **overrides: Any,
) -> TrainResult:
    """Train one agent (from scratch, or from the newest checkpoint with ``resume``) and evaluate it.

    :param env_factory: ``() -> gym.Env`` (training and evaluation environments are separate). The training
        environment holds the entry's ``n_envs`` copies of it (on-policy algorithms; default 1); evaluation
        plays one.
    :param algo: the algorithm (:mod:`equirl.agents.algorithms`: ``"dqn"``, ``"qrdqn"``, ``"ppo"``, ``"a2c"``);
        ``hyperparams`` must be its entry (``load_hyperparams(env_id, algo=algo)``).
    :param total_timesteps: default: the entry's ``n_timesteps``.
    :param eval_freq: evaluate every this many steps (default: 10 points), also at the start and the end, into
        ``out_dir/eval.csv``, ``out_dir/evaluations.npz`` (SB3's layout) and the logger (``eval/mean_reward``,
        ``eval/mean_ep_length``, dumped at each evaluation's step; see :class:`EvalCSVCallback`).
    :param tensorboard_log: folder for tensorboard logs (needs the ``train`` extra).
    :param progress_bar: SB3's progress bar (needs the ``train`` extra).
    :param checkpoint_freq: save a resumable checkpoint into ``out_dir/checkpoints`` every this many
        steps (needs ``out_dir``; default: none).
    :param resume: continue from the newest complete checkpoint in ``out_dir``; an error when there is
        none, or when the arguments differ from those recorded in ``out_dir/run.json`` (it names them).
        The resumed run reproduces the uninterrupted one exactly when the environment is deterministic
        given its seed (the checkpoint replays its recorded actions; nothing is unpickled). Checkpoints and
        resume are DQN-only for now (``ValueError`` for the other algorithms).
    :param overwrite: replace the run already in ``out_dir`` (by default a folder holding a run is refused).
    :param metadata: extra fields for ``out_dir/model.json`` (env id, the command, ...).
    Writes ``out_dir/model.zip``, ``out_dir/best_model.zip`` (best periodic evaluation) and ``out_dir/model.json``
    (env, method, steps, seed, evaluation return, hyperparameters, command). Returns a :class:`TrainResult`
    with the final greedy return over ``n_eval_episodes`` and the curve.
    """
    steps = int(total_timesteps if total_timesteps is not None else hyperparams["n_timesteps"])
    if steps < 1:
        raise ValueError(f"total_timesteps must be >= 1 environment step, got {steps}.")
    out = Path(out_dir) if out_dir else None
    check_logging_extras(tensorboard_log, progress_bar)
    algorithm = get_algorithm(algo)
    if (checkpoint_freq or resume) and algorithm.name != "dqn":
        raise ValueError(
            f"checkpoint_freq and resume are DQN-only for now; {algorithm.class_name} runs cannot be checkpointed. "
            "Train without them (a run that stops must be started again)."
        )
    if (checkpoint_freq or resume) and out is None:
        raise ValueError("checkpoint_freq and resume need out_dir (where the checkpoints live).")
    freq = eval_freq or max(1, steps // 10)
    settings = run_settings(
        algorithm.name, method, seed, hyperparams, steps, freq, n_eval_episodes, metadata, overrides
    )
    ckpt: Path | None = None
    if out is not None:
        _prepare_run_folder(out, settings, resume, overwrite)
        if resume:
            ckpt = latest_checkpoint(out / "checkpoints")
            if ckpt is None:
                raise FileNotFoundError(
                    f"resume: no complete checkpoint in {out / 'checkpoints'}; nothing to resume. "
                    "Start the run without resume."
                )
        else:
            write_atomic(out / RUN_FILE, json.dumps(settings, indent=1) + "\n")
    evaluator = EvalCSVCallback(
        env_factory,
        freq,
        out / "eval.csv" if out else None,
        n_episodes=n_eval_episodes,
        best_model_path=out / "best_model.zip" if out else None,
    )
    resumed_from: int | None = None
    model: BaseAlgorithm
    if ckpt is not None:
        model, state = load_checkpoint(ckpt, env_factory, tensorboard_log=tensorboard_log)
        evaluator.set_state(state["extra"]["eval"])
        resumed_from = int(state["num_timesteps"])
        steps = int(state["total_timesteps"])
    else:
        record = algorithm.name == "dqn"  # the checkpoints' record of the environment (DQN-only)
        model = build_agent(
            algorithm.name,
            make_training_env(env_factory, int(hyperparams.get("n_envs", 1)), record=record),
            method,
            symmetry,
            hyperparams,
            seed=seed,
            tensorboard_log=tensorboard_log,
            **overrides,
        )
    cbs: list[BaseCallback] = [evaluator, GroupWeightLogger(), *(callbacks or [])]
    if hasattr(model.policy, "q_net"):
        cbs.insert(2, FiniteQCallback())  # checks DQN's Q-values
    if checkpoint_freq and out is not None:
        cbs.append(
            CheckpointCallback(
                out / "checkpoints", checkpoint_freq, steps, lambda: {"eval": evaluator.get_state()}, keep_checkpoints
            )
        )
    remaining = steps - model.num_timesteps
    eval_before = evaluator.eval_seconds  # restored from a checkpoint: evaluations before this process
    start = time.perf_counter()
    if remaining > 0:
        model.learn(
            remaining,
            callback=CallbackList(cbs),
            progress_bar=progress_bar,
            tb_log_name=f"{method}_s{seed}",
            reset_num_timesteps=resumed_from is None,
        )
    # training only, this process's evaluations excluded
    seconds = time.perf_counter() - start - (evaluator.eval_seconds - eval_before)
    if not evaluator.rows or evaluator.rows[-1]["timesteps"] != model.num_timesteps:
        evaluator.init_callback(model)
        evaluator._evaluate_now()
    final = evaluator.rows[-1]
    if out is not None:
        save_zip_atomic(model, out / "model.zip")
        _, policy_kwargs, equi_kwargs = split_hyperparams(hyperparams)
        write_metadata(
            out / "model.json",
            **{
                **(metadata or {}),
                "algo": algorithm.name,
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
        eval_seconds=evaluator.eval_seconds,
        algo=algorithm.name,
    )
