"""Dependencies that are true: the core works without the optional extras, and each extra's absence is a clear error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import requires
from pathlib import Path

import pytest

from equirl.extras import MissingExtraError, require

ROOT = Path(__file__).resolve().parents[2]
EXTRA_MODULES = ("tensorboard", "tqdm", "rich", "matplotlib", "imageio", "ray", "rl_zoo3", "sb3_contrib")


@pytest.mark.integration
def test_core_runs_without_optional_extras() -> None:
    """With every optional module made unimportable: import the packages, verify a symmetry, train and evaluate
    a λ-equitune DQN, and get a message naming the extra for tensorboard logging and the progress bar."""
    code = textwrap.dedent(
        f"""
        import sys
        for name in {EXTRA_MODULES!r}:
            sys.modules[name] = None  # makes `import name` raise ImportError
        import equirl, equirl.envs, equirl.agents, equirl.cli
        from equirl.agents import train
        from equirl.envs import get_symmetry, make_env, verify_symmetry
        from equirl.extras import MissingExtraError
        assert verify_symmetry("CartPole-v1", seeds=[0], steps=20).ok
        res = train(lambda: make_env("CartPole-v1"), "lambda", get_symmetry("CartPole-v1"),
                    {{"policy_kwargs": {{"net_arch": [8]}}, "learning_starts": 10}}, total_timesteps=50, n_eval_episodes=1)
        assert res.timesteps >= 50 and len(res.curve) >= 2
        for kw in ({{"tensorboard_log": "tb"}}, {{"progress_bar": True}}):
            try:
                train(lambda: make_env("CartPole-v1"), "plain", None, {{}}, total_timesteps=10, **kw)
            except MissingExtraError as e:
                assert 'equirl[train]' in str(e), e
            else:
                raise AssertionError(f"{{kw}} did not raise")
        print("ok")
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]


def test_require_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtraError, match=r'pip install "equirl\[plots\]"') as err:
        require("matplotlib", "plots", "Plotting")
    assert isinstance(err.value, ImportError)
    assert require("numpy", "core", "arrays").__name__ == "numpy"


def test_declared_floors() -> None:
    """SB3 >= 2.4 is the first release that accepts gymnasium 1.x; the core lists no optional package.

    Reads the installed metadata (``make test`` installs from pyproject.toml)."""
    reqs = requires("equirl") or []
    core = {r.split(">")[0].split("<")[0].split("=")[0]: r for r in reqs if "extra ==" not in r}
    # safetensors: the safe agent format; scipy: the statistical verifier and symmetry discovery
    assert set(core) == {
        "torch",
        "numpy",
        "gymnasium",
        "stable-baselines3",
        "minigrid",
        "pyyaml",
        "safetensors",
        "scipy",
    }
    assert ">=2.4" in core["stable-baselines3"] and ">=1.0" in core["gymnasium"]
    extras = [r for r in reqs if "extra ==" in r]
    for pkg, extra in [("tensorboard", "train"), ("tqdm", "train"), ("rich", "train"), ("matplotlib", "plots"),
                       ("imageio", "gif"), ("ray", "ray"), ("rl-zoo3", "zoo"), ("sb3-contrib", "dev")]:  # fmt: skip
        assert any(r.startswith(pkg) and f'extra == "{extra}"' in r for r in extras), (pkg, extra)
