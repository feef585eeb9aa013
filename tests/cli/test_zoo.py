"""The rl-zoo3 recipe of docs/ecosystem.md: an equivariant agent trained by ``python -m rl_zoo3.train``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch as th
from equirl.agents.hyperparams import write_zoo_config
from equirl.envs import get_symmetry, make_env

from equirl import equivariance_error


@pytest.mark.integration
def test_rl_zoo3_trains_equivariant_dqn(tmp_path: Path) -> None:
    pytest.importorskip("rl_zoo3")
    from stable_baselines3 import DQN

    env_id = "equirl/RotGrid-Corner-v0"
    conf = write_zoo_config(tmp_path / "equirl_dqn.yml", [env_id], method="lambda")
    cmd = [sys.executable, "-m", "rl_zoo3.train", "--algo", "dqn", "--env", env_id, "--gym-packages", "equirl.envs",
           "--conf-file", str(conf), "-n", "600", "--eval-freq", "300", "--eval-episodes", "2",
           "--n-eval-envs", "1", "-f", "logs", "--seed", "0", "--hyperparams", "learning_starts:100"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    run = tmp_path / "logs" / "dqn" / "equirl-RotGrid-Corner-v0_1"
    model = DQN.load(run / "equirl-RotGrid-Corner-v0.zip", device="cpu")
    q_net = model.policy.q_net
    assert type(model.policy).__name__ == "EquiDQNPolicy" and q_net.method == "lambda"
    assert model.num_timesteps == 600 and (run / "evaluations.npz").exists()
    obs = th.stack([th.as_tensor(make_env(env_id).reset(seed=s)[0], dtype=th.float32) for s in range(8)])
    assert equivariance_error(q_net, get_symmetry(env_id), obs) <= 1e-5
