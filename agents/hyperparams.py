"""Hyperparameters per environment, read from YAML files in rl-zoo3's layout, and the shipped pretrained agents.

The files live in ``equirl/agents/hyperparams/`` (folder ``agents/hyperparams/``: ``dqn.yml``, ``benchmark.yml``)
and ``equirl/agents/pretrained/``; they ship in the wheel, and scripts never copy values.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from torch import nn

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
    "ACTIVATIONS",
]

HYPERPARAMS_DIR = Path(__file__).parent / "hyperparams"
PRETRAINED_DIR = Path(__file__).parent / "pretrained"

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}
"""Activation functions by the names used in the YAML files."""

# Keys of a YAML entry that are not arguments of SB3's DQN constructor.
_META_KEYS = (
    "n_timesteps",
    "policy",
    "policy_kwargs",
    "equivariant",
    "finetune",
    "n_envs",
    "env_wrapper",
    "normalize",
)


def _read(path: Path) -> dict[str, Any]:
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping from environment ids to hyperparameters.")
    return data


def known_environments(path: str | Path | None = None) -> list[str]:
    """Environment ids that have hyperparameters in ``path`` (default ``agents/hyperparams/dqn.yml``)."""
    return sorted(_read(Path(path) if path else HYPERPARAMS_DIR / "dqn.yml"))


def load_hyperparams(env_id: str, path: str | Path | None = None) -> dict[str, Any]:
    """A deep copy of the entry for ``env_id``, with numbers as numbers and classes resolved.

    ``policy_kwargs.features_extractor_class`` and ``policy_kwargs.activation_fn`` given by name
    are replaced by the classes. Raises KeyError listing the known ids.
    """
    file = Path(path) if path else HYPERPARAMS_DIR / "dqn.yml"
    data = _read(file)
    if env_id not in data:
        raise KeyError(f"No hyperparameters for {env_id!r} in {file}. Known: {sorted(data)}.")
    hp = copy.deepcopy(data[env_id])
    for key in ("n_timesteps", "learning_rate", "buffer_size", "learning_starts", "batch_size"):
        if key in hp and isinstance(hp[key], str):
            hp[key] = float(hp[key])
    for key in ("n_timesteps", "buffer_size", "learning_starts", "batch_size", "train_freq", "gradient_steps"):
        if key in hp and isinstance(hp[key], float):
            hp[key] = int(hp[key])
    pk = hp.setdefault("policy_kwargs", {})
    if isinstance(pk.get("activation_fn"), str):
        name = pk["activation_fn"]
        if name not in ACTIVATIONS:
            raise ValueError(f"{env_id}: unknown activation_fn {name!r}; expected one of {sorted(ACTIVATIONS)}.")
        pk["activation_fn"] = ACTIVATIONS[name]
    if isinstance(pk.get("features_extractor_class"), str):
        from equirl.agents import extractors

        name = pk["features_extractor_class"]
        if not hasattr(extractors, name):
            raise ValueError(
                f"{env_id}: unknown features_extractor_class {name!r}; expected one of {extractors.__all__}."
            )
        pk["features_extractor_class"] = getattr(extractors, name)
    return hp  # type: ignore[no-any-return]


def split_hyperparams(hp: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Split an entry into ``(dqn_kwargs, policy_kwargs, equivariant_kwargs)``.

    ``dqn_kwargs`` go to ``DQN(...)`` as they are; ``policy_kwargs`` to both the plain and the
    equivariant policy; ``equivariant_kwargs`` to ``EquiDQNPolicy`` only.
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


def hyperparams_for(env_id: str, key: str | None = None, path: str | Path | None = None) -> tuple[str, dict[str, Any]]:
    """``(entry name, entry)`` for ``env_id``: the entry ``key`` if given, else ``env_id``, else ``env_id``
    without its trailing ``/parts`` (``"MiniGrid-Empty-8x8-v0/full-D4"`` uses ``"MiniGrid-Empty-8x8-v0"``).

    Raises ``KeyError`` naming the file and the known entries when none matches.
    """
    known = known_environments(path)
    candidates = [key] if key else [env_id] + ["/".join(env_id.split("/")[:i]) for i in range(env_id.count("/"), 0, -1)]
    for c in candidates:
        if c in known:
            return c, load_hyperparams(c, path)
    raise KeyError(f"No hyperparameters for {env_id!r} in {path or HYPERPARAMS_DIR / 'dqn.yml'}. Known: {known}.")


def list_pretrained() -> list[str]:
    """Names of the pretrained agents shipped with the package (``load_pretrained(name)`` takes them).

    An agent ships as a safe folder ``pretrained/<name>/`` (``config.json`` + ``model.safetensors``,
    see :func:`equirl.agents.save_agent`) and, for SB3 users, as ``pretrained/<name>.zip``.
    """
    folders = {p.name for p in PRETRAINED_DIR.iterdir() if (p / "config.json").is_file()} if PRETRAINED_DIR.is_dir() else set()
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
