"""The symmetry catalogue: one registry from names to symmetries, environments and state mappers.

``get_symmetry(name)`` returns a fresh :class:`equirl.Symmetry`; ``make_env(name)`` the environment
that symmetry is meant for, already wrapped for Stable-Baselines3; ``register_symmetry(name, factory,
make_env=..., state_mapper=...)`` adds an entry (factories are no-argument callables, so entries are
built on demand). Every entry's docstring says how the group acts on observations and on actions.

Naming (one name = one environment + one symmetry):

- a gymnasium id alone is the environment as gymnasium makes it, or with the project's default
  wrappers: ``"CartPole-v1"``, ``"Acrobot-v1"``; ``"MiniGrid-<task>"`` = egocentric 7x7 one-hot view
  with the mirror (C2); ``"MiniGrid-<task>/dict"`` = MiniGrid's Dict observation (image, direction; the
  mission dropped) with the mirror; ``"equirl/RotGrid-<variant>-v0"`` = the gridworld with D4;
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
    rotgrid_mapper,
    vector_state_mapper,
)

from equirl import PermutationAction, SignFlipAction, Symmetry, cyclic

__all__ = [
    "CatalogEntry",
    "get_entry",
    "get_symmetry",
    "register_symmetry",
    "list_symmetries",
    "symmetry_docs",
    "make_env",
    "register_env",
    "register_state_mapper",
    "register_discovery",
    "get_state_mapper",
    "list_state_mappers",
    "register_minigrid",
    "MINIGRID_IDS",
    "MINIGRID_EGO_ONLY_IDS",
    "catalogue_table",
    "unregister",
    "bitflipping_symmetry",
    "trivial_symmetry",
]


@dataclasses.dataclass
class CatalogEntry:
    """One catalogue name: what :func:`get_symmetry`, :func:`make_env` and :func:`get_state_mapper` return for it.

    Every part is a no-argument factory (``make_env`` takes ``**kwargs`` for ``gymnasium.make``), so entries
    are built on demand; a part that is None is not registered (``make_env`` then falls back to
    ``gymnasium.make(name)``, ``get_symmetry`` and ``get_state_mapper`` raise a KeyError with advice).
    ``discovery`` returns an ``envs.ObsStateCodec`` or ``envs.WorldMaps`` for :func:`envs.discover_symmetry`
    (registered with :func:`register_discovery`, for environments the built-in ones do not cover).
    """

    name: str
    symmetry: Callable[[], Symmetry] | None = None
    make_env: Callable[..., gym.Env] | None = None
    state_mapper: Callable[[], StateMapper] | None = None
    discovery: Callable[[], Any] | None = None


_CATALOG: dict[str, CatalogEntry] = {}
"""The one registry: catalogue name -> entry. Written only through the ``register_*`` functions."""


def _set_part(name: str, part: str, factory: Callable[..., Any], overwrite: bool, what: str) -> None:
    if not callable(factory):
        raise TypeError(f"register_{part}({name!r}): the factory must be a callable returning {what}.")
    entry = _CATALOG.setdefault(name, CatalogEntry(name))
    if getattr(entry, part) is not None and not overwrite:
        raise ValueError(
            f"{what[0].upper() + what[1:]} for {name!r} is already registered; pass overwrite=True to replace it."
        )
    setattr(entry, part, factory)


def register_symmetry(
    name: str,
    factory: Callable[[], Symmetry],
    overwrite: bool = False,
    *,
    make_env: Callable[..., gym.Env] | None = None,
    state_mapper: Callable[[], StateMapper] | None = None,
) -> None:
    """Register ``factory`` (``() -> Symmetry``) under ``name``, with optionally its environment and state mapper.

    :param make_env: optional ``(**kwargs) -> gymnasium.Env`` that :func:`make_env` uses for ``name``
        (default: ``gymnasium.make(name, **kwargs)``).
    :param state_mapper: optional ``() -> envs.StateMapper``, so that ``verify_symmetry(name)`` works.
    :param overwrite: replace parts already registered under ``name``; without it nothing is replaced silently.
    :raises ValueError: if ``name`` already has a symmetry, or the given environment / mapper, and
        ``overwrite`` is False (nothing is registered then).
    """
    parts: list[tuple[str, Callable[..., Any], str]] = [("symmetry", factory, "a symmetry")]
    if make_env is not None:
        parts.append(("make_env", make_env, "an environment"))
    if state_mapper is not None:
        parts.append(("state_mapper", state_mapper, "a state mapper"))
    entry = _CATALOG.get(name)
    for part, f, what in parts:  # check everything first: all or nothing
        if not callable(f):
            raise TypeError(f"register_symmetry({name!r}): {part} must be a callable returning {what}.")
        if entry is not None and getattr(entry, part) is not None and not overwrite:
            raise ValueError(
                f"{what[0].upper() + what[1:]} for {name!r} is already registered; pass overwrite=True to replace it."
            )
    for part, f, what in parts:
        _set_part(name, part, f, True, what)


def register_env(name: str, factory: Callable[..., gym.Env], overwrite: bool = False) -> None:
    """Register ``factory`` (``(**kwargs) -> gymnasium.Env``) as what :func:`make_env` builds for ``name``.

    :raises ValueError: if ``name`` has an environment already and ``overwrite`` is False.
    """
    _set_part(name, "make_env", factory, overwrite, "an environment")


def register_state_mapper(name: str, factory: Callable[[], StateMapper], overwrite: bool = False) -> None:
    """Register ``factory`` (``() -> StateMapper``) under a catalogue name (what the verifier uses for ``name``).

    :raises ValueError: if ``name`` has a state mapper already and ``overwrite`` is False.
    """
    _set_part(name, "state_mapper", factory, overwrite, "a state mapper")


def register_discovery(name: str, factory: Callable[[], Any], overwrite: bool = False) -> None:
    """Register ``factory`` (``() -> envs.ObsStateCodec | envs.WorldMaps``): how :func:`envs.discover_symmetry`
    (and ``equirl discover NAME``) reaches mapped states of the environment ``name``.

    :raises ValueError: if ``name`` has one already and ``overwrite`` is False.
    """
    _set_part(name, "discovery", factory, overwrite, "a discovery codec")


def unregister(name: str) -> None:
    """Remove every part registered under ``name`` (no error when there is none)."""
    _CATALOG.pop(name, None)


def get_entry(name: str) -> CatalogEntry:
    """The catalogue entry for ``name`` (a copy). :raises KeyError: when nothing is registered under it."""
    if name not in _CATALOG:
        raise KeyError(f"Nothing is registered under {name!r}; see list_symmetries().")
    return dataclasses.replace(_CATALOG[name])


def make_env(name: str, **kwargs: Any) -> gym.Env:
    """The environment for catalogue name ``name``, wrapped for SB3 and for ``get_symmetry(name)``.

    ``kwargs`` go to ``gymnasium.make`` (for example ``render_mode``, ``max_steps``, RotGrid's
    ``layout_rotation``). Names without a registered factory fall back to ``gymnasium.make(name)``.
    Pairs with :func:`get_symmetry`: ``env = make_env(n)`` and ``sym = get_symmetry(n)`` fit together.
    """
    entry = _CATALOG.get(name)
    if entry is not None and entry.make_env is not None:
        return entry.make_env(**kwargs)
    _ensure_third_party(name)
    if name in gym.registry:
        return gym.make(name, **kwargs)
    raise KeyError(
        f"No environment named {name!r} in the catalogue or gymnasium's registry; see list_symmetries() for catalogue names."
    )


def _ensure_third_party(name: str) -> None:
    if name.startswith("MiniGrid") or name.startswith("BabyAI"):
        import minigrid  # noqa: F401  (registers the MiniGrid ids)


def _symmetry_factories() -> dict[str, Callable[[], Symmetry]]:
    return {n: e.symmetry for n, e in sorted(_CATALOG.items()) if e.symmetry is not None}


def get_symmetry(name: str) -> Symmetry:
    """The symmetry registered under ``name`` (see :func:`list_symmetries`)."""
    factories = _symmetry_factories()
    if name not in factories:
        known = sorted(factories)
        close = [n for n in known if n.split("/")[0] == name.split("/")[0]] or known[:8]
        raise KeyError(
            f"No symmetry named {name!r} ({len(known)} known, for example {close}; see list_symmetries()). "
            "Add one with register_symmetry()."
        )
    return factories[name]()


def list_symmetries() -> list[str]:
    """Names of all registered symmetries."""
    return sorted(_symmetry_factories())


def get_state_mapper(name: str) -> StateMapper:
    """The state mapper registered under ``name``.

    :raises KeyError: with advice, when the environment has no mapper.
    """
    entry = _CATALOG.get(name)
    if entry is None or entry.state_mapper is None:
        raise KeyError(
            f"No state mapper for {name!r}: the verifier cannot put a twin of this environment into a mapped "
            f"state. Register one with envs.register_state_mapper({name!r}, lambda: StateMapper(get_state, "
            f"set_state, map_state)) or pass state_mapper=... to verify_symmetry (or use "
            f"mode='statistical', which can compare rollouts without one). Known: {_short(list_state_mappers())}."
        )
    return entry.state_mapper()


def _short(names: list[str], k: int = 8) -> str:
    return ", ".join(names[:k]) + (f", ... ({len(names) - k} more; see list_state_mappers())" if len(names) > k else "")


def list_state_mappers() -> list[str]:
    """Names with a registered state mapper."""
    return sorted(n for n, e in _CATALOG.items() if e.state_mapper is not None)


def symmetry_docs() -> dict[str, str]:
    """First docstring line of each entry's factory, by name (for tables and ``--help``)."""
    return {n: (f.__doc__ or "").strip().splitlines()[0] if f.__doc__ else "" for n, f in _symmetry_factories().items()}


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


def pendulum_reflection() -> Symmetry:
    """C2: observation (cos θ, sin θ, θ̇) -> (cos θ, -sin θ, -θ̇); torque a -> -a (a continuous Box action)."""
    c2 = cyclic(2)
    return Symmetry(
        c2,
        SignFlipAction(c2, [[1.0, -1.0, -1.0]]),
        PermutationAction(c2, [[0]], signs=[[-1.0]]),  # a signed permutation of the action vector (with a data form)
        name="Pendulum-v1",
        description=pendulum_reflection.__doc__ or "",
    )


def pendulum_mapper() -> StateMapper:
    """Pendulum: state ``[θ, θ̇]`` -> ``-state`` (the dynamics and the reward are odd/even in θ, θ̇ and the torque)."""
    return vector_state_mapper("state", [[-1.0, -1.0]], obs_fn=lambda u: u._get_obs(), exact=True)


def trivial_symmetry(observation_space: gym.Space, action_space: gym.Space, order: int = 2) -> Symmetry:
    """``C_order`` acting as the identity on observations and on actions, for any observation and action space.

    An equivariant agent with it computes what a plain one computes (every view of the orbit is the
    observation itself), through the equivariant code path: a stand-in where an environment has no
    symmetry (SB3's own tests run with it, ``tests/sb3_upstream``). The input action is a ``TrivialAction``,
    which takes tensors and dict batches alike, so it fits Box, Discrete, MultiDiscrete, MultiBinary and
    Dict observations.

    :param observation_space: the environment's observation space (any gymnasium space).
    :param action_space: its action space (any gymnasium space).
    :param order: the group's order (>= 1; 2 by default, so that the orbit really has several views).
    :raises TypeError: when a space is not a gymnasium space.
    """
    from equirl.actions import TrivialAction

    for what, space in (("observation_space", observation_space), ("action_space", action_space)):
        if not isinstance(space, gym.spaces.Space):
            raise TypeError(f"trivial_symmetry: {what} must be a gymnasium space, got {type(space).__name__}.")
    if int(order) < 1:
        raise ValueError(f"trivial_symmetry: order must be at least 1, got {order}.")
    g = cyclic(int(order))
    return Symmetry(
        g,
        TrivialAction(g),
        TrivialAction(g),
        name=f"trivial C{order}",
        description=f"C{order} acting trivially on {observation_space} and {action_space}",
    )


register_symmetry("CartPole-v1", cartpole_reflection, state_mapper=cartpole_mapper)
register_symmetry("Acrobot-v1", acrobot_reflection, state_mapper=acrobot_mapper)
register_symmetry("Pendulum-v1", pendulum_reflection, state_mapper=pendulum_mapper)


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
        from equirl.envs.minigrid_wrappers import MiniGridEgoDict, MiniGridEgoOneHot, MiniGridFullOneHot

        env = gym.make(env_id, **kwargs)
        if view == "ego":
            return MiniGridEgoOneHot(env)
        if view == "dict":
            return MiniGridEgoDict(env)
        u: Any = env.unwrapped
        if view == "full-square" and u.width != u.height:
            raise ValueError(f"{env_id} is {u.width}x{u.height}: rotations of the full view need a square grid.")
        return MiniGridFullOneHot(env)

    return make


def register_minigrid(env_id: str, full_view: bool = True, overwrite: bool = False) -> None:
    """Catalogue entries for a MiniGrid id: ``env_id`` (egocentric one-hot ``[20,7,7]``, mirror C2),
    ``env_id + "/dict"`` (MiniGrid's Dict observation without the mission: image and direction, mirror C2) and,
    with ``full_view``, ``env_id + "/full-D4"`` and ``"/full-C4"`` (full one-hot ``[24,N,N]``, square grids)."""
    from equirl.envs.minigrid_wrappers import minigrid_ego_dict_mirror, minigrid_ego_mirror, minigrid_full_symmetry

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
    register_symmetry(
        f"{env_id}/dict",
        _named(
            minigrid_ego_dict_mirror,
            f"{env_id}/dict",
            "C2 mirror: Dict obs image [20,7,7] flipped along x (dim -2), direction 0 <-> 2; actions left <-> right "
            "(0 <-> 1). MiniGrid's mission (Text) is dropped.",
        ),
        overwrite,
        make_env=_make_minigrid(env_id, "dict"),
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

MINIGRID_EGO_ONLY_IDS: tuple[str, ...] = ("MiniGrid-DistShift1-v0", "MiniGrid-DistShift2-v0")
"""MiniGrid tasks on non-square grids: only ``<id>`` (egocentric mirror) and ``<id>/dict``. DistShift's fixed layout
is chiral (its mirror image is not a rotation of it), so its mirrored world is new to an agent trained on it."""

for _id in MINIGRID_EGO_ONLY_IDS:
    register_minigrid(_id, full_view=False)


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


# -- BitFlipping (goal-conditioned, Dict observations, for HER) ------------------------------------
BITFLIPPING_KEYS = ("observation", "achieved_goal", "desired_goal")


def bitflipping_symmetry(n_bits: int = 10) -> Symmetry:
    """C_n on SB3's ``BitFlippingEnv(n_bits)`` (Dict of three ``MultiBinary(n_bits)``, ``Discrete(n_bits)`` actions).

    The generator shifts the bits cyclically, ``(g·x)[i] = x[(i + 1) mod n]``, on the observation, the
    achieved and the desired goal together, and the actions the same way (action ``i`` flips bit ``i``):
    ``Q(g·s)[i] = Q(s)[(i + 1) mod n]``. Any permutation of the bits is a symmetry; the shift generates
    a subgroup of order ``n`` that moves every bit.
    """
    from equirl.actions import DictAction

    if n_bits < 2:
        raise ValueError(f"bitflipping_symmetry: n_bits must be at least 2, got {n_bits}.")
    g = cyclic(n_bits)
    shift = [(i + 1) % n_bits for i in range(n_bits)]
    bits = DictAction(g, {k: PermutationAction(g, [shift]) for k in BITFLIPPING_KEYS})
    return Symmetry(
        g, bits, PermutationAction(g, [shift]), name=f"BitFlipping C{n_bits}", description="cyclic shift of the bits"
    )


def bitflipping_mapper() -> StateMapper:
    """BitFlipping: the state is ``(bits, desired goal, step)``; the generator shifts both bit vectors."""
    import numpy as np
    from equirl.envs.mappers import mapper_from_generators

    def get_state(env: gym.Env) -> tuple[Any, Any, int]:
        u: Any = env.unwrapped
        return u.state.copy(), u.desired_goal.copy(), int(u.current_step)

    def set_state(env: gym.Env, state: tuple[Any, Any, int]) -> None:
        u: Any = env.unwrapped
        u.state, u.desired_goal, u.current_step = state[0].copy(), state[1].copy(), int(state[2])

    def shift(state: tuple[Any, Any, int]) -> tuple[Any, Any, int]:
        n = len(state[0])
        p = (np.arange(n) + 1) % n
        return state[0][p], state[1][p], state[2]

    return mapper_from_generators(get_state, set_state, [shift], observe_raw=lambda u: u._get_obs())


def _make_bitflipping(n_bits: int = 10, **kwargs: Any) -> gym.Env:
    from stable_baselines3.common.envs import BitFlippingEnv  # SB3's own test environment

    return BitFlippingEnv(n_bits=n_bits, continuous=False, **kwargs)


register_symmetry(
    "BitFlipping-v0",
    _named(
        bitflipping_symmetry,
        "BitFlipping-v0",
        "C10 on SB3's BitFlippingEnv(n_bits=10): Dict obs (observation, achieved_goal, desired_goal) bits shifted "
        "cyclically x[i] <- x[(i+1) mod 10] on all three keys; actions q -> q[(i+1) mod 10]. "
        "Other sizes: bitflipping_symmetry(n_bits).",
    ),
    make_env=_make_bitflipping,
    state_mapper=bitflipping_mapper,
)


register_symmetry(
    "BitFlipping-25-v0",
    _named(
        functools.partial(bitflipping_symmetry, 25),
        "BitFlipping-25-v0",
        "C25 on SB3's BitFlippingEnv(n_bits=25) (episodes of 25 steps): as BitFlipping-v0 with 25 bits.",
    ),
    make_env=functools.partial(_make_bitflipping, 25),
    state_mapper=bitflipping_mapper,
)


def catalogue_table(names: list[str] | None = None) -> str:
    """A markdown table ``| name | group | acts on observations and actions |`` of catalogue entries."""
    docs = symmetry_docs()
    rows = ["| name | group | action on observations; on actions |", "|---|---|---|"]
    for n in names or list_symmetries():
        rows.append(f"| `{n}` | {get_symmetry(n).group.name} | {docs[n]} |")
    return "\n".join(rows)
