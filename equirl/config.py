"""One frozen configuration of a symmetrisation: the method and its arguments, as data.

:class:`EquivarianceConfig` is the single place where the equivariance settings (method, equizero's
proxy loss, straight-through gradient and tie tolerance, the λ-net's width and temperature) are
written out with their defaults. Policies, Q-networks and saved agents keep one of these;
:meth:`EquivarianceConfig.make_reducer` builds the reducer through :func:`equirl.make_reducer`, and
:meth:`~EquivarianceConfig.to_dict` / :meth:`~EquivarianceConfig.from_dict` are its JSON form.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from equirl.averaging import METHODS, Reducer, make_reducer
from equirl.proxy import ProxyLoss, proxy_loss_name, resolve_proxy_loss

__all__ = ["EquivarianceConfig"]


@dataclass(frozen=True)
class EquivarianceConfig:
    """How a network is symmetrised.

    :param method: ``"equitune"``, ``"equizero"``, ``"lambda"`` or ``"equizero-td"`` (see :data:`equirl.METHODS`).
    :param proxy_loss: equizero's proxy loss, by its name in :data:`equirl.PROXY_LOSSES` (a callable is
        accepted for use in memory, but only a registered one can be written as data; see
        :func:`equirl.proxy.register_proxy_loss`).
    :param straight_through: equizero's forward with equitune's gradient while training (equizero-td ignores it).
    :param tie_tolerance: equizero averages the views whose proxy loss is within ``tol·(1 + |min|)``.
    :param lambda_hidden: width of the default λ-net.
    :param lambda_temperature: softmax temperature of the λ weights (> 0).
    """

    method: str = "lambda"
    proxy_loss: str | ProxyLoss = "neg_max"
    straight_through: bool = True
    tie_tolerance: float = 1e-6
    lambda_hidden: int = 64
    lambda_temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"Unknown method {self.method!r}; expected one of {METHODS}.")
        resolve_proxy_loss(self.proxy_loss)  # an unknown name is an error now, not at the first forward
        if not isinstance(self.straight_through, bool):
            raise TypeError(f"straight_through must be a bool, got {self.straight_through!r}.")
        if isinstance(self.lambda_hidden, bool) or not isinstance(self.lambda_hidden, int) or self.lambda_hidden < 1:
            raise ValueError(f"lambda_hidden must be a positive int, got {self.lambda_hidden!r}.")
        for name in ("lambda_temperature", "tie_tolerance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}.")
            object.__setattr__(self, name, float(value))
        if self.lambda_temperature <= 0:
            raise ValueError(f"lambda_temperature must be > 0, got {self.lambda_temperature}.")
        if self.tie_tolerance < 0:
            raise ValueError(f"tie_tolerance must be >= 0, got {self.tie_tolerance}.")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names of the settings (the keys of :meth:`to_dict` and of :meth:`to_kwargs`)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> EquivarianceConfig:
        """A configuration from keyword arguments; unknown names are an error that lists the known ones."""
        unknown = sorted(set(kwargs) - set(cls.field_names()))
        if unknown:
            raise TypeError(f"Unknown equivariance argument(s) {unknown}; expected some of {list(cls.field_names())}.")
        return cls(**kwargs)

    def replace(self, **changes: Any) -> EquivarianceConfig:
        """A copy with ``changes`` applied (checked like a new configuration)."""
        return type(self).from_kwargs(**{**self.to_kwargs(), **changes})

    def to_kwargs(self) -> dict[str, Any]:
        """The settings as keyword arguments (the proxy loss as given: a name or a callable)."""
        return {name: getattr(self, name) for name in self.field_names()}

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-able data; the proxy loss by its registered name.

        :raises ValueError: for a callable proxy loss with no registered name (it says how to register it).
        """
        data = self.to_kwargs()
        data["proxy_loss"] = proxy_loss_name(self.proxy_loss)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EquivarianceConfig:
        """The configuration :meth:`to_dict` wrote; unknown keys or values are a clear error."""
        if not isinstance(data, Mapping):
            raise TypeError(f"EquivarianceConfig.from_dict: expected a mapping, got {type(data).__name__}.")
        if not isinstance(data.get("proxy_loss", "neg_max"), str):
            raise TypeError(f"proxy_loss in data must be a registered name, got {data['proxy_loss']!r}.")
        return cls.from_kwargs(**dict(data))

    def make_reducer(self, feature_dim: int | None) -> Reducer:
        """The reducer of this configuration (:func:`equirl.make_reducer`); ``feature_dim`` is what the λ-net reads."""
        return make_reducer(
            self.method,
            feature_dim=feature_dim,
            proxy_loss=self.proxy_loss,
            straight_through=self.straight_through,
            lambda_hidden=self.lambda_hidden,
            lambda_temperature=self.lambda_temperature,
            tie_tolerance=self.tie_tolerance,
        )
