"""The built wheel, installed into a fresh virtual environment and used from outside the checkout.

The fresh environment is made with this interpreter (``venv --without-pip``); instead of downloading torch
and friends again, a ``.pth`` file exposes this environment's third-party packages through a folder of links
that leaves out everything of equirl (its dist-info and the editable install's finder), so ``equirl`` itself
can only come from the wheel. The wheel is built from a copy of the sources (nothing is written into the
checkout) and installed with this pip (``pip --python``).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "equirl", "agents", "envs")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    return res.stdout


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build the wheel, make a fresh venv with it installed; returns its paths and a working folder outside."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(p, src / name)
    dist = base / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    # without build isolation when this environment has the build backend pyproject asks for (no download)
    try:
        import setuptools

        isolation = ["--no-build-isolation"] if int(setuptools.__version__.split(".")[0]) >= 77 else []
    except ImportError:
        isolation = []
    _run([*pip, "wheel", "--no-deps", *isolation, "-q", "-w", str(dist), str(src)], cwd=base)
    (wheel,) = dist.glob("equirl-*.whl")

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=base)
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base).strip())
    # this environment's third-party packages, minus equirl: one link per entry
    shared = base / "shared-site-packages"
    shared.mkdir()
    for here in {Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["platlib"])}:
        for entry in here.iterdir():
            n = entry.name.lower()
            if n.startswith(("equirl", "__editable__", "_equirl")) or n.endswith(".pth") or n == "__pycache__":
                continue
            if not (shared / entry.name).exists():
                (shared / entry.name).symlink_to(entry)
    (site / "shared-packages.pth").write_text(str(shared) + "\n")
    _run([*pip, "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=base)
    work = base / "work"
    work.mkdir()
    return {"venv": venv, "python": py, "equirl": venv / "bin" / "equirl", "work": work, "site": site}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.mark.integration
def test_wheel_imports_and_data(wheel_env: dict[str, Path]) -> None:
    """``equirl.agents``/``equirl.envs`` come from the wheel; ``agents``/``envs`` do not exist; the YAML files
    and pretrained agents ship in it and load by name."""
    code = """
import importlib, json, equirl, equirl.agents, equirl.envs
from equirl.agents.hyperparams import HYPERPARAMS_DIR, hyperparams_for, pretrained_path
from equirl.agents import load_pretrained
missing = []
for name in ("agents", "envs"):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        missing.append(name)
model = load_pretrained("cartpole_plain")
print(json.dumps({"equirl": equirl.__file__, "agents": equirl.agents.__file__, "hp": str(HYPERPARAMS_DIR),
                  "pretrained": str(pretrained_path("cartpole_plain")), "missing": missing,
                  "entry": hyperparams_for("CartPole-v1")[0], "n_actions": int(model.action_space.n)}))
"""
    import json

    out = json.loads(_run([str(wheel_env["python"]), "-c", code], cwd=wheel_env["work"], env=_env()).splitlines()[-1])
    site = str(wheel_env["site"])
    for key in ("equirl", "agents", "hp", "pretrained"):
        assert out[key].startswith(site), f"{key} from {out[key]}, not from the wheel in {site}"
    assert out["missing"] == ["agents", "envs"]
    assert out["entry"] == "CartPole-v1" and out["n_actions"] == 2


@pytest.mark.integration
def test_wheel_command_help(wheel_env: dict[str, Path]) -> None:
    out = _run([str(wheel_env["equirl"]), "--help"], cwd=wheel_env["work"], env=_env())
    for sub in ("train", "transfer", "verify", "bench"):
        assert sub in out


@pytest.mark.slow
def test_wheel_command_trains(wheel_env: dict[str, Path]) -> None:
    """``equirl train CartPole-v1 --method lambda --steps 2000`` from outside the checkout writes a model and
    tensorboard logs holding every evaluation point at its step."""
    from tests.agents.test_evaluation import tb_scalars

    work = wheel_env["work"]
    _run(
        [str(wheel_env["equirl"]), "train", "CartPole-v1", "--method", "lambda", "--steps", "2000"],
        cwd=work,
        env=_env(),
    )
    out = work / "runs" / "train" / "CartPole-v1" / "lambda_s0"
    assert (out / "model.zip").stat().st_size > 1000 and (out / "model.json").exists()
    with open(out / "eval.csv") as f:
        steps = [int(float(r["timesteps"])) for r in csv.DictReader(f)]
    assert steps[0] == 0 and steps[-1] >= 2000 and len(steps) >= 11
    logged = sorted(s for s, _ in tb_scalars(out / "tb")["eval/mean_reward"])
    assert logged == steps
