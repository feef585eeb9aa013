"""Proxy losses for equizero: lower means "the network is more confident in this view".

Each takes outputs ``[G, B, ..., K]`` (``K`` actions or classes on the last dim) and returns
``[G, B]``; extra dims (for example sequence positions) are averaged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["ProxyLoss", "PROXY_LOSSES", "resolve_proxy_loss", "neg_max", "neg_margin", "entropy", "neg_max_prob"]

ProxyLoss = Callable[[torch.Tensor], torch.Tensor]


def _reduce(per_position: torch.Tensor) -> torch.Tensor:
    """``[G, B, ...] -> [G, B]`` by averaging extra dims."""
    if per_position.dim() == 2:
        return per_position
    return per_position.reshape(*per_position.shape[:2], -1).mean(-1)


def neg_max(outputs: torch.Tensor) -> torch.Tensor:
    """``-max_a Q(g·s, a)``: prefer the view with the highest value (Q-networks)."""
    return _reduce(-outputs.max(-1).values)


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
