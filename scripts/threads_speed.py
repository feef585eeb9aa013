"""Training speed of the README quick start with torch's default thread count against one thread.

    python scripts/threads_speed.py --steps 3000 --threads default,1

Each setting runs in a fresh process (torch's thread count is fixed once work has started), training
the quick start's λ-equitune DQN (CartPole-v1, ``net_arch=[256, 256]``, SB3's other defaults) and a
plain SB3 DQN for ``--steps`` environment steps. Prints a markdown table of environment steps per second.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3000, help="environment steps per run")
    p.add_argument("--threads", default="default,1", help="comma-separated thread settings ('default' = torch's)")
    args = p.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    print(f"CPU cores: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.2f}; {args.steps} steps per run\n")
    print("| torch threads | plain DQN steps/s | λ-equitune DQN steps/s | load average after |")
    print("|---|---|---|---|")
    for setting in args.threads.split(","):
        res = subprocess.run(
            [sys.executable, "-c", _CHILD, setting, str(args.steps)], env=env, capture_output=True, text=True
        )
        if res.returncode != 0:
            raise SystemExit(res.stderr)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        label = f"{r['torch_threads']} ({setting})"
        print(f"| {label} | {r['plain']:.0f} | {r['lambda']:.0f} | {os.getloadavg()[0]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
