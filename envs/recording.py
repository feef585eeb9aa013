"""Short GIFs of an agent playing an environment (needs the ``gif`` extra: imageio)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from equirl.extras import require

__all__ = ["record_frames", "record_gif"]


def record_frames(
    agent: Any,
    env: gym.Env,
    episodes: int = 1,
    seed: int = 0,
    max_steps: int = 200,
    deterministic: bool = True,
    episode_returns: list[float] | None = None,
) -> list[np.ndarray]:
    """Play ``episodes`` episodes of ``agent`` on ``env`` and return every rendered picture.

    :param agent: anything with SB3's ``predict(obs, deterministic=...) -> (action, state)`` (a DQN, a policy).
    :param env: an environment made with ``render_mode="rgb_array"``, emitting the observations ``agent`` expects.
    :param seed: the first episode's reset seed (later episodes continue the environment's RNG).
    :param max_steps: steps per episode at most.
    :param episode_returns: if given, each episode's undiscounted return is appended to it.
    :return: ``uint8 [H, W, 3]`` frames: the start of each episode and one after every step.
    """
    if env.render_mode != "rgb_array":
        raise ValueError(
            f"record_frames needs an environment made with render_mode='rgb_array', got {env.render_mode!r} "
            "(e.g. equirl.envs.make_env(name, render_mode='rgb_array') or gym.make(id, render_mode='rgb_array'))."
        )
    frames: list[np.ndarray] = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed if ep == 0 else None)
        frames.append(np.asarray(env.render()))
        total = 0.0
        for _ in range(max_steps):
            action, _ = agent.predict(obs, deterministic=deterministic)
            obs, reward, terminated, truncated, _ = env.step(action.item() if hasattr(action, "item") else action)
            total += float(reward)
            frames.append(np.asarray(env.render()))
            if terminated or truncated:
                break
        if episode_returns is not None:
            episode_returns.append(total)
    return frames


def record_gif(
    agent: Any,
    env: gym.Env,
    path: str | Path,
    episodes: int = 1,
    seed: int = 0,
    fps: int = 4,
    max_steps: int = 200,
    hold_last: int = 2,
    overwrite: bool = False,
    episode_returns: list[float] | list[list[float]] | None = None,
) -> Path:
    """Write a looping GIF of ``agent`` playing ``episodes`` episodes on ``env`` (see :func:`record_frames`).

    :param agent: one agent, or a list of agents shown side by side (left to right), each playing the same
        episodes (same reset seeds); a shorter episode holds its last picture until the longest ends.
    :param seed: episode ``k`` is reset with ``seed + k``.
    :param fps: frames per second of the GIF.
    :param hold_last: show each episode's last frame this many frame-times longer, so the ending is visible.
    :param overwrite: replace an existing file (default: refuse).
    :param episode_returns: if given, each episode's undiscounted return is appended to it (with a list of
        agents: a list per agent, in their order).
    :return: the path written (through a temporary file renamed into place).
    """
    imageio = require("imageio.v2", "gif", "Recording a GIF", package="imageio")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    agents = list(agent) if isinstance(agent, (list, tuple)) else [agent]
    returns: list[list[float]] = [[] for _ in agents]
    frames: list[np.ndarray] = []
    durations: list[float] = []  # milliseconds per frame
    for ep in range(episodes):
        panels = [
            record_frames(a, env, 1, seed + ep, max_steps, episode_returns=r)
            for a, r in zip(agents, returns, strict=True)
        ]
        length = max(len(p) for p in panels)
        for t in range(length):
            pictures = [p[min(t, len(p) - 1)] for p in panels]
            gap = np.full((pictures[0].shape[0], 4, 3), 255, dtype=np.uint8)
            row = [x for pic in pictures for x in (gap, pic)][1:]
            frames.append(np.concatenate(row, axis=1))
        durations += [1000 / fps] * (length - 1) + [1000 / fps * (1 + hold_last)]
    if episode_returns is not None:
        if isinstance(agent, (list, tuple)):
            episode_returns.extend(returns)  # type: ignore[arg-type]
        else:
            episode_returns.extend(returns[0])  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.gif")
    imageio.mimsave(tmp, frames, duration=durations, loop=0)
    os.replace(tmp, path)
    return path
