"""A uniformly random policy's return on the benchmark's environments: the ``baseline`` of ``benchmark.yml``.

``equirl bench baseline ENV ... --raw DIR`` plays ``episodes`` episodes per environment with actions drawn
uniformly from the action space, on the environment the benchmark trains on (:func:`equirl.envs.make_env`),
and writes one row per episode (:mod:`equirl.rawresults` format: ``env_id, episode, metric, value`` with the
metrics ``return``, ``length``, ``terminated`` and ``last_reward``). :func:`baselines_table` (style
``random-baseline`` of ``docs/benchmark/tables.yml``) builds the table from that folder, next to the
``baseline`` each benchmark config declares. Episode ``k`` is reset with ``seed + k``; the action space is
seeded with ``seed``, so a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from equirl.agents import stats

from equirl import rawresults

__all__ = ["METRICS", "random_policy_rows", "baselines_table"]

METRICS = ("return", "length", "terminated", "last_reward")
"""Per-episode metrics of :func:`random_policy_rows`: the undiscounted return, the number of steps, 1.0 when the
episode ended by termination (not truncation) and the reward of its last step."""


def random_policy_rows(env_id: str, episodes: int, seed: int = 0, progress: bool = False) -> list[dict[str, Any]]:
    """Play ``episodes`` episodes of ``env_id`` with uniformly random actions; one row per episode and metric.

    Rows: ``{"env_id", "episode", "metric", "value"}`` with ``metric`` in :data:`METRICS`.
    """
    from equirl.envs import make_env

    from equirl.extras import progress_bar

    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}.")
    env = make_env(env_id)
    env.action_space.seed(seed)
    rows: list[dict[str, Any]] = []
    bar = progress_bar(episodes, desc=env_id, enabled=progress)
    try:
        for k in range(episodes):
            env.reset(seed=seed + k)
            total, steps, done, terminated, reward = 0.0, 0, False, False, 0.0
            while not done:
                _, r, terminated, truncated, _ = env.step(env.action_space.sample())
                reward = float(r)
                total += reward
                steps += 1
                done = terminated or truncated
            values = (total, float(steps), float(terminated), reward)
            rows += [
                {"env_id": env_id, "episode": k, "metric": m, "value": v} for m, v in zip(METRICS, values, strict=True)
            ]
            bar.update()
    finally:
        bar.close()
        env.close()
    return rows


def _declared(env_id: str, configs: Sequence[str | None]) -> str:
    """The ``baseline`` the benchmark configs declare for ``env_id`` (``"–"`` where none has it)."""
    from equirl.agents import sweep

    found = []
    for c in configs:
        bench = sweep.load_config(c).get(env_id)
        if bench is not None:
            found.append(f"{bench.baseline:g}")
    return ", ".join(dict.fromkeys(found)) or "–"


def baselines_table(folders: Sequence[str | Path], root: str | Path = ".") -> str:
    """Markdown table of ``equirl bench baseline --raw`` folders: a row per environment with the random policy's mean
    return [95% bootstrap CI], the median length, the share of episodes that ended by termination and the share that
    ended by termination on a negative reward (a failure state: RotGrid-Cross's hazards), and the ``baseline`` that ``benchmark.yml`` (and the PPO / QR-DQN configs) declare."""
    lines = [
        "| environment | episodes | mean return [95% CI] | median length | terminated | failed (terminated, last reward < 0) "
        "| declared baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    notes = []
    for folder in folders:
        rows, meta = rawresults.read_raw(Path(root) / folder)
        for env_id in dict.fromkeys(r["env_id"] for r in rows):
            per_metric: dict[str, list[float]] = {m: [] for m in METRICS}
            for r in rows:
                if r["env_id"] == env_id:
                    per_metric[r["metric"]].append(float(r["value"]))
            ret, length, terminated, last = (np.array(per_metric[m]) for m in METRICS)
            lo, hi = stats.bootstrap_ci(ret, stats.mean)
            lines.append(
                f"| {env_id} | {len(ret)} | {ret.mean():.2f} [{lo:.2f}, {hi:.2f}] | {np.median(length):g} "
                f"| {terminated.mean():.0%} | {((terminated > 0) & (last < 0)).mean():.0%} "
                f"| {_declared(env_id, [None, 'ppo', 'qrdqn'])} |"
            )
        what = (
            f"a uniformly random policy, episode k reset with seed {meta['settings']['seed']} + k; CI: stratified "
            f"bootstrap of the mean, {stats.DEFAULT_REPS:,} resamples"
        )
        notes.append(rawresults.note(folder, meta, what))
    return "\n".join(lines) + "\n\n" + " ".join(notes) + "\n"
