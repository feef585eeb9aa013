"""Plain vs equivariant DQN + HER on SB3's BitFlippingEnv: final greedy success rate per seed.

Each run trains ``DQN`` with ``HerReplayBuffer`` (future strategy, 4 sampled goals) for ``--steps``
steps on ``BitFlippingEnv(n_bits=--bits)`` (episodes of ``n_bits`` steps), then plays ``--episodes``
greedy episodes; the score is the fraction that reach the goal. ``plain`` is SB3's ``MultiInputPolicy``;
the other methods are ``EquiDQNPolicy`` with the catalogue symmetry ``bitflipping_symmetry(n_bits)``
(cyclic shifts of the bits on all three keys and of the actions). Prints a markdown table (IQM and mean
with 95% stratified-bootstrap intervals, n seeds) and writes the raw scores as JSON (atomically);
``--report FILE`` prints the table of such a file again.

    OMP_NUM_THREADS=1 python scripts/her_bitflipping.py --bits 15 --steps 10000 --seeds 0 1 2 --out her.json
    python scripts/her_bitflipping.py --report docs/benchmark/her_bitflipping/bits15.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from equirl.agents import EquiDQNPolicy
from equirl.agents.io import write_atomic
from equirl.agents.stats import bootstrap_ci, iqm, mean
from equirl.envs.catalog import bitflipping_symmetry
from stable_baselines3 import DQN, HerReplayBuffer
from stable_baselines3.common.envs import BitFlippingEnv


def run(method: str, bits: int, steps: int, seed: int, episodes: int) -> tuple[float, float]:
    """``(success rate of greedy episodes, seconds)`` of one training run."""
    env = BitFlippingEnv(n_bits=bits, continuous=False, max_steps=bits)
    kwargs: dict = dict(net_arch=[256, 256])
    policy: type | str = "MultiInputPolicy"
    if method != "plain":
        policy = EquiDQNPolicy
        kwargs.update(symmetry=bitflipping_symmetry(bits), method=method)
    start = time.perf_counter()
    model = DQN(
        policy,
        env,
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"),
        learning_rate=1e-3,
        buffer_size=100_000,
        learning_starts=1000,
        batch_size=64,
        gamma=0.95,
        exploration_fraction=0.3,
        exploration_final_eps=0.05,
        target_update_interval=500,
        policy_kwargs=kwargs,
        seed=seed,
    )
    model.learn(steps)
    seconds = time.perf_counter() - start
    test_env = BitFlippingEnv(n_bits=bits, continuous=False, max_steps=bits)
    successes = 0
    for ep in range(episodes):
        obs, _ = test_env.reset(seed=10_000 + ep)
        for _ in range(bits):
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = test_env.step(int(action))
            if terminated or truncated:
                break
        successes += bool(info.get("is_success"))
    return successes / episodes, seconds


def table(results: dict[str, dict[str, list[float]]], args: dict) -> str:
    """The markdown table of raw ``results`` (``method -> {"success": [...], "seconds": [...]}``)."""
    n = len(args["seeds"])
    lines = [
        f"BitFlipping {args['bits']} bits, DQN + HER, {args['steps']} steps, greedy success over {args['episodes']} "
        f"episodes, n = {n} seeds",
        "",
        "| method | IQM success [95% CI] | mean success [95% CI] | seconds per run |",
        "|---|---|---|---|",
    ]
    for method, r in results.items():
        if len(r["success"]) != n:
            continue  # an interrupted method
        lo, hi = bootstrap_ci(r["success"], iqm)
        mlo, mhi = bootstrap_ci(r["success"], mean)
        lines.append(f"| {method} | {iqm(r['success']):.2f} [{lo:.2f}, {hi:.2f}] | {mean(r['success']):.2f} "
                     f"[{mlo:.2f}, {mhi:.2f}] | {sum(r['seconds']) / n:.0f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bits", type=int, default=15)
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=["plain", "equitune"])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--out", default=None, help="write the raw scores here as JSON")
    p.add_argument("--report", default=None, help="print the table of a JSON file this script wrote, and stop")
    args = p.parse_args()
    if args.report:
        data = json.load(open(args.report))
        print(table(data["results"], data["args"]))
        return
    torch.set_num_threads(1)
    results: dict[str, dict[str, list[float]]] = {}
    for method in args.methods:
        results[method] = {"success": [], "seconds": []}
        for seed in args.seeds:
            s, t = run(method, args.bits, args.steps, seed, args.episodes)
            results[method]["success"].append(s)
            results[method]["seconds"].append(t)
            print(f"{method} seed {seed}: success {s:.2f} in {t:.0f} s", flush=True)
            if args.out:
                write_atomic(args.out, json.dumps({"args": vars(args), "results": results}, indent=1) + "\n")
    print("\n" + table(results, vars(args)))


if __name__ == "__main__":
    main()
