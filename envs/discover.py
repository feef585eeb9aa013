"""Symmetry discovery: search candidate maps of an environment and return the largest group that verifies.

:func:`discover_symmetry` needs no declared symmetry, only a way to put a twin environment into a mapped
state:

- **vector observations** (``Box`` of shape ``[n]``) with an :class:`ObsStateCodec` (read the observation
  of the current state, set a state from an observation; built in for CartPole, Acrobot and MountainCar
  and their subclasses; Pendulum): candidates are signed permutations of the observation entries. They are pruned
  by the observation bounds (a symmetry maps the observation box onto itself), by the marginal
  distributions of the entries along random runs (Kolmogorov-Smirnov), by whether the twin can be put
  into the mapped observation at all, and by one-step checks from a few states, before full verification.
- **image observations** (``[C, H, W]``) with :class:`WorldMaps` (the environment's state rotated a
  quarter turn and mirrored; built in for RotGrid and MiniGrid): candidates pair an element of D4 acting on
  the world with an element of D4 acting on the observation grid; the channel permutation (for example
  MiniGrid's direction channels) is read off by matching channels.

For every candidate the permutation of the discrete actions is inferred from one-step transitions (action
``a`` from ``s`` against every action from ``g·s``); maps that act as the identity on observations and
actions are not searched. Each surviving candidate is verified with :func:`envs.verify_symmetry` (lockstep,
or statistical mode for stochastic dynamics); the group is then closed from the verified generators,
adding them one at a time and re-verifying the whole group, and returned as a ready :class:`equirl.Symmetry`
with its state mapper, a Python snippet that declares it, and a report of what was tried.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from equirl.envs.mappers import StateMapper, mapper_from_generators
from equirl.envs.verify import StatisticalReport, VerificationReport, env_factory, verify_symmetry

from equirl import (
    Action,
    ComposedAction,
    Group,
    PermutationAction,
    SignedPermutationAction,
    SignFlipAction,
    SpatialAction,
    Symmetry,
    TrivialAction,
    cyclic,
    dihedral,
    trivial_group,
)
from equirl.actions import SPATIAL_OPS, _spatial_index

__all__ = [
    "ObsStateCodec",
    "WorldMaps",
    "Candidate",
    "DiscoveryReport",
    "discover_symmetry",
    "builtin_codec",
    "builtin_world_maps",
]


# -- how to reach mapped states -----------------------------------------------------------------------
@dataclass(frozen=True)
class ObsStateCodec:
    """For environments whose observation determines the state: read it, and set a state from it.

    :param observe: ``unwrapped_env -> observation`` of the current state (float64, shape of the obs space).
    :param set_obs: ``(unwrapped_env, observation) -> None``: put the env into the state with this observation.
    :param exact: whether a state set from an observation steps exactly like the original (False when the
        observation rounds the state, or for chaotic dynamics; the verifier then re-syncs every ``horizon``).
    :param horizon: re-sync period when not exact.
    """

    observe: Callable[[Any], np.ndarray]
    set_obs: Callable[[Any, np.ndarray], None]
    exact: bool = True
    horizon: int = 50

    def mapper(self) -> StateMapper:
        """A :class:`StateMapper` whose state is the observation; any symmetry maps it by its input action."""
        import torch

        def map_state(obs: np.ndarray, g: int, sym: Symmetry) -> np.ndarray:
            return sym.input_action.apply(g, torch.as_tensor(obs, dtype=torch.float64).unsqueeze(0))[0].numpy()

        return StateMapper(
            get_state=lambda env: np.asarray(self.observe(env.unwrapped), dtype=np.float64),
            set_state=lambda env, obs: self.set_obs(env.unwrapped, np.asarray(obs, dtype=np.float64)),
            map_state=map_state,
            observe_raw=lambda u: self.observe(u),
            exact=self.exact,
            horizon=self.horizon,
            note="" if self.exact else f"states set from observations: twin re-synced every {self.horizon} steps",
        )


@dataclass(frozen=True)
class WorldMaps:
    """For grid environments: the state, and the state turned a quarter (``"rot90"``) or mirrored (``"flip0"``).

    :param get_state: ``env -> state`` (a copy). :param set_state: ``(env, state) -> None``.
    :param ops: ``{"rot90": state -> state, "flip0": state -> state}`` (either may be missing; a map may raise
        ValueError when it does not apply, for example a quarter turn of a non-square grid).
    :param observe_raw: ``unwrapped_env -> raw observation`` (passed up through observation wrappers).
    """

    get_state: Callable[[gym.Env], Any]
    set_state: Callable[[gym.Env, Any], None]
    ops: Mapping[str, Callable[[Any], Any]]
    observe_raw: Callable[[Any], Any]

    def apply(self, word: Sequence[str], state: Any) -> Any:
        """``state`` mapped by the ops of ``word``, first to last."""
        for op in word:
            state = self.ops[op](state)
        return state


def builtin_codec(env: gym.Env) -> ObsStateCodec | None:
    """The :class:`ObsStateCodec` for CartPole, Acrobot, MountainCar and Pendulum (and subclasses), else None."""
    from gymnasium.envs.classic_control.acrobot import AcrobotEnv
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv
    from gymnasium.envs.classic_control.mountain_car import MountainCarEnv
    from gymnasium.envs.classic_control.pendulum import PendulumEnv

    u = env.unwrapped

    def set_state_vector(u: Any, obs: np.ndarray) -> None:
        u.state = np.array(obs, dtype=np.float64)

    if isinstance(u, CartPoleEnv | MountainCarEnv):
        return ObsStateCodec(lambda u: np.array(u.state, dtype=np.float64), set_state_vector)
    if isinstance(u, AcrobotEnv):

        def observe(u: Any) -> np.ndarray:
            s = np.asarray(u.state, dtype=np.float64)
            return np.array([np.cos(s[0]), np.sin(s[0]), np.cos(s[1]), np.sin(s[1]), s[2], s[3]])

        def set_obs(u: Any, o: np.ndarray) -> None:
            u.state = np.array([math.atan2(o[1], o[0]), math.atan2(o[3], o[2]), o[4], o[5]], dtype=np.float64)

        return ObsStateCodec(observe, set_obs, exact=False, horizon=50)
    if isinstance(u, PendulumEnv):

        def observe_pendulum(u: Any) -> np.ndarray:
            th, thdot = np.asarray(u.state, dtype=np.float64)
            return np.array([np.cos(th), np.sin(th), thdot])

        def set_pendulum(u: Any, o: np.ndarray) -> None:
            u.state = np.array([math.atan2(o[1], o[0]), o[2]], dtype=np.float64)

        return ObsStateCodec(observe_pendulum, set_pendulum, exact=False, horizon=50)
    return None


def builtin_world_maps(env: gym.Env) -> WorldMaps | None:
    """:class:`WorldMaps` for RotGrid and MiniGrid environments, else None."""
    from equirl.envs.gridworld import RotGridEnv

    u = env.unwrapped
    if isinstance(u, RotGridEnv):
        return WorldMaps(
            get_state=lambda e: e.unwrapped.get_state(),  # type: ignore[attr-defined]
            set_state=lambda e, s: e.unwrapped.set_state(s),  # type: ignore[attr-defined]
            ops={
                "rot90": lambda s: (np.ascontiguousarray(np.rot90(s[0], 1, axes=(1, 2))), s[1]),
                "flip0": lambda s: (np.ascontiguousarray(s[0][:, ::-1, :]), s[1]),
            },
            observe_raw=lambda u: u._obs(),
        )
    try:
        from minigrid.minigrid_env import MiniGridEnv
    except ImportError:  # pragma: no cover
        return None
    if isinstance(u, MiniGridEnv):
        from equirl.envs.minigrid_wrappers import get_minigrid_state, set_minigrid_state

        return WorldMaps(
            get_state=get_minigrid_state,
            set_state=set_minigrid_state,
            ops={op: functools.partial(_transform_minigrid, op) for op in ("rot90", "flip0")},
            observe_raw=lambda u: u.gen_obs(),
        )
    return None


def _transform_minigrid(op: str, state: Any) -> Any:
    from equirl.envs.minigrid_wrappers import transform_minigrid_state

    return transform_minigrid_state(state, op)


# -- group elements --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Element:
    """A candidate map: signed permutation of the flat observation (``(g·o)[n] = sign[n] o[idx[n]]``), the
    output permutation of actions ``p`` (``(ρ q)[i] = q[p[i]]``) and the world word (grid envs)."""

    idx: tuple[int, ...]
    sign: tuple[int, ...]
    act: tuple[int, ...]
    world: tuple[str, ...] = ()
    act_sign: tuple[int, ...] = ()  # continuous actions: (ρ a)[i] = act_sign[i] a[act[i]]; () = all +1

    @property
    def key(self) -> tuple[tuple[int, ...], ...]:
        return (self.idx, self.sign, self.act, self.act_signs)

    @property
    def act_signs(self) -> tuple[int, ...]:
        return self.act_sign or (1,) * len(self.act)

    def is_identity(self) -> bool:
        return (
            self.idx == tuple(range(len(self.idx)))
            and all(s == 1 for s in self.sign)
            and self.act == tuple(range(len(self.act)))
            and all(s == 1 for s in self.act_signs)
        )


def _compose(a: _Element, b: _Element) -> _Element:
    """``a·b`` (``b`` acts first)."""
    ia = a.idx
    return _Element(
        tuple(b.idx[i] for i in ia),
        tuple(a.sign[n] * b.sign[ia[n]] for n in range(len(ia))),
        tuple(b.act[i] for i in a.act),
        b.world + a.world,
        tuple(a.act_signs[n] * b.act_signs[a.act[n]] for n in range(len(a.act))),
    )


def _identity(n_obs: int, n_act: int) -> _Element:
    return _Element(tuple(range(n_obs)), (1,) * n_obs, tuple(range(n_act)), (), (1,) * n_act)


def _closure(gens: Sequence[_Element], n_obs: int, n_act: int, max_order: int = 1024) -> list[_Element]:
    """All elements generated by ``gens`` (identity first), breadth-first."""
    e = _identity(n_obs, n_act)
    out, seen, frontier = [e], {e.key}, [e]
    while frontier:
        nxt = []
        for x in frontier:
            for gen in gens:
                y = _compose(x, gen)
                if y.key not in seen:
                    if len(out) >= max_order:
                        raise ValueError(f"discover_symmetry: the candidate group has more than {max_order} elements.")
                    seen.add(y.key)
                    out.append(y)
                    nxt.append(y)
        frontier = nxt
    return out


def _order(x: _Element, n_obs: int, n_act: int) -> int:
    e = _identity(n_obs, n_act).key
    k, y = 1, x
    while y.key != e:
        y = _compose(y, x)
        k += 1
    return k


# -- reports ------------------------------------------------------------------------------------------------
@dataclass
class Candidate:
    """One candidate map that reached the one-step check (pruned ones are counted in ``DiscoveryReport.pruned``).

    :param description: the map on observations and actions, readable.
    :param order: the order of the cyclic group it generates.
    :param verdict: ``"verified"``, ``"failed one-step"``, ``"failed verification"``, ``"in the group"``
        (already generated by accepted generators) or ``"breaks the group"`` (verified alone, but the group
        with it did not re-verify).
    :param reason: why it failed, or the verification's summary.
    """

    description: str
    order: int
    verdict: str
    reason: str = ""


@dataclass
class DiscoveryReport:
    """What :func:`discover_symmetry` found: ``symmetry`` (with ``state_mapper``) and how.

    ``symmetry.group`` is the largest group found (the trivial group C1 when none); ``elements`` its elements
    as readable maps; ``pruned`` counts candidates removed by each cheap check before any stepping;
    ``candidates`` the ones that were stepped; ``verification`` the final report on the whole group.
    """

    env: str
    symmetry: Symmetry
    state_mapper: StateMapper | None
    elements: list[str]
    snippet: str
    stochastic: bool
    searched: str
    pruned: dict[str, int]
    candidates: list[Candidate]
    verification: VerificationReport | StatisticalReport | None
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def group(self) -> str:
        return self.symmetry.group.name

    def __str__(self) -> str:
        lines = [
            f"{self.env}: found {self.group} (order {self.symmetry.order}) in {self.seconds:.1f} s",
            f"  searched: {self.searched}; dynamics {'stochastic' if self.stochastic else 'deterministic'}",
            "  pruned before stepping: " + (", ".join(f"{v} by {k}" for k, v in self.pruned.items()) or "none"),
        ]
        verified = [c for c in self.candidates if c.verdict in ("verified", "in the group")]
        lines.append(
            f"  stepped {len(self.candidates)} candidates: {len(verified)} verified, "
            f"{sum(c.verdict == 'failed one-step' for c in self.candidates)} failed the one-step check, "
            f"{sum(c.verdict == 'failed verification' for c in self.candidates)} failed verification"
        )
        for c in self.candidates[:12]:
            lines.append(f"    {c.verdict:20s} {c.description} (order {c.order}){': ' + c.reason if c.reason else ''}")
        if len(self.candidates) > 12:
            lines.append(f"    ... {len(self.candidates) - 12} more in report.candidates")
        lines.append("  elements:")
        lines += [f"    {n}: {d}" for n, d in zip(self.symmetry.group.element_names, self.elements, strict=True)]
        if self.verification is not None:
            head = str(self.verification).splitlines()[0]
            lines.append(f"  whole group re-verified: {head}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# -- sampling and one-step checks -----------------------------------------------------------------------
def _sample_states(env: gym.Env, get_state: Callable[[gym.Env], Any], k: int, seed: int, spacing: int = 7) -> list[Any]:
    """``k`` states along random runs (every ``spacing`` steps, new episodes as needed)."""
    rng = np.random.default_rng([seed, 3])
    env.reset(seed=seed)
    out: list[Any] = []
    t, episode = 0, 0
    while len(out) < k:
        if t % spacing == 0:
            out.append(get_state(env))
        _, _, te, tr, _ = env.step(_random_action(env.action_space, rng))
        t += 1
        if te or tr:
            episode += 1
            env.reset(seed=seed * 10007 + episode)
    return out


def _random_action(space: gym.Space, rng: np.random.Generator) -> Any:
    """A uniformly random action of a Discrete or bounded Box space."""
    if isinstance(space, gym.spaces.Discrete):
        return int(rng.integers(int(space.n)))
    assert isinstance(space, gym.spaces.Box)
    return rng.uniform(space.low, space.high).astype(space.dtype)


def _probe_actions(space: gym.Space, k: int = 3) -> list[Any]:
    """The actions one-step checks try: every action of a Discrete space; ``k`` fixed random ones of a Box."""
    if isinstance(space, gym.spaces.Discrete):
        return list(range(int(space.n)))
    rng = np.random.default_rng(12345)
    return [_random_action(space, rng) for _ in range(k)]


def _outcome(env: gym.Env, set_state: Callable[[gym.Env, Any], None], state: Any, action: Any) -> np.ndarray:
    env.reset()
    set_state(env, state)
    o, r, te, tr, _ = env.step(action)
    return np.concatenate([np.asarray(o, dtype=np.float64).reshape(-1), [float(r), float(te), float(tr)]])


def _outcomes(env: gym.Env, set_state: Callable[[gym.Env, Any], None], state: Any, action: Any, n: int) -> np.ndarray:
    return np.stack([_outcome(env, set_state, state, action) for _ in range(n)])


def _is_stochastic(env: gym.Env, set_state: Callable[[gym.Env, Any], None], states: Sequence[Any]) -> bool:
    for s in states[:3]:
        for a in _probe_actions(env.action_space):
            if not np.array_equal(_outcome(env, set_state, s, a), _outcome(env, set_state, s, a)):
                return True
    return False


def _match(feasible: np.ndarray) -> list[int] | None:
    """A permutation ``t`` with ``feasible[a, t[a]]`` for all ``a``, preferring ``t[a] = a`` (augmenting paths)."""
    n = len(feasible)
    owner = [-1] * n

    def augment(a: int, seen: set[int]) -> bool:
        for b in [a] + [b for b in range(n) if b != a]:
            if feasible[a, b] and b not in seen:
                seen.add(b)
                if owner[b] == -1 or augment(owner[b], seen):
                    owner[b] = a
                    return True
        return False

    for a in range(n):
        if not augment(a, set()):
            return None
    t = [0] * n
    for b, a in enumerate(owner):
        t[a] = b
    return t


@dataclass
class _Search:
    """Everything a candidate check needs for one environment."""

    env: gym.Env
    set_state: Callable[[gym.Env, Any], None]
    states: list[Any]
    n_actions: int
    obs_shape: tuple[int, ...]
    stochastic: bool
    rollouts: int
    atol: float = 1e-6

    def same(self, x: np.ndarray, y: np.ndarray) -> bool:
        """Outcomes ``x``, ``y`` agree: exactly (within ``atol``), or in distribution for stochastic dynamics."""
        if self.stochastic:
            return _same_distribution(x, y, self.atol)
        return bool(np.all(np.abs(x - y) <= self.atol))

    def infer_signs(
        self, obs_map: Callable[[np.ndarray], np.ndarray], mapped_states: Sequence[Any]
    ) -> tuple[list[int] | None, str]:
        """Continuous actions: the sign vector ``σ`` (``a`` from ``s`` plays the role of ``σ⊙a`` from ``g·s``) among
        those that map the action box onto itself, identity first; or None and why."""
        space = self.env.action_space
        assert isinstance(space, gym.spaces.Box)
        k = int(space.shape[0])
        nf = int(np.prod(self.obs_shape))
        low, high = np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64)
        options = [
            np.array(sg)
            for sg in itertools.product((1, -1), repeat=k)
            if all(sg[i] == 1 or low[i] == -high[i] for i in range(k))
        ]
        n = self.rollouts if self.stochastic else 1

        def mapped(x: np.ndarray) -> np.ndarray:
            return np.concatenate([obs_map(x[:nf].reshape(self.obs_shape)).reshape(-1), x[nf:]])

        for sg in options:
            ok = True
            for s, gs in zip(self.states, mapped_states, strict=True):
                for a in _probe_actions(space):
                    x = np.stack([mapped(r) for r in _outcomes(self.env, self.set_state, s, a, n)])
                    b = (sg * np.asarray(a, dtype=np.float64)).astype(space.dtype)
                    if not self.same(x, _outcomes(self.env, self.set_state, gs, b, n)):
                        ok = False
                        break
                if not ok:
                    break
            if ok:
                return [int(v) for v in sg], ""
        return None, f"no sign flip of the {k} action entries reproduces the transitions from s"

    def infer_actions(
        self, obs_map: Callable[[np.ndarray], np.ndarray], mapped_states: Sequence[Any]
    ) -> tuple[list[int] | None, str]:
        """The action table ``t`` (``a`` from ``s`` plays the role of ``t[a]`` from ``g·s``), or None and why."""
        n = self.n_actions
        feasible = np.ones((n, n), dtype=bool)
        nf = int(np.prod(self.obs_shape))

        def mapped(x: np.ndarray) -> np.ndarray:
            return np.concatenate([obs_map(x[:nf].reshape(self.obs_shape)).reshape(-1), x[nf:]])

        for s, gs in zip(self.states, mapped_states, strict=True):
            if self.stochastic:
                xa = [
                    np.stack([mapped(r) for r in _outcomes(self.env, self.set_state, s, a, self.rollouts)])
                    for a in range(n)
                ]
                yb = [_outcomes(self.env, self.set_state, gs, b, self.rollouts) for b in range(n)]
                for a, b in itertools.product(range(n), range(n)):
                    if feasible[a, b]:
                        feasible[a, b] = _same_distribution(xa[a], yb[b], self.atol)
            else:
                xa = [mapped(_outcome(self.env, self.set_state, s, a)) for a in range(n)]
                yb = [_outcome(self.env, self.set_state, gs, b) for b in range(n)]
                for a, b in itertools.product(range(n), range(n)):
                    feasible[a, b] &= bool(np.all(np.abs(xa[a] - yb[b]) <= self.atol))
            if not feasible.any(1).all():
                a = int(np.argmin(feasible.any(1)))
                return None, f"no action from g·s reproduces action {a} from s"
        t = _match(feasible)
        return (t, "") if t is not None else (None, "no one-to-one matching of actions")


def _same_distribution(x: np.ndarray, y: np.ndarray, atol: float, alpha: float = 1e-3) -> bool:
    """Lenient screen: no per-field KS test rejects at ``alpha`` after Bonferroni (true symmetries pass)."""
    from equirl.envs.verify import correct_p_values, two_sample_tests

    tests = two_sample_tests(x, y, [str(i) for i in range(x.shape[1])], "", "ks", atol)
    return bool(correct_p_values([t.p_value for t in tests], "bonferroni").min() >= alpha)


# -- candidate generation: vectors -----------------------------------------------------------------------
def _vector_candidates(
    env: gym.Env, seed: int, pruned: dict[str, int], marginal_alpha: float, max_candidates: int
) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Signed permutations ``(idx, sign)`` of the observation allowed by bounds and marginals (identity excluded)."""
    from scipy.stats import ks_2samp

    space = env.observation_space
    assert isinstance(space, gym.spaces.Box)
    low, high = np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64)
    n = len(low)
    samples = [np.stack(_walk(env, 400, seed, stream)) for stream in (0, 1)]
    bound_ok = np.zeros((n, n, 2), dtype=bool)  # [i, j, sign index (0: +1, 1: -1)]: (g·o)[i] = sign·o[j]
    allowed = np.zeros((n, n, 2), dtype=bool)
    for i, j in itertools.product(range(n), range(n)):
        for si, s in enumerate((1.0, -1.0)):
            lo, hi = (low[j], high[j]) if s > 0 else (-high[j], -low[j])
            bound_ok[i, j, si] = low[i] == lo and high[i] == hi
            if bound_ok[i, j, si]:
                allowed[i, j, si] = ks_2samp(samples[0][:, i], s * samples[1][:, j]).pvalue >= marginal_alpha
    # enumerate perfect matchings of allowed (i -> (j, sign))
    out: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    total = math.factorial(n) * 2**n
    n_bounds = _count_matchings(bound_ok, n)
    n_marg = _count_matchings(allowed, n)
    pruned["observation bounds"] = total - n_bounds
    pruned["marginal distributions"] = n_bounds - n_marg
    if n_marg - 1 > max_candidates:
        raise ValueError(
            f"discover_symmetry: {n_marg - 1} signed permutations of {n} observation entries survive the bounds "
            f"and marginal checks (more than max_candidates={max_candidates}); raise max_candidates or give tighter "
            "observation bounds."
        )

    def rec(i: int, used: set[int], idx: list[int], sign: list[int]) -> None:
        if i == n:
            if idx != list(range(n)) or any(s < 0 for s in sign):
                out.append((tuple(idx), tuple(sign)))
            return
        for j in range(n):
            if j in used:
                continue
            for si, s in enumerate((1, -1)):
                if allowed[i, j, si]:
                    used.add(j)
                    rec(i + 1, used, idx + [j], sign + [s])
                    used.discard(j)

    rec(0, set(), [], [])
    return out


def _count_matchings(allowed: np.ndarray, n: int) -> int:
    """Number of signed permutations allowed by ``allowed [n, n, 2]`` (a permanent, by DP over subsets)."""
    weights = allowed.sum(-1)
    dp = {0: 1}
    for i in range(n):
        nxt: dict[int, int] = {}
        for mask, c in dp.items():
            for j in range(n):
                if not mask >> j & 1 and weights[i, j]:
                    nxt[mask | 1 << j] = nxt.get(mask | 1 << j, 0) + c * int(weights[i, j])
        dp = nxt
    return sum(dp.values())


def _walk(env: gym.Env, k: int, seed: int, stream: int, spacing: int = 5) -> list[np.ndarray]:
    """``k`` observations along random runs, every ``spacing`` steps."""
    rng = np.random.default_rng([seed, 4, stream])
    o, _ = env.reset(seed=int(rng.integers(2**31)))
    out: list[np.ndarray] = []
    t = 0
    while len(out) < k:
        if t % spacing == 0:
            out.append(np.asarray(o, dtype=np.float64))
        o, _, te, tr, _ = env.step(_random_action(env.action_space, rng))
        t += 1
        if te or tr:
            o, _ = env.reset(seed=int(rng.integers(2**31)))
    return out


# -- candidate generation: images -------------------------------------------------------------------------
_WORLD_WORDS: dict[str, tuple[str, ...]] = {
    "rot90": ("rot90",),
    "rot180": ("rot90", "rot90"),
    "rot270": ("rot90", "rot90", "rot90"),
    "flip0": ("flip0",),
    "flip0·rot90": ("rot90", "flip0"),
    "flip0·rot180": ("rot90", "rot90", "flip0"),
    "flip0·rot270": ("rot90", "rot90", "rot90", "flip0"),
}


def _image_obs_element(
    op: str, chans: Sequence[int], shape: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Flat signed permutation of ``[C, H, W]`` for spatial ``op`` on ``(H, W)`` and channel map ``chans``
    (``(g·x)[c] = op(x[chans[c]])``)."""
    c, h, w = shape
    sp = _spatial_index(op, h, w)
    idx = np.concatenate([chans[k] * h * w + sp for k in range(c)])
    return tuple(int(i) for i in idx), (1,) * len(idx)


def _match_channels(mapped: np.ndarray, target: np.ndarray) -> list[int] | None:
    """``chans`` with ``target[:, c] == mapped[:, chans[c]]`` over all sampled states (``[K, C, H, W]``),
    preferring ``chans[c] = c``; None when no channel permutation fits."""
    c = mapped.shape[1]
    eq = np.array([[np.array_equal(target[:, i], mapped[:, j]) for j in range(c)] for i in range(c)])
    return _match(eq)


def _decompose_image(idx: Sequence[int], shape: tuple[int, ...]) -> tuple[str, list[int]] | None:
    """``(spatial op, channel map)`` of a flat index map of ``[C, H, W]``, or None."""
    c, h, w = shape
    hw = h * w
    arr = np.asarray(idx).reshape(c, hw)
    for op in SPATIAL_OPS:
        if op != "identity" and h != w and op in ("rot90", "rot270", "transpose", "antitranspose"):
            continue
        sp = _spatial_index(op, h, w)
        chans = [int(arr[k, 0] // hw) for k in range(c)]
        if all(np.array_equal(arr[k], chans[k] * hw + sp) for k in range(c)):
            return op, chans
    return None


# -- building the symmetry ------------------------------------------------------------------------------------
def _structure(elements: list[_Element], n_obs: int, n_act: int) -> tuple[Group, list[_Element]]:
    """The named group (Cn, Dn, or generated) and the elements its generators map to."""
    order = len(elements)
    if order == 1:
        return trivial_group(), []
    orders = [_order(x, n_obs, n_act) for x in elements]
    for x, k in zip(elements, orders, strict=True):
        if k == order:
            return cyclic(order), [x]
    if order % 2 == 0:
        m = order // 2
        keys = {x.key for x in elements}
        for r, k in zip(elements, orders, strict=True):
            if k != m:
                continue
            rot = {y.key for y in _closure([r], n_obs, n_act)}
            inv_r = next(y for y in elements if _compose(r, y).key == _identity(n_obs, n_act).key)
            for s, ks in zip(elements, orders, strict=True):
                if ks == 2 and s.key not in rot and _compose(_compose(s, r), s).key == inv_r.key:
                    assert keys >= {y.key for y in _closure([r, s], n_obs, n_act)}
                    return dihedral(m), [r, s]
    raise ValueError(f"discover_symmetry: found a group of order {order} that is neither cyclic nor dihedral.")


def _vector_description(x: _Element) -> str:
    obs = "[" + ", ".join(f"{'-' if s < 0 else ''}o{j}" for j, s in zip(x.idx, x.sign, strict=True)) + "]"
    if any(s < 0 for s in x.act_signs):
        acts = "[" + ", ".join(f"{'-' if s < 0 else ''}a{j}" for j, s in zip(x.act, x.act_signs, strict=True)) + "]"
        return f"obs -> {obs}; actions -> {acts}"
    return f"obs -> {obs}; actions {list(x.act)}"


def _image_description(x: _Element, shape: tuple[int, ...]) -> str:
    dec = _decompose_image(x.idx, shape)
    if dec is None:
        return "?"
    op, chans = dec
    moved = {c: k for c, k in enumerate(chans) if c != k}
    ch = f", channels {moved}" if moved else ""
    return f"obs {op}{ch}; actions {list(x.act)}" + (f"; world {'·'.join(reversed(x.world))}" if x.world else "")


def _build(
    gens: list[_Element],
    n_obs: int,
    n_act: int,
    obs_shape: tuple[int, ...],
    image: bool,
    name: str,
) -> tuple[Symmetry, list[_Element], Group, list[_Element], str]:
    elements = _closure(gens, n_obs, n_act) if gens else [_identity(n_obs, n_act)]
    group, images = _structure(elements, n_obs, n_act)
    if group.order == 1:
        sym = Symmetry(group, TrivialAction(group), TrivialAction(group), name=name, description="no symmetry found")
        snippet = (
            "from equirl import Symmetry, TrivialAction, trivial_group\n"
            f"G = trivial_group()\nsymmetry = Symmetry(G, TrivialAction(G), TrivialAction(G), name={name!r})"
        )
        return sym, [_identity(n_obs, n_act)], group, [], snippet
    gname = f"cyclic({group.order})" if group.name.startswith("C") else f"dihedral({group.order // 2})"
    lines = [f"G = {gname}"]
    obs_action: Action
    if image:
        decs = [_decompose_image(x.idx, obs_shape) for x in images]
        assert all(d is not None for d in decs)
        ops = [d[0] for d in decs]  # type: ignore[index]
        chans = [d[1] for d in decs]  # type: ignore[index]
        spatial = SpatialAction(group, ops, dims=(-2, -1))
        lines.append(f"spatial = SpatialAction(G, {ops}, dims=(-2, -1))")
        if any(ch != list(range(len(ch))) for ch in chans):
            obs_action = ComposedAction(spatial, PermutationAction(group, chans, dim=-3))
            lines.append(f"obs_action = ComposedAction(spatial, PermutationAction(G, {chans}, dim=-3))")
        else:
            obs_action = spatial
            lines.append("obs_action = spatial")
    else:
        perms = [list(x.idx) for x in images]
        signs = [list(x.sign) for x in images]
        if all(p == list(range(n_obs)) for p in perms):
            obs_action = SignFlipAction(group, signs)
            lines.append(f"obs_action = SignFlipAction(G, {signs})")
        elif all(s == 1 for sv in signs for s in sv):
            obs_action = PermutationAction(group, perms)
            lines.append(f"obs_action = PermutationAction(G, {perms})")
        else:
            obs_action = SignedPermutationAction(group, perms, signs=signs)
            lines.append(f"obs_action = SignedPermutationAction(G, {perms}, signs={signs})")
    acts = [list(x.act) for x in images]
    act_signs = [list(x.act_signs) for x in images]
    out_action: Action
    if all(a == list(range(n_act)) for a in acts) and all(s == 1 for sv in act_signs for s in sv):
        out_action = TrivialAction(group)
        lines.append("act_action = TrivialAction(G)")
    elif all(a == list(range(n_act)) for a in acts):
        out_action = SignFlipAction(group, act_signs)
        lines.append(f"act_action = SignFlipAction(G, {act_signs})")
    elif all(s == 1 for sv in act_signs for s in sv):
        out_action = PermutationAction(group, acts)
        lines.append(f"act_action = PermutationAction(G, {acts})")
    else:
        out_action = SignedPermutationAction(group, acts, signs=act_signs)
        lines.append(f"act_action = SignedPermutationAction(G, {acts}, signs={act_signs})")
    lines.append(f"symmetry = Symmetry(G, obs_action, act_action, name={name!r})")
    used = sorted(
        {
            w
            for w in (
                "ComposedAction",
                "PermutationAction",
                "SignFlipAction",
                "SignedPermutationAction",
                "SpatialAction",
                "TrivialAction",
            )
            if any(w + "(" in ln for ln in lines)
        }
        | {"Symmetry", gname.split("(")[0]}
    )
    lines.insert(0, f"from equirl import {', '.join(used)}")
    sym = Symmetry(group, obs_action, out_action, name=name, description=f"discovered {group.name}")
    # the concrete element behind each group element, through its word
    ordered = []
    for word in group.words:
        x = _identity(n_obs, n_act)
        for gi in word:
            x = _compose(x, images[gi])
        ordered.append(x)
    return sym, ordered, group, images, "\n".join(lines)


# -- the search --------------------------------------------------------------------------------------------------
def discover_symmetry(
    env: str | Callable[[], gym.Env],
    *,
    codec: ObsStateCodec | None = None,
    world_maps: WorldMaps | None = None,
    seed: int = 0,
    check_states: int = 4,
    pairing_states: int = 32,
    verify_seeds: Sequence[int] = (0, 1),
    verify_steps: int = 200,
    stochastic: bool | None = None,
    rollouts: int = 32,
    marginal_alpha: float = 1e-4,
    max_candidates: int = 200_000,
    name: str | None = None,
) -> DiscoveryReport:
    """Search the symmetries of ``env`` and return the largest group that verifies (see the module doc).

    :param env: a catalogue name / gymnasium id (built with :func:`envs.make_env`) or a no-argument factory.
        Its action space must be Discrete (actions permuted) or a bounded 1-D Box (entries' signs flipped);
        observations a 1-D Box (vector search) or ``[C, H, W]`` (grid search).
    :param codec: for vector observations, how to set a state from an observation (default: the one registered
        with ``envs.register_discovery(name, ...)``, else built in for CartPole, Acrobot, MountainCar).
    :param world_maps: for grid observations, the world turned and mirrored (default: built in for RotGrid, MiniGrid).
    :param seed: seeds the sampled states and marginals.
    :param check_states: states for the cheap one-step checks.
    :param pairing_states: grid search: states for pairing world and observation maps (no stepping).
    :param verify_seeds: seeds of the verification of each candidate and of the whole group.
    :param verify_steps: lockstep steps per seed and element (statistical mode: the random walk's length).
    :param stochastic: force the statistical mode (default: detected by stepping one state twice).
    :param rollouts: stochastic dynamics: rollouts per state in the one-step checks and in verification.
    :param marginal_alpha: vector search: an entry may map to ``±`` another only if a KS test of their marginals
        along random runs does not reject at this level.
    :param max_candidates: refuse searches larger than this (after bounds and marginals).
    :param name: the returned symmetry's name (default: the env's name).
    :return: a :class:`DiscoveryReport` (``report.symmetry``, ``report.state_mapper``, ``report.snippet``).
    :raises ValueError: for unsupported spaces, or no codec / world maps for this environment.
    """

    t0 = time.perf_counter()
    factory, env_name = env_factory(env)
    probe = factory()
    try:
        d = _Discovery(env, env_name, name or env_name, probe, seed, rollouts, tuple(verify_seeds), verify_steps)
        d.resolve_access(codec, world_maps)
        d.sample(check_states, stochastic)
        proposals = d.propose_grid(pairing_states) if d.image else d.propose_vector(marginal_alpha, max_candidates)
        verified = [el for el in (d.check_and_verify(*p) for p in proposals) if el is not None]
        gens, final = d.close_group(verified)
        return d.report(gens, final, time.perf_counter() - t0)
    finally:
        probe.close()


_Proposal = tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...], list[Any]]
"""A candidate observation map ``(flat idx, signs, world word, the check states mapped by it)``."""


class _Discovery:
    """The state of one search: the probe environment, how to reach mapped states, and what was found so far."""

    def __init__(
        self,
        env: str | Callable[[], gym.Env],
        env_name: str,
        sym_name: str,
        probe: gym.Env,
        seed: int,
        rollouts: int,
        verify_seeds: tuple[int, ...],
        verify_steps: int,
    ) -> None:
        self.target, self.env_name, self.sym_name, self.probe = env, env_name, sym_name, probe
        self.seed, self.rollouts = seed, rollouts
        self.verify_seeds, self.verify_steps = verify_seeds, verify_steps
        space = probe.action_space
        self.continuous = isinstance(space, gym.spaces.Box) and len(space.shape) == 1 and space.is_bounded()
        if not isinstance(space, gym.spaces.Discrete) and not self.continuous:
            raise ValueError(
                f"discover_symmetry: {env_name} has action space {space}; searched are Discrete actions "
                "and 1-D Box actions with finite bounds."
            )
        self.n_act = int(space.n) if isinstance(space, gym.spaces.Discrete) else int((space.shape or (0,))[0])
        self.obs_shape = tuple(probe.observation_space.shape or ())
        if len(self.obs_shape) not in (1, 3):
            raise ValueError(
                f"discover_symmetry: observations of shape {self.obs_shape}; supported are vectors [n] and grids "
                "[C, H, W]."
            )
        self.n_obs = int(np.prod(self.obs_shape))
        self.image = len(self.obs_shape) == 3
        self.pruned: dict[str, int] = {}
        self.cands: list[Candidate] = []
        self.notes: list[str] = []
        self.codec: ObsStateCodec | None = None
        self.world_maps: WorldMaps | None = None

    # -- how to reach mapped states ------------------------------------------------------------------
    def resolve_access(self, codec: ObsStateCodec | None, world_maps: WorldMaps | None) -> None:
        """The codec (vectors) or world maps (grids): given, else registered for the name, else built in."""
        if isinstance(self.target, str) and codec is None and world_maps is None:
            from equirl.envs.catalog import _CATALOG

            entry = _CATALOG.get(self.target)
            if entry is not None and entry.discovery is not None:
                registered = entry.discovery()
                if not isinstance(registered, ObsStateCodec | WorldMaps):
                    raise TypeError(
                        f"The discovery factory registered for {self.target!r} returned {type(registered).__name__}; "
                        "it must return an envs.ObsStateCodec or an envs.WorldMaps."
                    )
                codec = registered if isinstance(registered, ObsStateCodec) else None
                world_maps = registered if isinstance(registered, WorldMaps) else None
        if not self.image:
            self.codec = codec or builtin_codec(self.probe)
            if self.codec is None:
                raise ValueError(
                    f"discover_symmetry: no way to put {self.env_name} into a mapped state. Pass codec=ObsStateCodec("
                    "observe, set_obs) (read the observation of the current state; set the state from an "
                    "observation), or register one with envs.register_discovery(name, lambda: ObsStateCodec(...))."
                )
            base = self.codec.mapper()
            self.get_state, self.set_state, self.observe_raw = base.get_state, base.set_state, self.codec.observe
            self.searched = f"signed permutations of {self.n_obs} observation entries with " + (
                "sign flips of the action entries" if self.continuous else "action permutations"
            )
        else:
            self.world_maps = world_maps or builtin_world_maps(self.probe)
            if self.world_maps is None:
                raise ValueError(
                    f"discover_symmetry: no way to turn or mirror the world of {self.env_name}. Pass world_maps="
                    "WorldMaps(get_state, set_state, {'rot90': ..., 'flip0': ...}, observe_raw), or register it "
                    "with envs.register_discovery(name, lambda: WorldMaps(...))."
                )
            wm = self.world_maps
            self.get_state, self.set_state, self.observe_raw = wm.get_state, wm.set_state, wm.observe_raw
            self.searched = (
                "D4 on the world paired with D4 on the observation grid, channels matched, with action permutations"
            )

    def mapper_for(self, images: list[_Element]) -> StateMapper:
        """The state mapper of a symmetry whose generators are ``images``."""
        if self.codec is not None:
            return self.codec.mapper()
        wm = self.world_maps
        assert wm is not None
        maps = [lambda s, w=x.world: wm.apply(w, s) for x in images]
        return mapper_from_generators(wm.get_state, wm.set_state, maps, observe_raw=wm.observe_raw, exact=True)

    def obs_of(self, state: Any) -> np.ndarray:
        """The (wrapped) observation of ``state``, without stepping."""
        from equirl.envs.mappers import observe

        self.probe.reset()
        self.set_state(self.probe, state)
        mapper = StateMapper(self.get_state, self.set_state, lambda s, g, y: s, observe_raw=self.observe_raw)
        return np.asarray(observe(self.probe, mapper), dtype=np.float64)

    def sample(self, check_states: int, stochastic: bool | None) -> None:
        """States for the one-step checks; whether the dynamics are stochastic."""
        self.states = _sample_states(self.probe, self.get_state, check_states, self.seed)
        self.stochastic = _is_stochastic(self.probe, self.set_state, self.states) if stochastic is None else stochastic
        self.search = _Search(
            self.probe, self.set_state, self.states, self.n_act, self.obs_shape, self.stochastic, self.rollouts
        )

    # -- proposals ------------------------------------------------------------------------------------
    def propose_vector(self, marginal_alpha: float, max_candidates: int) -> list[_Proposal]:
        """Signed permutations allowed by bounds and marginals whose images the twin can take."""
        codec = self.codec
        assert codec is not None
        vec = _vector_candidates(self.probe, self.seed, self.pruned, marginal_alpha, max_candidates)
        obs0 = [self.obs_of(s) for s in self.states]
        out: list[_Proposal] = []
        unreachable = 0
        for idx, sign in vec:
            mapped = [np.asarray(sign, dtype=np.float64) * o[list(idx)] for o in obs0]
            reachable = True
            for m in mapped:
                codec.set_obs(self.probe.unwrapped, m)
                if not np.allclose(codec.observe(self.probe.unwrapped), m, atol=1e-6, rtol=0):
                    reachable = False
                    break
            if reachable:
                out.append((idx, sign, (), mapped))
            else:
                unreachable += 1
        self.pruned["unreachable mapped observations"] = unreachable
        return out

    def propose_grid(self, pairing_states: int) -> list[_Proposal]:
        """Pairs (world map, grid map + matched channels) that agree on sampled states, one per grid map."""
        wm = self.world_maps
        assert wm is not None
        # pairing is cheap (no stepping): more states, so that every channel (e.g. each direction) shows up
        pair_states = _sample_states(self.probe, self.get_state, pairing_states, self.seed + 1) + self.states
        base_obs = np.stack([self.obs_of(s) for s in pair_states])
        c, h, w = self.obs_shape
        k = len(pair_states)
        out: list[_Proposal] = []
        unpaired = 0
        seen: set[tuple[int, ...]] = set()
        for wname, word in _WORLD_WORDS.items():
            try:
                wstates = [wm.apply(word, s) for s in pair_states]
            except ValueError as err:
                self.notes.append(f"world map {wname} not applicable: {err}")
                self.pruned["world map not applicable"] = self.pruned.get("world map not applicable", 0) + 8
                continue
            wobs = np.stack([self.obs_of(s) for s in wstates])
            for op in SPATIAL_OPS:
                if h != w and op in ("rot90", "rot270", "transpose", "antitranspose"):
                    unpaired += 1
                    continue
                sp = _spatial_index(op, h, w)
                chans = _match_channels(base_obs.reshape(k, c, h * w)[:, :, sp].reshape(k, c, h, w), wobs)
                if chans is None:
                    unpaired += 1
                    continue
                idx, sign = _image_obs_element(op, chans, self.obs_shape)
                if idx not in seen:
                    seen.add(idx)
                    out.append((idx, sign, word, wstates[-len(self.states) :]))
        self.pruned["world/observation pairing"] = unpaired
        return out

    # -- checks -----------------------------------------------------------------------------------------
    def describe(self, x: _Element) -> str:
        return _image_description(x, self.obs_shape) if self.image else _vector_description(x)

    def verify(self, gens: list[_Element]) -> tuple[VerificationReport | StatisticalReport, int]:
        """Verify the group generated by ``gens`` (lockstep, or statistical for stochastic dynamics)."""
        sym, _, group, images, _ = _build(gens, self.n_obs, self.n_act, self.obs_shape, self.image, self.sym_name)
        kw: dict[str, Any] = dict(seeds=self.verify_seeds, steps=self.verify_steps)
        if self.stochastic:
            kw |= dict(mode="statistical", states=8, rollouts=self.rollouts, alpha=0.01)
        return verify_symmetry(self.target, sym, state_mapper=self.mapper_for(images), **kw), group.order

    def check_and_verify(
        self, idx: tuple[int, ...], sign: tuple[int, ...], word: tuple[str, ...], mapped: list[Any]
    ) -> _Element | None:
        """One-step check with the actions inferred, then verification of the cyclic group; the element or None."""
        sg = np.asarray(sign, dtype=np.float64)
        flat_idx = np.asarray(idx)

        def obs_map(o: np.ndarray) -> np.ndarray:
            return (sg * o.reshape(-1)[flat_idx]).reshape(o.shape)

        n = self.n_act
        if self.continuous:
            act_sign, why = self.search.infer_signs(obs_map, mapped)
            table = None if act_sign is None else list(range(n))
        else:
            table, why = self.search.infer_actions(obs_map, mapped)
            act_sign = [1] * n
        if table is None or act_sign is None:
            bare = _Element(idx, sign, tuple(range(n)), word)
            desc = self.describe(bare).rsplit("; actions", 1)[0]
            self.cands.append(Candidate(desc, _order(bare, self.n_obs, n), "failed one-step", why))
            return None
        act = [0] * n
        for a, b in enumerate(table):
            act[b] = a  # (ρ q)[t[a]] = q[a]
        el = _Element(idx, sign, tuple(act), word, tuple(act_sign))
        if el.is_identity():
            return None
        report, order = self.verify([el])
        verdict = "verified" if report.ok else "failed verification"
        reason = str(report).splitlines()[0] if report.ok else _why(report)
        self.cands.append(Candidate(self.describe(el), order, verdict, reason))
        return el if report.ok else None

    def close_group(
        self, verified: list[_Element]
    ) -> tuple[list[_Element], VerificationReport | StatisticalReport | None]:
        """Add verified generators one at a time (largest order first), re-verifying the whole group each time."""
        gens: list[_Element] = []
        members: set[Any] = {_identity(self.n_obs, self.n_act).key}
        final: VerificationReport | StatisticalReport | None = None
        for el in sorted(verified, key=lambda x: -_order(x, self.n_obs, self.n_act)):
            if el.key in members:
                self.set_verdict(el, "in the group")
                continue
            try:
                report, _ = self.verify(gens + [el])
            except ValueError as err:  # not a cyclic or dihedral group
                self.set_verdict(el, "breaks the group", str(err))
                continue
            if report.ok:
                gens.append(el)
                members = {x.key for x in _closure(gens, self.n_obs, self.n_act)}
                final = report
            else:
                self.set_verdict(el, "breaks the group", _why(report))
        return gens, final

    def set_verdict(self, el: _Element, verdict: str, reason: str = "") -> None:
        desc = self.describe(el)
        for c in self.cands:
            if c.description == desc and c.verdict == "verified":
                c.verdict = verdict
                c.reason = reason or c.reason

    def report(
        self, gens: list[_Element], final: VerificationReport | StatisticalReport | None, seconds: float
    ) -> DiscoveryReport:
        sym, ordered, group, images, snippet = _build(
            gens, self.n_obs, self.n_act, self.obs_shape, self.image, self.sym_name
        )
        return DiscoveryReport(
            env=self.env_name,
            symmetry=sym,
            state_mapper=self.mapper_for(images) if group.order > 1 else None,
            elements=[self.describe(x) for x in ordered],
            snippet=snippet,
            stochastic=self.stochastic,
            searched=self.searched,
            pruned=self.pruned,
            candidates=self.cands,
            verification=final,
            seconds=seconds,
            notes=self.notes,
        )


def _why(report: VerificationReport | StatisticalReport) -> str:
    if isinstance(report, VerificationReport):
        f = report.failure
        return f"{f.field} at step {f.step}: {f.detail}" if f is not None else "failed"
    return f"p = {report.p_value:.3g}; fields {', '.join(report.differing[:3])}"
