"""The measurements of docs/symmetry.md and the tables built from their committed raw results.

Two experiments, each run by a thin script that can write its rows with ``--raw DIR`` (the folder format is
:mod:`equirl.rawresults`), and rebuilt by ``equirl bench tables`` from the committed folders:

- discovery timing (``scripts/discover_timing.py``): :func:`measure_discovery` runs
  :func:`~equirl.envs.discover_symmetry` on a list of environments; rows ``env, found, catalogue, dynamics,
  whole_group, metric, value``; :func:`discovery_table` (style ``discover-timing``).
- the statistical verifier's calibration (``scripts/verify_calibration.py``): :func:`measure_calibration`
  verifies the true mirror of ``equirl/NoisyCartPole-v0`` and three near misses, and :func:`measure_wind` the
  true mirror against a steady wind, each ``reps`` times with one seed per run; rows ``part, test, mapper, states,
  rollouts, case, seed, metric, value``: ``failed`` (0/1) per run (``seed``) and the mean ``seconds`` per run of
  each cell (``seed`` ``all``);
  :func:`calibration_table` with ``part`` ``calibration`` or ``wind`` (style ``verify-calibration``).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from equirl import PermutationAction, SignFlipAction, Symmetry, TrivialAction, cyclic, rawresults

if TYPE_CHECKING:
    from equirl.envs.discover import DiscoveryReport

__all__ = [
    "DISCOVER_ENVS",
    "TWO_CARTPOLES",
    "TwoCartPoles",
    "two_cartpoles",
    "TWO_CARTPOLES_CODEC",
    "discovery_metrics",
    "measure_discovery",
    "render_discovery",
    "discovery_table",
    "CALIBRATION_CONFIGS",
    "WIND_CONFIGS",
    "WINDS",
    "calibration_candidates",
    "measure_calibration",
    "measure_wind",
    "render_calibration",
    "calibration_table",
]

# -- discovery timing -------------------------------------------------------------------------------------------
DISCOVER_ENVS = (
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "Pendulum-v1",
    "equirl/NoisyCartPole-v0",
    "equirl/RotGrid-v0",
    "equirl/RotGrid-Maze-v0",
    "MiniGrid-Empty-8x8-v0",
    "MiniGrid-DoorKey-5x5-v0",
    "MiniGrid-Empty-6x6-v0/full-D4",
)
"""The environments ``scripts/discover_timing.py`` times by default (then :data:`TWO_CARTPOLES`)."""
TWO_CARTPOLES = "TwoCartPoles (8-dim)"
"""The name of the 8-dimensional search case (:func:`two_cartpoles` with :data:`TWO_CARTPOLES_CODEC`)."""

_PRUNED_SHORT = {
    "observation bounds": "bounds",
    "marginal distributions": "marginals",
    "unreachable mapped observations": "unreachable",
    "world/observation pairing": "pairing",
    "world map not applicable": "not applicable",
}
"""Short names of the pruning reasons of :class:`~equirl.envs.DiscoveryReport` in the table."""


class TwoCartPoles(gym.Env):  # type: ignore[type-arg]
    """Two independent CartPoles side by side: obs ``[x, ẋ, θ, θ̇]`` of each (8 entries), action ``2·a1 + a2``;
    reward 1 per step, the episode ends when either pole falls. Symmetry: D4 (mirror either cart, swap them)."""

    _one_cart = CartPoleEnv().observation_space
    assert isinstance(_one_cart, gym.spaces.Box)
    observation_space = gym.spaces.Box(np.tile(_one_cart.low, 2), np.tile(_one_cart.high, 2))
    action_space = gym.spaces.Discrete(4)

    def __init__(self) -> None:
        self.carts = (CartPoleEnv(), CartPoleEnv())

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        obs = [c.reset(seed=None if seed is None else seed + i)[0] for i, c in enumerate(self.carts)]
        return np.concatenate(obs), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = (int(action) // 2, int(action) % 2)
        out = [c.step(ai) for c, ai in zip(self.carts, a, strict=True)]
        return np.concatenate([o[0] for o in out]), 1.0, bool(out[0][2] or out[1][2]), False, {}


def two_cartpoles() -> gym.Env:  # type: ignore[type-arg]
    """:class:`TwoCartPoles` with CartPole-v1's 500-step time limit."""
    return gym.wrappers.TimeLimit(TwoCartPoles(), 500)


def _set_carts(u: TwoCartPoles, o: np.ndarray) -> None:
    for i, c in enumerate(u.carts):
        c.state = np.array(o[4 * i : 4 * i + 4])


def _codec() -> Any:
    from equirl.envs.discover import ObsStateCodec

    return ObsStateCodec(
        observe=lambda u: np.concatenate([np.array(c.state, dtype=np.float64) for c in u.carts]), set_obs=_set_carts
    )


TWO_CARTPOLES_CODEC = _codec()
"""How discovery reads and sets the state of :class:`TwoCartPoles` (the state is the observation)."""


def discovery_metrics(report: DiscoveryReport) -> list[tuple[str, float]]:
    """``(metric, value)`` pairs of a :class:`~equirl.envs.DiscoveryReport`: ``seconds``, ``pruned: <reason>`` per
    pruning reason, ``stepped``, ``failed one-step``, ``verified`` (alone or already in the group) and
    ``group order``."""
    out: list[tuple[str, float]] = [("seconds", report.seconds)]
    out += [(f"pruned: {k}", v) for k, v in report.pruned.items()]
    return out + [
        ("stepped", len(report.candidates)),
        ("failed one-step", sum(c.verdict == "failed one-step" for c in report.candidates)),
        ("verified", sum(c.verdict in ("verified", "in the group") for c in report.candidates)),
        ("group order", report.symmetry.order),
    ]


def measure_discovery(
    names: Sequence[str], verify_steps: int = 200, eight_dim: bool = True, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Run :func:`~equirl.envs.discover_symmetry` (``verify_steps``, its other defaults) on each of ``names``
    (catalogue names or gymnasium ids) and, with ``eight_dim``, on :data:`TWO_CARTPOLES`.

    Rows ``env, found, catalogue, dynamics, whole_group, metric, value``: ``found`` the group, ``catalogue`` the
    catalogue's group for that name (``—`` when none), ``dynamics`` ``lockstep`` or ``statistical``,
    ``whole_group`` the final verification (``OK``, ``FAILED`` or ``—`` when there was none); metrics those of
    :func:`discovery_metrics`.
    """
    from equirl import envs

    rows: list[dict[str, Any]] = []
    cases: list[tuple[str, Any, dict[str, Any]]] = [(n, n, {}) for n in names]
    if eight_dim:
        cases.append((TWO_CARTPOLES, two_cartpoles, {"codec": TWO_CARTPOLES_CODEC}))
    for name, target, kw in cases:
        r = envs.discover_symmetry(target, verify_steps=verify_steps, **kw)
        head = {
            "env": name,
            "found": r.group,
            "catalogue": envs.get_symmetry(name).group.name if name in envs.list_symmetries() else "—",
            "dynamics": "statistical" if r.stochastic else "lockstep",
            "whole_group": "—" if r.verification is None else ("OK" if r.verification.ok else "FAILED"),
        }
        rows += [{**head, "metric": m, "value": v} for m, v in discovery_metrics(r)]
        log(f"{name}: {r.group} in {r.seconds:.1f} s")
    return rows


def _one(folders: Sequence[str | Path], kind: str) -> str | Path:
    if len(folders) != 1:
        raise ValueError(f"A {kind} table is built from one raw folder, got {list(map(str, folders))}.")
    return folders[0]


def render_discovery(rows: Sequence[dict[str, Any]]) -> str:
    """The markdown table of :func:`measure_discovery`'s rows (values may be text, as read back)."""
    if not rows:
        raise ValueError("No rows: expected the rows of equirl.envs.symmetry_reports.measure_discovery.")
    lines = [
        "| environment | found | catalogue | seconds | pruned before stepping | stepped | failed one-step | verified "
        "| whole group |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(str(r["env"]) for r in rows):
        mine = [r for r in rows if r["env"] == name]
        v = {str(r["metric"]): float(r["value"]) for r in mine}
        h = mine[0]
        pruned = {k.removeprefix("pruned: "): int(x) for k, x in v.items() if k.startswith("pruned: ")}
        total = sum(pruned.values())
        parts = [(f"{n:,} ", _PRUNED_SHORT.get(k, k)) for k, n in pruned.items() if n]
        reasons = ", ".join(n + k for n, k in parts) if len(parts) > 1 else "".join(k for _, k in parts)
        cell = f"{total:,}" + (f" ({reasons})" if reasons else "")
        lines.append(
            f"| `{name}` | {h['found']} | {h['catalogue']} | {v['seconds']:.1f} | {cell} | {int(v['stepped']):,} | "
            f"{int(v['failed one-step']):,} | {int(v['verified'])} | {h['whole_group']} ({h['dynamics']}) |"
        )
    return "\n".join(lines) + "\n"


def discovery_table(folders: Sequence[str | Path], root: str | Path = ".") -> str:
    """:func:`render_discovery` of one ``scripts/discover_timing.py --raw`` folder, with its provenance."""
    folder = _one(folders, "discovery timing")
    rows, meta = rawresults.read_raw(Path(root) / folder)
    st = meta["settings"]
    what = (
        f"one discovery per environment (n = 1, no spread), `verify_steps={st['verify_steps']}` and discover_symmetry's "
        f"other defaults; seconds: wall-clock with one torch thread, on a machine shared with other jobs"
    )
    return render_discovery(rows) + "\n" + rawresults.note(folder, meta, what) + "\n"


# -- the statistical verifier's false-alarm rate and power --------------------------------------------------------
CALIBRATION_CONFIGS: tuple[tuple[str, int, int, bool], ...] = (
    ("ks", 8, 32, True),
    ("mmd", 8, 32, True),
    ("ks", 4, 8, True),
    ("mmd", 4, 8, True),
    ("ks", 8, 64, False),
)
"""(test, states, rollouts, with the state mapper) of the calibration table; without the mapper the verifier
compares ``states × rollouts`` episodes per side."""
WIND_CONFIGS: tuple[tuple[str, int, int], ...] = (("ks", 8, 32), ("mmd", 8, 32), ("ks", 16, 64))
"""(test, states, rollouts) of the wind table (always with the state mapper)."""
WINDS = (0.25, 0.5, 1.0, 2.0)
"""Steady winds (N) of the wind table, against the gust's standard deviation of 3 N."""


def calibration_candidates() -> dict[str, Symmetry]:
    """The true mirror of NoisyCartPole and three near misses, by the names the table shows."""
    from equirl import envs

    c2 = cyclic(2)
    true = envs.get_symmetry("CartPole-v1")
    return {
        "true mirror": true,
        "wrong sign on θ̇": Symmetry(c2, SignFlipAction(c2, [[-1.0, -1.0, -1.0, 1.0]]), PermutationAction(c2, [[1, 0]])),
        "actions not swapped": dataclasses.replace(true, output_action=TrivialAction(c2)),
        "x and θ swapped": Symmetry(
            c2, PermutationAction(c2, [[2, 1, 0, 3]], signs=[[-1.0] * 4]), PermutationAction(c2, [[1, 0]])
        ),
    }


def _verify_run(
    sym: Symmetry, test: str, states: int, rollouts: int, mapper: bool, seed: int, alpha: float, wind: float = 0.0
) -> tuple[bool, float]:
    """(failed, seconds) of one statistical verification of ``sym`` on NoisyCartPole with a steady ``wind``."""
    from equirl import envs

    def make() -> gym.Env:  # type: ignore[type-arg]
        return gym.make(envs.NOISY_CARTPOLE_ID, wind=wind) if wind else envs.make_env(envs.NOISY_CARTPOLE_ID)

    t0 = time.perf_counter()
    kw: dict[str, Any] = {"states": states, "rollouts": rollouts, "test": test, "alpha": alpha, "seeds": (seed,)}
    if mapper:
        kw |= {"state_mapper": envs.mappers.cartpole_mapper(), "steps": 200}
    r = envs.verify_symmetry(make, sym, mode="statistical", **kw)
    return not r.ok, time.perf_counter() - t0


def _cell_rows(part: str, test: str, mapper: bool, states: int, rollouts: int, case: str,
               runs: Sequence[tuple[bool, float]]) -> list[dict[str, Any]]:  # fmt: skip
    """One ``failed`` row per run (seed ``i``) and one ``seconds`` row (mean per run, seed ``all``) of a cell."""
    head = {"part": part, "test": test, "mapper": "yes" if mapper else "no", "states": states, "rollouts": rollouts,
            "case": case}  # fmt: skip
    rows = [{**head, "seed": i, "metric": "failed", "value": int(f)} for i, (f, _) in enumerate(runs)]
    return rows + [{**head, "seed": "all", "metric": "seconds", "value": statistics.fmean(s for _, s in runs)}]


def measure_calibration(
    reps: int, alpha: float = 0.05, configs: Sequence[tuple[str, int, int, bool]] = CALIBRATION_CONFIGS,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:  # fmt: skip
    """Verify each of :func:`calibration_candidates` ``reps`` times (seeds ``0..reps-1``, one per run) in each
    configuration (``test, states, rollouts, mapper``); rows ``part=calibration`` (see the module doc)."""
    rows: list[dict[str, Any]] = []
    for test, states, rollouts, mapper in configs:
        for case, sym in calibration_candidates().items():
            runs = [_verify_run(sym, test, states, rollouts, mapper, seed, alpha) for seed in range(reps)]
            rows += _cell_rows("calibration", test, mapper, states, rollouts, case, runs)
            log(f"{test} {states}x{rollouts} mapper={mapper} {case}: {sum(f for f, _ in runs)}/{reps} failed")
    return rows


def measure_wind(
    reps: int, alpha: float = 0.05, winds: Sequence[float] = WINDS,
    configs: Sequence[tuple[str, int, int]] = WIND_CONFIGS, log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:  # fmt: skip
    """Verify the true mirror on NoisyCartPole with each steady wind ``w`` (case ``w=<w>``), ``reps`` times
    (seeds ``0..reps-1``) per configuration (``test, states, rollouts``, with the state mapper); rows ``part=wind``."""
    true = calibration_candidates()["true mirror"]
    rows: list[dict[str, Any]] = []
    for test, states, rollouts in configs:
        for w in winds:
            runs = [_verify_run(true, test, states, rollouts, True, seed, alpha, wind=w) for seed in range(reps)]
            rows += _cell_rows("wind", test, True, states, rollouts, f"w={w:g}", runs)
            log(f"wind {w:g} {test} {states}x{rollouts}: {sum(f for f, _ in runs)}/{reps} failed")
    return rows


def render_calibration(rows: Sequence[dict[str, Any]], part: str) -> str:
    """The markdown table of the ``part`` (``calibration`` or ``wind``) rows of :func:`measure_calibration` /
    :func:`measure_wind`: per configuration and case the fraction of runs that FAILED, for ``calibration`` also
    the mean seconds per run (values may be text, as read back)."""
    mine = [r for r in rows if r["part"] == part]
    if part not in ("calibration", "wind") or not mine:
        raise ValueError(f"No {part!r} rows; expected part 'calibration' or 'wind'.")
    configs = list(dict.fromkeys((str(r["test"]), str(r["mapper"]), int(r["states"]), int(r["rollouts"]))
                                 for r in mine))  # fmt: skip
    cases = list(dict.fromkeys(str(r["case"]) for r in mine))

    def values(cfg: tuple[str, str, int, int], metric: str, case: str | None = None) -> list[float]:
        return [float(r["value"]) for r in mine if r["metric"] == metric and (case is None or r["case"] == case)
                and (str(r["test"]), str(r["mapper"]), int(r["states"]), int(r["rollouts"])) == cfg]  # fmt: skip

    def rate(cfg: tuple[str, str, int, int], case: str) -> str:
        v = values(cfg, "failed", case)
        return f"{statistics.fmean(v):.2f}" if v else "-"

    if part == "calibration":
        lines = ["| test | mapper | states × rollouts | " + " | ".join(cases) + " | s/run |",
                 "|---|---|---|" + "---|" * len(cases) + "---|"]  # fmt: skip
        for cfg in configs:
            test, mapper, states, rollouts = cfg
            size = f"{states} × {rollouts}" if mapper == "yes" else f"{states * rollouts} episodes per side"
            secs = statistics.fmean(values(cfg, "seconds"))
            lines.append(
                f"| {test} | {mapper} | {size} | " + " | ".join(rate(cfg, c) for c in cases) + f" | {secs:.2f} |"
            )
    else:
        heads = [c.replace("w=", "w = ") for c in cases]
        lines = ["| test | states × rollouts | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(cases)]
        for cfg in configs:
            lines.append(f"| {cfg[0]} | {cfg[2]} × {cfg[3]} | " + " | ".join(rate(cfg, c) for c in cases) + " |")
    return "\n".join(lines) + "\n"


def calibration_table(folders: Sequence[str | Path], part: str, root: str | Path = ".") -> str:
    """:func:`render_calibration` of one ``scripts/verify_calibration.py --raw`` folder, with its provenance."""
    folder = _one(folders, "calibration")
    rows, meta = rawresults.read_raw(Path(root) / folder)
    render = render_calibration(rows, part)
    mine = [r for r in rows if r["part"] == part and r["metric"] == "failed"]
    seeds = sorted({int(r["seed"]) for r in mine})
    if not seeds:
        raise ValueError(f"No {part!r} runs in {folder}; expected part 'calibration' or 'wind'.")
    per_cell = len(seeds)
    alpha = meta["settings"]["alpha"]
    what = (
        f"fraction of n = {per_cell} run{'s' if per_cell != 1 else ''} per cell that FAILED (one seed per run, seeds {seeds[0]}-{seeds[-1]}; "
        f"alpha = {alpha:g}, Holm correction; no ±: the binomial standard error of a fraction p is "
        f"sqrt(p(1-p)/{per_cell}), at most {0.5 / per_cell**0.5:.2f})"
    )
    if part == "calibration":
        what += "; s/run: mean wall-clock seconds per run, on a machine shared with other jobs"
    return render + "\n" + rawresults.note(folder, meta, what) + "\n"
