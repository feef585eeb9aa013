"""The Stable-Baselines3 layer: equivariant DQN policies, extractors, callbacks and transfer."""

from agents.callbacks import GroupWeightLogger
from agents.extractors import SmallKernelCNN
from agents.policies import EquiDQNPolicy, EquiQNetwork

__all__ = ["EquiDQNPolicy", "EquiQNetwork", "GroupWeightLogger", "SmallKernelCNN"]
