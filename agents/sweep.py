"""Sample-efficiency sweeps: environments × methods × seeds, run locally or on a Ray cluster, then aggregated.

The library behind ``equirl bench`` (and ``scripts/benchmark.py``). Three parts, usable on their own:

* **Runs.** :class:`RunSpec` names one training run (environment, method, seed, budget);
  :func:`run_one` trains it from scratch with :func:`agents.train` and the environment's entry in
  ``agents/hyperparams/dqn.yml`` and writes ``<out>/<env>/<method>/seed<k>/curve.csv`` and
  ``summary.json``. ``summary.json`` is written last (atomically) and marks the run as finished, so
  :func:`pending` skips it and an interrupted sweep resumes where it stopped.
* **Backends.** :func:`run_local` (a process pool, one torch thread per worker) and :func:`run_ray`
  (one Ray task per run, ``num_cpus=1`` each, on the cluster at ``address`` or a local instance)
  run the same :func:`run_one`; both show a tqdm bar over runs and never stop on one run's error.
* **Aggregation** (numpy only, no torch): :func:`steps_to_threshold`, :func:`normalised_auc`,
  :func:`quantile`, :func:`aggregate`, :func:`markdown_table`, :func:`plot_curves`, over the raw
  results collected by :func:`collect` into two CSV files (``runs.csv``, ``curves.csv``).

Evaluation time is measured separately (the evaluation environments are timed from their first
``reset`` to ``close``) and subtracted, so ``train_seconds`` and ``steps_per_second`` are the cost of
acting and learning only.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from equirl.agents.training import ALL_METHODS

from equirl.extras import progress_bar, require

__all__ = [
    "DEFAULT_CONFIG",
    "EnvBenchmark",
    "RunSpec",
    "load_config",
    "make_specs",
    "run_one",
    "pending",
    "run_local",
    "run_ray",
    "steps_to_threshold",
    "normalised_auc",
    "collapsed_after_solving",
    "quantile",
    "collect",
    "write_raw",
    "read_raw",
    "aggregate",
    "markdown_table",
    "plot_curves",
]

DEFAULT_CONFIG = Path(__file__).resolve().parent / "hyperparams" / "benchmark.yml"
Values = Sequence[float] | np.ndarray
"""A 1-D sequence of numbers (list or numpy array)."""

CURVE_FIELDS = ("timesteps", "mean_return", "std_return", "wall_seconds", "train_seconds")
RUN_FIELDS = (
    "env_id",
    "method",
    "seed",
    "timesteps",
    "group_order",
    "train_seconds",
    "eval_seconds",
    "total_seconds",
    "steps_per_second",
    "final_return",
    "final_return_std",
)


# -- configuration -------------------------------------------------------------------------------
@dataclass
class EnvBenchmark:
    """The benchmark's settings for one environment (one entry of ``benchmark_config.yml``).

    :param env_id: catalogue name (``envs.make_env`` / ``envs.get_symmetry``) and key in ``dqn.yml``.
    :param timesteps: environment steps per run (the same for every method and seed).
    :param eval_freq: evaluate the greedy policy every this many steps.
    :param threshold: the solve threshold on the mean evaluation return.
    :param baseline: the return of a random policy (the floor used to call a drop a collapse).
    :param n_eval_episodes: episodes per evaluation.
    :param keep_schedule: keep the entry's exploration schedule in absolute steps when ``timesteps`` is
        shorter than the entry's ``n_timesteps`` (the run is then the first ``timesteps`` of the full one).
    :param overrides: DQN arguments that replace the entry's (documented in the config).
    :param hyperparams_from: the ``dqn.yml`` entry to use (default: ``env_id``).
    :param hyperparams: a fallback entry, used only while ``dqn.yml`` has none for ``env_id``.
    """

    env_id: str
    timesteps: int
    eval_freq: int
    threshold: float
    baseline: float
    n_eval_episodes: int = 10
    keep_schedule: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)
    hyperparams_from: str | None = None
    hyperparams: dict[str, Any] | None = None


def load_config(path: str | Path | None = None) -> dict[str, EnvBenchmark]:
    """The per-environment settings in ``path`` (default ``scripts/benchmark_config.yml``), by env id."""
    file = Path(path) if path else DEFAULT_CONFIG
    with open(file) as f:
        data = yaml.safe_load(f) or {}
    defaults = dict(data.get("defaults") or {})
    envs = data.get("environments") or {}
    if not isinstance(envs, dict) or not envs:
        raise ValueError(f"{file}: expected a non-empty 'environments:' mapping from env ids to settings.")
    out: dict[str, EnvBenchmark] = {}
    for env_id, entry in envs.items():
        merged = {**defaults, **(entry or {})}
        merged.pop("seeds", None)
        try:
            out[env_id] = EnvBenchmark(
                env_id=env_id,
                timesteps=int(float(merged.pop("timesteps"))),
                eval_freq=int(float(merged.pop("eval_freq"))),
                threshold=float(merged.pop("threshold")),
                baseline=float(merged.pop("baseline")),
                **merged,
            )
        except (KeyError, TypeError) as e:
            raise ValueError(
                f"{file}: entry {env_id!r} is incomplete or has unknown keys ({e}); "
                "each needs timesteps, eval_freq, threshold and baseline."
            ) from e
    return out


def default_seeds(path: str | Path | None = None) -> int:
    """``defaults.seeds`` of the config (number of seeds per environment and method; 5 if absent)."""
    with open(Path(path) if path else DEFAULT_CONFIG) as f:
        data = yaml.safe_load(f) or {}
    return int((data.get("defaults") or {}).get("seeds", 5))


@dataclass(frozen=True)
class RunSpec:
    """One training run: ``method`` on ``bench.env_id`` from scratch with ``seed``."""

    bench: EnvBenchmark
    method: str
    seed: int

    @property
    def run_id(self) -> str:
        """``<env>/<method>/seed<k>`` with ``/`` in the env id replaced by ``_``."""
        return f"{self.bench.env_id.replace('/', '_')}/{self.method}/seed{self.seed}"

    def out_dir(self, root: str | Path) -> Path:
        """Where this run's ``curve.csv`` and ``summary.json`` go."""
        return Path(root) / self.run_id

    def __hash__(self) -> int:
        return hash((self.bench.env_id, self.method, self.seed))


def make_specs(
    benches: Iterable[EnvBenchmark], methods: Sequence[str], seeds: Sequence[int], order: str = "seed"
) -> list[RunSpec]:
    """All runs of the grid, methods innermost, so that a cut-off sweep has whole seeds.

    ``order="seed"``: seed-major (every environment at the first seeds first); ``"env"``: environment-major
    (every seed of the first environments first, in the order given).
    """
    benches = list(benches)
    if order == "env":
        return [RunSpec(b, m, s) for b in benches for s in seeds for m in methods]
    if order != "seed":
        raise ValueError(f"order must be 'seed' or 'env', got {order!r}.")
    return [RunSpec(b, m, s) for s in seeds for b in benches for m in methods]


# -- one run -------------------------------------------------------------------------------------
class _TimedEnvFactory:
    """Wraps ``env_factory``: the first env (training) is returned as is; later ones (evaluation) are timed.

    Each evaluation environment adds the time from its first ``reset`` to its ``close`` to ``durations``.
    """

    def __init__(self, env_factory: Callable[[], Any]) -> None:
        self.env_factory = env_factory
        self.calls = 0
        self.durations: list[float] = []

    def __call__(self) -> Any:
        import gymnasium as gym

        env = self.env_factory()
        self.calls += 1
        if self.calls == 1:
            return env
        durations = self.durations

        class _EvalTimer(gym.Wrapper):  # type: ignore[type-arg]
            _start: float | None = None

            def reset(self, **kwargs: Any) -> Any:
                if self._start is None:
                    self._start = time.perf_counter()
                return self.env.reset(**kwargs)

            def close(self) -> None:
                if self._start is not None:
                    durations.append(time.perf_counter() - self._start)
                    self._start = None
                self.env.close()

        return _EvalTimer(env)


def _env_factory(env_id: str) -> Callable[[], Any]:
    from equirl import envs

    make = getattr(envs, "make_env", None)
    if make is not None:
        return lambda: make(env_id)
    import gymnasium as gym

    return lambda: gym.make(env_id)


def _hyperparams(bench: EnvBenchmark) -> dict[str, Any]:
    from equirl.agents import load_hyperparams

    try:
        hp = load_hyperparams(bench.hyperparams_from or bench.env_id)
    except KeyError:
        if bench.hyperparams is None:
            raise
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:  # the same loader resolves class names and numbers
            file = Path(tmp) / "dqn.yml"
            file.write_text(yaml.safe_dump({"entry": bench.hyperparams}))
            hp = load_hyperparams("entry", file)
    full = int(hp.get("n_timesteps", bench.timesteps))
    if bench.keep_schedule and "exploration_fraction" in hp and bench.timesteps < full:
        hp["exploration_fraction"] = min(1.0, float(hp["exploration_fraction"]) * full / bench.timesteps)
    hp.update(bench.overrides)
    return hp


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_one(spec: RunSpec, out_root: str | Path, torch_threads: int = 1) -> dict[str, Any]:
    """Train ``spec`` from scratch, write its curve and summary under ``out_root`` and return the summary.

    The summary has the :data:`RUN_FIELDS`; ``curve.csv`` has the :data:`CURVE_FIELDS` per evaluation
    (``train_seconds``: wall-clock seconds so far without evaluation time).
    """
    import torch
    from equirl.agents import PLAIN, train
    from equirl.envs import get_symmetry

    torch.set_num_threads(torch_threads)
    bench = spec.bench
    out = spec.out_dir(out_root)
    out.mkdir(parents=True, exist_ok=True)
    factory = _TimedEnvFactory(_env_factory(bench.env_id))
    symmetry = None if spec.method == PLAIN else get_symmetry(bench.env_id)
    hp = _hyperparams(bench)
    start = time.perf_counter()
    result = train(
        factory,
        spec.method,
        symmetry,
        hp,
        seed=spec.seed,
        total_timesteps=bench.timesteps,
        eval_freq=bench.eval_freq,
        n_eval_episodes=bench.n_eval_episodes,
    )
    total = time.perf_counter() - start
    eval_cum = np.cumsum(factory.durations) if factory.durations else np.zeros(0)
    rows = []
    for i, row in enumerate(result.curve):
        spent = float(eval_cum[min(i, len(eval_cum) - 1)]) if len(eval_cum) else 0.0
        rows.append({**row, "train_seconds": max(0.0, row["wall_seconds"] - spent)})
    with open(out / "curve.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(CURVE_FIELDS))
        w.writeheader()
        for row in rows:
            w.writerow({k: row[k] for k in CURVE_FIELDS})
    eval_seconds = float(sum(factory.durations))
    train_seconds = max(1e-9, result.train_seconds - eval_seconds)
    summary = {
        "env_id": bench.env_id,
        "method": spec.method,
        "seed": spec.seed,
        "timesteps": result.timesteps,
        "group_order": 1 if symmetry is None else len(symmetry.group),
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "total_seconds": total,
        "steps_per_second": result.timesteps / train_seconds,
        "final_return": result.mean_return,
        "final_return_std": result.std_return,
        "bench": asdict(bench),
    }
    _write_atomic(out / "summary.json", json.dumps(summary, indent=1, default=str))
    return summary


def _safe_run(spec: RunSpec, out_root: str, torch_threads: int = 1) -> dict[str, Any]:
    """:func:`run_one` that returns ``{"error": ..., "run_id": ...}`` instead of raising."""
    try:
        return run_one(spec, out_root, torch_threads)
    except Exception:  # noqa: BLE001 - one failed run must not stop a sweep
        return {"error": traceback.format_exc(), "run_id": spec.run_id}


def is_done(spec: RunSpec, out_root: str | Path) -> bool:
    """Whether ``spec`` has a ``summary.json`` under ``out_root`` (finished earlier)."""
    return (spec.out_dir(out_root) / "summary.json").exists()


def pending(specs: Iterable[RunSpec], out_root: str | Path) -> list[RunSpec]:
    """The runs of ``specs`` not finished under ``out_root`` (resume = run only these)."""
    return [s for s in specs if not is_done(s, out_root)]


# -- backends ------------------------------------------------------------------------------------
def run_local(
    specs: Sequence[RunSpec], out_root: str | Path, workers: int | None = None, progress: bool = True
) -> list[dict[str, Any]]:
    """Run ``specs`` on a process pool of ``workers`` (default: the machine's CPU count), one torch thread each.

    Returns one summary (or ``{"error", "run_id"}``) per run, in completion order.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    if not specs:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(specs)))
    results: list[dict[str, Any]] = []
    bar = progress_bar(len(specs), f"runs (local, {workers} workers)", enabled=progress)
    if workers == 1:
        for spec in specs:
            results.append(_safe_run(spec, str(out_root)))
            bar.update()
            bar.set_postfix_str(spec.run_id)
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_safe_run, s, str(out_root)): s for s in specs}
            for fut in as_completed(futures):
                results.append(fut.result())
                bar.update()
                bar.set_postfix_str(futures[fut].run_id)
    bar.close()
    return results


def run_ray(
    specs: Sequence[RunSpec],
    out_root: str | Path,
    address: str | None = None,
    num_cpus: int | None = None,
    working_dir: str | Path | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run ``specs`` as Ray tasks (one CPU each) on the cluster at ``address``.

    ``address=None`` starts a local instance with ``num_cpus`` CPUs (``ray.init(num_cpus=...)``);
    ``"auto"`` or ``"ray://host:10001"`` joins a running cluster. Every node needs equirl installed
    (``pip install equirl`` or an editable install of the same checkout); ``working_dir`` is uploaded
    to every node as the tasks' working directory. ``out_root`` must be writable by every
    worker (a shared filesystem on a multi-node cluster); the summaries also come back to the driver.
    Needs ``pip install ray`` (the ``ray`` extra).
    """
    ray = require("ray", "ray", "The Ray backend (--backend ray)")

    if not specs:
        return []
    runtime_env: dict[str, Any] = {}
    if working_dir is not None:
        runtime_env["working_dir"] = str(working_dir)
        runtime_env["excludes"] = [".git", ".venv", "results", "runs", "docs", ".whl", "*.zip"]
    started = False
    if not ray.is_initialized():
        ray.init(
            address=address,
            num_cpus=num_cpus if address is None else None,
            runtime_env=runtime_env,
            include_dashboard=False,
            log_to_driver=False,
        )
        started = True
    remote = ray.remote(num_cpus=1, max_retries=1)(_safe_run)
    refs = {remote.remote(s, str(out_root)): s for s in specs}
    results: list[dict[str, Any]] = []
    bar = progress_bar(len(specs), "runs (ray)", enabled=progress)
    left = list(refs)
    try:
        while left:
            done, left = ray.wait(left, num_returns=1)
            for ref in done:
                results.append(ray.get(ref))
                bar.update()
                bar.set_postfix_str(refs[ref].run_id)
    finally:
        bar.close()
        if started:
            ray.shutdown()
    return results


# -- aggregation (numpy only) --------------------------------------------------------------------
def steps_to_threshold(timesteps: Values, returns: Values, threshold: float) -> float:
    """The first evaluation's timestep whose mean return is ``>= threshold``; ``inf`` if none is."""
    for t, r in zip(timesteps, returns, strict=True):
        if r >= threshold:
            return float(t)
    return math.inf


def normalised_auc(timesteps: Values, returns: Values, budget: float | None = None) -> float:
    """Area under the evaluation curve divided by its length: the mean return over training.

    Trapezoids between evaluations; with ``budget``, the curve is held at its last value up to
    ``budget`` (and the area divided by ``budget - timesteps[0]``), so runs that stopped early compare.
    """
    t = np.asarray(timesteps, dtype=float)
    r = np.asarray(returns, dtype=float)
    if len(t) == 0:
        return math.nan
    if budget is not None and budget > t[-1]:
        t, r = np.append(t, budget), np.append(r, r[-1])
    if len(t) == 1 or t[-1] <= t[0]:
        return float(r[-1])
    area = float(np.sum((t[1:] - t[:-1]) * (r[1:] + r[:-1]) / 2.0))
    return area / float(t[-1] - t[0])


def collapsed_after_solving(returns: Values, threshold: float, baseline: float) -> bool:
    """Whether, after first reaching ``threshold``, an evaluation fell below halfway to ``baseline``."""
    r = np.asarray(returns, dtype=float)
    hit = np.nonzero(r >= threshold)[0]
    if len(hit) == 0:
        return False
    floor = baseline + 0.5 * (threshold - baseline)
    return bool(np.any(r[hit[0] + 1 :] < floor))


def quantile(values: Values, q: float) -> float:
    """The ``q``-quantile (linear interpolation, numpy's default) where ``inf`` is a value like any other.

    Unlike ``np.quantile`` it never gives ``nan`` between two ``inf``: it is ``inf`` as soon as the
    interpolation touches an ``inf``, so runs that never solve count as the slowest runs.
    """
    v = np.sort(np.asarray(values, dtype=float))
    if len(v) == 0:
        return math.nan
    pos = q * (len(v) - 1)
    lo, hi = int(math.floor(pos)), int(math.ceil(pos))
    frac = pos - lo
    if math.isinf(v[hi]) and frac > 0 or math.isinf(v[lo]):
        return math.inf
    return float(v[lo] + frac * (v[hi] - v[lo]))


def collect(out_root: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read every finished run under ``out_root``: ``(runs, curves)`` as lists of flat rows."""
    runs: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    for summary_file in sorted(Path(out_root).glob("**/summary.json")):
        s = json.loads(summary_file.read_text())
        bench = s.get("bench") or {}
        runs.append(
            {k: s[k] for k in RUN_FIELDS} | {"threshold": bench.get("threshold"), "baseline": bench.get("baseline")}
        )
        with open(summary_file.parent / "curve.csv") as f:
            for row in csv.DictReader(f):
                curves.append({"env_id": s["env_id"], "method": s["method"], "seed": s["seed"]} | row)
    return runs, curves


def write_raw(runs: list[dict[str, Any]], curves: list[dict[str, Any]], dest: str | Path) -> None:
    """Write ``runs.csv`` and ``curves.csv`` (the raw results the table is built from) into ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name, rows, fields in (
        ("runs.csv", runs, [*RUN_FIELDS, "threshold", "baseline"]),
        ("curves.csv", curves, ["env_id", "method", "seed", *CURVE_FIELDS]),
    ):
        with open(dest / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)


def read_raw(src: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read ``runs.csv`` and ``curves.csv`` written by :func:`write_raw`, with numbers as numbers."""

    def num(row: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in row.items():
            try:
                out[k] = int(v) if k in ("seed", "timesteps", "group_order") and "." not in v else float(v)
            except (TypeError, ValueError):
                out[k] = v
        return out

    src = Path(src)
    with open(src / "runs.csv") as f:
        runs = [num(r) for r in csv.DictReader(f)]
    with open(src / "curves.csv") as f:
        curves = [num(r) for r in csv.DictReader(f)]
    return runs, curves


def _curves_by_run(curves: list[dict[str, Any]]) -> dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]]:
    grouped: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    for row in curves:
        key = (str(row["env_id"]), str(row["method"]), int(float(row["seed"])))
        grouped.setdefault(key, []).append((float(row["timesteps"]), float(row["mean_return"])))
    out = {}
    for key, pts in grouped.items():
        pts.sort()
        out[key] = (np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
    return out


def aggregate(
    runs: list[dict[str, Any]],
    curves: list[dict[str, Any]],
    thresholds: dict[str, tuple[float, float]] | None = None,
    env_order: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Per environment and method, over seeds: the benchmark's numbers.

    ``thresholds`` maps env id to ``(threshold, baseline)``; default: the values stored with each run.
    Environments come in ``env_order`` (those it does not name after, in the order of ``runs``).
    Each row: ``env_id, method, group_order, n_runs, n_solved, steps_median, steps_q25, steps_q75``
    (``inf`` where the runs that never solved decide the quantile), ``auc_mean, auc_std`` (mean return
    over training, :func:`normalised_auc`), ``final_mean, final_std`` (std over seeds of the final
    evaluation), ``collapses`` (runs with :func:`collapsed_after_solving`), ``steps_per_second``
    (median), ``train_seconds`` (median) and ``wallclock_ratio`` (median train seconds over plain's).
    """
    by_run = _curves_by_run(curves)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((str(r["env_id"]), str(r["method"])), []).append(r)
    plain_seconds: dict[str, float] = {}
    for (env_id, method), rs in groups.items():
        if method == "plain":
            plain_seconds[env_id] = float(np.median([float(r["train_seconds"]) for r in rs]))
    rows = []
    present = list(dict.fromkeys(str(r["env_id"]) for r in runs))
    for env_id in [e for e in env_order if e in present] + [e for e in present if e not in env_order]:
        methods = [m for m in ALL_METHODS if (env_id, m) in groups]
        methods += sorted(m for (e, m) in groups if e == env_id and m not in ALL_METHODS)
        for method in methods:
            rs = groups[(env_id, method)]
            if thresholds and env_id in thresholds:
                threshold, baseline = thresholds[env_id]
            else:
                threshold, baseline = float(rs[0]["threshold"]), float(rs[0]["baseline"])
            steps, aucs, finals, collapses = [], [], [], 0
            budget = max(float(r["timesteps"]) for r in rs)
            for r in rs:
                t, ret = by_run[(env_id, method, int(float(r["seed"])))]
                steps.append(steps_to_threshold(t, ret, threshold))
                aucs.append(normalised_auc(t, ret, budget))
                finals.append(float(ret[-1]))
                collapses += collapsed_after_solving(ret, threshold, baseline)
            secs = float(np.median([float(r["train_seconds"]) for r in rs]))
            rows.append(
                {
                    "env_id": env_id,
                    "method": method,
                    "group_order": int(float(rs[0]["group_order"])),
                    "n_runs": len(rs),
                    "n_solved": int(np.sum(np.isfinite(steps))),
                    "threshold": threshold,
                    "budget": budget,
                    "steps_median": quantile(steps, 0.5),
                    "steps_q25": quantile(steps, 0.25),
                    "steps_q75": quantile(steps, 0.75),
                    "auc_mean": float(np.mean(aucs)),
                    "auc_std": float(np.std(aucs)),
                    "final_mean": float(np.mean(finals)),
                    "final_std": float(np.std(finals)),
                    "collapses": int(collapses),
                    "steps_per_second": float(np.median([float(r["steps_per_second"]) for r in rs])),
                    "train_seconds": secs,
                    "wallclock_ratio": secs / plain_seconds[env_id] if env_id in plain_seconds else math.nan,
                }
            )
    return rows


def _fmt_steps(x: float) -> str:
    if math.isinf(x):
        return "—"
    if math.isnan(x):
        return "nan"
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The aggregated rows as a GitHub markdown table (one line per environment and method).

    "steps to solve" is the median [IQR] over seeds of the first evaluation at or above the threshold;
    "—" means the runs that never solved decide that quantile.
    """
    header = (
        "| environment | method | \\|G\\| | solved | steps to solve, median [IQR] | mean return over training (AUC) "
        "| final return | collapses | env steps/s | wall-clock / plain |"
    )
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        steps = f"{_fmt_steps(r['steps_median'])} [{_fmt_steps(r['steps_q25'])}, {_fmt_steps(r['steps_q75'])}]"
        d = 2 if abs(float(r["threshold"])) < 10 else 1  # returns of order 1 (gridworlds) get two decimals
        lines.append(
            f"| {r['env_id']} | {r['method']} | {r['group_order']} | {r['n_solved']}/{r['n_runs']} | {steps} "
            f"| {r['auc_mean']:.{d}f} ± {r['auc_std']:.{d}f} | {r['final_mean']:.{d}f} ± {r['final_std']:.{d}f} "
            f"| {r['collapses']} | {r['steps_per_second']:.0f} | {r['wallclock_ratio']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def write_summary(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write the aggregated rows of :func:`aggregate` as CSV."""
    if not rows:
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def plot_curves(curves: list[dict[str, Any]], env_id: str, path: str | Path, threshold: float | None = None) -> None:
    """Learning curves of ``env_id``: per method, the mean over seeds with a ±1 std band, saved as PNG."""
    matplotlib = require("matplotlib", "plots", "Plotting learning curves")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_run = _curves_by_run([c for c in curves if c["env_id"] == env_id])
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    methods = [m for m in ALL_METHODS if any(k[1] == m for k in by_run)]
    for method in methods:
        runs = [v for k, v in by_run.items() if k[1] == method]
        grid = np.unique(np.concatenate([t for t, _ in runs]))
        ys = np.stack([np.interp(grid, t, r) for t, r in runs])
        mean, std = ys.mean(0), ys.std(0)
        (line,) = ax.plot(grid, mean, label=f"{method} (n={len(runs)})")
        ax.fill_between(grid, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    if threshold is not None:
        ax.axhline(threshold, color="grey", ls="--", lw=1, label="solve threshold")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean evaluation return")
    ax.set_title(env_id)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
