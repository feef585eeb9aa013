"""Equivariant actor-critic policies for SB3's ``PPO`` and ``A2C``, discrete and continuous actions.

Drop-in use::

    from stable_baselines3 import PPO
    from equirl.agents import EquiActorCriticPolicy
    from equirl.envs import get_symmetry

    model = PPO(EquiActorCriticPolicy, "Pendulum-v1",
                policy_kwargs=dict(symmetry=get_symmetry("Pendulum-v1"), method="lambda"))

What is symmetrised, for a symmetry ``(G, g·s, ρ)`` whose output action ``ρ`` acts on the action vector:

- **actor**: the action logits (``Discrete``: ``ρ`` permutes them) or the Gaussian mean (``Box``: ``ρ`` is a
  signed permutation of the action vector, for example Pendulum's torque ``a -> -a``):
  ``μ_G(s) = Σ_g w_g(s) ρ(g)⁻¹ μ(g·s)``;
- **std** (``Box``): SB3's state-independent ``log_std`` is averaged over the group's action on it,
  ``log σ_G = 1/|G| Σ_g |ρ(g)|·log σ`` (``|ρ(g)|``: the permutation without its signs), so that the
  distribution ``N(μ_G(s), σ_G²)`` itself is equivariant: ``π_G(ρ(g)a | g·s) = π_G(a | s)``. Without this,
  a log-std that differs between two swapped action entries breaks equivariance even when the mean is
  exact (``tests/agents/test_actor_critic.py`` shows it);
- **critic**: the value is invariant, ``V_G(s) = Σ_g w'_g(s) V(g·s)``.

The weights, per method (:data:`equirl.METHODS`):

- ``equitune``: uniform for both outputs;
- ``equizero`` / ``equizero-td``: one choice of view(s) for both outputs, by the proxy loss of
  ``proxy_target``: ``"critic"`` (default) scores a view by the critic, ``neg_max`` giving ``-V(g·s)``: the
  view the critic deems most valuable, the actor-critic analogue of DQN's ``-max_a Q(g·s, a)``, usable with
  discrete and continuous actions; ``"actor"`` scores the actor's output (for logits choose
  ``proxy_loss="entropy"`` or ``"neg_max_prob"``: the most confident view; a Gaussian with a
  state-independent std has the same entropy in every view, so use ``"critic"`` for ``Box`` actions).
  The actor and the critic use the same selected view(s). ``equizero`` trains with the straight-through
  gradient (the forward of equizero, the gradient of equitune) unless ``straight_through=False``;
  ``equizero-td`` is trained through the selected view (an actor-critic has no target network);
- ``lambda``: two λ-nets, one over the actor's last latent layer (weights for the actor) and one over
  the critic's (weights for the critic); each starts at zero (= equitune).

Every weight is a function of the transformed input ``g·s`` alone, so the actor stays equivariant and
the critic invariant whichever weights they use.

Observations may be of any space :mod:`equirl.agents.spaces` handles (Box, Discrete, MultiDiscrete,
MultiBinary, Dict with SB3's ``CombinedExtractor`` by default), the symmetry declared on the raw
observations, as for DQN. :func:`~equirl.agents.save_agent` saves PPO and A2C agents as data, and
:func:`~equirl.agents.equivariant_from_pretrained` turns a plain PPO / A2C zip into this policy.
"""

from __future__ import annotations

from typing import Any

import torch as th
from equirl.agents.spaces import default_features_extractor, extract_features, lift_symmetry, network_input
from equirl.agents.symmetrised import (
    SymmetrisedModule,
    check_symmetry,
    equivariance_of,
    group_weights,
    orbit_features,
    reduce_outputs,
    refuse_foreign_algorithm,
    straight_through_of,
)
from gymnasium import spaces
from stable_baselines3.common.distributions import CategoricalDistribution, DiagGaussianDistribution, Distribution
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from equirl import Symmetry, TrivialAction
from equirl.config import EquivarianceConfig

__all__ = ["EquiActorCriticPolicy", "PROXY_TARGETS", "check_actor_critic_spaces"]

PROXY_TARGETS = ("critic", "actor")
"""What equizero's proxy loss scores in an actor-critic: the critic's value per view, or the actor's output."""


def check_actor_critic_spaces(symmetry: Symmetry, observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Raise a clear error unless ``symmetry`` fits the observation space (any space of
    :mod:`equirl.agents.spaces`: Box, Discrete, MultiDiscrete, MultiBinary, Dict, the symmetry declared on
    the raw observations) and a Discrete or 1-D Box action space."""
    if isinstance(action_space, spaces.Discrete):
        action_shape: tuple[int, ...] = (int(action_space.n),)
    elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        action_shape = tuple(action_space.shape)
    else:
        raise TypeError(
            f"EquiActorCriticPolicy supports Discrete and 1-D Box action spaces, got {action_space}. "
            "The symmetry's output action must act on the action vector (a permutation of the logits, or a "
            "signed permutation of a continuous action)."
        )
    lift_symmetry(symmetry, observation_space)  # checks the input action on the raw space
    try:
        symmetry.output_action.validate(action_shape)
    except ValueError as err:
        raise ValueError(
            f"Symmetry {symmetry.name!r} does not fit outputs of shape {action_shape} (the action space "
            f"{action_space}): {err}"
        ) from err


class EquiActorCriticPolicy(SymmetrisedModule, ActorCriticPolicy):
    """SB3's ``ActorCriticPolicy`` (PPO, A2C) with an equivariant actor and an invariant critic.

    :param symmetry: an ``equirl.Symmetry`` acting on observations and on the action vector (a permutation
        of the logits for ``Discrete`` actions; a signed permutation for ``Box`` actions, for example
        ``envs.get_symmetry("Pendulum-v1")``), or its catalogue name.
    :param equivariance: an :class:`equirl.EquivarianceConfig`, or its settings as keyword arguments
        (``method``, ``proxy_loss``, ``straight_through``, ``tie_tolerance``, ``lambda_hidden``,
        ``lambda_temperature``); see the module docstring for what each method does here.
    :param proxy_target: what equizero's proxy loss scores: ``"critic"`` (the value per view; default) or
        ``"actor"`` (the logits or the mean action per view).
    Every other argument is SB3's ``ActorCriticPolicy``'s, unchanged, except ``use_sde=True`` (the
    state-dependent exploration noise is not symmetrised: a clear error). The λ-nets read the last latent
    layers of ``mlp_extractor``.

    Outputs (``B`` observations ``[B, ...]``): ``forward -> (actions [B, *action_shape], values [B, 1],
    log_prob [B])``; ``evaluate_actions -> (values [B, 1], log_prob [B], entropy [B])``;
    :meth:`symmetrised_outputs` ``-> (logits or mean [B, A], values [B, 1])``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float = 0.0,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        symmetry: Symmetry | str | None = None,
        equivariance: EquivarianceConfig | None = None,
        proxy_target: str = "critic",
        **equivariance_kwargs: Any,
    ) -> None:
        refuse_foreign_algorithm("EquiActorCriticPolicy", OnPolicyAlgorithm)
        if symmetry is None:
            raise TypeError(
                "EquiActorCriticPolicy needs policy_kwargs=dict(symmetry=...), for example "
                "envs.get_symmetry('Pendulum-v1')."
            )
        if use_sde:
            raise ValueError(
                "EquiActorCriticPolicy does not support use_sde=True (state-dependent exploration noise is not "
                "symmetrised); train with use_sde=False, the default."
            )
        if proxy_target not in PROXY_TARGETS:
            raise ValueError(f"proxy_target must be one of {PROXY_TARGETS}, got {proxy_target!r}.")
        config = equivariance_of(equivariance, equivariance_kwargs)
        sym = check_symmetry(symmetry, config.method)
        check_actor_critic_spaces(sym, observation_space, action_space)
        self.symmetry = sym
        self.equivariance = config
        # the symmetry acting where the orbit is taken: on SB3's preprocessed tensor for non-Box spaces
        self.input_symmetry = lift_symmetry(sym, observation_space)
        self.proxy_target = proxy_target
        self._value_action = TrivialAction(sym.group)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            use_sde=use_sde,
            log_std_init=log_std_init,
            full_std=full_std,
            use_expln=use_expln,
            squash_output=squash_output,
            features_extractor_class=default_features_extractor(observation_space, features_extractor_class),
            features_extractor_kwargs=features_extractor_kwargs,
            share_features_extractor=share_features_extractor,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )

    def _build_mlp_extractor(self) -> None:
        """SB3's MLP extractor, then the reducers (before ``_build`` makes the optimizer, so λ-nets train):
        ``reducer`` for the actor (and both outputs unless λ), ``value_reducer`` (λ only) for the critic."""
        super()._build_mlp_extractor()
        self.reducer = self.equivariance.make_reducer(self.mlp_extractor.latent_dim_pi)
        self.value_reducer = (
            self.equivariance.make_reducer(self.mlp_extractor.latent_dim_vf) if self.method == "lambda" else None
        )
        self.reset_weight_stats()  # type: ignore[operator]  # a mixin method (mypy sees the import as Any)

    # -- the symmetrised forward -------------------------------------------------------------------
    def _latents(self, x: th.Tensor | dict[str, th.Tensor]) -> tuple[th.Tensor, th.Tensor]:
        """:func:`~equirl.agents.spaces.network_input` of observations ``[N, ...]`` (a dict for Dict spaces) ->
        ``(latent_pi [N, Fπ], latent_vf [N, Fv])``, as SB3 computes them."""

        def features(extractor: nn.Module) -> th.Tensor:
            return extract_features(x, extractor, self.observation_space, self.normalize_images)

        if self.share_features_extractor:
            return self.mlp_extractor(features(self.features_extractor))  # type: ignore[no-any-return]
        return (
            self.mlp_extractor.forward_actor(features(self.pi_features_extractor)),
            self.mlp_extractor.forward_critic(features(self.vf_features_extractor)),
        )

    def symmetrised_outputs(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """``(actor output [B, A], values [B, 1])`` for observations ``obs [B, ...]`` (a dict for Dict spaces).

        The actor output is the logits (``Discrete``) or the Gaussian mean (``Box``), equivariant under the
        symmetry's output action; the values are invariant. One forward over the orbit ``[|G|·B, ...]``.
        """
        x = network_input(obs, self.observation_space, self.normalize_images)
        (latent_pi, latent_vf), by_group = orbit_features(x, self.input_symmetry, self._latents)
        latent_pi, latent_vf = by_group(latent_pi), by_group(latent_vf)
        actor = self.action_net(latent_pi)  # [G, B, A]
        values = self.value_net(latent_vf)  # [G, B, 1]
        w = group_weights(self.reducer, values if self.proxy_target == "critic" else actor, latent_pi)
        self.record_weights(w)  # type: ignore[operator]  # a mixin method (mypy sees the import as Any)
        straight = straight_through_of(self.reducer)
        w_value = w if self.value_reducer is None else group_weights(self.value_reducer, values, latent_vf)
        return (
            reduce_outputs(actor, self.symmetry.output_action, w, straight),
            reduce_outputs(values, self._value_action, w_value, straight),
        )

    def symmetrised_log_std(self) -> th.Tensor:
        """The log-std ``[A]`` averaged over the group's action on it (without signs): invariant under it."""
        std = self.log_std.exp().unsqueeze(0)  # [1, A]
        return self.symmetry.output_action.orbit(std).abs().log().mean(0).squeeze(0)

    def _distribution(self, actor: th.Tensor) -> Distribution:
        """The action distribution for the symmetrised actor output ``[B, A]``."""
        if isinstance(self.action_dist, DiagGaussianDistribution):
            return self.action_dist.proba_distribution(actor, self.symmetrised_log_std())
        if isinstance(self.action_dist, CategoricalDistribution):
            return self.action_dist.proba_distribution(action_logits=actor)
        raise TypeError(f"EquiActorCriticPolicy: unsupported action distribution {type(self.action_dist).__name__}.")

    # -- SB3's entry points ----------------------------------------------------------------------
    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """``(actions [B, *action_shape], values [B, 1], log_prob [B])`` for observations ``[B, ...]``."""
        actor, values = self.symmetrised_outputs(obs)
        distribution = self._distribution(actor)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        return actions.reshape((-1, *self.action_space.shape)), values, log_prob  # type: ignore[misc]

    def evaluate_actions(self, obs: PyTorchObs, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        """``(values [B, 1], log_prob [B], entropy [B])`` of ``actions`` at observations ``[B, ...]``."""
        actor, values = self.symmetrised_outputs(obs)
        distribution = self._distribution(actor)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: PyTorchObs) -> Distribution:
        """The equivariant action distribution at observations ``[B, ...]``."""
        return self._distribution(self.symmetrised_outputs(obs)[0])

    def predict_values(self, obs: PyTorchObs) -> th.Tensor:
        """Invariant values ``[B, 1]`` at observations ``[B, ...]``."""
        return self.symmetrised_outputs(obs)[1]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        """SB3's parameters plus the symmetry, ``proxy_target`` and every equivariance setting."""
        data = super()._get_constructor_parameters()
        data.update(symmetry=self.symmetry, proxy_target=self.proxy_target, **self.equivariance.to_kwargs())
        return data
