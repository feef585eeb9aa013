"""The symmetrised forward every equivariant SB3 policy shares: encode the orbit, run the heads, reduce.

A policy network ``M = head ∘ encode`` becomes ``M_G(s) = Σ_g w_g(s) ρ(g)⁻¹ M(g·s)``. The pieces:

- :func:`orbit_features`: the whole orbit's ``|G|·B`` rows through an encoder in one call, and the map back to ``[G, B, F]``;
- :func:`group_weights`: the reducer's convex weights ``w [G, B]`` (None for equitune: uniform), read from
  whichever output the method scores (a Q-network's Q-values, QR-DQN's mean over quantiles, an
  actor-critic's value or logits) and the features the λ-net reads;
- :func:`reduce_outputs`: ``Σ_g w_g ρ(g)⁻¹ y(g·s)`` for *any* output with *its own* action ``ρ``
  (permuted Q-values or logits, signed torques, an invariant value with :class:`equirl.TrivialAction`),
  with equizero's straight-through gradient where the reducer asks for it;
- :class:`SymmetrisedModule`: the mixin that keeps ``symmetry``, ``equivariance`` and ``reducer`` and the
  optional running statistics of the group weights (what :class:`~equirl.agents.GroupWeightLogger` logs).

One set of weights may serve several outputs: an actor-critic reduces its logits and its value with the
weights equizero chose once, so both come from the same selected view(s). Weights that are a function of
``g·s`` alone (every reducer's are) keep every output equivariant with its own action: the weight of
element ``g`` at ``h·s`` is the weight of ``g·h`` at ``s``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch as th
from equirl.agents.algorithms import ALGORITHMS

from equirl import METHODS, Symmetry, weight_entropy
from equirl.averaging import MeanReducer, Reducer, by_group, orbit_rows, reduce_outputs
from equirl.config import EquivarianceConfig

__all__ = [
    "SymmetrisedModule",
    "equivariance_of",
    "check_symmetry",
    "require_symmetry",
    "orbit_features",
    "group_weights",
    "reduce_outputs",
    "load_plain_weights",
    "refuse_foreign_algorithm",
    "online_selected_target",
]

POLICY_FOR = {a.class_name: a.policy_name for a in ALGORITHMS.values()}
"""The equivariant policy for each algorithm (by the algorithm's class name), for error messages."""


def equivariance_of(equivariance: EquivarianceConfig | None, kwargs: dict[str, Any]) -> EquivarianceConfig:
    """One configuration from either a given :class:`EquivarianceConfig` or its settings as keyword arguments."""
    if equivariance is None:
        return EquivarianceConfig.from_kwargs(**kwargs)
    if not isinstance(equivariance, EquivarianceConfig):
        raise TypeError(f"equivariance must be an equirl.EquivarianceConfig, got {type(equivariance).__name__}.")
    return equivariance.replace(**kwargs) if kwargs else equivariance


def check_symmetry(symmetry: Any, method: str) -> Symmetry:
    """``symmetry`` as a :class:`~equirl.Symmetry` (a catalogue name is looked up), with a clear error for
    anything else or for a ``method`` not in :data:`equirl.METHODS`."""
    if isinstance(symmetry, str):  # a catalogue name, as in rl-zoo3's string policy_kwargs
        from equirl.envs import get_symmetry

        symmetry = get_symmetry(symmetry)
    require_symmetry(symmetry, method)
    return symmetry  # type: ignore[no-any-return]


def require_symmetry(symmetry: Any, method: str) -> None:
    """A clear ``TypeError`` unless ``symmetry`` is a :class:`~equirl.Symmetry`, ``ValueError`` for a ``method``
    not in :data:`equirl.METHODS`."""
    if not isinstance(symmetry, Symmetry):
        raise TypeError(
            f"symmetry must be an equirl.Symmetry (for example envs.get_symmetry('CartPole-v1')), "
            f"got {type(symmetry).__name__}."
        )
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; expected one of {METHODS}.")


def orbit_features(
    obs: Any, symmetry: Symmetry, encode: Callable[[Any], Any]
) -> tuple[Any, Callable[[th.Tensor], th.Tensor]]:
    """``(encode(rows), by_group)`` for observations ``obs [B, ...]``: the orbit's ``|G|·B`` rows in one call, in the
    order the input action builds fastest (:func:`equirl.averaging.orbit_rows`; for a dict of observations acted on
    by a :class:`~equirl.actions.DictAction`, a dict of such rows).

    ``encode`` may return one tensor or a tuple of tensors ``[|G|·B, ...]`` (an actor-critic's two latents);
    ``by_group(t)`` turns each (and anything computed row by row from them) into ``[G, B, ...]``, a view. Integer
    observations are cast to float first (SB3's preprocessing starts with ``.float()`` for Box spaces: the same
    values, and the orbit's index operations run on float32, much faster than on uint8 on CPU).
    """
    if isinstance(obs, th.Tensor) and not obs.is_floating_point():
        obs = obs.float()
    rows, by_sample = orbit_rows(symmetry, obs)
    G = symmetry.order
    return encode(rows), lambda t: by_group(t, G, by_sample)


def group_weights(reducer: Reducer, scored: th.Tensor, features: th.Tensor | None) -> th.Tensor | None:
    """The reducer's weights ``[G, B]`` over the group, or None for equitune (uniform).

    :param scored: what equizero's proxy loss scores, ``[G, B, ...]`` (for example Q-values ``[G, B, A]``).
    :param features: what the λ-net reads, ``[G, B, F]`` (None when the method needs none).
    """
    if isinstance(reducer, MeanReducer):
        return None
    return reducer.weights(scored, features)


def straight_through_of(reducer: Reducer) -> bool:
    """Whether ``reducer`` trains with equizero's straight-through gradient (equizero with it on; never equizero-td)."""
    return bool(getattr(reducer, "straight_through", False))


def refuse_foreign_algorithm(policy: str, allowed: type, max_depth: int = 8) -> None:
    """Raise a clear ``TypeError`` when an SB3 algorithm that is not an ``allowed`` one builds ``policy``.

    Call it from the policy's ``__init__``: the nearest calling frame whose ``self`` is an SB3 algorithm is
    the one building the policy (``_setup_model``). A policy built or loaded on its own has none and passes.
    """
    import sys

    from stable_baselines3.common.base_class import BaseAlgorithm

    frame: Any = sys._getframe(1)
    for _ in range(max_depth):
        if frame is None:
            return
        caller = frame.f_locals.get("self")
        if isinstance(caller, BaseAlgorithm):
            if isinstance(caller, allowed):
                return
            algo = type(caller).__name__
            instead = POLICY_FOR.get(algo)
            hint = f"use equirl.agents.{instead} there" if instead else "equirl has no equivariant policy for it yet"
            raise TypeError(
                f"{policy} is a policy for {allowed.__name__}, but {algo} is building it; {hint}, or the "
                "algorithm's own 'MlpPolicy' for a plain baseline."
            )
        frame = frame.f_back


def load_plain_weights(policy: th.nn.Module, plain_state: Mapping[str, th.Tensor]) -> list[str]:
    """Copy the weights of a plain SB3 policy into its symmetrised counterpart: zero-shot transfer.

    The symmetrised policies keep SB3's module layout (``q_net``, ``quantile_net``, ``mlp_extractor``,
    ``action_net``, ``value_net``, ``log_std``, ...) and add only reducers, so a plain policy's
    ``state_dict()`` fits them when the architecture arguments (``net_arch``, ``n_quantiles``, the
    features extractor, ...) are the same. Example, for PPO::

        plain = PPO.load("plain_ppo.zip")  # SB3's zip unpickles: only files you trust
        model = PPO(EquiActorCriticPolicy, env, policy_kwargs=dict(symmetry=sym, method="equizero"))
        load_plain_weights(model.policy, plain.policy.state_dict())

    Returns the keys left at their initial values (the λ-nets, which start as equitune).
    :raises ValueError: when a weight of the plain policy has no place here, or a non-reducer weight is
        missing (a different architecture), naming them.
    """
    advice = (
        "Build the equivariant policy with the plain one's architecture arguments (net_arch, n_quantiles, "
        "features extractor, share_features_extractor)."
    )
    try:
        result = policy.load_state_dict(dict(plain_state), strict=False)
    except RuntimeError as err:  # shapes that differ
        raise ValueError(f"The plain weights do not fit {type(policy).__name__}: {err}. {advice}") from err
    missing = [k for k in result.missing_keys if "reducer." not in k]
    if result.unexpected_keys or missing:
        raise ValueError(
            f"The plain weights do not fit {type(policy).__name__}: unexpected {sorted(result.unexpected_keys)[:8]}, "
            f"missing {missing[:8]}. {advice}"
        )
    return list(result.missing_keys)


_REGISTRATIONS = [0]
"""How many times any torch module has registered a submodule in this process (a global torch hook counts
them), so that :meth:`SymmetrisedModule.set_training_mode` knows when its list of modules may be stale."""


def _count_registration(module: th.nn.Module, name: str, submodule: th.nn.Module | None) -> None:
    _REGISTRATIONS[0] += 1


th.nn.modules.module.register_module_module_registration_hook(_count_registration)


class SymmetrisedModule:
    """Mixin for a ``torch.nn.Module`` symmetrised over a group: ``symmetry``, ``equivariance``, ``method``
    and the running statistics of the group weights.

    Subclasses set ``symmetry`` and ``equivariance``, call :meth:`reset_weight_stats` once in ``__init__``
    and pass the weights of every forward to :meth:`record_weights`. With :attr:`collect_weight_stats` off
    (the default) the forward stores nothing, so an evaluation-mode network stays stateless (exportable).
    """

    symmetry: Symmetry
    equivariance: EquivarianceConfig

    @property
    def method(self) -> str:
        return self.equivariance.method

    def set_training_mode(self, mode: bool) -> None:
        """SB3's ``set_training_mode``: every module gets ``mode`` (``self.train(mode)``), without the walk over
        all modules when every one already has it.

        SB3 calls this on every ``predict`` and every gradient step; walking the module tree (``Module.train``) costs
        about a microsecond per module, which at one observation is a fifth of plain DQN's whole ``predict``. The
        modules are listed once, and again after any module anywhere registers a submodule.
        """
        cached = self.__dict__.get("_all_modules")
        if cached is None or cached[0] != _REGISTRATIONS[0]:
            cached = (_REGISTRATIONS[0], tuple(self.modules()))  # type: ignore[attr-defined]
            self.__dict__["_all_modules"] = cached
        for module in cached[1]:
            if module.training != mode:
                self.train(mode)  # type: ignore[attr-defined]
                return

    collect_weight_stats: bool = False
    """When True, training-mode forwards add their group weights to the statistics that
    :meth:`weight_stats` returns (what :class:`~equirl.agents.GroupWeightLogger` switches on). Off by
    default, so that the forward stores nothing and costs nothing beyond its outputs."""

    def record_weights(self, w: th.Tensor | None) -> None:
        """Add weights ``[G, B]`` to the statistics when :attr:`collect_weight_stats` is on and the module trains."""
        if w is not None and self.collect_weight_stats and self.training:  # type: ignore[attr-defined]
            self._add_weight_stats(w.detach())

    def _add_weight_stats(self, w: th.Tensor) -> None:
        """Accumulate statistics of weights ``[G, B]`` in place, as tensors (no Python counters)."""
        stats = self._stats
        stats["weights"].add_(w.mean(1))
        stats["entropy"].add_(weight_entropy(w).mean())
        stats["max_weight"].add_(w.max(0).values.mean())
        stats["count"].add_(1)

    def reset_weight_stats(self) -> None:
        """Clear the running sums of the group weights seen in training-mode forwards."""
        G = self.symmetry.order
        device = self._stats["weights"].device if hasattr(self, "_stats") else None
        self._stats: dict[str, th.Tensor] = {
            "weights": th.zeros(G, device=device),
            "entropy": th.zeros((), device=device),
            "max_weight": th.zeros((), device=device),
            "count": th.zeros((), device=device),
        }

    def weight_stats(self, reset: bool = True) -> dict[str, float]:
        """Mean group-weight statistics since the last reset (empty when none were recorded).

        Forwards add to them only while :attr:`collect_weight_stats` is on. Keys: ``entropy`` (nats;
        ``log|G|`` = uniform), ``max_weight``, and ``weight/<element>``.
        """
        n = float(self._stats["count"])
        if n == 0:
            return {}
        out = {"entropy": float(self._stats["entropy"]) / n, "max_weight": float(self._stats["max_weight"]) / n}
        for name, w in zip(self.symmetry.group.element_names, (self._stats["weights"] / n).tolist(), strict=True):
            out[f"weight/{name}"] = w
        if reset:
            self.reset_weight_stats()
        return out

    def _apply(self, fn: Any, recurse: bool = True) -> Any:  # keep stats on the module's device
        super()._apply(fn, recurse)  # type: ignore[misc]
        if hasattr(self, "_stats"):
            self._stats = {k: fn(v) for k, v in self._stats.items()}
        return self


def online_selected_target(policy: Any, target_class: type, online: th.nn.Module) -> Any:
    """A policy's target network for :data:`equirl.ONLINE_SELECTED_TARGET` methods (``equizero-td``):
    ``target_class`` built like ``online`` (the policy's ``net_args``, symmetry and equivariance), with its
    weights, in evaluation mode, reading ``online``'s choice of views. Shared by the DQN and QR-DQN policies."""
    net_args = policy._update_features_extractor(policy.net_args, features_extractor=None)
    target = target_class(**net_args, symmetry=policy.symmetry, equivariance=policy.equivariance).to(policy.device)
    target.load_state_dict(online.state_dict())
    target.set_training_mode(False)
    target.bind_online(online)
    return target
