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
    """

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        q_net = getattr(self.model.policy, "q_net", None)
        if not isinstance(q_net, EquiQNetwork):
            return
        for key, value in q_net.weight_stats(reset=True).items():
            self.logger.record(f"equi/{key}", value)
