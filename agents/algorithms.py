"""The SB3 algorithms equirl makes equivariant, in one table: each algorithm's class, its equivariant
policy, the extra it needs and its hyperparameter file.

Everything that depends on the algorithm (building a model in :mod:`equirl.agents.training`, the
benchmark's runs, saving and loading agents, error messages that name the right policy) looks it up here
with :func:`get_algorithm`, so that adding an algorithm is one entry. Classes are imported on first use:
QR-DQN lives in sb3-contrib (the ``qrdqn`` extra), and this module imports neither it nor the policies.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from equirl.extras import require

__all__ = ["Algorithm", "ALGORITHMS", "get_algorithm", "algorithm_of"]

HYPERPARAMS_DIR = Path(__file__).parent / "hyperparams"


@dataclass(frozen=True)
class Algorithm:
    """One SB3 algorithm and its equivariant policy.

    :param name: the short name used in configs and on the command line (``"dqn"``, ``"ppo"``, ...).
    :param class_path: ``module:Class`` of the SB3 algorithm.
    :param policy_path: ``module:Class`` of equirl's equivariant policy for it.
    :param extra: the optional extra that provides the algorithm (``None``: always installed).
    :param on_policy: whether it learns from rollouts (PPO, A2C) rather than a replay buffer.
    """

    name: str
    class_path: str
    policy_path: str
    extra: str | None = None
    on_policy: bool = False

    @property
    def class_name(self) -> str:
        """The SB3 class name (``"DQN"``, ``"QRDQN"``, ``"PPO"``, ``"A2C"``)."""
        return self.class_path.rsplit(":", 1)[1]

    @property
    def policy_name(self) -> str:
        """The equivariant policy's class name (``"EquiDQNPolicy"``, ...)."""
        return self.policy_path.rsplit(":", 1)[1]

    @property
    def hyperparams_file(self) -> Path:
        """``agents/hyperparams/<name>.yml``: the per-environment hyperparameter entries for this algorithm."""
        return HYPERPARAMS_DIR / f"{self.name}.yml"

    def model_class(self) -> type:
        """The SB3 algorithm class; a clear error naming the extra when it is not installed."""
        self._require()
        return _load(self.class_path)  # type: ignore[no-any-return]

    def policy_class(self) -> type:
        """equirl's equivariant policy class for this algorithm."""
        self._require()
        return _load(self.policy_path)  # type: ignore[no-any-return]

    def _require(self) -> None:
        if self.extra:
            module = self.class_path.split(":")[0]
            require(module, self.extra, f"{self.class_name}", package=module.replace("_", "-"))


def _load(path: str) -> Any:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("dqn", "stable_baselines3:DQN", "equirl.agents.policies:EquiDQNPolicy"),
        Algorithm("qrdqn", "sb3_contrib:QRDQN", "equirl.agents.qrdqn:EquiQRDQNPolicy", extra="qrdqn"),
        Algorithm("ppo", "stable_baselines3:PPO", "equirl.agents.actor_critic:EquiActorCriticPolicy", on_policy=True),
        Algorithm("a2c", "stable_baselines3:A2C", "equirl.agents.actor_critic:EquiActorCriticPolicy", on_policy=True),
    )
}
"""Every supported algorithm by short name."""


def get_algorithm(name: str) -> Algorithm:
    """The :class:`Algorithm` for a short name or SB3 class name, case-insensitive (``"ppo"``, ``"PPO"``,
    ``"QRDQN"``, ``"qr-dqn"``); ``ValueError`` listing the known ones otherwise."""
    key = str(name).lower().replace("-", "").replace("_", "")
    if key in ALGORITHMS:
        return ALGORITHMS[key]
    raise ValueError(f"Unknown algorithm {name!r}; equirl supports {sorted(ALGORITHMS)}.")


def algorithm_of(model: Any) -> Algorithm:
    """The :class:`Algorithm` of an SB3 model (by its class or the nearest supported base class);
    ``TypeError`` naming the supported algorithms otherwise."""
    by_class = {a.class_name: a for a in ALGORITHMS.values()}
    for cls in type(model).__mro__:
        if cls.__name__ in by_class:
            return by_class[cls.__name__]
    raise TypeError(
        f"{type(model).__name__} is not an algorithm equirl supports; expected one of "
        f"{sorted(by_class)} (or a subclass)."
    )
