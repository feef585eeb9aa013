"""The worked example of docs/symmetry.md: an environment outside the catalogue, from discovery to trained agents.

``equirl/NoisyCartPole-v0`` (CartPole with a random gust on the cart every step) has no catalogue entry.
:func:`run` (1) discovers its symmetry through a user-written :class:`~equirl.envs.ObsStateCodec`, (2) verifies the
result statistically on other seeds, (3) per seed trains an equivariant DQN (λ-equitune) and a plain DQN with
CartPole-v1's rl-zoo3 hyperparameters for the same number of steps, evaluates both greedily and measures the trained
λ-equitune Q-network's equivariance error. ``scripts/symmetry_worked_example.py`` runs it; with ``--raw DIR`` its
rows (``stage, seed, method, metric, value``; the folder format is :mod:`equirl.rawresults`) are what :func:`table`
renders (``equirl bench tables``, style ``worked-example``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from equirl.envs.symmetry_reports import discovery_metrics

from equirl import envs, rawresults

__all__ = ["METHODS", "CHECK_SEEDS", "codec", "run", "render", "table"]

METHODS = ("lambda", "plain")
"""The two agents trained per seed."""
CHECK_SEEDS = (10, 11, 12)
"""Seeds of the independent statistical check of the discovered symmetry (16 states each)."""


def codec() -> envs.ObsStateCodec:
    """How discovery reads and sets NoisyCartPole's state: the state is the observation."""
    return envs.ObsStateCodec(
        observe=lambda u: np.array(u.state, dtype=np.float64),
        set_obs=lambda u, o: setattr(u, "state", np.array(o, dtype=np.float64)),
    )


def _equivariance_error(model: Any, symmetry: Any) -> float:
    """max |Q(g·s) - ρ(g)Q(s)| of ``model.q_net`` on 256 random CartPole-like states (seed 0), g the mirror."""
    obs = torch.randn(256, 4, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 1.0, 0.1, 1.0])
    with torch.no_grad():
        q = model.q_net(obs)
        g_obs = symmetry.input_action.apply(1, obs)
        return float((model.q_net(g_obs) - symmetry.output_action.apply(1, q)).abs().max())


def run(
    seeds: Sequence[int], steps: int, eval_episodes: int = 20, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Discover, check, then train and evaluate :data:`METHODS` for each of ``seeds`` (``steps`` each).

    Rows ``stage, seed, method, metric, value`` (``-`` where a column does not apply): stage ``discovery``
    (:func:`~equirl.envs.symmetry_reports.discovery_metrics`), ``check`` (``ok`` 0/1, ``tests``, ``samples``,
    ``smallest corrected p``, ``seconds``) and ``train`` per seed and method: ``train seconds``, one
    ``episode return`` row per greedy evaluation episode (in order) and, for λ-equitune, ``equivariance error``.
    """
    from equirl.agents import build_dqn, load_hyperparams
    from equirl.agents.evaluation import evaluate_episodes

    env_id = envs.NOISY_CARTPOLE_ID
    found = envs.discover_symmetry(lambda: gym.make(env_id), codec=codec(), name="NoisyCartPole mirror")
    log(f"{found}\n\n{found.snippet}\n")
    rows: list[dict[str, Any]] = [
        {"stage": "discovery", "seed": "-", "method": "-", "metric": m, "value": v} for m, v in discovery_metrics(found)
    ]
    check = envs.verify_symmetry(
        env_id, found.symmetry, mode="statistical", state_mapper=found.state_mapper, seeds=CHECK_SEEDS, states=16
    )
    log(f"{check}\n")
    assert isinstance(check, envs.StatisticalReport)
    measured = (("ok", int(check.ok)), ("tests", check.n_tests), ("samples", check.samples),
                ("smallest corrected p", check.p_value), ("seconds", check.seconds))  # fmt: skip
    rows += [{"stage": "check", "seed": "-", "method": "-", "metric": m, "value": v} for m, v in measured]
    hp = load_hyperparams("CartPole-v1")
    for seed in seeds:
        for method in METHODS:
            sym = found.symmetry if method != "plain" else None
            t0 = time.perf_counter()
            model = build_dqn(gym.make(env_id), method, sym, hp, seed=seed, device="cpu")
            model.learn(steps)
            seconds = time.perf_counter() - t0
            returns, _ = evaluate_episodes(model, lambda: gym.make(env_id), n_episodes=eval_episodes)
            head = {"stage": "train", "seed": seed, "method": method}
            rows.append({**head, "metric": "train seconds", "value": seconds})
            rows += [{**head, "metric": "episode return", "value": r} for r in returns]
            if sym is not None:
                rows.append({**head, "metric": ERR, "value": _equivariance_error(model, sym)})
            log(f"seed {seed} {method}: return {statistics.fmean(returns):.1f}, {seconds:.0f} s")
    return rows


ERR = "equivariance error"


def _largest(values: Sequence[float]) -> str:
    return f"{max(values):.2g}" if values else "-"


def render(rows: Sequence[dict[str, Any]]) -> str:
    """The markdown table of :func:`run`'s ``train`` rows (values may be text, as read back): per seed the greedy
    return of each method (mean ± sample sd over the episodes), the training seconds and the equivariance error,
    then (for more than one seed) a row over seeds: mean ± sample sd of the per-seed values."""
    train = [r for r in rows if r["stage"] == "train"]
    if not train:
        raise ValueError("No 'train' rows: expected the rows of equirl.agents.worked_example.run.")
    seeds = list(dict.fromkeys(str(r["seed"]) for r in train))

    def vals(seed: str | None, method: str, metric: str) -> list[float]:
        return [float(r["value"]) for r in train if (seed is None or str(r["seed"]) == seed)
                and (r["method"], r["metric"]) == (method, metric)]  # fmt: skip

    def per_seed(method: str, metric: str) -> list[float]:
        return [statistics.fmean(vals(s, method, metric)) for s in seeds if vals(s, method, metric)]

    lines = ["| seed | λ-equitune return | plain DQN return | λ-equitune train s | plain train s | "
             "max abs(Q(g·s) − ρ(g)Q(s)) |", "|---|---|---|---|---|---|"]  # fmt: skip
    for s in seeds:
        lines.append(
            f"| {s} | {rawresults.mean_sd(vals(s, 'lambda', 'episode return'), 1)} | "
            f"{rawresults.mean_sd(vals(s, 'plain', 'episode return'), 1)} | "
            f"{rawresults.mean_sd(vals(s, 'lambda', 'train seconds'), 0)} | "
            f"{rawresults.mean_sd(vals(s, 'plain', 'train seconds'), 0)} | {_largest(vals(s, 'lambda', ERR))} |"
        )
    if len(seeds) > 1:
        lines.append(
            f"| all {len(seeds)} seeds | {rawresults.mean_sd(per_seed('lambda', 'episode return'), 1)} | "
            f"{rawresults.mean_sd(per_seed('plain', 'episode return'), 1)} | "
            f"{rawresults.mean_sd(per_seed('lambda', 'train seconds'), 0)} | "
            f"{rawresults.mean_sd(per_seed('plain', 'train seconds'), 0)} | {_largest(vals(None, 'lambda', ERR))} |"
        )
    return "\n".join(lines) + "\n"


def table(folders: Sequence[str | Path], root: str | Path = ".") -> str:
    """:func:`render` of one ``scripts/symmetry_worked_example.py --raw`` folder, with a note that gives the
    discovery's and the check's results and the provenance."""
    if len(folders) != 1:
        raise ValueError(f"A worked-example table is built from one raw folder, got {list(map(str, folders))}.")
    rows, meta = rawresults.read_raw(Path(root) / folders[0])
    st = meta["settings"]

    def one(stage: str, metric: str) -> float:
        return float(next(r["value"] for r in rows if (r["stage"], r["metric"]) == (stage, metric)))

    disc = {str(r["metric"]): float(r["value"]) for r in rows if r["stage"] == "discovery"}
    pruned = {k.removeprefix("pruned: "): int(v) for k, v in disc.items() if k.startswith("pruned: ") and v}
    by = ", ".join(f"{v:,} by {k}" for k, v in pruned.items())
    seeds = list(dict.fromkeys(str(r["seed"]) for r in rows if r["stage"] == "train"))
    what = (
        f"DQN on {envs.NOISY_CARTPOLE_ID}, {st['steps']:,} steps with CartPole-v1's rl-zoo3 hyperparameters, seeds "
        f"{', '.join(seeds)}, one agent per method and seed; return: mean ± sample standard deviation (ddof 1) over "
        f"n = {st['eval_episodes']} greedy episodes of that agent; last row: mean ± sample standard deviation over "
        f"the n = {len(seeds)} per-seed values; train s: wall-clock of model construction and learn, on a machine "
        f"shared with other jobs; equivariance error on 256 random states; discovery: group of order "
        f"{int(disc['group order'])} in {disc['seconds']:.1f} s, {sum(pruned.values()):,} candidates pruned ({by}), "
        f"{int(disc['stepped'])} stepped, {int(disc['failed one-step'])} failed the one-step check, "
        f"{int(disc['verified'])} verified; check (seeds "
        f"{', '.join(map(str, st['check_seeds']))}, 16 states each): {'OK' if one('check', 'ok') else 'FAILED'}, "
        f"{int(one('check', 'tests'))} KS tests on {int(one('check', 'samples'))} samples, smallest corrected p-value "
        f"{one('check', 'smallest corrected p'):.3g}"
    )
    return render(rows) + "\n" + rawresults.note(folders[0], meta, what) + "\n"
