"""A small stochastic environment with a true mirror symmetry, for the statistical verifier and discovery.

``equirl/NoisyCartPole-v0`` is CartPole with a random gust on the cart: every step the force is
``±force_mag + ε`` with ``ε ~ N(0, force_noise²)`` (default 10 N and 3 N), drawn from the env's own random
stream. Its state and observation are CartPole's ``[x, ẋ, θ, θ̇]``; the mirror ``s -> -s`` with actions
``0 <-> 1`` is a symmetry in distribution (``ε`` and ``-ε`` are equally likely), not step by step: a
twin with the same random stream draws the same ``ε``, not ``-ε``, so lockstep verification fails. It is deliberately *not* in the symmetry catalogue: it is the
"environment of your own" of docs/symmetry.md.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

__all__ = ["NoisyCartPoleEnv", "register_noisy_envs", "NOISY_CARTPOLE_ID"]

NOISY_CARTPOLE_ID = "equirl/NoisyCartPole-v0"


class NoisyCartPoleEnv(CartPoleEnv):
    """CartPole with a random gust: force ``±force_mag + N(0, force_noise²)`` per step (see the module doc)."""

    def __init__(self, force_noise: float = 3.0, wind: float = 0.0, **kwargs: Any) -> None:
        """:param force_noise: standard deviation of the gust (N). :param wind: its mean (N); any ``wind != 0``
        breaks the mirror symmetry (the verifier's power is measured against it)."""
        super().__init__(**kwargs)
        if force_noise < 0:
            raise ValueError(f"NoisyCartPoleEnv: force_noise must be >= 0, got {force_noise!r}.")
        self.force_noise = float(force_noise)
        self.wind = float(wind)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        base = self.force_mag
        gust = float(self.np_random.normal(self.wind, self.force_noise))
        # CartPole pushes with +force_mag for action 1 and -force_mag for action 0
        self.force_mag = base + (gust if int(action) == 1 else -gust)
        try:
            return super().step(action)
        finally:
            self.force_mag = base


def register_noisy_envs() -> None:
    """Register ``equirl/NoisyCartPole-v0`` with gymnasium (500-step time limit, as CartPole-v1); idempotent."""
    if NOISY_CARTPOLE_ID not in gym.registry:
        gym.register(NOISY_CARTPOLE_ID, entry_point=NoisyCartPoleEnv, max_episode_steps=500, reward_threshold=475.0)
