"""Fault injection: damaged artifacts, refused overwrites, malicious checkpoints, non-finite inputs, kills.

The fast core runs by default; the SIGKILL tests (a real ``equirl train`` killed at random points,
then resumed) are marked slow.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from equirl.agents.hyperparams import PRETRAINED_DIR
from equirl.agents.training import (
    NonFiniteError,
    RunFolderError,
    evaluate,
    latest_checkpoint,
    read_metadata,
    train,
)
from equirl.agents.transfer_suite import run_suite
from equirl.envs import get_symmetry

from equirl.cli import main as equirl_main
from tests.agents.test_training import TINY, StopAt, _state, cartpole

KW: dict[str, Any] = dict(seed=3, total_timesteps=256, eval_freq=128, n_eval_episodes=1, checkpoint_freq=64)
FAST = dict(gradient_steps=1)  # DQN overrides: fewer gradient steps, same code paths


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


# -- run folders -----------------------------------------------------------------------------------
def test_occupied_folder_resume_and_overwrite(tmp_path: Path) -> None:
    kw = dict(seed=0, total_timesteps=120, eval_freq=120, n_eval_episodes=1, **FAST)
    with pytest.raises(FileNotFoundError, match="no complete checkpoint .* nothing to resume"):
        train(cartpole, "plain", None, TINY, out_dir=tmp_path, resume=True, **kw)  # type: ignore[arg-type]
    first = train(cartpole, "plain", None, TINY, out_dir=tmp_path, **kw)  # type: ignore[arg-type]
    model_zip = (tmp_path / "model.zip").read_bytes()
    with pytest.raises(RunFolderError, match="already holds a run .*--resume.*--overwrite"):
        train(cartpole, "plain", None, TINY, out_dir=tmp_path, **kw)  # type: ignore[arg-type]
    assert (tmp_path / "model.zip").read_bytes() == model_zip  # nothing touched
    with pytest.raises(RunFolderError, match=r"run.json: .*seed: recorded 0, requested 7"):
        train(cartpole, "plain", None, TINY, out_dir=tmp_path, resume=True, **{**kw, "seed": 7})  # type: ignore[arg-type]
    second = train(cartpole, "plain", None, TINY, out_dir=tmp_path, overwrite=True, **{**kw, "seed": 1})  # type: ignore[arg-type]
    rows = list(csv.reader((tmp_path / "eval.csv").open()))
    assert len(rows) == 1 + len(second.curve)  # one curve, not two
    assert json.loads((tmp_path / "model.json").read_text())["seed"] == 1
    assert first.curve and second.curve


def test_cli_refusals(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert equirl_main(["train", "CartPole-v1", "--steps", "0", "--out", str(tmp_path / "a"), "--no-progress"]) == 2
    assert "--steps must be >= 1" in capsys.readouterr().err
    shipped = PRETRAINED_DIR / "cartpole_plain" / "model.safetensors"
    stamp = shipped.stat().st_mtime_ns
    args = [
        "train",
        "CartPole-v1",
        "--steps",
        "64",
        "--out",
        str(tmp_path / "b"),
        "--save-pretrained",
        "cartpole_plain",
    ]
    assert equirl_main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cartpole_plain" in err and "--force" in err
    assert shipped.stat().st_mtime_ns == stamp and not (tmp_path / "b").exists()
    assert (
        equirl_main(
            ["train", "CartPole-v1", "--steps", "64", "--out", str(tmp_path / "c"), "--resume", "--no-progress"]
        )
        == 2
    )
    assert "nothing to resume" in capsys.readouterr().err


# -- checkpoints -----------------------------------------------------------------------------------
def test_damaged_latest_falls_back_and_resume_is_exact(tmp_path: Path) -> None:
    """Torn ``latest`` and a half-written newest checkpoint: resume uses the newest complete one, exactly."""
    sym = get_symmetry("CartPole-v1")
    full = train(cartpole, "lambda", sym, TINY, out_dir=tmp_path / "full", **KW, **FAST)  # type: ignore[arg-type]
    train(cartpole, "lambda", sym, TINY, out_dir=tmp_path / "cut", callbacks=[StopAt(220)], **KW, **FAST)  # type: ignore[arg-type]
    ckpts = tmp_path / "cut" / "checkpoints"
    names = sorted(p.name for p in ckpts.glob("ckpt_*"))
    assert len(names) == 2
    (ckpts / "latest").write_bytes(b"\x00\xff")
    state = ckpts / names[-1] / "state.json"
    state.write_text(state.read_text()[:50])  # the newest checkpoint is damaged too
    with pytest.warns(UserWarning, match="latest is missing or damaged"):
        assert latest_checkpoint(ckpts) == ckpts / names[0]
    with pytest.warns(UserWarning):
        resumed = train(cartpole, "lambda", sym, TINY, out_dir=tmp_path / "cut", resume=True, **KW, **FAST)  # type: ignore[arg-type]
    assert resumed.resumed_from == int(names[0].split("_")[1])
    a, b = _state(full.model), _state(resumed.model)
    assert all(th.equal(a[k], b[k]) for k in a)
    lines = (tmp_path / "cut" / "eval.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + len(full.curve)


def test_checkpoint_pickles_are_never_loaded(tmp_path: Path) -> None:
    """A checkpoint folder carrying pickles (state.pkl, replay_buffer.pkl): resume does not run them."""
    marker = tmp_path / "pwned"
    train(cartpole, "plain", None, TINY, out_dir=tmp_path / "run", callbacks=[StopAt(150)], **KW, **FAST)  # type: ignore[arg-type]
    ckpt = latest_checkpoint(tmp_path / "run")
    assert ckpt is not None
    for name in ("state.pkl", "replay_buffer.pkl"):
        (ckpt / name).write_bytes(pickle.dumps(_Payload(marker)))
    for f in ckpt.iterdir():
        assert f.suffix in (".json", ".safetensors", ".pkl"), f
    train(cartpole, "plain", None, TINY, out_dir=tmp_path / "run", resume=True, **KW, **FAST)  # type: ignore[arg-type]
    assert not marker.exists()
    pickle.loads((ckpt / "state.pkl").read_bytes())  # the payload is real
    assert marker.exists()


def test_damaged_files_name_themselves(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text('{"seed": ')
    with pytest.raises(ValueError, match=f"{tmp_path / 'model.json'} is damaged"):
        read_metadata(tmp_path / "model.zip")


# -- transfer suite ------------------------------------------------------------------------------------
def test_transfer_suite_keeps_results_and_tables_recorded_settings(tmp_path: Path) -> None:
    out = tmp_path / "suite"
    kw = dict(methods=["plain"], task_indices=[0], seeds=1, steps=0, eval_episodes=1, out=out, command="first")
    run_suite("CartPole-v1", **kw)  # type: ignore[arg-type]
    before = (out / "runs.jsonl").read_bytes()
    assert json.loads((out / "suite.json").read_text())["eval_episodes"] == 1
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(Exception, match="broken.zip"):
        run_suite("CartPole-v1", **{**kw, "pretrained": broken})  # type: ignore[arg-type]
    assert (out / "runs.jsonl").read_bytes() == before
    table = run_suite("CartPole-v1", out=out, summarise_only=True, command="second")  # CLI defaults: 5 seeds, 20 eps
    assert "mean over 1 seed " in table and "1 greedy evaluation episode per point" in table
    assert json.loads((out / "suite.json").read_text())["command"] == "first"  # the record is not rewritten


# -- non-finite inputs -----------------------------------------------------------------------------
class _NaNAfter(gym.Wrapper):
    def __init__(self, env: gym.Env, step: int, what: str) -> None:
        super().__init__(env)
        self.at, self.what, self.t = step, what, 0

    def step(self, action: Any) -> Any:
        obs, r, term, trunc, info = self.env.step(action)
        self.t += 1
        if self.t == self.at:
            if self.what == "obs":
                obs = np.full_like(obs, np.nan)
            else:
                r = float("inf")
        return obs, r, term, trunc, info


@pytest.mark.parametrize("what", ["obs", "reward"])
def test_non_finite_inputs_stop_training(tmp_path: Path, what: str) -> None:
    def env() -> gym.Env:
        return _NaNAfter(gym.make("CartPole-v1"), 30, what)

    with pytest.raises(ValueError, match="found (nan|inf) in (observations|rewards)"):
        train(env, "equitune", get_symmetry("CartPole-v1"), TINY, total_timesteps=100, eval_freq=100, n_eval_episodes=1)


def test_non_finite_weights_stop_evaluation() -> None:
    res = train(
        cartpole, "lambda", get_symmetry("CartPole-v1"), TINY, total_timesteps=64, eval_freq=64, n_eval_episodes=1
    )
    with th.no_grad():
        res.model.policy.q_net.q_net[0].weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="non-finite weight q_net.q_net.0.weight before evaluation"):
        evaluate(res.model, cartpole, 1)


# -- SIGKILL (slow) --------------------------------------------------------------------------------
EQUIRL = [sys.executable, "-c", "import sys; from equirl.cli import main; sys.exit(main())"]


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _train_cmd(out: Path, *extra: str) -> list[str]:
    return [*EQUIRL, "train", "CartPole-v1", "--steps", "1500", "--eval-freq", "300",
            "--eval-episodes", "2", "--checkpoint-freq", "256", "--out", str(out), "--no-progress", *extra]  # fmt: skip


def _wait_for(path: Path, timeout: float = 120.0) -> float:
    """Poll until ``path`` exists; the time it appeared (fails after ``timeout`` seconds)."""
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.02)
    return time.time()


def _zip_ok(path: Path) -> bool:
    with zipfile.ZipFile(path) as z:
        return z.testzip() is None


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_sigkill_during_training_then_resume(tmp_path: Path, trial: int) -> None:
    """Kill ``equirl train`` at a random moment (SIGKILL), check every artifact is whole, resume, compare."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the uninterrupted run also measures how long training goes on after the first checkpoint, so that the kill
    # below lands inside training whatever the machine's speed
    full_proc = subprocess.Popen(
        _train_cmd(tmp_path / "full"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    first_checkpoint = _wait_for(tmp_path / "full" / "checkpoints" / "latest")
    _, err = full_proc.communicate()
    assert full_proc.returncode == 0, err.decode()[-2000:]
    remaining = time.time() - first_checkpoint
    fraction = random.Random(trial).uniform(0.0, 0.5)
    for attempt in range(3):  # a machine that got faster since the full run: kill sooner and try again
        proc = subprocess.Popen(_train_cmd(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(out / "checkpoints" / "latest")
        # during training, evaluations, zip and checkpoint writes: within the first half of what remained in the
        # full run (a quarter, an eighth on the retries)
        time.sleep(fraction * remaining / 2**attempt)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not (out / "model.json").exists() or attempt == 2:
            break
        shutil.rmtree(out)
    for z in out.glob("*.zip"):
        assert _zip_ok(z), z
    for j in out.rglob("*.json"):
        json.loads(j.read_text())
    assert not (out / "model.json").exists(), "the run finished before the kill; make it longer"
    resumed = subprocess.run(_train_cmd(out, "--resume"), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = list(csv.reader((tmp_path / "full" / "eval.csv").open()))
    b = list(csv.reader((out / "eval.csv").open()))
    assert [r[:3] for r in a] == [r[:3] for r in b]  # same curve, once
    ma = json.loads((tmp_path / "full" / "model.json").read_text())
    mb = json.loads((out / "model.json").read_text())
    assert ma["eval_mean_return"] == mb["eval_mean_return"] and mb["resumed_from"] is not None


@pytest.mark.slow
def test_killing_the_sweep_stops_its_workers(tmp_path: Path) -> None:
    config = tmp_path / "bench.yml"
    config.write_text(
        "environments:\n  CartPole-v1: {timesteps: 200000, eval_freq: 100000, threshold: 475, baseline: 22}\n"
    )
    cmd = [*EQUIRL, "bench", "run", "--envs", "CartPole-v1", "--methods", "plain", "equitune", "--seeds", "1",
           "--config", str(config), "--workers", "2", "--out", str(tmp_path / "out"), "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers = time.time() + 60, []
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.2)
        workers = [p for p in _children(proc.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
    assert len(workers) == 2, "the sweep did not start two workers"
    time.sleep(3.0)  # the workers are training now
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers), "pool workers kept running after the sweep was killed"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["MiniGrid-Empty-5x5-v0/full-D4", "equirl/RotGrid-Corner-v0"])
def test_resume_is_exact_on_grid_worlds(tmp_path: Path, name: str) -> None:
    """The environment replay restores image and grid environments mid-episode too (no pickle)."""
    from equirl.agents.hyperparams import hyperparams_for
    from equirl.envs import make_env

    _, hp = hyperparams_for(name)
    hp = {**hp, "learning_starts": 50, "buffer_size": 2000}

    def factory() -> gym.Env:
        return make_env(name)

    sym = get_symmetry(name)
    kw = dict(seed=1, total_timesteps=400, eval_freq=200, n_eval_episodes=2, checkpoint_freq=100)
    full = train(factory, "equizero", sym, hp, out_dir=tmp_path / "full", **kw)  # type: ignore[arg-type]
    train(factory, "equizero", sym, hp, out_dir=tmp_path / "cut", callbacks=[StopAt(330)], **kw)  # type: ignore[arg-type]
    resumed = train(factory, "equizero", sym, hp, out_dir=tmp_path / "cut", resume=True, **kw)  # type: ignore[arg-type]
    assert resumed.resumed_from is not None and resumed.resumed_from < 330
    a, b = _state(full.model), _state(resumed.model)
    assert all(th.equal(a[k], b[k]) for k in a)
    assert [r["mean_return"] for r in full.curve] == [r["mean_return"] for r in resumed.curve]
