"""Tables of single training runs and of the shipped pretrained agents, built from committed files.

- :func:`train_table`: ``scripts/cartpole.py --raw DIR`` (``make run``) writes one row per method, evaluation and
  metric (:func:`train_rows`; the folder format is :mod:`equirl.rawresults`); the table is rebuilt from it.
- :func:`pretrained_table`: the ``.json`` written next to each agent in ``agents/pretrained/`` by
  ``equirl train --save-pretrained`` (command, steps, seed, evaluation return).

- :func:`agents_gif`: a GIF of committed agents playing a task, side by side (``scripts/rotgrid_gif.py``).
- :func:`substitution_table`: the outcomes of SB3's own DQN tests with each method substituted
  (``scripts/sb3_substitution.py --raw DIR``: rows ``run, outcome, value`` parsed from pytest's summary line).

``equirl bench tables`` calls them (styles ``train-run``, ``pretrained-agents``, ``sb3-substitution`` and the figure
style ``agent-gif`` of ``docs/benchmark/tables.yml``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from equirl import rawresults

__all__ = [
    "train_rows",
    "train_results_table",
    "train_table",
    "pretrained_table",
    "agents_gif",
    "OUTCOMES",
    "pytest_outcomes",
    "substitution_table",
]

FINAL = ("final_mean_return", "final_std_return_ddof0", "n_eval_episodes", "train_seconds", "steps_per_second",
         "equivariance_error")  # fmt: skip
"""The per-run metrics of :func:`train_rows` (at the run's last step); the curve adds ``eval_mean_return``."""


def train_rows(result: Any, equivariance_error: float, n_eval_episodes: int) -> list[dict[str, Any]]:
    """The raw rows of one :class:`~equirl.agents.TrainResult`: ``method, seed, timesteps, metric, value``.

    Every periodic evaluation gives ``eval_mean_return`` (greedy return over ``n_eval_episodes``); the run's
    last step gives the metrics of :data:`FINAL` (``final_std_return_ddof0`` is SB3's population std over the
    final evaluation's episodes).
    """
    key = {"method": result.method, "seed": result.seed}
    rows = [{**key, "timesteps": int(r["timesteps"]), "metric": "eval_mean_return", "value": float(r["mean_return"])}
            for r in result.curve]  # fmt: skip
    final = (result.mean_return, result.std_return, n_eval_episodes, result.train_seconds, result.steps_per_second,
             equivariance_error)  # fmt: skip
    rows += [{**key, "timesteps": int(result.timesteps), "metric": m, "value": float(v)}
             for m, v in zip(FINAL, final, strict=True)]  # fmt: skip
    return rows


def train_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table of :func:`train_rows` rows (values may be text, as read back): a row per method and seed.

    ``final return``: mean ± sample std (ddof 1) over the final evaluation's episodes; ``mean of evals, 2nd half``:
    the mean of the periodic evaluations after half the budget; ``best eval``: the best periodic evaluation.
    """
    lines = [
        "| method | seed | final return (mean ± sample std) | mean of evals, 2nd half | best eval | train time (s) "
        "| env steps/s | equivariance error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, seed in dict.fromkeys((str(r["method"]), str(r["seed"])) for r in rows):
        mine = [r for r in rows if (str(r["method"]), str(r["seed"])) == (method, seed)]
        get = {str(r["metric"]): float(r["value"]) for r in mine if r["metric"] != "eval_mean_return"}
        curve = [(int(r["timesteps"]), float(r["value"])) for r in mine if r["metric"] == "eval_mean_return"]
        total = max(t for t, _ in curve)
        half = [v for t, v in curve if t > total / 2]
        n = get["n_eval_episodes"]
        sd = get["final_std_return_ddof0"] * math.sqrt(n / (n - 1)) if n > 1 else math.nan
        lines.append(
            f"| {method} | {seed} | {get['final_mean_return']:.1f} ± {sd:.1f} | {sum(half) / len(half):.1f} "
            f"| {max(v for _, v in curve):.1f} | {get['train_seconds']:.1f} | {get['steps_per_second']:.0f} "
            f"| {get['equivariance_error']:.2e} |"
        )
    return "\n".join(lines) + "\n"


def train_results_table(folders: Sequence[str | Path], root: str | Path = ".") -> str:
    """:func:`train_table` of ``scripts/cartpole.py --raw`` folders taken together (for example one per method,
    run side by side), with a note per folder (what, n, provenance)."""
    if not folders:
        raise ValueError("A training-run table needs at least one raw folder.")
    rows: list[dict[str, str]] = []
    notes = []
    for folder in folders:
        r, meta = rawresults.read_raw(Path(root) / folder)
        rows += r
        st = meta["settings"]
        n = int(float(next(x["value"] for x in r if x["metric"] == "n_eval_episodes")))
        evals = sorted({int(x["timesteps"]) for x in r if x["metric"] == "eval_mean_return"})
        what = (
            f"{st['env_id']}, {', '.join(st['methods'])}, seed {st['seed']}, {st['steps']:,} steps; greedy return over "
            f"{n} episodes at each of {len(evals)} evaluations ({evals[0]:,} to {evals[-1]:,} steps); one seed per "
            f"method, so the ± is the spread over the n = {n} episodes of one agent, not over seeds; train time "
            f"excludes the evaluations"
        )
        notes.append(rawresults.note(folder, meta, what))
    return train_table(rows) + "\n" + " ".join(notes) + "\n"


def pretrained_table(folders: Sequence[str | Path], root: str | Path = ".") -> str:
    """Markdown table of the pretrained agents in ``folders`` (each ``<name>.json`` next to ``<name>.zip``).

    Columns: the agent, its environment (with ``env_kwargs`` and the task wrapper), the steps of the selected
    model (``of N`` and the selection when the best periodic evaluation was kept), the greedy return as mean ±
    sample std (ddof 1, from the recorded population std) over the recorded episodes, and the command.
    """
    lines = ["| agent | env (task) | steps (selected) | greedy return (episodes) | command |",
             "|---|---|---|---|---|"]  # fmt: skip
    for folder in folders:
        files = sorted((Path(root) / folder).glob("*.json"))
        if not files:
            raise FileNotFoundError(f"{Path(root) / folder} holds no pretrained agent's .json.")
        for f in files:
            d = json.loads(f.read_text())
            env = f"`{d['env_id']}`"
            if d.get("env_kwargs"):
                env += ", " + ", ".join(f"`{k}={v}`" for k, v in d["env_kwargs"].items())
            if d.get("task"):
                env += f", task `{json.dumps(d['task'])}`"
            steps = f"{d['timesteps']:,}"
            if d.get("selected"):
                of = f" of {int(d['final_timesteps']):,}" if d.get("final_timesteps") else ""
                steps += f"{of}; {d['selected']}"
            n = int(d["n_eval_episodes"])
            sd = d["eval_std_return"] * math.sqrt(n / (n - 1)) if n > 1 else math.nan
            ret = f"{d['eval_mean_return']:.2f} ± {sd:.2f} ({n})"
            lines.append(f"| `{f.stem}` | {env} | {steps} | {ret} | `{d['command']}` |")
    where = ", ".join(f"`{folder}/*.json`" for folder in folders)
    what = (
        "greedy return: mean ± sample standard deviation (ddof 1, from the recorded population std) over the n "
        "evaluation episodes in brackets, of the selected model"
    )
    return "\n".join(lines) + f"\n\n{rawresults.NOTE_START}{where} ({what}).*\n"


def agents_gif(
    folders: Sequence[str | Path],
    path: str | Path,
    root: str | Path = ".",
    *,
    agent: str,
    env_id: str,
    methods: Sequence[str] = ("plain", "equitune"),
    env_kwargs: dict[str, Any] | None = None,
    episodes: int = 3,
    seed: int = 0,
    fps: int = 5,
    tile_size: int = 16,
) -> list[list[float]]:
    """A GIF at ``path`` of the agent ``<folders[0]>/<agent>`` (a saved agent folder) playing ``env_id``, once per
    method in ``methods``, side by side left to right (``plain``: the agent itself; otherwise symmetrised over the
    catalogue symmetry of ``env_id`` with no training, :func:`~equirl.agents.equivariant_from_pretrained`).

    Every panel plays the same ``episodes`` (reset seeds ``seed``, ``seed + 1``, ...) greedily on
    ``make_env(env_id, render_mode="rgb_array", tile_size=tile_size, **env_kwargs)``. Deterministic: the same
    files give the same bytes. Returns each method's episode returns (a list per method).
    """
    from equirl.agents.transfer import equivariant_from_pretrained
    from equirl.envs import get_symmetry, make_env, record_gif

    if len(folders) != 1:
        raise ValueError(f"an agent GIF is drawn from one folder of agents, got {list(folders)}.")
    source = Path(root) / folders[0] / agent
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source} is not a saved agent folder (no config.json); expected one in {folders[0]}.")
    models = [equivariant_from_pretrained(source, None if m == "plain" else get_symmetry(env_id), m) for m in methods]
    env = make_env(env_id, render_mode="rgb_array", tile_size=tile_size, **(env_kwargs or {}))
    returns: list[list[float]] = []
    record_gif(models, env, path, episodes, seed, fps, overwrite=True, episode_returns=returns)
    env.close()
    return returns


OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "skipped", "error")
"""The outcomes of a pytest run that :func:`pytest_outcomes` counts (``deselected`` is not an outcome of a case)."""


def pytest_outcomes(summary: str) -> dict[str, int]:
    """``{outcome: count}`` from pytest's final summary line (``"64 passed, 7 skipped, 2 xfailed in 51.05s"``),
    every outcome of :data:`OUTCOMES` present (0 where the line has none). ``ValueError`` when it holds none."""
    import re

    found = dict.fromkeys(OUTCOMES, 0)
    pairs = re.findall(r"(\d+) (passed|failed|xfailed|xpassed|skipped|errors?)\b", summary)
    if not pairs:
        raise ValueError(f"not a pytest summary line: {summary!r}")
    for n, outcome in pairs:
        found["error" if outcome.startswith("error") else outcome] += int(n)
    return found


def substitution_table(folders: Sequence[str | Path], root: str | Path = ".") -> str:
    """Markdown table of one ``scripts/sb3_substitution.py --raw`` folder: a row per run (``native`` SB3 policies,
    then each equivariant method substituted), a column per outcome that occurred, and the number of cases."""
    if len(folders) != 1:
        raise ValueError(f"An sb3-substitution table is built from one raw folder, got {list(map(str, folders))}.")
    rows, meta = rawresults.read_raw(Path(root) / folders[0])
    runs = list(dict.fromkeys(r["run"] for r in rows))
    counts = {(r["run"], r["outcome"]): int(float(r["value"])) for r in rows}
    shown = [o for o in OUTCOMES if any(counts.get((run, o), 0) for run in runs)]
    names = {"xfailed": "xfailed (strict)"}
    lines = [
        "| run | cases | " + " | ".join(names.get(o, o) for o in shown) + " |",
        "|---" * (len(shown) + 2) + "|",
    ]
    for run in runs:
        label = "native SB3 policies" if run == "native" else f"`{run}`"
        total = sum(counts.get((run, o), 0) for o in OUTCOMES)
        lines.append(f"| {label} | {total} | " + " | ".join(str(counts.get((run, o), 0)) for o in shown) + " |")
    st = meta["settings"]
    what = (
        f"SB3 {st['sb3_version']}'s own test files in tests/sb3_upstream, the DQN cases of each run; one pytest run per "
        "row, counts from its summary line"
    )
    return "\n".join(lines) + "\n\n" + rawresults.note(folders[0], meta, what) + "\n"
