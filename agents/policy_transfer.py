"""Transfer from a pretrained *plain* agent of any algorithm (PPO by default) to transformed tasks.

The experiment, for one environment (default: RotGrid's corner goals, the tasks of
:data:`equirl.agents.transfer_suite.TASKS`):

1. **Pretrain** a plain agent on the source task (the first task) for ``pretrain_steps``, one per seed,
   with the environment's entry of the algorithm's hyperparameter file; its policy weights are written as
   ``OUT/pretrained/seed<k>.safetensors`` (no pickle) and reused when they exist.
2. On each **target task**, for each method: a fresh agent of the same architecture (``plain``: SB3's
   policy; the others: the algorithm's equivariant policy) gets the pretrained weights with
   :func:`equirl.agents.load_plain_weights` (the λ-nets are left at their zero initialisation, so an
   untrained λ-equitune **is** equitune: uniform weights), is evaluated **zero-shot** (``K = 0``: no
   target-task data), then finetuned on the target task and evaluated after each budget ``K`` of
   ``budgets`` target-task steps (the same ``K`` for every method).

Raw results (written atomically, read back by :func:`read_raw`): ``OUT/runs.csv`` (one row per task, method
and seed: the pretrained agent's source return, the return at each budget, training seconds) and
``OUT/curves.csv`` (task, method, seed, timesteps = K, mean_return, std_return). :func:`transfer_table` builds
the markdown table from them (IQM and mean over seeds with 95% stratified-bootstrap intervals,
:mod:`equirl.agents.stats`); ``equirl bench tables`` rebuilds it (manifest style ``policy-transfer``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from equirl.agents import stats
from equirl.agents.algorithms import get_algorithm
from equirl.agents.evaluation import evaluate_episodes
from equirl.agents.hyperparams import hyperparams_for
from equirl.agents.io import write_atomic
from equirl.agents.training import ALL_METHODS, PLAIN, build_agent, make_training_env
from equirl.envs.wrappers import make_task_env

__all__ = [
    "DEFAULT_ENV",
    "default_tasks",
    "pretrain",
    "transfer_run",
    "run",
    "read_raw",
    "transfer_table",
    "TRANSFER_NOTE",
]

DEFAULT_ENV = "equirl/RotGrid-Corner-v0"
RUN_FIELDS = ("task", "algo", "method", "seed", "source_return", "train_seconds")
CURVE_FIELDS = ("task", "algo", "method", "seed", "timesteps", "mean_return", "std_return")


def default_tasks(env_id: str = DEFAULT_ENV) -> dict[str, dict[str, Any]]:
    """The transfer suite's tasks for ``env_id`` (:data:`equirl.agents.transfer_suite.TASKS`, else the world seen
    through each group element, :func:`equirl.agents.transfer_suite.tasks_for`): the first is the source task."""
    from equirl.agents.transfer_suite import tasks_for

    return tasks_for(env_id)


def _state_file(out: Path, seed: int) -> Path:
    return out / "pretrained" / f"seed{seed}.safetensors"


def pretrain(
    env_id: str,
    task: dict[str, Any],
    hp: dict[str, Any],
    steps: int,
    seed: int,
    out: Path,
    algo: str = "ppo",
    n_eval_episodes: int = 20,
) -> tuple[dict[str, Any], float]:
    """The plain agent's policy weights after ``steps`` on the source ``task`` and its greedy return there.

    Written to ``OUT/pretrained/seed<k>.safetensors`` (with its return and budget in the metadata) and read
    back on the next call with the same ``steps`` (no pickle); a file made with another budget is refused.
    """
    from safetensors.torch import load_file, safe_open, save_file

    path = _state_file(out, seed)
    if path.exists():
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if int(meta.get("steps", -1)) != steps or meta.get("algo") != algo:
            raise FileExistsError(
                f"{path} holds an agent pretrained with {meta.get('algo')} for {meta.get('steps')} steps, not "
                f"{algo} for {steps}: choose another output folder, or delete it to pretrain again."
            )
        return dict(load_file(str(path))), float(meta["source_return"])

    def factory() -> Any:
        return make_task_env(env_id, task)

    model = build_agent(
        algo,
        make_training_env(factory, int(hp.get("n_envs", 1)), record=False),
        PLAIN,
        None,
        hp,
        seed=seed,
        device="cpu",
    )
    model.learn(steps)
    returns, _ = evaluate_episodes(model, factory, n_eval_episodes)
    state = {k: v.detach().cpu().contiguous() for k, v in model.policy.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    source_return = float(np.mean(returns))
    save_file(state, str(tmp), metadata={"algo": algo, "steps": str(steps), "source_return": repr(source_return)})
    tmp.replace(path)
    return state, source_return


def transfer_run(
    env_id: str,
    task: dict[str, Any],
    method: str,
    plain_state: dict[str, Any],
    hp: dict[str, Any],
    budgets: Sequence[int],
    seed: int,
    algo: str = "ppo",
    n_eval_episodes: int = 20,
) -> tuple[list[dict[str, float]], float]:
    """``method`` started from the plain weights on the target ``task``: its greedy return at ``K = 0`` (zero-shot)
    and after each budget ``K`` of ``budgets`` target-task steps. Returns ``([{timesteps, mean_return,
    std_return}], training seconds)``.

    The training environment has the entry's ``n_envs`` copies of the task; a budget that is not a multiple of
    a rollout (``n_envs · n_steps``) ends at the next rollout boundary and ``timesteps`` records where it ended.
    """
    from equirl.agents.symmetrised import load_plain_weights
    from equirl.envs import get_symmetry

    def factory() -> Any:
        return make_task_env(env_id, task)

    symmetry = None if method == PLAIN else get_symmetry(env_id)
    model = build_agent(
        algo, make_training_env(factory, int(hp.get("n_envs", 1)), record=False), method, symmetry, hp, seed=seed,
        device="cpu",
    )  # fmt: skip
    if method == PLAIN:
        model.policy.load_state_dict(plain_state)
    else:
        load_plain_weights(model.policy, plain_state)
    rows = []

    def evaluate_now() -> None:
        returns, _ = evaluate_episodes(model, factory, n_eval_episodes)
        rows.append({"timesteps": float(model.num_timesteps), "mean_return": float(np.mean(returns)),
                     "std_return": float(np.std(returns))})  # fmt: skip

    evaluate_now()
    seconds = 0.0
    for k in sorted(set(budgets) - {0}):
        if k > model.num_timesteps:
            start = time.perf_counter()
            model.learn(k - model.num_timesteps, reset_num_timesteps=False)
            seconds += time.perf_counter() - start
        evaluate_now()
    return rows, seconds


def run(
    out: str | Path,
    env_id: str = DEFAULT_ENV,
    tasks: dict[str, dict[str, Any]] | None = None,
    methods: Sequence[str] = ("plain", "equitune", "equizero", "lambda"),
    seeds: Sequence[int] = (0, 1, 2),
    budgets: Sequence[int] = (0, 1024, 4096),
    pretrain_steps: int = 20480,
    algo: str = "ppo",
    n_eval_episodes: int = 20,
    hyperparams_key: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The whole experiment (see the module docstring); writes ``OUT/runs.csv`` and ``OUT/curves.csv`` after every
    run (so an interrupted run keeps what finished) and returns ``(runs, curves)``.

    ``tasks``: name -> task for :func:`equirl.envs.wrappers.make_task_env` (default :func:`default_tasks`; the
    first is the source task, the others are the targets). Seed ``k`` pretrains plain agent ``k`` and
    finetunes every method from it with seed ``k``. ``0`` is always among the budgets (zero-shot). Results already
    in ``OUT`` are refused (``FileExistsError``) unless ``overwrite``; pretrained weights there are reused.
    """
    algorithm = get_algorithm(algo)
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"Unknown methods {unknown}; expected some of {ALL_METHODS}.")
    if any(int(k) < 0 for k in budgets):
        raise ValueError(f"budgets are numbers of target-task steps >= 0, got {list(budgets)}.")
    out = Path(out)
    if (out / "runs.csv").exists() and not overwrite:
        raise FileExistsError(
            f"{out / 'runs.csv'} holds transfer results; pass overwrite=True (--overwrite) to replace them, or choose "
            "another output folder."
        )
    tasks = dict(tasks or default_tasks(env_id))
    if len(tasks) < 2:
        raise ValueError(f"{env_id}: transfer needs a source task and at least one target task, got {list(tasks)}.")
    (source_name, source), *targets = tasks.items()
    _, hp = hyperparams_for(env_id, hyperparams_key, algo=algorithm.name)
    budgets = sorted({0, *(int(k) for k in budgets)})
    runs: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    for seed in seeds:
        state, source_return = pretrain(env_id, source, hp, pretrain_steps, seed, out, algorithm.name, n_eval_episodes)
        if progress:
            print(
                f"seed {seed}: plain {algorithm.class_name} on {source_name!r}: return {source_return:.3f}", flush=True
            )
        for task_name, task in targets:
            for method in methods:
                rows, seconds = transfer_run(
                    env_id, task, method, state, hp, budgets, seed, algorithm.name, n_eval_episodes
                )
                base = {"task": task_name, "algo": algorithm.name, "method": method, "seed": seed}
                runs.append({**base, "source_return": source_return, "train_seconds": seconds})
                curves += [{**base, **row} for row in rows]
                write_raw(runs, curves, out)
                if progress:
                    print(f"  {task_name} {method}: " + ", ".join(f"K={r['timesteps']:.0f}: {r['mean_return']:.3f}"
                                                                    for r in rows), flush=True)  # fmt: skip
    write_atomic(
        out / "settings.json",
        json.dumps(
            {
                "env_id": env_id,
                "algo": algorithm.name,
                "tasks": {k: _jsonable(v) for k, v in tasks.items()},
                "methods": list(methods),
                "seeds": list(seeds),
                "budgets": budgets,
                "pretrain_steps": pretrain_steps,
                "n_eval_episodes": n_eval_episodes,
                "hyperparams": _jsonable(hp),
            },
            indent=1,
        )
        + "\n",  # fmt: skip
    )
    return runs, curves


def _jsonable(x: Any) -> Any:
    from equirl.agents.training import _jsonable as jsonable

    return jsonable(x)


def write_raw(runs: list[dict[str, Any]], curves: list[dict[str, Any]], dest: str | Path) -> None:
    """``runs.csv`` and ``curves.csv`` (:data:`RUN_FIELDS`, :data:`CURVE_FIELDS`) into ``dest``, each written atomically."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name, rows, fields in (("runs.csv", runs, RUN_FIELDS), ("curves.csv", curves, CURVE_FIELDS)):
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        write_atomic(dest / name, buf.getvalue())


def read_raw(src: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(runs, curves)`` read back from :func:`write_raw`'s files, numbers as numbers."""

    def num(row: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = dict(row)
        for k in ("seed", "timesteps", "source_return", "train_seconds", "mean_return", "std_return"):
            if k in out:
                out[k] = int(out[k]) if k == "seed" else float(out[k])
        return out

    src = Path(src)
    with open(src / "runs.csv") as f:
        runs = [num(r) for r in csv.DictReader(f)]
    with open(src / "curves.csv") as f:
        curves = [num(r) for r in csv.DictReader(f)]
    return runs, curves


TRANSFER_NOTE = (
    "Transfer from a pretrained plain agent: K = target-task steps of finetuning (K = 0: zero-shot, no "
    "target-task data); the greedy return on the target task, IQM and mean over seeds (one pretrained agent "
    "per seed) with 95% stratified-bootstrap intervals; n: seeds. λ at K = 0 is untrained (zero λ-nets: "
    "uniform weights, the same policy as equitune). time / plain: median finetuning seconds over plain's."
)
"""The line under the transfer table."""


def transfer_table(runs: list[dict[str, Any]], curves: list[dict[str, Any]], reps: int = stats.DEFAULT_REPS,
                   seed: int = 0) -> str:  # fmt: skip
    """The markdown table of :func:`read_raw`'s results: one line per target task and method, one column per
    budget K (IQM [95% CI] and mean [95% CI] of the greedy return over seeds), the pretrained agents' source
    return and the finetuning-time ratio to plain. Rows whose budgets differ between seeds are refused."""
    budgets = sorted({float(c["timesteps"]) for c in curves})
    by: dict[tuple[str, str], dict[int, dict[float, float]]] = {}
    for c in curves:
        by.setdefault((str(c["task"]), str(c["method"])), {}).setdefault(int(c["seed"]), {})[float(c["timesteps"])] = (
            float(c["mean_return"])
        )
    seconds: dict[tuple[str, str], list[float]] = {}
    source: list[float] = []
    for r in runs:
        seconds.setdefault((str(r["task"]), str(r["method"])), []).append(float(r["train_seconds"]))
        source.append(float(r["source_return"]))
    algos = sorted({str(r["algo"]) for r in runs})
    name = "/".join(get_algorithm(a).class_name for a in algos)
    header = (
        "| target task | method | n | "
        + " | ".join(f"K = {k:.0f}: IQM [95% CI] | K = {k:.0f}: mean [95% CI]" for k in budgets)
        + " | time / plain |"
    )
    lines = [header, "|" + "---|" * (4 + 2 * len(budgets))]
    tasks = list(dict.fromkeys(str(r["task"]) for r in runs))
    for task in tasks:
        methods = [m for m in ALL_METHODS if (task, m) in by] + sorted(
            m for (t, m) in by if t == task and m not in ALL_METHODS
        )
        plain_time = float(np.median(seconds[(task, PLAIN)])) if (task, PLAIN) in seconds else math.nan
        for method in methods:
            per_seed = by[(task, method)]
            if any(set(v) != set(budgets) for v in per_seed.values()):
                raise ValueError(f"{task} / {method}: the seeds were evaluated at different budgets; re-run them.")
            cells = []
            for k in budgets:
                x = [per_seed[s][k] for s in sorted(per_seed)]
                lo, hi = stats.bootstrap_ci(x, stats.iqm, reps=reps, seed=seed)
                mlo, mhi = stats.bootstrap_ci(x, stats.mean, reps=reps, seed=seed)
                cells += [f"{stats.iqm(x):.2f} [{lo:.2f}, {hi:.2f}]", f"{stats.mean(x):.2f} [{mlo:.2f}, {mhi:.2f}]"]
            ratio = float(np.median(seconds[(task, method)])) / plain_time
            lines.append(f"| {task} | {method} | {len(per_seed)} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    src = f" Pretrained plain {name} agents' return on the source task: mean {np.mean(source):.2f} (n = {len(set(int(r['seed']) for r in runs))})."
    return "\n".join(lines) + "\n\n" + TRANSFER_NOTE + src + "\n"
