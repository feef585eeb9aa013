"""Training speed of the README quick start with torch's default thread count against one thread.

:func:`measure` runs each thread setting in a fresh process (torch's thread count is fixed once work has started),
training the quick start's λ-equitune DQN (CartPole-v1, ``net_arch=[256, 256]``, SB3's other defaults) and a plain
SB3 DQN for ``steps`` environment steps, and records the machine's load average around each run.
``scripts/threads_speed.py`` runs it; with ``--raw DIR`` its rows (``setting, rep, torch_threads, method, metric,
value``; the folder format is :mod:`equirl.rawresults`) are what :func:`table` renders (``equirl bench tables``,
style ``threads-speed``; docs/ecosystem.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from equirl import rawresults

__all__ = ["METHODS", "measure", "render", "table"]

METHODS = ("plain", "lambda")
"""The two agents of each run, in the order they train."""

_CHILD = """
import json, sys, time
import torch
threads = sys.argv[1]
if threads != "default":
    torch.set_num_threads(int(threads))
from stable_baselines3 import DQN
from equirl.agents import EquiDQNPolicy
from equirl.envs import get_symmetry
out = {"torch_threads": torch.get_num_threads()}
for method in ("plain", "lambda"):
    if method == "plain":
        model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[256, 256]), seed=0)
    else:
        kw = dict(symmetry=get_symmetry("CartPole-v1"), method="lambda", net_arch=[256, 256])
        model = DQN(EquiDQNPolicy, "CartPole-v1", policy_kwargs=kw, seed=0)
    t = time.perf_counter()
    model.learn(int(sys.argv[2]))
    out[method] = int(sys.argv[2]) / (time.perf_counter() - t)
print(json.dumps(out))
"""


def measure(
    steps: int, settings: Sequence[str] = ("default", "1"), reps: int = 1, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Environment steps per second of plain and λ-equitune DQN per thread setting (``default`` = torch's, or a
    number), ``reps`` times, the settings interleaved (``default, 1, default, 1, ...``).

    Each run is a fresh Python process without ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``. Rows ``setting, rep,
    torch_threads, method, metric, value``: ``steps per second`` per method, and (method ``-``) ``load before`` /
    ``load after`` (the 1-minute load average) and ``steps``.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    rows: list[dict[str, Any]] = []
    for rep in range(reps):
        for setting in settings:
            if setting != "default" and not (setting.isdigit() and int(setting) > 0):
                raise ValueError(f"A thread setting is 'default' or a positive number, got {setting!r}.")
            before = os.getloadavg()[0]
            res = subprocess.run(
                [sys.executable, "-c", _CHILD, setting, str(steps)], env=env, capture_output=True, text=True
            )
            if res.returncode != 0:
                raise RuntimeError(f"The {setting!r} thread run failed:\n{res.stderr}")
            out = json.loads(res.stdout.strip().splitlines()[-1])
            head = {"setting": setting, "rep": rep, "torch_threads": out["torch_threads"]}
            rows += [{**head, "method": m, "metric": "steps per second", "value": out[m]} for m in METHODS]
            measured = (("load before", before), ("load after", os.getloadavg()[0]), ("steps", steps))
            rows += [{**head, "method": "-", "metric": k, "value": v} for k, v in measured]
            log(f"threads {out['torch_threads']} ({setting}), rep {rep}: plain {out['plain']:.0f}, "
                f"λ {out['lambda']:.0f} steps/s")  # fmt: skip
    return rows


def _cell(values: Sequence[float]) -> str:
    """``mean ± sd (run 1, run 2, ...)``, or the one value."""
    runs = f" ({', '.join(f'{v:.0f}' for v in values)})" if len(values) > 1 else ""
    return rawresults.mean_sd(values, 0) + runs


def render(rows: Sequence[dict[str, Any]]) -> str:
    """The markdown table of :func:`measure`'s rows (values may be text, as read back): per setting the steps per
    second of each method (mean ± sample sd over the runs, then each run's value, when more than one) and the load
    averages around each run."""
    settings = list(dict.fromkeys(str(r["setting"]) for r in rows))
    if not settings:
        raise ValueError("No rows: expected the rows of equirl.agents.threads.measure.")

    def vals(setting: str, method: str, metric: str) -> list[float]:
        return [float(r["value"]) for r in rows
                if (str(r["setting"]), r["method"], r["metric"]) == (setting, method, metric)]  # fmt: skip

    lines = ["| torch threads | plain DQN env steps/s | λ-equitune DQN env steps/s | load average before → after |",
             "|---|---|---|---|"]  # fmt: skip
    for s in settings:
        threads = sorted({str(r["torch_threads"]) for r in rows if str(r["setting"]) == s})
        label = f"{'/'.join(threads)} (torch's default here)" if s == "default" else "/".join(threads)
        loads = zip(vals(s, "-", "load before"), vals(s, "-", "load after"), strict=True)
        lines.append(
            f"| {label} | {_cell(vals(s, 'plain', 'steps per second'))} | {_cell(vals(s, 'lambda', 'steps per second'))} | "
            + ", ".join(f"{b:.2f} → {a:.2f}" for b, a in loads)
            + " |"
        )
    return "\n".join(lines) + "\n"


def table(folders: Sequence[str | Path], root: str | Path = ".") -> str:
    """:func:`render` of one ``scripts/threads_speed.py --raw`` folder, with its provenance."""
    if len(folders) != 1:
        raise ValueError(f"A threads table is built from one raw folder, got {list(map(str, folders))}.")
    rows, meta = rawresults.read_raw(Path(root) / folders[0])
    st = meta["settings"]
    runs = sorted({int(r["rep"]) for r in rows})
    spread = rawresults.spread_words(len(runs), "run", runs)
    what = (
        f"CartPole-v1, the quick start's DQN (`net_arch=[256, 256]`, SB3's other defaults, seed 0), "
        f"{st['steps']:,} environment steps per method and run, each run a fresh process, settings interleaved; "
        f"{spread}, then each run's value in brackets, in order; load average: the machine's 1-minute load average "
        f"before and after each run"
    )
    return render(rows) + "\n" + rawresults.note(folders[0], meta, what) + "\n"
