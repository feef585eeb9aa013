"""Stable-Baselines3 DQN policies whose Q-networks are symmetrised over a group.

Drop-in use::

    from stable_baselines3 import DQN
    from equirl.agents import EquiDQNPolicy
    from equirl.envs import get_symmetry

    model = DQN(EquiDQNPolicy, "CartPole-v1",
                policy_kwargs=dict(symmetry=get_symmetry("CartPole-v1"), method="lambda", net_arch=[256, 256]))

The symmetrisation lives in :meth:`EquiQNetwork.forward`, which SB3 calls for acting, for the
current Q-values and, through ``q_net_target``, for the TD target: both networks are equivariant,
each with its own copy of the λ-net. The module layout (``features_extractor``, ``q_net``) is that of
SB3's :class:`~stable_baselines3.dqn.policies.QNetwork` plus ``reducer``, so weights of a plain SB3
DQN load into it unchanged.
"""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from equirl import METHODS, Symmetry, make_reducer, symmetrize, weight_entropy
from equirl.proxy import ProxyLoss

__all__ = ["EquiQNetwork", "EquiDQNPolicy"]


def check_equivariance_args(
    symmetry: Any, method: str, observation_space: spaces.Space, action_space: spaces.Space
) -> None:
    """Raise a clear error unless ``symmetry`` and ``method`` fit these spaces."""
    if not isinstance(symmetry, Symmetry):
        raise TypeError(
            f"symmetry must be an equirl.Symmetry (for example envs.get_symmetry('CartPole-v1')), "
            f"got {type(symmetry).__name__}."
        )
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; expected one of {METHODS}.")
    if not isinstance(action_space, spaces.Discrete):
        raise TypeError(f"Equivariant DQN needs a Discrete action space, got {action_space}.")
    if not isinstance(observation_space, spaces.Box):
        raise TypeError(
            f"Equivariant DQN supports Box observations (vectors or images), got {observation_space}. "
            "Wrap dict observations into one Box first."
        )
    symmetry.validate(observation_space.shape, (int(action_space.n),))


def equivariance_kwargs(
    symmetry: Symmetry,
    method: str,
    proxy_loss: str | ProxyLoss,
    straight_through: bool,
    lambda_hidden: int,
    lambda_temperature: float,
) -> dict[str, Any]:
    """The (picklable) arguments that define a symmetrisation, as both the policy and its Q-networks keep them."""
    return dict(
        symmetry=symmetry,
        method=method,
        proxy_loss=proxy_loss,
        straight_through=straight_through,
        lambda_hidden=lambda_hidden,
        lambda_temperature=lambda_temperature,
    )


class _Symmetrised:
    """``symmetry`` and ``method`` read from the one ``equivariance_kwargs`` dict."""

    equivariance_kwargs: dict[str, Any]

    @property
    def symmetry(self) -> Symmetry:
        return self.equivariance_kwargs["symmetry"]  # type: ignore[no-any-return]

    @property
    def method(self) -> str:
        return self.equivariance_kwargs["method"]  # type: ignore[no-any-return]


class EquiQNetwork(_Symmetrised, QNetwork):
    """SB3's Q-network made equivariant: ``Q_G(s) = Σ_g w_g(s) ρ(g)⁻¹ Q(g·s)``.

    :param symmetry: the group with its action on observations (as SB3 feeds them to the
        network, images channel-first and still uint8) and on the action dimension.
    :param method: ``"equitune"``, ``"equizero"`` or ``"lambda"``.
    :param proxy_loss: equizero's proxy loss (name in ``equirl.PROXY_LOSSES`` or a callable).
    :param straight_through: equizero's forward with equitune's gradient while training.
    :param lambda_hidden: width of the λ-net, which reads the last hidden layer of ``q_net``.
    :param lambda_temperature: softmax temperature of the λ weights.
    Other parameters as in SB3's ``QNetwork``. ``forward(obs [B, ...]) -> Q [B, n_actions]``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        *,
        symmetry: Symmetry,
        method: str = "lambda",
        proxy_loss: str | ProxyLoss = "neg_max",
        straight_through: bool = True,
        lambda_hidden: int = 64,
        lambda_temperature: float = 1.0,
    ) -> None:
        check_equivariance_args(symmetry, method, observation_space, action_space)
        super().__init__(
            observation_space, action_space, features_extractor, features_dim, net_arch, activation_fn, normalize_images
        )
        self.equivariance_kwargs: dict[str, Any] = equivariance_kwargs(
            symmetry, method, proxy_loss, straight_through, lambda_hidden, lambda_temperature
        )
        hidden_dim = self.net_arch[-1] if self.net_arch else self.features_dim
        self.reducer = make_reducer(
            method,
            feature_dim=hidden_dim,
            proxy_loss=proxy_loss,
            straight_through=straight_through,
            lambda_hidden=lambda_hidden,
            lambda_temperature=lambda_temperature,
        )
        self.reset_weight_stats()
        # the hidden layers of q_net, as a plain tuple (not registered again as submodules)
        self._hidden_layers: tuple[nn.Module, ...] = tuple(self.q_net)[:-1]

    def encode(self, obs: th.Tensor) -> th.Tensor:
        """Raw observations ``[N, ...]`` -> last hidden layer ``[N, F]`` (what the λ-net reads)."""
        h = self.extract_features(obs, self.features_extractor)
        for layer in self._hidden_layers:
            h = layer(h)
        return h

    def head(self, h: th.Tensor) -> th.Tensor:
        """Last hidden layer ``[N, F]`` -> Q-values ``[N, n_actions]``."""
        return self.q_net[-1](h)

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """Equivariant Q-values ``[B, n_actions]`` for raw observations ``[B, ...]``."""
        assert isinstance(obs, th.Tensor)
        q = symmetrize(obs, self.symmetry, self.encode, self.head, self.reducer)
        if self.training and self.reducer.last_weights is not None:
            w = self.reducer.last_weights
            self._stats["weights"] += w.mean(1)
            self._stats["entropy"] += weight_entropy(w).mean()
            self._stats["max_weight"] += w.max(0).values.mean()
            self._stats["count"] += 1
        return q

    def reset_weight_stats(self) -> None:
        """Clear the running averages of the group weights seen in training-mode forwards."""
        G = self.symmetry.order
        self._stats: dict[str, Any] = {"weights": th.zeros(G), "entropy": th.zeros(()), "max_weight": th.zeros(())}
        self._stats["count"] = 0

    def weight_stats(self, reset: bool = True) -> dict[str, float]:
        """Mean group-weight statistics since the last reset (empty when none were recorded).

        Keys: ``entropy`` (nats; ``log|G|`` = uniform), ``max_weight``, and ``weight/<element>``.
        """
        n = self._stats["count"]
        if n == 0:
            return {}
        out = {"entropy": float(self._stats["entropy"]) / n, "max_weight": float(self._stats["max_weight"]) / n}
        for name, w in zip(self.symmetry.group.element_names, (self._stats["weights"] / n).tolist(), strict=True):
            out[f"weight/{name}"] = w
        if reset:
            self.reset_weight_stats()
        return out

    def _apply(self, fn: Any, recurse: bool = True) -> EquiQNetwork:  # keep stats on the module's device
        super()._apply(fn, recurse)
        self._stats = {k: (fn(v) if isinstance(v, th.Tensor) else v) for k, v in self._stats.items()}
        return self

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self.equivariance_kwargs)
        return data


def _refuse_other_algorithms(unexpected: dict[str, Any]) -> None:
    """Raise a clear ``TypeError`` when an SB3 algorithm other than DQN builds an :class:`EquiDQNPolicy`.

    SB3 algorithms construct their policy in ``_setup_model``; the caller's ``self`` is the algorithm
    (a policy loaded on its own, ``EquiDQNPolicy.load``, has no algorithm and passes). Actor-critic
    algorithms (PPO, A2C) also pass arguments such as ``use_sde`` that a DQN policy does not take.
    """
    import sys

    from stable_baselines3 import DQN
    from stable_baselines3.common.base_class import BaseAlgorithm

    caller = sys._getframe(2).f_locals.get("self")
    algo = type(caller).__name__ if isinstance(caller, BaseAlgorithm) and not isinstance(caller, DQN) else None
    if algo is None and not unexpected:
        return
    if algo is None:
        if "use_sde" in unexpected:
            algo = "an actor-critic algorithm (PPO, A2C)"
        else:
            raise TypeError(
                f"EquiDQNPolicy got unexpected arguments {sorted(unexpected)}; it takes SB3's DQNPolicy arguments "
                "plus symmetry, method, proxy_loss, straight_through, lambda_hidden, lambda_temperature."
            )
    raise TypeError(
        f"EquiDQNPolicy is a policy for SB3's DQN, but {algo} is building it. equirl has no equivariant "
        f"policies for other algorithms yet: train with DQN(EquiDQNPolicy, env, policy_kwargs=dict(symmetry=..., "
        "method=...)), or use the other algorithm's own policy (e.g. 'MlpPolicy') for a plain baseline."
    )


class EquiDQNPolicy(_Symmetrised, DQNPolicy):
    """SB3's ``DQNPolicy`` with equivariant Q-network and target network.

    :param symmetry: an ``equirl.Symmetry`` acting on observations and on the action dimension
        (for example ``envs.get_symmetry("CartPole-v1")``), or its catalogue name (``"CartPole-v1"``).
    :param method: ``"equitune"``, ``"equizero"`` or ``"lambda"`` (λ-equitune, the default).
    :param proxy_loss: equizero's proxy loss: ``"neg_max"`` (``-max_a Q``), ``"neg_margin"``, or a callable.
    :param straight_through: equizero trains with equitune's gradient (its forward is unchanged).
    :param lambda_hidden: width of the λ-net.
    :param lambda_temperature: softmax temperature of the λ weights.
    Every other argument is SB3's ``DQNPolicy``'s, unchanged. The policy is for SB3's ``DQN`` (and its
    subclasses) only: other algorithms (PPO, A2C, QR-DQN, ...) get a ``TypeError`` saying what to use.
    """

    q_net: EquiQNetwork
    q_net_target: EquiQNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        symmetry: Symmetry | None = None,
        method: str = "lambda",
        proxy_loss: str | ProxyLoss = "neg_max",
        straight_through: bool = True,
        lambda_hidden: int = 64,
        lambda_temperature: float = 1.0,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        **unexpected: Any,
    ) -> None:
        _refuse_other_algorithms(unexpected)
        if symmetry is None:
            raise TypeError(
                "EquiDQNPolicy needs policy_kwargs=dict(symmetry=...), for example envs.get_symmetry('CartPole-v1')."
            )
        if isinstance(symmetry, str):  # a catalogue name, as in rl-zoo3's string policy_kwargs
            from equirl.envs import get_symmetry

            symmetry = get_symmetry(symmetry)
        check_equivariance_args(symmetry, method, observation_space, action_space)
        self.equivariance_kwargs: dict[str, Any] = equivariance_kwargs(
            symmetry, method, proxy_loss, straight_through, lambda_hidden, lambda_temperature
        )
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )

    def make_q_net(self) -> EquiQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return EquiQNetwork(**net_args, **self.equivariance_kwargs).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self.equivariance_kwargs)
        return data
