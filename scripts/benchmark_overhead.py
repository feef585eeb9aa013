"""What symmetrisation costs: training throughput, predict latency, batched orbit vs a loop.

Everything is measured side by side in one run on this machine (timings interleaved, medians
over repeats), and reported as ratios against plain SB3 DQN. Hyperparameters: rl-zoo3's
CartPole-v1 entry in agents/hyperparams/dqn.yml.

    python scripts/benchmark_overhead.py [--train-steps 10000] [--repeats 5] [--out runs/benchmark_overhead]

Writes ``overhead.md`` (the tables) and ``overhead.png`` (the ratios) under ``--out``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from equirl.agents import ALL_METHODS, SmallKernelCNN, build_dqn, load_hyperparams
from equirl.envs import get_symmetry
from torch import nn
from tqdm import tqdm

import equirl as E

ENV_ID = "CartPole-v1"


def median_time(fn: Callable[[], object], repeats: int, inner: int = 1) -> float:
    """Median over ``repeats`` of the mean seconds per call of ``fn`` (``inner`` calls each)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def training_throughput(steps: int, repeats: int) -> dict[str, list[float]]:
    """Env steps per second of ``model.learn(steps)`` for every method, interleaved over repeats."""
    hp = load_hyperparams(ENV_ID)
    sym = get_symmetry(ENV_ID)
    out: dict[str, list[float]] = {m: [] for m in ALL_METHODS}
    for r in tqdm(range(repeats), desc="training throughput"):
        for method in ALL_METHODS:
            model = build_dqn(gym.make(ENV_ID), method, sym, hp, seed=r)
            start = time.perf_counter()
            model.learn(steps)
            out[method].append(steps / (time.perf_counter() - start))
    return out


def gradient_step_time(repeats: int, net_arch: list[int] | None = None, batch_size: int = 64) -> dict[str, float]:
    """Seconds per DQN gradient step (online forward+backward, target forward, Adam).

    ``net_arch`` defaults to the hyperparameter file's; a wider one makes the network dominate.
    """
    hp = load_hyperparams(ENV_ID)
    if net_arch is not None:
        hp["policy_kwargs"]["net_arch"] = net_arch
    sym = get_symmetry(ENV_ID)
    batch = torch.randn(batch_size, 4)
    actions = torch.randint(0, 2, (batch_size, 1))
    out = {}
    models = {m: build_dqn(gym.make(ENV_ID), m, sym, hp) for m in ALL_METHODS}
    for m, model in models.items():
        q_net, target, opt = model.q_net, model.q_net_target, model.policy.optimizer

        def step(q_net: nn.Module = q_net, target: nn.Module = target, opt: torch.optim.Optimizer = opt) -> None:
            with torch.no_grad():
                y = target(batch).max(1).values
            q = torch.gather(q_net(batch), 1, actions).squeeze(1)
            loss = nn.functional.smooth_l1_loss(q, y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        step()
        out[m] = median_time(step, repeats, inner=50)
    return out


def predict_latency(repeats: int) -> dict[str, float]:
    """Seconds per ``model.predict(obs)`` on one observation."""
    hp = load_hyperparams(ENV_ID)
    sym = get_symmetry(ENV_ID)
    obs, _ = gym.make(ENV_ID).reset(seed=0)
    models = {m: build_dqn(gym.make(ENV_ID), m, sym, hp) for m in ALL_METHODS}
    for model in models.values():
        model.predict(obs, deterministic=True)
    times: dict[str, list[float]] = {m: [] for m in models}
    for _ in range(repeats):
        for m, model in models.items():
            times[m].append(median_time(lambda model=model: model.predict(obs, deterministic=True), 1, inner=300))
    return {m: statistics.median(t) for m, t in times.items()}


def orbit_batched_vs_loop(repeats: int) -> list[tuple[str, int, float, float]]:
    """``symmetrize`` (one batched pass over [|G|·B]) against a Python loop over group elements."""
    cases = []
    c2 = get_symmetry(ENV_ID)
    mlp = nn.Sequential(nn.Linear(4, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU())
    cases.append(("CartPole C2, MLP 256x256, B=64", c2, mlp, nn.Linear(256, 2), torch.randn(64, 4)))
    for name, group, gens, perms in [
        ("C4", E.cyclic(4), ["rot90"], [[1, 2, 3, 0]]),
        ("D4", E.dihedral(4), ["rot90", "flip0"], [[1, 2, 3, 0], [2, 1, 0, 3]]),
    ]:
        sym = E.Symmetry(group, E.SpatialAction(group, gens), E.PermutationAction(group, perms))
        space = gym.spaces.Box(0, 1, (3, 7, 7), np.float32)
        cnn = SmallKernelCNN(space, features_dim=128)
        cases.append((f"{name} images 3x7x7, SmallKernelCNN, B=64", sym, cnn, nn.Linear(128, 4), torch.rand(64, 3, 7, 7)))
    rows = []
    reducer = E.MeanReducer()
    for label, sym, enc, head, x in tqdm(cases, desc="batched vs loop"):

        def batched(x: torch.Tensor = x, sym: E.Symmetry = sym, enc: nn.Module = enc, head: nn.Module = head) -> None:
            with torch.no_grad():
                E.symmetrize(x, sym, enc, head, reducer)

        def loop(x: torch.Tensor = x, sym: E.Symmetry = sym, enc: nn.Module = enc, head: nn.Module = head) -> None:
            with torch.no_grad():
                outs = []
                for g in range(sym.order):
                    y = head(enc(sym.input_action.apply(g, x)))
                    outs.append(sym.output_action.apply(sym.group.inverse(g), y))
                torch.stack(outs).mean(0)

        # same result, different speed
        with torch.no_grad():
            ref = E.symmetrize(x, sym, enc, head, reducer)
            outs = [sym.output_action.apply(sym.group.inverse(g), head(enc(sym.input_action.apply(g, x))))
                    for g in range(sym.order)]
            assert torch.allclose(ref, torch.stack(outs).mean(0), atol=1e-5)
        rows.append((label, sym.order, median_time(batched, repeats, 20), median_time(loop, repeats, 20)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-steps", type=int, default=10_000, help="env steps per training measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/benchmark_overhead")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    md: list[str] = [f"torch threads: {args.threads}; CartPole-v1 (|G| = 2), rl-zoo3 hyperparameters.\n"]
    grad = gradient_step_time(max(args.repeats, 5))
    big = gradient_step_time(max(args.repeats, 5), net_arch=[1024, 1024], batch_size=256)
    md += ["DQN gradient step (online forward+backward, target forward, Adam)", "",
           "| method | ms / step, [256, 256] batch 64 | ratio vs plain | ms / step, [1024, 1024] batch 256 "
           "| ratio vs plain | bound 1.1·\\|G\\| |", "|---|---|---|---|---|---|"]
    md += [f"| {m} | {t * 1e3:.3f} | {t / grad['plain']:.2f} | {big[m] * 1e3:.3f} | {big[m] / big['plain']:.2f} | 2.2 |"
           for m, t in grad.items()]

    thr = training_throughput(args.train_steps, args.repeats)
    med = {m: statistics.median(v) for m, v in thr.items()}
    md += ["", f"Training throughput, `model.learn({args.train_steps})` from scratch (median of {args.repeats})", "",
           "| method | env steps / s | time ratio vs plain |", "|---|---|---|"]
    md += [f"| {m} | {v:.0f} | {med['plain'] / v:.2f} |" for m, v in med.items()]

    lat = predict_latency(args.repeats)
    md += ["", "`model.predict(obs)` latency, one observation", "",
           "| method | µs / call | ratio vs plain (target <= 1.5) |", "|---|---|---|"]
    md += [f"| {m} | {t * 1e6:.0f} | {t / lat['plain']:.2f} |" for m, t in lat.items()]

    rows = orbit_batched_vs_loop(args.repeats)
    md += ["", "Group averaging (equitune forward): one batched pass over the orbit vs a loop over elements", "",
           "| case | \\|G\\| | batched ms | loop ms | loop / batched |", "|---|---|---|---|---|"]
    md += [f"| {label} | {g} | {b * 1e3:.3f} | {lp * 1e3:.3f} | {lp / b:.2f} |" for label, g, b, lp in rows]

    text = "\n".join(md)
    print(text)
    (out / "overhead.md").write_text(text + "\n")
    _plot(grad, med, lat, out / "overhead.png")
    print(f"\nWrote {out / 'overhead.md'} and {out / 'overhead.png'}")
    return 0


def _plot(grad: dict[str, float], thr: dict[str, float], lat: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in ALL_METHODS if m != "plain"]
    series = {
        "gradient step": [grad[m] / grad["plain"] for m in methods],
        "training time": [thr["plain"] / thr[m] for m in methods],
        "predict latency": [lat[m] / lat["plain"] for m in methods],
    }
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.25
    for i, (name, values) in enumerate(series.items()):
        ax.bar(np.arange(len(methods)) + (i - 1) * width, values, width, label=name)
    ax.axhline(2.2, color="k", ls="--", lw=1, label="1.1·|G| bound (training)")
    ax.axhline(1.5, color="tab:green", ls=":", lw=1, label="predict target 1.5")
    ax.axhline(1.0, color="gray", lw=0.5)
    ax.set_xticks(np.arange(len(methods)), methods)
    ax.set_ylabel("ratio vs plain DQN")
    ax.set_title("Cost of symmetrisation, CartPole-v1 (|G| = 2)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
