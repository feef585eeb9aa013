"""``equirl bench``: the sample-efficiency benchmark, plain vs equivariant agents over environments × methods × seeds.

Each run trains from scratch with the environment's hyperparameters (``<algo>.yml``: ``dqn.yml`` unless the
config names another algorithm) and the budget in the config (the package's ``benchmark.yml``, or
``benchmark_ppo.yml`` / ``benchmark_qrdqn.yml`` with ``--config ppo`` / ``qrdqn``); runs already finished under ``--out`` are skipped,
so an interrupted sweep resumes. Then the results are aggregated into CSV files, a markdown table and
learning-curve plots.

Examples::

    # the whole benchmark on this machine (a process pool with one worker per CPU)
    equirl bench run --out results/benchmark
    # two environments, three seeds (0, 1, 2), two workers; then seed 4 alone
    equirl bench run --envs CartPole-v1 Acrobot-v1 --seeds 3 --workers 2
    equirl bench run --envs CartPole-v1 Acrobot-v1 --seed-list 4 --workers 2
    # PPO or QR-DQN instead of DQN: the shipped configs benchmark_ppo.yml / benchmark_qrdqn.yml
    equirl bench run --config ppo --out results/benchmark_ppo
    # the same runs as Ray tasks on a cluster (pip install 'ray>=2.9')
    equirl bench run --backend ray --ray-address auto
    # rebuild the table and plots from committed raw results, without training
    equirl bench aggregate --raw docs/benchmark --md docs/benchmark/table.md --img-dir docs/img
    # rebuild every committed table (docs/benchmark/tables.yml) and the copies in README.md and docs/
    equirl bench tables
    # a uniformly random policy's return (the configs' baseline), kept for make tables
    equirl bench baseline equirl/RotGrid-Cross-v0 --episodes 2000 --raw docs/results/baselines

``run`` writes per run ``<out>/<env>/<method>/seed<k>/{curve.csv,summary.json}``, then (unless
``--no-aggregate``) ``<out>/runs.csv``, ``curves.csv`` (raw), ``summary.csv``, ``table.md`` and
``benchmark_<env>.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from equirl.cli import UsageError
from equirl.files import write_atomic

__all__ = [
    "add_parser",
    "run",
    "aggregate_dir",
    "render_tables",
    "render_figures",
    "sync_markdown",
    "write_tables",
    "MANIFEST",
]

MANIFEST = Path("docs/benchmark/tables.yml")
"""The committed tables: which raw folders each is built from, where it and its plots go."""
MARKER = "<!-- table: "
"""A markdown file embeds a committed table as ``<!-- table: PATH -->`` followed by its lines."""


def _img_name(env_id: str) -> str:
    return "benchmark_" + env_id.replace("/", "_").replace("-", "_").lower() + ".png"


def _aggregate_raw(
    raws: Sequence[str | Path],
    config: str | Path | None = None,
    style: str = "full",
    renames: Sequence[dict[str, str] | None] = (),
    envs: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """``(rows, curves, table)`` of the raw results in the folders ``raws`` taken together.

    ``renames[i]`` maps method names of ``raws[i]`` to the names the table shows (a variant run
    under an existing method's name); ``envs`` and ``methods`` keep only those (in the order given
    for ``envs``). ``style``: ``"full"`` (:func:`sweep.markdown_table`), ``"compact"``
    (:func:`sweep.compact_table`), ``"overhead"`` (:func:`sweep.overhead_table`) or ``"across"``
    (:func:`sweep.across_envs_table`).
    """
    from equirl.agents import sweep

    if style not in STYLES:
        raise UsageError(f"Unknown table style {style!r}; expected one of {STYLES}.")
    if style == "policy-transfer":
        from equirl.agents import policy_transfer

        if len(raws) != 1:
            raise UsageError(f"A transfer table is built from one raw folder, got {list(map(str, raws))}.")
        runs_t, curves_t = policy_transfer.read_raw(raws[0])
        return [], [], policy_transfer.transfer_table(runs_t, curves_t)
    runs: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    for i, folder in enumerate(raws):
        rename = (renames[i] if i < len(renames) else None) or {}
        r, c = sweep.read_raw(folder)
        for row in (*r, *c):
            row["method"] = rename.get(str(row["method"]), row["method"])
        runs += r
        curves += c
    if envs is not None:
        runs = [r for r in runs if r["env_id"] in envs]
        curves = [c for c in curves if c["env_id"] in envs]
    if methods is not None:
        runs = [r for r in runs if r["method"] in methods]
        curves = [c for c in curves if c["method"] in methods]
    seen: dict[tuple[str, str, int], int] = {}
    for r in runs:
        key = (str(r["env_id"]), str(r["method"]), int(float(r["seed"])))
        seen[key] = seen.get(key, 0) + 1
    dups = [k for k, n in seen.items() if n > 1]
    if dups:
        raise UsageError(f"The raw folders {list(map(str, raws))} hold the same run more than once: {dups[:3]}.")
    thresholds = None
    if config is not None:
        thresholds = {k: (b.threshold, b.baseline) for k, b in sweep.load_config(config).items()}
    order = list(dict.fromkeys([*(envs or []), *sweep.load_config(config)]))  # table rows in this order
    rows = sweep.aggregate(runs, curves, thresholds, env_order=order)
    render = {
        "full": sweep.markdown_table,
        "compact": sweep.compact_table,
        "overhead": sweep.overhead_table,
        "across": sweep.across_envs_table,
    }
    return rows, curves, render[style](rows)


STYLES = ("full", "compact", "overhead", "across", "policy-transfer")
"""Table styles a manifest entry may ask for."""


def aggregate_dir(
    raw: str | Path | Sequence[str | Path],
    md: str | Path | None = None,
    img_dir: str | Path | None = None,
    config: str | Path | None = None,
    print_table: bool = True,
    plots: bool = True,
) -> str:
    """Aggregate raw results (``runs.csv`` + ``curves.csv``) into ``summary.csv``, a table and plots.

    ``raw`` is one folder or several taken together (the first gets ``summary.csv``). Thresholds come
    from the runs (or from ``config`` where it names the environment). Returns the markdown table;
    writes it to ``md`` (default ``<first raw>/table.md``) and, with ``plots``, learning curves into
    ``img_dir`` (default the first raw folder).
    """
    from equirl.agents import sweep

    raws = [Path(raw)] if isinstance(raw, (str, Path)) else [Path(r) for r in raw]
    rows, curves, table = _aggregate_raw(raws, config)
    sweep.write_summary(rows, raws[0] / "summary.csv")
    md_path = Path(md) if md else raws[0] / "table.md"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(md_path, table)
    if plots:
        _plot(rows, curves, Path(img_dir) if img_dir else raws[0])
    if print_table:
        print(table)
    return table


def _plot(rows: list[dict[str, Any]], curves: list[dict[str, Any]], img: Path) -> None:
    """Learning curves and performance profiles, one file each per environment of ``rows``, into ``img``."""
    from equirl.agents import sweep

    for env_id in dict.fromkeys(r["env_id"] for r in rows):
        thr = next(r["threshold"] for r in rows if r["env_id"] == env_id)
        sweep.plot_curves(curves, env_id, img / _img_name(env_id), threshold=thr)
        sweep.plot_profile(curves, env_id, img / _img_name(env_id).replace("benchmark_", "profile_"))


def _load_manifest(root: Path, manifest: str | Path | None) -> list[dict[str, Any]]:
    import yaml

    file = root / (manifest or MANIFEST)
    entries = yaml.safe_load(file.read_text()) or {}
    tables = entries.get("tables") if isinstance(entries, dict) else None
    if not isinstance(tables, list) or not tables:
        raise UsageError(f"{file}: expected a 'tables:' list of entries with raw (list of folders) and md.")
    for t in tables:
        if not isinstance(t, dict) or not t.get("raw") or not (t.get("md") or t.get("plot")):
            raise UsageError(
                f"{file}: every entry needs 'raw' (a list of folders) and 'md' (the table file) or, for a figure "
                f"alone, 'plot' (the figure file); got {t!r}."
            )
    return tables


TRANSFER_STYLES = ("transfer", "transfer-views")
"""Styles of tables built from a transfer suite's raw results (:mod:`equirl.agents.transfer_suite`): ``transfer``
(one folder with ``runs.csv`` + ``suite.json``: return against K) and ``transfer-views`` (folders with
``views.csv``: how far the pretrained network is from equivariant)."""


def _transfer_table(root: Path, raws: list[str], style: str) -> str:
    """The table of a transfer-style manifest entry (see :data:`TRANSFER_STYLES`)."""
    from equirl.agents import transfer_suite

    if style == "transfer":
        if len(raws) != 1:
            raise UsageError(f"A 'transfer' table is built from one suite folder, got {raws}.")
        return transfer_suite.render_folder(root / raws[0])
    rows = [r for folder in raws for r in transfer_suite.read_views(root / folder / "views.csv")]
    return transfer_suite.views_table(rows)


OVERHEAD_STYLE = "overhead-benchmark"
"""The style of a table built from the symmetrisation-overhead benchmark's raw CSVs (``scripts/benchmark_overhead.py
run``, :mod:`equirl.agents.overhead`): the raw folders' ``*.csv`` taken together. With ``measure``, ``against``
(``plain``, ``reference`` or ``own-reference``) and ``labels`` (e.g. ``[before, after]``): one compact table of
``labels[0] → labels[1]`` ratios (:func:`~equirl.agents.overhead.comparison_table`); with ``compare: [label1,
label2]``: the file ``scripts/benchmark_overhead.py report --compare label1 label2 --md`` writes (compact tables, then
the full report: :func:`~equirl.agents.overhead.report_markdown`); with ``targets: true``: issue 13's targets, each
median with its 95% bootstrap interval and verdict (:func:`~equirl.agents.overhead.targets_table`, of the one label
in ``labels``, or of the only label of the rows); with
none of these, the full report (:func:`~equirl.agents.overhead.markdown_report`). ``plot: PATH`` draws the
gradient-step figure (:func:`~equirl.agents.overhead.benchmark_plot`; ``plot_options: {interval: ci}`` for
bootstrap intervals instead of ranges). Times: the process's CPU time where the rows have it."""


def _overhead_table(root: Path, raws: list[str], entry: dict[str, Any]) -> str:
    """The table of an :data:`OVERHEAD_STYLE` manifest entry."""
    from equirl.agents import overhead

    try:
        files = overhead.raw_files(raws, root)
    except FileNotFoundError as err:
        raise UsageError(f"An {OVERHEAD_STYLE!r} table needs raw CSVs: {err}") from err
    summaries = overhead.summarise(overhead.read_raw(files))
    keys = [k for k in ("measure", "against", "labels") if k in entry]
    if "targets" in entry:
        labels = entry.get("labels")
        extra = [k for k in ("compare", "measure", "against") if k in entry]
        if (
            extra
            or entry["targets"] is not True
            or not (labels is None or (isinstance(labels, list) and len(labels) == 1))
        ):
            raise UsageError(
                f"An {OVERHEAD_STYLE!r} entry with targets: true takes at most labels (a list of one label) and no "
                f"compare, measure or against; got targets: {entry['targets']!r}, labels: {labels!r} and {extra} in "
                f"the entry for {entry['md']}."
            )
        try:
            return overhead.targets_table(summaries, label=None if labels is None else labels[0])
        except ValueError as err:
            raise UsageError(f"The entry for {entry['md']}: {err}") from err
    if "compare" in entry:
        if keys or not isinstance(entry["compare"], list):
            raise UsageError(
                f"An {OVERHEAD_STYLE!r} entry takes either compare (a list of two labels) or measure, against and "
                f"labels; got {entry['compare']!r} and {keys} in the entry for {entry['md']}."
            )
        try:
            return overhead.report_markdown(summaries, entry["compare"])
        except ValueError as err:
            raise UsageError(f"The entry for {entry['md']}: {err}") from err
    if not keys:
        return overhead.markdown_report(summaries).rstrip("\n") + "\n"
    if len(keys) != 3 or not isinstance(entry["labels"], list):
        raise UsageError(
            f"An {OVERHEAD_STYLE!r} comparison needs measure, against and labels (a list); got "
            f"{ {k: entry[k] for k in keys} } in the entry for {entry['md']}."
        )
    try:
        return overhead.comparison_table(summaries, entry["measure"], entry["against"], entry["labels"]) + "\n"
    except ValueError as err:
        raise UsageError(f"The entry for {entry['md']}: {err}") from err


RAW_STYLES: dict[str, str] = {
    "vision-cnn": "equirl.adapters.vision.results:cnn_table",
    "vision-pretrained": "equirl.adapters.vision.results:pretrained_table",
    "fairness": "equirl.adapters.fairness:table",
    "scan": "equirl.adapters.scan:table",
    "train-run": "equirl.agents.reports:train_results_table",
    "pretrained-agents": "equirl.agents.reports:pretrained_table",
    "env-speed": "equirl.envs.speed:table",
    "random-baseline": "equirl.agents.baselines:baselines_table",
    "sb3-substitution": "equirl.agents.reports:substitution_table",
    "overhead-ops": "equirl.agents.overhead_profile:ops_table",
    "overhead-op-names": "equirl.agents.overhead_profile:op_names_table",
    "overhead-predict-profile": "equirl.agents.overhead_profile:predict_profile_table",
    "discover-timing": "equirl.envs.symmetry_reports:discovery_table",
    "verify-calibration": "equirl.envs.symmetry_reports:calibration_table",
    "worked-example": "equirl.agents.worked_example:table",
    "threads-speed": "equirl.agents.threads:table",
}
"""Styles of tables built by an experiment's own table function from its raw folders (:mod:`equirl.rawresults`;
``pretrained-agents``: the ``.json`` files of ``agents/pretrained/``): ``function(folders, root=..., **options)``
with the entry's ``options``."""


def _raw_style_table(root: Path, raws: list[str], style: str, options: dict[str, Any] | None) -> str:
    """The table of a manifest entry whose style is one of :data:`RAW_STYLES`."""
    import importlib

    module, name = RAW_STYLES[style].split(":")
    try:
        return str(getattr(importlib.import_module(module), name)(raws, root=root, **(options or {})))
    except (ValueError, TypeError, FileNotFoundError) as err:
        raise UsageError(f"Cannot build the {style!r} table from {raws}: {err}") from err


def _render(root: Path, manifest: str | Path | None) -> list[tuple[dict[str, Any], list[Any], list[Any], str]]:
    """``(entry, rows, curves, table)`` for every table of the manifest."""
    out: list[tuple[dict[str, Any], list[Any], list[Any], str]] = []
    for t in _load_manifest(root, manifest):
        raws = [r if isinstance(r, str) else r["path"] for r in t["raw"]]
        if not t.get("md"):  # a figure alone (drawn by _figures)
            out.append((t, [], [], ""))
            continue
        if t.get("style") in RAW_STYLES:
            out.append((t, [], [], _raw_style_table(root, raws, t["style"], t.get("options"))))
            continue
        if t.get("style") in TRANSFER_STYLES:
            out.append((t, [], [], _transfer_table(root, raws, t["style"])))
            continue
        if t.get("style") == OVERHEAD_STYLE:
            out.append((t, [], [], _overhead_table(root, raws, t)))
            continue
        renames = [None if isinstance(r, str) else r.get("rename") for r in t["raw"]]
        rows, curves, table = _aggregate_raw(
            [root / r for r in raws], None, t.get("style", "full"), renames, t.get("envs"), t.get("methods")
        )
        out.append((t, rows, curves, table))
    return out


def render_tables(root: str | Path = ".", manifest: str | Path | None = None) -> dict[Path, str]:
    """Every table of the manifest as built from its committed raw results: ``{md path: table}``.

    Paths are relative to ``root`` (the repository). Nothing is written; no training.
    """
    return {Path(t["md"]): table for t, _, _, table in _render(Path(root), manifest) if t.get("md")}


def sync_markdown(text: str, tables: dict[Path, str]) -> str:
    """``text`` with the lines after each ``<!-- table: PATH -->`` replaced by ``tables[PATH]``.

    The embedded block is the table lines right after the marker, then, if present, a blank line
    and the generated note under the table; markers naming other paths stay as they are.
    """
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if not line.startswith(MARKER):
            continue
        path = Path(line[len(MARKER) :].split("-->")[0].strip())
        if path not in tables:
            continue
        # skip the old block: table lines, then (optionally) one blank line and one note paragraph
        while i < len(lines) and lines[i].startswith("|"):
            i += 1
        if i + 1 < len(lines) and lines[i] == "" and lines[i + 1].startswith(_note_starts()):
            i += 2
        out.extend(tables[path].rstrip("\n").split("\n"))
    return "\n".join(out)


def _note_starts() -> tuple[str, ...]:
    """How the notes under generated tables begin (``sweep.TABLE_NOTE``, ``OVERHEAD_NOTE``, ``ACROSS_NOTE``, the
    transfer suite's, ``policy_transfer.TRANSFER_NOTE``, the overhead targets' verdicts and the raw results note of
    :mod:`equirl.rawresults`)."""
    from equirl import rawresults
    from equirl.agents import overhead, policy_transfer, sweep, transfer_suite

    return (
        rawresults.NOTE_START,
        sweep.TABLE_NOTE[:30],
        sweep.OVERHEAD_NOTE[:30],
        sweep.ACROSS_NOTE[:30],
        transfer_suite.TRANSFER_NOTE,
        policy_transfer.TRANSFER_NOTE[:30],
        overhead.VERDICTS_NOTE,
    )


def markdown_files(root: str | Path = ".") -> list[Path]:
    """README.md and every markdown file under docs/ (relative to ``root``) that embeds a table."""
    root = Path(root)
    files = [Path("README.md"), *sorted(p.relative_to(root) for p in (root / "docs").rglob("*.md"))]
    return [f for f in files if (root / f).exists() and MARKER in (root / f).read_text()]


PLOT_STYLES: dict[str, str] = {
    "vision-pretrained": "equirl.adapters.vision.results:pretrained_plot",
    "agent-gif": "equirl.agents.reports:agents_gif",
    "overhead-benchmark": "equirl.agents.overhead:benchmark_plot",
}
"""Styles whose manifest entries may name a figure with ``plot: PATH``, drawn from the entry's raw folders by
``function(folders, path, root=..., **plot_options)`` (with the entry's ``plot_options``), byte for byte the
same from the same files. An entry of a style that builds no table (``agent-gif``: a GIF of committed agents)
has ``plot`` and no ``md``."""


def _figures(root: Path, rendered: list[tuple[dict[str, Any], list[Any], list[Any], str]], out: Path) -> list[Path]:
    """Draw every figure of the manifest entries ``rendered`` under ``out``; their paths relative to ``out``."""
    import importlib

    written: list[Path] = []
    for t, rows, curves, _ in rendered:
        style = t.get("style", "full")
        if t.get("plot"):
            if style not in PLOT_STYLES:
                raise UsageError(
                    f"The entry for {t.get('md') or t['plot']} names plot: {t['plot']}, but style {style!r} draws no figure; "
                    f"styles with figures: {sorted(PLOT_STYLES)} (and img_dir for the learning-curve styles)."
                )
            module, name = PLOT_STYLES[style].split(":")
            raws = [r if isinstance(r, str) else r["path"] for r in t["raw"]]
            try:
                getattr(importlib.import_module(module), name)(
                    raws, out / t["plot"], root=root, **(t.get("plot_options") or {})
                )
            except (ValueError, TypeError, FileNotFoundError) as err:  # bad plot_options or raw folders
                raise UsageError(f"Cannot draw {t['plot']} (style {style!r}) from {raws}: {err}") from err
            written.append(Path(t["plot"]))
        if not t.get("img_dir"):
            continue
        img = Path(t["img_dir"])
        if style == "transfer":
            from equirl.agents import transfer_suite

            folder = root / t["raw"][0]
            settings, runs = transfer_suite.read_folder(folder)
            transfer_suite.plot_budgets(settings, runs, out / img / f"{folder.name}.png")
            written.append(img / f"{folder.name}.png")
        elif style not in RAW_STYLES and style not in TRANSFER_STYLES and style != OVERHEAD_STYLE:
            _plot(rows, curves, out / img)
            for env_id in dict.fromkeys(r["env_id"] for r in rows):
                written += [img / _img_name(env_id), img / _img_name(env_id).replace("benchmark_", "profile_")]
    return written


def render_figures(root: str | Path = ".", out: str | Path = ".", manifest: str | Path | None = None) -> list[Path]:
    """Draw every figure that ``make tables`` rebuilds (learning curves, profiles, transfer and ``plot:`` figures)
    from the committed raw results of ``root`` into the folder ``out`` (same relative paths); returns those paths.
    """
    root = Path(root)
    return _figures(root, _render(root, manifest), Path(out))


def write_tables(root: str | Path = ".", manifest: str | Path | None = None, plots: bool = True) -> list[Path]:
    """Rebuild every table of the manifest (and its figures), then its copies in README.md and docs/.

    An entry with one raw folder and the full style also rewrites that folder's ``summary.csv``.
    Returns the files whose text changed (figures are rewritten without being listed).
    """
    from equirl.agents import sweep

    root = Path(root)
    rendered = _render(root, manifest)
    tables = {Path(t["md"]): table for t, _, _, table in rendered if t.get("md")}
    changed: list[Path] = []
    if plots:
        _figures(root, rendered, root)
    for t, rows, _, table in rendered:
        if not t.get("md"):
            continue
        md = Path(t["md"])
        if len(t["raw"]) == 1 and isinstance(t["raw"][0], str) and t.get("style", "full") == "full":
            sweep.write_summary(rows, root / t["raw"][0] / "summary.csv")
        if not (root / md).exists() or (root / md).read_text() != table:
            write_atomic(root / md, table)
            changed.append(md)
    for f in markdown_files(root):
        old = (root / f).read_text()
        new = sync_markdown(old, tables)
        if new != old:
            write_atomic(root / f, new)
            changed.append(f)
    return changed


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
    r.add_argument(
        "--config",
        default=None,
        help="benchmark YAML (budgets, thresholds, algorithm), or a shipped one by name: ppo, qrdqn "
        "(benchmark_<name>.yml); default: the package's DQN benchmark.yml",
    )
    r.add_argument("--envs", nargs="+", default=None, help="environment ids (default: all in the config)")
    r.add_argument("--methods", nargs="+", default=methods, choices=methods)
    seeds = r.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="one number N (seeds 0..N-1) or an explicit list of two or more (default: config defaults.seeds)",
    )
    seeds.add_argument(
        "--seed-list",
        type=int,
        nargs="+",
        default=None,
        metavar="SEED",
        help="exactly these seeds, one or more (--seed-list 4 runs seed 4 alone)",
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
    a.add_argument("--no-plots", action="store_true", help="write the table only")

    b = sub.add_parser(
        "baseline",
        help="a uniformly random policy's return per environment (the configs' baseline), with --raw kept",
        description="Play --episodes episodes per environment with uniformly random actions on the environment the "
        "benchmark trains on, print the table (mean return with a 95%% bootstrap CI, share terminated, median "
        "length, the baseline the configs declare) and, with --raw, keep the per-episode results for make tables.",
    )
    b.add_argument("envs", nargs="*", help="environment ids (default: every environment of benchmark.yml)")
    b.add_argument("--episodes", type=int, default=1000)
    b.add_argument("--seed", type=int, default=0, help="episode k is reset with seed + k")
    b.add_argument("--raw", default=None, help="write the raw results (results.csv + meta.json) to this new folder")
    b.add_argument("--overwrite", action="store_true", help="replace an existing --raw folder")
    b.add_argument("--no-progress", action="store_true")

    t = sub.add_parser("tables", help="rebuild every committed table and plot from committed raw results (no training)")
    t.add_argument("--root", default=".", help="the repository (default: the current folder)")
    t.add_argument("--manifest", default=None, help=f"the list of tables (default: {MANIFEST})")
    t.add_argument("--no-plots", action="store_true", help="tables only")
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
    if args.seed_list is not None:
        seeds = list(dict.fromkeys(args.seed_list))
    elif args.seeds is None:
        seeds = list(range(sweep.default_seeds(args.config)))
    elif len(args.seeds) == 1:
        seeds = list(range(args.seeds[0]))
    else:
        seeds = list(args.seeds)
    return sweep.make_specs(chosen, args.methods, seeds, args.order)


def _baseline(args: argparse.Namespace) -> int:
    """``equirl bench baseline``: random-policy returns, printed, and kept with ``--raw``."""
    import tempfile

    from equirl import rawresults
    from equirl.agents import baselines, sweep

    if args.episodes < 1:
        raise UsageError(f"--episodes must be at least 1, got {args.episodes}.")
    env_ids = args.envs or list(sweep.load_config())
    started = None
    if args.raw:
        try:
            started = rawresults.check_new(args.raw, args.overwrite)
        except FileExistsError as err:
            raise UsageError(str(err)) from err
    t0 = time.perf_counter()
    rows = [
        r
        for e in env_ids
        for r in baselines.random_policy_rows(e, args.episodes, args.seed, progress=not args.no_progress)
    ]
    settings = {"envs": env_ids, "episodes": args.episodes, "seed": args.seed}
    seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.raw) if args.raw else Path(tmp) / "baseline"
        rawresults.write_raw(folder, rows, settings, started=started, seconds=seconds, overwrite=args.overwrite)
        table = baselines.baselines_table([folder])
        print(table if args.raw else table.split("\n\n")[0])  # the note names the folder, a temporary one here
    if args.raw:
        print(f"wrote the raw results to {args.raw}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run or aggregate as ``args`` says; returns the exit status (1 if a run failed)."""
    from equirl.agents import sweep

    if args.bench_command == "tables":
        changed = write_tables(args.root, args.manifest, plots=not args.no_plots)
        print(f"{len(changed)} file(s) changed" + "".join(f"\n  {c}" for c in changed))
        return 0
    if args.bench_command == "baseline":
        return _baseline(args)
    if args.bench_command == "aggregate":
        if args.out is None and args.raw is None:
            raise UsageError("aggregate needs --out (a sweep folder) or --raw (runs.csv + curves.csv).")
        if args.out is not None:
            sweep.write_raw(*sweep.collect(args.out), args.raw or args.out)
        aggregate_dir(args.raw or args.out, args.md, args.img_dir, args.config, plots=not args.no_plots)
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
