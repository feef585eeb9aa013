"""``equirl bench``: the sample-efficiency benchmark, plain vs equivariant DQN over environments × methods × seeds.

Each run trains from scratch with the environment's hyperparameters (``dqn.yml``)
and the budget in the package's ``benchmark.yml``; runs already finished under ``--out`` are skipped,
so an interrupted sweep resumes. Then the results are aggregated into CSV files, a markdown table and
learning-curve plots.

Examples::

    # the whole benchmark on this machine (a process pool with one worker per CPU)
    equirl bench run --out results/benchmark
    # two environments, three seeds, two workers
    equirl bench run --envs CartPole-v1 Acrobot-v1 --seeds 3 --workers 2
    # the same runs as Ray tasks on a cluster (pip install 'ray>=2.9')
    equirl bench run --backend ray --ray-address auto
    # rebuild the table and plots from committed raw results, without training
    equirl bench aggregate --raw docs/benchmark --md docs/benchmark/table.md --img-dir docs/img

``run`` writes per run ``<out>/<env>/<method>/seed<k>/{curve.csv,summary.json}``, then (unless
``--no-aggregate``) ``<out>/runs.csv``, ``curves.csv`` (raw), ``summary.csv``, ``table.md`` and
``benchmark_<env>.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from equirl.cli import UsageError

__all__ = ["add_parser", "run", "aggregate_dir"]


def _img_name(env_id: str) -> str:
    return "benchmark_" + env_id.replace("/", "_").replace("-", "_").lower() + ".png"


def aggregate_dir(
    raw: str | Path,
    md: str | Path | None = None,
    img_dir: str | Path | None = None,
    config: str | Path | None = None,
    print_table: bool = True,
) -> str:
    """Aggregate raw results in ``raw`` (``runs.csv`` + ``curves.csv``) into ``summary.csv``, a table and plots.

    Thresholds come from the runs (or from ``config`` where it names the environment). Returns the
    markdown table; writes it to ``md`` (default ``raw/table.md``) and plots into ``img_dir``
    (default ``raw``).
    """
    from equirl.agents import sweep

    raw = Path(raw)
    runs, curves = sweep.read_raw(raw)
    thresholds = None
    if config is not None:
        thresholds = {k: (b.threshold, b.baseline) for k, b in sweep.load_config(config).items()}
    order = list(sweep.load_config(config))  # table rows in the config's order
    rows = sweep.aggregate(runs, curves, thresholds, env_order=order)
    sweep.write_summary(rows, raw / "summary.csv")
    table = sweep.markdown_table(rows)
    md_path = Path(md) if md else raw / "table.md"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(table)
    img = Path(img_dir) if img_dir else raw
    for env_id in dict.fromkeys(r["env_id"] for r in rows):
        thr = next(r["threshold"] for r in rows if r["env_id"] == env_id)
        sweep.plot_curves(curves, env_id, img / _img_name(env_id), threshold=thr)
    if print_table:
        print(table)
    return table


def add_parser(parent: Any) -> argparse.ArgumentParser:
    """Attach ``bench`` (with ``run`` and ``aggregate``) to the ``equirl`` subparsers."""
    from equirl.averaging import METHODS

    methods = ["plain", *METHODS]
    p = parent.add_parser(
        "bench",
        help="sample-efficiency benchmark: run a sweep, or aggregate results",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(run=run)
    sub = p.add_subparsers(dest="bench_command", required=True)

    r = sub.add_parser("run", help="run the sweep (resumes), then aggregate")
    r.add_argument("--config", default=None, help="benchmark YAML (budgets, thresholds; default: the package's)")
    r.add_argument("--envs", nargs="+", default=None, help="environment ids (default: all in the config)")
    r.add_argument("--methods", nargs="+", default=methods, choices=methods)
    r.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="one number N (seeds 0..N-1) or an explicit list (default: config defaults.seeds)",
    )
    r.add_argument("--timesteps", type=int, default=None, help="override every environment's budget (smoke tests)")
    r.add_argument("--eval-freq", type=int, default=None, help="override every environment's eval_freq")
    r.add_argument("--n-eval-episodes", type=int, default=None)
    r.add_argument(
        "--order",
        choices=["seed", "env"],
        default="seed",
        help="submission order: seed-major, or environment-major in the --envs order",
    )
    r.add_argument("--out", default="results/benchmark", help="per-run results and aggregated outputs")
    r.add_argument("--backend", choices=["local", "ray"], default="local")
    r.add_argument("--workers", type=int, default=None, help="local processes (default: CPU count)")
    r.add_argument(
        "--ray-address", default=None, help="Ray cluster ('auto', 'ray://host:10001'); default: start a local instance"
    )
    r.add_argument("--ray-num-cpus", type=int, default=None, help="CPUs of a local Ray instance")
    r.add_argument("--ray-working-dir", default=None, help="upload this directory to the Ray workers (remote clusters)")
    r.add_argument("--no-aggregate", action="store_true")
    r.add_argument("--no-progress", action="store_true")

    a = sub.add_parser("aggregate", help="aggregate results without training")
    a.add_argument("--out", default=None, help="a sweep's --out: collect its runs into runs.csv/curves.csv first")
    a.add_argument("--raw", default=None, help="folder with runs.csv and curves.csv (default: --out)")
    a.add_argument("--md", default=None, help="markdown table path (default: <raw>/table.md)")
    a.add_argument("--img-dir", default=None, help="folder for benchmark_<env>.png (default: <raw>)")
    a.add_argument("--config", default=None, help="take thresholds from this config instead of the runs")
    return p


def _select(args: argparse.Namespace) -> list[Any]:
    from equirl.agents import sweep

    benches = sweep.load_config(args.config)
    env_ids = args.envs or list(benches)
    unknown = [e for e in env_ids if e not in benches]
    if unknown:
        raise UsageError(
            f"No benchmark entry for {unknown} in {args.config or sweep.DEFAULT_CONFIG}; known: {list(benches)}."
        )
    chosen = []
    for e in env_ids:
        b = benches[e]
        if args.timesteps is not None:
            b.timesteps = args.timesteps
        if args.eval_freq is not None:
            b.eval_freq = args.eval_freq
        if args.n_eval_episodes is not None:
            b.n_eval_episodes = args.n_eval_episodes
        chosen.append(b)
    if args.seeds is None:
        seeds = list(range(sweep.default_seeds(args.config)))
    elif len(args.seeds) == 1:
        seeds = list(range(args.seeds[0]))
    else:
        seeds = list(args.seeds)
    return sweep.make_specs(chosen, args.methods, seeds, args.order)


def run(args: argparse.Namespace) -> int:
    """Run or aggregate as ``args`` says; returns the exit status (1 if a run failed)."""
    from equirl.agents import sweep

    if args.bench_command == "aggregate":
        if args.out is None and args.raw is None:
            raise UsageError("aggregate needs --out (a sweep folder) or --raw (runs.csv + curves.csv).")
        if args.out is not None:
            sweep.write_raw(*sweep.collect(args.out), args.raw or args.out)
        aggregate_dir(args.raw or args.out, args.md, args.img_dir, args.config)
        return 0

    specs = _select(args)
    todo = sweep.pending(specs, args.out)
    print(f"{len(specs)} runs, {len(specs) - len(todo)} already finished, {len(todo)} to run ({args.backend}).")
    start = time.perf_counter()
    if args.backend == "ray":
        results = sweep.run_ray(
            todo, args.out, args.ray_address, args.ray_num_cpus, args.ray_working_dir, progress=not args.no_progress
        )
    else:
        results = sweep.run_local(todo, args.out, args.workers, progress=not args.no_progress)
    failed = [r for r in results if "error" in r]
    for r in failed:
        print(f"FAILED {r['run_id']}:\n{r['error']}", file=sys.stderr)
    print(f"{len(results) - len(failed)} runs finished, {len(failed)} failed in {time.perf_counter() - start:.0f} s.")
    if not args.no_aggregate:
        runs, curves = sweep.collect(args.out)
        if runs:
            sweep.write_raw(runs, curves, args.out)
            aggregate_dir(args.out)
    return 1 if failed else 0
