"""Raw steps per second of RotGrid and MiniGrid, and the verifier's checked steps per second.

:func:`measure` runs the measurements of ``scripts/gridworld_speed.py``; its rows (``table, name, group, metric,
value``; the folder format is :mod:`equirl.rawresults`) are what :func:`table` renders, so docs/envs.md's two speed
tables rebuild from the committed raw results (``equirl bench tables``, style ``env-speed``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from equirl import rawresults

__all__ = ["ENV_CASES", "VERIFY_CASES", "env_steps_per_second", "measure", "render", "table"]

ENV_CASES: tuple[tuple[str, str, int, int], ...] = (
    ("RotGrid 7x7, `RotGridEnv()` direct", "rotgrid-direct", 4, 1),
    ("RotGrid 7x7, `gymnasium.make('equirl/RotGrid-v0')`", "equirl/RotGrid-v0", 4, 1),
    ("RotGrid 7x7 flat, `make_env('equirl/RotGrid-v0/flat')`", "catalog:equirl/RotGrid-v0/flat", 4, 1),
    ("MiniGrid-Empty-8x8, ego one-hot, `make_env`", "catalog:MiniGrid-Empty-8x8-v0", 3, 20),
    ("MiniGrid-Empty-8x8, full one-hot, `make_env`", "catalog:MiniGrid-Empty-8x8-v0/full-D4", 3, 20),
)
"""(label, how to make it, number of actions, divisor of the step budget: MiniGrid is about 100 times slower)."""
VERIFY_CASES = ("CartPole-v1", "Acrobot-v1", "equirl/RotGrid-v0", "equirl/RotGrid-v0/flat", "MiniGrid-Empty-8x8-v0",
                "MiniGrid-DoorKey-5x5-v0/full-D4")  # fmt: skip
"""Catalogue names the verifier is timed on."""


def _maker(how: str) -> Callable[[], Any]:
    from equirl import envs

    if how == "rotgrid-direct":
        return lambda: envs.RotGridEnv()
    if how.startswith("catalog:"):
        return lambda: envs.make_env(how.removeprefix("catalog:"))
    return lambda: gym.make(how)


def env_steps_per_second(make: Callable[[], Any], steps: int, n_actions: int) -> float:
    """Steps per second of ``make()`` under uniformly random actions (seed 0; resets on episode end included)."""
    env = make()
    env.reset(seed=0)
    acts = np.random.default_rng(0).integers(n_actions, size=steps)
    t = time.perf_counter()
    for a in acts:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t)


def measure(steps: int, verify_steps: int, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every measurement: ``steps`` random steps per RotGrid case (a twentieth for MiniGrid), and
    :func:`~equirl.envs.verify_symmetry` with seeds 0, 1, 2 and ``verify_steps`` steps per seed and element
    (``AssertionError`` if a shipped symmetry fails). Rows ``table, name, group, metric, value``."""
    from equirl import envs

    rows: list[dict[str, Any]] = []
    for label, how, n_act, div in ENV_CASES:
        sps = env_steps_per_second(_maker(how), steps // div, n_act)
        rows += [{"table": "env", "name": label, "group": "-", "metric": "steps", "value": steps // div},
                 {"table": "env", "name": label, "group": "-", "metric": "steps_per_second", "value": sps}]  # fmt: skip
        log(f"{label}: {sps:,.0f} steps/s")
    for name in VERIFY_CASES:
        r = envs.verify_symmetry(name, seeds=(0, 1, 2), steps=verify_steps)
        assert r.ok, str(r)
        rows += [{"table": "verifier", "name": f"`{name}`", "group": r.group, "metric": m, "value": v}
                 for m, v in (("steps_checked", r.steps_checked), ("steps_per_second", r.steps_per_second))]  # fmt: skip
        log(f"verify {name}: {r.steps_per_second:,.0f} checked steps/s")
    return rows


def render(rows: Sequence[dict[str, Any]], part: str) -> str:
    """The markdown table of the ``part`` (``env`` or ``verifier``) rows of :func:`measure` (values may be text)."""
    mine = [r for r in rows if r["table"] == part]
    if not mine:
        raise ValueError(f"No {part!r} rows; expected part 'env' or 'verifier'.")
    names = list(dict.fromkeys(str(r["name"]) for r in mine))

    def get(name: str, metric: str) -> float:
        return float(next(r["value"] for r in mine if (r["name"], r["metric"]) == (name, metric)))

    if part == "env":
        lines = ["| environment (random actions, resets included) | steps | raw steps/s |", "|---|---|---|"]
        lines += [f"| {n} | {get(n, 'steps'):,.0f} | {get(n, 'steps_per_second'):,.0f} |" for n in names]
    else:
        lines = ["| verifier (3 seeds, per element) | group | checked steps | checked steps/s |", "|---|---|---|---|"]
        for n in names:
            group = next(r["group"] for r in mine if r["name"] == n)
            lines.append(f"| {n} | {group} | {get(n, 'steps_checked'):,.0f} | {get(n, 'steps_per_second'):,.0f} |")
    return "\n".join(lines) + "\n"


def table(folders: Sequence[str | Path], part: str, root: str | Path = ".") -> str:
    """The ``part`` (``env`` or ``verifier``) table of one ``gridworld_speed.py --raw`` folder, with its provenance."""
    if len(folders) != 1:
        raise ValueError(f"A speed table is built from one raw folder, got {list(map(str, folders))}.")
    rows, meta = rawresults.read_raw(Path(root) / folders[0])
    what = "one measurement per row, wall-clock on a shared machine: a lower bound"
    return render(rows, part) + "\n" + rawresults.note(folders[0], meta, what) + "\n"
