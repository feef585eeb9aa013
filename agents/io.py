"""A safe file format for agents: plain JSON and safetensors, no pickle anywhere.

:func:`save_agent` writes a folder, for every algorithm of :mod:`equirl.agents.algorithms` (DQN, QR-DQN,
PPO, A2C; plain or equivariant, every method)::

    PATH/config.json        format, algorithm and its hyperparameters (constant schedules as numbers, the
                            replay or rollout buffer class by allowed name with its keyword arguments),
                            spaces, policy class and its arguments (activation, features extractor and
                            optimizer by registered name), the equivariance configuration and the Symmetry
                            as data, counters (and, with training state, the optimizer's scalar settings)
    PATH/model.safetensors  the policy's weights (every network: Q- or quantile network and its target,
                            actor, critic, log-std, λ-nets), the spaces' bounds, and with training state the
                            optimizer's moments and the last observation

:func:`load_agent` reads it back without unpickling anything and without importing anything the file
names: every class is looked up by name in :data:`ALLOWED` (the package's own classes and SB3's),
and a name not there is an error that says how to allow it. A loaded agent gives bit-identical
outputs (Q-values, quantiles, logits or Gaussian mean and std, values) and can continue training
(``model.learn(..., reset_num_timesteps=False)``); the replay or rollout buffer's contents are not part
of an agent (checkpoints add the replay buffer, see :mod:`equirl.agents.training`). A HER agent
(``replay_buffer_class=HerReplayBuffer``) saves its buffer's settings; loading it needs the
goal-conditioned environment (``env=...``) to continue training (SB3's ``HerReplayBuffer`` keeps the
environment it was built with).

The folder is written under a temporary name and renamed into place, and an existing agent is only
replaced with ``overwrite=True``. :func:`write_atomic` (from :mod:`equirl.files`) is the package's one helper for
files that a later step reads.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import shutil
import tempfile
from collections import deque
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch as th
from equirl.agents.algorithms import ALGORITHMS, Algorithm, algorithm_of, get_algorithm
from equirl.agents.extractors import SmallKernelCNN
from equirl.agents.policies import EquiDQNPolicy
from equirl.agents.symmetrised import SymmetrisedModule
from gymnasium import spaces
from stable_baselines3 import DQN, HerReplayBuffer
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import DictReplayBuffer, DictRolloutBuffer, ReplayBuffer, RolloutBuffer
from stable_baselines3.common.torch_layers import CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import TrainFreq
from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.dqn.policies import CnnPolicy, DQNPolicy
from torch import nn

import equirl
from equirl import EquivarianceConfig, Symmetry
from equirl.extras import MissingExtraError
from equirl.files import write_atomic

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
    "algorithm_kwargs",
    "hyperparams_data",
    "zip_algorithm",
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
    "replay_buffer_class": {c.__name__: c for c in (ReplayBuffer, DictReplayBuffer, HerReplayBuffer)},
    "rollout_buffer_class": {c.__name__: c for c in (RolloutBuffer, DictRolloutBuffer)},
}
"""The classes a saved agent may name, by kind and name: the package's own and SB3's. Loading never
imports anything else. The policies of every algorithm in :data:`equirl.agents.algorithms.ALGORITHMS`
(SB3's ``MlpPolicy``, ``CnnPolicy``, ``MultiInputPolicy`` and equirl's equivariant policy) are added on
first use, for the algorithms whose extra is installed (a name that another algorithm's policy already
has is prefixed with the algorithm: ``"QRDQN.CnnPolicy"``)."""

_POLICIES_ADDED: list[str] = []

# Constructor arguments that are not hyperparameters of the agent (given again on load, or kept elsewhere).
_NOT_HYPERPARAMS = frozenset(
    {"self", "policy", "env", "policy_kwargs", "tensorboard_log", "verbose", "seed", "device", "_init_setup_model"}
)
# Hyperparameters whose attribute holds something else than the argument (argument -> attribute).
_ATTRIBUTE_OF = {"stats_window_size": "_stats_window_size"}
# Policy constructor parameters not saved with the policy: spaces, schedule, use_sde (an algorithm argument the
# algorithm passes to its policy), or saved apart (symmetry).
_NOT_POLICY_DATA = ("observation_space", "action_space", "lr_schedule", "use_sde", "symmetry", "equivariance")
_CLASS_KINDS = ("activation_fn", "features_extractor_class", "optimizer_class")

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
    """Let saved agents name ``cls`` (kind ``"policy"``, ``"activation_fn"``, ``"features_extractor_class"``,
    ``"optimizer_class"``, ``"replay_buffer_class"`` or ``"rollout_buffer_class"``). Loading a file that names
    it then works in this process."""
    if kind not in ALLOWED:
        raise ValueError(f"Unknown kind {kind!r}; expected one of {sorted(ALLOWED)}.")
    ALLOWED[kind][name or cls.__name__] = cls


def _add_algorithm_policies() -> None:
    """Put the policies of every installed algorithm on :data:`ALLOWED` (once; QR-DQN's need sb3-contrib)."""
    policies = ALLOWED["policy"]
    for algo in ALGORITHMS.values():
        if algo.name in _POLICIES_ADDED:
            continue
        try:
            classes = (algo.policy_class(), *algo.model_class().policy_aliases.values())
        except MissingExtraError:
            continue
        for cls in classes:
            if any(c is cls for c in policies.values()):
                continue
            name = cls.__name__ if cls.__name__ not in policies else f"{algo.class_name}.{cls.__name__}"
            policies[name] = cls
        _POLICIES_ADDED.append(algo.name)


def _plain_policy_base(algo: Algorithm) -> type:
    """The policy class every policy of ``algo`` derives from (SB3's ``MlpPolicy`` of the algorithm)."""
    return algo.model_class().policy_aliases["MlpPolicy"]  # type: ignore[no-any-return]


# -- files -----------------------------------------------------------------------------------------
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


def _policy_data(model: BaseAlgorithm) -> dict[str, Any]:
    """The policy's class (by allowed name) and constructor arguments as data; the symmetry and the
    equivariance settings are saved apart (``config["symmetry"]``, ``config["equivariance"]``)."""
    _add_algorithm_policies()
    policy = model.policy
    params = policy._get_constructor_parameters()
    if hasattr(policy, "share_features_extractor"):  # an actor-critic argument SB3 does not list
        params["share_features_extractor"] = policy.share_features_extractor
    params.setdefault("normalize_images", policy.normalize_images)
    skip = (*_NOT_POLICY_DATA, *EquivarianceConfig.field_names())
    data: dict[str, Any] = {"class": _name_of("policy", type(policy))}
    for key, value in params.items():
        if key in skip:
            continue
        data[key] = _name_of(key, value) if key in _CLASS_KINDS else _plain(value, f"policy argument {key}")
    return data


def _schedule_value(value: Any, what: str) -> Any:
    """A hyperparameter as data: a constant schedule (SB3's ``FloatSchedule(ConstantSchedule)``) as its number."""
    inner = value.value_schedule if isinstance(value, FloatSchedule) else value
    if isinstance(inner, ConstantSchedule):
        return _plain(inner.val, what)
    if callable(value):
        raise TypeError(
            f"{what} is a schedule (a function), which cannot be saved as data; train with a constant {what}, "
            "or save with trusted SB3 model.save()."
        )
    return _plain(value, what)


def _buffer_kwargs(kwargs: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    """A buffer's keyword arguments as data (HER's goal selection strategy by its name)."""
    out = {}
    for k, v in (kwargs or {}).items():
        out[str(k)] = v.name.lower() if isinstance(v, Enum) else _plain(v, f"{what}.{k}")
    return out


def hyperparams_data(model: BaseAlgorithm) -> dict[str, Any]:
    """The algorithm's constructor arguments read off ``model``, as data.

    Every argument of the algorithm's ``__init__`` (from :func:`~equirl.agents.algorithms.algorithm_of`)
    but the environment, policy, logging and device: numbers as they are, constant schedules
    (``clip_range``) as their value, ``train_freq`` as ``[n, unit]``, buffer classes by allowed name with
    their keyword arguments. Arguments that SB3 keeps only inside the optimizer (A2C's ``use_rms_prop``,
    ``rms_prop_eps``) are saved with the policy's optimizer class and arguments.
    :raises TypeError: for a value that is not data (a schedule function, a buffer class not on :data:`ALLOWED`).
    """
    model_cls = algorithm_of(model).model_class()
    out: dict[str, Any] = {}
    for arg in inspect.signature(model_cls.__init__).parameters:
        attr = _ATTRIBUTE_OF.get(arg, arg)
        if arg in _NOT_HYPERPARAMS or not hasattr(model, attr):
            continue
        value = getattr(model, attr)
        if arg == "train_freq":
            out[arg] = [int(value.frequency), value.unit.value] if isinstance(value, TrainFreq) else _plain(value, arg)
        elif arg.endswith("buffer_class"):
            out[arg] = None if value is None else _name_of(arg, value)
        elif arg.endswith("buffer_kwargs"):
            out[arg] = _buffer_kwargs(value, arg)
        else:
            out[arg] = _schedule_value(value, arg)
    return out


def algorithm_kwargs(model: BaseAlgorithm) -> dict[str, Any]:
    """``model``'s constructor arguments (:func:`hyperparams_data` with classes and tuples back), to build
    another agent of the same algorithm with the same settings (as transfer does)."""
    return _hyperparams({"hyperparams": hyperparams_data(model)}, Path("<model>"), algorithm_of(model).model_class())


def zip_algorithm(path: str | Path, algorithm: str | type | None = None) -> Algorithm:
    """The algorithm of an SB3 zip (see :func:`read_sb3_zip`), read without unpickling; DQN when the file's
    weights are not a plain tensor file (a trusted file with custom objects)."""
    import io
    import zipfile

    if algorithm is not None:
        return get_algorithm(algorithm.__name__ if isinstance(algorithm, type) else algorithm)
    try:
        with zipfile.ZipFile(path) as z:
            data = json.loads(z.read("data"))
            weights = th.load(io.BytesIO(z.read("policy.pth")), map_location="cpu", weights_only=True)
        return _zip_algorithm(None, data, weights)
    except Exception:  # noqa: BLE001 - anything unreadable: the caller's loader reports it
        return get_algorithm("dqn")


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


def agent_data(model: BaseAlgorithm, training_state: bool = True) -> tuple[dict[str, Any], dict[str, th.Tensor]]:
    """``(config, tensors)``: what :func:`save_agent` writes, in memory (any algorithm of
    :mod:`equirl.agents.algorithms`)."""
    try:
        algo = algorithm_of(model)
    except TypeError as err:
        raise TypeError(f"save_agent: {err}") from err
    tensors: dict[str, th.Tensor] = {
        f"policy.{k}": v.detach().cpu().contiguous() for k, v in model.policy.state_dict().items()
    }
    config: dict[str, Any] = {
        "format": AGENT_FORMAT,
        "algorithm": algo.class_name,
        "hyperparams": hyperparams_data(model),
        "policy": _policy_data(model),
        "observation_space": space_to_data(model.observation_space, "space.observation", tensors),
        "action_space": space_to_data(model.action_space, "space.action", tensors),
        "n_envs": int(model.n_envs),
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
    if isinstance(model.policy, SymmetrisedModule):
        config["equivariance"] = model.policy.equivariance.to_dict()
        config["symmetry"] = model.policy.symmetry.to_dict()
    config["counters"] = {k: _plain(getattr(model, k), k) for k in _COUNTERS if hasattr(model, k)}
    if training_state:
        config["optimizer"] = _optimizer_data(model.policy.optimizer, tensors)
        arrays: list[str] = []
        dict_arrays: dict[str, list[str]] = {}
        for k in _STATE_ARRAYS:
            value = getattr(model, k, None)
            if isinstance(value, np.ndarray):
                tensors[f"state.{k}"] = th.from_numpy(np.ascontiguousarray(value))
                arrays.append(k)
            elif isinstance(value, Mapping):  # Dict observations: one array per key
                for key, v in value.items():
                    tensors[f"state.{k}.{key}"] = th.from_numpy(np.ascontiguousarray(v))
                dict_arrays[k] = [str(key) for key in value]
        config["state_arrays"] = arrays
        config["state_dict_arrays"] = dict_arrays
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


def save_agent(model: BaseAlgorithm, path: str | Path, overwrite: bool = False, training_state: bool = True) -> Path:
    """Save ``model`` (DQN, QR-DQN, PPO or A2C, plain or equivariant) as a folder of ``config.json`` +
    ``model.safetensors`` (see the module docstring).

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


def _algorithm(config: dict[str, Any], file: Path) -> tuple[Algorithm, type[BaseAlgorithm]]:
    """The saved agent's algorithm and its SB3 class (a clear error for an unknown or uninstalled one)."""
    name = config.get("algorithm")
    try:
        algo = get_algorithm(str(name))
        return algo, algo.model_class()
    except ValueError as err:
        raise AgentFormatError(f"{file}: algorithm {name!r} is not supported: {err}") from err
    except MissingExtraError as err:
        raise AgentFormatError(f"{file}: this agent is a {name}: {err}") from err


def _policy_kwargs(config: dict[str, Any], file: Path, algo: Algorithm | None = None) -> tuple[type, dict[str, Any]]:
    """The policy class (from :data:`ALLOWED`; it must be one of ``algo``'s) and its keyword arguments."""
    _add_algorithm_policies()
    p = dict(config["policy"])
    policy_cls = _allowed("policy", p.pop("class", None), file)
    if algo is not None and not issubclass(policy_cls, _plain_policy_base(algo)):
        raise AgentFormatError(
            f"{file}: policy {policy_cls.__name__} is not a {algo.class_name} policy (expected a subclass of "
            f"{_plain_policy_base(algo).__name__})."
        )
    kwargs: dict[str, Any] = {}
    for key, value in p.items():
        if key in _CLASS_KINDS:
            kwargs[key] = _allowed(key, value, file)
        elif key.endswith("_kwargs"):
            kwargs[key] = dict(value or {})
        else:
            kwargs[key] = value
    if issubclass(policy_cls, SymmetrisedModule):
        if config.get("symmetry") is None or config.get("equivariance") is None:
            raise AgentFormatError(f"{file}: an {policy_cls.__name__} agent needs 'symmetry' and 'equivariance'.")
        try:
            kwargs["symmetry"] = Symmetry.from_dict(config["symmetry"])
            kwargs["equivariance"] = EquivarianceConfig.from_dict(config["equivariance"])
        except (TypeError, ValueError, KeyError) as err:
            raise AgentFormatError(f"{file}: cannot rebuild the symmetry or equivariance settings: {err}") from err
    return policy_cls, kwargs


def _hyperparams(config: dict[str, Any], file: Path, model_cls: type[BaseAlgorithm] = DQN) -> dict[str, Any]:
    """The saved constructor arguments of ``model_cls``, buffer classes looked up on :data:`ALLOWED`."""
    hp = dict(config.get("hyperparams") or {})
    known = set(inspect.signature(model_cls.__init__).parameters) - _NOT_HYPERPARAMS
    unknown = sorted(set(hp) - known)
    if unknown:
        raise AgentFormatError(
            f"{file}: unknown {model_cls.__name__} hyperparameters {unknown}; expected some of {sorted(known)}."
        )
    if isinstance(hp.get("train_freq"), list):
        hp["train_freq"] = (int(hp["train_freq"][0]), str(hp["train_freq"][1]))
    for key in ("replay_buffer_class", "rollout_buffer_class"):
        if hp.get(key) is not None:
            hp[key] = _allowed(key, hp[key], file)
    return hp


def load_agent(
    path: str | Path,
    env: gym.Env | Any | None = None,
    device: str = "auto",
    tensorboard_log: str | None = None,
    keep_last_obs: bool = False,
    **overrides: Any,
) -> Any:
    """The agent :func:`save_agent` wrote (a DQN, QRDQN, PPO or A2C), rebuilt without unpickling anything.

    :param env: the environment to continue training on (its spaces must equal the saved ones); without
        it the agent predicts and evaluates, and ``learn`` needs ``model.set_env(env)`` (with as many
        environments as the agent was saved with). A HER agent needs its goal-conditioned ``env`` to learn.
    :param keep_last_obs: keep the saved last observation (for an environment restored to the same
        state, as checkpoints do); by default the first ``learn`` resets the environment.
    :param overrides: constructor arguments that replace the saved hyperparameters (``learning_rate``, ...).
    :raises AgentFormatError: when a file is missing or damaged, or names a class not on :data:`ALLOWED`;
        the message names the file.
    """
    path = Path(path)
    config, tensors = read_agent_files(path)
    file = path / CONFIG_FILE
    algo, model_cls = _algorithm(config, file)
    try:
        obs_space = space_from_data(config["observation_space"], "space.observation", tensors)
        act_space = space_from_data(config["action_space"], "space.action", tensors)
        policy_cls, policy_kwargs = _policy_kwargs(config, file, algo)
        hp = _hyperparams(config, file, model_cls)
    except KeyError as err:
        raise AgentFormatError(f"{file}: missing field or tensor {err}.") from err
    hp.update(overrides)
    seed = config.get("seed")
    if env is None:
        n_envs = int(config.get("n_envs") or 1)
        env = DummyVecEnv([lambda: SpacesOnlyEnv(obs_space, act_space)] * n_envs)
    try:
        model = model_cls(
            policy_cls,
            env,
            policy_kwargs=policy_kwargs,
            seed=seed if isinstance(seed, int) else None,
            device=device,
            tensorboard_log=tensorboard_log,
            **hp,
        )
    except TypeError as err:  # an argument the class does not take: a damaged or foreign file
        raise AgentFormatError(f"{file}: the saved arguments do not fit {model_cls.__name__}: {err}") from err
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
    model: BaseAlgorithm, config: dict[str, Any], tensors: dict[str, th.Tensor], path: Path, keep_last_obs: bool
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
    for k, keys in (config.get("state_dict_arrays") or {}).items() if keep_last_obs else []:
        if k in _STATE_ARRAYS:
            setattr(model, k, {key: tensors[f"state.{k}.{key}"].numpy().copy() for key in keys})
    if "ep_info_buffer" in config:
        model.ep_info_buffer = deque(config["ep_info_buffer"], maxlen=model._stats_window_size)
        model.ep_success_buffer = deque(config.get("ep_success_buffer") or [], maxlen=model._stats_window_size)


# -- Stable-Baselines3 zips, read without unpickling ----------------------------------------------
# policy_kwargs fields that hold plain strings (SB3 writes a string's str(), not its repr)
_STRING_FIELDS = ("method", "proxy_loss", "proxy_target")


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


def _layer_widths(weights: Mapping[str, th.Tensor], prefix: str) -> list[int]:
    """The output widths of the linear layers ``<prefix><i>.weight`` in order (an ``nn.Sequential``)."""
    layers = sorted(
        {int(k[len(prefix) :].split(".")[0]) for k in weights if k.startswith(prefix) and k.endswith(".weight")}
    )
    return [int(weights[f"{prefix}{i}.weight"].shape[0]) for i in layers]


def _infer_architecture(algo: Algorithm, weights: Mapping[str, th.Tensor], n_actions: int | None) -> dict[str, Any]:
    """The architecture arguments a policy's weights determine: ``net_arch`` (and QR-DQN's ``n_quantiles``)."""
    if algo.on_policy:
        return {
            "net_arch": {
                "pi": _layer_widths(weights, "mlp_extractor.policy_net."),
                "vf": _layer_widths(weights, "mlp_extractor.value_net."),
            }
        }
    prefix = "quantile_net.quantile_net." if algo.name == "qrdqn" else "q_net.q_net."
    widths = _layer_widths(weights, prefix)
    out: dict[str, Any] = {"net_arch": widths[:-1]}
    if algo.name == "qrdqn" and widths and n_actions:
        out["n_quantiles"] = widths[-1] // n_actions
    return out


def _zip_algorithm(
    algorithm: str | type | None, data: Mapping[str, Any], weights: Mapping[str, th.Tensor]
) -> Algorithm:
    """The algorithm of an SB3 zip: as given, else read off the weights' layout (an actor-critic with
    ``n_epochs`` in its data is a PPO, otherwise an A2C)."""
    if algorithm is not None:
        return get_algorithm(algorithm.__name__ if isinstance(algorithm, type) else algorithm)
    if any(k.startswith("quantile_net.") for k in weights):
        return get_algorithm("qrdqn")
    if any(k.startswith("q_net.") for k in weights):
        return get_algorithm("dqn")
    if "action_net.weight" in weights:
        return get_algorithm("ppo" if "n_epochs" in data else "a2c")
    raise AgentFormatError(
        "the weights are not those of a DQN, QR-DQN, PPO or A2C policy (no q_net, quantile_net or action_net); "
        "pass algorithm=... if it is one."
    )


def _zip_policy_class(algo: Algorithm, data: Mapping[str, Any], weights: Mapping[str, th.Tensor], file: Path) -> type:
    """The policy class named by the zip's readable ``policy_class`` field (module and ``__init__``'s owner),
    only from :data:`ALLOWED`; SB3's ``CnnPolicy`` or ``MlpPolicy`` of ``algo`` when it names another class."""
    _add_algorithm_policies()
    field = data.get("policy_class")
    pc: Mapping[str, Any] = field if isinstance(field, dict) else {}
    module, init = str(pc.get("__module__", "")), str(pc.get("__init__", ""))
    match = re.match(r"<function (\w+)\.__init__", init)
    base = _plain_policy_base(algo)
    for cls in ALLOWED["policy"].values():
        if (
            match is not None
            and cls.__name__ == match.group(1)
            and (cls.__module__ == module or cls.__module__.endswith("." + module))
            and issubclass(cls, base)
        ):
            return cls
    cnn = any("features_extractor." in k for k in weights)
    return algo.model_class().policy_aliases["CnnPolicy" if cnn else "MlpPolicy"]  # type: ignore[no-any-return]


def _zip_hyperparams(model_cls: type[BaseAlgorithm], data: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments stored as plain JSON (numbers, booleans, None, plain buffer kwargs), and
    constant schedules from their readable ``ConstantSchedule(val=...)`` field; the rest keeps SB3's default."""
    hp: dict[str, Any] = {}
    for arg in inspect.signature(model_cls.__init__).parameters:
        if arg in _NOT_HYPERPARAMS or arg.endswith("buffer_class"):
            continue
        value = data.get(_ATTRIBUTE_OF.get(arg, arg), ...)
        if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
            hp[arg] = value
        elif value is None and arg in data:
            hp[arg] = None
        elif isinstance(value, dict) and arg.endswith("buffer_kwargs") and ":serialized:" not in value:
            hp[arg] = value
        elif isinstance(value, dict):
            found = re.fullmatch(r"ConstantSchedule\(val=([-+0-9.eE]+)\)", str(value.get("value_schedule", "")))
            if found:
                hp[arg] = float(found.group(1))
    return hp


def read_sb3_zip(
    path: str | Path,
    env: gym.Env | Any | None = None,
    *,
    symmetry: Symmetry | None = None,
    device: str = "auto",
    policy_kwargs: dict[str, Any] | None = None,
    algorithm: str | type | None = None,
    **overrides: Any,
) -> Any:
    """A Stable-Baselines3 DQN, QR-DQN, PPO or A2C zip read **without unpickling anything**.

    ``policy.pth`` is read with ``torch.load(weights_only=True)``; the algorithm from ``algorithm`` or
    the weights' layout (``q_net``: DQN, ``quantile_net``: QR-DQN, ``action_net``: PPO when the data has
    ``n_epochs``, else A2C); the architecture from the weights' shapes and the readable fields of the
    ``data`` JSON (``net_arch``, ``n_quantiles``, the activation, features extractor and optimizer by class
    name on :data:`ALLOWED`, other policy arguments as literals), the spaces from the readable fields or
    from ``env``, the hyperparameters from the plain JSON values (and constant schedules such as PPO's
    ``clip_range`` from their readable ``ConstantSchedule(val=...)``). What is stored only pickled (DQN's
    ``train_freq``, a schedule function, a buffer class) keeps SB3's default unless ``overrides`` give it.
    Nothing marked ``:serialized:`` is ever decoded.

    :param env: an environment with the agent's spaces, used when the file's spaces are not readable (the
        returned agent has no environment attached either way: ``set_env`` before ``learn``).
    :param symmetry: the symmetry of an equivariant policy's zip (stored only as a pickle in the zip).
    :param policy_kwargs: architecture arguments that replace or complete the file's (``activation_fn``,
        ``features_extractor_class``, ``features_extractor_kwargs``, ``net_arch``, ...).
    :param algorithm: ``"dqn"``, ``"qrdqn"``, ``"ppo"``, ``"a2c"`` (or the class), when the weights do not tell.
    :param overrides: constructor arguments replacing the file's (``train_freq``, ``learning_rate``, ...).
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
    try:
        algo = _zip_algorithm(algorithm, data, weights)
        model_cls = algo.model_class()
    except (ValueError, MissingExtraError) as err:
        raise AgentFormatError(f"{path}: {err}") from err
    policy_cls = _zip_policy_class(algo, data, weights, path)

    pk_field = data.get("policy_kwargs") if isinstance(data.get("policy_kwargs"), dict) else {}
    given = dict(policy_kwargs or {})
    equi_keys = ("symmetry", "equivariance", *EquivarianceConfig.field_names())
    kwargs: dict[str, Any] = {}
    for key, value in pk_field.items():
        if key.startswith(":") or key in given or key in equi_keys:
            continue
        if key in _CLASS_KINDS:  # classes, by allowed name
            kwargs[key] = _class_from_repr(value, key, path, f"policy_kwargs['{key}']")
        elif key in _STRING_FIELDS and isinstance(value, str):
            kwargs[key] = value
        else:  # literals (net_arch, n_quantiles, features_extractor_kwargs, log_std_init, ...)
            kwargs[key] = _literal(value, key, path, f"policy_kwargs['{key}']")
    kwargs.update(given)
    try:
        obs_space = _space_from_sb3(data.get("observation_space"), path, "observation space")
        act_space = _space_from_sb3(data.get("action_space"), path, "action space")
    except AgentFormatError:
        if env is None:
            raise
        obs_space, act_space = env.observation_space, env.action_space
    if not kwargs.get("net_arch"):
        n_actions = int(act_space.n) if isinstance(act_space, spaces.Discrete) else None
        inferred = _infer_architecture(algo, weights, n_actions)
        kwargs["net_arch"] = inferred["net_arch"]
        if "n_quantiles" in inferred:
            kwargs.setdefault("n_quantiles", inferred["n_quantiles"])
    if issubclass(policy_cls, SymmetrisedModule):
        if symmetry is None:
            raise AgentFormatError(
                f"{path} holds an {policy_cls.__name__} whose symmetry is stored only as a pickle; pass symmetry=... "
                "(for example equirl.envs.get_symmetry(env_id)), or save it with equirl.agents.save_agent."
            )
        settings: dict[str, Any] = {}
        eq_field = pk_field.get("equivariance")
        if isinstance(eq_field, str) and eq_field.startswith("EquivarianceConfig(") and eq_field.endswith(")"):
            for key, value in re.findall(r"(\w+)=('[^']*'|[^,)]+)", eq_field[len("EquivarianceConfig(") : -1]):
                settings[key] = _literal(value, f"equivariance.{key}", path, "policy_kwargs")
        for key in EquivarianceConfig.field_names():
            if key in pk_field:
                value = pk_field[key]
                settings[key] = value if key in _STRING_FIELDS else _literal(value, key, path, "policy_kwargs")
        kwargs["symmetry"] = symmetry
        kwargs["equivariance"] = EquivarianceConfig.from_kwargs(**settings)

    hp = _zip_hyperparams(model_cls, data)
    hp.update(overrides)
    seed = data.get("seed")
    n_envs = data.get("n_envs") if isinstance(data.get("n_envs"), int) else 1
    try:
        model = model_cls(
            policy_cls,
            DummyVecEnv([lambda: SpacesOnlyEnv(obs_space, act_space)] * n_envs),
            policy_kwargs=kwargs,
            device=device,
            seed=seed if isinstance(seed, int) else None,
            **hp,
        )
    except TypeError as err:
        raise AgentFormatError(
            f"{path}: the arguments read from the file do not fit {model_cls.__name__}({policy_cls.__name__}): "
            f"{err}. Pass policy_kwargs={{...}} or the argument itself."
        ) from err
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
