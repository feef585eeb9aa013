"""The symmetry catalogue: one registry from names to symmetries, environments and state mappers.

``get_symmetry(name)`` returns a fresh :class:`equirl.Symmetry`; ``make_env(name)`` the environment
that symmetry is meant for, already wrapped for Stable-Baselines3; ``register_symmetry(name, factory,
make_env=..., state_mapper=...)`` adds an entry (factories are no-argument callables, so entries are
built on demand). Every entry's docstring says how the group acts on observations and on actions.

Naming (one name = one environment + one symmetry):

- a gymnasium id alone is the environment as gymnasium makes it, or with the project's default
  wrappers: ``"CartPole-v1"``, ``"Acrobot-v1"``; ``"MiniGrid-<task>"`` = egocentric 7x7 one-hot view
  with the mirror (C2); ``"equirl/RotGrid-<variant>-v0"`` = the gridworld with D4;
- a suffix after the id picks another observation or a subgroup: ``"MiniGrid-<task>/full-D4"`` and
  ``"/full-C4"`` (full one-hot view, square grids), ``"equirl/RotGrid-<variant>-v0/C4"`` and
  ``"/flat"`` (flattened observation, D4).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from equirl.envs.mappers import (
    StateMapper,
    acrobot_mapper,
    cartpole_mapper,
    minigrid_mapper,
    register_state_mapper,
    rotgrid_mapper,
)

from equirl import PermutationAction, SignFlipAction, Symmetry, cyclic

__all__ = [
    "get_symmetry",
    "register_symmetry",
    "list_symmetries",
    "symmetry_docs",
    "make_env",
    "register_env",
    "register_minigrid",
    "MINIGRID_IDS",
    "catalogue_table",
]

_REGISTRY: dict[str, Callable[[], Symmetry]] = {}


_ENVS: dict[str, Callable[..., gym.Env]] = {}


def register_symmetry(
    name: str,
    factory: Callable[[], Symmetry],
    overwrite: bool = False,
    *,
    make_env: Callable[..., gym.Env] | None = None,
    state_mapper: Callable[[], StateMapper] | None = None,
) -> None:
    """Register ``factory`` (``() -> Symmetry``) under ``name``.

    :param make_env: optional ``(**kwargs) -> gymnasium.Env`` that :func:`make_env` uses for ``name``
        (default: ``gymnasium.make(name, **kwargs)``).
    :param state_mapper: optional ``() -> envs.StateMapper``, so that ``verify_symmetry(name)`` works.
    :raises ValueError: if ``name`` is taken and ``overwrite`` is False.
    """
    if not callable(factory):
        raise TypeError(f"register_symmetry({name!r}): factory must be a callable returning a Symmetry.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"A symmetry named {name!r} is already registered; pass overwrite=True to replace it.")
    _REGISTRY[name] = factory
    if make_env is not None:
        register_env(name, make_env, overwrite=True)
    if state_mapper is not None:
        register_state_mapper(name, state_mapper, overwrite=True)


def register_env(name: str, factory: Callable[..., gym.Env], overwrite: bool = False) -> None:
    """Register ``factory`` (``(**kwargs) -> gymnasium.Env``) as what :func:`make_env` builds for ``name``."""
    if name in _ENVS and not overwrite:
        raise ValueError(f"An environment named {name!r} is already registered; pass overwrite=True to replace it.")
    _ENVS[name] = factory


def make_env(name: str, **kwargs: Any) -> gym.Env:
    """The environment for catalogue name ``name``, wrapped for SB3 and for ``get_symmetry(name)``.

    ``kwargs`` go to ``gymnasium.make`` (for example ``render_mode``, ``max_steps``, RotGrid's
    ``layout_rotation``). Names without a registered factory fall back to ``gymnasium.make(name)``.
    Pairs with :func:`get_symmetry`: ``env = make_env(n)`` and ``sym = get_symmetry(n)`` fit together.
    """
    if name in _ENVS:
        return _ENVS[name](**kwargs)
    _ensure_third_party(name)
    if name in gym.registry:
        return gym.make(name, **kwargs)
    raise KeyError(
        f"No environment named {name!r} in the catalogue or gymnasium's registry; see list_symmetries() for catalogue names."
    )


def _ensure_third_party(name: str) -> None:
    if name.startswith("MiniGrid") or name.startswith("BabyAI"):
        import minigrid  # noqa: F401  (registers the MiniGrid ids)


def get_symmetry(name: str) -> Symmetry:
    """The symmetry registered under ``name`` (see :func:`list_symmetries`)."""
    if name not in _REGISTRY:
        known = sorted(_REGISTRY)
        close = [n for n in known if n.split("/")[0] == name.split("/")[0]] or known[:8]
        raise KeyError(
            f"No symmetry named {name!r} ({len(known)} known, for example {close}; see list_symmetries()). "
            "Add one with register_symmetry()."
        )
    return _REGISTRY[name]()


def list_symmetries() -> list[str]:
    """Names of all registered symmetries."""
    return sorted(_REGISTRY)


def symmetry_docs() -> dict[str, str]:
    """First docstring line of each entry's factory, by name (for tables and ``--help``)."""
    return {n: (f.__doc__ or "").strip().splitlines()[0] if f.__doc__ else "" for n, f in sorted(_REGISTRY.items())}


def cartpole_reflection() -> Symmetry:
    """C2: observation s -> -s (all four components); actions 0 (push left) <-> 1 (push right)."""
    c2 = cyclic(2)
    return Symmetry(
        c2,
        SignFlipAction(c2, [[-1.0, -1.0, -1.0, -1.0]]),
        PermutationAction(c2, [[1, 0]]),
        name="CartPole-v1",
        description=cartpole_reflection.__doc__ or "",
    )


def acrobot_reflection() -> Symmetry:
    """C2: observation [cos1, sin1, cos2, sin2, dθ1, dθ2] times [1, -1, 1, -1, -1, -1]; torques -1 <-> +1 (actions 0 <-> 2, 1 fixed)."""
    c2 = cyclic(2)
    return Symmetry(
        c2,
        SignFlipAction(c2, [[1.0, -1.0, 1.0, -1.0, -1.0, -1.0]]),
        PermutationAction(c2, [[2, 1, 0]]),
        name="Acrobot-v1",
        description=acrobot_reflection.__doc__ or "",
    )


register_symmetry("CartPole-v1", cartpole_reflection, state_mapper=cartpole_mapper)
register_symmetry("Acrobot-v1", acrobot_reflection, state_mapper=acrobot_mapper)


# -- helpers for families --------------------------------------------------------------------------
def _named(build: Callable[[], Symmetry], name: str, doc: str) -> Callable[[], Symmetry]:
    """A factory returning ``build()`` renamed to the catalogue name, with ``doc`` as its docstring."""

    def factory() -> Symmetry:
        return dataclasses.replace(build(), name=name)

    factory.__doc__ = doc
    return factory


# -- MiniGrid ------------------------------------------------------------------------------------
MINIGRID_IDS: tuple[str, ...] = (
    "MiniGrid-Empty-5x5-v0",
    "MiniGrid-Empty-6x6-v0",
    "MiniGrid-Empty-8x8-v0",
    "MiniGrid-Empty-16x16-v0",
    "MiniGrid-Empty-Random-5x5-v0",
    "MiniGrid-Empty-Random-6x6-v0",
    "MiniGrid-DoorKey-5x5-v0",
    "MiniGrid-DoorKey-6x6-v0",
    "MiniGrid-DoorKey-8x8-v0",
    "MiniGrid-DoorKey-16x16-v0",
    "MiniGrid-FourRooms-v0",
    "MiniGrid-LavaGapS5-v0",
    "MiniGrid-LavaGapS6-v0",
    "MiniGrid-LavaGapS7-v0",
    "MiniGrid-LavaCrossingS9N1-v0",
    "MiniGrid-SimpleCrossingS9N1-v0",
    "MiniGrid-SimpleCrossingS11N5-v0",
    "MiniGrid-MultiRoom-N2-S4-v0",
)
"""MiniGrid tasks in the catalogue (all on square grids): each has ``<id>`` (egocentric mirror),
``<id>/full-D4`` and ``<id>/full-C4``. Add others with :func:`register_minigrid`."""


def _make_minigrid(env_id: str, view: str) -> Callable[..., gym.Env]:
    def make(**kwargs: Any) -> gym.Env:
        import minigrid  # noqa: F401
        from equirl.envs.minigrid_wrappers import MiniGridEgoOneHot, MiniGridFullOneHot

        env = gym.make(env_id, **kwargs)
        if view == "ego":
            return MiniGridEgoOneHot(env)
        u: Any = env.unwrapped
        if view == "full-square" and u.width != u.height:
            raise ValueError(f"{env_id} is {u.width}x{u.height}: rotations of the full view need a square grid.")
        return MiniGridFullOneHot(env)

    return make


def register_minigrid(env_id: str, full_view: bool = True, overwrite: bool = False) -> None:
    """Catalogue entries for a MiniGrid id: ``env_id`` (egocentric one-hot ``[20,7,7]``, mirror C2) and,
    with ``full_view``, ``env_id + "/full-D4"`` and ``"/full-C4"`` (full one-hot ``[24,N,N]``, square grids)."""
    from equirl.envs.minigrid_wrappers import minigrid_ego_mirror, minigrid_full_symmetry

    register_symmetry(
        env_id,
        _named(
            minigrid_ego_mirror,
            env_id,
            "C2 mirror: ego obs [20,7,7] flipped along x (dim -2); actions left <-> right (0 <-> 1).",
        ),
        overwrite,
        make_env=_make_minigrid(env_id, "ego"),
        state_mapper=lambda: minigrid_mapper(["flip0"]),
    )
    if not full_view:
        return
    register_symmetry(
        f"{env_id}/full-D4",
        _named(
            lambda: minigrid_full_symmetry("D4"),
            f"{env_id}/full-D4",
            "D4: full obs [24,N,N] rot90 over (x,y) with direction channels d -> d+1, actions fixed; "
            "flip x with direction 0 <-> 2, actions left <-> right.",
        ),
        overwrite,
        make_env=_make_minigrid(env_id, "full-square"),
        state_mapper=lambda: minigrid_mapper(["rot90", "flip0"]),
    )
    register_symmetry(
        f"{env_id}/full-C4",
        _named(
            lambda: minigrid_full_symmetry("C4"),
            f"{env_id}/full-C4",
            "C4: full obs [24,N,N] rot90 over (x,y) with direction channels d -> d+1; actions fixed (Q invariant).",
        ),
        overwrite,
        make_env=_make_minigrid(env_id, "full-square"),
        state_mapper=lambda: minigrid_mapper(["rot90"]),
    )


for _id in MINIGRID_IDS:
    register_minigrid(_id)


# -- RotGrid -------------------------------------------------------------------------------------
def _register_rotgrid() -> None:
    from equirl.envs.gridworld import ROTGRID_IDS, register_rotgrid_envs, rotgrid_symmetry

    register_rotgrid_envs()
    for env_id, kw in ROTGRID_IDS.items():
        size = int(kw["size"])

        def make(_id: str = env_id, **kwargs: Any) -> gym.Env:
            return gym.make(_id, **kwargs)

        def make_flat(_id: str = env_id, **kwargs: Any) -> gym.Env:
            return gym.make(_id, obs_mode="flat", **kwargs)

        register_symmetry(
            env_id,
            _named(
                lambda: rotgrid_symmetry("D4"),
                env_id,
                "D4: obs [4,N,N] torch.rot90(dims=(-2,-1)) / rows flipped; actions (up,right,down,left) "
                "q -> q[[1,2,3,0]] per quarter turn, q -> q[[2,1,0,3]] per flip.",
            ),
            make_env=make,
            state_mapper=lambda: rotgrid_mapper(["rot90", "flip0"]),
        )
        register_symmetry(
            f"{env_id}/C4",
            _named(
                lambda: rotgrid_symmetry("C4"),
                f"{env_id}/C4",
                "C4: obs [4,N,N] torch.rot90(dims=(-2,-1)); actions q -> q[[1,2,3,0]] per quarter turn.",
            ),
            make_env=make,
            state_mapper=lambda: rotgrid_mapper(["rot90"]),
        )
        register_symmetry(
            f"{env_id}/flat",
            _named(
                functools.partial(rotgrid_symmetry, "D4", flat=True, size=size),
                f"{env_id}/flat",
                "D4 on the flattened obs [4·N·N]: the same index maps as the image entry; actions as there.",
            ),
            make_env=make_flat,
            state_mapper=lambda: rotgrid_mapper(["rot90", "flip0"]),
        )


_register_rotgrid()


def catalogue_table(names: list[str] | None = None) -> str:
    """A markdown table ``| name | group | acts on observations and actions |`` of catalogue entries."""
    docs = symmetry_docs()
    rows = ["| name | group | action on observations; on actions |", "|---|---|---|"]
    for n in names or list_symmetries():
        rows.append(f"| `{n}` | {get_symmetry(n).group.name} | {docs[n]} |")
    return "\n".join(rows)
