"""Callbacks that log what the symmetrisation does during training."""

from __future__ import annotations

from equirl.agents.symmetrised import SymmetrisedModule
from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["GroupWeightLogger", "weight_recorder"]

_NETWORKS = ("q_net", "quantile_net")
"""The policy attributes that hold the symmetrised network of a value-based policy (DQN, QR-DQN)."""


def weight_recorder(policy: object) -> SymmetrisedModule | None:
    """The module whose training forwards record the group weights: the Q-network of an
    :class:`~equirl.agents.EquiDQNPolicy`, the quantile network of an :class:`~equirl.agents.EquiQRDQNPolicy`,
    an :class:`~equirl.agents.EquiActorCriticPolicy` itself (the actor's weights, which equizero shares with
    the critic); None for a plain policy."""
    for name in _NETWORKS:
        net = getattr(policy, name, None)
        if net is not None:
            return net if isinstance(net, SymmetrisedModule) else None
    return policy if isinstance(policy, SymmetrisedModule) else None


class GroupWeightLogger(BaseCallback):
    """Logs the group weights of the symmetrised network's training forwards to SB3's logger (tensorboard).

    Records ``equi/entropy`` (nats; ``log|G|`` means uniform, 0 means one view), ``equi/max_weight``
    and ``equi/weight/<element>`` (mean weight of each group element), averaged over the training forwards
    since the last rollout. Nothing is logged for equitune (its weights are uniform) or a plain policy.

    Works for every equivariant policy (:func:`weight_recorder`): DQN's Q-network and QR-DQN's quantile
    network (their gradient steps), and an actor-critic (PPO, A2C: the actor's weights in the epochs of
    ``train``; for ``lambda`` the critic has its own λ-net, whose weights are not logged). Forwards in
    evaluation mode (collecting rollouts, ``predict``) are not recorded. The network collects the statistics
    only while a logger asks for them: this callback switches ``collect_weight_stats`` on when training starts
    and off when it ends.
    """

    def _recorder(self) -> SymmetrisedModule | None:
        return weight_recorder(self.model.policy)

    def _on_training_start(self) -> None:
        net = self._recorder()
        if net is not None:
            net.reset_weight_stats()
            net.collect_weight_stats = True

    def _on_training_end(self) -> None:
        net = self._recorder()
        if net is not None:
            net.collect_weight_stats = False

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        net = self._recorder()
        if net is None:
            return
        for key, value in net.weight_stats(reset=True).items():
            self.logger.record(f"equi/{key}", value)
