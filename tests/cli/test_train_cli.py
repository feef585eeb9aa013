"""``equirl train --algo``: every algorithm from the command line, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from equirl.cli import main as equirl_main


def test_train_ppo_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ["train", "equirl/RotGrid-Corner-v0", "--algo", "ppo", "--method", "equitune", "--steps", "64", "--out", str(out),
            "--eval-episodes", "1", "--no-progress"]  # fmt: skip
    assert equirl_main(args) == 0
    assert "equirl/RotGrid-Corner-v0 PPO equitune seed=0" in capsys.readouterr().out
    meta = json.loads((out / "model.json").read_text())
    assert (
        meta["algo"] == "ppo" and meta["policy"] == "EquiActorCriticPolicy" and meta["timesteps"] == 512
    )  # 8 envs x 64 steps
    assert not (out / "checkpoints").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--algo", "sac"], "Unknown algorithm 'sac'"),
        (["--algo", "ppo", "--resume"], "DQN-only"),
        (["--algo", "a2c", "--save-pretrained", "x"], "DQN-only"),
        (["--algo", "qrdqn", "--steps", "10"], "No hyperparameters for 'MountainCar-v0'"),
    ],
)
def test_train_bad_algo_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    env = "MountainCar-v0" if "qrdqn" in extra else "CartPole-v1"
    assert equirl_main(["train", env, "--out", str(tmp_path / "r"), *extra]) == 2
    assert message in capsys.readouterr().err
