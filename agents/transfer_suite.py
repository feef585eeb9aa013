"""The transfer suite: a pretrained (plain) DQN made equivariant on its environment's tasks, per method and seed.

For each task (the original one and its transformed variants) and each method, over several seeds:
the pretrained Q-network is made equivariant (:func:`equirl.agents.equivariant_from_pretrained`), evaluated
zero-shot, then finetuned on the task for a budget of environment steps (λ-equitune: first
``lambda_fit_steps`` with the backbone frozen, inside the same budget). :func:`run_suite` writes::

    OUT/runs.csv     task, method, seed, timesteps, mean_return, std_return (every evaluation)
    OUT/table.md     zero-shot and final returns, mean ± std over seeds, and % of the pretrained return
    OUT/transfer.png returns against finetuning steps, one panel per task
    OUT/summary.json the same numbers, with the command and wall-clock time
    OUT/tb/task<i>/<method>_s<seed>_1/   tensorboard logs of each run (eval/mean_reward at every evaluation)
    OUT/evals/task<i>/<method>_s<seed>/  eval.csv and SB3's evaluations.npz of each run

The command line is ``equirl transfer``. Tasks per environment are listed in :data:`TASKS` (environment
kwargs, reset options or a group element); every other catalogue entry (or a user's environment with a
registered symmetry) gets tasks derived from its symmetry, the world seen through each group element
(:func:`tasks_for`). Budgets come from the ``finetune:`` mapping of the environment's entry in ``dqn.yml``
(defaults without one); the pretrained agent is the shipped one or a user's zip (``pretrained``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from equirl.agents.hyperparams import finetune_hyperparams, hyperparams_for, pretrained_path
from equirl.agents.io import read_json, write_atomic
from equirl.agents.stats import sample_std
from equirl.agents.training import ALL_METHODS
from equirl.agents.transfer import load_pretrained
from equirl.envs.wrappers import make_task_env, transformed_tasks

from equirl.extras import require

SUITE_FILE = "suite.json"
"""The settings of the suite's last run, next to its ``runs.jsonl``."""

__all__ = ["TASKS", "PRETRAINED", "LABELS", "tasks_for", "run_suite", "summarise", "plot"]

LABELS = {
    "plain": "plain",
    "equitune": "equitune",
    "equizero": "equizero",
    "lambda": "λ-equitune",
    "equizero-td": "equizero-td",
}

# Tasks per environment: name -> {"env_kwargs": ..., "reset_options": ...}. The first is the pretraining task.
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
    "Acrobot-v1": {"standard starts (pretraining)": {}},
    "MiniGrid-Empty-5x5-v0": {
        "standard layout (pretraining)": {},
        "mirrored world": {"transform": 1},
    },
}
PRETRAINED = {
    "equirl/RotGrid-Corner-v0": "rotgrid_bottom_plain",
    "CartPole-v1": "cartpole_plain",
    "Acrobot-v1": "acrobot_plain",
    "MiniGrid-Empty-5x5-v0": "minigrid_empty5_plain",
}


def tasks_for(env_id: str, symmetry: str | None = None) -> dict[str, dict[str, Any]]:
    """The transfer tasks of ``env_id``: :data:`TASKS` where it lists the environment, otherwise the tasks derived
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


def _ms(xs: list[float]) -> str:
    """``mean ± sample std`` (ddof 1) of ``xs``; the mean alone for a single value."""
    if len(xs) < 2:
        return f"{np.mean(xs):.2f}"
    return f"{np.mean(xs):.2f} ± {sample_std(xs):.2f}"


def summarise(runs: list[dict[str, Any]], tasks: list[str], methods: list[str]) -> tuple[str, dict[str, Any]]:
    """Markdown table and a JSON-able summary (mean ± sample std over seeds, ddof 1; % of the pretrained return)."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        by[(r["task"], r["method"])].append(r)
    ref_runs = by.get((tasks[0], "plain"), [])
    ref = float(np.mean([r["zero_shot"] for r in ref_runs])) if ref_runs else float("nan")
    lines = [
        f"Pretrained agent's return on its own task (plain, zero-shot): {ref:.2f}. "
        "'%' = mean zero-shot return / that reference (for returns that can be negative, read the raw numbers).",
        "",
        "| task | method | zero-shot | % of pretrained | after finetuning | seeds |",
        "|---|---|---|---|---|---|",
    ]
    summary: dict[str, Any] = {"reference_return": ref, "cells": []}
    for t in tasks:
        for m in methods:
            rs = by.get((t, m), [])
            if not rs:
                continue
            zs = [r["zero_shot"] for r in rs]
            fin = [r["curve"][-1]["mean_return"] for r in rs]
            pct = 100 * np.mean(zs) / ref if ref and np.isfinite(ref) else float("nan")
            lines.append(f"| {t} | {LABELS[m]} | {_ms(zs)} | {pct:.0f}% | {_ms(fin)} | {len(rs)} |")
            summary["cells"].append(
                {
                    "task": t,
                    "method": m,
                    "zero_shot_mean": float(np.mean(zs)),
                    "zero_shot_std": sample_std(zs),
                    "final_mean": float(np.mean(fin)),
                    "final_std": sample_std(fin),
                    "percent_of_pretrained": float(pct),
                    "seeds": len(rs),
                }
            )
    return "\n".join(lines) + "\n", summary


def plot(runs: list[dict[str, Any]], tasks: list[str], methods: list[str], path: Path, title: str) -> None:
    """One panel per task: mean ± std (over seeds) of the greedy return against finetuning steps."""
    matplotlib = require("matplotlib", "plots", "Plotting transfer curves")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tasks), figsize=(max(6.0, 3.6 * len(tasks)), 3.4), squeeze=False, sharey=True)
    colors = {
        "plain": "tab:gray",
        "equitune": "tab:blue",
        "equizero": "tab:orange",
        "lambda": "tab:green",
        "equizero-td": "tab:red",
    }
    for ax, t in zip(axes[0], tasks, strict=True):
        for m in methods:
            rs = [r for r in runs if r["task"] == t and r["method"] == m]
            if not rs:
                continue
            xs = sorted({row["timesteps"] for r in rs for row in r["curve"]})
            ys = np.array(
                [
                    [
                        np.interp(x, [c["timesteps"] for c in r["curve"]], [c["mean_return"] for c in r["curve"]])
                        for x in xs
                    ]
                    for r in rs
                ]
            )
            mu = ys.mean(0)
            sd = ys.std(0, ddof=1) if len(ys) > 1 else np.zeros_like(mu)  # ±1 sample std
            ax.plot(xs, mu, marker="o", ms=3, label=LABELS[m], color=colors[m])
            ax.fill_between(xs, mu - sd, mu + sd, alpha=0.15, color=colors[m])
        ax.set_title(t, fontsize=9)
        ax.set_xlabel("finetuning env steps")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("greedy return")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    """Run the transfer suite of ``env_id`` (every task × method × seed) and write its outputs to ``out``.

    Budgets default to the ``finetune:`` mapping of the environment's entry in ``dqn.yml``; ``pretrained``
    defaults to the environment's shipped agent. Writes ``runs.jsonl`` (a line per finished run),
    ``runs.csv``, ``table.md``, ``summary.json`` and ``transfer.png``; returns the table (markdown).
    ``suite.json`` records the settings, so that ``summarise_only`` tables the recorded run. The
    pretrained agent is read without unpickling unless ``trusted`` (see :func:`equirl.agents.load_pretrained`).
    """
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
        _, hp = hyperparams_for(env_id)
    except KeyError:
        hp = {}  # a user's environment: SB3's DQN defaults for finetuning, the budgets below
        print(f"{env_id}: no entry in dqn.yml; finetuning with the pretrained agent's own DQN arguments", flush=True)
    ft_kwargs, settings = finetune_hyperparams(hp)
    steps = int(steps if steps is not None else settings.get("steps", 5000))
    fit = int(lambda_fit_steps if lambda_fit_steps is not None else settings.get("lambda_fit_steps", 0))
    eval_freq = int(eval_freq or settings.get("eval_freq", max(1, steps // 5)))
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
            "env_id": env_id,
            "symmetry": symmetry or env_id,
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
    print(
        f"{env_id}: {len(job_list)} runs ({len(names)} tasks x {len(methods)} methods x {seeds} seeds), "
        f"budget {steps} steps (λ fit {fit}), {jobs} jobs; pretrained {pretrained}",
        flush=True,
    )
    start = time.perf_counter()
    log = out / "runs.jsonl"  # rewritten (atomically) after each finished run, so an interrupted suite keeps what it did
    settings = {"env_id": env_id, "pretrained": pretrained, "symmetry": symmetry or env_id, "methods": methods,
                "tasks": names, "seeds": seeds, "steps": steps, "lambda_fit_steps": fit, "eval_freq": eval_freq,
                "eval_episodes": eval_episodes, "hyperparams": ft_kwargs, "command": command}
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
        recorded = read_json(out / SUITE_FILE, "suite record") if (out / SUITE_FILE).exists() else None
        if recorded is not None:  # the table describes the recorded run, not this command line's defaults
            settings = recorded
            methods, names = list(recorded["methods"]), list(recorded["tasks"])
            seeds, steps, fit = recorded["seeds"], recorded["steps"], recorded["lambda_fit_steps"]
            eval_episodes, pretrained, command = recorded["eval_episodes"], recorded["pretrained"], recorded["command"]
    else:
        # load the pretrained agent once before anything is written: a file that does not load leaves
        # the previous results in place
        load_pretrained(pretrained, trusted=trusted, env=make_task_env(env_id, all_tasks[names[0]]))
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
            with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=exit_with_parent, initargs=(os.getpid(),)) as pool:
                for fut in as_completed([pool.submit(_one_run, j) for j in job_list]):
                    keep(fut.result())
        else:
            for j in job_list:
                keep(_one_run(j))
    seconds = time.perf_counter() - start
    names = [n for n in names if any(r["task"] == n for r in runs)]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["task", "method", "seed", "timesteps", "mean_return", "std_return"])
    for r in runs:
        for row in r["curve"]:
            w.writerow([r["task"], r["method"], r["seed"], int(row["timesteps"]), row["mean_return"], row["std_return"]])
    write_atomic(out / "runs.csv", buf.getvalue())
    table, summary = summarise(runs, names, methods)
    header = (
        f"# Transfer: {env_id}\n\nPretrained: `{Path(pretrained).name}`; {seeds} seeds; finetuning budget "
        f"{steps} env steps (λ-equitune: {fit} of them with the backbone frozen, and its zero-shot number is "
        f"measured after that stage); {eval_episodes} greedy evaluation episodes per point; "
        f"wall-clock {seconds / 60:.1f} min with {jobs} worker(s).\n\nCommand: `{command}`\n\n"
    )
    write_atomic(out / "table.md", header + table)
    summary.update(
        command=command, wall_seconds=seconds, steps=steps, lambda_fit_steps=fit, seeds=seeds, settings=settings
    )
    write_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    title = f"{env_id}: pretrained {Path(pretrained).stem}, {seeds} seeds (mean ± std)"
    plot(runs, names, methods, out / "transfer.png", title)
    if plot_path:
        plot(runs, names, methods, Path(plot_path), title)
    return header + table
