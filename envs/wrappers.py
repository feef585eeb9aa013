"""General task wrappers: fixed reset options, and the task seen through a group element.

Used by transfer (``equirl.agents.transfer_suite``) to build transformed tasks; usable on their own.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["ResetOptions", "GroupTransformed", "make_task_env"]


class ResetOptions(gym.Wrapper):
    """Passes fixed ``options`` to every ``reset`` (e.g. CartPole's start-state bounds ``low``/``high``)."""

    def __init__(self, env: gym.Env, options: dict[str, Any]) -> None:
        super().__init__(env)
        self.options = dict(options)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        return self.env.reset(seed=seed, options={**self.options, **(options or {})})


class GroupTransformed(gym.Wrapper):
    """The task seen through a group element ``g``: observations ``g·o``, actions mapped by ``ρ(g)``.

    Because the dynamics commute with the symmetry, this *is* the transformed world (for the MiniGrid
    egocentric mirror: the mirrored layout). Only involutions (``g = g⁻¹``) are supported, for which the
    action map is its own inverse.
    """

    def __init__(self, env: gym.Env, symmetry: Any, g: int) -> None:
        super().__init__(env)
        import torch

        G = symmetry.group
        if G.compose(g, g) != G.identity:
            raise ValueError(f"GroupTransformed supports involutions only; {G.element_names[g]} is not one.")
        self.symmetry, self.g = symmetry, g
        n = int(env.action_space.n)
        perm = symmetry.output_action.apply(g, torch.arange(n, dtype=torch.float64)[None])[0]
        self.action_map = [int(round(float(v))) for v in perm]

    def _obs(self, obs: Any) -> Any:
        import torch

        x = torch.as_tensor(np.asarray(obs))[None]
        return self.symmetry.input_action.apply(self.g, x)[0].numpy().astype(np.asarray(obs).dtype)

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        return self._obs(obs), info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, r, term, trunc, info = self.env.step(self.action_map[int(action)])
        return self._obs(obs), r, term, trunc, info


def make_task_env(env_id: str, task: dict[str, Any]) -> gym.Env:
    """The catalogue environment ``env_id`` set up as ``task``.

    ``task`` may hold ``env_kwargs`` (passed to :func:`equirl.envs.make_env`), ``reset_options``
    (:class:`ResetOptions`) and ``transform`` (a group element of ``env_id``'s symmetry: :class:`GroupTransformed`).
    """
    from equirl.envs.catalog import get_symmetry, make_env

    env = make_env(env_id, **task.get("env_kwargs", {}))
    if task.get("reset_options"):
        env = ResetOptions(env, task["reset_options"])
    if task.get("transform") is not None:
        env = GroupTransformed(env, get_symmetry(env_id), int(task["transform"]))
    return env
