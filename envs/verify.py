"""The verifier: is a declared map really a symmetry of an environment's dynamics?

Two modes, built from the same pieces (:func:`paired_transitions`, the comparators, the report builders):

``mode="lockstep"`` (deterministic environments). For each seed and each group element ``g``, two copies
of the environment run side by side: the original ``A`` and a twin ``B`` put into the mapped state
``g·s`` (by a :class:`~envs.mappers.StateMapper`). Both are stepped, ``A`` with a random action ``a`` and
``B`` with ``ρ(g)·a``; after every step a :class:`ToleranceComparator` checks ``obs_B == g·obs_A``,
``reward_B == reward_A`` and equal ``terminated``/``truncated``, with per-field tolerances and
exclusions. When an episode ends, ``A`` is reset (new seed) and ``B`` re-mapped. For mappers that are
not exact (physics engines), ``B`` is re-synced from ``A`` every ``horizon`` steps and the report says so.

``mode="statistical"`` (stochastic environments). The symmetry must hold in distribution:
``P(g·s', r, done | s, a) = P(s', r, done | g·s, ρ(g)a)``. With a state mapper, states are sampled along
random trajectories and, from each, ``rollouts`` one-step rollouts from ``s`` with ``a`` and as many from
``g·s`` with ``ρ(g)a`` are compared by a two-sample test (:func:`two_sample_tests`: per-field
Kolmogorov-Smirnov, or MMD with a permutation test), all tests corrected together (Holm or
Bonferroni) so that a true symmetry fails with probability at most ``alpha``. Without a mapper, whole
random trajectories are compared instead: transitions of one set of runs, mapped by ``g``, against
those of independent runs, per action (this needs the start distribution to be symmetric too).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from equirl.envs.mappers import StateMapper, observe

from equirl import PermutationAction, Symmetry
from equirl.extras import progress_bar

__all__ = [
    "Mismatch",
    "VerificationReport",
    "StatisticalReport",
    "FieldTest",
    "PairedStep",
    "ToleranceComparator",
    "paired_transitions",
    "two_sample_tests",
    "correct_p_values",
    "verify_symmetry",
    "action_table",
    "ActionMaps",
    "MODES",
]

MODES = ("lockstep", "statistical")
"""Values of ``verify_symmetry(mode=...)``."""


# -- reports -----------------------------------------------------------------------------------------
@dataclass
class Mismatch:
    """The first disagreement between an environment and its mapped twin.

    :param seed: the seed of the run (``A`` was reset with it at the start).
    :param element: the group element's name (for example ``"r·s"``).
    :param step: steps taken in this run before the comparison (0 = right after mapping the reset state).
    :param episode: episodes finished before this one in this run.
    :param field: ``"observation"``, ``"reward"``, ``"terminated"``, ``"truncated"`` or ``"action"``.
    :param max_abs_diff: the largest absolute difference (1.0 for a boolean mismatch).
    :param index: for observations, where the largest difference is (index into one observation).
    :param action: the action ``A`` took at this step (None at step 0).
    :param mapped_action: the action ``B`` took.
    :param detail: a human-readable sentence.
    """

    seed: int
    element: str
    step: int
    episode: int
    field: str
    max_abs_diff: float
    index: tuple[int, ...] | None
    action: Any
    mapped_action: Any
    detail: str


@dataclass
class VerificationReport:
    """What :func:`verify_symmetry` found in lockstep mode.

    ``ok`` is True when no step differed. ``steps_checked`` counts lockstep steps (each is one step of
    ``A``, one of ``B`` and one comparison), over ``len(seeds) × len(elements)`` runs.
    """

    ok: bool
    env: str
    symmetry: str
    group: str
    mode: str
    seeds: list[int]
    elements: list[str]
    steps_checked: int
    episodes: int
    max_obs_diff: float
    max_reward_diff: float
    obs_atol: float
    obs_rtol: float
    reward_atol: float
    seconds: float
    failure: Mismatch | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def steps_per_second(self) -> float:
        """Checked lockstep steps per second."""
        return self.steps_checked / self.seconds if self.seconds > 0 else float("nan")

    def __str__(self) -> str:
        head = "OK" if self.ok else "FAILED"
        lines = [
            f"{head}: {self.symmetry} ({self.group}) on {self.env}",
            f"  mode: {self.mode}",
            f"  elements: {', '.join(self.elements)}; seeds: {self.seeds}",
            f"  checked {self.steps_checked} steps over {self.episodes} episodes in {self.seconds:.2f} s "
            f"({self.steps_per_second:.0f} steps/s)",
            f"  max |obs diff| = {self.max_obs_diff:.3g} (atol {self.obs_atol:g}, rtol {self.obs_rtol:g}); "
            f"max |reward diff| = {self.max_reward_diff:.3g} (atol {self.reward_atol:g})",
        ]
        if self.failure is not None:
            f = self.failure
            lines.append(
                f"  first failure: seed {f.seed}, element {f.element}, step {f.step} (episode {f.episode}), "
                f"{f.field}: {f.detail}"
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class FieldTest:
    """One two-sample test of the statistical verifier.

    :param where: what was compared, for example ``"seed 0, state 3, element s, action 1 -> 0"``.
    :param field: the field (``"obs[2]"``, ``"reward"``, ``"terminated"``, ``"truncated"``), or ``"joint"`` for MMD.
    :param statistic: the KS distance or the MMD² estimate.
    :param p_value: the test's p-value before correction.
    :param p_adjusted: after the multiple-testing correction over all tests of the run.
    """

    where: str
    field: str
    statistic: float
    p_value: float
    p_adjusted: float = float("nan")


@dataclass
class StatisticalReport:
    """What :func:`verify_symmetry` found in statistical mode.

    ``ok`` is True when no test rejects at level ``alpha`` after the correction: a true symmetry fails
    with probability at most ``alpha`` (the family-wise false-alarm rate). ``statistic`` and ``p_value``
    are those of the most significant test (``p_value`` corrected); ``differing`` the fields with a
    rejected test, most often first.
    """

    ok: bool
    env: str
    symmetry: str
    group: str
    mode: str
    method: str
    test: str
    correction: str
    alpha: float
    seeds: list[int]
    elements: list[str]
    n_tests: int
    samples: int
    statistic: float
    p_value: float
    differing: list[str]
    worst: FieldTest | None
    seconds: float
    tests: list[FieldTest] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = "OK" if self.ok else "FAILED"
        lines = [
            f"{head}: {self.symmetry} ({self.group}) on {self.env}",
            f"  mode: {self.mode}; {self.method}",
            f"  elements: {', '.join(self.elements)}; seeds: {self.seeds}",
            f"  {self.n_tests} {self.test} tests on {self.samples} samples, {self.correction} correction, "
            f"alpha {self.alpha:g}, in {self.seconds:.2f} s",
        ]
        if self.worst is not None:
            w = self.worst
            lines.append(
                f"  most significant: {w.field} at {w.where}: statistic {w.statistic:.3g}, "
                f"p = {w.p_value:.3g} (corrected {w.p_adjusted:.3g})"
            )
        if self.differing:
            lines.append(f"  fields that differ: {', '.join(self.differing)}")
        else:
            lines.append("  no field differs at this level")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# -- maps ----------------------------------------------------------------------------------------------
def action_table(symmetry: Symmetry, n_actions: int) -> np.ndarray:
    """``[|G|, n_actions]`` int table: ``table[g, a]`` is the action that plays the role of ``a`` in ``g·s``.

    Read off from the output action: ``ρ(g)`` moves the one-hot vector of ``a`` to that of ``table[g, a]``
    (so that ``Q(g·s) = ρ(g) Q(s)`` puts ``Q(s, a)`` at ``table[g, a]``).

    :raises ValueError: if ``ρ(g)`` does not permute one-hot action vectors.
    """
    eye = torch.eye(n_actions, dtype=torch.float64)
    orbit = symmetry.output_action.orbit(eye)  # [G, a, n]
    table = orbit.argmax(-1).numpy()
    ok = torch.allclose(orbit, torch.nn.functional.one_hot(orbit.argmax(-1), n_actions).to(orbit.dtype))
    if not ok or any(len(set(row.tolist())) != n_actions for row in table):
        raise ValueError(
            f"Symmetry {symmetry.name!r}: its output action does not permute the {n_actions} actions "
            "(the verifier needs ρ(g) to be a permutation of the action dimension)."
        )
    return table


class ActionMaps:
    """Random actions and their images ``ρ(g)·a``, for a ``Discrete`` action space (``ρ(g)`` must permute the
    actions: :func:`action_table`) or a 1-D ``Box`` with finite bounds (``ρ(g)`` acts on the action vector, for
    example a :class:`equirl.SignFlipAction` for torques).

    :raises TypeError: for other action spaces.
    """

    def __init__(self, symmetry: Symmetry, space: gym.Space) -> None:
        self.symmetry = symmetry
        self.space = space
        if isinstance(space, gym.spaces.Discrete):
            self.discrete = True
            self.n = int(space.n)
            self.shape: tuple[int, ...] = (self.n,)
            self.table = action_table(symmetry, self.n)
        elif isinstance(space, gym.spaces.Box) and len(space.shape) == 1 and space.is_bounded():
            self.discrete = False
            self.n = 0
            self.shape = tuple(space.shape)
            self.low = np.asarray(space.low, dtype=np.float64)
            self.high = np.asarray(space.high, dtype=np.float64)
        else:
            raise TypeError(
                f"verify_symmetry supports Discrete action spaces and 1-D Box action spaces with finite bounds, "
                f"got {space}."
            )

    def sample(self, rng: np.random.Generator) -> Any:
        """A uniformly random action."""
        if self.discrete:
            return int(rng.integers(self.n))
        return rng.uniform(self.low, self.high).astype(self.space.dtype)  # type: ignore[arg-type]

    def apply(self, g: int, a: Any) -> Any:
        """``ρ(g)·a``: the action that plays the role of ``a`` in the mapped environment."""
        if self.discrete:
            return int(self.table[g, int(a)])
        x = torch.as_tensor(np.asarray(a, dtype=np.float64)).unsqueeze(0)
        return self.symmetry.output_action.apply(g, x)[0].numpy().astype(self.space.dtype)  # type: ignore[arg-type]


def _at(x: Any, idx: tuple[int, ...] | None) -> float:
    return float(np.asarray(x, dtype=np.float64)[idx]) if idx is not None else float("nan")


class _ObsMaps:
    """``g·obs`` for single numpy observations, fast: index actions are compiled to a signed gather
    ``out.flat = sign * obs.flat[idx]`` per element (checked against the torch action on random data);
    other actions fall back to ``input_action.apply`` in torch."""

    def __init__(self, symmetry: Symmetry, shape: tuple[int, ...]) -> None:
        self.symmetry = symmetry
        self.shape = shape
        n = int(np.prod(shape))
        act = symmetry.input_action
        probe = torch.arange(1, n + 1, dtype=torch.float64).reshape(1, *shape)
        orbit = act.orbit(probe).reshape(symmetry.order, n)
        idx = orbit.abs().round().long() - 1
        sign = torch.sign(orbit)
        self.tables: tuple[np.ndarray, np.ndarray] | None = (idx.numpy(), sign.numpy())
        x = torch.randn(2, *shape, dtype=torch.float64)
        want = act.orbit(x).reshape(symmetry.order, 2, n)
        got = sign[:, None, :] * x.reshape(2, n)[:, idx].permute(1, 0, 2)
        if idx.min() < 0 or idx.max() >= n or not torch.allclose(want, got, atol=1e-12):
            self.tables = None

    def apply(self, g: int, obs: Any) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float64)
        if self.tables is not None:
            idx, sign = self.tables
            return (sign[g] * x.reshape(-1)[idx[g]]).reshape(x.shape)
        t = torch.as_tensor(x).unsqueeze(0)
        return self.symmetry.input_action.apply(g, t)[0].numpy()


def obs_field_names(shape: tuple[int, ...]) -> list[str]:
    """Names of the observation's entries, in flat order: ``obs[i]`` (1-D) or ``obs[i,j,...]``."""
    return [f"obs[{','.join(str(int(i)) for i in idx)}]" for idx in np.ndindex(*shape)] if shape else ["obs[]"]


_OBS_FIELD = re.compile(r"^obs\[([0-9, ]*)\]$")
SCALAR_FIELDS = ("reward", "terminated", "truncated")


def _obs_index(name: str, shape: tuple[int, ...]) -> int | None:
    """The flat index of an ``obs[...]`` field name, None for other names; ValueError when out of range."""
    m = _OBS_FIELD.match(name.strip())
    if m is None:
        return None
    idx = tuple(int(v) for v in m.group(1).replace(" ", "").split(",") if v != "")
    if len(idx) != len(shape) or any(not 0 <= i < n for i, n in zip(idx, shape, strict=True)):
        raise ValueError(
            f"field {name!r} is not an entry of observations of shape {shape}; "
            f"use obs[i] with one index per dimension (for example {obs_field_names(shape)[0]!r})."
        )
    return int(np.ravel_multi_index(idx, shape)) if shape else 0


def _check_fields(names: Sequence[str], shape: tuple[int, ...], what: str) -> None:
    for n in names:
        if n not in ("observation", *SCALAR_FIELDS) and _obs_index(n, shape) is None:
            raise ValueError(
                f"{what}: unknown field {n!r}; fields are 'observation', 'reward', 'terminated', 'truncated' "
                f"and observation entries such as {obs_field_names(shape)[0]!r}."
            )


# -- the generator of paired transitions ---------------------------------------------------------------
@dataclass
class PairedStep:
    """One comparison of ``A`` and its twin ``B``.

    At ``step == 0`` (right after mapping a reset state) only ``expected_obs`` / ``twin_obs`` are set.
    ``expected_obs`` is ``g·obs_A`` (float64), ``twin_obs`` the twin's observation.
    """

    seed: int
    g: int
    element: str
    step: int
    episode: int
    expected_obs: np.ndarray
    twin_obs: np.ndarray
    obs: Any = None
    action: Any = None
    mapped_action: Any = None
    reward: float = 0.0
    twin_reward: float = 0.0
    terminated: bool = False
    twin_terminated: bool = False
    truncated: bool = False
    twin_truncated: bool = False


@dataclass
class _Counts:
    steps: int = 0
    episodes: int = 0


def paired_transitions(
    env_a: gym.Env,
    env_b: gym.Env,
    symmetry: Symmetry,
    mapper: StateMapper,
    *,
    seeds: Sequence[int],
    steps: int,
    elements: Sequence[int],
    resync: int | None,
    counts: _Counts | None = None,
    bar: Any = None,
) -> Iterator[PairedStep]:
    """Step ``env_a`` and a twin ``env_b`` in lockstep, yielding one :class:`PairedStep` per comparison.

    Per seed and element ``g``: ``A`` is reset with the seed, ``B`` put into ``g·s``; actions are
    ``np.random.default_rng(seed).integers(n)`` for ``A`` and their images under ``ρ(g)`` for ``B``.
    Episodes restart with seed ``seed·10007 + episode``; with ``resync``, ``B`` is re-mapped from ``A``
    every ``resync`` steps. The consumer may stop at any time (the generator keeps no resources).
    """
    acts = ActionMaps(symmetry, env_a.action_space)
    obs_maps = _ObsMaps(symmetry, tuple(env_a.observation_space.shape or ()))
    names = symmetry.group.element_names
    counts = counts if counts is not None else _Counts()
    for seed in seeds:
        for g in elements:
            rng = np.random.default_rng(seed)
            episode = 0

            def sync(reset_seed: int | None, g: int = g) -> Any:
                oa = None
                if reset_seed is not None:
                    oa, _ = env_a.reset(seed=reset_seed)
                    env_b.reset(seed=reset_seed)
                mapper.set_state(env_b, mapper.map_state(mapper.get_state(env_a), g, symmetry))
                return oa

            oa = sync(seed)
            ob = observe(env_b, mapper)
            if ob is not None:
                yield PairedStep(seed, g, names[g], 0, 0, obs_maps.apply(g, oa), np.asarray(ob), obs=oa)
            for t in range(1, steps + 1):
                a = acts.sample(rng)
                b = acts.apply(g, a)
                oa, ra, ta, tra, _ = env_a.step(a)
                ob, rb, tb, trb, _ = env_b.step(b)
                counts.steps += 1
                if bar is not None:
                    bar.update(1)
                yield PairedStep(
                    seed, g, names[g], t, episode, obs_maps.apply(g, oa), np.asarray(ob), oa,
                    a, b, float(ra), float(rb), bool(ta), bool(tb), bool(tra), bool(trb),
                )  # fmt: skip
                if ta or tra:
                    episode += 1
                    counts.episodes += 1
                    sync(seed * 10007 + episode)
                elif resync is not None and t % resync == 0:
                    sync(None)
            counts.episodes += 1  # the unfinished last episode


# -- comparators -----------------------------------------------------------------------------------------
class ToleranceComparator:
    """Compares a :class:`PairedStep` field by field; returns the first :class:`Mismatch` or None.

    :param obs_shape: the shape of one observation.
    :param obs_atol: default absolute tolerance on observation entries: ok when
        ``|obs_B - g·obs_A| <= atol + obs_rtol·|g·obs_A|``.
    :param obs_rtol: relative tolerance on observations.
    :param reward_atol: absolute tolerance on rewards.
    :param tolerances: per-field absolute tolerances overriding the defaults: ``{"obs[3]": 1e-3,
        "reward": 1e-2, "observation": 1e-5}`` (``"observation"`` = every entry without its own).
    :param exclude: fields not compared: ``"observation"``, ``"obs[i]"``, ``"reward"``, ``"terminated"``,
        ``"truncated"``.

    ``ToleranceComparator.exact(shape)`` compares everything exactly. ``max_obs_diff`` and
    ``max_reward_diff`` track the largest differences seen on compared fields.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        obs_atol: float = 1e-6,
        obs_rtol: float = 0.0,
        reward_atol: float = 1e-9,
        tolerances: Mapping[str, float] | None = None,
        exclude: Sequence[str] = (),
    ) -> None:
        tolerances = dict(tolerances or {})
        _check_fields(list(tolerances), obs_shape, "tolerances")
        _check_fields(list(exclude), obs_shape, "exclude")
        for k, v in tolerances.items():
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"tolerances[{k!r}] = {v!r}: give a finite tolerance >= 0 (or exclude the field).")
        self.obs_shape = obs_shape
        self.obs_rtol = obs_rtol
        default = tolerances.get("observation", obs_atol)
        self.obs_atol = default
        atol = np.full(int(np.prod(obs_shape)) if obs_shape else 1, default, dtype=np.float64)
        for k, v in tolerances.items():
            i = _obs_index(k, obs_shape)
            if i is not None:
                atol[i] = v
        self.compared = np.ones_like(atol, dtype=bool)
        for k in exclude:
            i = _obs_index(k, obs_shape)
            if i is not None:
                self.compared[i] = False
        if "observation" in exclude:
            self.compared[:] = False
        self.atol = atol.reshape(obs_shape)
        self.compared = self.compared.reshape(obs_shape)
        self.uniform = bool(np.all(atol == default)) and bool(self.compared.all()) and obs_rtol == 0.0
        self.reward_atol = tolerances.get("reward", reward_atol)
        self.exclude = set(exclude)
        self.max_obs_diff = 0.0
        self.max_reward_diff = 0.0

    @classmethod
    def exact(cls, obs_shape: tuple[int, ...]) -> ToleranceComparator:
        """Every field compared with tolerance 0."""
        return cls(obs_shape, obs_atol=0.0, reward_atol=0.0)

    def _obs(self, expected: np.ndarray, got: np.ndarray) -> tuple[float, tuple[int, ...] | None, bool]:
        if got.shape != expected.shape:
            return float("inf"), None, False
        if got.size == 0 or not self.compared.any():
            return 0.0, None, True
        diff = np.abs(got - expected)
        if not self.uniform:
            diff = np.where(self.compared, diff, 0.0)
        worst = int(diff.argmax())
        d = float(diff.flat[worst])
        if self.uniform and d <= self.obs_atol:
            return d, None, True
        bad = diff > self.atol + self.obs_rtol * np.abs(expected)
        if bad.any():  # report the worst entry among those out of tolerance
            worst = int(np.where(bad.reshape(-1), diff.reshape(-1), -1.0).argmax())
            d_bad = float(diff.flat[worst])
            return max(d, d_bad), tuple(int(i) for i in np.unravel_index(worst, diff.shape)), False
        return d, tuple(int(i) for i in np.unravel_index(worst, diff.shape)), True

    def __call__(self, p: PairedStep) -> Mismatch | None:
        """The mismatch in ``p`` (observation first, then reward, terminated, truncated), or None."""
        d, idx, good = self._obs(p.expected_obs, np.asarray(p.twin_obs, dtype=np.float64))
        self.max_obs_diff = max(self.max_obs_diff, d)
        where = (p.seed, p.element, p.step, p.episode)
        if not good:
            if p.step == 0:
                detail = f"after mapping the reset state, obs differs from g·obs by {d:.3g} at {idx}"
            else:
                detail = (
                    f"after action {p.action} (twin {p.mapped_action}) the twin's obs differs from g·obs by {d:.3g} "
                    f"at index {idx} (twin {_at(p.twin_obs, idx)}, g·obs {_at(p.expected_obs, idx)})"
                )
            return Mismatch(*where, "observation", d, idx, p.action, p.mapped_action, detail)
        if p.step == 0:
            return None
        if "reward" not in self.exclude:
            dr = abs(p.reward - p.twin_reward)
            self.max_reward_diff = max(self.max_reward_diff, dr)
            if dr > self.reward_atol:
                return Mismatch(
                    *where, "reward", dr, None, p.action, p.mapped_action,
                    f"after action {p.action} (twin {p.mapped_action}) reward {p.reward!r} vs twin "
                    f"{p.twin_reward!r} (diff {dr:.3g})",
                )  # fmt: skip
        for fname, x, y in (
            ("terminated", p.terminated, p.twin_terminated),
            ("truncated", p.truncated, p.twin_truncated),
        ):
            if fname not in self.exclude and x != y:
                return Mismatch(
                    *where, fname, 1.0, None, p.action, p.mapped_action,
                    f"after action {p.action} (twin {p.mapped_action}) {fname} {x} vs twin {y}",
                )  # fmt: skip
        return None


# -- statistical comparators ----------------------------------------------------------------------------
TESTS = ("ks", "mmd")
CORRECTIONS = ("holm", "bonferroni")


def correct_p_values(p: Sequence[float], method: str = "holm") -> np.ndarray:
    """Family-wise corrected p-values (valid under any dependence between the tests).

    ``"bonferroni"``: ``min(1, m·p)``; ``"holm"``: the step-down version, uniformly more powerful.
    """
    p_arr = np.asarray(p, dtype=np.float64)
    m = len(p_arr)
    if m == 0:
        return p_arr
    if method == "bonferroni":
        return np.minimum(1.0, p_arr * m)
    if method != "holm":
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {method!r}.")
    order = np.argsort(p_arr, kind="stable")
    adj_sorted = np.minimum(1.0, np.maximum.accumulate(p_arr[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adj_sorted
    return out


def _ks(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from scipy.stats import ks_2samp

    r = ks_2samp(x, y, method="auto")
    return float(r.statistic), float(r.pvalue)


def _mmd_permutation(
    x: np.ndarray, y: np.ndarray, permutations: int, rng: np.random.Generator, stop_after: int = 10
) -> tuple[float, float]:
    """MMD² (biased V-statistic ``wᵀKw``, Gaussian kernel with the median distance as bandwidth, on standardised
    features) of ``x [n, F]`` against ``y [m, F]``, and its permutation p-value.

    Permutations run in batches and stop once ``stop_after`` of them reach the observed statistic
    (Besag-Clifford sequential p-value ``h / L``; otherwise ``(1 + h) / (1 + permutations)``), so a
    clearly non-significant test costs a few hundred permutations, a significant one all of them.
    """
    z = np.concatenate([x, y])
    sd = z.std(0)
    keep = sd > 0
    if not keep.any():
        return 0.0, 1.0
    z = (z[:, keep] - z[:, keep].mean(0)) / sd[keep]
    sq = (z**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    off = d2[~np.eye(len(z), dtype=bool)]
    bw = float(np.median(off)) or 1.0
    k = np.exp(-d2 / bw)
    n, m = len(x), len(y)
    w0 = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    observed = float(w0 @ k @ w0)
    exceed, done, batch = 0, 0, 256
    while done < permutations:
        b = min(batch, permutations - done)
        w = w0[np.argsort(rng.random((b, n + m)), axis=1)]
        stats = np.einsum("bi,ij,bj->b", w, k, w)
        exceed += int((stats >= observed - 1e-12).sum())
        done += b
        if exceed >= stop_after:
            return observed, exceed / done
    return observed, (1 + exceed) / (1 + permutations)


def two_sample_tests(
    x: np.ndarray,
    y: np.ndarray,
    fields: Sequence[str],
    where: str,
    test: str = "ks",
    atol: float = 1e-6,
    permutations: int = 2000,
    rng: np.random.Generator | None = None,
) -> list[FieldTest]:
    """Tests of ``x [n, F]`` against ``y [m, F]`` (samples of the same ``fields``); uncorrected p-values.

    ``test="ks"``: one Kolmogorov-Smirnov test per field; a field that takes one value in both samples
    (within ``atol``, so that float rounding of deterministic dynamics does not count) gets p = 1.
    ``test="mmd"``: one joint MMD permutation test (fields constant and equal in both are dropped).
    Two samples each constant but different are tested like any others (with ``n = m = 32`` rollouts a
    KS distance of 1 has p ≈ 1e-18), so that a rare event seen on one side only is not a certain failure.
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}.")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    const = (np.ptp(x, 0) <= atol) & (np.ptp(y, 0) <= atol) & (np.abs(x[0] - y[0]) <= atol)
    out: list[FieldTest] = []
    if test == "ks":
        for j, name in enumerate(fields):
            if const[j]:
                out.append(FieldTest(where, name, float(abs(x[0, j] - y[0, j])), 1.0))
            else:
                s, p = _ks(x[:, j], y[:, j])
                out.append(FieldTest(where, name, s, p))
        return out
    s, p = _mmd_permutation(x[:, ~const], y[:, ~const], permutations, rng or np.random.default_rng(0))
    if p * 10 < 1:  # name the fields that moved most, for the report
        pooled = np.sqrt(0.5 * (x.var(0) + y.var(0))) + 1e-12
        eff = np.where(const, 0.0, np.abs(x.mean(0) - y.mean(0)) / pooled)
        top = [fields[j] for j in np.argsort(-eff)[:3] if eff[j] > 0]
        return [FieldTest(where, f"joint ({', '.join(top)})" if top else "joint", s, p)]
    return [FieldTest(where, "joint", s, p)]


def env_factory(env: str | Callable[[], gym.Env]) -> tuple[Callable[[], gym.Env], str]:
    """``(factory, name)`` for a catalogue name (``make_env(name)``) or a factory (named after what it builds)."""
    from equirl.envs.catalog import make_env

    if isinstance(env, str):
        return (lambda: make_env(env)), env
    return env, _factory_name(env)


def _factory_name(factory: Callable[[], gym.Env]) -> str:
    """A label for an environment factory: its function name, else (lambdas) the id of what it makes."""
    name = getattr(factory, "__name__", "")
    if name and name != "<lambda>":
        return str(name)
    env = factory()
    try:
        return str(env.spec.id) if env.spec is not None else repr(env)
    finally:
        env.close()


# -- resolution --------------------------------------------------------------------------------------------
def _resolve(
    env: str | Callable[[], gym.Env],
    symmetry: Symmetry | str,
    state_mapper: StateMapper | None,
    need_mapper: bool = True,
) -> tuple[Callable[[], gym.Env], str, Symmetry, StateMapper | None]:
    from equirl.envs.catalog import get_state_mapper, get_symmetry

    factory, env_name = env_factory(env)
    sym = get_symmetry(symmetry) if isinstance(symmetry, str) else symmetry
    if state_mapper is None:
        candidates = [
            n
            for n in (symmetry if isinstance(symmetry, str) else None, env_name if isinstance(env, str) else None)
            if n
        ]
        err: KeyError | None = None
        for name in candidates:
            try:
                state_mapper = get_state_mapper(name)
                break
            except KeyError as e:
                err = e
        if state_mapper is None and need_mapper:
            raise err or KeyError(
                f"verify_symmetry: no state mapper for {env_name!r} / {sym.name!r}; pass state_mapper=... "
                "(an envs.StateMapper) or register one with envs.register_state_mapper, or use mode='statistical'."
            )
    probe_env = factory()
    try:
        space = probe_env.observation_space
    finally:
        probe_env.close()
    if isinstance(space, gym.spaces.Dict):
        factory, sym = _flattened(factory, sym, space)
    return factory, env_name, sym, state_mapper


def _flattened(
    factory: Callable[[], gym.Env], sym: Symmetry, space: gym.spaces.Dict
) -> tuple[Callable[[], gym.Env], Symmetry]:
    """Dict observations: the environment wrapped in ``FlattenObservation`` (keys concatenated in the space's
    order, a ``Discrete(n)`` key one-hot in ``n`` entries) and the symmetry as a signed permutation of that
    vector, read off per key from its input action (a :class:`~equirl.actions.DictAction` or a
    ``TrivialAction``): on ``±(1 + flat index)`` for Box and MultiBinary keys, checked on random values; on
    every value for a Discrete key, which must be permuted (``g·s = perm[s]`` moves one-hot entry ``s`` to
    ``perm[s]``).

    :raises ValueError: when a key's space is of another kind, or its action is not a signed permutation of its
        entries (of its values, for a Discrete key): the verifier compares flat vectors.
    """
    act: Any = sym.input_action  # acts on dict batches: a DictAction or a TrivialAction
    G = sym.order
    gens = list(sym.group.generator_indices)
    rng = torch.Generator().manual_seed(0)
    idx_parts: list[torch.Tensor] = []
    sign_parts: list[torch.Tensor] = []
    offset = 0
    for key, sub in space.spaces.items():
        try:
            if isinstance(sub, gym.spaces.Box | gym.spaces.MultiBinary):
                shape = tuple(sub.shape or ())
                size = int(np.prod(shape))
                ramp = torch.arange(1, size + 1, dtype=torch.float64).reshape(1, *shape)
                v = act.orbit({key: ramp})[key].reshape(G, size)
                idx, sign = v.abs().round().long() - 1, torch.sign(v)
                ok = bool(idx.min() >= 0 and idx.max() < size)
                rand = torch.randn(4, *shape, generator=rng, dtype=torch.float64)
                want = act.orbit({key: rand})[key].reshape(G, 4, size)
                x = rand.reshape(4, size)
                ok = ok and torch.allclose(want, sign[:, None, :] * x[:, idx].permute(1, 0, 2), atol=1e-12)
            elif isinstance(sub, gym.spaces.Discrete):
                size, start = int(sub.n), int(sub.start)
                values = torch.arange(start, start + size, dtype=torch.int64)
                images = act.orbit({key: values})[key].reshape(G, size)
                p = images.long() - start  # p[g, s]: where g sends value s
                ok = all(sorted(row.tolist()) == list(range(size)) for row in p)
                idx, sign = torch.argsort(p, dim=1), torch.ones(G, size, dtype=torch.float64)  # out[p[s]] = in[s]
            else:
                raise ValueError(
                    f"verify_symmetry: Dict observations are checked as one flat vector, which needs Box, MultiBinary "
                    f"or Discrete keys; key {key!r} is {sub} (the space is {space})."
                )
        except (AttributeError, TypeError, RuntimeError, IndexError) as err:
            raise ValueError(
                f"verify_symmetry: the symmetry {sym.name!r} does not act on key {key!r} ({sub}) of {space} ({err})."
            ) from err
        if not ok:
            what = "values" if isinstance(sub, gym.spaces.Discrete) else "entries"
            raise ValueError(
                f"verify_symmetry: the symmetry {sym.name!r} is not a signed permutation of the {what} of key {key!r} "
                f"({sub}); the verifier checks Dict observations as one flat vector."
            )
        idx_parts.append(idx + offset)
        sign_parts.append(sign)
        offset += size
    idx_all, sign_all = torch.cat(idx_parts, dim=1), torch.cat(sign_parts, dim=1)
    flat_sym = Symmetry(
        sym.group,
        PermutationAction(sym.group, [idx_all[g].tolist() for g in gens], signs=[sign_all[g].tolist() for g in gens]),
        sym.output_action,
        name=sym.name,
        description=sym.description,
    )

    def flat_factory() -> gym.Env:
        return gym.wrappers.FlattenObservation(factory())

    return flat_factory, flat_sym


def _check_fit(env: gym.Env, sym: Symmetry, env_name: str, sym_label: str) -> tuple[ActionMaps, tuple[int, ...]]:
    obs_shape = tuple(env.observation_space.shape or ())
    space = env.action_space
    act_shape = (int(space.n),) if isinstance(space, gym.spaces.Discrete) else tuple(space.shape or ())
    try:
        sym.validate(obs_shape, act_shape)
    except ValueError as err:
        raise ValueError(
            f"The symmetry {sym_label!r} does not fit the environment {env_name!r} (observations of shape "
            f"{obs_shape}, action space {space}): {err} Pick the symmetry declared for this environment."
        ) from err
    return ActionMaps(sym, space), obs_shape


def verify_symmetry(
    env: str | Callable[[], gym.Env],
    symmetry: Symmetry | str | None = None,
    *,
    mode: str = "lockstep",
    state_mapper: StateMapper | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 500,
    elements: Sequence[int] | None = None,
    obs_atol: float = 1e-6,
    obs_rtol: float = 0.0,
    reward_atol: float = 1e-9,
    tolerances: Mapping[str, float] | None = None,
    exclude: Sequence[str] = (),
    horizon: int | None = None,
    progress: bool = False,
    states: int = 16,
    rollouts: int = 64,
    test: str = "ks",
    alpha: float = 0.01,
    correction: str = "holm",
    permutations: int | None = None,
) -> VerificationReport | StatisticalReport:
    """Check that ``symmetry`` is a symmetry of ``env``'s dynamics; returns a report (``report.ok``).

    :param env: a catalogue name / gymnasium id (built with :func:`envs.make_env`) or a no-argument factory.
    :param symmetry: a :class:`equirl.Symmetry` or a catalogue name (default: ``env``'s catalogue entry).
    :param mode: ``"lockstep"`` (deterministic dynamics: every step compared within tolerances) or
        ``"statistical"`` (stochastic dynamics: distributions compared by two-sample tests).
    :param state_mapper: how to map states; default: the one registered under the symmetry's or env's
        catalogue name. Lockstep mode needs one (a KeyError with advice when there is none); statistical
        mode without one compares whole random trajectories instead of rollouts from restored states.
    :param seeds: one run per seed (and element in lockstep mode); ``A`` is reset with the seed, later
        episodes with ``seed·10007 + episode``; random actions come from ``np.random.default_rng(seed)``.
    :param steps: lockstep steps per run; in statistical mode, the length of the random walk per seed
        along which states are sampled (without a mapper: transitions collected per seed and sample).
    :param elements: group element indices to check (default: every non-identity element).
    :param obs_atol: absolute tolerance on observations: ok when ``|obs_B - g·obs_A| <= obs_atol + obs_rtol·|g·obs_A|``.
        In statistical mode, values closer than this count as equal for fields constant in both samples.
    :param obs_rtol: relative tolerance on observations (lockstep).
    :param reward_atol: absolute tolerance on rewards (lockstep).
    :param tolerances: per-field absolute tolerances (lockstep), e.g. ``{"obs[3]": 1e-3, "reward": 1e-2}``.
    :param exclude: fields not compared (both modes): ``"observation"``, ``"obs[i]"``, ``"reward"``,
        ``"terminated"``, ``"truncated"``.
    :param horizon: for inexact mappers, steps between re-syncs (default: the mapper's).
    :param progress: show a progress bar (tqdm, from the ``train`` extra).
    :param states: statistical mode: states sampled per seed.
    :param rollouts: statistical mode: one-step rollouts per state and side (without a mapper: the
        number of transitions per side is ``rollouts × states`` per seed).
    :param test: statistical mode: ``"ks"`` (per-field Kolmogorov-Smirnov) or ``"mmd"`` (joint, permutation test).
    :param alpha: statistical mode: the family-wise false-alarm rate.
    :param correction: statistical mode: ``"holm"`` or ``"bonferroni"``.
    :param permutations: statistical mode, MMD: at most this many permutations per test (default: enough
        that the smallest attainable p-value, ``1/(1 + permutations)``, survives the correction: ``2·m/alpha``
        for ``m`` tests, at least 200).
    :return: a :class:`VerificationReport` (lockstep; it stops at the first failing step) or a
        :class:`StatisticalReport`.
    """
    if mode not in MODES:
        raise ValueError(f"verify_symmetry: mode must be one of {MODES}, got {mode!r}.")
    if symmetry is None:
        if not isinstance(env, str):
            raise TypeError("verify_symmetry: give a symmetry when env is a factory.")
        symmetry = env
    factory, env_name, sym, mapper = _resolve(env, symmetry, state_mapper, need_mapper=mode == "lockstep")
    sym_label = symmetry if isinstance(symmetry, str) else (sym.name or "symmetry")
    elems = list(range(1, sym.group.order)) if elements is None else [int(g) for g in elements]
    if mode == "statistical":
        if test not in TESTS:
            raise ValueError(f"verify_symmetry: test must be one of {TESTS}, got {test!r}.")
        if correction not in CORRECTIONS:
            raise ValueError(f"verify_symmetry: correction must be one of {CORRECTIONS}, got {correction!r}.")
        if not 0 < alpha < 1:
            raise ValueError(f"verify_symmetry: alpha must be in (0, 1), got {alpha!r}.")
        return _verify_statistical(
            factory, env_name, sym, sym_label, mapper, seeds, steps, elems, exclude, states, rollouts, test,
            alpha, correction, permutations, obs_atol, progress,
        )  # fmt: skip
    assert mapper is not None
    return _verify_lockstep(
        factory, env_name, sym, sym_label, mapper, seeds, steps, elems, obs_atol, obs_rtol, reward_atol,
        tolerances, exclude, horizon, progress,
    )  # fmt: skip


def _verify_lockstep(
    factory: Callable[[], gym.Env],
    env_name: str,
    sym: Symmetry,
    sym_label: str,
    mapper: StateMapper,
    seeds: Sequence[int],
    steps: int,
    elems: list[int],
    obs_atol: float,
    obs_rtol: float,
    reward_atol: float,
    tolerances: Mapping[str, float] | None,
    exclude: Sequence[str],
    horizon: int | None,
    progress: bool,
) -> VerificationReport:
    resync = None if mapper.exact else (horizon or mapper.horizon)
    mode = (
        "exact: states mapped once per episode"
        if resync is None
        else f"short-horizon: twin re-synced from the mapped state every {resync} steps"
    )
    notes = [mapper.note] if mapper.note else []
    if mapper.observe_raw is None:
        notes.append("the mapper cannot observe a state without stepping: observations compared from step 1")
    if exclude:
        notes.append(f"not compared: {', '.join(exclude)}")
    env_a, env_b = factory(), factory()
    counts = _Counts()
    failure: Mismatch | None = None
    t0 = time.perf_counter()
    bar = progress_bar(len(seeds) * len(elems) * steps, f"verify {sym_label}", enabled=progress)
    try:
        _, obs_shape = _check_fit(env_a, sym, env_name, sym_label)
        compare = ToleranceComparator(obs_shape, obs_atol, obs_rtol, reward_atol, tolerances, exclude)
        pairs = paired_transitions(
            env_a, env_b, sym, mapper, seeds=seeds, steps=steps, elements=elems, resync=resync, counts=counts, bar=bar
        )
        for pair in pairs:
            failure = compare(pair)
            if failure is not None:
                break
    finally:
        bar.close()
        env_a.close()
        env_b.close()
    return VerificationReport(
        ok=failure is None,
        env=env_name,
        symmetry=sym_label,
        group=sym.group.name,
        mode=mode,
        seeds=list(seeds),
        elements=[sym.group.element_names[g] for g in elems],
        steps_checked=counts.steps,
        episodes=counts.episodes,
        max_obs_diff=compare.max_obs_diff,
        max_reward_diff=compare.max_reward_diff,
        obs_atol=compare.obs_atol,
        obs_rtol=obs_rtol,
        reward_atol=compare.reward_atol,
        seconds=time.perf_counter() - t0,
        failure=failure,
        notes=notes,
    )


# -- statistical mode ---------------------------------------------------------------------------------
def _features(obs: Any, reward: float, terminated: bool, truncated: bool) -> np.ndarray:
    return np.concatenate(
        [np.asarray(obs, dtype=np.float64).reshape(-1), [reward, float(terminated), float(truncated)]]
    )


def one_step_samples(
    env: gym.Env,
    mapper: StateMapper,
    state: Any,
    action: int,
    n: int,
    obs_map: Callable[[Any], np.ndarray] | None = None,
) -> np.ndarray:
    """``[n, F]`` features ``(obs', reward, terminated, truncated)`` of ``n`` one-step rollouts from ``state``.

    ``env`` is reset (without a seed, so its random stream goes on) and put into ``state`` before each
    rollout, so time limits and episode-end flags do not carry over; ``obs_map`` maps each next observation
    (for example by ``g``) before it is recorded.
    """
    out = []
    for _ in range(n):
        env.reset()
        mapper.set_state(env, state)
        o, r, te, tr, _ = env.step(action)
        out.append(_features(o if obs_map is None else obs_map(o), float(r), bool(te), bool(tr)))
    return np.stack(out)


def _fmt(a: Any) -> str:
    return str(a) if np.ndim(a) == 0 else np.array2string(np.asarray(a), precision=3)


def _state_samples(
    env: gym.Env, mapper: StateMapper, seed: int, steps: int, k: int, acts: ActionMaps
) -> list[tuple[Any, int]]:
    """``k`` states (with the step at which each was taken) along a random walk of ``steps`` steps from ``seed``."""
    rng = np.random.default_rng([seed, 1])
    when = set(np.linspace(0, max(steps - 1, 0), k).round().astype(int).tolist())
    out: list[tuple[Any, int]] = []
    env.reset(seed=seed)
    episode = 0
    for t in range(steps):
        if t in when:
            out.append((mapper.get_state(env), t))
        _, _, te, tr, _ = env.step(acts.sample(rng))
        if te or tr:
            episode += 1
            env.reset(seed=seed * 10007 + episode)
    return out


@dataclass
class _StatContext:
    """What the statistical tests of one run share."""

    sym: Symmetry
    acts: ActionMaps
    maps: _ObsMaps
    obs_shape: tuple[int, ...]
    exclude: Sequence[str]
    test: str
    atol: float
    permutations: int
    rng: np.random.Generator

    def tests(self, x: np.ndarray, y: np.ndarray, fields: list[str], where: str) -> list[FieldTest]:
        """Two-sample tests of ``x`` against ``y`` on the fields not excluded (``obs[i]`` also drops ``Δobs[i]``,
        ``observation`` every observation field)."""
        keep = [
            j
            for j, f in enumerate(fields)
            if f not in self.exclude
            and f.lstrip("Δ") not in self.exclude
            and not ("observation" in self.exclude and f.lstrip("Δ").startswith("obs["))
        ]
        kept = [fields[j] for j in keep]
        return two_sample_tests(x[:, keep], y[:, keep], kept, where, self.test, self.atol, self.permutations, self.rng)


def _rollout_tests(
    ctx: _StatContext,
    env_a: gym.Env,
    env_r: gym.Env,
    mapper: StateMapper,
    seeds: Sequence[int],
    steps: int,
    elems: list[int],
    n_states: int,
    rollouts: int,
    bar: Any,
) -> tuple[list[FieldTest], int]:
    """Per seed, ``n_states`` states along a random walk; from each and each element ``g``, ``rollouts`` one-step
    rollouts from ``s`` with ``a`` (next observations mapped by ``g``) against as many from ``g·s`` with ``ρ(g)a``."""
    fields = obs_field_names(ctx.obs_shape) + list(SCALAR_FIELDS)
    names = ctx.sym.group.element_names
    env_r.reset(seed=int(ctx.rng.integers(2**31)))
    tests: list[FieldTest] = []
    samples = 0
    for seed in seeds:
        for i, (s, t) in enumerate(_state_samples(env_a, mapper, seed, steps, n_states, ctx.acts)):
            for g in elems:
                a = ctx.acts.sample(ctx.rng)
                b = ctx.acts.apply(g, a)
                x = one_step_samples(env_r, mapper, s, a, rollouts, functools.partial(ctx.maps.apply, g))
                y = one_step_samples(env_r, mapper, mapper.map_state(s, g, ctx.sym), b, rollouts)
                samples += 2 * rollouts
                where = f"seed {seed}, state {i} (step {t}), element {names[g]}, action {_fmt(a)} -> {_fmt(b)}"
                tests += ctx.tests(x, y, fields, where)
                bar.update(1)
    return tests, samples


def _trajectory_tests(
    ctx: _StatContext, env: gym.Env, seeds: Sequence[int], elems: list[int], per_side: int
) -> tuple[list[FieldTest], int]:
    """Without a mapper: per seed, one transition from each of ``per_side`` random episodes, mapped by ``g``,
    against as many from independent episodes, per (mapped) action."""
    fields = _trajectory_field_names(ctx.obs_shape)
    names = ctx.sym.group.element_names
    n = ctx.acts.n
    tests: list[FieldTest] = []
    samples = 0
    for seed in seeds:
        base = _trajectory_features(env, seed, per_side, n, 0)
        other = _map_trajectory_features(_trajectory_features(env, seed, per_side, n, 1), 0, None, None)
        samples += len(base[0]) + len(other[0])
        for g in elems:
            mapped = _map_trajectory_features(base, g, ctx.maps, ctx.acts.table)
            for b in range(n):
                x, y = mapped[1][mapped[0] == b], other[1][other[0] == b]
                if len(x) >= 8 and len(y) >= 8:
                    tests += ctx.tests(x, y, fields, f"seed {seed}, element {names[g]}, action {b}")
    return tests, samples


def _verify_statistical(
    factory: Callable[[], gym.Env],
    env_name: str,
    sym: Symmetry,
    sym_label: str,
    mapper: StateMapper | None,
    seeds: Sequence[int],
    steps: int,
    elems: list[int],
    exclude: Sequence[str],
    n_states: int,
    rollouts: int,
    test: str,
    alpha: float,
    correction: str,
    permutations: int | None,
    atol: float,
    progress: bool,
) -> StatisticalReport:
    t0 = time.perf_counter()
    env_a, env_r = factory(), factory()
    notes: list[str] = []
    try:
        acts, obs_shape = _check_fit(env_a, sym, env_name, sym_label)
        _check_fields(list(exclude), obs_shape, "exclude")
        if mapper is None and not acts.discrete:
            raise ValueError(
                f"verify_symmetry: statistical mode without a state mapper compares transitions per action, which "
                f"needs a Discrete action space; {env_name!r} has {env_a.action_space}. Pass state_mapper=..."
            )
        planned = len(seeds) * len(elems) * (n_states if mapper is not None else acts.n)
        if permutations is None:
            permutations = max(200, int(np.ceil(2 * planned / alpha)))
        rng = np.random.default_rng(list(seeds) + [12345])
        ctx = _StatContext(sym, acts, _ObsMaps(sym, obs_shape), obs_shape, exclude, test, atol, permutations, rng)
        if mapper is not None:
            method = f"{rollouts} one-step rollouts from each of {n_states} sampled states per seed, and from its image"
            bar = progress_bar(len(seeds) * n_states * len(elems), f"verify {sym_label}", enabled=progress)
            try:
                tests, samples = _rollout_tests(ctx, env_a, env_r, mapper, seeds, steps, elems, n_states, rollouts, bar)
            finally:
                bar.close()
        else:
            method = (
                "no state mapper: one transition per random episode, mapped by g, against independent episodes, "
                "per action (assumes a symmetric start distribution)"
            )
            notes.append("without a state mapper the test compares trajectories; give one for a sharper test")
            tests, samples = _trajectory_tests(ctx, env_a, seeds, elems, n_states * rollouts)
    finally:
        env_a.close()
        env_r.close()
    return _statistical_report(
        tests, env_name, sym, sym_label, method, test, permutations, correction, alpha, seeds, elems, samples,
        time.perf_counter() - t0, notes,
    )  # fmt: skip


def _statistical_report(
    tests: list[FieldTest],
    env_name: str,
    sym: Symmetry,
    sym_label: str,
    method: str,
    test: str,
    permutations: int,
    correction: str,
    alpha: float,
    seeds: Sequence[int],
    elems: list[int],
    samples: int,
    seconds: float,
    notes: list[str],
) -> StatisticalReport:
    """Correct the p-values of ``tests`` together and summarise them."""
    adjusted = correct_p_values([t.p_value for t in tests], correction)
    for t, p in zip(tests, adjusted, strict=True):
        t.p_adjusted = float(p)
    rejected = [t for t in tests if t.p_adjusted < alpha]
    worst = min(tests, key=lambda t: (t.p_adjusted, -t.statistic)) if tests else None
    counts: dict[str, int] = {}
    for t in rejected:
        counts[t.field] = counts.get(t.field, 0) + 1
    differing = sorted(counts, key=lambda f: -counts[f])
    return StatisticalReport(
        ok=not rejected,
        env=env_name,
        symmetry=sym_label,
        group=sym.group.name,
        mode="statistical",
        method=method,
        test={"ks": "Kolmogorov-Smirnov (per field)", "mmd": f"MMD (joint, {permutations} permutations)"}[test],
        correction=correction,
        alpha=alpha,
        seeds=list(seeds),
        elements=[sym.group.element_names[g] for g in elems],
        n_tests=len(tests),
        samples=samples,
        statistic=worst.statistic if worst else float("nan"),
        p_value=worst.p_adjusted if worst else 1.0,
        differing=[f"{f} ({counts[f]} tests)" for f in differing],
        worst=worst,
        seconds=seconds,
        tests=tests,
        notes=notes,
    )


def _trajectory_field_names(obs_shape: tuple[int, ...]) -> list[str]:
    names = obs_field_names(obs_shape)
    return names + [f"Δ{n}" for n in names] + list(SCALAR_FIELDS)


def _trajectory_features(
    env: gym.Env, seed: int, n: int, n_actions: int, stream: int, max_episode_steps: int = 10_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One transition per random episode, ``n`` episodes: ``(actions [n], scalars [n, 3], obs pairs [n, 2, ...])``.

    The transition is drawn uniformly among the episode's steps (reservoir sampling), so samples are
    independent, as the two-sample tests assume; scalars are ``(reward, terminated, truncated)``.
    ``stream`` picks independent runs for the same seed.
    """
    rng = np.random.default_rng([seed, 2, stream])
    acts, feats, obs_list = [], [], []
    for _ in range(n):
        o, _ = env.reset(seed=int(rng.integers(2**31)))
        kept: tuple[int, Any, Any, list[float]] | None = None
        for t in range(1, max_episode_steps + 1):
            a = int(rng.integers(n_actions))
            o2, r, te, tr, _ = env.step(a)
            if rng.random() * t < 1.0:  # keep this step with probability 1/t: uniform over the episode
                kept = (a, o, o2, [float(r), float(te), float(tr)])
            o = o2
            if te or tr:
                break
        assert kept is not None
        acts.append(kept[0])
        obs_list.append(np.stack([np.asarray(kept[1], dtype=np.float64), np.asarray(kept[2], dtype=np.float64)]))
        feats.append(kept[3])
    return np.array(acts), np.array(feats), np.stack(obs_list)


def _map_trajectory_features(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], g: int, maps: _ObsMaps | None, act_tab: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(actions, features)`` of transitions mapped by ``g`` (``maps`` None: unmapped)."""
    acts, scal, obs = data
    if maps is not None and act_tab is not None:
        acts = act_tab[g, acts]
        obs = np.stack([np.stack([maps.apply(g, o[0]), maps.apply(g, o[1])]) for o in obs])
    flat = obs.reshape(len(obs), 2, -1)
    return acts, np.concatenate([flat[:, 0], flat[:, 1] - flat[:, 0], scal], axis=1)
