"""RotGrid: a small square gridworld whose move actions rotate with the grid.

The agent moves in absolute directions (``0 up, 1 right, 2 down, 3 left``), so a quarter turn of
the grid permutes the actions, and a flip swaps two of them: the dynamics are symmetric under the
dihedral group D4 of the square (and its subgroup C4). Layouts, goals and start cells need not be
symmetric: that is what the task variants change, so that transfer to rotated tasks can be tested.

Observation (``obs_mode="image"``): ``uint8 [4, N, N]`` channel-first, one-hot planes
``[wall, hazard, goal, agent]``, indexed ``[channel, row, col]`` with row 0 at the top ("up" is
``row - 1``). Bounds are 0..1, so Stable-Baselines3 treats it as a plain Box: no transpose, no
``/255``. ``obs_mode="flat"`` gives the same array flattened, ``uint8 [4·N·N]``.

Rewards: ``+1`` on reaching the goal (terminates), ``-1`` on entering a hazard (terminates),
``step_penalty`` (default ``-0.01``) otherwise. Moving into a wall or off the grid leaves the agent
in place. Episodes are truncated after ``max_steps``.

The symmetry acts on ``(row, col)`` as ``torch.rot90(·, 1, dims=(-2, -1))`` (a counter-clockwise
quarter turn on screen) and ``flip0`` (rows reversed, up <-> down); see :func:`rotgrid_symmetry`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from equirl import Group, PermutationAction, SpatialAction, Symmetry, cyclic, dihedral
from equirl.actions import Action

__all__ = [
    "RotGridEnv",
    "ROTGRID_IDS",
    "UP",
    "RIGHT",
    "DOWN",
    "LEFT",
    "rotgrid_symmetry",
    "flatten_action",
    "register_rotgrid_envs",
]

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
_MOVES = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)], dtype=np.int64)  # (drow, dcol) per action
WALL, HAZARD, GOAL, AGENT = 0, 1, 2, 3
CORNERS = ("top-left", "top-right", "bottom-right", "bottom-left")

# Named layouts for N = 7 (row strings; "#" wall, "~" hazard, "." free). Other sizes get "open".
_LAYOUTS: dict[str, list[str]] = {
    "open": [],
    # symmetric under D4: hazards at the midpoints of the edges' inner ring, walls in the diagonal ring
    "cross": [
        ".......",
        ".#...#.",
        "...~...",
        "..~.~..",
        "...~...",
        ".#...#.",
        ".......",
    ],
    # no symmetry at all: a wall segment, a hazard pool and a pillar
    "maze": [
        ".......",
        ".####..",
        ".....~.",
        "..#..~.",
        "..#....",
        "..#~~#.",
        ".......",
    ],
}


def _corner_cell(corner: int, n: int) -> tuple[int, int]:
    return [(0, 0), (0, n - 1), (n - 1, n - 1), (n - 1, 0)][corner]


class RotGridEnv(gym.Env[np.ndarray, np.int64]):
    """A square gridworld with absolute moves, symmetric under D4 (see the module docstring).

    :param size: side ``N`` of the square grid (at least 3).
    :param layout: ``"open"``, ``"cross"`` (D4-symmetric hazards and walls) or ``"maze"`` (asymmetric);
        the named layouts other than ``"open"`` need ``size == 7``.
    :param layout_rotation: rotate the layout (and goal corners) by this many counter-clockwise quarter
        turns, ``np.rot90`` convention: ``k = 1`` moves the top-right corner to the top-left.
    :param goal_corners: corners the goal is drawn from at each reset, indices into
        ``("top-left", "top-right", "bottom-right", "bottom-left")``.
    :param start: ``"random"`` (a uniformly random free cell) or ``"center"``.
    :param max_steps: truncation horizon (default ``4·N``).
    :param step_penalty: reward added on every step that does not end the episode.
    :param obs_mode: ``"image"`` (``uint8 [4, N, N]``) or ``"flat"`` (``uint8 [4·N·N]``).
    :param render_mode: ``None``, ``"ansi"`` (text), ``"rgb_array"`` (``uint8 [N·tile, N·tile, 3]`` pictures,
        what SB3's ``make_vec_env`` and gymnasium's ``RecordVideo`` ask for) or ``"human"`` (a pygame window;
        needs pygame and a display).
    :param tile_size: pixels per cell in the ``rgb_array`` and ``human`` pictures.
    """

    metadata = {"render_modes": ["ansi", "rgb_array", "human"], "render_fps": 10}

    def __init__(
        self,
        size: int = 7,
        layout: str = "open",
        layout_rotation: int = 0,
        goal_corners: tuple[int, ...] = (0, 1, 2, 3),
        start: str = "random",
        max_steps: int | None = None,
        step_penalty: float = -0.01,
        obs_mode: str = "image",
        render_mode: str | None = None,
        tile_size: int = 16,
    ) -> None:
        if size < 3:
            raise ValueError(f"RotGridEnv: size must be at least 3, got {size}.")
        if layout not in _LAYOUTS:
            raise ValueError(f"RotGridEnv: unknown layout {layout!r}; choose from {sorted(_LAYOUTS)}.")
        if layout != "open" and size != len(_LAYOUTS[layout]):
            raise ValueError(
                f"RotGridEnv: layout {layout!r} is {len(_LAYOUTS[layout])}x{len(_LAYOUTS[layout])}, got size={size}."
            )
        if not goal_corners or any(c not in range(4) for c in goal_corners):
            raise ValueError(
                f"RotGridEnv: goal_corners must be a non-empty subset of 0..3 {CORNERS}, got {goal_corners}."
            )
        if start not in ("random", "center"):
            raise ValueError(f"RotGridEnv: start must be 'random' or 'center', got {start!r}.")
        if obs_mode not in ("image", "flat"):
            raise ValueError(f"RotGridEnv: obs_mode must be 'image' or 'flat', got {obs_mode!r}.")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"RotGridEnv: render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}."
            )
        if tile_size < 2:
            raise ValueError(f"RotGridEnv: tile_size must be at least 2 pixels, got {tile_size}.")
        self.tile_size = int(tile_size)
        self._window: Any = None
        self._clock: Any = None
        self.size = n = size
        self.layout = layout
        self.layout_rotation = int(layout_rotation) % 4
        self.start = start
        self.max_steps = 4 * n if max_steps is None else int(max_steps)
        self.step_penalty = float(step_penalty)
        self.obs_mode = obs_mode
        self.render_mode = render_mode

        static = np.zeros((3, n, n), dtype=np.uint8)
        for r, row in enumerate(_LAYOUTS[layout]):
            for c, ch in enumerate(row):
                if ch == "#":
                    static[WALL, r, c] = 1
                elif ch == "~":
                    static[HAZARD, r, c] = 1
        k = self.layout_rotation
        static = np.ascontiguousarray(np.rot90(static, k, axes=(1, 2)))
        # corner i at (r, c) goes where np.rot90 puts it: k CCW turns map corner i -> i - k (mod 4)
        self.goal_corners = tuple(sorted({(c - k) % 4 for c in goal_corners}))
        goals = [_corner_cell(c, n) for c in self.goal_corners]
        for r, c in goals:
            if static[:, r, c].any():
                raise ValueError(f"RotGridEnv: goal cell {(r, c)} is blocked in layout {layout!r}.")
        self._static = static  # [wall, hazard, goal] without the goal
        self._goals = goals

        shape = (4, n, n) if obs_mode == "image" else (4 * n * n,)
        self.observation_space = spaces.Box(0, 1, shape=shape, dtype=np.uint8)
        self.action_space = spaces.Discrete(4)

        # state
        self._grid = np.zeros((4, n, n), dtype=np.uint8)
        self._agent = (0, 0)
        self._steps = 0

    # -- state --------------------------------------------------------------------------------
    def get_state(self) -> tuple[np.ndarray, int]:
        """The full state: ``(planes uint8 [4, N, N] = [wall, hazard, goal, agent], step count)``.

        The planes are exactly the image observation, so any map of observations maps states too.
        """
        return self._grid.copy(), self._steps

    def set_state(self, state: tuple[np.ndarray, int]) -> None:
        """Put the environment in ``state`` (as returned by :meth:`get_state`, possibly transformed)."""
        planes, steps = state
        planes = np.asarray(planes, dtype=np.uint8).reshape(4, self.size, self.size)
        agent = np.argwhere(planes[AGENT])
        if len(agent) != 1:
            raise ValueError(f"RotGridEnv.set_state: the agent plane must have exactly one cell set, got {len(agent)}.")
        self._grid = planes.copy()
        self._agent = (int(agent[0, 0]), int(agent[0, 1]))
        self._steps = int(steps)

    def _obs(self) -> np.ndarray:
        return self._grid.copy() if self.obs_mode == "image" else self._grid.reshape(-1).copy()

    # -- gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Draw a goal corner and a start cell. Returns ``(obs, info)``."""
        super().reset(seed=seed)
        n = self.size
        grid = np.zeros((4, n, n), dtype=np.uint8)
        grid[:3] = self._static
        gr, gc = self._goals[int(self.np_random.integers(len(self._goals)))]
        grid[GOAL, gr, gc] = 1
        if self.start == "center" and not grid[:, n // 2, n // 2].any():
            agent = (n // 2, n // 2)
        else:
            free = np.argwhere(~grid[:3].any(0))
            r, c = free[int(self.np_random.integers(len(free)))]
            agent = (int(r), int(c))
        grid[AGENT, agent[0], agent[1]] = 1
        self._grid, self._agent, self._steps = grid, agent, 0
        if self.render_mode == "human":
            self.render()
        return self._obs(), {}

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Move one cell in the absolute direction ``action`` (0 up, 1 right, 2 down, 3 left)."""
        a = int(action)
        if not 0 <= a < 4:
            raise ValueError(f"RotGridEnv: action must be in 0..3, got {action!r}.")
        n = self.size
        r, c = self._agent
        nr, nc = r + int(_MOVES[a, 0]), c + int(_MOVES[a, 1])
        grid = self._grid
        if 0 <= nr < n and 0 <= nc < n and not grid[WALL, nr, nc]:
            grid[AGENT, r, c] = 0
            grid[AGENT, nr, nc] = 1
            self._agent = (nr, nc)
            r, c = nr, nc
        self._steps += 1
        terminated = False
        reward = self.step_penalty
        if grid[GOAL, r, c]:
            terminated, reward = True, 1.0
        elif grid[HAZARD, r, c]:
            terminated, reward = True, -1.0
        truncated = not terminated and self._steps >= self.max_steps
        if self.render_mode == "human":
            self.render()
        return self._obs(), reward, terminated, truncated, {}

    def render(self) -> str | np.ndarray | None:  # type: ignore[override]
        """The picture of the current state in ``render_mode``.

        ``"ansi"``: text, ``#`` wall, ``~`` hazard, ``G`` goal, ``A`` agent, ``.`` free. ``"rgb_array"``:
        ``uint8 [N·tile, N·tile, 3]``, row 0 at the top (walls dark grey, hazards red, the goal green, the
        agent a blue disc). ``"human"``: the same picture in a pygame window, also drawn by every ``reset`` and
        ``step`` (gymnasium's convention); returns None. ``None``: None.
        """
        if self.render_mode == "ansi":
            chars = np.full((self.size, self.size), ".", dtype="<U1")
            chars[self._grid[WALL] == 1] = "#"
            chars[self._grid[HAZARD] == 1] = "~"
            chars[self._grid[GOAL] == 1] = "G"
            chars[self._grid[AGENT] == 1] = "A"
            return "\n".join("".join(row) for row in chars)
        if self.render_mode == "rgb_array":
            return self._picture()
        if self.render_mode == "human":
            self._show(self._picture())
        return None

    def _picture(self) -> np.ndarray:
        t, n = self.tile_size, self.size
        colours = np.empty((n, n, 3), dtype=np.uint8)
        colours[:] = _COLOURS["free"]
        for plane, name in ((WALL, "wall"), (HAZARD, "hazard"), (GOAL, "goal")):
            colours[self._grid[plane] == 1] = _COLOURS[name]
        img = np.repeat(np.repeat(colours, t, axis=0), t, axis=1)
        img[::t, :] = img[:, ::t] = _COLOURS["line"]  # grid lines on each tile's top and left edge
        r, c = self._agent
        yy, xx = np.mgrid[0:t, 0:t]
        disc = (yy - (t - 1) / 2) ** 2 + (xx - (t - 1) / 2) ** 2 <= (0.35 * t) ** 2
        img[r * t : (r + 1) * t, c * t : (c + 1) * t][disc] = _COLOURS["agent"]
        return img

    def _show(self, img: np.ndarray) -> None:
        try:
            import pygame
        except ImportError as err:
            raise ImportError(
                "RotGridEnv(render_mode='human') needs pygame (pip install pygame-ce); "
                "use render_mode='rgb_array' for pictures without a window."
            ) from err
        if self._window is None:
            pygame.init()
            pygame.display.init()
            self._window = pygame.display.set_mode((img.shape[1], img.shape[0]))
            pygame.display.set_caption("RotGrid")
            self._clock = pygame.time.Clock()
        surface = pygame.surfarray.make_surface(img.swapaxes(0, 1))
        self._window.blit(surface, (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        self._clock.tick(self.metadata["render_fps"])

    def close(self) -> None:
        """Close the ``human`` window if one is open."""
        if self._window is not None:
            import pygame

            pygame.display.quit()
            pygame.quit()
            self._window = None


_COLOURS = {
    "free": (235, 235, 235),
    "line": (190, 190, 190),
    "wall": (70, 70, 70),
    "hazard": (220, 60, 50),
    "goal": (60, 170, 80),
    "agent": (40, 90, 220),
}


# -- symmetries ---------------------------------------------------------------------------------
# Under r = torch.rot90(·, 1, dims=(-2, -1)) (counter-clockwise on screen) up -> left -> down -> right
# -> up, so in the rotated state action i does what action i+1 did: (ρ(r) q)[i] = q[(i + 1) % 4].
# Under s = flip0 (rows reversed) up <-> down.
_ROT_ACTIONS = [1, 2, 3, 0]
_FLIP_ACTIONS = [2, 1, 0, 3]


def flatten_action(action: Action, sample_shape: tuple[int, ...]) -> PermutationAction:
    """The same action on samples flattened to one dim: ``[*sample_shape] -> [prod(sample_shape)]``.

    Works for any permutation action (spatial, channel permutations, their compositions): the image
    of each generator is read off by applying it to ``arange``.
    """
    import torch

    group = action.group
    n = int(np.prod(sample_shape))
    x = torch.arange(n, dtype=torch.float64).reshape(1, *sample_shape)
    perms = []
    for gi in group.generator_indices:
        y = action.apply(gi, x).reshape(-1)
        perm = y.round().long().tolist()
        perms.append(perm)
    return PermutationAction(group, perms, dim=-1)


def rotgrid_symmetry(group: str = "D4", flat: bool = False, size: int = 7) -> Symmetry:
    """RotGrid's symmetry. ``group="D4"``: generators r (quarter turn) and s (flip); ``"C4"``: r only.

    Observations ``uint8 [4, N, N]``: ``r`` is ``torch.rot90(obs, 1, dims=(-2, -1))``, ``s`` flips the
    rows (``obs.flip(-2)``); channels are unchanged. Actions (0 up, 1 right, 2 down, 3 left): ``r``
    maps ``q -> q[[1, 2, 3, 0]]`` (up becomes left), ``s`` maps ``q -> q[[2, 1, 0, 3]]`` (up <-> down).
    With ``flat=True`` the same maps act on the flattened ``[4·N·N]`` observation (needs ``size``).
    """
    G: Group
    if group == "D4":
        G, ops, acts = dihedral(4), ["rot90", "flip0"], [_ROT_ACTIONS, _FLIP_ACTIONS]
    elif group == "C4":
        G, ops, acts = cyclic(4), ["rot90"], [_ROT_ACTIONS]
    else:
        raise ValueError(f"rotgrid_symmetry: group must be 'D4' or 'C4', got {group!r}.")
    obs_action: Action = SpatialAction(G, ops, dims=(-2, -1))
    if flat:
        obs_action = flatten_action(obs_action, (4, size, size))
    desc = (
        f"{G.name} on RotGrid: obs [4,N,N] rotated by torch.rot90(dims=(-2,-1))"
        + (" / rows flipped" if group == "D4" else "")
        + "; actions (up,right,down,left) q -> q[[1,2,3,0]] per quarter turn"
        + (", q -> q[[2,1,0,3]] per flip" if group == "D4" else "")
        + (" (flattened observation)" if flat else "")
    )
    return Symmetry(G, obs_action, PermutationAction(G, acts), name=f"RotGrid {G.name}", description=desc)


# -- registration --------------------------------------------------------------------------------
ROTGRID_IDS: dict[str, dict[str, Any]] = {
    # goal in any corner, random start, open 7x7 grid: a D4-symmetric task
    "equirl/RotGrid-v0": dict(size=7, layout="open", goal_corners=(0, 1, 2, 3)),
    # transfer pair: pretrain with the goal always bottom-right, test with the other three corners
    "equirl/RotGrid-Corner-v0": dict(size=7, layout="open", goal_corners=(2,)),
    "equirl/RotGrid-CornerRotated-v0": dict(size=7, layout="open", goal_corners=(0, 1, 3)),
    # D4-symmetric hazards and walls, goal in any corner
    "equirl/RotGrid-Cross-v0": dict(size=7, layout="cross", goal_corners=(0, 1, 2, 3)),
    # an asymmetric layout with one goal; pass layout_rotation=k to make() for its rotations
    "equirl/RotGrid-Maze-v0": dict(size=7, layout="maze", goal_corners=(2,)),
}


def register_rotgrid_envs() -> None:
    """Register the :data:`ROTGRID_IDS` with gymnasium (idempotent), also in SB3's ``SubprocVecEnv`` workers.

    Workers started by multiprocessing's forkserver (SB3's default on Linux) import only ``__main__``
    before they build their environment, so an id registered here would be unknown there; this adds
    ``equirl.envs`` to the forkserver's preload list (effective for forkservers started afterwards).
    With the ``spawn`` start method, import ``equirl.envs`` at the top of your script, or use gymnasium's
    ``"equirl.envs:equirl/RotGrid-v0"`` form, which imports the module wherever the id is made.
    """
    for env_id, kwargs in ROTGRID_IDS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="equirl.envs.gridworld:RotGridEnv", kwargs=dict(kwargs))
    _preload_in_forkserver("equirl.envs")


def _preload_in_forkserver(module: str) -> None:
    import multiprocessing.forkserver as forkserver

    server = getattr(forkserver, "_forkserver", None)
    current = list(getattr(server, "_preload_modules", None) or ["__main__"])
    if module not in current:
        forkserver.set_forkserver_preload([*current, module])
