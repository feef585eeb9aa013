"""What symmetrisation costs: the overhead benchmark's library (``scripts/benchmark_overhead.py`` is its CLI).

For every case (an environment with its symmetry and its ``dqn.yml`` hyperparameters) and every
method, the benchmark times, side by side and interleaved over repetitions:

- ``step``: one DQN gradient step, SB3's ``model.train(gradient_steps=1, batch_size=B)`` (replay
  sample, target forward, online forward and backward, Adam), on one shared, filled replay buffer;
- ``predict1``: ``model.predict(obs)`` on one observation;
- ``predictB``: ``model.predict(obs)`` on a batch of observations;
- ``learn``: ``model.learn(steps)`` from scratch with the entry's ``train_freq``/``gradient_steps``,
  with one or several vectorised environments (``n_envs``);
- ``threads``: plain ``learn`` on CartPole with one torch thread against torch's default (one per core).

Besides plain DQN, every measure (but ``learn``) has a *same-arithmetic reference*: plain DQN on
``|G|`` times the batch (``|G|·B`` for a step, ``|G|`` observations for ``predict1``), which does the
network arithmetic of the orbit without any symmetrisation. A method's ratio against the reference
is what the symmetrisation itself costs; its ratio against plain is what a user pays.

Every timed block is one row of the raw CSV (:data:`RAW_FIELDS`); ratios are taken per repetition
between the blocks of one round (so that load changes hit both sides) and summarised by their
median and range (or a bootstrap interval of the median: :func:`targets_table`). The rounds of one measure are
timed before the next measure's, so that a method's block is never more than a few blocks from its references'.
The load average is recorded with every block. Only public APIs are used, so the same module measures an older
checkout of the package (``--label before``).
"""

from __future__ import annotations

import csv
import io
import os
import platform
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.dqn.policies import QNetwork

from equirl import Symmetry
from equirl.files import write_atomic

__all__ = [
    "RAW_FIELDS",
    "MEASURES",
    "Case",
    "CASES",
    "run_benchmark",
    "prepared_models",
    "read_raw",
    "summarise",
    "markdown_report",
    "comparison_table",
    "plot_report",
    "report_markdown",
    "Target",
    "TARGETS",
    "VERDICTS",
    "verdict",
    "ratio_ci",
    "targets_table",
    "benchmark_plot",
    "raw_files",
    "orbit_forward_variants",
    "run_forward_modes",
    "write_rows",
]

RAW_FIELDS = (
    "label", "commit", "device", "case", "obs", "group", "G", "measure", "variant", "batch",
    "n_envs", "threads", "rep", "seconds", "calls", "load1", "time", "cpu_seconds",
)  # fmt: skip
"""Columns of the raw CSV: one row per timed block (``seconds`` of wall clock per call, averaged over ``calls``;
``cpu_seconds`` the process's CPU time per call over the same block; older CSVs have no ``cpu_seconds``)."""

MEASURES = ("step", "predict1", "predictB", "learn", "threads")
METHODS_TIMED = ("plain", "equitune", "equizero", "lambda")
REFERENCE = "reference"
LAMBDA_REFERENCE = "reference-lambda"
"""λ-equitune's own same-arithmetic reference: plain DQN at ``|G|`` times the batch whose Q-network also runs a
λ-net (the method's default architecture) forward and backward on its last hidden layer (see
:class:`LambdaReferenceQNetwork`): the λ-net's arithmetic is part of the method, not overhead."""
OWN_REFERENCE = {"lambda": LAMBDA_REFERENCE}
"""Each method's own same-arithmetic reference where it differs from :data:`REFERENCE`."""


@dataclass(frozen=True)
class Case:
    """One benchmark case: an environment, its symmetry and the ``dqn.yml`` entry to train it with.

    :param name: short label (``cartpole-C2``).
    :param obs: ``"vector"`` or ``"image"`` (how the group acts: on a vector, or on image dims).
    :param make_env: ``() -> gymnasium.Env``.
    :param make_symmetry: ``() -> Symmetry``.
    :param hyperparams: the ``dqn.yml`` entry used (plain and equivariant alike).
    :param learn_steps: env steps of the ``learn`` measure (0: not measured for this case).
    """

    name: str
    obs: str
    make_env: Callable[[], gym.Env]
    make_symmetry: Callable[[], Symmetry]
    hyperparams: str
    learn_steps: int = 0


def _catalogue(name: str) -> tuple[Callable[[], gym.Env], Callable[[], Symmetry]]:
    from equirl.envs import get_symmetry, make_env

    return (lambda: make_env(name)), (lambda: get_symmetry(name))


def _rotgrid_flat_c4() -> tuple[Callable[[], gym.Env], Callable[[], Symmetry]]:
    from equirl.envs.gridworld import rotgrid_symmetry

    return (lambda: gym.make("equirl/RotGrid-v0", obs_mode="flat")), (lambda: rotgrid_symmetry("C4", flat=True, size=7))


def _cases() -> dict[str, Case]:
    rot = "equirl/RotGrid-Corner-v0"
    mini = "MiniGrid-Empty-5x5-v0"
    specs = [
        ("cartpole-C2", "vector", _catalogue("CartPole-v1"), "CartPole-v1", 3000),
        ("rotgrid-flat-C4", "vector", _rotgrid_flat_c4(), rot, 0),
        ("rotgrid-flat-D4", "vector", _catalogue("equirl/RotGrid-v0/flat"), rot, 0),
        ("rotgrid-C4", "image", _catalogue("equirl/RotGrid-v0/C4"), rot, 0),
        ("rotgrid-D4", "image", _catalogue("equirl/RotGrid-v0"), rot, 0),
        ("minigrid-ego-C2", "image", _catalogue(mini), mini, 0),
        ("minigrid-full-D4", "image", _catalogue("MiniGrid-Empty-8x8-v0/full-D4"), mini, 2000),
    ]
    return {n: Case(n, o, mk[0], mk[1], hp, steps) for n, o, mk, hp, steps in specs}


CASES: dict[str, Case] = _cases()
"""The shipped cases: |G| = 2, 4, 8 on vector and image observations (RotGrid on the ``RotGrid-Corner``
entry, MiniGrid full view 8x8 on the ``MiniGrid-Empty-5x5`` entry)."""


# -- helpers -----------------------------------------------------------------------------------------
def _commit() -> str:
    """The git commit measured (``EQUIRL_BENCH_COMMIT`` when set, for a copy of the package outside git)."""
    from equirl.rawresults import code_version

    return os.environ.get("EQUIRL_BENCH_COMMIT") or code_version()


def _load1() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


def _silent_logger() -> Logger:
    return Logger(folder=None, output_formats=[])


def _build(case: Case, method: str, device: str, seed: int = 0, n_envs: int = 1, **overrides: Any) -> DQN:
    from equirl.agents import build_dqn, load_hyperparams

    hp = load_hyperparams(case.hyperparams)
    sym = case.make_symmetry() if method != "plain" else None
    env: Any = case.make_env() if n_envs == 1 else make_vec_env(case.make_env, n_envs=n_envs, seed=seed)
    model = build_dqn(env, method, sym, hp, seed=seed, device=device, **overrides)
    model.set_logger(_silent_logger())
    return model


class LambdaReferenceQNetwork(QNetwork):
    """SB3's plain Q-network that also runs λ-equitune's λ-net on its last hidden layer: the same-arithmetic
    reference for λ-equitune.

    ``forward(obs [N, ...]) -> Q [N, n_actions]`` returns plain DQN's Q-values exactly (the λ-net's scores ``s``
    enter as ``s - s.detach()``, an exact zero) while the λ-net runs forward, and backward when the Q-values
    need a gradient, on all ``N`` rows. Set up by :func:`with_lambda_net`.
    """

    lambda_net: torch.nn.Module

    def forward(self, obs: Any) -> torch.Tensor:
        h = self.extract_features(obs, self.features_extractor)
        layers = list(self.q_net)
        for layer in layers[:-1]:
            h = layer(h)
        s = self.lambda_net(h)
        return layers[-1](h) + (s - s.detach())


def with_lambda_net(model: DQN, hidden: int) -> DQN:
    """Turn a plain SB3 DQN into λ-equitune's same-arithmetic reference (:class:`LambdaReferenceQNetwork`):
    its online and target networks get a λ-net ``Linear(F, hidden) - ReLU - Linear(hidden, 1)`` (built as
    λ-equitune builds it) and the optimizer trains it too. Returns ``model``."""
    from equirl.averaging import LambdaReducer

    policy = model.policy
    for net in (policy.q_net, policy.q_net_target):
        features = net.net_arch[-1] if net.net_arch else net.features_dim
        net.lambda_net = LambdaReducer(features, hidden).lambda_net.to(policy.device)
        net.__class__ = LambdaReferenceQNetwork
    policy.q_net_target.load_state_dict(policy.q_net.state_dict())
    policy.optimizer = type(policy.optimizer)(policy.q_net.parameters(), **policy.optimizer.defaults)
    return model


def _lambda_hidden(case: Case) -> int:
    from equirl.agents import load_hyperparams
    from equirl.agents.hyperparams import split_hyperparams

    from equirl.config import EquivarianceConfig

    return int(
        split_hyperparams(load_hyperparams(case.hyperparams))[2].get(
            "lambda_hidden", EquivarianceConfig().lambda_hidden
        )
    )


def _calibrate(fn: Callable[[], object], target_s: float) -> int:
    """Calls per block so that one block lasts about ``target_s`` (after one warm-up call)."""
    fn()
    start = time.perf_counter()
    n = 0
    while n < 3 or time.perf_counter() - start < target_s / 4:
        fn()
        n += 1
    per_call = (time.perf_counter() - start) / n
    return max(1, int(round(target_s / per_call)))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time_block(fn: Callable[[], object], calls: int, device: str) -> tuple[float, float]:
    """``(wall seconds, process CPU seconds)`` per call over one block of ``calls`` calls."""
    _sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / calls, (time.process_time() - cpu) / calls


@dataclass
class _Variant:
    measure: str
    variant: str
    batch: int
    fn: Callable[[], object]
    n_envs: int = 1
    calls: int = 0


def _interleave(
    variants: list[_Variant],
    repeats: int,
    target_s: float,
    device: str,
    emit: Callable[[_Variant, int, tuple[float, float]], None],
) -> None:
    """Time every variant ``repeats`` times, one block each per round, in a shuffled order per round."""
    for v in variants:
        if v.calls == 0:
            v.calls = _calibrate(v.fn, target_s)
    rng = random.Random(0)
    for rep in range(repeats):
        order = list(variants)
        rng.shuffle(order)
        for v in order:
            emit(v, rep, _time_block(v.fn, v.calls, device))


# -- the measures ------------------------------------------------------------------------------------
def prepared_models(
    case: Case, device: str = "cpu", batch: int | None = None, n_obs: int = 1
) -> tuple[dict[str, DQN], int, int, np.ndarray]:
    """``(models, B, |G|, observations)`` for the step / predict measures of ``case``: one model per method of
    :data:`METHODS_TIMED` plus λ-equitune's own reference (:data:`LAMBDA_REFERENCE`, :func:`with_lambda_net`), all
    sharing one replay buffer filled by the random policy (``learning_starts`` is never reached). ``B`` is ``batch``
    or the entry's batch size; the same-arithmetic :data:`REFERENCE` is the plain model at ``|G|·B``.
    ``observations``: ``[max(|G|·n_obs, |G|), *obs_shape]`` from the buffer."""
    G = case.make_symmetry().order
    models = {m: _build(case, m, device, learning_starts=10**9) for m in METHODS_TIMED}
    models[LAMBDA_REFERENCE] = with_lambda_net(
        _build(case, "plain", device, learning_starts=10**9), _lambda_hidden(case)
    )
    plain = models["plain"]
    B = int(batch or plain.batch_size)
    plain.learn(max(G * B, G * n_obs) + 50)
    buffer = plain.replay_buffer
    assert buffer is not None
    n = buffer.size()
    if n < G * B:
        raise RuntimeError(f"{case.name}: replay buffer holds {n} < |G|·B = {G * B} transitions.")
    for model in models.values():
        model.replay_buffer = buffer
    return models, B, G, np.asarray(buffer.observations[: max(G * n_obs, G), 0])


def _micro_variants(case: Case, device: str, batch: int | None, predict_batch: int) -> list[_Variant]:
    """Gradient step and predict variants for every method plus the same-arithmetic references."""
    models, B, G, obs_batch = prepared_models(case, device, batch, predict_batch)
    obs1 = obs_batch[:1][0]
    variants: list[_Variant] = []
    for m in METHODS_TIMED:
        model = models[m]
        variants.append(_Variant("step", m, B, _train_fn(model, B)))
        variants.append(_Variant("predict1", m, 1, _predict_fn(model, obs1)))
        variants.append(_Variant("predictB", m, predict_batch, _predict_fn(model, obs_batch[:predict_batch])))
    for name, ref in ((REFERENCE, models["plain"]), (LAMBDA_REFERENCE, models[LAMBDA_REFERENCE])):
        variants += [
            _Variant("step", name, G * B, _train_fn(ref, G * B)),
            _Variant("predict1", name, G, _predict_fn(ref, obs_batch[:G])),
            _Variant("predictB", name, G * predict_batch, _predict_fn(ref, obs_batch[: G * predict_batch])),
        ]
    return variants


def _train_fn(model: DQN, batch: int) -> Callable[[], object]:
    return lambda: model.train(gradient_steps=1, batch_size=batch)


def _predict_fn(model: DQN, obs: np.ndarray) -> Callable[[], object]:
    return lambda: model.predict(obs, deterministic=True)


def _learn_variants(case: Case, device: str, n_envs_list: Sequence[int], steps: int) -> list[_Variant]:
    """``learn(steps)`` from scratch for every method and each ``n_envs`` (a fresh model per block)."""
    variants = []
    for n_envs in n_envs_list:
        for m in METHODS_TIMED:

            def run(m: str = m, n_envs: int = n_envs) -> None:
                model = _build(case, m, device, n_envs=n_envs)
                model.learn(steps)

            variants.append(_Variant("learn", m, steps, run, n_envs=n_envs, calls=1))
    return variants


def _thread_variants(case: Case, device: str, steps: int) -> list[_Variant]:
    """Plain ``learn(steps)`` with one torch thread and with one per core (torch's default)."""
    variants = []
    for n in sorted({1, os.cpu_count() or 1}):

        def run(n: int = n) -> None:
            before = torch.get_num_threads()
            torch.set_num_threads(n)
            try:
                _build(case, "plain", device).learn(steps)
            finally:
                torch.set_num_threads(before)

        variants.append(_Variant("threads", f"plain-{n}-threads", steps, run, calls=1))
    return variants


def run_benchmark(
    out_csv: str | Path,
    label: str,
    cases: Iterable[str] | None = None,
    measures: Sequence[str] = MEASURES,
    repeats: int = 5,
    learn_repeats: int = 3,
    target_s: float = 0.1,
    batch_sizes: Sequence[int | None] = (None,),
    predict_batch: int = 32,
    n_envs: Sequence[int] = (1, 4),
    learn_scale: float = 1.0,
    device: str = "cpu",
    overwrite: bool = False,
    pass_id: str = "",
    progress: Callable[[str], None] = print,
) -> Path:
    """Run the benchmark and write one raw CSV row per timed block to ``out_csv``.

    :param label: what was measured (``before``, ``after``, ``gpu``...), stored in every row.
    :param cases: names from :data:`CASES` (default: all).
    :param measures: a subset of :data:`MEASURES`.
    :param batch_sizes: gradient-step batch sizes; ``None`` is the hyperparameter entry's.
    :param learn_scale: multiplies each case's ``learn_steps``.
    :param overwrite: replace an existing ``out_csv`` (otherwise refuse).
    :param pass_id: prefix of the ``rep`` column, so that several passes (for example ``before`` and
        ``after`` alternating on a busy machine) can be pooled into one report.
    Returns the path written (through a temporary name, renamed into place at the end).
    """
    out_csv = Path(out_csv)
    if out_csv.exists() and not overwrite:
        raise FileExistsError(f"{out_csv} exists; choose another --out or pass --overwrite to replace it.")
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise ValueError(f"Unknown measure(s) {unknown}; expected some of {MEASURES}.")
    names = list(cases) if cases is not None else list(CASES)
    bad = [n for n in names if n not in CASES]
    if bad:
        raise ValueError(f"Unknown case(s) {bad}; expected some of {list(CASES)}.")
    commit, threads = _commit(), torch.get_num_threads()
    dev_name = device if not device.startswith("cuda") else f"{device}:{torch.cuda.get_device_name()}"
    dev_name = f"{dev_name} ({platform.processor() or platform.machine()}, {os.cpu_count()} cpus)"
    rows: list[dict[str, Any]] = []

    for name in names:
        case = CASES[name]
        sym = case.make_symmetry()

        def emit(v: _Variant, rep: int, t: tuple[float, float], case: Case = case, sym: Symmetry = sym) -> None:
            rows.append(
                dict(label=label, commit=commit, device=dev_name, case=case.name, obs=case.obs, group=sym.group.name,
                     G=sym.order, measure=v.measure, variant=v.variant, batch=v.batch, n_envs=v.n_envs,
                     threads=threads, rep=f"{pass_id}{rep}", seconds=f"{t[0]:.6e}", calls=v.calls,
                     load1=_load1(), time=f"{time.time():.0f}", cpu_seconds=f"{t[1]:.6e}")
            )  # fmt: skip

        micro = [m for m in measures if m not in ("learn", "threads")]
        for batch in batch_sizes if micro else []:
            progress(f"[{label}] {name} (|G| = {sym.order}): {', '.join(micro)} at batch {batch or 'default'}")
            variants = _micro_variants(case, device, batch, predict_batch)
            for measure in micro:  # one measure at a time: a method's block stays a few blocks from its references'
                _interleave([v for v in variants if v.measure == measure], repeats, target_s, device, emit)
        if "learn" in measures and case.learn_steps:
            steps = max(1, int(case.learn_steps * learn_scale))
            progress(f"[{label}] {name}: learn({steps}) with n_envs {list(n_envs)}")
            _interleave(_learn_variants(case, device, n_envs, steps), learn_repeats, target_s, device, emit)
        if "threads" in measures and case.learn_steps and case.obs == "vector":
            steps = max(1, int(case.learn_steps * learn_scale))
            progress(f"[{label}] {name}: plain learn({steps}) with 1 thread and with {os.cpu_count()}")
            _interleave(_thread_variants(case, device, steps), learn_repeats, target_s, device, emit)
        write_rows(out_csv, rows)  # partial results survive an interrupted run
    write_rows(out_csv, rows)
    return out_csv


def write_rows(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Write raw rows (:data:`RAW_FIELDS`) to ``path`` through a temporary name renamed into place."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RAW_FIELDS)
    w.writeheader()
    w.writerows(rows)
    write_atomic(path, buf.getvalue())


# -- the forward alone on an accelerator: eager, torch.compile, CUDA graphs --------------------------
def orbit_forward_variants(
    case_name: str, batch: int, device: str, modes: Sequence[str] = ("eager", "compile", "cudagraph")
) -> dict[str, Callable[[], torch.Tensor]]:
    """Inference forwards ``q_net(obs [batch, ...])`` of every method (and plain) in several execution modes.

    ``eager`` is the module as it is; ``compile`` is ``torch.compile(q_net)``; ``cudagraph`` captures
    the eager forward into a CUDA graph (CUDA devices only) and replays it on a static input. Besides
    ``plain`` and the three methods, ``reference`` is plain on ``|G|·batch`` observations. Returns
    ``{"<method>/<mode>": fn}``; a mode that fails to build is left out (a warning is printed).
    """
    case = CASES[case_name]
    G = case.make_symmetry().order
    out: dict[str, Callable[[], torch.Tensor]] = {}
    for m in (*METHODS_TIMED, REFERENCE):
        model = _build(case, "plain" if m == REFERENCE else m, device)
        q_net = model.q_net
        q_net.eval()
        space = model.observation_space
        assert space.shape is not None
        n = G * batch if m == REFERENCE else batch  # the reference: plain on |G|·batch observations
        obs = torch.as_tensor(np.stack([space.sample() for _ in range(n)]), device=device)
        for mode in modes:
            try:
                if mode == "eager":
                    out[f"{m}/eager"] = _forward_fn(q_net, obs)
                elif mode == "compile":
                    out[f"{m}/compile"] = _forward_fn(torch.compile(q_net), obs)
                    out[f"{m}/compile"]()  # compile now, outside the timed blocks
                elif mode == "cudagraph" and device.startswith("cuda"):
                    out[f"{m}/cudagraph"] = _cuda_graph(q_net, obs)
            except Exception as err:  # noqa: BLE001 - report and go on: a mode may not be supported
                print(f"warning: {case_name} {m} {mode} failed: {type(err).__name__}: {err}")
    return out


def _forward_fn(module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], torch.Tensor]:
    def forward() -> torch.Tensor:
        with torch.no_grad():
            return module(x)

    return forward


def _cuda_graph(module: torch.nn.Module, obs: torch.Tensor) -> Callable[[], torch.Tensor]:
    static_in = obs.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.no_grad():
        for _ in range(3):  # warm-up on a side stream, as torch.cuda.graphs asks
            module(static_in)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.no_grad():
        static_out = module(static_in)

    def replay() -> torch.Tensor:
        graph.replay()
        return static_out

    return replay


def run_forward_modes(
    out_csv: str | Path,
    label: str,
    device: str,
    cases: Iterable[str] | None = None,
    batch_sizes: Sequence[int] = (64, 256),
    repeats: int = 5,
    target_s: float = 0.1,
    modes: Sequence[str] = ("eager", "compile", "cudagraph"),
    overwrite: bool = False,
    progress: Callable[[str], None] = print,
) -> Path:
    """Time :func:`orbit_forward_variants` (measure ``forward-<mode>``) into a raw CSV like :func:`run_benchmark`.

    The CSV is rewritten after every case and batch size, so an interrupted run keeps what it measured.
    """
    out_csv = Path(out_csv)
    if out_csv.exists() and not overwrite:
        raise FileExistsError(f"{out_csv} exists; choose another path or pass overwrite=True.")
    rows: list[dict[str, Any]] = []
    commit, threads = _commit(), torch.get_num_threads()
    for name in cases or CASES:
        sym = CASES[name].make_symmetry()
        for batch in batch_sizes:
            progress(f"[{label}] forward modes: {name} batch {batch}")
            fns = orbit_forward_variants(name, batch, device, modes)
            variants = []
            for key, fn in fns.items():
                method, mode = key.split("/")
                n = sym.order * batch if method == REFERENCE else batch
                variants.append(_Variant(f"forward-{mode}", method, n, fn))

            def emit(v: _Variant, rep: int, t: tuple[float, float], name: str = name, sym: Symmetry = sym) -> None:
                rows.append(
                    dict(label=label, commit=commit, device=device, case=name, obs=CASES[name].obs,
                         group=sym.group.name, G=sym.order, measure=v.measure, variant=v.variant, batch=v.batch,
                         n_envs=1, threads=threads, rep=rep, seconds=f"{t[0]:.6e}", calls=v.calls,
                         load1=_load1(), time=f"{time.time():.0f}", cpu_seconds=f"{t[1]:.6e}")
                )  # fmt: skip

            _interleave(variants, repeats, target_s, device, emit)
            write_rows(out_csv, rows)
    write_rows(out_csv, rows)
    return out_csv


# -- reading and reporting ---------------------------------------------------------------------------
def read_raw(paths: Iterable[str | Path]) -> list[dict[str, str]]:
    """All rows of the raw CSVs at ``paths``."""
    rows: list[dict[str, str]] = []
    for p in paths:
        with open(p, newline="") as f:
            rows.extend(csv.DictReader(f))
    return rows


@dataclass(frozen=True)
class Summary:
    """One method's cost in one (label, case, measure, batch, n_envs): medians and paired ratios.

    ``vs_plain`` and ``vs_reference`` are ``(median, min, max)`` over repetitions of the per-round
    ratio ``t_method / t_plain`` (``t_method / t_reference``); NaN where there is no reference.
    ``vs_own_reference`` is the same against the method's own same-arithmetic reference
    (:data:`OWN_REFERENCE`: λ-equitune's includes its λ-net; the others' is :data:`REFERENCE`).
    ``clock`` is ``"cpu"`` when the times are the process's CPU time, ``"wall"`` for wall-clock times.
    """

    label: str
    case: str
    obs: str
    G: int
    measure: str
    batch: int
    n_envs: int
    method: str
    seconds: float
    vs_plain: tuple[float, float, float]
    vs_reference: tuple[float, float, float]
    load1: float
    n: int
    vs_own_reference: tuple[float, float, float] = (float("nan"),) * 3
    clock: str = "wall"
    rounds: tuple[tuple[str, tuple[float, ...]], ...] = ()
    """The per-round ratios behind ``vs_plain``, ``vs_reference`` and ``vs_own_reference``, as
    ``(("plain", ratios), ("reference", ratios), ("own-reference", ratios))`` (what the confidence intervals of
    :func:`targets_table` resample)."""
    device: str = ""
    """The ``device`` column of the rows (``cpu (x86_64, 2 cpus)``, ``cuda:NVIDIA H200 (...)``)."""

    def round_ratios(self, against: str) -> tuple[float, ...]:
        """The per-round ratios against ``"plain"``, ``"reference"`` or ``"own-reference"`` (empty when none)."""
        if against not in _AGAINST:
            raise ValueError(f"against must be one of {sorted(_AGAINST)}, got {against!r}.")
        return dict(self.rounds).get(against, ())


def _round_ratios(a: dict[str, float], b: dict[str, float]) -> tuple[float, ...]:
    """``a[rep] / b[rep]`` for every round ``rep`` both have, in the rounds' order."""
    return tuple(a[k] / b[k] for k in sorted(a) if k in b)


def _ratios(r: Sequence[float]) -> tuple[float, float, float]:
    """``(median, min, max)`` of per-round ratios (NaNs when there are none)."""
    if not r:
        return (float("nan"),) * 3
    return statistics.median(r), min(r), max(r)


def _row_seconds(r: dict[str, str], clock: str) -> tuple[float, bool]:
    """``(seconds per call, whether it is CPU time)`` of a raw row: its CPU time when ``clock`` is ``"cpu"``, the row
    has one and it was measured on a CPU (on an accelerator the CPU waits for the device), else its wall clock."""
    cpu = r.get("cpu_seconds")
    if clock == "cpu" and cpu and not r["device"].startswith("cuda"):
        return float(cpu), True
    return float(r["seconds"]), False


def summarise(rows: list[dict[str, str]], clock: str = "cpu") -> list[Summary]:
    """Medians and per-round ratios of every method, grouped as in :class:`Summary`.

    :param clock: ``"cpu"`` (default): the process's CPU time where the rows have it (it leaves out the time the
        process waited for a core on a busy machine, which wall-clock blocks count); ``"wall"``: wall clock.
    """
    if clock not in ("cpu", "wall"):
        raise ValueError(f"clock must be 'cpu' or 'wall', got {clock!r}.")
    groups: dict[tuple[Any, ...], dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    info: dict[tuple[Any, ...], tuple[str, int]] = {}
    loads: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    on_cpu: dict[tuple[Any, ...], bool] = {}
    devices: dict[tuple[Any, ...], str] = {}
    for r in rows:
        key = (r["label"], r["case"], r["measure"], int(r["n_envs"]))
        batch = int(r["batch"])
        seconds, is_cpu = _row_seconds(r, clock)
        groups[key][r["variant"] + f"@{batch}"][r["rep"]] = seconds
        info[key] = (r["obs"], int(r["G"]))
        loads[key].append(float(r["load1"]))
        on_cpu[key] = on_cpu.get(key, True) and is_cpu
        devices[key] = r.get("device", "")
    out = []
    for key, by in groups.items():
        label, case, measure, n_envs = key
        obs, G = info[key]
        for vb, times in by.items():
            variant, batch_s = vb.split("@")
            batch = int(batch_s)
            if variant in (REFERENCE, LAMBDA_REFERENCE):
                continue
            plain = by.get(f"plain@{batch}", by.get(f"plain-1-threads@{batch}", {}))
            ref_batch = G * batch if measure in ("step", "predictB") or measure.startswith("forward") else -1
            ref_batch = G if measure == "predict1" else ref_batch
            ref = by.get(f"{REFERENCE}@{ref_batch}", {})
            own = by.get(f"{OWN_REFERENCE.get(variant, REFERENCE)}@{ref_batch}", {})
            rounds = {"plain": _round_ratios(times, plain), "reference": _round_ratios(times, ref),
                      "own-reference": _round_ratios(times, own)}  # fmt: skip
            out.append(
                Summary(label, case, obs, G, measure, batch, n_envs, variant, statistics.median(times.values()),
                        _ratios(rounds["plain"]), _ratios(rounds["reference"]), statistics.median(loads[key]),
                        len(times), _ratios(rounds["own-reference"]), "cpu" if on_cpu[key] else "wall",
                        tuple(rounds.items()), devices[key])
            )  # fmt: skip
    return out


_MEASURE_TITLES = {
    "step": "Gradient step, `model.train(1, B)` (B = the entry's batch size)",
    "predict1": "`model.predict(obs)`, one observation",
    "predictB": "`model.predict(obs)`, a batch of observations",
    "learn": "Whole run, `model.learn(steps)` from scratch (the entry's train_freq / gradient_steps)",
    "threads": "Plain DQN `model.learn(steps)`: torch threads (columns: time / time with 1 thread)",
    "forward-eager": "Inference forward `q_net(obs)`, eager",
    "forward-compile": "Inference forward `q_net(obs)`, `torch.compile`",
    "forward-cudagraph": "Inference forward `q_net(obs)`, CUDA graph replay",
}


def _fmt(r: tuple[float, float, float]) -> str:
    if r[0] != r[0]:  # NaN
        return ""
    return f"{r[0]:.2f} ({r[1]:.2f}-{r[2]:.2f})"


def markdown_report(summaries: list[Summary]) -> str:
    """Markdown tables: per label and measure, one row per case (and batch / n_envs), one column pair per method.

    Cells are ``median (min-max)`` of the paired ratios; ``ref`` is the same-arithmetic reference
    (plain DQN at ``|G|`` times the batch), ``own ref`` a method's own one where it differs
    (:data:`OWN_REFERENCE`: λ-equitune's includes the λ-net).
    """
    lines: list[str] = []
    by_label: dict[str, list[Summary]] = defaultdict(list)
    for s in summaries:
        by_label[s.label].append(s)
    for label, ss in by_label.items():
        clocks = {s.clock for s in ss}
        clock = " and ".join(sorted("process CPU time" if c == "cpu" else "wall clock" for c in clocks))
        lines += [f"### {label}", "", f"Times: {clock}.", ""]
        for measure in [m for m in _MEASURE_TITLES if any(s.measure == m for s in ss)]:
            rows = [s for s in ss if s.measure == measure]
            named = list(METHODS_TIMED) + sorted({s.method for s in rows if s.method not in METHODS_TIMED})
            methods = [m for m in named if m not in ("plain", "plain-1-threads") and any(s.method == m for s in rows)]
            has_ref = any(s.vs_reference[0] == s.vs_reference[0] for s in rows)
            own = {m for m in OWN_REFERENCE if any(s.method == m and s.vs_own_reference[0] == s.vs_own_reference[0]
                                                   for s in rows)}  # fmt: skip
            lines += [f"{_MEASURE_TITLES[measure]}; ratio median (min-max) over n rounds", ""]
            head = "| case | \\|G\\| | batch | n_envs | plain ms | n | load |"
            sep = "|---|---|---|---|---|---|---|"
            for m in methods:
                head += (
                    f" {m} / plain |" + (f" {m} / ref |" if has_ref else "") + (f" {m} / own ref |" if m in own else "")
                )
                sep += "---|" + ("---|" if has_ref else "") + ("---|" if m in own else "")
            if has_ref:
                head += " ref / plain |"
                sep += "---|"
            lines += [head, sep]
            keys = sorted({(s.case, s.batch, s.n_envs) for s in rows}, key=lambda k: (list(CASES).index(k[0])
                          if k[0] in CASES else 99, k[1], k[2]))  # fmt: skip
            for case, batch, n_envs in keys:
                cell = {s.method: s for s in rows if (s.case, s.batch, s.n_envs) == (case, batch, n_envs)}
                p = cell.get("plain", cell.get("plain-1-threads"))
                if p is None:
                    continue
                line = f"| {case} | {p.G} | {batch} | {n_envs} | {p.seconds * 1e3:.3f} | {p.n} | {p.load1:.1f} |"
                for m in methods:
                    c = cell.get(m)
                    line += f" {_fmt(c.vs_plain) if c else ''} |" + (
                        f" {_fmt(c.vs_reference) if c else ''} |" if has_ref else ""
                    )
                    if m in own:
                        line += f" {_fmt(c.vs_own_reference) if c else ''} |"
                if has_ref:
                    # reference / plain = (method / plain) / (method / reference), from the medians
                    ratio = cell[methods[0]].vs_plain[0] / cell[methods[0]].vs_reference[0] if methods else float("nan")
                    line += f" {ratio:.2f} |"
                lines.append(line)
            lines.append("")
    return "\n".join(lines)


_AGAINST = {"plain": "vs_plain", "reference": "vs_reference", "own-reference": "vs_own_reference"}


def comparison_table(summaries: list[Summary], measure: str, against: str, labels: Sequence[str]) -> str:
    """One markdown table comparing labels (``before``, ``after``): cells ``median₁ → median₂ (min-max)`` of each
    method's ratio ``against`` ``"plain"``, ``"reference"`` or ``"own-reference"`` (:data:`OWN_REFERENCE`), with
    the range over rounds of the last label; one row per case (and n_envs where it varies)."""
    if against not in _AGAINST:
        raise ValueError(f"against must be one of {sorted(_AGAINST)}, got {against!r}.")
    rows = [s for s in summaries if s.measure == measure and s.label in labels and s.method in METHODS_TIMED[1:]]
    keys = sorted({(s.case, s.batch, s.n_envs) for s in rows},
                  key=lambda k: (list(CASES).index(k[0]) if k[0] in CASES else 99, k[1], k[2]))  # fmt: skip
    methods = [m for m in METHODS_TIMED[1:] if any(s.method == m for s in rows)]
    arrow = " → ".join(labels)
    lines = [
        "| case | \\|G\\| | n_envs | " + " | ".join(f"{m} / {against} ({arrow})" for m in methods) + " | load |",
        "|---|---|---|" + "---|" * len(methods) + "---|",
    ]
    for case, batch, n_envs in keys:
        cells, loads, G = [], [], 0
        for m in methods:
            vals: list[tuple[float, float, float]] = []
            for label in labels:
                hit = [
                    s for s in rows if (s.case, s.batch, s.n_envs, s.method, s.label) == (case, batch, n_envs, m, label)
                ]
                if hit:
                    G = hit[0].G
                    loads.append(hit[0].load1)
                    vals.append(getattr(hit[0], _AGAINST[against]))
                else:
                    vals.append((float("nan"),) * 3)
            cell = " → ".join("" if v[0] != v[0] else f"{v[0]:.2f}" for v in vals)
            last = vals[-1]
            cells.append(cell + (f" ({last[1]:.2f}-{last[2]:.2f})" if last[0] == last[0] else ""))
        load = f"{statistics.median(loads):.1f}" if loads else ""
        lines.append(f"| {case} | {G} | {n_envs} | " + " | ".join(cells) + f" | {load} |")
    return "\n".join(lines)


COMPARISONS: tuple[tuple[str, str], ...] = (
    ("step", "reference"),
    ("step", "own-reference"),
    ("step", "plain"),
    ("predict1", "plain"),
    ("predict1", "reference"),
    ("predictB", "reference"),
    ("learn", "plain"),
)
"""The ``(measure, against)`` pairs of the compact tables at the top of a ``report --compare`` file."""


def report_markdown(summaries: list[Summary], compare: Sequence[str] | None = None) -> str:
    """The markdown file that ``scripts/benchmark_overhead.py report --md`` writes (and ``make tables`` rebuilds):
    the full :func:`markdown_report`, preceded, with ``compare = (label1, label2)``, by one compact
    :func:`comparison_table` per :data:`COMPARISONS` pair (``"step, ratio against reference:"`` and its table...)."""
    text = markdown_report(summaries)
    if compare:
        if len(compare) != 2:
            raise ValueError(f"compare takes two labels (e.g. before after), got {list(compare)}.")
        compact: list[str] = []
        for measure, against in COMPARISONS:
            compact += [f"{measure}, ratio against {against}:", "", comparison_table(summaries, measure, against,
                        compare), ""]  # fmt: skip
        text = "\n".join(compact) + "\n" + text
    return text + "\n"


@dataclass(frozen=True)
class Target:
    """A cost target: ``measure`` of each of ``methods`` against ``against`` (``"plain"``, ``"reference"`` or
    ``"own-reference"``) at most ``bound``, on the cases of group order ``G``, at batch ``batch`` and on devices
    whose name starts with ``device`` (None: any)."""

    measure: str
    against: str
    bound: float
    methods: tuple[str, ...]
    G: int | None = None
    batch: int | None = None
    device: str | None = "cpu"

    def covers(self, s: Summary) -> bool:
        """Whether the summary ``s`` is one of this target's cells (one environment, this measure, order, batch,
        device and a method named)."""
        return (s.measure == self.measure and s.method in self.methods and s.n_envs == 1
                and (self.G is None or s.G == self.G) and (self.batch is None or s.batch == self.batch)
                and (self.device is None or s.device.startswith(self.device)))  # fmt: skip

    def describe(self) -> str:
        """``step / own-reference <= 1.05 (equitune, equizero, lambda; |G| = 8; batch 256; cuda)``."""
        scope = [", ".join(self.methods)]
        scope += [f"|G| = {self.G}"] if self.G is not None else []
        scope += [f"batch {self.batch}"] if self.batch is not None else []
        scope += [self.device] if self.device not in (None, "cpu") else []
        return f"{self.measure} / {self.against} <= {self.bound:g} ({'; '.join(scope)})"


METHODS_TARGETED = METHODS_TIMED[1:]
"""The symmetrised methods the targets are set for (every timed method but plain)."""
TARGETS: tuple[Target, ...] = (
    Target("step", "own-reference", 1.05, METHODS_TARGETED),
    Target("predict1", "plain", 1.25, ("equitune",), G=2),
    Target("predict1", "plain", 1.5, ("equizero", "lambda"), G=2),
    Target("step", "plain", 1.3, METHODS_TARGETED, G=8, batch=256, device="cuda"),
)
"""Issue 13's targets. On CPU: a gradient step within 1.05× of each method's own same-arithmetic reference at every
|G|, and ``predict`` on one observation at |G| = 2 within 1.25× of plain for equitune and 1.5× for equizero and λ.
On a CUDA device: a gradient step at |G| = 8 and batch 256 within 1.3× of plain."""

VERDICTS = ("met", "missed", "unresolved")
"""A target is *met* when the upper end of the median's confidence interval is at most the bound, *missed* when
the lower end is above it, and *unresolved* when the interval contains the bound."""


VERDICTS_NOTE = "Verdicts: "
"""How the line under :func:`targets_table`'s table begins (``make tables`` replaces it with the table)."""


def verdict(interval: tuple[float, float], bound: float) -> str:
    """One of :data:`VERDICTS` for the confidence interval ``(low, high)`` of a ratio and its ``bound``."""
    low, high = interval
    if high <= bound:
        return "met"
    if low > bound:
        return "missed"
    return "unresolved"


def ratio_ci(ratios: Sequence[float], confidence: float = 0.95, reps: int | None = None,
             seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """Percentile bootstrap interval of the median of per-round ratios (rounds resampled with replacement)."""
    from equirl.agents import stats

    if len(ratios) < 2:
        raise ValueError(f"A confidence interval needs at least two rounds, got {len(ratios)}.")
    return stats.bootstrap_ci(list(ratios), stats.median, reps=reps or stats.DEFAULT_REPS, confidence=confidence,
                              seed=seed)  # fmt: skip


def targets_table(summaries: list[Summary], targets: Sequence[Target] = TARGETS, confidence: float = 0.95,
                  seed: int = 0, label: str | None = None) -> str:  # fmt: skip
    """A markdown table of every target in ``targets`` against every cell it covers (:meth:`Target.covers`): the
    median of the per-round ratios, its percentile bootstrap ``confidence`` interval (:func:`ratio_ci`), n rounds and
    the :func:`verdict`; then one line counting the verdicts of each target that covers a cell. Of one label only
    (several would pool unlike code): ``label``, or the only label of ``summaries``."""
    labels = sorted({s.label for s in summaries})
    if label is not None:
        if label not in labels:
            raise ValueError(f"no rows labelled {label!r}; the rows have labels {labels}.")
        summaries, labels = [s for s in summaries if s.label == label], [label]
    if len(labels) != 1:
        raise ValueError(f"targets_table takes the rows of one label, got {labels}; pass one label's raw CSVs.")
    pct = f"{100 * confidence:g}%"
    lines = [
        f"| measure | against | target | case | \\|G\\| | batch | method | median [{pct} CI] | n | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    tallies: list[str] = []
    order = {c: i for i, c in enumerate(CASES)}
    for t in targets:
        counts = dict.fromkeys(VERDICTS, 0)
        rows = [s for s in summaries if t.covers(s)]
        if not rows:
            continue
        rows.sort(key=lambda s: (order.get(s.case, 99), s.case, s.batch, t.methods.index(s.method)))
        for s in rows:
            ratios = s.round_ratios(t.against)
            if len(ratios) < 2:
                continue
            med = statistics.median(ratios)
            lo, hi = ratio_ci(ratios, confidence, seed=seed)
            v = verdict((lo, hi), t.bound)
            counts[v] += 1
            lines.append(f"| {t.measure} | {t.against} | <= {t.bound:g} | {s.case} | {s.G} | {s.batch} | {s.method} | "
                         f"{med:.3f} [{lo:.3f}, {hi:.3f}] | {len(ratios)} | {v} |")  # fmt: skip
        tallies.append(f"{t.describe()}: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    verdicts = "; ".join(tallies) if tallies else "no cell of any target in these rows"
    return "\n".join(lines) + "\n\n" + VERDICTS_NOTE + verdicts + ".\n"


def plot_report(summaries: list[Summary], path: str | Path, measure: str = "step", dpi: int = 110,
                interval: str = "range") -> Path:  # fmt: skip
    """Bar chart of each method's ratio against its own same-arithmetic reference (:data:`OWN_REFERENCE`), per case
    and label (one panel per label, in sorted order), with error bars over rounds: their range (``interval="range"``)
    or the 95% bootstrap interval of the median (``"ci"``, :func:`ratio_ci`); written by
    :func:`equirl.figures.save_png` (the same bytes from the same summaries). Returns ``path``."""
    if interval not in ("range", "ci"):
        raise ValueError(f"interval must be 'range' or 'ci', got {interval!r}.")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from equirl.figures import save_png

    rows = [s for s in summaries if s.measure == measure and s.method != "plain" and s.n_envs == 1]
    if not rows:
        raise ValueError(f"No {measure!r} rows with n_envs = 1 to plot; the summaries have measures "
                         f"{sorted({s.measure for s in summaries})}.")  # fmt: skip
    labels = sorted({s.label for s in rows})
    cases = [c for c in CASES if any(s.case == c for s in rows)]
    methods = [m for m in METHODS_TIMED if m != "plain"]
    fig, axes = plt.subplots(1, len(labels), figsize=(6 * len(labels), 3.8), squeeze=False, sharey=True)
    width = 0.8 / len(methods)
    for ax, label in zip(axes[0], labels, strict=True):
        for i, m in enumerate(methods):
            vals, lo, hi = [], [], []
            for c in cases:
                s = [x for x in rows if x.label == label and x.case == c and x.method == m]
                r = s[0].vs_own_reference if s else (float("nan"),) * 3
                against = "own-reference"
                if r[0] != r[0] and s:  # no own reference measured (older CSVs): the plain one
                    r, against = s[0].vs_reference, "reference"
                if interval == "ci" and s and len(s[0].round_ratios(against)) > 1:
                    r = (r[0], *ratio_ci(s[0].round_ratios(against)))
                vals.append(r[0])
                lo.append(r[0] - r[1])
                hi.append(r[2] - r[0])
            ax.bar(np.arange(len(cases)) + (i - 1) * width, vals, width, yerr=[lo, hi], label=m, capsize=2)
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.axhline(1.05, color="k", ls="--", lw=0.8, label="target 1.05")
        ax.set_xticks(np.arange(len(cases)), cases, rotation=30, ha="right", fontsize=8)
        bars = "median, range over rounds" if interval == "range" else "median, 95% bootstrap CI"
        ax.set_title(f"{label}: gradient step / same-arithmetic reference (λ: with its λ-net)\n{bars}", fontsize=9)
    axes[0][0].set_ylabel("time ratio")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, path, dpi=dpi)


def raw_files(folders: Sequence[str | Path], root: str | Path = ".") -> list[Path]:
    """The benchmark's raw CSVs in ``folders`` (relative to ``root``; only the folders' own ``*.csv``, sorted)."""
    files = sorted(f for d in folders for f in (Path(root) / d).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"No raw CSVs of the overhead benchmark in {[str(d) for d in folders]} (under {root}).")
    return files


def benchmark_plot(folders: Sequence[str | Path], path: str | Path, root: str | Path = ".", measure: str = "step",
                   dpi: int = 110, interval: str = "range") -> Path:  # fmt: skip
    """:func:`plot_report` of the raw CSVs in ``folders`` (process CPU time where the rows have it), written to
    ``path``: the figure of a ``make tables`` entry of style ``overhead-benchmark`` with ``plot: PATH`` (its
    ``plot_options`` may set ``interval: ci``)."""
    return plot_report(summarise(read_raw(raw_files(folders, root))), path, measure, dpi, interval)
