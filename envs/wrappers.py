"""General task wrappers: fixed reset options, CartPole on half its track, and the task seen through a group element.

Used by transfer (``equirl.agents.transfer_suite``) to build transformed tasks; usable on their own.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["ResetOptions", "HalfTrack", "GroupTransformed", "make_task_env", "transformed_tasks"]


class ResetOptions(gym.Wrapper):
    """Passes fixed ``options`` to every ``reset`` (e.g. CartPole's start-state bounds ``low``/``high``)."""

    def __init__(self, env: gym.Env, options: dict[str, Any]) -> None:
        super().__init__(env)
        self.options = dict(options)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        return self.env.reset(seed=seed, options={**self.options, **(options or {})})


class HalfTrack(gym.Wrapper):
    """CartPole confined to the right half of its track: a task whose mirror image (the left half) it never shows.

    Each episode starts with the cart at ``x ~ U[low, high]`` (``0 < low <= high < 2.4``; the other three state
    variables as CartPole's own start, ``U[-0.05, 0.05]``) and ends (``terminated``) when the cart crosses to
    ``x < 0``, besides CartPole's own ends (``|x| > 2.4``, ``|θ| > 12°``, 500 steps). An agent pretrained here sees
    no state with ``x < 0``; the world seen through the reflection (``GroupTransformed(HalfTrack(env), sym, 1)``)
    is the left half, its exact mirror image.

    :param env: a CartPole-v1 environment (``env.unwrapped.state`` is its state ``[x, ẋ, θ, θ̇]``).
    :param low: smallest start position of the cart.
    :param high: largest start position of the cart.
    """

    def __init__(self, env: gym.Env, low: float = 0.8, high: float = 1.6) -> None:
        super().__init__(env)
        if not 0 < low <= high < 2.4:
            raise ValueError(f"HalfTrack: need 0 < low <= high < 2.4 (the track's half), got low={low}, high={high}.")
        if not hasattr(env.unwrapped, "state") or env.observation_space.shape != (4,):
            raise TypeError(f"HalfTrack wraps CartPole (4-dim state [x, x_dot, theta, theta_dot]), got {env}.")
        self.low, self.high = float(low), float(high)

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        _, info = self.env.reset(**kwargs)
        inner: Any = self.env.unwrapped
        state = np.array(inner.state, dtype=np.float64)
        state[0] = inner.np_random.uniform(self.low, self.high)
        inner.state = state
        return np.array(state, dtype=np.float32), info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, r, term, trunc, info = self.env.step(action)
        return obs, float(r), bool(term or obs[0] < 0.0), trunc, info


class GroupTransformed(gym.Wrapper):
    """The task seen through a group element ``g``: the world whose states are ``g·s``.

    Observations are ``g·o`` (the symmetry's input action). Actions: the symmetry's output action says that
    in the world ``g·s`` action ``i`` does what action ``π_g(i)`` does in ``s``, where
    ``π_g = output_action.apply(g, arange(n))`` (RotGrid's quarter turn ``r``: ``q -> q[[1, 2, 3, 0]]``, so
    "up" in the rotated world is "right" in the original); the wrapper passes ``π_g(a)`` to the inner
    environment. Because the dynamics commute with the symmetry, this *is* the transformed world (for the
    MiniGrid egocentric mirror: the mirrored layout; for RotGrid's ``r^k``: the layout rotated by ``k``
    quarter turns, ``layout_rotation=k``), for every element, involution or not. Start states are ``g·s``
    for the inner environment's starts ``s``.

    :param env: the original environment (its observations and actions are those ``symmetry`` acts on).
    :param symmetry: an ``equirl.Symmetry`` (a catalogue entry's, e.g. ``get_symmetry(name)``).
    :param g: index of the group element.
    """

    def __init__(self, env: gym.Env, symmetry: Any, g: int) -> None:
        super().__init__(env)
        import torch

        G = symmetry.group
        if not 0 <= int(g) < G.order:
            raise ValueError(f"GroupTransformed: g must be an element index in 0..{G.order - 1} of {G.name}, got {g}.")
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise TypeError(f"GroupTransformed needs a Discrete action space, got {env.action_space}.")
        self.symmetry, self.g = symmetry, int(g)
        n = int(env.action_space.n)
        perm = symmetry.output_action.apply(self.g, torch.arange(n, dtype=torch.float64)[None])[0]
        self.action_map = [int(round(float(v))) for v in perm]
        if sorted(self.action_map) != list(range(n)):
            raise ValueError(
                f"GroupTransformed: {symmetry.name}'s output action for {G.element_names[self.g]} is not a "
                f"permutation of the {n} actions (got {self.action_map})."
            )

    def _obs(self, obs: Any) -> Any:
        import torch

        x = torch.as_tensor(np.asarray(obs))[None]
        return self.symmetry.input_action.apply(self.g, x)[0].numpy().astype(np.asarray(obs).dtype)

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        return self._obs(obs), info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, r, term, trunc, info = self.env.step(self.action_map[int(action)])
        return self._obs(obs), float(r), term, trunc, info


def make_task_env(env_id: str, task: dict[str, Any]) -> gym.Env:
    """The catalogue environment ``env_id`` set up as ``task``.

    ``task`` may hold ``env_kwargs`` (passed to :func:`equirl.envs.make_env`), ``reset_options``
    (:class:`ResetOptions`), ``half_track`` (CartPole: ``{"low": ..., "high": ...}`` for :class:`HalfTrack`)
    and ``transform`` (a group element: :class:`GroupTransformed` with the symmetry named ``task["symmetry"]``,
    default ``env_id``), applied in this order.
    """
    from equirl.envs.catalog import get_symmetry, make_env

    env = make_env(env_id, **task.get("env_kwargs", {}))
    if task.get("reset_options"):
        env = ResetOptions(env, task["reset_options"])
    if task.get("half_track") is not None:
        env = HalfTrack(env, **task["half_track"])
    if task.get("transform") is not None:
        env = GroupTransformed(env, get_symmetry(task.get("symmetry") or env_id), int(task["transform"]))
    return env


def transformed_tasks(env_id: str, symmetry: str | None = None) -> dict[str, dict[str, Any]]:
    """Transfer tasks derived from a symmetry: the original task, then the world seen through each non-identity
    element ``g`` (:class:`GroupTransformed`), named ``"world seen through <element>"``.

    :param env_id: catalogue (or gymnasium) environment name.
    :param symmetry: catalogue symmetry name (default ``env_id``).
    :return: ``task name -> task`` for :func:`make_task_env`; the first is the pretraining task.
    """
    from equirl.envs.catalog import get_symmetry

    name = symmetry or env_id
    G = get_symmetry(name).group
    tasks: dict[str, dict[str, Any]] = {"original world (pretraining)": {}}
    for g in range(G.order):
        if g != G.identity:
            tasks[f"world seen through {G.element_names[g]}"] = {"transform": g, "symmetry": name}
    return tasks
