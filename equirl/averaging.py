"""Group averaging: equitune, equizero and λ-equitune, in one batched forward over the orbit.

For a network ``M = head ∘ encoder`` and a symmetry ``(G, g·x, ρ)``::

    M_G(x) = Σ_g w_g(x) ρ(g)⁻¹ M(g·x),      Σ_g w_g(x) = 1,  w_g(x) >= 0

- ``equitune``: ``w_g = 1/|G|``;
- ``equizero``: ``w`` is uniform over the views of minimal proxy loss ``l(M(g·x))`` (ties are
  averaged, so that the result does not depend on the order of the group's elements), with an
  optional straight-through gradient (forward of equizero, gradient of equitune);
- ``lambda`` (λ-equitune): ``w_g = softmax_g(λ(h(g·x)))`` for a small λ-net over the encoder's
  features ``h(g·x)``; the λ-net sees only the transformed input, never the element ``g``.

The whole orbit ``[|G|·B, ...]`` goes through the network in one call; there is no Python loop
over group elements.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from equirl.actions import Action, weighted_sum
from equirl.proxy import ProxyLoss, neg_max, resolve_proxy_loss
from equirl.symmetry import Symmetry

__all__ = [
    "METHODS",
    "Reducer",
    "MeanReducer",
    "ZeroReducer",
    "LambdaReducer",
    "ZeroTDReducer",
    "ONLINE_SELECTED_TARGET",
    "make_reducer",
    "symmetrize",
    "symmetrize_weights",
    "orbit_batch",
    "orbit_rows",
    "by_group",
    "reduce_outputs",
    "reduce_orbit",
    "reduce_orbit_weights",
    "GroupAveraged",
    "equivariance_error",
    "weight_entropy",
]

METHODS = ("equitune", "equizero", "lambda", "equizero-td")
"""The ways to symmetrise a network: the paper's three, and ``equizero-td`` (equizero for TD learning).

``equizero-td`` selects views as equizero does (its forward pass is equizero's) but is trained
through the selected view itself, never with the straight-through gradient, and a TD target
network built for it evaluates the views the online network selects (:data:`ONLINE_SELECTED_TARGET`).
"""

ONLINE_SELECTED_TARGET: frozenset[str] = frozenset({"equizero-td"})
"""Methods whose TD target network evaluates the views that the *online* network selects.

The paper's equizero in a DQN target takes, with the target network, the view with the largest
``max_a Q'(g·s)``: a maximum over |G| noisy estimates, which bootstrapping compounds into
over-estimation. ``equizero-td`` selects the view with the online network and evaluates it with
the target network, as Double DQN does for actions: the target's state value is
``max_a ρ(g*)⁻¹Q'(g*·s)`` with ``g* = argmax_g max_a Q(g·s)`` (online), never above the paper's
``max_g max_a Q'(g·s)``. See ``equirl.agents.policies`` for the target network.
"""


_ONES: dict[torch.device, torch.Tensor] = {}


def _one(like: torch.Tensor) -> torch.Tensor:
    """A 0-dim tensor 1.0 on ``like``'s device (cached; a fresh one while a graph is captured)."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return torch.ones((), device=like.device)
    one = _ONES.get(like.device)
    if one is None:
        one = _ONES[like.device] = torch.ones((), device=like.device)
    return one


def _capturing() -> bool:
    """True while torch.jit traces, torch.export / ONNX export captures, or torch.compile compiles."""
    compiling = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
    return bool(
        torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or (compiling is not None and compiling())
        or torch.onnx.is_in_onnx_export()
    )


class Reducer(nn.Module):
    """Turns the outputs over the orbit ``M(g·x)`` into one output ``Σ_g w_g ρ(g)⁻¹ M(g·x)``.

    :meth:`combine` is the stateless reduction that :func:`symmetrize` uses; ``forward(outputs, back,
    features)`` is the same reduction for callers that have ``back = ρ(g)⁻¹ M(g·x)`` already. Both
    take ``outputs`` ``[G, B, ...]`` and ``features = h(g·x)`` ``[G, B, F]`` (or None) and give ``[B, ...]``.

    When ``record_weights`` is True (the default), the weights of the last call are kept, detached,
    in ``last_weights`` ``[G, B]`` for inspection (not while a tracer, exporter or compiler captures
    the forward, so that exported graphs stay stateless); set it to False for a stateless module.
    """

    method: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.last_weights: torch.Tensor | None = None
        self.record_weights = True

    def weights(self, outputs: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        """Convex weights ``[G, B]`` over the group."""
        raise NotImplementedError

    def combine(
        self, outputs: torch.Tensor, output_action: Action, features: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(Σ_g w_g ρ(g)⁻¹ outputs[g] [B, ...], w [G, B] or None when uniform)``, storing nothing."""
        w = self.weights(outputs, features)
        return output_action.inverse_weighted_sum(outputs, w), w

    def record(self, weights: torch.Tensor | None) -> None:
        """Keep ``weights`` (detached) in ``last_weights`` when ``record_weights`` is on and nothing captures."""
        if getattr(self, "record_weights", True) and not _capturing():
            self.last_weights = None if weights is None else weights.detach()

    def forward(self, outputs: torch.Tensor, back: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        w = self.weights(outputs, features)
        self.record(w)
        return weighted_sum(w, back)


class MeanReducer(Reducer):
    """equitune: the uniform average over the group."""

    method = "equitune"

    def weights(self, outputs: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        G, B = outputs.shape[:2]
        return torch.full((G, B), 1.0 / G, device=outputs.device, dtype=outputs.dtype)

    def combine(
        self, outputs: torch.Tensor, output_action: Action, features: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return output_action.inverse_mean(outputs), None

    def forward(self, outputs: torch.Tensor, back: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        self.record(None)  # uniform: nothing to log
        return back.mean(0)


class ZeroReducer(Reducer):
    """equizero: keep the view(s) with the lowest proxy loss.

    :param proxy_loss: a name from ``equirl.proxy.PROXY_LOSSES`` or a function
        ``outputs [G, B, ...] -> [G, B]`` (lower is better).
    :param straight_through: forward pass of equizero, gradient of equitune.
    :param tie_tolerance: views whose loss is within ``tol·(1 + |min|)`` of the minimum are averaged.
    """

    method = "equizero"

    def __init__(
        self, proxy_loss: str | ProxyLoss = "neg_max", straight_through: bool = True, tie_tolerance: float = 1e-6
    ) -> None:
        super().__init__()
        self.proxy_loss = proxy_loss
        self._proxy = resolve_proxy_loss(proxy_loss)
        self.straight_through = straight_through
        self.tie_tolerance = float(tie_tolerance)

    def weights(self, outputs: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        if outputs.requires_grad:  # the weights are constants for the gradient
            with torch.no_grad():
                return self._tie_weights(outputs)
        return self._tie_weights(outputs)

    def _tie_weights(self, outputs: torch.Tensor) -> torch.Tensor:
        # views within tol·(1 + |best|) of the best are tied: torch.isclose(loss, best, tol, tol) for finite
        # losses (loss >= best; up to rounding at the boundary), as one comparison and with ops every exporter has;
        # torch functions rather than Python operators and a constant one rather than a Python scalar (each wrapped
        # per call), the weights normalised in place: the selection costs about its operations' dispatch
        one = _one(outputs)
        if self._proxy is neg_max and outputs.dim() == 3:
            # the default proxy -max_a Q as the score max_a Q (higher is better): the same comparison negated
            # (negation is exact, so the same views tie), one operation fewer
            score = outputs.amax(-1)
            top = score.amax(0, keepdim=True)
            tied = torch.ge(score, torch.add(top, top.abs().add_(one), alpha=-self.tie_tolerance))
        else:
            loss = self._proxy(outputs)
            best = loss.amin(0, keepdim=True)
            tied = torch.le(loss, torch.add(best, best.abs().add_(one), alpha=self.tie_tolerance))
        w = tied.to(outputs.dtype)
        return w.div_(w.sum(0, keepdim=True))

    def combine(
        self, outputs: torch.Tensor, output_action: Action, features: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        w = self.weights(outputs, features)
        return reduce_outputs(outputs, output_action, w, self.straight_through), w

    def _straight_through(self, selected: torch.Tensor, back: torch.Tensor) -> torch.Tensor:
        if self.straight_through and back.requires_grad:
            mean = back.mean(0)
            return mean + (selected - mean).detach()
        return selected

    def forward(self, outputs: torch.Tensor, back: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        return self._straight_through(super().forward(outputs, back, features), back)

    def extra_repr(self) -> str:
        name = self.proxy_loss if isinstance(self.proxy_loss, str) else getattr(self.proxy_loss, "__name__", "custom")
        return f"proxy_loss={name}, straight_through={self.straight_through}"


class ZeroTDReducer(ZeroReducer):
    """equizero-td: equizero's view selection, trained through the selected view itself.

    The forward pass is :class:`ZeroReducer`'s; the gradient goes to the selected view(s) only
    (never the straight-through gradient of equitune, which leaves the views' disagreement untrained
    and, measured on RotGrid, keeps equizero from learning). A TD learner pairs it with a target
    network that evaluates the views this reducer selects (:data:`ONLINE_SELECTED_TARGET`).

    :param proxy_loss: as :class:`ZeroReducer`'s (default ``"neg_max"``: the view of largest max-Q).
    :param tie_tolerance: as :class:`ZeroReducer`'s.
    """

    method = "equizero-td"

    def __init__(self, proxy_loss: str | ProxyLoss = "neg_max", tie_tolerance: float = 1e-6) -> None:
        super().__init__(proxy_loss, straight_through=False, tie_tolerance=tie_tolerance)


class LambdaReducer(Reducer):
    """λ-equitune: softmax over the group of a score ``λ(h(g·x))``.

    :param feature_dim: size ``F`` of the features the λ-net reads.
    :param hidden: width of the default λ-net ``Linear(F, hidden) - ReLU - Linear(hidden, 1)``.
    :param temperature: softmax temperature.
    :param lambda_net: a custom module ``[N, F] -> [N, 1]`` (or ``[N]``) instead of the default.

    The default λ-net's last layer starts at zero, so an untrained λ-equitune equals equitune.
    """

    method = "lambda"

    def __init__(
        self,
        feature_dim: int,
        hidden: int = 64,
        temperature: float = 1.0,
        lambda_net: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if lambda_net is None:
            if not isinstance(feature_dim, int) or feature_dim < 1:
                raise ValueError(f"LambdaReducer: feature_dim must be a positive int, got {feature_dim!r}.")
            lambda_net = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
            last = lambda_net[-1]
            assert isinstance(last, nn.Linear)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        if temperature <= 0:
            raise ValueError(f"LambdaReducer: temperature must be > 0, got {temperature}.")
        self.lambda_net = lambda_net
        self.temperature = float(temperature)

    def scores(self, features: torch.Tensor, order: int | None = None) -> torch.Tensor:
        """Raw scores ``[G, B]`` from features ``[G, B, F]``, or from the orbit's features ``[G·B, F]`` with
        ``order`` = ``G`` (as the network gives them: no reshape). A ``[G, B, F]`` view of sample-major rows
        ``[B·G, F]`` (:func:`orbit_rows`) is read as those rows, without a copy."""
        if order is not None and features.dim() == 2:
            return self.lambda_net(features).view(order, -1)
        G, B = features.shape[:2]
        rows = features.transpose(0, 1)
        if features.dim() == 3 and not features.is_contiguous() and rows.is_contiguous():  # sample-major rows
            return self.lambda_net(rows.view(B * G, -1)).view(B, G).t()
        return self.lambda_net(features.reshape(G * B, -1)).reshape(G, B)

    def weights(self, outputs: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        """Softmax weights ``[G, B]`` of the λ-net's scores of ``features``: ``[G, B, F]``, or ``[G·B, F]`` in the
        orbit's order (``outputs [G, B, ...]`` gives ``G``)."""
        if features is None:
            raise ValueError("λ-equitune needs features h(g·x); the network gave none.")
        scores = self.scores(features, outputs.shape[0])
        return torch.softmax(scores if self.temperature == 1.0 else scores / self.temperature, dim=0)


def make_reducer(
    method: str,
    feature_dim: int | None = None,
    proxy_loss: str | ProxyLoss = "neg_max",
    straight_through: bool = True,
    lambda_hidden: int = 64,
    lambda_temperature: float = 1.0,
    lambda_net: nn.Module | None = None,
    tie_tolerance: float = 1e-6,
) -> Reducer:
    """Build the reducer for ``method`` in :data:`METHODS`; see the reducers for the arguments."""
    if method == "equitune":
        return MeanReducer()
    if method == "equizero":
        return ZeroReducer(proxy_loss, straight_through, tie_tolerance)
    if method == "equizero-td":  # no straight-through gradient, whatever straight_through says
        return ZeroTDReducer(proxy_loss, tie_tolerance)
    if method == "lambda":
        if feature_dim is None and lambda_net is None:
            raise ValueError("method='lambda' needs feature_dim (or a lambda_net).")
        return LambdaReducer(feature_dim or 0, lambda_hidden, lambda_temperature, lambda_net)
    raise ValueError(f"Unknown method {method!r}; expected one of {METHODS}.")


def reduce_outputs(
    outputs: torch.Tensor, action: Action, weights: torch.Tensor | None, straight_through: bool = False
) -> torch.Tensor:
    """``Σ_g w_g ρ(g)⁻¹ outputs[g]``: outputs ``[G, B, ...]`` -> ``[B, ...]`` (the plain mean when ``weights`` is None).

    :param action: how the group acts on this output (the action dimension of Q-values or logits, a signed
        permutation of a continuous action, :class:`equirl.TrivialAction` for an invariant value).
    :param straight_through: equizero's straight-through gradient: the forward of the weighted sum, the
        gradient of the mean (applied only while the outputs need a gradient; the weighted sum is computed without
        autograd, so no graph is built for what the gradient never reads).
    """
    if weights is None:
        return action.inverse_mean(outputs)
    if straight_through and outputs.requires_grad:
        mean = action.inverse_mean(outputs)
        with torch.no_grad():
            jump = action.inverse_weighted_sum(outputs, weights) - mean
        return mean + jump
    return action.inverse_weighted_sum(outputs, weights)


def reduce_orbit(
    outputs: torch.Tensor,
    symmetry: Symmetry,
    reducer: Reducer,
    features: torch.Tensor | None = None,
    position_dims: int = 0,
) -> torch.Tensor:
    """Combine a network's outputs over the orbit: ``Σ_g w_g ρ(g)⁻¹ outputs[g]``.

    :param outputs: ``M(g·x)`` for every element, ``[G, B, *P, ...]``.
    :param features: what the λ-net reads, ``[G, B, *P, F]`` (needed by λ-equitune only).
    :param position_dims: how many dims ``P`` after the batch get weights of their own (for
        sequence models: one weight per sample and step); 0 gives one weight per sample.
    Returns ``[B, *P, ...]``.
    """
    out, w = reduce_orbit_weights(outputs, symmetry, reducer, features, position_dims)
    reducer.record(w)
    return out


def reduce_orbit_weights(
    outputs: torch.Tensor,
    symmetry: Symmetry,
    reducer: Reducer,
    features: torch.Tensor | None = None,
    position_dims: int = 0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`reduce_orbit` without side effects: ``(output [B, *P, ...], weights [G, B·prod(P)] or None)``.

    The weights are None for equitune (uniform). Nothing is stored on the reducer.
    """
    action = symmetry.output_action
    if not isinstance(reducer, LambdaReducer):
        features = None
    if position_dims == 0:
        return reducer.combine(outputs, action, None if features is None else features.reshape(*outputs.shape[:2], -1))
    G, B = outputs.shape[:2]
    positions = outputs.shape[2 : 2 + position_dims]
    n = B * math.prod(positions)

    def fold(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(G, n, *t.shape[2 + position_dims :])

    out, w = reducer.combine(fold(outputs), action, None if features is None else fold(features))
    return out.reshape(B, *positions, *out.shape[1:]), w


def symmetrize(
    x: torch.Tensor,
    symmetry: Symmetry,
    encoder: Callable[[torch.Tensor], torch.Tensor],
    head: Callable[[torch.Tensor], torch.Tensor] | None,
    reducer: Reducer,
) -> torch.Tensor:
    """The symmetrised output ``Σ_g w_g ρ(g)⁻¹ head(encoder(g·x))`` for a batch ``x [B, ...]``.

    ``encoder [N, ...] -> [N, F]`` gives the features the λ-net reads; ``head [N, F] -> [N, ...]``
    gives the output (when ``head`` is None the encoder's output is both). The whole orbit goes
    through the network as one batch ``[|G|·B, ...]``. Returns ``[B, ...]``. The weights are kept in
    ``reducer.last_weights`` when the reducer records them (see :class:`Reducer`); use
    :func:`symmetrize_weights` for a forward without side effects.
    """
    out, w = symmetrize_weights(x, symmetry, encoder, head, reducer)
    reducer.record(w)
    return out


def orbit_rows(symmetry: Symmetry, x: Any) -> tuple[Any, bool]:
    """The orbit of ``x [B, ...]`` as one batch of rows for a network, in whichever order the input action builds
    faster: ``(rows, by_sample)``. With ``by_sample`` False the rows are :func:`orbit_batch`'s ``[G·B, ...]``
    (row ``g·B + b`` is ``g·x[b]``); with True they are ``[B·G, ...]`` (row ``b·G + g`` is ``g·x[b]``; see
    :meth:`equirl.actions.Action.orbit_by_sample`). :func:`by_group` turns outputs of either into ``[G, B, ...]``."""
    if isinstance(x, torch.Tensor):
        rows = symmetry.input_action.orbit_by_sample(x)
        if rows is not None:
            return rows.flatten(0, 1), True
    return orbit_batch(symmetry, x), False


def by_group(rows: torch.Tensor, order: int, by_sample: bool) -> torch.Tensor:
    """A network's outputs on :func:`orbit_rows`'s rows, ``[G·B, ...]`` or ``[B·G, ...]``, as ``[G, B, ...]`` (a view;
    ``order`` = ``G``)."""
    if by_sample and rows.shape[0] != order:  # one sample: both orders are the same rows
        return rows.unflatten(0, (-1, order)).transpose(0, 1)
    return rows.unflatten(0, (order, -1))


def orbit_batch(symmetry: Symmetry, x: Any) -> Any:
    """The orbit of ``x [B, ...]`` as one batch ``[G·B, ...]``; for a dict input (a
    :class:`~equirl.actions.DictAction`), a dict of such batches, one per key."""
    orbit = symmetry.input_action.orbit(x)
    if isinstance(orbit, dict):
        return {k: v.flatten(0, 1) for k, v in orbit.items()}
    return orbit.flatten(0, 1)


def symmetrize_weights(
    x: torch.Tensor | dict[str, torch.Tensor],
    symmetry: Symmetry,
    encoder: Callable[[Any], torch.Tensor],
    head: Callable[[torch.Tensor], torch.Tensor] | None,
    reducer: Reducer,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`symmetrize` without side effects: ``(output [B, ...], weights [G, B] or None for equitune)``.

    Stateless, with a batch size that stays symbolic, so ``torch.export``, ``torch.jit.trace`` and
    ONNX export capture it with a dynamic batch.
    """
    rows, by_sample = orbit_rows(symmetry, x)  # [G·B, ...] or [B·G, ...] (per key for dict inputs)
    h = encoder(rows)
    G = symmetry.order
    y = by_group(h if head is None else head(h), G, by_sample)
    if not isinstance(reducer, LambdaReducer):
        return reducer.combine(y, symmetry.output_action, None)
    # the λ-net reads the features as the network gives them (one weight per sample): [G·B, F] in the orbit's
    # order, or the [G, B, F] view of sample-major rows
    features = h if h.dim() == 2 else h.flatten(1)
    return reducer.combine(y, symmetry.output_action, by_group(features, G, True) if by_sample else features)


class GroupAveraged(nn.Module):
    """Any network made exactly equivariant by group averaging.

    :param symmetry: the group and its actions on inputs and outputs.
    :param encoder: ``[N, ...] -> [N, F]``; with ``head`` None, the whole network.
    :param head: ``[N, F] -> [N, ...]``, or None.
    :param method: ``"equitune"``, ``"equizero"``, ``"lambda"`` or ``"equizero-td"`` (equizero's
        forward without the straight-through gradient).
    :param feature_dim: ``F`` (needed by ``"lambda"`` with the default λ-net).
    :param reducer_kwargs: passed to :func:`make_reducer` (``proxy_loss``, ``straight_through``,
        ``lambda_hidden``, ``lambda_temperature``, ``lambda_net``).

    ``forward(x [B, ...]) -> [B, ...]``.
    """

    def __init__(
        self,
        symmetry: Symmetry,
        encoder: nn.Module,
        head: nn.Module | None = None,
        method: str = "equitune",
        feature_dim: int | None = None,
        **reducer_kwargs: Any,
    ) -> None:
        super().__init__()
        self.symmetry = symmetry
        self.encoder = encoder
        self.head = head
        self.reducer = make_reducer(method, feature_dim, **reducer_kwargs)

    @property
    def method(self) -> str:
        return self.reducer.method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return symmetrize(x, self.symmetry, self.encoder, self.head, self.reducer)


def equivariance_error(
    f: Callable[[Any], torch.Tensor], symmetry: Symmetry, x: torch.Tensor | dict[str, torch.Tensor]
) -> float:
    """``max_g max |f(g·x) - ρ(g) f(x)|`` over a batch ``x [B, ...]`` (a float; 0 when exact).

    ``x`` may be a dict of batches when the symmetry's input action is a :class:`~equirl.actions.DictAction`.
    """
    with torch.no_grad():
        fx = f(x)
        f_orbit = f(orbit_batch(symmetry, x))
        expected = symmetry.output_action.orbit(fx)
        return float((f_orbit.reshape(expected.shape) - expected).abs().max().item())


def weight_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Entropy over the group of weights ``[G, B]`` -> ``[B]`` (nats; ``log|G|`` when uniform)."""
    w = weights.clamp_min(1e-12)
    return -(weights * w.log()).sum(0)


def max_entropy(order: int) -> float:
    """``log |G|``, the entropy of uniform weights."""
    return math.log(order)
