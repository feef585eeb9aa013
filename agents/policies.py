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
from equirl.agents.spaces import is_preprocessed, lift_symmetry, network_input
from equirl.agents.symmetrised import SymmetrisedModule, equivariance_of, online_selected_target, require_symmetry
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from equirl import ONLINE_SELECTED_TARGET, Symmetry
from equirl.averaging import by_group, orbit_rows, symmetrize_weights
from equirl.config import EquivarianceConfig

__all__ = ["EquiQNetwork", "EquiDQNPolicy", "OnlineSelectedTarget"]


def check_equivariance_args(
    symmetry: Any, method: str, observation_space: spaces.Space, action_space: spaces.Space
) -> None:
    """Raise a clear error unless ``symmetry`` and ``method`` fit these spaces."""
    require_symmetry(symmetry, method)
    if not isinstance(action_space, spaces.Discrete):
        raise TypeError(f"Equivariant DQN needs a Discrete action space, got {action_space}.")
    lift_symmetry(symmetry, observation_space)  # checks the input action on the raw space (any SB3 DQN space)
    try:
        symmetry.output_action.validate((int(action_space.n),))
    except ValueError as err:
        raise ValueError(
            f"Symmetry {symmetry.name!r} does not fit outputs of shape ({int(action_space.n)},): {err}"
        ) from err


_Symmetrised = SymmetrisedModule  # the former name of the mixin
_equivariance_of = equivariance_of


class EquiQNetwork(SymmetrisedModule, QNetwork):
    """SB3's Q-network made equivariant: ``Q_G(s) = Σ_g w_g(s) ρ(g)⁻¹ Q(g·s)``.

    :param symmetry: the group with its action on observations (as SB3 feeds them to the
        network, images channel-first and still uint8) and on the action dimension.
    :param equivariance: the method and its settings (:class:`equirl.EquivarianceConfig`); its
        settings may instead be given as keyword arguments (``method="lambda"``, ``lambda_hidden=64``, ...).
        The λ-net reads the last hidden layer of ``q_net``.
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
        equivariance: EquivarianceConfig | None = None,
        **equivariance_kwargs: Any,
    ) -> None:
        config = _equivariance_of(equivariance, equivariance_kwargs)
        check_equivariance_args(symmetry, config.method, observation_space, action_space)
        super().__init__(
            observation_space, action_space, features_extractor, features_dim, net_arch, activation_fn, normalize_images
        )
        self.symmetry = symmetry
        self.equivariance = config
        # the symmetry acting where the orbit is taken: on SB3's preprocessed tensor for non-Box spaces
        self.input_symmetry = lift_symmetry(symmetry, observation_space)
        self._preprocessed = is_preprocessed(observation_space)
        hidden_dim = self.net_arch[-1] if self.net_arch else self.features_dim
        self.reducer = config.make_reducer(hidden_dim)
        self.reset_weight_stats()  # type: ignore[operator]  # a mixin method (mypy sees the import as Any)
        # the hidden layers of q_net, as a plain tuple (not registered again as submodules)
        self._hidden_layers: tuple[nn.Module, ...] = tuple(self.q_net)[:-1]
        self._head_layer: tuple[nn.Module] = (self.q_net[-1],)  # a tuple: not registered as a submodule

    def network_input(self, obs: PyTorchObs) -> PyTorchObs:
        """What the orbit acts on: Box observations as float ``[B, ...]`` (SB3's preprocess_obs starts with
        ``obs.float()``; doing it before the orbit gives the same values and keeps the orbit's index operations on
        float32, much faster than on uint8 on CPU); other spaces preprocessed as SB3 does (one-hot, float, per key;
        see :func:`equirl.agents.spaces.preprocess`), for :attr:`input_symmetry` to act on."""
        return network_input(obs, self.observation_space, self.normalize_images)

    def encode(self, obs: PyTorchObs) -> th.Tensor:
        """:meth:`network_input` of observations, ``[N, ...]`` -> last hidden layer ``[N, F]`` (what the λ-net reads)."""
        if self._preprocessed:
            h = self.features_extractor(obs)
        else:
            h = self.extract_features(obs, self.features_extractor)
        for layer in self._hidden_layers:
            h = layer(h)
        return h

    def head(self, h: th.Tensor) -> th.Tensor:
        """Last hidden layer ``[N, F]`` -> Q-values ``[N, n_actions]``."""
        return self._head_layer[0](h)

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """Equivariant Q-values ``[B, n_actions]`` for raw observations ``[B, ...]``.

        Stateless unless :attr:`collect_weight_stats` is on and the module is training, so the
        evaluation-mode network exports (``torch.export``, ``torch.jit.trace``, ONNX) with a dynamic batch.
        """
        q, w = symmetrize_weights(self.network_input(obs), self.input_symmetry, self.encode, self.head, self.reducer)
        if w is not None and self.collect_weight_stats:
            self.record_weights(w)  # type: ignore[operator]  # a mixin method (mypy sees the import as Any)
        return q

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(symmetry=self.symmetry, equivariance=self.equivariance)
        return data


class OnlineSelectedTarget(EquiQNetwork):
    """The TD target network of ``equizero-td``: its own Q-values at the views the online network selects.

    ``forward(s [B, ...]) -> [B, n_actions]`` is ``Σ_g w_g(s) ρ(g)⁻¹ Q'(g·s)`` with ``Q'`` this
    network and ``w`` the online network's equizero weights (uniform over the view(s) of largest
    ``max_a Q(g·s)``), as Double DQN selects actions online and evaluates them with the target. It
    stays equivariant: the online selection moves with the input. Its weights and layout are
    :class:`EquiQNetwork`'s (the online network is referenced, not a submodule).
    """

    _online: tuple[EquiQNetwork, ...] = ()

    def bind_online(self, online: EquiQNetwork) -> None:
        """Use ``online``'s reducer and weights to select the views (kept out of this module's state)."""
        self._online = (online,)

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """Q-values ``[B, n_actions]`` of this network at the online network's views of ``obs [B, ...]``."""
        if not self._online:
            raise RuntimeError("OnlineSelectedTarget needs bind_online(q_net) before its first forward.")
        online = self._online[0]
        rows, by_sample = orbit_rows(self.input_symmetry, self.network_input(obs))  # as EquiQNetwork.forward
        G = self.symmetry.order
        q = by_group(self.head(self.encode(rows)), G, by_sample)
        with th.no_grad():
            w = online.reducer.weights(by_group(online.head(online.encode(rows)), G, by_sample), None)  # [G, B]
        return self.symmetry.output_action.inverse_weighted_sum(q, w)


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
                f"plus symmetry, equivariance and the EquivarianceConfig settings {list(EquivarianceConfig.field_names())}."
            )
    if "QRDQN" in algo:
        instead = "use equirl.agents.EquiQRDQNPolicy: QRDQN(EquiQRDQNPolicy, env, policy_kwargs=dict(symmetry=..., method=...))"
    elif any(name in algo for name in ("PPO", "A2C", "actor-critic")):
        instead = (
            "use equirl.agents.EquiActorCriticPolicy: PPO(EquiActorCriticPolicy, env, policy_kwargs=dict(symmetry=...))"
        )
    else:
        instead = "equirl has no equivariant policy for it yet"
    raise TypeError(
        f"EquiDQNPolicy is a policy for SB3's DQN, but {algo} is building it; for {algo}, {instead}. Otherwise "
        f"train with DQN(EquiDQNPolicy, env, policy_kwargs=dict(symmetry=..., method=...)), or use the other "
        "algorithm's own policy (e.g. 'MlpPolicy') for a plain baseline."
    )


class EquiDQNPolicy(SymmetrisedModule, DQNPolicy):
    """SB3's ``DQNPolicy`` with equivariant Q-network and target network.

    :param symmetry: an ``equirl.Symmetry`` acting on observations and on the action dimension
        (for example ``envs.get_symmetry("CartPole-v1")``), or its catalogue name (``"CartPole-v1"``).
    :param equivariance: an :class:`equirl.EquivarianceConfig`, or its settings as keyword arguments
        (what ``policy_kwargs`` usually holds):

        - ``method``: ``"equitune"``, ``"equizero"``, ``"lambda"`` (λ-equitune, the default) or
          ``"equizero-td"`` (equizero trained through the selected view, with a target network that
          evaluates the views the online network selects: no maximum over views in the TD target);
        - ``proxy_loss``: equizero's proxy loss: ``"neg_max"`` (``-max_a Q``), ``"neg_margin"``, or a
          registered name (:func:`equirl.proxy.register_proxy_loss`);
        - ``straight_through``: equizero trains with equitune's gradient (its forward is unchanged);
        - ``tie_tolerance``: equizero averages views whose proxy losses are this close;
        - ``lambda_hidden``, ``lambda_temperature``: width of the λ-net and softmax temperature.
    Every other argument is SB3's ``DQNPolicy``'s, unchanged; for Dict observations the default features
    extractor is SB3's ``CombinedExtractor`` (as ``MultiInputPolicy``). Observations may be of any space SB3's
    DQN accepts (Box, Discrete, MultiDiscrete, MultiBinary, Dict), the symmetry declared on the raw
    observations (see :mod:`equirl.agents.spaces`). The policy is for SB3's ``DQN`` (and its
    subclasses) only: other algorithms (PPO, A2C, QR-DQN, ...) get a ``TypeError`` saying what to use.

    Non-finite observations: ``predict`` does not check its input. A NaN or inf in an observation
    gives NaN Q-values (every view of the orbit sees it), and the greedy action of all-NaN Q-values
    is action 0, silently. The package's own entry points (:func:`equirl.agents.train`,
    :func:`equirl.agents.evaluate`, the transfer functions) wrap their environments in a check that
    stops at the first non-finite observation, reward or Q-value with an error naming it; when calling
    ``predict`` directly, check ``np.isfinite(obs).all()`` first.
    """

    q_net: EquiQNetwork
    q_net_target: EquiQNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        symmetry: Symmetry | None = None,
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
        known = set(EquivarianceConfig.field_names())
        _refuse_other_algorithms({k: v for k, v in equivariance_kwargs.items() if k not in known})
        if symmetry is None:
            raise TypeError(
                "EquiDQNPolicy needs policy_kwargs=dict(symmetry=...), for example envs.get_symmetry('CartPole-v1')."
            )
        if isinstance(symmetry, str):  # a catalogue name, as in rl-zoo3's string policy_kwargs
            from equirl.envs import get_symmetry

            symmetry = get_symmetry(symmetry)
        config = _equivariance_of(equivariance, equivariance_kwargs)
        check_equivariance_args(symmetry, config.method, observation_space, action_space)
        self.symmetry = symmetry
        self.equivariance = config
        if isinstance(observation_space, spaces.Dict) and features_extractor_class is FlattenExtractor:
            features_extractor_class = CombinedExtractor  # as SB3's MultiInputPolicy
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
        return EquiQNetwork(**net_args, symmetry=self.symmetry, equivariance=self.equivariance).to(self.device)

    def _build(self, lr_schedule: Schedule) -> None:
        """SB3's build; for :data:`equirl.ONLINE_SELECTED_TARGET` methods (``equizero-td``) the target
        network is an :class:`OnlineSelectedTarget` reading ``q_net``'s choice of views."""
        super()._build(lr_schedule)
        if self.method in ONLINE_SELECTED_TARGET:
            self.q_net_target = online_selected_target(self, OnlineSelectedTarget, self.q_net)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        """SB3's parameters plus the symmetry and every equivariance setting (``policy.save`` keeps them all)."""
        data = super()._get_constructor_parameters()
        data.update(symmetry=self.symmetry, **self.equivariance.to_kwargs())
        return data
