"""A tiny image environment for tests: random 6x6 single-channel uint8 frames, four actions."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class RandomImageEnv(gym.Env):
    """Observations ``(6, 6, 1)`` uint8 (SB3 transposes them to ``(1, 6, 6)``); 4 actions; 20 steps."""

    def __init__(self, size: int = 6, width: int | None = None) -> None:
        self.observation_space = gym.spaces.Box(0, 255, (size, width or size, 1), np.uint8)
        self.action_space = gym.spaces.Discrete(4)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        super().reset(seed=seed)
        self._t = 0
        return self.observation_space.sample(), {}

    def step(self, action: int):  # type: ignore[override]
        self._t += 1
        reward = float(action == 0)
        return self.observation_space.sample(), reward, False, self._t >= 20, {}
