"""Sample-efficiency sweeps: environments × methods × seeds, run locally or on a Ray cluster, then aggregated.

The library behind ``equirl bench`` (and ``scripts/benchmark.py``). Three parts, usable on their own:

* **Runs.** :class:`RunSpec` names one training run (algorithm, environment, method, seed, budget);
  :func:`run_one` trains it from scratch with :func:`agents.train` and the environment's entry in the
  algorithm's hyperparameter file (``agents/hyperparams/<algo>.yml``; the algorithm is
  :attr:`EnvBenchmark.algo`, ``"dqn"`` by default) and writes ``<out>/<env>/<method>/seed<k>/curve.csv`` and
  ``summary.json`` (``<out>/<algo>/<env>/...`` for algorithms other than DQN). ``summary.json`` is written last (atomically), records the run's full configuration
  (:func:`run_config`) and marks the run as finished: :func:`pending` skips it when its configuration
  equals the requested one, refuses a folder whose result was made with other settings, and re-runs a
  damaged one, so an interrupted sweep resumes where it stopped. Pool workers exit with the sweep.
* **Backends.** :func:`run_local` (a process pool, one torch thread per worker) and :func:`run_ray`
  (one Ray task per run, ``num_cpus=1`` each, on the cluster at ``address`` or a local instance)
  run the same :func:`run_one`; both show a tqdm bar over runs and never stop on one run's error.
* **Aggregation** (numpy only, no torch): :func:`steps_to_threshold`, :func:`normalised_auc`,
  :func:`quantile`, :func:`aggregate`, :func:`markdown_table`, :func:`plot_curves`, over the raw
  results collected by :func:`collect` into two CSV files (``runs.csv``, ``curves.csv``).

Evaluation time is measured once, by :func:`agents.train`'s evaluation callback (the time each
evaluation takes), and excluded there, so ``train_seconds`` and ``steps_per_second`` are the cost of
acting and learning only; the sweep takes them as they are.
"""

from __future__ import annotations

import csv
import io
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
from equirl.agents import stats
from equirl.agents.algorithms import get_algorithm
from equirl.agents.io import write_atomic
from equirl.agents.training import ALL_METHODS

from equirl.extras import progress_bar, require
from equirl.figures import save_png

__all__ = [
    "DEFAULT_CONFIG",
    "config_path",
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
    "compact_table",
    "overhead_table",
    "across_envs_table",
    "plot_curves",
    "plot_profile",
]

DEFAULT_CONFIG = Path(__file__).resolve().parent / "hyperparams" / "benchmark.yml"
Values = Sequence[float] | np.ndarray
"""A 1-D sequence of numbers (list or numpy array)."""

CURVE_FIELDS = ("timesteps", "mean_return", "std_return", "wall_seconds", "train_seconds")
RUN_FIELDS = (
    "env_id",
    "algo",
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
    """The benchmark's settings for one environment (one entry of ``hyperparams/benchmark.yml``).

    :param env_id: catalogue name (``envs.make_env`` / ``envs.get_symmetry``) and key in ``dqn.yml``.
    :param timesteps: environment steps per run (the same for every method and seed).
    :param eval_freq: evaluate the greedy policy every this many steps.
    :param threshold: the solve threshold on the mean evaluation return.
    :param baseline: the floor used to call a drop a collapse: a random policy's return, or the return of never
        reaching the goal where that is lower (measured random returns: ``equirl bench baseline``).
    :param n_eval_episodes: episodes per evaluation.
    :param keep_schedule: keep the entry's exploration schedule in absolute steps when ``timesteps`` is
        shorter than the entry's ``n_timesteps`` (the run is then the first ``timesteps`` of the full one).
    :param overrides: DQN arguments that replace the entry's (documented in the config).
    :param hyperparams_from: the entry of the algorithm's file to use (default: ``env_id``).
    :param hyperparams: a fallback entry, used only while the algorithm's file has none for ``env_id``.
    :param algo: the algorithm (:mod:`equirl.agents.algorithms`: ``"dqn"``, ``"qrdqn"``, ``"ppo"``, ``"a2c"``);
        its hyperparameters come from ``agents/hyperparams/<algo>.yml``.
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
    algo: str = "dqn"


def config_path(path: str | Path | None = None) -> Path:
    """The benchmark config file: ``path`` if it is a file, else the package's ``hyperparams/benchmark_<path>.yml``
    for an algorithm's short name (``"ppo"``, ``"qrdqn"``), else (``None``) the package's ``benchmark.yml``.
    ``FileNotFoundError`` naming the package's configs otherwise."""
    if path is None:
        return DEFAULT_CONFIG
    if Path(path).is_file():
        return Path(path)
    shipped = DEFAULT_CONFIG.with_name(f"benchmark_{path}.yml")
    if "/" not in str(path) and shipped.is_file():
        return shipped
    known = sorted(p.stem.removeprefix("benchmark_") for p in DEFAULT_CONFIG.parent.glob("benchmark_*.yml"))
    raise FileNotFoundError(
        f"No benchmark config {str(path)!r}: not a file, and not a shipped config's name ({', '.join(known)})."
    )


def load_config(path: str | Path | None = None) -> dict[str, EnvBenchmark]:
    """The per-environment settings in ``path`` (a file, or a shipped config's name, see :func:`config_path`;
    default: the package's ``hyperparams/benchmark.yml``), by env id."""
    file = config_path(path)
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
        try:
            out[env_id].algo = get_algorithm(out[env_id].algo).name
        except ValueError as e:
            raise ValueError(f"{file}: entry {env_id!r}: {e}") from e
    return out


def default_seeds(path: str | Path | None = None) -> int:
    """``defaults.seeds`` of the config (number of seeds per environment and method; 5 if absent)."""
    with open(config_path(path)) as f:
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
        """``<env>/<method>/seed<k>`` with ``/`` in the env id replaced by ``_``, under ``<algo>/`` for
        algorithms other than DQN."""
        run = f"{self.bench.env_id.replace('/', '_')}/{self.method}/seed{self.seed}"
        return run if self.bench.algo == "dqn" else f"{self.bench.algo}/{run}"

    def out_dir(self, root: str | Path) -> Path:
        """Where this run's ``curve.csv`` and ``summary.json`` go."""
        return Path(root) / self.run_id

    def __hash__(self) -> int:
        return hash((self.bench.algo, self.bench.env_id, self.method, self.seed))


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
def _env_factory(env_id: str) -> Callable[[], Any]:
    from equirl import envs

    make = getattr(envs, "make_env", None)
    if make is not None:
        return lambda: make(env_id)
    import gymnasium as gym

    return lambda: gym.make(env_id)


def _hyperparams(bench: EnvBenchmark) -> dict[str, Any]:
    """The run's hyperparameters: the entry (``bench.algo``'s file), schedules kept in absolute steps with
    ``keep_schedule``, then ``bench.overrides``.

    With ``keep_schedule`` and a budget shorter than the entry's ``n_timesteps``, the run is the first
    ``timesteps`` steps of the full one: DQN's ``exploration_fraction`` is stretched, and a linear schedule
    (rl-zoo3's ``lin_<x>``) gets ``end_fraction`` ``n_timesteps / timesteps``, so it decays at the full run's rate.
    """
    from equirl.agents import load_hyperparams
    from stable_baselines3.common.utils import LinearSchedule

    try:
        hp = load_hyperparams(bench.hyperparams_from or bench.env_id, algo=bench.algo)
    except KeyError:
        if bench.hyperparams is None:
            raise
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:  # the same loader resolves class names and numbers
            file = Path(tmp) / "entry.yml"
            file.write_text(yaml.safe_dump({"entry": bench.hyperparams}))
            hp = load_hyperparams("entry", file, algo=bench.algo)
    full = int(hp.get("n_timesteps", bench.timesteps))
    if bench.keep_schedule and bench.timesteps < full:
        stretch = full / bench.timesteps
        if "exploration_fraction" in hp:
            hp["exploration_fraction"] = min(1.0, float(hp["exploration_fraction"]) * stretch)
        for key, value in hp.items():
            if isinstance(value, LinearSchedule):
                hp[key] = LinearSchedule(value.start, value.end, value.end_fraction * stretch)
    hp.update(bench.overrides)
    return hp


def run_config(spec: RunSpec) -> dict[str, Any]:
    """Everything that decides a run's result, as JSON: the benchmark entry (budget, evaluation settings,
    overrides), method, seed, the resolved hyperparameters and the code version. ``summary.json`` stores
    it; a summary counts as this run's only when its ``config`` equals this."""
    from equirl.agents.training import _jsonable

    import equirl

    return _jsonable(  # type: ignore[no-any-return]
        {
            "bench": asdict(spec.bench),
            "method": spec.method,
            "seed": spec.seed,
            "hyperparams": _hyperparams(spec.bench),
            "code_version": equirl.__version__,
        }
    )


class SweepConfigError(ValueError):
    """A finished run under the output folder was made with other settings than the ones requested."""


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
    factory = _env_factory(bench.env_id)
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
        algo=bench.algo,
    )
    total = time.perf_counter() - start
    # evaluation time has one owner, agents.train's evaluation callback: its rows carry train_seconds
    # and result.train_seconds already excludes every evaluation; nothing is subtracted here
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CURVE_FIELDS))
    w.writeheader()
    for row in result.curve:
        w.writerow({k: row[k] for k in CURVE_FIELDS})
    write_atomic(out / "curve.csv", buf.getvalue())
    eval_seconds = float(result.eval_seconds)
    train_seconds = max(1e-9, float(result.train_seconds))
    summary = {
        "env_id": bench.env_id,
        "algo": bench.algo,
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
        "config": run_config(spec),
    }
    write_atomic(out / "summary.json", json.dumps(summary, indent=1, default=str))  # last: marks the run finished
    return summary


def _safe_run(spec: RunSpec, out_root: str, torch_threads: int = 1) -> dict[str, Any]:
    """:func:`run_one` that returns ``{"error": ..., "run_id": ...}`` instead of raising."""
    try:
        return run_one(spec, out_root, torch_threads)
    except Exception:  # noqa: BLE001 - one failed run must not stop a sweep
        return {"error": traceback.format_exc(), "run_id": spec.run_id}


def is_done(spec: RunSpec, out_root: str | Path) -> bool:
    """Whether ``spec`` finished earlier under ``out_root``: its ``summary.json`` parses and records this
    run's configuration (:func:`run_config`).

    A damaged summary is named in a warning, moved aside (``summary.json.damaged``) and the run counts as
    not finished, so it is re-run.

    :raises SweepConfigError: when the summary records other settings (another budget, evaluation,
        hyperparameters or code version): it names the file and the differences; such a result is never
        reused, and never overwritten: use another output folder, or delete that run's folder.
    """
    import warnings

    path = spec.out_dir(out_root) / "summary.json"
    if not path.exists():
        return False
    try:
        summary = json.loads(path.read_text())
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        warnings.warn(f"{path} is damaged ({err}); moved to {path.name}.damaged and the run is re-run.", stacklevel=2)
        os.replace(path, path.with_name("summary.json.damaged"))
        return False
    requested = run_config(spec)
    recorded = summary.get("config")
    if recorded != requested:
        if not isinstance(recorded, dict):
            what = "records no configuration (written by an older equirl), so it cannot be shown to match"
        else:
            keys = sorted(set(requested) | set(recorded))
            what = (
                "was made with other settings than requested (differs in: "
                + ", ".join(k for k in keys if recorded.get(k) != requested.get(k))
                + ")"
            )
        raise SweepConfigError(
            f"{path} {what}. It is not reused and not overwritten: choose another --out, or delete that run's "
            "folder to re-run it."
        )
    return True


def pending(specs: Iterable[RunSpec], out_root: str | Path) -> list[RunSpec]:
    """The runs of ``specs`` not finished under ``out_root`` (resume = run only these); see :func:`is_done`."""
    return [s for s in specs if not is_done(s, out_root)]


def exit_with_parent(parent_pid: int) -> None:
    """Pool-worker initializer: the worker exits when the process that started it dies (even by SIGKILL).

    On Linux the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``); elsewhere, and
    as a fallback, a daemon thread checks every second whether the parent is gone.
    """
    import signal
    import threading

    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before the prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


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
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=get_context("spawn"), initializer=exit_with_parent, initargs=(os.getpid(),)
        ) as pool:
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
        try:
            s = json.loads(summary_file.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(
                f"{summary_file} is damaged ({err}); delete it (the run is then re-run) and retry."
            ) from err
        bench = s.get("bench") or {}
        s.setdefault("algo", "dqn")  # summaries written before runs named their algorithm
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
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        write_atomic(dest / name, buf.getvalue())


def read_raw(src: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read ``runs.csv`` and ``curves.csv`` written by :func:`write_raw`, with numbers as numbers.

    Files written before runs named their algorithm (no ``algo`` column) are DQN's: ``algo`` is ``"dqn"``.
    """

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
    for r in runs:
        r["algo"] = r.get("algo") or "dqn"
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
    reps: int = stats.DEFAULT_REPS,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Per environment and method, over seeds: the benchmark's numbers.

    ``thresholds`` maps env id to ``(threshold, baseline)``; default: the values stored with each run.
    Environments come in ``env_order`` (those it does not name after, in the order of ``runs``).
    Each row: ``env_id, method, group_order, n_runs, n_solved, steps_median, steps_q25, steps_q75``
    (``inf`` where the runs that never solved decide the quantile); for the mean return over training
    (``auc_*``, :func:`normalised_auc`) and the final evaluation (``final_*``): ``_iqm`` and ``_mean``
    with their 95% stratified-bootstrap intervals ``_iqm_lo, _iqm_hi, _mean_lo, _mean_hi``
    (:mod:`equirl.agents.stats`, ``reps`` resamples, seeded with ``seed``), ``_std`` (sample std,
    ddof 1; nan for one run) and ``_poi, _poi_lo, _poi_hi`` (probability of improvement over plain on
    the same environment, with its interval; nan for plain or without plain runs); ``collapses`` (runs
    with :func:`collapsed_after_solving`), ``steps_per_second`` (median), ``train_seconds`` (median) and
    ``wallclock_ratio`` (median train seconds over plain's); ``_algo``, the runs' algorithm (one per call:
    ``ValueError`` when ``runs`` mix algorithms, whose "plain" baselines differ).
    """
    algos = sorted({str(r.get("algo", "dqn")) for r in runs})
    if len(algos) > 1:
        raise ValueError(
            f"The runs mix algorithms {algos}: aggregate each algorithm's runs on their own (its plain runs are "
            "its baseline)."
        )
    algo = algos[0] if algos else "dqn"
    by_run = _curves_by_run(curves)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((str(r["env_id"]), str(r["method"])), []).append(r)
    plain_seconds: dict[str, float] = {}
    for (env_id, method), rs in groups.items():
        if method == "plain":
            plain_seconds[env_id] = float(np.median([float(r["train_seconds"]) for r in rs]))
    # per-run scores first, so that every method can be compared with plain's runs
    scores: dict[tuple[str, str], dict[str, Any]] = {}
    for (env_id, method), rs in groups.items():
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
        order = np.argsort([int(float(r["seed"])) for r in rs], kind="stable")  # runs by seed
        scores[(env_id, method)] = dict(
            threshold=threshold,
            baseline=baseline,
            budget=budget,
            steps=steps,
            auc=aucs,
            final=finals,
            collapses=collapses,
            runs={"auc": [aucs[i] for i in order], "final": [finals[i] for i in order]},
        )
    rows = []
    present = list(dict.fromkeys(str(r["env_id"]) for r in runs))
    for env_id in dict.fromkeys([e for e in env_order if e in present] + [e for e in present if e not in env_order]):
        methods = [m for m in ALL_METHODS if (env_id, m) in groups]
        methods += sorted(m for (e, m) in groups if e == env_id and m not in ALL_METHODS)
        plain = scores.get((env_id, "plain"))
        for method in methods:
            rs = groups[(env_id, method)]
            sc = scores[(env_id, method)]
            steps = sc["steps"]
            secs = float(np.median([float(r["train_seconds"]) for r in rs]))
            row: dict[str, Any] = {
                "env_id": env_id,
                "method": method,
                "group_order": int(float(rs[0]["group_order"])),
                "n_runs": len(rs),
                "n_solved": int(np.sum(np.isfinite(steps))),
                "threshold": sc["threshold"],
                "baseline": sc["baseline"],
                "budget": sc["budget"],
                "_algo": algo,  # not written to summary.csv
                "steps_median": quantile(steps, 0.5),
                "steps_q25": quantile(steps, 0.25),
                "steps_q75": quantile(steps, 0.75),
            }
            for key in ("auc", "final"):
                row.update(_score_stats(key, sc[key], None if plain is None or method == "plain" else plain[key],
                                        reps, seed))  # fmt: skip
            row.update(
                {
                    "_runs": sc["runs"],  # per-run scores by seed (not written to summary.csv)
                    "collapses": int(sc["collapses"]),
                    "steps_per_second": float(np.median([float(r["steps_per_second"]) for r in rs])),
                    "train_seconds": secs,
                    "wallclock_ratio": secs / plain_seconds[env_id] if env_id in plain_seconds else math.nan,
                }
            )
            rows.append(row)
    return rows


def _score_stats(key: str, values: list[float], plain: list[float] | None, reps: int, seed: int) -> dict[str, float]:
    """IQM, mean (with 95% bootstrap intervals), sample std and P(> plain) of per-run ``values``, keys ``<key>_*``."""
    iqm_lo, iqm_hi = stats.bootstrap_ci(values, stats.iqm, reps=reps, seed=seed)
    mean_lo, mean_hi = stats.bootstrap_ci(values, stats.mean, reps=reps, seed=seed)
    if plain is None:
        poi = poi_lo = poi_hi = math.nan
    else:
        poi = stats.probability_of_improvement(values, plain)
        poi_lo, poi_hi = stats.probability_of_improvement_ci(values, plain, reps=reps, seed=seed)
    return {
        f"{key}_iqm": stats.iqm(values),
        f"{key}_iqm_lo": iqm_lo,
        f"{key}_iqm_hi": iqm_hi,
        f"{key}_mean": stats.mean(values),
        f"{key}_mean_lo": mean_lo,
        f"{key}_mean_hi": mean_hi,
        f"{key}_std": stats.sample_std(values),
        f"{key}_poi": poi,
        f"{key}_poi_lo": poi_lo,
        f"{key}_poi_hi": poi_hi,
    }


def _fmt_steps(x: float) -> str:
    if math.isinf(x):
        return "—"
    if math.isnan(x):
        return "nan"
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def _fmt_ci(row: dict[str, Any], key: str, digits: int) -> str:
    """``row[key] [row[key_lo], row[key_hi]]`` with ``digits`` decimals; "—" where the value is nan."""
    if math.isnan(row[key]):
        return "—"
    return f"{row[key]:.{digits}f} [{row[key + '_lo']:.{digits}f}, {row[key + '_hi']:.{digits}f}]"


TABLE_NOTE = (
    "IQM: interquartile mean over runs; [95% CI]: percentile interval of a stratified bootstrap over runs; "
    "P(> plain): probability that a random run of the method scores above a random run of plain DQN "
    "(ties count half), with its 95% CI; n: runs (seeds). AUC: mean return over training."
)
"""The line under every benchmark table that says what its numbers are."""


def _plain_of(rows: list[dict[str, Any]], note: str) -> str:
    """``note`` naming the rows' algorithm: "plain DQN" becomes "plain PPO" etc. (rows of :func:`aggregate`)."""
    algo = str(rows[0].get("_algo", "dqn")) if rows else "dqn"
    return note.replace("plain DQN", f"plain {get_algorithm(algo).class_name}")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The aggregated rows as a GitHub markdown table (one line per environment and method), with a note.

    "steps to solve" is the median [IQR] over seeds of the first evaluation at or above the threshold;
    "—" means the runs that never solved decide that quantile. Scores are IQM and mean with 95%
    stratified-bootstrap intervals, and the probability of improvement over plain (:data:`TABLE_NOTE`).
    """
    header = (
        "| environment | method | \\|G\\| | n | solved | steps to solve, median [IQR] "
        "| AUC: IQM [95% CI] | AUC: mean [95% CI] | final: IQM [95% CI] | final: mean [95% CI] "
        "| P(AUC > plain) [95% CI] | P(final > plain) [95% CI] | collapses | env steps/s | wall-clock / plain |"
    )
    lines = [header, "|" + "---|" * 15]
    for r in rows:
        steps = f"{_fmt_steps(r['steps_median'])} [{_fmt_steps(r['steps_q25'])}, {_fmt_steps(r['steps_q75'])}]"
        d = 2 if abs(float(r["threshold"])) < 10 else 1  # returns of order 1 (gridworlds) get two decimals
        lines.append(
            f"| {r['env_id']} | {r['method']} | {r['group_order']} | {r['n_runs']} | {r['n_solved']}/{r['n_runs']} "
            f"| {steps} | {_fmt_ci(r, 'auc_iqm', d)} | {_fmt_ci(r, 'auc_mean', d)} | {_fmt_ci(r, 'final_iqm', d)} "
            f"| {_fmt_ci(r, 'final_mean', d)} | {_fmt_ci(r, 'auc_poi', 2)} | {_fmt_ci(r, 'final_poi', 2)} "
            f"| {r['collapses']} | {r['steps_per_second']:.0f} | {r['wallclock_ratio']:.2f} |"
        )
    return "\n".join(lines) + "\n\n" + _plain_of(rows, TABLE_NOTE) + "\n"


def compact_table(rows: list[dict[str, Any]]) -> str:
    """The aggregated rows as a short markdown table (the README's): solved, final return and AUC as
    IQM [95% CI], and the probability of improvement over plain on both, with the same note."""
    header = (
        "| environment | method | n | solved | final: IQM [95% CI] | AUC: IQM [95% CI] "
        "| P(final > plain) [95% CI] | P(AUC > plain) [95% CI] |"
    )
    lines = [header, "|" + "---|" * 8]
    for r in rows:
        d = 2 if abs(float(r["threshold"])) < 10 else 1
        lines.append(
            f"| {r['env_id']} | {r['method']} | {r['n_runs']} | {r['n_solved']}/{r['n_runs']} "
            f"| {_fmt_ci(r, 'final_iqm', d)} | {_fmt_ci(r, 'auc_iqm', d)} "
            f"| {_fmt_ci(r, 'final_poi', 2)} | {_fmt_ci(r, 'auc_poi', 2)} |"
        )
    return "\n".join(lines) + "\n\n" + _plain_of(rows, TABLE_NOTE) + "\n"


def overhead_table(rows: list[dict[str, Any]]) -> str:
    """Compute cost per environment: plain DQN's training steps/s and each method's training time over plain's.

    One line per environment with plain runs; columns for the methods present (medians over runs).
    """
    methods = [m for m in ALL_METHODS if m != "plain" and any(r["method"] == m for r in rows)]
    methods += sorted({str(r["method"]) for r in rows} - set(ALL_METHODS))
    header = "| environment | \\|G\\| | n | plain steps/s | " + " | ".join(methods) + " | target (1.1·\\|G\\|) |"
    lines = [header, "|" + "---|" * (5 + len(methods))]
    for env_id in dict.fromkeys(r["env_id"] for r in rows):
        by_method = {r["method"]: r for r in rows if r["env_id"] == env_id}
        if "plain" not in by_method:
            continue
        order = max(int(r["group_order"]) for r in by_method.values())
        ratios = [f"{by_method[m]['wallclock_ratio']:.2f}" if m in by_method else "—" for m in methods]
        n = sorted({int(r["n_runs"]) for r in by_method.values()})
        lines.append(
            f"| {env_id} | {order} | {'/'.join(map(str, n))} | {by_method['plain']['steps_per_second']:.0f} | "
            + " | ".join(ratios)
            + f" | {1.1 * order:.1f} |"
        )
    return "\n".join(lines) + "\n\n" + _plain_of(rows, OVERHEAD_NOTE) + "\n"


OVERHEAD_NOTE = "Medians over n runs of training seconds (evaluations excluded), relative to plain DQN's."
"""The line under the compute-cost table."""


ACROSS_NOTE = (
    "Scores normalised per environment: 0 = a random policy's return (the baseline), 1 = the solve threshold. "
    "IQM over all runs of all environments, 95% CI from a bootstrap stratified by environment; P(> plain): "
    "the probability of improvement averaged over environments, with its 95% CI; n: runs per environment."
)
"""The line under the across-environments table."""


def across_envs_table(rows: list[dict[str, Any]], reps: int = stats.DEFAULT_REPS, seed: int = 0) -> str:
    """One line per method over every environment of ``rows``: normalised IQM with stratified CIs and P(> plain).

    A method enters only if it has the same number of runs on every environment (the bootstrap
    resamples a ``[n_runs, n_envs]`` matrix); the note under the table names the rest.
    """
    envs = list(dict.fromkeys(r["env_id"] for r in rows))
    by = {(r["env_id"], r["method"]): r for r in rows}
    methods = [m for m in dict.fromkeys(r["method"] for r in rows)]
    methods = [m for m in ALL_METHODS if m in methods] + sorted(set(methods) - set(ALL_METHODS))

    def matrix(method: str, key: str) -> np.ndarray | None:
        cols = []
        for e in envs:
            r = by.get((e, method))
            if r is None:
                return None
            lo, hi = float(r["baseline"]), float(r["threshold"])
            cols.append((np.asarray(r["_runs"][key], dtype=float) - lo) / (hi - lo))
        if len({len(c) for c in cols}) != 1:
            return None
        return np.stack(cols, axis=1)

    header = (
        "| method | n | normalised final: IQM [95% CI] | normalised AUC: IQM [95% CI] "
        "| P(final > plain) [95% CI] | P(AUC > plain) [95% CI] |"
    )
    lines = [header, "|" + "---|" * 6]
    left_out = []
    for m in methods:
        cells = []
        final = matrix(m, "final")
        if final is None:
            left_out.append(m)
            continue
        for key in ("final", "auc"):
            x = matrix(m, key)
            assert x is not None
            lo, hi = stats.bootstrap_ci(x, stats.iqm, reps=reps, seed=seed)
            cells.append(f"{stats.iqm(x):.2f} [{lo:.2f}, {hi:.2f}]")
        for key in ("final", "auc"):
            x, p = matrix(m, key), matrix("plain", key)
            if m == "plain" or p is None or x is None:
                cells.append("—")
                continue
            lo, hi = stats.probability_of_improvement_ci(x, p, reps=reps, seed=seed)
            cells.append(f"{stats.probability_of_improvement(x, p):.2f} [{lo:.2f}, {hi:.2f}]")
        lines.append(f"| {m} | {final.shape[0]} | " + " | ".join(cells) + " |")
    note = ACROSS_NOTE + f" Environments: {', '.join(envs)}."
    if left_out:
        note += f" Not on every one of them with equal runs: {', '.join(left_out)}."
    return "\n".join(lines) + "\n\n" + note + "\n"


def write_summary(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write the aggregated rows of :func:`aggregate` as CSV."""
    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[k for k in rows[0] if not k.startswith("_")], extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    write_atomic(path, buf.getvalue())


def plot_curves(curves: list[dict[str, Any]], env_id: str, path: str | Path, threshold: float | None = None) -> None:
    """Learning curves of ``env_id``: per method, the mean over seeds with a ±1 sample-std band (ddof 1), saved as PNG."""
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
        mean = ys.mean(0)
        std = ys.std(0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
        (line,) = ax.plot(grid, mean, label=f"{method} (n={len(runs)})")
        ax.fill_between(grid, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    if threshold is not None:
        ax.axhline(threshold, color="grey", ls="--", lw=1, label="solve threshold")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean evaluation return")
    ax.set_title(env_id)
    _save_figure(fig, ax, path)


def _save_figure(fig: Any, ax: Any, path: str | Path) -> None:
    """Grid, legend and tight layout on ``ax``; ``fig`` saved to ``path`` (folders made) and closed."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def plot_profile(curves: list[dict[str, Any]], env_id: str, path: str | Path) -> None:
    """Performance profile of ``env_id``: per method, the fraction of runs whose final return exceeds τ, as PNG."""
    matplotlib = require("matplotlib", "plots", "Plotting performance profiles")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_run = _curves_by_run([c for c in curves if c["env_id"] == env_id])
    finals = {m: [r[-1] for k, (_, r) in by_run.items() if k[1] == m] for m in dict.fromkeys(k[1] for k in by_run)}
    methods = [m for m in ALL_METHODS if m in finals] + sorted(m for m in finals if m not in ALL_METHODS)
    everything = np.concatenate([np.asarray(v, dtype=float) for v in finals.values()])
    lo, hi = float(everything.min()), float(everything.max())
    pad = 0.05 * (hi - lo or 1.0)
    taus = np.linspace(lo - pad, hi + pad, 400)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for method in methods:
        ax.step(taus, stats.performance_profile(finals[method], taus), where="post",
                label=f"{method} (n={len(finals[method])})")  # fmt: skip
    ax.set_xlabel("final return τ")
    ax.set_ylabel("fraction of runs with final return > τ")
    ax.set_title(f"{env_id}: performance profile")
    ax.set_ylim(-0.02, 1.02)
    _save_figure(fig, ax, path)
