"""Equivariant QR-DQN: sb3-contrib's ``QRDQN`` with quantile networks symmetrised over a group.

Drop-in use, as :class:`~equirl.agents.EquiDQNPolicy` for DQN::

    from sb3_contrib import QRDQN
    from equirl.agents import EquiQRDQNPolicy
    from equirl.envs import get_symmetry

    model = QRDQN(EquiQRDQNPolicy, "CartPole-v1",
                  policy_kwargs=dict(symmetry=get_symmetry("CartPole-v1"), method="lambda", n_quantiles=25))

The quantiles ``θ(s) [B, n_quantiles, n_actions]`` (sb3-contrib's layout) become
``θ_G(s) = Σ_g w_g(s) ρ(g)⁻¹ θ(g·s)``, with ``ρ`` the symmetry's action on the *action* dimension (the
last one) only: the quantile dimension is untouched, so each action's return distribution moves with
its action. equizero scores a view by its proxy loss on the Q-values, the mean over quantiles
``[G, B, n_actions]`` (``neg_max``: the view of largest ``max_a Q``). Both the online and the target
network are symmetrised (each with its own λ-net); ``equizero-td``'s target evaluates the views the
online network selects, as for DQN (:class:`~equirl.agents.policies.OnlineSelectedTarget`).

The module layout is sb3-contrib's ``QuantileNetwork`` plus ``reducer``, so the weights of a plain
QR-DQN load into it unchanged (``strict=False`` for the λ-net, or
:func:`~equirl.agents.equivariant_from_pretrained`, which reads a plain QR-DQN zip without unpickling).
Observations may be of any space :mod:`equirl.agents.spaces` handles (Box, Discrete, MultiDiscrete,
MultiBinary, Dict), as for DQN; :func:`~equirl.agents.save_agent` saves the agent as data.
"""

from __future__ import annotations

from typing import Any

import torch as th
from equirl.agents.policies import check_equivariance_args
from equirl.agents.spaces import default_features_extractor, extract_features, lift_symmetry, network_input
from equirl.agents.symmetrised import (
    SymmetrisedModule,
    check_symmetry,
    equivariance_of,
    group_weights,
    online_selected_target,
    orbit_features,
    reduce_outputs,
    refuse_foreign_algorithm,
    straight_through_of,
)
from gymnasium import spaces
from sb3_contrib.qrdqn.policies import QRDQNPolicy, QuantileNetwork
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from equirl import ONLINE_SELECTED_TARGET, Symmetry
from equirl.config import EquivarianceConfig

__all__ = ["EquiQuantileNetwork", "OnlineSelectedQuantileTarget", "EquiQRDQNPolicy"]


class EquiQuantileNetwork(SymmetrisedModule, QuantileNetwork):
    """sb3-contrib's quantile network made equivariant: ``θ_G(s) = Σ_g w_g(s) ρ(g)⁻¹ θ(g·s)``.

    :param symmetry: the group with its action on observations and on the action dimension (a
        permutation of ``range(n_actions)`` on the last dim, as for DQN).
    :param equivariance: the method and its settings (:class:`equirl.EquivarianceConfig`), or its settings
        as keyword arguments. The λ-net reads the last hidden layer of ``quantile_net``.
    Other parameters as sb3-contrib's ``QuantileNetwork``.
    ``forward(obs [B, ...]) -> quantiles [B, n_quantiles, n_actions]``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        n_quantiles: int = 200,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        *,
        symmetry: Symmetry,
        equivariance: EquivarianceConfig | None = None,
        **equivariance_kwargs: Any,
    ) -> None:
        config = equivariance_of(equivariance, equivariance_kwargs)
        check_equivariance_args(symmetry, config.method, observation_space, action_space)
        super().__init__(
            observation_space,
            action_space,
            features_extractor,
            features_dim,
            n_quantiles,
            net_arch,
            activation_fn,
            normalize_images,
        )
        self.symmetry = symmetry
        self.equivariance = config
        # the symmetry acting where the orbit is taken: on SB3's preprocessed tensor for non-Box spaces
        self.input_symmetry = lift_symmetry(symmetry, observation_space)
        self.reducer = config.make_reducer(self.net_arch[-1] if self.net_arch else self.features_dim)
        self.reset_weight_stats()  # type: ignore[operator]  # a mixin method (mypy sees the import as Any)
        layers = tuple(self.quantile_net)
        self._hidden_layers: tuple[nn.Module, ...] = layers[:-1]  # plain tuples: not registered twice
        self._head_layer: tuple[nn.Module] = (layers[-1],)

    def encode(self, x: th.Tensor | dict[str, th.Tensor]) -> th.Tensor:
        """:func:`~equirl.agents.spaces.network_input` of observations ``[N, ...]`` (a dict for Dict spaces) ->
        last hidden layer ``[N, F]`` (what the λ-net reads)."""
        h = extract_features(x, self.features_extractor, self.observation_space, self.normalize_images)
        for layer in self._hidden_layers:
            h = layer(h)
        return h

    def head(self, h: th.Tensor) -> th.Tensor:
        """Last hidden layer ``[N, F]`` -> quantiles ``[N, n_quantiles, n_actions]``."""
        return self._head_layer[0](h).view(-1, self.n_quantiles, int(self.action_space.n))

    def orbit_quantiles(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """``(quantiles θ(g·s) [G, B, n_quantiles, n_actions], features [G, B, F])`` over the orbit of raw
        observations ``obs [B, ...]`` (any space of :mod:`equirl.agents.spaces`; a dict for Dict spaces)."""
        x = network_input(obs, self.observation_space, self.normalize_images)
        h, by_group = orbit_features(x, self.input_symmetry, self.encode)
        return by_group(self.head(h)), by_group(h)

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """Equivariant quantiles ``[B, n_quantiles, n_actions]`` for raw observations ``[B, ...]``.

        Stateless unless :attr:`collect_weight_stats` is on and the module is training.
        """
        q, h = self.orbit_quantiles(obs)
        w = group_weights(self.reducer, q.mean(-2), h)  # equizero scores the Q-values (mean over quantiles)
        self.record_weights(w)  # type: ignore[operator]  # a mixin method (mypy sees the import as Any)
        return reduce_outputs(q, self.symmetry.output_action, w, straight_through_of(self.reducer))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(symmetry=self.symmetry, equivariance=self.equivariance)
        return data


class OnlineSelectedQuantileTarget(EquiQuantileNetwork):
    """``equizero-td``'s target network for QR-DQN: its own quantiles at the views the online network selects.

    ``forward(s [B, ...]) -> [B, n_quantiles, n_actions]`` is ``Σ_g w_g(s) ρ(g)⁻¹ θ'(g·s)`` with ``θ'`` this
    network and ``w`` the online network's equizero weights (scored on the online Q-values), as
    :class:`~equirl.agents.policies.OnlineSelectedTarget` does for DQN. The online network is referenced,
    not a submodule, so the weights and layout are :class:`EquiQuantileNetwork`'s.
    """

    _online: tuple[EquiQuantileNetwork, ...] = ()

    def bind_online(self, online: EquiQuantileNetwork) -> None:
        """Use ``online``'s reducer and quantiles to select the views (kept out of this module's state)."""
        self._online = (online,)

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """Quantiles ``[B, n_quantiles, n_actions]`` of this network at the online network's views of ``obs``."""
        if not self._online:
            raise RuntimeError("OnlineSelectedQuantileTarget needs bind_online(quantile_net) before its first forward.")
        online = self._online[0]
        q, _ = self.orbit_quantiles(obs)
        with th.no_grad():
            q_online, h_online = online.orbit_quantiles(obs)
            w = group_weights(online.reducer, q_online.mean(-2), h_online)
        return reduce_outputs(q, self.symmetry.output_action, w)


def _refuse_other_algorithms(unexpected: dict[str, Any]) -> None:
    """A clear ``TypeError`` for arguments a QR-DQN policy does not take (another algorithm building it)."""
    if not unexpected:
        return
    if "use_sde" in unexpected:
        raise TypeError(
            "EquiQRDQNPolicy is a policy for sb3-contrib's QRDQN, but an actor-critic algorithm (PPO, A2C) is "
            "building it; use equirl.agents.EquiActorCriticPolicy there."
        )
    raise TypeError(
        f"EquiQRDQNPolicy got unexpected arguments {sorted(unexpected)}; it takes sb3-contrib's QRDQNPolicy "
        f"arguments plus symmetry, equivariance and the EquivarianceConfig settings "
        f"{list(EquivarianceConfig.field_names())}."
    )


class EquiQRDQNPolicy(SymmetrisedModule, QRDQNPolicy):
    """sb3-contrib's ``QRDQNPolicy`` with equivariant quantile and target networks.

    :param symmetry: an ``equirl.Symmetry`` acting on observations and on the action dimension (for example
        ``envs.get_symmetry("CartPole-v1")``), or its catalogue name.
    :param equivariance: an :class:`equirl.EquivarianceConfig`, or its settings as keyword arguments
        (``method``, ``proxy_loss``, ``straight_through``, ``tie_tolerance``, ``lambda_hidden``,
        ``lambda_temperature``), as for :class:`~equirl.agents.EquiDQNPolicy`. equizero's proxy loss
        scores the mean over quantiles ``[G, B, n_actions]``.
    Every other argument is sb3-contrib's ``QRDQNPolicy``'s, unchanged (``n_quantiles``, ``net_arch``, ...);
    for Dict observations the default features extractor is SB3's ``CombinedExtractor`` (as
    ``MultiInputPolicy``). Observations may be of any space SB3's DQN accepts (Box, Discrete, MultiDiscrete,
    MultiBinary, Dict), the symmetry declared on the raw observations (see :mod:`equirl.agents.spaces`).
    """

    quantile_net: EquiQuantileNetwork
    quantile_net_target: EquiQuantileNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        n_quantiles: int = 200,
        symmetry: Symmetry | str | None = None,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        equivariance: EquivarianceConfig | None = None,
        **equivariance_kwargs: Any,
    ) -> None:
        from sb3_contrib import QRDQN

        refuse_foreign_algorithm("EquiQRDQNPolicy", QRDQN)
        known = set(EquivarianceConfig.field_names())
        _refuse_other_algorithms({k: v for k, v in equivariance_kwargs.items() if k not in known})
        if symmetry is None:
            raise TypeError(
                "EquiQRDQNPolicy needs policy_kwargs=dict(symmetry=...), for example envs.get_symmetry('CartPole-v1')."
            )
        config = equivariance_of(equivariance, equivariance_kwargs)
        sym = check_symmetry(symmetry, config.method)
        check_equivariance_args(sym, config.method, observation_space, action_space)
        self.symmetry = sym
        self.equivariance = config
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            n_quantiles=n_quantiles,
            net_arch=net_arch,
            activation_fn=activation_fn,
            features_extractor_class=default_features_extractor(observation_space, features_extractor_class),
            features_extractor_kwargs=features_extractor_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )

    def make_quantile_net(self) -> EquiQuantileNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return EquiQuantileNetwork(**net_args, symmetry=self.symmetry, equivariance=self.equivariance).to(self.device)

    def _build(self, lr_schedule: Schedule) -> None:
        """sb3-contrib's build; for ``equizero-td`` the target is an :class:`OnlineSelectedQuantileTarget`."""
        super()._build(lr_schedule)
        if self.method in ONLINE_SELECTED_TARGET:
            self.quantile_net_target = online_selected_target(self, OnlineSelectedQuantileTarget, self.quantile_net)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        """sb3-contrib's parameters plus the symmetry and every equivariance setting (``save`` keeps them all)."""
        data = super()._get_constructor_parameters()
        data.update(symmetry=self.symmetry, **self.equivariance.to_kwargs())
        return data
