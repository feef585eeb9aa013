"""Transfer a pretrained (plain) DQN to its environment's transformed tasks with equitune, equizero, λ-equitune.

For each task (the original one and its transformed variants) and each method, over several seeds:
the pretrained Q-network is made equivariant (``agents.equivariant_from_pretrained``), evaluated
zero-shot, then finetuned on the task for a budget of environment steps (λ-equitune: first
``lambda_fit_steps`` with the backbone frozen, inside the same budget). Writes::

    OUT/runs.csv     task, method, seed, timesteps, mean_return, std_return (every evaluation)
    OUT/table.md     zero-shot and final returns, mean ± std over seeds, and % of the pretrained return
    OUT/transfer.png returns against finetuning steps, one panel per task
    OUT/summary.json the same numbers, with the command and wall-clock time

Usage::

    python scripts/transfer.py equirl/RotGrid-Corner-v0 --seeds 5
    python scripts/transfer.py CartPole-v1 --seeds 5 --steps 5000 --jobs 2
    python scripts/transfer.py CartPole-v1 --pretrained my_dqn.zip --methods plain,equizero --steps 0

Tasks per environment are listed in ``TASKS`` below (environment kwargs or reset options); budgets
come from the ``finetune:`` mapping of the environment's entry in ``agents/hyperparams/dqn.yml``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("plain", "equitune", "equizero", "lambda")
LABELS = {"plain": "plain", "equitune": "equitune", "equizero": "equizero", "lambda": "λ-equitune"}

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


class ResetOptions(gym.Wrapper):
    """Passes fixed ``options`` to every ``reset`` (e.g. CartPole's start-state bounds ``low``/``high``)."""

    def __init__(self, env: gym.Env, options: dict[str, Any]) -> None:
        super().__init__(env)
        self.options = dict(options)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        return self.env.reset(seed=seed, options={**self.options, **(options or {})})


class GroupTransformed(gym.Wrapper):
    """The task seen through a group element ``g``: observations ``g·o``, actions mapped by ``ρ(g)``.

    Because the dynamics commute with the symmetry, this *is* the transformed world (for the MiniGrid
    egocentric mirror: the mirrored layout). Only involutions (``g = g⁻¹``) are supported, for which the
    action map is its own inverse.
    """

    def __init__(self, env: gym.Env, symmetry: Any, g: int) -> None:
        super().__init__(env)
        import torch

        G = symmetry.group
        if G.compose(g, g) != G.identity:
            raise ValueError(f"GroupTransformed supports involutions only; {G.element_names[g]} is not one.")
        self.symmetry, self.g = symmetry, g
        n = int(env.action_space.n)
        perm = symmetry.output_action.apply(g, torch.arange(n, dtype=torch.float64)[None])[0]
        self.action_map = [int(round(float(v))) for v in perm]

    def _obs(self, obs: Any) -> Any:
        import torch

        x = torch.as_tensor(np.asarray(obs))[None]
        return self.symmetry.input_action.apply(self.g, x)[0].numpy().astype(np.asarray(obs).dtype)

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        return self._obs(obs), info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, r, term, trunc, info = self.env.step(self.action_map[int(action)])
        return self._obs(obs), r, term, trunc, info


def make_task_env(env_id: str, task: dict[str, Any]) -> gym.Env:
    import envs

    env = envs.make_env(env_id, **task.get("env_kwargs", {}))
    if task.get("reset_options"):
        env = ResetOptions(env, task["reset_options"])
    if task.get("transform") is not None:
        env = GroupTransformed(env, envs.get_symmetry(env_id), int(task["transform"]))
    return env


def _one_run(job: dict[str, Any]) -> dict[str, Any]:
    """Worker: one (task, method, seed). Returns the run as a dict (picklable)."""
    import functools

    import torch

    torch.set_num_threads(job["threads"])
    import envs
    from agents import run_transfer

    sym = envs.get_symmetry(job["symmetry"]) if job["method"] != "plain" else None
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
    return f"{np.mean(xs):.2f} ± {np.std(xs):.2f}"


def summarise(runs: list[dict[str, Any]], tasks: list[str], methods: list[str]) -> tuple[str, dict[str, Any]]:
    """Markdown table and a JSON-able summary (mean ± std over seeds; % of the pretrained return)."""
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
                    "zero_shot_std": float(np.std(zs)),
                    "final_mean": float(np.mean(fin)),
                    "final_std": float(np.std(fin)),
                    "percent_of_pretrained": float(pct),
                    "seeds": len(rs),
                }
            )
    return "\n".join(lines) + "\n", summary


def plot(runs: list[dict[str, Any]], tasks: list[str], methods: list[str], path: Path, title: str) -> None:
    """One panel per task: mean ± std (over seeds) of the greedy return against finetuning steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tasks), figsize=(max(6.0, 3.6 * len(tasks)), 3.4), squeeze=False, sharey=True)
    colors = {"plain": "tab:gray", "equitune": "tab:blue", "equizero": "tab:orange", "lambda": "tab:green"}
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
            mu, sd = ys.mean(0), ys.std(0)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("env", help=f"environment with tasks: {sorted(TASKS)}")
    p.add_argument("--pretrained", default=None, help="SB3 DQN zip (default agents/pretrained/<env's agent>.zip)")
    p.add_argument("--symmetry", default=None, help="catalogue symmetry (default: ENV)")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--tasks", default=None, help="comma-separated task indices (default: all)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=None, help="finetuning budget (default: the YAML's finetune.steps)")
    p.add_argument("--lambda-fit-steps", type=int, default=None, help="λ's frozen-backbone stage (default: YAML)")
    p.add_argument("--eval-freq", type=int, default=None)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--out", default=None, help="output folder (default results/transfer/<env>)")
    p.add_argument("--plot", default=None, help="also write the plot here (e.g. docs/img/transfer_rotgrid.png)")
    p.add_argument("--summarise-only", action="store_true", help="only rebuild table and plot from OUT/runs.jsonl")
    args = p.parse_args(argv)

    sys.path.insert(0, str(ROOT / "scripts"))
    from train import hyperparams_for

    from agents.hyperparams import finetune_hyperparams

    if args.env not in TASKS:
        raise SystemExit(f"No transfer tasks for {args.env!r}; known: {sorted(TASKS)} (add them to TASKS).")
    all_tasks = TASKS[args.env]
    names = list(all_tasks)
    if args.tasks:
        names = [names[int(i)] for i in args.tasks.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            raise SystemExit(f"Unknown method {m!r}; choose from {METHODS}.")
    _, hp = hyperparams_for(args.env)
    ft_kwargs, settings = finetune_hyperparams(hp)
    steps = int(args.steps if args.steps is not None else settings.get("steps", 5000))
    fit = int(args.lambda_fit_steps if args.lambda_fit_steps is not None else settings.get("lambda_fit_steps", 0))
    eval_freq = int(args.eval_freq or settings.get("eval_freq", max(1, steps // 5)))
    pretrained = args.pretrained or str(ROOT / "agents" / "pretrained" / f"{PRETRAINED[args.env]}.zip")
    out = Path(args.out or Path("results/transfer") / args.env.replace("/", "_"))
    out.mkdir(parents=True, exist_ok=True)
    jobs = [
        {
            "env_id": args.env,
            "symmetry": args.symmetry or args.env,
            "task_name": n,
            "task": all_tasks[n],
            "method": m,
            "seed": s,
            "pretrained": pretrained,
            "steps": steps,
            "lambda_fit_steps": fit,
            "eval_freq": eval_freq,
            "eval_episodes": args.eval_episodes,
            "hyperparams": ft_kwargs,
            "threads": args.threads,
        }
        for n in names
        for m in methods
        for s in range(args.seeds)
    ]
    print(
        f"{args.env}: {len(jobs)} runs ({len(names)} tasks x {len(methods)} methods x {args.seeds} seeds), "
        f"budget {steps} steps (λ fit {fit}), {args.jobs} jobs; pretrained {pretrained}",
        flush=True,
    )
    start = time.perf_counter()
    log = out / "runs.jsonl"  # one line per finished run, so that an interrupted sweep keeps what it did
    if args.summarise_only:
        runs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    else:
        log.write_text("")
        runs = []

        def keep(r: dict[str, Any]) -> None:
            runs.append(r)
            with open(log, "a") as f:
                f.write(json.dumps(r) + "\n")

        if args.jobs > 1:
            import multiprocessing as mp

            with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
                for fut in as_completed([pool.submit(_one_run, j) for j in jobs]):
                    keep(fut.result())
        else:
            for j in jobs:
                keep(_one_run(j))
    seconds = time.perf_counter() - start
    names = [n for n in names if any(r["task"] == n for r in runs)]
    with open(out / "runs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["task", "method", "seed", "timesteps", "mean_return", "std_return"])
        for r in runs:
            for row in r["curve"]:
                w.writerow(
                    [r["task"], r["method"], r["seed"], int(row["timesteps"]), row["mean_return"], row["std_return"]]
                )
    table, summary = summarise(runs, names, methods)
    command = shlex.join(["python", "scripts/transfer.py", *(argv if argv is not None else sys.argv[1:])])
    header = (
        f"# Transfer: {args.env}\n\nPretrained: `{Path(pretrained).name}`; {args.seeds} seeds; finetuning budget "
        f"{steps} env steps (λ-equitune: {fit} of them with the backbone frozen, and its zero-shot number is "
        f"measured after that stage); {args.eval_episodes} greedy evaluation episodes per point; "
        f"wall-clock {seconds / 60:.1f} min with {args.jobs} worker(s).\n\nCommand: `{command}`\n\n"
    )
    (out / "table.md").write_text(header + table)
    summary.update(command=command, wall_seconds=seconds, steps=steps, lambda_fit_steps=fit, seeds=args.seeds)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    title = f"{args.env}: pretrained {Path(pretrained).stem}, {args.seeds} seeds (mean ± std)"
    plot(runs, names, methods, out / "transfer.png", title)
    if args.plot:
        plot(runs, names, methods, Path(args.plot), title)
    print(header + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
