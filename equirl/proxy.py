"""Proxy losses for equizero: lower means "the network is more confident in this view".

Each takes outputs ``[G, B, ..., K]`` (``K`` actions or classes on the last dim) and returns
``[G, B]``; extra dims (for example sequence positions) are averaged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = [
    "ProxyLoss",
    "PROXY_LOSSES",
    "resolve_proxy_loss",
    "register_proxy_loss",
    "proxy_loss_name",
    "neg_max",
    "neg_margin",
    "entropy",
    "neg_max_prob",
]

ProxyLoss = Callable[[torch.Tensor], torch.Tensor]


def _reduce(per_position: torch.Tensor) -> torch.Tensor:
    """``[G, B, ...] -> [G, B]`` by averaging extra dims."""
    if per_position.dim() == 2:
        return per_position
    return per_position.reshape(*per_position.shape[:2], -1).mean(-1)


def neg_max(outputs: torch.Tensor) -> torch.Tensor:
    """``-max_a Q(g·s, a)``: prefer the view with the highest value (Q-networks)."""
    return _reduce(-outputs.amax(-1))


def neg_margin(outputs: torch.Tensor) -> torch.Tensor:
    """``-(Q_best - Q_second)``: prefer the view that separates the best action most."""
    top2 = outputs.topk(2, dim=-1).values
    return _reduce(-(top2[..., 0] - top2[..., 1]))


def entropy(outputs: torch.Tensor) -> torch.Tensor:
    """Entropy of ``softmax(outputs)``: prefer the most peaked prediction (classifiers)."""
    logp = torch.log_softmax(outputs, dim=-1)
    return _reduce(-(logp.exp() * logp).sum(-1))


def neg_max_prob(outputs: torch.Tensor) -> torch.Tensor:
    """``-max softmax(outputs)``: prefer the most confident prediction (classifiers)."""
    return _reduce(-torch.softmax(outputs, dim=-1).max(-1).values)


PROXY_LOSSES: dict[str, ProxyLoss] = {
    "neg_max": neg_max,
    "neg_max_q": neg_max,
    "neg_margin": neg_margin,
    "entropy": entropy,
    "neg_max_prob": neg_max_prob,
}
"""Proxy losses by name (``neg_max_q`` is an alias of ``neg_max``)."""


def resolve_proxy_loss(proxy: str | ProxyLoss) -> ProxyLoss:
    """A proxy loss from its name or a callable; a clear error for unknown names."""
    if callable(proxy):
        return proxy
    if proxy not in PROXY_LOSSES:
        raise ValueError(f"Unknown proxy loss {proxy!r}; expected a callable or one of {sorted(PROXY_LOSSES)}.")
    return PROXY_LOSSES[proxy]


def register_proxy_loss(name: str, fn: ProxyLoss, overwrite: bool = False) -> None:
    """Add ``fn`` to :data:`PROXY_LOSSES` under ``name``, so that configurations (and saved agents) can
    name it. A saved agent that uses it loads only where the same name is registered again.

    :raises ValueError: when ``name`` is taken (pass ``overwrite=True``) or ``fn`` is not callable.
    """
    if not callable(fn):
        raise ValueError(f"register_proxy_loss({name!r}): expected a callable, got {type(fn).__name__}.")
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_proxy_loss: name must be a non-empty string, got {name!r}.")
    if name in PROXY_LOSSES and PROXY_LOSSES[name] is not fn and not overwrite:
        raise ValueError(f"A proxy loss named {name!r} is already registered; pass overwrite=True to replace it.")
    PROXY_LOSSES[name] = fn


def proxy_loss_name(proxy: str | ProxyLoss) -> str:
    """The registered name of ``proxy`` (a name, or a callable registered in :data:`PROXY_LOSSES`).

    :raises ValueError: for an unknown name, or a callable with no registered name, saying how to register it.
    """
    if isinstance(proxy, str):
        resolve_proxy_loss(proxy)
        return proxy
    for name, fn in PROXY_LOSSES.items():
        if fn is proxy:
            return name
    label = getattr(proxy, "__qualname__", None) or type(proxy).__name__
    raise ValueError(
        f"The proxy loss {label} has no registered name, so it cannot be written as data. Register it with "
        "equirl.proxy.register_proxy_loss('my_proxy', fn) and pass proxy_loss='my_proxy'."
    )
