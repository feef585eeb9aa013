"""Hyperparameters per environment, read from YAML files in rl-zoo3's layout, and the shipped pretrained agents.

The files live in ``equirl/agents/hyperparams/`` (folder ``agents/hyperparams/``: ``dqn.yml``, ``benchmark.yml``)
and ``equirl/agents/pretrained/``; they ship in the wheel, and scripts never copy values.

Every algorithm of :mod:`equirl.agents.algorithms` has its file, ``Algorithm.hyperparams_file``
(``dqn.yml``, ``qrdqn.yml``, ``ppo.yml``, ``a2c.yml``); ``algo=`` picks it, and the keys of an entry are
checked against that algorithm's constructor.

Both ways with rl-zoo3 (docs/ecosystem.md): :func:`load_hyperparams` reads rl-zoo3 entries too (string
``policy_kwargs`` parsed without running code, numbers such as ``5e-2`` that PyYAML leaves as strings,
``lin_<x>`` schedules as linear schedules, ``n_envs`` for on-policy algorithms, and every other zoo-only key
either honoured or refused with a message), and :func:`zoo_entry` / :func:`write_zoo_config` turn our DQN
entries into ones ``python -m rl_zoo3.train`` runs with ``EquiDQNPolicy``. Our files are not zoo files: their
``finetune:`` and ``equivariant:`` mappings are not constructor arguments.
"""

from __future__ import annotations

import ast
import copy
import inspect
import re
from pathlib import Path
from typing import Any

import torch
import yaml
from equirl.agents.algorithms import get_algorithm
from stable_baselines3.common.utils import LinearSchedule
from torch import nn

from equirl.files import write_atomic

__all__ = [
    "HYPERPARAMS_DIR",
    "PRETRAINED_DIR",
    "hyperparams_for",
    "pretrained_path",
    "list_pretrained",
    "load_hyperparams",
    "known_environments",
    "split_hyperparams",
    "finetune_hyperparams",
    "normalise_entry",
    "parse_policy_kwargs",
    "linear_schedule",
    "model_arguments",
    "zoo_entry",
    "write_zoo_config",
    "ACTIVATIONS",
    "ZOO_POLICY",
    "REPLAY_BUFFERS",
    "replay_buffer_class",
]

HYPERPARAMS_DIR = Path(__file__).parent / "hyperparams"
PRETRAINED_DIR = Path(__file__).parent / "pretrained"

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}
"""Activation functions by the names used in the YAML files."""

# Keys of a YAML entry that are not arguments of the algorithm's constructor (n_envs: on-policy only).
_META_KEYS = ("n_timesteps", "policy", "policy_kwargs", "equivariant", "finetune", "n_envs")

ZOO_POLICY = "equirl.agents.EquiDQNPolicy"
"""How a zoo entry names our policy (rl-zoo3 imports dotted ``policy`` names)."""

_EQUI_KEYS = ("symmetry", "method", "proxy_loss", "straight_through", "lambda_hidden", "lambda_temperature",
              "proxy_target")  # fmt: skip
"""The equivariant policies' own arguments (the ``equivariant:`` mapping of an entry; ``proxy_target``: actor-critic)."""

# rl-zoo3 keys that configure the environment rather than DQN: accepted only with the value that changes nothing.
_ZOO_ENV_KEYS: dict[str, tuple[Any, ...]] = {
    "normalize": (False, None),
    "env_wrapper": (None, [], {}),
    "vec_env_wrapper": (None, [], {}),
    "frame_stack": (None, 1),
    "monitor_kwargs": (None, {}),
    "env_kwargs": (None, {}),
    "callback": (None, [], {}),
}
_ZOO_ENV_HELP = {
    "normalize": "equirl does not wrap environments in VecNormalize (its running statistics are not symmetric, "
    "so the catalogue's symmetry would not hold for the normalised observation); use rl-zoo3 for that",
    "env_kwargs": "pass them to make_env (equirl train --env-kwargs '{...}')",
}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_NUMERIC_KEYS = ("learning_rate", "gamma", "tau", "exploration_fraction", "exploration_initial_eps",
                 "exploration_final_eps", "max_grad_norm", "n_timesteps", "buffer_size", "learning_starts",
                 "batch_size", "train_freq", "gradient_steps", "target_update_interval", "n_steps", "n_epochs",
                 "gae_lambda", "ent_coef", "vf_coef", "clip_range", "clip_range_vf", "n_envs")  # fmt: skip
_INT_KEYS = ("n_timesteps", "buffer_size", "learning_starts", "batch_size", "train_freq", "gradient_steps",
             "target_update_interval", "lambda_fit_steps", "steps", "eval_freq", "n_steps", "n_epochs",
             "n_envs")  # fmt: skip
_SCHEDULE_KEYS = ("learning_rate", "clip_range", "clip_range_vf")
"""Keys rl-zoo3 lets be a ``lin_<x>`` schedule string (its ``_preprocess_schedules``)."""


def _read(path: Path) -> dict[str, Any]:
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping from environment ids to hyperparameters.")
    return data


def _file(path: str | Path | None, algo: str) -> Path:
    """``path``, or the algorithm's own file (``Algorithm.hyperparams_file``)."""
    return Path(path) if path else get_algorithm(algo).hyperparams_file


def known_environments(path: str | Path | None = None, algo: str = "dqn") -> list[str]:
    """Environment ids that have hyperparameters in ``path`` (default: ``algo``'s file, ``agents/hyperparams/<algo>.yml``)."""
    return sorted(_read(_file(path, algo)))


def load_hyperparams(env_id: str, path: str | Path | None = None, algo: str = "dqn") -> dict[str, Any]:
    """A deep copy of the entry for ``env_id`` in ``path`` (default: ``algo``'s file), normalised for ``algo``
    by :func:`normalise_entry`. Raises KeyError listing the known ids."""
    file = _file(path, algo)
    data = _read(file)
    if env_id not in data:
        raise KeyError(f"No hyperparameters for {env_id!r} in {file}. Known: {sorted(data)}.")
    return normalise_entry(copy.deepcopy(data[env_id]), f"{file.name}[{env_id!r}]", algo=algo)


def _numbers(x: Any) -> Any:
    """Strings that are numbers (PyYAML reads ``5e-2`` and ``1e5`` as strings) become floats, recursively."""
    if isinstance(x, dict):
        return {k: _numbers(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_numbers(v) for v in x]
    if isinstance(x, str) and _NUMBER.match(x.strip()):
        return float(x)
    return x


def model_arguments(algo: str = "dqn") -> set[str]:
    """The keyword arguments of ``algo``'s constructor (``DQN.__init__``, ``PPO.__init__``, ...) other than
    ``policy`` and ``env``: the keys an entry may pass to it."""
    cls = get_algorithm(algo).model_class()
    return set(inspect.signature(cls.__init__).parameters) - {"self", "policy", "env"}


def linear_schedule(text: str, where: str = "entry") -> LinearSchedule:
    """rl-zoo3's ``"lin_<x>"`` as SB3's ``LinearSchedule(x, 0, 1)``: ``x`` at the start, 0 at the end of training
    (``x · progress_remaining``, rl-zoo3's ``linear_schedule``). Parsed as a number, never evaluated;
    ``ValueError`` for anything else."""
    head, _, value = text.strip().partition("_")
    if head != "lin" or not _NUMBER.match(value):
        raise ValueError(f"{where}: {text!r} is not a schedule; the one rl-zoo3 schedule is 'lin_<number>' (lin_1e-3).")
    return LinearSchedule(float(value), 0.0, 1.0)


def normalise_entry(hp: dict[str, Any], where: str = "entry", algo: str = "dqn") -> dict[str, Any]:
    """An entry (ours or rl-zoo3's) as :func:`split_hyperparams` and ``algo``'s SB3 class take it; raises ``ValueError``.

    - numbers given as strings (``5e-2``) become numbers, counts (``n_timesteps``, ``buffer_size``, ...) ints;
    - ``policy_kwargs`` given as a zoo string (``"dict(net_arch=[64, 64], activation_fn=nn.ReLU)"``) is parsed
      by :func:`parse_policy_kwargs`, which runs no code; ``activation_fn`` / ``features_extractor_class``
      given by name become the classes;
    - ``policy: equirl.agents.<algo's equivariant policy>`` (a zoo entry for our policy, such as
      ``equirl.agents.EquiDQNPolicy``) becomes ``MlpPolicy`` (the plain counterpart) and its equivariance
      arguments (``symmetry``, ``method``, ``lambda_hidden``, ...) move from ``policy_kwargs`` to ``equivariant``;
    - ``n_envs`` (parallel training environments) stays for on-policy algorithms (PPO, A2C: :func:`agents.train`
      vectorises the training environment); for the others only ``n_envs: 1`` is accepted (and dropped);
    - ``lin_<x>`` schedules of ``learning_rate``, ``clip_range`` and ``clip_range_vf`` become
      :func:`linear_schedule` (parsed, never evaluated); other strings for numbers are refused;
    - rl-zoo3's environment keys (``normalize``, ``env_wrapper``, ``frame_stack``, ...) are dropped when their
      value changes nothing (``normalize: false``) and refused otherwise;
    - any other key that is neither an argument of ``algo``'s constructor (:func:`model_arguments`) nor ours
      is refused.
    """
    algorithm = get_algorithm(algo)
    hp = _numbers(hp)
    if "n_envs" in hp:
        n = hp["n_envs"]
        if not isinstance(n, (int, float)) or isinstance(n, bool) or n != int(n) or n < 1:
            raise ValueError(f"{where}: n_envs must be a whole number >= 1, got {n!r}.")
        if n != 1 and not algorithm.on_policy:
            raise ValueError(
                f"{where}: n_envs: {n!r} is not supported for {algorithm.class_name} (equirl trains off-policy "
                "algorithms on one environment; n_envs > 1 is for on-policy ones such as PPO and A2C)."
            )
        if n == 1 and not algorithm.on_policy:
            hp.pop("n_envs")
    for key in _SCHEDULE_KEYS:
        if isinstance(hp.get(key), str):
            hp[key] = linear_schedule(hp[key], f"{where}: {key}")
    for key, harmless in _ZOO_ENV_KEYS.items():
        if key not in hp:
            continue
        value = hp.pop(key)
        if value not in harmless:
            hint = _ZOO_ENV_HELP.get(key, "equirl trains on the environment make_env builds; use rl-zoo3 for wrappers")
            raise ValueError(f"{where}: {key}: {value!r} is not supported ({hint}).")
    policy = hp.get("policy", "MlpPolicy")
    pk = hp.get("policy_kwargs") or {}
    if isinstance(pk, str):
        pk = parse_policy_kwargs(pk, where)
    if not isinstance(pk, dict):
        raise ValueError(f"{where}: policy_kwargs must be a mapping or a zoo string 'dict(...)', got {pk!r}.")
    pk = dict(pk)
    hp["policy_kwargs"] = pk
    if isinstance(policy, str) and "." in policy:
        if policy.rsplit(".", 1)[-1] != algorithm.policy_name:
            raise ValueError(
                f"{where}: policy {policy!r} is not supported for {algorithm.class_name}; use MlpPolicy, CnnPolicy "
                f"or equirl.agents.{algorithm.policy_name}."
            )
        hp["policy"] = "MlpPolicy"
        equi = {k: pk.pop(k) for k in _EQUI_KEYS if k in pk}
        hp["equivariant"] = {**equi, **(hp.get("equivariant") or {})}
    for key in ("replay_buffer_kwargs",):
        if isinstance(hp.get(key), str):
            hp[key] = parse_policy_kwargs(hp[key], f"{where} {key}")
    unknown = sorted(set(hp) - model_arguments(algo) - set(_META_KEYS))
    if unknown:
        raise ValueError(
            f"{where}: unknown keys {unknown}: neither arguments of {algorithm.class_name} nor equirl's "
            f"({', '.join(_META_KEYS)}). Remove them or check their spelling."
        )
    for key, value in hp.items():
        if isinstance(value, str) and key in _NUMERIC_KEYS:
            allowed = " or a schedule 'lin_<number>'" if key in _SCHEDULE_KEYS else ""
            raise ValueError(f"{where}: {key}: {value!r} is a string; give a number{allowed}.")
    for mapping in (hp, hp.get("finetune") or {}):
        for key in _INT_KEYS:
            if isinstance(mapping.get(key), float):
                mapping[key] = int(mapping[key])
    if isinstance(hp.get("train_freq"), list):
        hp["train_freq"] = tuple(hp["train_freq"])
    if isinstance(pk.get("activation_fn"), str):
        name = pk["activation_fn"]
        if name not in ACTIVATIONS:
            raise ValueError(f"{where}: unknown activation_fn {name!r}; expected one of {sorted(ACTIVATIONS)}.")
        pk["activation_fn"] = ACTIVATIONS[name]
    if isinstance(hp.get("replay_buffer_class"), str):
        hp["replay_buffer_class"] = replay_buffer_class(hp["replay_buffer_class"], where)
    if isinstance(pk.get("features_extractor_class"), str):
        from equirl.agents import extractors

        name = pk["features_extractor_class"]
        if not hasattr(extractors, name):
            raise ValueError(
                f"{where}: unknown features_extractor_class {name!r}; expected one of {extractors.__all__}."
            )
        pk["features_extractor_class"] = getattr(extractors, name)
    hp["policy_kwargs"] = pk
    return hp


REPLAY_BUFFERS = ("ReplayBuffer", "DictReplayBuffer", "HerReplayBuffer")
"""SB3 replay buffers an entry may name in ``replay_buffer_class`` (resolved by :func:`replay_buffer_class`)."""


def replay_buffer_class(name: str, where: str = "entry") -> type:
    """The SB3 replay buffer class called ``name``, one of :data:`REPLAY_BUFFERS`; raises ``ValueError`` otherwise."""
    if name not in REPLAY_BUFFERS:
        raise ValueError(f"{where}: unknown replay_buffer_class {name!r}; expected one of {list(REPLAY_BUFFERS)}.")
    import stable_baselines3
    from stable_baselines3.common import buffers

    return getattr(buffers, name, None) or getattr(stable_baselines3, name)  # type: ignore[no-any-return]


_OPTIMIZERS = {c.__name__: c for c in (torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.SGD)}
_MODULE_PREFIXES = {
    "nn": "nn",
    "th.nn": "nn",
    "torch.nn": "nn",
    "th.optim": "optim",
    "torch.optim": "optim",
    "optim": "optim",
}


def parse_policy_kwargs(text: str, where: str = "policy_kwargs") -> dict[str, Any]:
    """Parse rl-zoo3's string ``policy_kwargs`` (``"dict(net_arch=[64, 64], activation_fn=nn.ReLU)"``) without running it.

    Allowed: ``dict(key=value, ...)`` or ``{...}``, numbers, strings, booleans, None, lists, tuples, nested
    ``dict(...)``, activation classes (``nn.ReLU``, ``th.nn.Tanh``, ... of :data:`ACTIVATIONS`) and optimizers
    (``th.optim.Adam``, ``RMSprop``, ``AdamW``, ``SGD``). Anything else (calls, ``__import__``, other names) is a
    ``ValueError`` naming the piece; give such arguments as a YAML mapping instead (``features_extractor_class:
    SmallKernelCNN`` by name), or a symmetry by its catalogue name (``symmetry='CartPole-v1'``).
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise ValueError(f"{where}: policy_kwargs {text!r} is not a Python expression: {err.msg}.") from err
    activations = {cls.__name__: cls for cls in ACTIVATIONS.values()}

    def refuse(node: ast.AST) -> ValueError:
        return ValueError(
            f"{where}: policy_kwargs {text!r}: `{ast.unparse(node)}` is not allowed. The loader runs no code: it "
            "takes dict(...) of numbers, strings, lists, activation classes (nn.ReLU, ...) and optimizers "
            "(th.optim.Adam, ...). Give other classes by name in a YAML mapping "
            "(features_extractor_class: SmallKernelCNN) and symmetries by catalogue name (symmetry='CartPole-v1')."
        )

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = value(node.operand)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
            return {value(k): value(v) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "dict"
            and not node.args
            and all(kw.arg is not None for kw in node.keywords)
        ):
            return {kw.arg: value(kw.value) for kw in node.keywords}
        if isinstance(node, ast.Attribute):
            prefix = _MODULE_PREFIXES.get(ast.unparse(node.value))
            if prefix == "nn" and node.attr in activations:
                return activations[node.attr]
            if prefix == "optim" and node.attr in _OPTIMIZERS:
                return _OPTIMIZERS[node.attr]
        raise refuse(node)

    result = value(tree.body)
    if not isinstance(result, dict):
        raise ValueError(f"{where}: policy_kwargs {text!r} must be dict(...) or {{...}}, got {type(result).__name__}.")
    return result


def split_hyperparams(hp: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Split an entry into ``(model_kwargs, policy_kwargs, equivariant_kwargs)``.

    ``model_kwargs`` go to the algorithm's constructor (``DQN(...)``, ``PPO(...)``) as they are;
    ``policy_kwargs`` to both the plain and the equivariant policy; ``equivariant_kwargs`` to the
    equivariant policy only. ``n_envs`` and the other meta keys go to none of them.
    """
    dqn_kwargs = {k: v for k, v in hp.items() if k not in _META_KEYS}
    return dqn_kwargs, dict(hp.get("policy_kwargs") or {}), dict(hp.get("equivariant") or {})


def finetune_hyperparams(hp: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split an entry's ``finetune:`` mapping into ``(dqn_overrides, transfer_settings)``.

    ``transfer_settings`` holds ``steps`` (finetuning budget), ``lambda_fit_steps`` (λ-equitune's
    frozen-backbone stage, inside the budget) and ``eval_freq``; everything else replaces the
    pretrained model's DQN arguments while finetuning (exploration, ``learning_starts``, ...).
    """
    ft = dict(hp.get("finetune") or {})
    settings = {k: ft.pop(k) for k in ("steps", "lambda_fit_steps", "eval_freq") if k in ft}
    for k in ("learning_starts", "buffer_size", "batch_size", "train_freq", "gradient_steps"):
        if k in ft and isinstance(ft[k], float):
            ft[k] = int(ft[k])
    return ft, settings


def hyperparams_for(
    env_id: str, key: str | None = None, path: str | Path | None = None, algo: str = "dqn"
) -> tuple[str, dict[str, Any]]:
    """``(entry name, entry)`` for ``env_id`` in ``path`` (default: ``algo``'s file): the entry ``key`` if given,
    else ``env_id``, else ``env_id`` without its trailing ``/parts`` (``"MiniGrid-Empty-8x8-v0/full-D4"`` uses
    ``"MiniGrid-Empty-8x8-v0"``).

    Raises ``KeyError`` naming the file and the known entries when none matches.
    """
    known = known_environments(path, algo)
    candidates = [key] if key else [env_id] + ["/".join(env_id.split("/")[:i]) for i in range(env_id.count("/"), 0, -1)]
    for c in candidates:
        if c in known:
            return c, load_hyperparams(c, path, algo)
    raise KeyError(f"No hyperparameters for {env_id!r} in {_file(path, algo)}. Known: {known}.")


def list_pretrained() -> list[str]:
    """Names of the pretrained agents shipped with the package (``load_pretrained(name)`` takes them).

    An agent ships as a safe folder ``pretrained/<name>/`` (``config.json`` + ``model.safetensors``,
    see :func:`equirl.agents.save_agent`) and, for SB3 users, as ``pretrained/<name>.zip``.
    """
    folders = (
        {p.name for p in PRETRAINED_DIR.iterdir() if (p / "config.json").is_file()}
        if PRETRAINED_DIR.is_dir()
        else set()
    )
    return sorted(folders | {p.stem for p in PRETRAINED_DIR.glob("*.zip")})


def pretrained_path(name_or_path: str | Path) -> Path:
    """The saved agent for a shipped agent's name (``"cartpole_plain"``) or an existing path.

    A path may be an agent folder (``save_agent``'s format) or an SB3 zip (``.zip`` optional). A shipped
    name gives the safe folder when there is one, else the zip. Raises ``FileNotFoundError`` listing the
    shipped names when nothing matches.
    """
    path = Path(name_or_path)
    if (path / "config.json").is_file():
        return path
    for candidate in (path, path.with_suffix(".zip")):
        if candidate.is_file():
            return candidate
    if path.parent == Path("."):
        for shipped in (PRETRAINED_DIR / path.name, PRETRAINED_DIR / f"{path.name}.zip"):
            if (shipped / "config.json").is_file() or shipped.is_file():
                return shipped
    raise FileNotFoundError(
        f"No pretrained agent {str(name_or_path)!r}: not a file or agent folder, and not a shipped name "
        f"({', '.join(list_pretrained())})."
    )


def _zoo_value(key: str, v: Any) -> str:
    """One ``policy_kwargs`` value as rl-zoo3's evaluated string (``th`` is imported where the zoo evaluates it)."""
    if key == "activation_fn":
        cls = ACTIVATIONS[v] if isinstance(v, str) else v
        return f"th.nn.{cls.__name__}"
    if key == "optimizer_class":
        return f"th.optim.{v.__name__}"
    return repr(v)


def zoo_entry(
    env_id: str, method: str = "lambda", symmetry: str | None = None, path: str | Path | None = None
) -> dict[str, Any]:
    """Our entry for ``env_id`` (see :func:`hyperparams_for`) as an rl-zoo3 entry training ``method`` with ``EquiDQNPolicy``.

    The result is what goes under ``env_id`` in a zoo YAML file: ``policy: equirl.agents.EquiDQNPolicy``, the DQN
    arguments unchanged, and one ``policy_kwargs`` string holding ``net_arch`` etc., the ``equivariant:`` mapping,
    ``symmetry`` (a catalogue name, default ``env_id``) and ``method``. ``finetune:`` (equirl's transfer
    settings) is left out. ``method="plain"`` gives the entry's own SB3 policy. Raises ``ValueError`` for entries
    the zoo cannot express (a ``features_extractor_class`` of ours: the zoo cannot import it from a string).
    """
    from equirl.agents.training import ALL_METHODS

    if method not in ALL_METHODS:
        raise ValueError(f"Unknown method {method!r}; expected one of {ALL_METHODS}.")
    name, _ = hyperparams_for(env_id, path=path)  # validates the entry
    raw = _numbers(copy.deepcopy(_read(Path(path) if path else HYPERPARAMS_DIR / "dqn.yml")[name]))
    raw.pop("finetune", None)
    equi = raw.pop("equivariant", None) or {}
    pk = raw.pop("policy_kwargs", None) or {}
    if isinstance(pk, str):
        pk = parse_policy_kwargs(pk, name)
    if "features_extractor_class" in pk:
        raise ValueError(
            f"{name}: features_extractor_class {pk['features_extractor_class']!r} cannot be given to rl-zoo3 "
            "(its string policy_kwargs cannot import equirl's classes); train this entry with equirl train."
        )
    items = dict(pk)
    if method != "plain":
        sym = symmetry or env_id
        from equirl.envs import get_symmetry

        get_symmetry(sym)  # a clear KeyError now rather than inside the zoo
        items.update(equi)
        items.update(symmetry=sym, method=method)
        raw["policy"] = ZOO_POLICY
    if items:
        raw["policy_kwargs"] = "dict(" + ", ".join(f"{k}={_zoo_value(k, v)}" for k, v in items.items()) + ")"
    return raw  # type: ignore[no-any-return]


def write_zoo_config(path: str | Path, env_ids: list[str], method: str = "lambda", overwrite: bool = False) -> Path:
    """Write an rl-zoo3 hyperparameter file with :func:`zoo_entry` for each of ``env_ids`` (written to a temporary
    name and renamed; an existing file is kept unless ``overwrite``). Returns the path.

    Then: ``python -m rl_zoo3.train --algo dqn --env ENV --gym-packages equirl.envs --conf-file PATH``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    entries = {env_id: zoo_entry(env_id, method) for env_id in env_ids}
    header = (
        f"# rl-zoo3 DQN hyperparameters for equirl's {method} agents, written by equirl.agents.hyperparams."
        "write_zoo_config\n# from equirl's dqn.yml. Train: python -m rl_zoo3.train --algo dqn --env ENV "
        f"--gym-packages equirl.envs --conf-file {path.name}\n"
    )
    return write_atomic(path, header + yaml.safe_dump(entries, sort_keys=False))
