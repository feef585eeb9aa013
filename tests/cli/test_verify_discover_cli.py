"""``equirl verify`` and ``equirl discover``: user modules, statistical mode, clean one-paragraph errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from equirl import envs
from equirl.cli import main

USER_MODULE = """
import gymnasium as gym
from equirl import envs

envs.register_symmetry(
    "test/cli-mirror",
    lambda: envs.get_symmetry("CartPole-v1"),
    make_env=lambda **kw: gym.make("CartPole-v1", **kw),
    state_mapper=envs.mappers.cartpole_mapper,
)
"""


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_mismatched_symmetry_is_one_paragraph(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _run(["verify", "CartPole-v1", "--symmetry", "Acrobot-v1", "--no-progress"], capsys)
    assert rc == 2 and "Traceback" not in err
    assert "does not fit the environment 'CartPole-v1'" in err and len(err.strip().splitlines()) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "No/Such-v0", "--no-progress"], "No symmetry named 'No/Such-v0'"),
        (["verify", "CartPole-v1", "--import", "no_such_module_xyz"], "--import no_such_module_xyz"),
        (["verify", "CartPole-v1", "--import", "missing.py"], "no such file"),
        (["verify", "CartPole-v1", "--tol", "obs[3]"], "expected FIELD=ATOL"),
        (["verify", "CartPole-v1", "--tol", "speed=1"], "unknown field 'speed'"),
        (["discover", "No/Such-v0"], "No environment named 'No/Such-v0'"),
    ],
)
def test_user_mistakes_are_clean(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _run(argv, capsys)
    assert rc == 2 and message in err and "Traceback" not in err


def test_import_registers_a_user_symmetry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = tmp_path / "my_symmetries.py"
    module.write_text(USER_MODULE)
    try:
        rc, out, _ = _run(
            ["verify", "test/cli-mirror", "--import", str(module), "--steps", "50", "--no-progress"], capsys
        )
        assert rc == 0 and out.startswith("OK: test/cli-mirror (C2)")
    finally:
        envs.unregister("test/cli-mirror")


def test_statistical_mode_and_tolerances(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["verify", envs.NOISY_CARTPOLE_ID, "--symmetry", "CartPole-v1", "--mode", "statistical", "--seeds", "0"]
    rc, out, _ = _run([*argv, "--states", "4", "--rollouts", "32", "--no-progress"], capsys)
    assert rc == 0 and "statistical" in out and "no field differs" in out
    rc, out, _ = _run(
        ["verify", "CartPole-v1", "--steps", "20", "--tol", "obs[3]=1e-4", "--exclude", "truncated"], capsys
    )
    assert rc == 0 and "not compared: truncated" in out


def test_discover_prints_group_elements_and_code(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(["discover", "CartPole-v1", "--verify-seeds", "0", "--verify-steps", "50"], capsys)
    assert rc == 0 and "found C2" in out
    assert "r: obs -> [-o0, -o1, -o2, -o3]; actions [1, 0]" in out
    code = out.split("Python:", 1)[1]
    scope: dict[str, object] = {}
    exec(code, scope)  # noqa: S102  (the command's own output)
    assert scope["symmetry"].order == 2  # type: ignore[attr-defined]


DISCOVERY_MODULE = """
import gymnasium as gym
import numpy as np
from equirl import envs

CALLS = []


def observe(u):
    CALLS.append(1)
    return np.array(u.state, dtype=float)


envs.register_env("test/cli-discover", lambda **kw: gym.make("CartPole-v1", **kw))
envs.register_discovery(
    "test/cli-discover", lambda: envs.ObsStateCodec(observe, lambda u, o: setattr(u, "state", np.array(o)))
)
"""


def test_discover_uses_a_registered_codec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = tmp_path / "my_discovery.py"
    module.write_text(DISCOVERY_MODULE)
    try:
        argv = ["discover", "test/cli-discover", "--import", str(module), "--verify-seeds", "0", "--verify-steps", "30"]
        rc, out, _ = _run(argv, capsys)
        assert rc == 0 and "test/cli-discover: found C2" in out
        assert envs.get_entry("test/cli-discover").discovery is not None
        assert sys.modules["my_discovery"].CALLS  # the registered codec was the one used
    finally:
        envs.unregister("test/cli-discover")


def test_discover_writes_a_spec_that_verify_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "acrobot.json"
    rc, out, _ = _run(["discover", "Acrobot-v1", "--json", str(spec)], capsys)
    assert rc == 0 and spec.is_file() and f"--symmetry-json {spec}" in out
    rc, out, _ = _run(["verify", "Acrobot-v1", "--symmetry-json", str(spec), "--steps", "30", "--no-progress"], capsys)
    assert rc == 0 and out.startswith("OK")
    # the same spec with the action swap undone is not a symmetry: verify says so (exit 1), from the file alone
    import json

    data = json.loads(spec.read_text())
    assert data["output_action"]["generators"] == [[2, 1, 0]]
    data["output_action"]["generators"] = [[0, 1, 2]]
    (tmp_path / "wrong.json").write_text(json.dumps(data))
    rc, out, _ = _run(["verify", "Acrobot-v1", "--symmetry-json", str(tmp_path / "wrong.json"), "--steps", "30",
                       "--no-progress"], capsys)  # fmt: skip
    assert rc == 1 and "FAILED" in out
    rc, _, err = _run(["discover", "Acrobot-v1", "--json", str(spec)], capsys)  # never overwritten silently
    assert rc == 2 and "--overwrite" in err


@pytest.mark.parametrize(("content", "message"), [("{", "not valid JSON"), ('{"x": 1}', "not a symmetry spec")])
def test_bad_symmetry_json_is_one_paragraph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    rc, _, err = _run(["verify", "Acrobot-v1", "--symmetry-json", str(bad), "--no-progress"], capsys)
    assert rc == 2 and message in err and "Traceback" not in err
