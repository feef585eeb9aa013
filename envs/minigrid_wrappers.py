"""MiniGrid for Stable-Baselines3 and for the symmetries: one-hot, channel-first observations.

MiniGrid's ``image`` is ``uint8 [7, 7, 3]`` indexed ``[x, y, (object, colour, state)]``; its values are
object indices, not pixels. These wrappers one-hot encode them and put channels first:

- :class:`MiniGridEgoOneHot`: the egocentric view, ``uint8 [20, V, V]`` (``V`` = agent_view_size, 7),
  channels ``0..10`` object type, ``11..16`` colour, ``17..19`` state (open/closed/locked), indexed
  ``[channel, x, y]`` (x from the agent's left to its right, the agent at ``[3, 6]`` facing ``y = 0``).
- :class:`MiniGridEgoDict`: MiniGrid's own Dict observation without the mission, ``{"image": uint8 [20, V, V]``
  (the egocentric one-hot view above), ``"direction": Discrete(4)}`` (the agent's direction, 0 = +x, 1 = +y,
  2 = -x, 3 = -y); SB3's ``MultiInputPolicy`` / ``CombinedExtractor`` take it.
- :class:`MiniGridFullOneHot`: the full grid, ``uint8 [24, W, H]``: the same 20 channels for every
  cell (the agent cell is object ``agent``, colour red, state 0) plus channels ``20..23``, the one-hot
  agent direction at the agent's cell (0 = +x, 1 = +y, 2 = -x, 3 = -y).

Bounds are 0..1, so SB3 treats these as plain Boxes (no ``VecTransposeImage``, no ``/255``) and the
network sees exactly ``[C, x, y]``; use ``agents.SmallKernelCNN`` as the features extractor.

With the direction in its own channels, every symmetry acts by index maps only: the mirror flips dim
``-2`` (x) and swaps direction channels 20 <-> 22; a quarter turn is ``torch.rot90(dims=(-2, -1))``
plus the channel cycle ``20 -> 21 -> 22 -> 23 -> 20`` (d -> d+1).

The world maps (:func:`transform_minigrid_state`) act on the environment's state (grid, agent
position and direction, carried object) and are what the verifier uses to build the mapped twin.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from equirl import (
    Action,
    ComposedAction,
    DictAction,
    PermutationAction,
    SpatialAction,
    Symmetry,
    TrivialAction,
    ValuePermutationAction,
    cyclic,
    dihedral,
)

__all__ = [
    "N_OBJECTS",
    "N_COLORS",
    "N_STATES",
    "N_CELL_CHANNELS",
    "DIR_CHANNELS",
    "MiniGridEgoOneHot",
    "MiniGridFullOneHot",
    "MiniGridEgoDict",
    "minigrid_ego_mirror",
    "minigrid_ego_dict_mirror",
    "minigrid_full_symmetry",
    "MiniGridState",
    "get_minigrid_state",
    "set_minigrid_state",
    "transform_minigrid_state",
    "MINIGRID_ACTION_NAMES",
]

N_OBJECTS, N_COLORS, N_STATES = 11, 6, 3
N_CELL_CHANNELS = N_OBJECTS + N_COLORS + N_STATES  # 20
DIR_CHANNELS = N_CELL_CHANNELS  # first of the 4 direction channels of the full view
MINIGRID_ACTION_NAMES = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
_N_ACTIONS = 7


def _one_hot_cells(img: np.ndarray) -> np.ndarray:
    """``uint8 [X, Y, 3]`` encoded cells -> ``uint8 [20, X, Y]`` one-hot (object, colour, state)."""
    x, y, _ = img.shape
    out = np.zeros((N_CELL_CHANNELS, x, y), dtype=np.uint8)
    ii, jj = np.indices((x, y))
    out[img[..., 0], ii, jj] = 1
    out[N_OBJECTS + img[..., 1], ii, jj] = 1
    out[N_OBJECTS + N_COLORS + img[..., 2], ii, jj] = 1
    return out


class MiniGridEgoOneHot(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """MiniGrid's egocentric view as ``uint8 [20, V, V]`` one-hot, channel-first (see the module doc).

    Takes a raw MiniGrid env (dict observations); drops ``direction`` and ``mission``.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        v = int(env.unwrapped.agent_view_size)  # type: ignore[attr-defined]
        self.observation_space = spaces.Box(0, 1, shape=(N_CELL_CHANNELS, v, v), dtype=np.uint8)

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        return _one_hot_cells(observation["image"])


class MiniGridEgoDict(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """MiniGrid's Dict observation for SB3: ``{"image": uint8 [20, V, V], "direction": Discrete(4)}``.

    ``image`` is the egocentric view one-hot and channel-first as in :class:`MiniGridEgoOneHot` (bounds 0..1, so
    SB3's ``CombinedExtractor`` flattens it rather than sending a 7x7 "image" to ``NatureCNN``); ``direction`` is
    MiniGrid's, unchanged. The ``mission`` (a ``Text`` space, which SB3 does not take) is dropped: in the
    catalogue's tasks it is the same string in every episode.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        v = int(env.unwrapped.agent_view_size)  # type: ignore[attr-defined]
        self.observation_space = spaces.Dict(
            {"image": spaces.Box(0, 1, shape=(N_CELL_CHANNELS, v, v), dtype=np.uint8), "direction": spaces.Discrete(4)}
        )

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {"image": _one_hot_cells(observation["image"]), "direction": int(observation["direction"])}


class MiniGridFullOneHot(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """MiniGrid's full grid as ``uint8 [24, W, H]`` one-hot, channel-first, direction in channels 20..23."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        u: Any = env.unwrapped
        self.observation_space = spaces.Box(0, 1, shape=(N_CELL_CHANNELS + 4, u.width, u.height), dtype=np.uint8)

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

        u: Any = self.unwrapped
        full = u.grid.encode()
        x, y = int(u.agent_pos[0]), int(u.agent_pos[1])
        full[x, y] = (OBJECT_TO_IDX["agent"], COLOR_TO_IDX["red"], 0)
        out = np.zeros((N_CELL_CHANNELS + 4, u.width, u.height), dtype=np.uint8)
        out[:N_CELL_CHANNELS] = _one_hot_cells(full)
        out[DIR_CHANNELS + int(u.agent_dir), x, y] = 1
        return out


# -- symmetries ----------------------------------------------------------------------------------
_SWAP_TURNS = [1, 0, 2, 3, 4, 5, 6]


def _dir_perm(step: Callable[[int], int]) -> list[int]:
    """Channel permutation p with (g·x)[i] = x[p[i]] that moves direction d to ``step(d)``."""
    inv = {step(d): d for d in range(4)}
    return list(range(N_CELL_CHANNELS)) + [DIR_CHANNELS + inv[d] for d in range(4)]


def minigrid_ego_mirror() -> Symmetry:
    """C2 mirror of the egocentric view: obs [20,7,7] flipped along x (dim -2); actions left <-> right (0 <-> 1)."""
    c2 = cyclic(2)
    return Symmetry(
        c2,
        SpatialAction(c2, ["flip0"], dims=(-2, -1)),
        PermutationAction(c2, [_SWAP_TURNS]),
        name="MiniGrid egocentric mirror",
        description=minigrid_ego_mirror.__doc__ or "",
    )


def minigrid_ego_dict_mirror() -> Symmetry:
    """C2 mirror of the Dict obs: image [20,7,7] flipped along x (dim -2), direction 0 <-> 2 (1, 3 fixed); actions left <-> right.

    The world map behind it reverses x (``transform_minigrid_state(state, "flip0")``): the egocentric view is
    mirrored whatever the agent faces, and the absolute direction ``d`` becomes ``(2 - d) mod 4`` (east <-> west,
    south and north fixed), as in the full view's flip.
    """
    c2 = cyclic(2)
    obs = DictAction(
        c2,
        {
            "image": SpatialAction(c2, ["flip0"], dims=(-2, -1)),
            "direction": ValuePermutationAction(c2, [[(2 - d) % 4 for d in range(4)]]),
        },
    )
    return Symmetry(
        c2,
        obs,
        PermutationAction(c2, [_SWAP_TURNS]),
        name="MiniGrid egocentric mirror (Dict)",
        description=minigrid_ego_dict_mirror.__doc__ or "",
    )


def minigrid_full_symmetry(group: str = "D4") -> Symmetry:
    """Full view [24,N,N]: D4 = quarter turns (rot90 of (x, y), direction d -> d+1, actions fixed) and flips
    (x reversed, direction 0 <-> 2, actions left <-> right); ``group="C4"`` keeps the quarter turns only.
    """
    obs: Action
    out: Action
    rot = _dir_perm(lambda d: (d + 1) % 4)
    flip = _dir_perm(lambda d: (2 - d) % 4)
    if group == "D4":
        g = dihedral(4)
        obs = ComposedAction(
            SpatialAction(g, ["rot90", "flip0"], dims=(-2, -1)), PermutationAction(g, [rot, flip], dim=-3)
        )
        out = PermutationAction(g, [list(range(_N_ACTIONS)), _SWAP_TURNS])
        desc = "D4 on the full view: rot90 of (x,y) with direction d->d+1 (actions fixed); flip x with direction 0<->2, actions 0<->1"
    elif group == "C4":
        g = cyclic(4)
        obs = ComposedAction(SpatialAction(g, ["rot90"], dims=(-2, -1)), PermutationAction(g, [rot], dim=-3))
        out = TrivialAction(g)
        desc = "C4 on the full view: rot90 of (x,y) with direction d->d+1; actions fixed (Q-values invariant)"
    else:
        raise ValueError(f"minigrid_full_symmetry: group must be 'D4' or 'C4', got {group!r}.")
    return Symmetry(g, obs, out, name=f"MiniGrid full-view {g.name}", description=desc)


# -- state maps (for the verifier) ------------------------------------------------------------------
MiniGridState = dict[str, Any]


def get_minigrid_state(env: gym.Env) -> MiniGridState:
    """A deep copy of what MiniGrid's ``step`` reads: grid, agent position/direction, carried object, step count."""
    u: Any = env.unwrapped
    return copy.deepcopy(
        dict(
            grid=u.grid,
            agent_pos=tuple(int(v) for v in u.agent_pos),
            agent_dir=int(u.agent_dir),
            carrying=u.carrying,
            step_count=int(u.step_count),
        )
    )


def set_minigrid_state(env: gym.Env, state: MiniGridState) -> None:
    """Put a MiniGrid env into ``state`` (a copy is taken). The grid's size must match the env's."""
    u: Any = env.unwrapped
    s = copy.deepcopy(state)
    if (s["grid"].width, s["grid"].height) != (u.width, u.height):
        raise ValueError(
            f"set_minigrid_state: grid is {s['grid'].width}x{s['grid'].height}, env is {u.width}x{u.height}."
        )
    u.grid, u.agent_pos, u.agent_dir = s["grid"], s["agent_pos"], s["agent_dir"]
    u.carrying, u.step_count = s["carrying"], s["step_count"]


def _rot90_cell(x: int, y: int, w: int, h: int) -> tuple[int, int]:
    # np.rot90(a, 1, axes=(0, 1)) on [x, y] arrays: new[i, j] = old[j, w-1-i], so old (x, y) -> (h-1-y, x)
    return h - 1 - y, x


def _flip_cell(x: int, y: int, w: int, h: int) -> tuple[int, int]:
    return w - 1 - x, y


_WORLD_OPS: dict[str, tuple[Callable[[int, int, int, int], tuple[int, int]], Callable[[int], int], bool]] = {
    # op: (cell map, direction map, swaps width/height)
    "rot90": (_rot90_cell, lambda d: (d + 1) % 4, True),
    "flip0": (_flip_cell, lambda d: (2 - d) % 4, False),
}


def transform_minigrid_state(state: MiniGridState, op: str) -> MiniGridState:
    """Apply a world map to a MiniGrid state: ``"rot90"`` (square grids) or ``"flip0"`` (x reversed).

    Cells move as in ``np.rot90(grid.encode(), 1, axes=(0, 1))`` / ``grid.encode()[::-1]``; the agent's
    direction maps as ``d -> d+1`` / ``0 <-> 2``. Objects are deep-copied with their ``cur_pos`` updated.
    """
    from minigrid.core.grid import Grid

    if op not in _WORLD_OPS:
        raise ValueError(f"transform_minigrid_state: unknown op {op!r}; choose from {sorted(_WORLD_OPS)}.")
    cell, direction, swaps = _WORLD_OPS[op]
    old = state["grid"]
    w, h = old.width, old.height
    if swaps and w != h:
        raise ValueError(f"transform_minigrid_state: {op} needs a square grid, got {w}x{h}.")
    new = Grid(h, w) if swaps else Grid(w, h)
    for x in range(w):
        for y in range(h):
            obj = old.get(x, y)
            if obj is None:
                continue
            obj = copy.deepcopy(obj)
            nx, ny = cell(x, y, w, h)
            obj.cur_pos = (nx, ny)
            new.set(nx, ny, obj)
    ax, ay = state["agent_pos"]
    return dict(
        grid=new,
        agent_pos=cell(ax, ay, w, h),
        agent_dir=direction(state["agent_dir"]),
        carrying=copy.deepcopy(state["carrying"]),
        step_count=state["step_count"],
    )
