"""The lockstep verifier: is a declared map really a symmetry of an environment's dynamics?

For each seed and each group element ``g``, two copies of the environment run side by side: the
original ``A`` and a twin ``B`` put into the mapped state ``g·s`` (by a :class:`~envs.mappers.StateMapper`).
Both are stepped, ``A`` with a random action ``a`` and ``B`` with ``ρ(g)·a``; after every step the
verifier checks ``obs_B == g·obs_A``, ``reward_B == reward_A`` and equal ``terminated``/``truncated``.
When an episode ends, ``A`` is reset (new seed) and ``B`` re-mapped. For mappers that are not exact
(physics engines), ``B`` is re-synced from ``A`` every ``horizon`` steps and the report says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from equirl.envs.mappers import StateMapper, get_state_mapper, observe

from equirl import Symmetry
from equirl.extras import progress_bar

__all__ = ["Mismatch", "VerificationReport", "verify_symmetry", "action_table"]


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
    action: int | None
    mapped_action: int | None
    detail: str


@dataclass
class VerificationReport:
    """What :func:`verify_symmetry` found.

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


def _resolve(
    env: str | Callable[[], gym.Env], symmetry: Symmetry | str, state_mapper: StateMapper | None
) -> tuple[Callable[[], gym.Env], str, Symmetry, StateMapper]:
    from equirl.envs.catalog import get_symmetry, make_env

    if isinstance(env, str):
        env_name = env

        def factory() -> gym.Env:
            return make_env(env_name)
    else:
        factory = env
        env_name = getattr(env, "__name__", repr(env))
    sym_name = symmetry if isinstance(symmetry, str) else (env_name if isinstance(env, str) else symmetry.name)
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
        if state_mapper is None:
            raise err or KeyError(
                f"verify_symmetry: no state mapper for {env_name!r} / {sym_name!r}; pass state_mapper=... "
                "(an envs.StateMapper) or register one with envs.register_state_mapper."
            )
    return factory, env_name, sym, state_mapper


def verify_symmetry(
    env: str | Callable[[], gym.Env],
    symmetry: Symmetry | str | None = None,
    *,
    state_mapper: StateMapper | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 500,
    elements: Sequence[int] | None = None,
    obs_atol: float = 1e-6,
    obs_rtol: float = 0.0,
    reward_atol: float = 1e-9,
    horizon: int | None = None,
    progress: bool = False,
) -> VerificationReport:
    """Step ``env`` and its mapped twin in lockstep and report whether ``symmetry`` holds.

    :param env: a catalogue name / gymnasium id (built with :func:`envs.make_env`) or a no-argument factory.
    :param symmetry: a :class:`equirl.Symmetry` or a catalogue name (default: ``env``'s catalogue entry).
    :param state_mapper: how to map states; default: the one registered under the symmetry's or env's
        catalogue name (a KeyError with advice when there is none).
    :param seeds: one run per seed and element; ``A`` is reset with the seed, later episodes with
        ``seed·10007 + episode``; random actions come from ``np.random.default_rng(seed)``.
    :param steps: lockstep steps per run.
    :param elements: group element indices to check (default: every non-identity element).
    :param obs_atol: absolute tolerance on observations: ok when ``|obs_B - g·obs_A| <= obs_atol + obs_rtol·|g·obs_A|``.
    :param obs_rtol: relative tolerance on observations.
    :param reward_atol: absolute tolerance on rewards.
    :param horizon: for inexact mappers, steps between re-syncs (default: the mapper's).
    :param progress: show a tqdm bar.
    :return: a :class:`VerificationReport`; it stops at the first failing step.
    """
    if symmetry is None:
        if not isinstance(env, str):
            raise TypeError("verify_symmetry: give a symmetry when env is a factory.")
        symmetry = env
    factory, env_name, sym, mapper = _resolve(env, symmetry, state_mapper)
    sym_label = symmetry if isinstance(symmetry, str) else (sym.name or "symmetry")
    group = sym.group
    elems = [g for g in range(1, group.order)] if elements is None else [int(g) for g in elements]
    resync = None if mapper.exact else (horizon or mapper.horizon)
    mode = (
        "exact: states mapped once per episode"
        if resync is None
        else (f"short-horizon: twin re-synced from the mapped state every {resync} steps")
    )
    notes = [mapper.note] if mapper.note else []
    if mapper.observe_raw is None:
        notes.append("the mapper cannot observe a state without stepping: observations compared from step 1")

    env_a, env_b = factory(), factory()
    if not isinstance(env_a.action_space, gym.spaces.Discrete):
        raise TypeError(f"verify_symmetry supports Discrete action spaces, got {env_a.action_space}.")
    n_actions = int(env_a.action_space.n)
    act_tab = action_table(sym, n_actions)
    obs_shape = tuple(env_a.observation_space.shape or ())
    sym.validate(obs_shape, (n_actions,))

    max_obs = 0.0
    max_rew = 0.0
    checked = 0
    episodes = 0
    failure: Mismatch | None = None
    t0 = time.perf_counter()
    bar = progress_bar(len(seeds) * len(elems) * steps, f"verify {sym_label}", enabled=progress)

    obs_maps = _ObsMaps(sym, obs_shape)

    def compare_obs(g: int, oa: Any, ob: Any) -> tuple[float, tuple[int, ...] | None, bool]:
        expected = obs_maps.apply(g, oa)
        got = np.asarray(ob, dtype=np.float64)
        if got.shape != expected.shape:
            return float("inf"), None, False
        if got.size == 0:
            return 0.0, None, True
        diff = np.abs(got - expected)
        worst = int(diff.argmax())
        d = float(diff.flat[worst])
        if d <= obs_atol and obs_rtol == 0.0:
            return d, None, True
        bad = diff > obs_atol + obs_rtol * np.abs(expected)
        idx = tuple(int(i) for i in np.unravel_index(worst, diff.shape))
        return d, idx, not bool(bad.any())

    try:
        for seed in seeds:
            for g in elems:
                gname = group.element_names[g]
                rng = np.random.default_rng(seed)
                episode = 0

                def sync(reset_seed: int | None, g: int = g) -> Any:
                    if reset_seed is not None:
                        oa, _ = env_a.reset(seed=reset_seed)
                        env_b.reset(seed=reset_seed)
                    else:
                        oa = None
                    mapper.set_state(env_b, mapper.map_state(mapper.get_state(env_a), g, sym))
                    return oa

                oa = sync(seed)
                ob = observe(env_b, mapper)
                if ob is not None:
                    d, idx, good = compare_obs(g, oa, ob)
                    max_obs = max(max_obs, d)
                    if not good:
                        failure = Mismatch(
                            seed,
                            gname,
                            0,
                            0,
                            "observation",
                            d,
                            idx,
                            None,
                            None,
                            f"after mapping the reset state, obs differs from g·obs by {d:.3g} at {idx}",
                        )
                        raise StopIteration
                for t in range(1, steps + 1):
                    a = int(rng.integers(n_actions))
                    b = int(act_tab[g, a])
                    oa, ra, ta, tra, _ = env_a.step(a)
                    ob, rb, tb, trb, _ = env_b.step(b)
                    checked += 1
                    bar.update(1)
                    d, idx, good = compare_obs(g, oa, ob)
                    max_obs = max(max_obs, d)
                    if not good:
                        failure = Mismatch(
                            seed,
                            gname,
                            t,
                            episode,
                            "observation",
                            d,
                            idx,
                            a,
                            b,
                            f"after action {a} (twin {b}) the twin's obs differs from g·obs by {d:.3g} at index {idx} "
                            f"(twin {_at(ob, idx)}, g·obs {_at(obs_maps.apply(g, oa), idx)})",
                        )
                        raise StopIteration
                    dr = abs(float(ra) - float(rb))
                    max_rew = max(max_rew, dr)
                    if dr > reward_atol:
                        failure = Mismatch(
                            seed,
                            gname,
                            t,
                            episode,
                            "reward",
                            dr,
                            None,
                            a,
                            b,
                            f"after action {a} (twin {b}) reward {ra!r} vs twin {rb!r} (diff {dr:.3g})",
                        )
                        raise StopIteration
                    for fname, x, y in (("terminated", ta, tb), ("truncated", tra, trb)):
                        if bool(x) != bool(y):
                            failure = Mismatch(
                                seed,
                                gname,
                                t,
                                episode,
                                fname,
                                1.0,
                                None,
                                a,
                                b,
                                f"after action {a} (twin {b}) {fname} {bool(x)} vs twin {bool(y)}",
                            )
                            raise StopIteration
                    if ta or tra:
                        episode += 1
                        episodes += 1
                        sync(seed * 10007 + episode)
                    elif resync is not None and t % resync == 0:
                        sync(None)
                episodes += 1  # the unfinished last episode
    except StopIteration:
        pass
    finally:
        bar.close()
        env_a.close()
        env_b.close()
    seconds = time.perf_counter() - t0
    return VerificationReport(
        ok=failure is None,
        env=env_name,
        symmetry=sym_label,
        group=group.name,
        mode=mode,
        seeds=list(seeds),
        elements=[group.element_names[g] for g in elems],
        steps_checked=checked,
        episodes=episodes,
        max_obs_diff=max_obs,
        max_reward_diff=max_rew,
        obs_atol=obs_atol,
        obs_rtol=obs_rtol,
        reward_atol=reward_atol,
        seconds=seconds,
        failure=failure,
        notes=notes,
    )
