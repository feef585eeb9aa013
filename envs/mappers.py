"""State mappers: how to put a twin environment into the state ``g·s`` (what the verifier needs).

A :class:`StateMapper` knows, for one environment family, how to read a state from an environment,
write one into it, transform it by a group element, and (optionally) observe the current state
without stepping. Mappers are registered under catalogue names (``envs.register_state_mapper``, in the
catalogue's one registry), so ``get_state_mapper("CartPole-v1")`` goes with ``get_symmetry("CartPole-v1")``.

Most mappers are declared by the images of the group's *generators* on states
(:func:`mapper_from_generators`); an element ``g = g1·g2·…·gk`` (its word in the group) then maps a
state by applying ``gk`` first and ``g1`` last, the same left action the core uses for tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from equirl import Group, Symmetry

__all__ = [
    "StateMapper",
    "mapper_from_generators",
    "observe",
    "vector_state_mapper",
    "cartpole_mapper",
    "acrobot_mapper",
    "rotgrid_mapper",
    "minigrid_mapper",
]


@dataclass(frozen=True)
class StateMapper:
    """How to map an environment's state by a group element.

    :param get_state: ``env -> state`` (a copy; ``env`` is the outermost wrapper, use ``env.unwrapped``).
    :param set_state: ``(env, state) -> None``.
    :param map_state: ``(state, g, symmetry) -> state of g·env`` for a group element index ``g``.
    :param observe_raw: optional ``unwrapped_env -> raw observation`` of the current state (what the
        innermost env's ``step`` would return); the verifier passes it up through observation wrappers
        to compare the twin's observation right after mapping. Without it, the first comparison is
        after the first step.
    :param exact: True when the mapped state is exact and dynamics commute to float precision over
        whole episodes; False for physics engines, where the verifier re-syncs every ``horizon`` steps.
    :param horizon: steps between re-syncs when ``exact`` is False.
    :param note: one line for the report.
    """

    get_state: Callable[[gym.Env], Any]
    set_state: Callable[[gym.Env, Any], None]
    map_state: Callable[[Any, int, Symmetry], Any]
    observe_raw: Callable[[Any], Any] | None = None
    exact: bool = True
    horizon: int = 50
    note: str = ""


def compose_along_word(group: Group, g: int, generator_maps: Sequence[Callable[[Any], Any]], state: Any) -> Any:
    """Apply element ``g`` to ``state`` through its word: for ``g = g1·…·gk`` apply ``gk`` first."""
    if len(generator_maps) != len(group.generator_indices):
        raise ValueError(
            f"{group.name} has {len(group.generator_indices)} generators {group.generator_names}, "
            f"but {len(generator_maps)} state maps were given."
        )
    for gi in reversed(group.words[g]):
        state = generator_maps[gi](state)
    return state


def mapper_from_generators(
    get_state: Callable[[gym.Env], Any],
    set_state: Callable[[gym.Env, Any], None],
    generator_maps: Sequence[Callable[[Any], Any]],
    **kwargs: Any,
) -> StateMapper:
    """A :class:`StateMapper` from one state map per generator of the symmetry's group (in its order)."""
    maps = list(generator_maps)

    def map_state(state: Any, g: int, symmetry: Symmetry) -> Any:
        return compose_along_word(symmetry.group, g, maps, state)

    return StateMapper(get_state, set_state, map_state, **kwargs)


def observe(env: gym.Env, mapper: StateMapper) -> Any | None:
    """The observation ``env`` would emit for its current state: ``mapper.observe_raw`` passed up through
    every :class:`gymnasium.ObservationWrapper` around the unwrapped env (None without ``observe_raw``)."""
    if mapper.observe_raw is None:
        return None
    chain: list[gym.Env] = []
    e: gym.Env = env
    while isinstance(e, gym.Wrapper):
        chain.append(e)
        e = e.env
    obs = mapper.observe_raw(e)
    for w in reversed(chain):
        if isinstance(w, gym.ObservationWrapper):
            obs = w.observation(obs)
    return obs


# -- registry ------------------------------------------------------------------------------------
# Mappers are registered in the one catalogue registry (``envs.catalog``), next to the symmetry and the
# environment of the same name; these names stay importable from here.
_REGISTRY_NAMES = ("register_state_mapper", "get_state_mapper", "list_state_mappers")


def __getattr__(name: str) -> Any:
    if name in _REGISTRY_NAMES:
        from equirl.envs import catalog

        return getattr(catalog, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- families ------------------------------------------------------------------------------------
def vector_state_mapper(
    attr: str, generator_signs: Sequence[Sequence[float]], obs_fn: Callable[[Any], Any] | None = None, **kwargs: Any
) -> StateMapper:
    """Mapper for envs whose state is the array ``env.unwrapped.<attr>``, each generator a sign vector."""

    def get_state(env: gym.Env) -> np.ndarray:
        return np.array(getattr(env.unwrapped, attr), dtype=np.float64)

    def set_state(env: gym.Env, state: np.ndarray) -> None:
        setattr(env.unwrapped, attr, np.array(state, dtype=np.float64))

    masks = [np.asarray(m, dtype=np.float64) for m in generator_signs]
    maps = [lambda s, m=m: s * m for m in masks]
    return mapper_from_generators(get_state, set_state, maps, observe_raw=obs_fn, **kwargs)


def cartpole_mapper() -> StateMapper:
    """CartPole: state ``[x, ẋ, θ, θ̇]`` -> ``-state``. Exact (IEEE negation commutes with the update)."""
    return vector_state_mapper(
        "state", [[-1.0, -1.0, -1.0, -1.0]], obs_fn=lambda u: np.array(u.state, dtype=np.float32), exact=True
    )


def acrobot_mapper() -> StateMapper:
    """Acrobot: state ``[θ1, θ2, θ̇1, θ̇2]`` -> ``-state``. Chaotic: compared over short horizons."""
    return vector_state_mapper(
        "state",
        [[-1.0, -1.0, -1.0, -1.0]],
        obs_fn=lambda u: u._get_ob(),
        exact=False,
        horizon=50,
        note="Acrobot is chaotic: a 1e-16 rounding difference can grow, so the twin is re-synced every 50 steps",
    )


def rotgrid_mapper(ops: Sequence[str]) -> StateMapper:
    """RotGrid: its planes ``[4, N, N]`` rotated (``"rot90"``: ``np.rot90(·, 1, axes=(1, 2))``) or row-flipped
    (``"flip0"``), one op per generator; the step count is unchanged."""

    def get_state(env: gym.Env) -> Any:
        return env.unwrapped.get_state()  # type: ignore[attr-defined]

    def set_state(env: gym.Env, state: Any) -> None:
        env.unwrapped.set_state(state)  # type: ignore[attr-defined]

    table: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "rot90": lambda p: np.rot90(p, 1, axes=(1, 2)),
        "flip0": lambda p: p[:, ::-1, :],
    }
    maps = [lambda s, f=table[op]: (np.ascontiguousarray(f(s[0])), s[1]) for op in ops]
    return mapper_from_generators(get_state, set_state, maps, observe_raw=lambda u: u._obs(), exact=True)


def minigrid_mapper(ops: Sequence[str]) -> StateMapper:
    """MiniGrid: the world (grid, agent position and direction, carried object) rotated / flipped, one op
    per generator (``"rot90"``, ``"flip0"``; see :func:`envs.minigrid_wrappers.transform_minigrid_state`)."""
    from equirl.envs.minigrid_wrappers import get_minigrid_state, set_minigrid_state, transform_minigrid_state

    maps = [lambda s, op=op: transform_minigrid_state(s, op) for op in ops]
    return mapper_from_generators(
        get_minigrid_state, set_minigrid_state, maps, observe_raw=lambda u: u.gen_obs(), exact=True
    )
