"""Callbacks that log what the symmetrisation does during training."""

from __future__ import annotations

from equirl.agents.policies import EquiQNetwork
from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["GroupWeightLogger"]


class GroupWeightLogger(BaseCallback):
    """Logs the group weights of the Q-network's training forwards to SB3's logger (tensorboard).

    Records ``equi/entropy`` (nats; ``log|G|`` means uniform, 0 means one view), ``equi/max_weight``
    and ``equi/weight/<element>`` (mean weight of each group element), averaged over the gradient
    steps since the last rollout. Nothing is logged for equitune (its weights are uniform).

    The Q-network collects the statistics only while a logger asks for them: this callback switches
    :attr:`EquiQNetwork.collect_weight_stats` on when training starts and off when it ends.
    """

    def _q_net(self) -> EquiQNetwork | None:
        q_net = getattr(self.model.policy, "q_net", None)
        return q_net if isinstance(q_net, EquiQNetwork) else None

    def _on_training_start(self) -> None:
        q_net = self._q_net()
        if q_net is not None:
            q_net.reset_weight_stats()
            q_net.collect_weight_stats = True

    def _on_training_end(self) -> None:
        q_net = self._q_net()
        if q_net is not None:
            q_net.collect_weight_stats = False

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        q_net = self._q_net()
        if q_net is None:
            return
        for key, value in q_net.weight_stats(reset=True).items():
            self.logger.record(f"equi/{key}", value)
