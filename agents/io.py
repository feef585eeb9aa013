"""A safe file format for agents: plain JSON and safetensors, no pickle anywhere.

:func:`save_agent` writes a folder::

    PATH/config.json        format, algorithm and its hyperparameters, spaces, policy class and its
                            arguments (net_arch; activation, features extractor and optimizer by
                            registered name), the equivariance configuration and the Symmetry as data,
                            counters (and, with training state, the optimizer's scalar settings)
    PATH/model.safetensors  the policy's weights (Q-network and target network), the spaces' bounds,
                            and with training state the optimizer's moments and the last observation

:func:`load_agent` reads it back without unpickling anything and without importing anything the file
names: every class is looked up by name in :data:`ALLOWED` (the package's own classes and SB3's),
and a name not there is an error that says how to allow it. A loaded agent gives bit-identical
Q-values and can continue training (``model.learn(..., reset_num_timesteps=False)``); the replay
buffer is not part of an agent (checkpoints add it, see :mod:`equirl.agents.training`).

The folder is written under a temporary name and renamed into place, and an existing agent is only
replaced with ``overwrite=True``. :func:`write_atomic` is the package's one helper for files that a
later step reads.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch as th
from equirl.agents.extractors import SmallKernelCNN
from equirl.agents.policies import EquiDQNPolicy
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.torch_layers import CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import TrainFreq
from stable_baselines3.dqn.policies import CnnPolicy, DQNPolicy
from torch import nn

import equirl
from equirl import EquivarianceConfig, Symmetry

__all__ = [
    "AGENT_FORMAT",
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "ALLOWED",
    "AgentFormatError",
    "allow_class",
    "save_agent",
    "load_agent",
    "is_agent_dir",
    "write_atomic",
    "save_zip_atomic",
    "read_json",
    "space_to_data",
    "space_from_data",
    "SpacesOnlyEnv",
]

AGENT_FORMAT = "equirl.agent/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

ALLOWED: dict[str, dict[str, type]] = {
    "policy": {"EquiDQNPolicy": EquiDQNPolicy, "MlpPolicy": DQNPolicy, "DQNPolicy": DQNPolicy, "CnnPolicy": CnnPolicy},
    "activation_fn": {
        c.__name__: c
        for c in (nn.ReLU, nn.Tanh, nn.ELU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Softplus, nn.Identity)
    },
    "features_extractor_class": {
        c.__name__: c for c in (FlattenExtractor, NatureCNN, SmallKernelCNN, CombinedExtractor)
    },
    "optimizer_class": {c.__name__: c for c in (th.optim.Adam, th.optim.AdamW, th.optim.SGD, th.optim.RMSprop)},
}
"""The classes a saved agent may name, by kind and name: the package's own and SB3's. Loading never
imports anything else."""

# DQN constructor arguments kept as plain numbers (attribute name -> argument name).
_DQN_ARGS = {
    "learning_rate": "learning_rate",
    "buffer_size": "buffer_size",
    "learning_starts": "learning_starts",
    "batch_size": "batch_size",
    "tau": "tau",
    "gamma": "gamma",
    "gradient_steps": "gradient_steps",
    "optimize_memory_usage": "optimize_memory_usage",
    "n_steps": "n_steps",
    "target_update_interval": "target_update_interval",
    "exploration_fraction": "exploration_fraction",
    "exploration_initial_eps": "exploration_initial_eps",
    "exploration_final_eps": "exploration_final_eps",
    "max_grad_norm": "max_grad_norm",
    "_stats_window_size": "stats_window_size",
}
# Training counters restored on load (so that learn(..., reset_num_timesteps=False) continues).
_COUNTERS = (
    "num_timesteps",
    "_total_timesteps",
    "_num_timesteps_at_start",
    "_n_updates",
    "_n_calls",
    "_episode_num",
    "exploration_rate",
    "_current_progress_remaining",
)
_STATE_ARRAYS = ("_last_obs", "_last_episode_starts", "_last_original_obs")


class AgentFormatError(ValueError):
    """A saved agent (or a file it needs) that cannot be read; the message names the file."""


def allow_class(kind: str, cls: type, name: str | None = None) -> None:
    """Let saved agents name ``cls`` (kind ``"policy"``, ``"activation_fn"``, ``"features_extractor_class"``
    or ``"optimizer_class"``). Loading a file that names it then works in this process."""
    if kind not in ALLOWED:
        raise ValueError(f"Unknown kind {kind!r}; expected one of {sorted(ALLOWED)}.")
    ALLOWED[kind][name or cls.__name__] = cls


# -- files -----------------------------------------------------------------------------------------
def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it into place.

    A reader sees the old file or the new one, never a half-written one (the data is flushed to disk
    before the rename). Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

def save_zip_atomic(model: Any, path: str | Path) -> Path:
    """``model.save(path)`` (an SB3 algorithm) through a temporary file renamed into place (never a half-written zip)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.zip", dir=path.parent)
    os.close(fd)
    try:
        model.save(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def read_json(path: str | Path, what: str = "file") -> Any:
    """``json.load`` of ``path``; a missing or damaged file is an :class:`AgentFormatError` naming it."""
    path = Path(path)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError as err:
        raise AgentFormatError(f"{what} {path} does not exist.") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AgentFormatError(f"{what} {path} is damaged (not valid JSON: {err}).") from err


def _dump(data: Any) -> str:
    return json.dumps(data, indent=1, allow_nan=False) + "\n"


def is_agent_dir(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by :func:`save_agent` (it holds ``config.json``)."""
    return (Path(path) / CONFIG_FILE).is_file()


# -- spaces ----------------------------------------------------------------------------------------
def space_to_data(space: spaces.Space, key: str, tensors: dict[str, th.Tensor]) -> dict[str, Any]:
    """A Box, Discrete, MultiDiscrete, MultiBinary or Dict space as JSON (Box bounds go into ``tensors``
    under ``key``; a Dict's sub-spaces under ``key.<name>``)."""
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": np.asarray(space.nvec).tolist(),
            "start": np.asarray(space.start).tolist(),
            "dtype": str(space.dtype),
        }
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_data(s, f"{key}.{k}", tensors) for k, s in space.spaces.items()}}
    if isinstance(space, spaces.Box):
        tensors[f"{key}.low"] = th.from_numpy(np.ascontiguousarray(space.low))
        tensors[f"{key}.high"] = th.from_numpy(np.ascontiguousarray(space.high))
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype)}
    raise TypeError(
        f"Only Box, Discrete, MultiDiscrete, MultiBinary and Dict spaces can be saved as data, got {type(space).__name__} "
        f"{space}."
    )


def space_from_data(data: Mapping[str, Any], key: str, tensors: Mapping[str, th.Tensor]) -> spaces.Space:
    """The space :func:`space_to_data` wrote."""
    kind = data.get("type")
    if kind == "Discrete":
        return spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
    if kind == "MultiDiscrete":
        dtype = np.dtype(str(data.get("dtype", "int64")))
        if dtype.kind not in "iu":
            raise AgentFormatError(f"MultiDiscrete {key}: dtype {dtype} is not an integer dtype.")
        nvec = np.asarray(data["nvec"], dtype=np.int64)
        start = np.asarray(data.get("start", np.zeros_like(nvec)), dtype=np.int64)
        return spaces.MultiDiscrete(nvec, dtype=dtype, start=start)  # type: ignore[arg-type]
    if kind == "MultiBinary":
        n = data["n"]
        return spaces.MultiBinary([int(i) for i in n] if isinstance(n, list) else int(n))
    if kind == "Dict":
        sub = data.get("spaces")
        if not isinstance(sub, Mapping):
            raise AgentFormatError(f"Dict space {key}: 'spaces' must be a mapping, got {sub!r}.")
        return spaces.Dict({str(k): space_from_data(v, f"{key}.{k}", tensors) for k, v in sub.items()})
    if kind == "Box":
        dtype = np.dtype(str(data["dtype"]))
        if dtype.kind not in "iuf" and dtype != np.bool_:
            raise AgentFormatError(f"Box dtype {dtype} is not a numeric dtype.")
        low, high = tensors[f"{key}.low"].numpy(), tensors[f"{key}.high"].numpy()
        shape = tuple(int(s) for s in data["shape"])
        if low.shape != shape or high.shape != shape:
            raise AgentFormatError(f"Box {key}: bounds of shape {low.shape} for a space of shape {shape}.")
        return spaces.Box(low=low, high=high, shape=shape, dtype=dtype)  # type: ignore[arg-type]
    raise AgentFormatError(
        f"Unknown space type {kind!r} for {key}; expected Box, Discrete, MultiDiscrete, MultiBinary or Dict."
    )


class SpacesOnlyEnv(gym.Env):
    """A placeholder environment with given spaces, for agents loaded or built without an environment.

    The agent can predict and be evaluated; ``learn`` needs ``model.set_env(real_env)`` first.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        self.observation_space = observation_space
        self.action_space = action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        raise RuntimeError(
            "This agent has no environment (it was loaded or built without one); "
            "call model.set_env(env) (or pass env=...) before model.learn()."
        )

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        raise RuntimeError("No environment attached; call model.set_env(env) first.")


# -- saving ----------------------------------------------------------------------------------------
def _name_of(kind: str, cls: Any) -> str:
    for name, allowed in ALLOWED[kind].items():
        if allowed is cls:
            return name
    label = f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls)}"
    raise TypeError(
        f"{kind}={label} is not on the allow-list of classes a saved agent may name ({sorted(ALLOWED[kind])}). "
        f"Allow it with equirl.agents.io.allow_class({kind!r}, cls) in the saving and the loading process."
    )


def _plain(value: Any, what: str) -> Any:
    """``value`` as JSON (tuples become lists); anything else is an error naming ``what``."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{what} = {value} is not finite; it cannot be saved.")
        return value
    if isinstance(value, np.integer | np.floating | np.bool_):
        return _plain(value.item(), what)
    if isinstance(value, list | tuple):
        return [_plain(v, what) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{what}.{k}") for k, v in value.items()}
    raise TypeError(f"{what} holds a {type(value).__name__} ({value!r}), which cannot be saved as data.")


def _policy_data(model: DQN) -> dict[str, Any]:
    policy = model.policy
    params = policy._get_constructor_parameters()
    data: dict[str, Any] = {"class": _name_of("policy", type(policy))}
    data["net_arch"] = _plain(params.get("net_arch"), "net_arch")
    data["activation_fn"] = _name_of("activation_fn", params.get("activation_fn", nn.ReLU))
    data["features_extractor_class"] = _name_of(
        "features_extractor_class", params.get("features_extractor_class", FlattenExtractor)
    )
    data["features_extractor_kwargs"] = _plain(params.get("features_extractor_kwargs") or {}, "features_extractor_kwargs")
    data["normalize_images"] = bool(params.get("normalize_images", True))
    data["optimizer_class"] = _name_of("optimizer_class", params.get("optimizer_class", th.optim.Adam))
    data["optimizer_kwargs"] = _plain(params.get("optimizer_kwargs") or {}, "optimizer_kwargs")
    return data


def _dqn_data(model: DQN) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr, arg in _DQN_ARGS.items():
        if hasattr(model, attr):
            value = getattr(model, attr)
            if arg == "learning_rate" and callable(value):
                raise TypeError(
                    "learning_rate is a schedule (a function), which cannot be saved as data; "
                    "train with a constant learning rate, or save with trusted SB3 model.save()."
                )
            out[arg] = _plain(value, arg)
    tf = model.train_freq
    out["train_freq"] = [int(tf.frequency), tf.unit.value] if isinstance(tf, TrainFreq) else _plain(tf, "train_freq")
    if model.replay_buffer_class not in (None, ReplayBuffer, DictReplayBuffer):  # SB3's defaults for Box / Dict
        raise TypeError(
            f"replay_buffer_class={model.replay_buffer_class.__name__} cannot be saved as data (only SB3's ReplayBuffer "
            "and DictReplayBuffer); save this agent with SB3's model.save (HerReplayBuffer needs its environment)."
        )
    out["replay_buffer_kwargs"] = _plain(model.replay_buffer_kwargs or {}, "replay_buffer_kwargs")
    return out


def _optimizer_data(optimizer: th.optim.Optimizer, tensors: dict[str, th.Tensor]) -> dict[str, Any]:
    state = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entries in state["state"].items():
        for k, v in entries.items():
            if isinstance(v, th.Tensor):
                tensors[f"optimizer.state.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[k] = _plain(v, f"optimizer state {k}")
    return {"param_groups": _plain(state["param_groups"], "optimizer param_groups"), "scalars": scalars}


def agent_data(model: DQN, training_state: bool = True) -> tuple[dict[str, Any], dict[str, th.Tensor]]:
    """``(config, tensors)``: what :func:`save_agent` writes, in memory."""
    if not isinstance(model, DQN):
        raise TypeError(f"save_agent supports Stable-Baselines3 DQN agents, got {type(model).__name__}.")
    tensors: dict[str, th.Tensor] = {
        f"policy.{k}": v.detach().cpu().contiguous() for k, v in model.policy.state_dict().items()
    }
    config: dict[str, Any] = {
        "format": AGENT_FORMAT,
        "algorithm": "DQN",
        "hyperparams": _dqn_data(model),
        "policy": _policy_data(model),
        "observation_space": space_to_data(model.observation_space, "space.observation", tensors),
        "action_space": space_to_data(model.action_space, "space.action", tensors),
        "seed": model.seed,
        "equivariance": None,
        "symmetry": None,
        "versions": {
            "equirl": equirl.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "torch": th.__version__,
            "gymnasium": gym.__version__,
        },
    }
    if isinstance(model.policy, EquiDQNPolicy):
        config["equivariance"] = model.policy.equivariance.to_dict()
        config["symmetry"] = model.policy.symmetry.to_dict()
    config["counters"] = {k: _plain(getattr(model, k), k) for k in _COUNTERS if hasattr(model, k)}
    if training_state:
        config["optimizer"] = _optimizer_data(model.policy.optimizer, tensors)
        arrays = []
        for k in _STATE_ARRAYS:
            value = getattr(model, k, None)
            if isinstance(value, np.ndarray):
                tensors[f"state.{k}"] = th.from_numpy(np.ascontiguousarray(value))
                arrays.append(k)
        config["state_arrays"] = arrays
        config["ep_info_buffer"] = _plain(list(model.ep_info_buffer or []), "ep_info_buffer")
        config["ep_success_buffer"] = _plain(list(model.ep_success_buffer or []), "ep_success_buffer")
    return config, tensors


def write_agent_files(folder: Path, config: dict[str, Any], tensors: dict[str, th.Tensor]) -> None:
    """Write ``config.json`` and ``model.safetensors`` into an existing (temporary) folder."""
    from safetensors.torch import save_file

    save_file(tensors, str(folder / WEIGHTS_FILE))
    (folder / CONFIG_FILE).write_text(_dump(config))
    mask = _umask()
    os.chmod(folder, 0o777 & ~mask)
    for f in (WEIGHTS_FILE, CONFIG_FILE):
        os.chmod(folder / f, 0o666 & ~mask)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_agent(model: DQN, path: str | Path, overwrite: bool = False, training_state: bool = True) -> Path:
    """Save ``model`` as a folder of ``config.json`` + ``model.safetensors`` (see the module docstring).

    :param training_state: also keep what continuing training needs (optimizer moments, counters,
        the last observation); off gives a smaller file for agents that are only evaluated or finetuned.
    :param overwrite: replace an existing agent at ``path`` (otherwise that is an error).
    :raises TypeError: when something cannot be written as data (a custom activation, extractor or
        action, a callable proxy loss or learning-rate schedule); the message says what to register.
    Returns the folder.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it.")
    config, tensors = agent_data(model, training_state)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        write_agent_files(tmp, config, tensors)
        replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def replace_dir(src: Path, dest: Path) -> None:
    """Move the folder ``src`` to ``dest``; an existing ``dest`` is moved aside first and removed after,
    so that at every moment one complete folder exists (or, between the two renames, the old one aside)."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(dest, old)
    os.replace(src, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# -- loading ---------------------------------------------------------------------------------------
def _allowed(kind: str, name: Any, file: Path) -> type:
    if not isinstance(name, str) or name not in ALLOWED[kind]:
        raise AgentFormatError(
            f"{file}: {kind} {name!r} is not on the allow-list ({sorted(ALLOWED[kind])}); loading imports nothing "
            f"else. If you trust that class, allow it with equirl.agents.io.allow_class({kind!r}, cls) first."
        )
    return ALLOWED[kind][name]


def read_agent_files(path: str | Path) -> tuple[dict[str, Any], dict[str, th.Tensor]]:
    """``(config, tensors)`` of a saved agent, read without unpickling; errors name the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_dir():
        raise AgentFormatError(f"{path} is not a saved agent folder (expected {CONFIG_FILE} and {WEIGHTS_FILE} in it).")
    config = read_json(path / CONFIG_FILE, "agent configuration")
    if not isinstance(config, dict) or config.get("format") != AGENT_FORMAT:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise AgentFormatError(f"{path / CONFIG_FILE}: expected format {AGENT_FORMAT!r}, got {got!r}.")
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise AgentFormatError(f"{weights} does not exist.")
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise AgentFormatError(f"{weights} is damaged: {err}") from err
    return config, tensors


def _policy_kwargs(config: dict[str, Any], file: Path) -> tuple[type, dict[str, Any]]:
    p = config["policy"]
    policy_cls = _allowed("policy", p.get("class"), file)
    kwargs: dict[str, Any] = {
        "net_arch": p.get("net_arch"),
        "activation_fn": _allowed("activation_fn", p.get("activation_fn", "ReLU"), file),
        "features_extractor_class": _allowed("features_extractor_class", p.get("features_extractor_class"), file),
        "features_extractor_kwargs": dict(p.get("features_extractor_kwargs") or {}),
        "normalize_images": bool(p.get("normalize_images", True)),
        "optimizer_class": _allowed("optimizer_class", p.get("optimizer_class", "Adam"), file),
        "optimizer_kwargs": dict(p.get("optimizer_kwargs") or {}),
    }
    if policy_cls is EquiDQNPolicy:
        if config.get("symmetry") is None or config.get("equivariance") is None:
            raise AgentFormatError(f"{file}: an EquiDQNPolicy agent needs 'symmetry' and 'equivariance'.")
        try:
            kwargs["symmetry"] = Symmetry.from_dict(config["symmetry"])
            kwargs["equivariance"] = EquivarianceConfig.from_dict(config["equivariance"])
        except (TypeError, ValueError, KeyError) as err:
            raise AgentFormatError(f"{file}: cannot rebuild the symmetry or equivariance settings: {err}") from err
    return policy_cls, kwargs


def _hyperparams(config: dict[str, Any], file: Path) -> dict[str, Any]:
    hp = dict(config.get("hyperparams") or {})
    known = set(_DQN_ARGS.values()) | {"train_freq", "replay_buffer_kwargs"}
    unknown = sorted(set(hp) - known)
    if unknown:
        raise AgentFormatError(f"{file}: unknown hyperparameters {unknown}; expected some of {sorted(known)}.")
    if isinstance(hp.get("train_freq"), list):
        hp["train_freq"] = (int(hp["train_freq"][0]), str(hp["train_freq"][1]))
    return hp


def load_agent(
    path: str | Path,
    env: gym.Env | Any | None = None,
    device: str = "auto",
    tensorboard_log: str | None = None,
    keep_last_obs: bool = False,
    **overrides: Any,
) -> DQN:
    """The agent :func:`save_agent` wrote, rebuilt without unpickling anything.

    :param env: the environment to continue training on (its spaces must equal the saved ones); without
        it the agent predicts and evaluates, and ``learn`` needs ``model.set_env(env)``.
    :param keep_last_obs: keep the saved last observation (for an environment restored to the same
        state, as checkpoints do); by default the first ``learn`` resets the environment.
    :param overrides: DQN arguments that replace the saved hyperparameters (``learning_rate``, ...).
    :raises AgentFormatError: when a file is missing or damaged, or names a class not on :data:`ALLOWED`;
        the message names the file.
    """
    path = Path(path)
    config, tensors = read_agent_files(path)
    file = path / CONFIG_FILE
    if config.get("algorithm") != "DQN":
        raise AgentFormatError(f"{file}: algorithm {config.get('algorithm')!r} is not supported (DQN only).")
    try:
        obs_space = space_from_data(config["observation_space"], "space.observation", tensors)
        act_space = space_from_data(config["action_space"], "space.action", tensors)
        policy_cls, policy_kwargs = _policy_kwargs(config, file)
        hp = _hyperparams(config, file)
    except KeyError as err:
        raise AgentFormatError(f"{file}: missing field or tensor {err}.") from err
    hp.update(overrides)
    seed = config.get("seed")
    model = DQN(
        policy_cls,
        env if env is not None else SpacesOnlyEnv(obs_space, act_space),
        policy_kwargs=policy_kwargs,
        seed=seed if isinstance(seed, int) else None,
        device=device,
        tensorboard_log=tensorboard_log,
        **hp,
    )
    if model.observation_space != obs_space or model.action_space != act_space:
        raise AgentFormatError(
            f"The environment's spaces ({model.observation_space}, {model.action_space}) differ from those "
            f"the agent in {path} was saved with ({obs_space}, {act_space})."
        )
    state = {k[len("policy.") :]: v for k, v in tensors.items() if k.startswith("policy.")}
    try:
        model.policy.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise AgentFormatError(f"{path / WEIGHTS_FILE}: the weights do not fit the saved architecture: {err}") from err
    _restore_training_state(model, config, tensors, path, keep_last_obs)
    return model


def _restore_training_state(
    model: DQN, config: dict[str, Any], tensors: dict[str, th.Tensor], path: Path, keep_last_obs: bool
) -> None:
    for k, v in (config.get("counters") or {}).items():
        if k in _COUNTERS:
            setattr(model, k, v)
    opt = config.get("optimizer")
    if opt is not None:
        state: dict[int, dict[str, Any]] = {}
        for key, t in tensors.items():
            if key.startswith("optimizer.state."):
                pid, name = key[len("optimizer.state.") :].split(".", 1)
                state.setdefault(int(pid), {})[name] = t.to(model.device) if t.dim() > 0 else t
        for pid, entries in (opt.get("scalars") or {}).items():
            state.setdefault(int(pid), {}).update(entries)
        groups = [dict(g) for g in opt["param_groups"]]
        for g in groups:
            if isinstance(g.get("betas"), list):
                g["betas"] = tuple(g["betas"])
        try:
            model.policy.optimizer.load_state_dict({"state": state, "param_groups": groups})
        except (ValueError, KeyError, RuntimeError) as err:
            raise AgentFormatError(f"{path}: the optimizer state does not fit the model: {err}") from err
    for k in config.get("state_arrays") or [] if keep_last_obs else []:
        if k in _STATE_ARRAYS:
            setattr(model, k, tensors[f"state.{k}"].numpy().copy())
    if "ep_info_buffer" in config:
        model.ep_info_buffer = deque(config["ep_info_buffer"], maxlen=model._stats_window_size)
        model.ep_success_buffer = deque(config.get("ep_success_buffer") or [], maxlen=model._stats_window_size)


# -- Stable-Baselines3 zips, read without unpickling ----------------------------------------------
_SB3_POLICY_MODULES = {"stable_baselines3.dqn.policies", "equirl.agents.policies", "agents.policies"}
_SB3_DQN_FIELDS = (*[a for a in _DQN_ARGS if not a.startswith("_")],)


def _literal(value: Any, what: str, file: Path, argument: str) -> Any:
    """A readable JSON field: a JSON value as is, or a Python literal's repr read with ``ast.literal_eval``."""
    import ast

    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError) as err:
        raise AgentFormatError(
            f"{file}: {what} ({value[:80]!r}) cannot be read without unpickling; pass {argument}=... instead."
        ) from err


def _class_from_repr(value: Any, kind: str, file: Path, argument: str) -> type:
    """A class named by a readable ``"<class 'module.Name'>"`` field, looked up on :data:`ALLOWED`."""
    import re

    match = re.fullmatch(r"<class '([\w.]+)\.(\w+)'>", value) if isinstance(value, str) else None
    if match is None or match.group(2) not in ALLOWED[kind]:
        raise AgentFormatError(
            f"{file}: {kind} {value!r} is not one the safe reader knows ({sorted(ALLOWED[kind])}); pass "
            f"{argument}=<the class> (or load the file with trusted=True if you trust whoever made it)."
        )
    cls = ALLOWED[kind][match.group(2)]
    if match.group(1) != cls.__module__ and not cls.__module__.endswith(match.group(1)):
        raise AgentFormatError(f"{file}: {kind} {value!r} is not the allowed {cls.__module__}.{cls.__name__}.")
    return cls


def _space_from_sb3(field: Any, file: Path, what: str) -> spaces.Space:
    """A Box or Discrete space from the readable fields SB3 writes next to the pickled one."""
    if not isinstance(field, dict):
        raise AgentFormatError(f"{file}: no readable {what}; pass env=... (an environment with the right spaces).")
    kind = str(field.get(":type:", ""))
    try:
        if kind.endswith("Discrete'>"):
            return spaces.Discrete(int(field["n"]), start=int(field.get("start", 0)))
        if kind.endswith("Box'>"):
            shape = tuple(int(s) for s in _literal(field["_shape"], f"{what} shape", file, "env"))
            dtype = np.dtype(str(field["dtype"]))
            bounds = []
            for key in ("low", "high"):
                text = str(field[key])
                if "..." in text:
                    raise ValueError(f"{key} is abbreviated")
                values = np.array(text.replace("[", " ").replace("]", " ").split(), dtype=np.float64)
                bounds.append(values.reshape(shape).astype(dtype))
            return spaces.Box(low=bounds[0], high=bounds[1], shape=shape, dtype=dtype)  # type: ignore[arg-type]
    except (KeyError, ValueError, TypeError) as err:
        raise AgentFormatError(
            f"{file}: the {what} cannot be read from its readable fields ({err}); pass env=... with the same spaces."
        ) from err
    raise AgentFormatError(f"{file}: {what} of type {kind} is not supported (Box or Discrete); pass env=....")


def _infer_net_arch(weights: Mapping[str, th.Tensor], prefix: str = "q_net.q_net.") -> list[int]:
    layers = sorted(
        {int(k[len(prefix) :].split(".")[0]) for k in weights if k.startswith(prefix) and k.endswith(".weight")}
    )
    return [int(weights[f"{prefix}{i}.weight"].shape[0]) for i in layers[:-1]]


def read_sb3_zip(
    path: str | Path,
    env: gym.Env | Any | None = None,
    *,
    symmetry: Symmetry | None = None,
    device: str = "auto",
    policy_kwargs: dict[str, Any] | None = None,
    **overrides: Any,
) -> DQN:
    """A Stable-Baselines3 DQN zip read **without unpickling anything**.

    ``policy.pth`` is read with ``torch.load(weights_only=True)``; the architecture comes from the
    weights' shapes and the readable fields of the ``data`` JSON (``net_arch``, the activation and
    features extractor by class name on :data:`ALLOWED`, their keyword arguments as literals), the
    spaces from the readable fields or from ``env``, the DQN hyperparameters from the plain JSON
    numbers (``train_freq`` is stored pickled only: SB3's default is used unless ``overrides`` give it).
    Nothing marked ``:serialized:`` is ever decoded.

    :param env: an environment with the agent's spaces, used when the file's spaces are not readable (the
        returned agent has no environment attached either way: ``set_env`` before ``learn``).
    :param symmetry: the symmetry of an :class:`EquiDQNPolicy` zip (stored only as a pickle in the zip).
    :param policy_kwargs: architecture arguments that replace or complete the file's (``activation_fn``,
        ``features_extractor_class``, ``features_extractor_kwargs``, ``net_arch``, ...).
    :param overrides: DQN arguments replacing the file's (``train_freq``, ``learning_rate``, ...).
    :raises AgentFormatError: naming the file and the argument to pass for what cannot be known safely.
    """
    import io
    import zipfile

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "data" not in names or "policy.pth" not in names:
                raise AgentFormatError(f"{path} is not a Stable-Baselines3 model zip (no 'data' or 'policy.pth').")
            data = json.loads(z.read("data"))
            policy_bytes = z.read("policy.pth")
    except (zipfile.BadZipFile, OSError) as err:
        raise AgentFormatError(f"{path} is not a readable zip: {err}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AgentFormatError(f"{path}: its 'data' entry is not valid JSON: {err}") from err
    try:
        weights = th.load(io.BytesIO(policy_bytes), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises several types for a refused or broken file
        raise AgentFormatError(
            f"{path}: policy.pth is not a plain tensor file ({type(err).__name__}: {str(err)[:200]}). It may hold "
            "code; it is loaded only with trusted=True."
        ) from err
    if not isinstance(weights, dict) or not all(isinstance(v, th.Tensor) for v in weights.values()):
        raise AgentFormatError(f"{path}: policy.pth does not hold a state dict of tensors.")

    # the policy class, by name, only from the allow-list
    pc = data.get("policy_class") if isinstance(data.get("policy_class"), dict) else {}
    init = str(pc.get("__init__", ""))
    cls_name = init.split("<function ", 1)[-1].split(".", 1)[0] if init.startswith("<function ") else ""
    if pc.get("__module__") not in _SB3_POLICY_MODULES or cls_name not in ALLOWED["policy"]:
        cls_name = "CnnPolicy" if any(k.startswith("q_net.features_extractor.") for k in weights) else "MlpPolicy"
    policy_cls = ALLOWED["policy"][cls_name]
    pk_field = data.get("policy_kwargs") if isinstance(data.get("policy_kwargs"), dict) else {}
    given = dict(policy_kwargs or {})
    kwargs: dict[str, Any] = {}
    for key in ("activation_fn", "features_extractor_class", "optimizer_class"):  # classes, by allowed name
        if key in pk_field and key not in given:
            kwargs[key] = _class_from_repr(pk_field[key], key, path, f"policy_kwargs['{key}']")
    for key in ("features_extractor_kwargs", "normalize_images", "optimizer_kwargs", "net_arch"):  # literals
        if key in pk_field and key not in given:
            kwargs[key] = _literal(pk_field[key], key, path, f"policy_kwargs['{key}']")
    unread = sorted(
        k
        for k in pk_field
        if not k.startswith(":")
        and k not in kwargs
        and k not in given
        and k not in ("symmetry", "equivariance", *EquivarianceConfig.field_names())
    )
    if unread:
        raise AgentFormatError(
            f"{path}: policy_kwargs {unread} cannot be read without unpickling; pass policy_kwargs={{...}} with them."
        )
    kwargs.update(given)
    if not kwargs.get("net_arch"):
        kwargs["net_arch"] = _infer_net_arch(weights)
    if policy_cls is EquiDQNPolicy:
        if symmetry is None:
            raise AgentFormatError(
                f"{path} holds an EquiDQNPolicy whose symmetry is stored only as a pickle; pass symmetry=... "
                "(for example equirl.envs.get_symmetry(env_id)), or save it with equirl.agents.save_agent."
            )
        settings: dict[str, Any] = {}
        eq_field = pk_field.get("equivariance")
        if isinstance(eq_field, str) and eq_field.startswith("EquivarianceConfig(") and eq_field.endswith(")"):
            import re

            for key, value in re.findall(r"(\w+)=('[^']*'|[^,)]+)", eq_field[len("EquivarianceConfig(") : -1]):
                settings[key] = _literal(value, f"equivariance.{key}", path, "policy_kwargs")
        for key in EquivarianceConfig.field_names():
            if key in pk_field:
                value = pk_field[key]
                settings[key] = value if key in ("method", "proxy_loss") else _literal(value, key, path, "policy_kwargs")
        kwargs["symmetry"] = symmetry
        kwargs["equivariance"] = EquivarianceConfig.from_kwargs(**settings)

    hp: dict[str, Any] = {}
    for attr in _SB3_DQN_FIELDS:
        value = data.get(attr)
        if isinstance(value, bool | int | float) and not (isinstance(value, float) and not math.isfinite(value)):
            hp[_DQN_ARGS[attr]] = value
    hp.update(overrides)
    try:
        obs_space = _space_from_sb3(data.get("observation_space"), path, "observation space")
        act_space = _space_from_sb3(data.get("action_space"), path, "action space")
    except AgentFormatError:
        if env is None:
            raise
        obs_space, act_space = env.observation_space, env.action_space
    seed = data.get("seed")
    model = DQN(
        policy_cls,
        SpacesOnlyEnv(obs_space, act_space),
        policy_kwargs=kwargs,
        device=device,
        seed=seed if isinstance(seed, int) else None,
        **hp,
    )
    try:
        model.policy.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise AgentFormatError(
            f"{path}: the weights do not fit the architecture read from the file ({err}). Pass the policy's "
            "arguments (policy_kwargs={'net_arch': ..., 'features_extractor_kwargs': ...}) or env=... ."
        ) from err
    if isinstance(data.get("num_timesteps"), int):
        model.num_timesteps = int(data["num_timesteps"])
    return model
