"""The transfer suite: a pretrained (plain) DQN made equivariant on its environment's tasks, per method and seed.

For each task (the pretraining one and its transformed variants), each method and each seed, the pretrained
Q-network is made equivariant (:func:`equirl.agents.equivariant_from_pretrained`) and evaluated **before any
step of the task** (K = 0, true zero-shot; λ-equitune with its initial λ-net, which is exactly equitune), then
finetuned on the task for a budget of environment steps, evaluated every ``eval_freq`` steps: every method is
compared after the same K task steps (λ-equitune's frozen-backbone fit, ``lambda_fit_steps``, is the first
part of its K). :func:`run_suite` writes::

    OUT/runs.csv     task, method, seed, timesteps (= K), mean_return, std_return: every evaluation (the raw results)
    OUT/suite.json   the settings, the command, the code version and the machine
    OUT/table.md     :func:`transfer_table`: return against K (mean, 95% bootstrap CI), IQM and P(> plain)
    OUT/transfer.png :func:`plot_budgets`: return against K, one panel per task
    OUT/runs.jsonl   one line per finished run (what an interrupted suite keeps)
    OUT/tb/task<i>/<method>_s<seed>_1/   tensorboard logs of each run (eval/mean_reward at every evaluation)
    OUT/evals/task<i>/<method>_s<seed>/  eval.csv and SB3's evaluations.npz of each run

``runs.csv`` + ``suite.json`` are the compact raw results committed under ``docs/benchmark/transfer_*``; ``make
tables`` rebuilds the tables and plots from them (:func:`render_folder`, ``style: transfer`` in
``docs/benchmark/tables.yml``). :func:`view_agreement` measures how far the pretrained Q-network is from
equivariant on its own task's states (why averaging loses return there).

The command line is ``equirl transfer``. Suites are listed in :data:`TASKS` (a suite is an environment, or
``ENV/variant`` for a second set of tasks with its own pretrained agent, :data:`SUITE_ENV`); every other catalogue
entry (or a user's environment with a registered symmetry) gets tasks derived from its symmetry, the world seen
through each group element (:func:`tasks_for`). Budgets come from the ``finetune:`` mapping of the environment's
entry in ``dqn.yml`` (defaults without one); the pretrained agent is the shipped one or a user's zip (``pretrained``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from equirl.agents import stats
from equirl.agents.hyperparams import finetune_hyperparams, hyperparams_for, pretrained_path
from equirl.agents.io import read_json, write_atomic
from equirl.agents.training import ALL_METHODS
from equirl.agents.transfer import load_pretrained
from equirl.envs.wrappers import make_task_env, transformed_tasks
from stable_baselines3 import DQN

from equirl.extras import require
from equirl.figures import save_png
from equirl.rawresults import code_version, machine

SUITE_FILE = "suite.json"
"""The settings of the suite's last run, next to its ``runs.csv`` / ``runs.jsonl``."""

__all__ = [
    "TASKS",
    "SUITE_ENV",
    "PRETRAINED",
    "LABELS",
    "KEEPS_MOST",
    "TRANSFER_NOTE",
    "tasks_for",
    "run_suite",
    "read_folder",
    "transfer_table",
    "plot_budgets",
    "render_folder",
    "view_agreement",
    "views_table",
    "write_views",
    "read_views",
    "code_version",
    "machine",
]

LABELS = {
    "plain": "plain",
    "equitune": "equitune",
    "equizero": "equizero",
    "lambda": "λ-equitune",
    "equizero-td": "equizero-td",
}
COLORS = {
    "plain": "tab:gray",
    "equitune": "tab:blue",
    "equizero": "tab:orange",
    "lambda": "tab:green",
    "equizero-td": "tab:red",
}

KEEPS_MOST = 0.8
"""A transformed task on which plain's true zero-shot return is at least this fraction of its return on the
pretraining task "does not measure transfer": the pretrained agent already solves it without any symmetry."""

TRANSFER_NOTE = "Transfer at equal data:"
"""How the note under every transfer table begins (``equirl bench tables`` finds embedded copies by it)."""

# Suites: name -> tasks {task name: {"env_kwargs", "reset_options", "half_track", "transform"}}; the first task
# is the pretraining task. A name "ENV/variant" runs on ENV (SUITE_ENV) with its own pretrained agent.
TASKS: dict[str, dict[str, dict[str, Any]]] = {
    "equirl/RotGrid-Corner-v0": {
        "goal in a bottom corner (pretraining)": {"env_kwargs": {"goal_corners": (2, 3)}},
        "goal in a top corner (rot 180°)": {"env_kwargs": {"goal_corners": (0, 1)}},
        "goal in a left corner (rot 270°)": {"env_kwargs": {"goal_corners": (0, 3)}},
    },
    "CartPole-v1": {
        "standard starts (pretraining)": {},
        "starts in [+0.05, +0.15]^4": {"reset_options": {"low": 0.05, "high": 0.15}},
        "reflected: starts in [-0.15, -0.05]^4": {"reset_options": {"low": -0.15, "high": -0.05}},
    },
    "CartPole-v1/half-track": {
        "right half: x in (0, 2.4), starts x ~ U[0.8, 1.6] (pretraining)": {"half_track": {"low": 0.8, "high": 1.6}},
        "mirror image: left half, x in (-2.4, 0)": {"half_track": {"low": 0.8, "high": 1.6}, "transform": 1},
    },
    "Acrobot-v1": {"standard starts (pretraining)": {}},
    "MiniGrid-Empty-5x5-v0": {
        "standard layout (pretraining)": {},
        "mirrored world": {"transform": 1},
    },
    # a chiral layout (lava beside the start, goal behind it): its mirror image is not a rotation of itself
    "MiniGrid-DistShift1-v0": {
        "standard layout (pretraining)": {},
        "mirrored world": {"transform": 1},
    },
}
SUITE_ENV = {"CartPole-v1/half-track": "CartPole-v1"}
"""The environment of a suite whose name is not an environment id."""
PRETRAINED = {
    "equirl/RotGrid-Corner-v0": "rotgrid_bottom_plain",
    "CartPole-v1": "cartpole_plain",
    "CartPole-v1/half-track": "cartpole_halftrack_plain",
    "Acrobot-v1": "acrobot_plain",
    "MiniGrid-Empty-5x5-v0": "minigrid_empty5_plain",
    "MiniGrid-DistShift1-v0": "minigrid_distshift1_plain",
}


def tasks_for(env_id: str, symmetry: str | None = None) -> dict[str, dict[str, Any]]:
    """The transfer tasks of the suite ``env_id``: :data:`TASKS` where it lists it, otherwise the tasks derived
    from its symmetry (``symmetry``, default ``env_id``): the original world and the world seen through each
    non-identity group element (:func:`equirl.envs.wrappers.transformed_tasks`). The first is the pretraining task.
    """
    if env_id in TASKS:
        return TASKS[env_id]
    return transformed_tasks(env_id, symmetry)


def _one_run(job: dict[str, Any]) -> dict[str, Any]:
    """Worker: one (task, method, seed). Returns the run as a dict (picklable)."""
    import functools

    import torch

    torch.set_num_threads(job["threads"])
    from equirl.agents.transfer import run_transfer
    from equirl.envs.catalog import get_symmetry

    sym = get_symmetry(job["symmetry"]) if job["method"] != "plain" else None
    factory = functools.partial(make_task_env, job["env_id"], job["task"])
    run = run_transfer(
        job["pretrained"],
        sym,
        job["method"],
        factory,
        finetune_steps=job["steps"],
        seed=job["seed"],
        task=job["task_name"],
        lambda_fit_steps=job["lambda_fit_steps"],
        eval_freq=job["eval_freq"],
        n_eval_episodes=job["eval_episodes"],
        hyperparams=job["hyperparams"],
        trusted=job.get("trusted", False),
        tensorboard_log=job["tensorboard_log"],
        log_dir=job["log_dir"],
    )
    print(
        f"  {job['task_name']:<40} {job['method']:<9} seed {job['seed']}: zero-shot {run.zero_shot:8.2f} "
        f"final {run.final:8.2f} ({run.seconds:.0f}s)",
        flush=True,
    )
    return {
        "task": run.task,
        "method": run.method,
        "seed": run.seed,
        "zero_shot": run.zero_shot,
        "curve": run.curve,
        "lambda_fit_steps": run.lambda_fit_steps,
        "seconds": run.seconds,
    }


# -- raw results and tables --------------------------------------------------------------------------------
RUNS_FIELDS = ("task", "method", "seed", "timesteps", "mean_return", "std_return")
"""Columns of ``runs.csv``: one row per evaluation; ``timesteps`` = task steps so far (K), ``mean_return`` /
``std_return`` over the evaluation's episodes (population std of the episodes, ddof 0)."""


def runs_csv(runs: list[dict[str, Any]]) -> str:
    """``runs.csv`` (:data:`RUNS_FIELDS`) of runs as :func:`run_suite` keeps them, sorted by task, method, seed."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RUNS_FIELDS)
    for r in sorted(runs, key=lambda r: (r["task"], r["method"], int(r["seed"]))):
        for row in r["curve"]:
            w.writerow(
                [r["task"], r["method"], r["seed"], int(row["timesteps"]), repr(float(row["mean_return"])),
                 repr(float(row["std_return"]))]
            )  # fmt: skip
    return buf.getvalue()


def read_folder(folder: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(settings, runs)`` of a suite's raw results: ``suite.json`` and ``runs.csv`` in ``folder``.

    ``runs``: ``{task, method, seed, curve: [{timesteps, mean_return, std_return}]}`` per run.
    """
    folder = Path(folder)
    for name in (SUITE_FILE, "runs.csv"):
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder / name} does not exist: a transfer suite's raw results are {SUITE_FILE} "
                                    "and runs.csv (equirl transfer --out FOLDER writes them).")  # fmt: skip
    settings = read_json(folder / SUITE_FILE, "transfer suite settings")
    by: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    with open(folder / "runs.csv", newline="") as f:
        for row in csv.DictReader(f):
            key = (row["task"], row["method"], int(row["seed"]))
            by.setdefault(key, []).append({k: float(row[k]) for k in ("timesteps", "mean_return", "std_return")})
    runs = [{"task": t, "method": m, "seed": sd, "curve": sorted(c, key=lambda x: x["timesteps"])}
            for (t, m, sd), c in by.items()]  # fmt: skip
    return settings, runs


def _at(run: dict[str, Any], k: int) -> float | None:
    """The run's mean return at exactly ``k`` task steps (None when it was not evaluated there)."""
    for row in run["curve"]:
        if int(row["timesteps"]) == k:
            return float(row["mean_return"])
    return None


def budgets(runs: list[dict[str, Any]]) -> list[int]:
    """The budgets K at which every run was evaluated (0 first)."""
    common: set[int] | None = None
    for r in runs:
        ks = {int(row["timesteps"]) for row in r["curve"]}
        common = ks if common is None else common & ks
    return sorted(common or set())


def _scores(runs: list[dict[str, Any]], task: str, method: str, k: int) -> np.ndarray:
    """Per-seed mean returns ``[n_seeds]`` of ``method`` on ``task`` after ``k`` task steps (seed order)."""
    rs = sorted((r for r in runs if r["task"] == task and r["method"] == method), key=lambda r: r["seed"])
    vals = [_at(r, k) for r in rs]
    return np.array([v for v in vals if v is not None], dtype=float)


def _ci_cell(x: np.ndarray, statistic: Any = stats.mean) -> str:
    if len(x) == 0:
        return "–"
    lo, hi = stats.bootstrap_ci(x, statistic) if len(x) > 1 else (float(x[0]), float(x[0]))
    return f"{statistic(x):.2f} [{lo:.2f}, {hi:.2f}]"


def transfer_table(settings: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """Markdown: each task × method's return after K task steps for every budget K every run reached.

    Cells are the mean over seeds with its 95% stratified-bootstrap interval; the last K also gets the IQM
    (with its interval) and the probability of improvement over plain. The ``plain keeps`` column says what
    plain scores on each task zero-shot as a share of its return on the pretraining task, and labels tasks on
    which it keeps at least :data:`KEEPS_MOST` "does not measure transfer". A one-paragraph note follows.
    """
    tasks = [t for t in settings["tasks"] if any(r["task"] == t for r in runs)]
    methods = [m for m in settings["methods"] if any(r["method"] == m for r in runs)]
    ks = budgets(runs)
    if not tasks or not ks:
        raise ValueError("transfer_table: no runs with a common evaluation budget.")
    kmax = ks[-1]
    source = settings["tasks"][0]
    plain_src = _scores(runs, source, "plain", 0)
    ref = float(plain_src.mean()) if len(plain_src) else float("nan")
    head = ["task", "plain keeps (K = 0)", "method", *[f"K = {k:,}" for k in ks], f"IQM at K = {kmax:,}",
            f"P(> plain) at K = {kmax:,}"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    seeds = sorted({int(r["seed"]) for r in runs})
    for t in tasks:
        plain0 = _scores(runs, t, "plain", 0)
        if t == source:
            verdict = f"{ref:.2f}: pretraining task"
        elif len(plain0) and np.isfinite(ref) and ref > 0:
            share = float(plain0.mean()) / ref
            label = "**does not measure transfer**" if share >= KEEPS_MOST else "measures transfer"
            verdict = f"{plain0.mean():.2f} ({100 * share:.0f}%): {label}"
        else:
            verdict = "–"
        present = [m for m in methods if any(r["task"] == t and r["method"] == m for r in runs)]
        for i, m in enumerate(present):
            cells = [_ci_cell(_scores(runs, t, m, k)) for k in ks]
            final = _scores(runs, t, m, kmax)
            plain = _scores(runs, t, "plain", kmax)
            if m == "plain" or not len(plain) or not len(final):
                poi = "–"
            else:
                lo, hi = stats.probability_of_improvement_ci(final, plain)
                poi = f"{stats.probability_of_improvement(final, plain):.2f} [{lo:.2f}, {hi:.2f}]"
            row = [t if i == 0 else "", verdict if i == 0 else "", LABELS.get(m, m), *cells,
                   _ci_cell(final, stats.iqm), poi]  # fmt: skip
            lines.append("| " + " | ".join(row) + " |")
    fit = min(int(settings.get("lambda_fit_steps", 0)), kmax)
    lam = f"its frozen-backbone fit is the first {fit:,} steps of its K, finetuning the rest" if fit else "no λ fit"
    note = (
        f"{TRANSFER_NOTE} greedy return after K steps of the task for every method (K = 0: no step of the task, "
        f"true zero-shot; λ-equitune's initial λ-net gives every view the weight 1/|G|, so at K = 0 it is exactly "
        f"equitune; {lam}). "
        f"Cells: mean over {len(seeds)} seed{'s' if len(seeds) != 1 else ''} [95% stratified-bootstrap CI, {stats.DEFAULT_REPS:,} resamples]; "
        f"IQM with its CI (with fewer than 4 runs the IQM trims none and equals the mean); P(> plain): probability that a run of the method beats a run of plain at the last K "
        f"[95% CI]. {settings.get('eval_episodes', '?')} greedy evaluation episode"
        f"{'' if settings.get('eval_episodes') == 1 else 's'} per point, evaluation seed "
        f"10000 + seed for every method. 'plain keeps': plain's K = 0 return on the task as a share of its K = 0 "
        f"return on the pretraining task; a task where it keeps {100 * KEEPS_MOST:.0f}% or more does not measure "
        f"transfer. Pretrained agent `{Path(str(settings.get('pretrained', '?'))).name}`; raw results: runs.csv "
        f"and suite.json (command, code version, machine) next to this table."
    )
    return "\n".join(lines) + "\n\n" + note + "\n"


def plot_budgets(settings: dict[str, Any], runs: list[dict[str, Any]], path: str | Path, title: str = "") -> None:
    """One panel per task: mean return (line) and its 95% bootstrap CI (band) against K, per method."""
    matplotlib = require("matplotlib", "plots", "Plotting transfer curves")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in settings["tasks"] if any(r["task"] == t for r in runs)]
    methods = [m for m in settings["methods"] if any(r["method"] == m for r in runs)]
    ks = budgets(runs)
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(6.0, 3.8 * len(tasks)), 3.5), squeeze=False, sharey=True)
    for ax, t in zip(axes[0], tasks, strict=True):
        for m in methods:
            mu, lo, hi = [], [], []
            for k in ks:
                x = _scores(runs, t, m, k)
                mu.append(float(x.mean()))
                a, b = stats.bootstrap_ci(x, stats.mean) if len(x) > 1 else (mu[-1], mu[-1])
                lo.append(a)
                hi.append(b)
            ax.plot(ks, mu, marker="o", ms=3, label=LABELS.get(m, m), color=COLORS.get(m))
            ax.fill_between(ks, lo, hi, alpha=0.12, color=COLORS.get(m))
        ax.set_title(t if len(t) < 48 else t[:45] + "...", fontsize=8)
        ax.set_xlabel("task steps K")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("greedy return (mean, 95% CI)")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title or f"{settings.get('env_id', '')}: return after K task steps", fontsize=10)
    fig.tight_layout()
    save_png(fig, path)


def render_folder(folder: str | Path) -> str:
    """The transfer table (:func:`transfer_table`) of the raw results in ``folder``."""
    settings, runs = read_folder(folder)
    return transfer_table(settings, runs)


def run_suite(
    env_id: str,
    *,
    pretrained: str | Path | None = None,
    symmetry: str | None = None,
    methods: list[str] | None = None,
    task_indices: list[int] | None = None,
    seeds: int = 5,
    steps: int | None = None,
    lambda_fit_steps: int | None = None,
    eval_freq: int | None = None,
    eval_episodes: int = 20,
    jobs: int = 1,
    threads: int = 1,
    out: str | Path | None = None,
    plot_path: str | Path | None = None,
    summarise_only: bool = False,
    command: str = "",
    trusted: bool = False,
) -> str:
    """Run the transfer suite ``env_id`` (every task × method × seed) and write its outputs to ``out``.

    ``env_id`` is a suite of :data:`TASKS` (an environment id, or ``ENV/variant``) or any catalogue entry.
    Budgets default to the ``finetune:`` mapping of the environment's entry in ``dqn.yml``; ``pretrained``
    defaults to the suite's shipped agent. Writes ``runs.jsonl`` (a line per finished run), ``runs.csv``,
    ``suite.json``, ``table.md`` and ``transfer.png``; returns the table (markdown). ``suite.json`` records the
    settings, so that ``summarise_only`` tables the recorded run. The pretrained agent is read without
    unpickling unless ``trusted`` (see :func:`equirl.agents.load_pretrained`).
    """
    env = SUITE_ENV.get(env_id, env_id)
    all_tasks = tasks_for(env_id, symmetry)
    names = list(all_tasks)
    if task_indices:
        bad = [i for i in task_indices if not 0 <= i < len(names)]
        if bad:
            listing = "; ".join(f"{i}: {n}" for i, n in enumerate(names))
            raise ValueError(f"Task indices {bad} out of range for {env_id!r}; its tasks are {listing}.")
        names = [names[i] for i in task_indices]
    methods = list(methods or ALL_METHODS)
    for m in methods:
        if m not in ALL_METHODS:
            raise ValueError(f"Unknown method {m!r}; choose from {ALL_METHODS}.")
    try:
        _, hp = hyperparams_for(env)
    except KeyError:
        hp = {}  # a user's environment: SB3's DQN defaults for finetuning, the budgets below
        print(f"{env}: no entry in dqn.yml; finetuning with the pretrained agent's own DQN arguments", flush=True)
    ft_kwargs, ft_settings = finetune_hyperparams(hp)
    steps = int(steps if steps is not None else ft_settings.get("steps", 5000))
    fit = int(lambda_fit_steps if lambda_fit_steps is not None else ft_settings.get("lambda_fit_steps", 0))
    eval_freq = int(eval_freq or ft_settings.get("eval_freq", max(1, steps // 5)))
    if pretrained is None and env_id not in PRETRAINED:
        raise ValueError(
            f"No shipped pretrained agent for {env_id!r} (shipped: {PRETRAINED}); pass the SB3 DQN zip to transfer "
            "(equirl transfer ENV --pretrained my_dqn.zip)."
        )
    pretrained = str(pretrained_path(pretrained or PRETRAINED[env_id]))
    out = Path(out or Path("results/transfer") / env_id.replace("/", "_"))
    out.mkdir(parents=True, exist_ok=True)
    job_list = [
        {
            "env_id": env,
            "symmetry": symmetry or env,
            "task_name": n,
            "task": all_tasks[n],
            "method": m,
            "seed": s,
            "pretrained": pretrained,
            "steps": steps,
            "lambda_fit_steps": fit,
            "eval_freq": eval_freq,
            "eval_episodes": eval_episodes,
            "hyperparams": ft_kwargs,
            "threads": threads,
            "trusted": trusted,
            "tensorboard_log": str(out / "tb" / f"task{list(all_tasks).index(n)}"),
            "log_dir": str(out / "evals" / f"task{list(all_tasks).index(n)}" / f"{m}_s{s}"),
        }
        for n in names
        for m in methods
        for s in range(seeds)
    ]
    log = (
        out / "runs.jsonl"
    )  # rewritten (atomically) after each finished run, so an interrupted suite keeps what it did
    settings: dict[str, Any] = {
        "suite": env_id, "env_id": env, "pretrained": Path(pretrained).name, "symmetry": symmetry or env,
        "methods": methods, "tasks": list(all_tasks), "task_specs": {n: all_tasks[n] for n in all_tasks},
        "seeds": seeds, "steps": steps, "lambda_fit_steps": fit, "eval_freq": eval_freq,
        "eval_episodes": eval_episodes, "hyperparams": ft_kwargs, "command": command,
        "code_version": code_version(), "machine": machine(), "jobs": jobs, "threads": threads,
    }  # fmt: skip
    start = time.perf_counter()
    if summarise_only:
        if not log.exists():
            raise FileNotFoundError(f"--summarise-only: {log} does not exist; run the suite first.")
        runs = []
        for i, line in enumerate(log.read_text().splitlines(), 1):
            if line.strip():
                try:
                    runs.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{log}, line {i}, is damaged ({err}); rerun the suite.") from err
        if (out / SUITE_FILE).exists():  # the table describes the recorded run, not this command line's defaults
            settings = read_json(out / SUITE_FILE, "suite record")
    else:
        print(
            f"{env_id}: {len(job_list)} runs ({len(names)} tasks x {len(methods)} methods x {seeds} seeds), "
            f"budget {steps} steps (λ fit {fit}), {jobs} jobs; pretrained {pretrained}",
            flush=True,
        )
        # load the pretrained agent once before anything is written: a file that does not load leaves
        # the previous results in place
        load_pretrained(pretrained, trusted=trusted, env=make_task_env(env, all_tasks[names[0]]))
        runs = []

        def keep(r: dict[str, Any]) -> None:
            runs.append(r)
            if len(runs) == 1:
                write_atomic(out / SUITE_FILE, json.dumps(settings, indent=1) + "\n")
            write_atomic(log, "".join(json.dumps(x) + "\n" for x in runs))

        if jobs > 1:
            import multiprocessing as mp

            from equirl.agents.sweep import exit_with_parent

            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(
                jobs, mp_context=ctx, initializer=exit_with_parent, initargs=(os.getpid(),)
            ) as pool:
                for fut in as_completed([pool.submit(_one_run, j) for j in job_list]):
                    keep(fut.result())
        else:
            for j in job_list:
                keep(_one_run(j))
        settings["wall_seconds"] = round(time.perf_counter() - start, 1)
        write_atomic(out / SUITE_FILE, json.dumps(settings, indent=1) + "\n")
    write_atomic(out / "runs.csv", runs_csv(runs))
    table = transfer_table(settings, runs)
    write_atomic(out / "table.md", table)
    title = f"{env_id}: pretrained {Path(str(settings['pretrained'])).stem}, {settings['seeds']} seeds (mean, 95% CI)"
    plot_budgets(settings, runs, out / "transfer.png", title)
    if plot_path:
        plot_budgets(settings, runs, Path(plot_path), title)
    return table


# -- how far the pretrained network is from equivariant ----------------------------------------------------
VIEWS_FIELDS = ("suite", "task", "element", "states", "q_gap", "argmax_agrees", "picked_by_equizero")
"""Columns of ``views.csv`` (:func:`view_agreement`)."""


def view_agreement(
    suite: str,
    task_index: int = 0,
    *,
    pretrained: DQN | str | Path | None = None,
    symmetry: str | None = None,
    episodes: int = 20,
    seed: int = 10_000,
    trusted: bool = False,
) -> list[dict[str, Any]]:
    """How far the pretrained (plain) Q-network is from equivariant on the states it visits on a task.

    The states are those of ``episodes`` greedy episodes of the pretrained agent on task ``task_index`` of the
    suite (episode i reset with seed ``seed + i``). For each group element g the view
    ``V_g(s) = ρ(g)⁻¹ Q(g·s)`` (the Q-values of the world seen through g, mapped back to the original actions as
    :class:`equirl.envs.wrappers.GroupTransformed` maps them) is compared with ``Q(s)``:

    - ``q_gap``: mean over states of ``max_a |V_g(s)_a - Q(s)_a|`` (return units; 0 for an equivariant Q);
    - ``argmax_agrees``: share of states where ``argmax V_g(s) = argmax Q(s)`` (the view acts as plain does);
    - ``picked_by_equizero``: share of states where equizero selects g (the largest ``max_a V_g(s)_a``).

    Two summary rows follow: ``equitune`` (the mean of the views; checked against the equitune network built by
    :func:`equirl.agents.equivariant_from_pretrained` to 1e-4, which catches a g / g⁻¹ mix-up) and ``equizero``
    (the selected view), each with its gap to ``Q`` and its argmax agreement with plain. Returns the rows
    (:data:`VIEWS_FIELDS`).
    """
    import torch
    from equirl.agents.transfer import equivariant_from_pretrained, q_values
    from equirl.envs.catalog import get_symmetry

    env_id = SUITE_ENV.get(suite, suite)
    tasks = tasks_for(suite, symmetry)
    name = list(tasks)[task_index]
    sym = get_symmetry(symmetry or env_id)
    make = lambda: make_task_env(env_id, tasks[name])  # noqa: E731
    plain = load_pretrained(pretrained or PRETRAINED[suite], trusted=trusted, env=make())
    states: list[np.ndarray] = []
    env = make()
    for i in range(episodes):  # plain's greedy episodes, recording every observation it acts on
        o, _ = env.reset(seed=seed + i)
        done = False
        while not done:
            states.append(np.array(o, copy=True))
            a, _ = plain.predict(o, deterministic=True)
            o, _, term, trunc, _ = env.step(int(a))
            done = term or trunc
    env.close()
    obs = np.stack(states, 0)
    G = sym.group
    q = q_values(plain, obs)  # [B, A]
    views = np.zeros((G.order, *q.shape))
    n = q.shape[1]
    for g in range(G.order):
        x = torch.as_tensor(obs)
        og = sym.input_action.apply(g, x).numpy().astype(obs.dtype)
        perm = sym.output_action.apply(g, torch.arange(n, dtype=torch.float64)[None])[0]
        pi = [int(round(float(v))) for v in perm]  # action i in the world g·s does what π_g(i) does in s
        qg = q_values(plain, og)
        views[g][:, pi] = qg
    equi = equivariant_from_pretrained(plain, sym, "equitune", env=make())
    q_eq = q_values(equi, obs)
    if not np.allclose(q_eq, views.mean(0), atol=1e-4):
        raise AssertionError(
            f"view_agreement: the mean of the views differs from the equitune network's Q by "
            f"{np.abs(q_eq - views.mean(0)).max():.3g}: the views are mapped back with the wrong group element."
        )
    pick = views.max(-1).argmax(0)  # [B]: equizero's selected view (the largest max-Q)
    zero = views[pick, np.arange(len(obs))]
    a_plain = q.argmax(1)
    rows: list[dict[str, Any]] = []
    for g in range(G.order):
        rows.append({"element": G.element_names[g], "q_gap": np.abs(views[g] - q).max(1).mean(),
                     "argmax_agrees": (views[g].argmax(1) == a_plain).mean(), "picked_by_equizero": (pick == g).mean()})  # fmt: skip
    rows.append({"element": "equitune (mean of the views)", "q_gap": np.abs(q_eq - q).max(1).mean(),
                 "argmax_agrees": (q_eq.argmax(1) == a_plain).mean(), "picked_by_equizero": float("nan")})  # fmt: skip
    rows.append({"element": "equizero (selected view)", "q_gap": np.abs(zero - q).max(1).mean(),
                 "argmax_agrees": (zero.argmax(1) == a_plain).mean(), "picked_by_equizero": float("nan")})  # fmt: skip
    return [{"suite": suite, "task": name, "states": len(obs), **{k: (float(v) if k != "element" else v)
             for k, v in r.items()}} for r in rows]  # fmt: skip


def write_views(rows: list[dict[str, Any]], path: str | Path, meta: dict[str, Any]) -> None:
    """``views.csv`` (:data:`VIEWS_FIELDS`) of :func:`view_agreement`'s rows, and ``views.json`` (``meta``) next to it."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(VIEWS_FIELDS)
    for r in rows:
        w.writerow([r[k] if isinstance(r[k], str) else repr(r[k]) for k in VIEWS_FIELDS])
    write_atomic(Path(path), buf.getvalue())
    write_atomic(Path(path).with_suffix(".json"), json.dumps(meta, indent=1) + "\n")


def read_views(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``views.csv`` (numbers as floats)."""
    with open(path, newline="") as f:
        return [{k: (v if k in ("suite", "task", "element") else float(v)) for k, v in r.items()}
                for r in csv.DictReader(f)]  # fmt: skip


def views_table(rows: list[dict[str, Any]]) -> str:
    """Markdown of :func:`view_agreement` rows (one or several suites), with a note."""
    head = ["suite", "task (states)", "view / network", "mean of max_a abs(V_g − Q)", "argmax = plain's",
            "picked by equizero"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    last = None
    for r in rows:
        key = (r["suite"], r["task"])
        first = key != last
        last = key
        pct = "–" if not np.isfinite(r["picked_by_equizero"]) else f"{100 * r['picked_by_equizero']:.0f}%"
        task = f"{r['task']} ({int(r['states'])})" if first else ""
        lines.append(
            f"| {r['suite'] if first else ''} | {task} | {r['element']} | {r['q_gap']:.3f} "
            f"| {100 * r['argmax_agrees']:.0f}% | {pct} |"
        )
    note = (
        f"{TRANSFER_NOTE} how far the pretrained plain Q-network is from equivariant on the states its own greedy "
        "policy visits on the task (V_g(s) = ρ(g)⁻¹ Q(g·s), the view through g mapped back to the original actions; "
        "an equivariant Q has V_g = Q for every g). 'argmax = plain's': share of states where the view (or the "
        "symmetrised network) takes plain's action; 'picked by equizero': share of states where equizero's "
        "selection (largest max-Q) is that view. Raw results: views.csv and views.json (command, code version) "
        "next to this table."
    )
    return "\n".join(lines) + "\n\n" + note + "\n"
