"""The random-policy baseline (`equirl bench baseline`): rows with known answers, the table, the command."""

from __future__ import annotations

from pathlib import Path

import pytest
from equirl.agents import baselines, sweep

from equirl import rawresults
from equirl.cli import main as equirl_main

ROOT = Path(__file__).resolve().parents[2]


def test_random_policy_rows_on_cartpole_have_known_answers() -> None:
    rows = baselines.random_policy_rows("CartPole-v1", episodes=6, seed=3)
    assert len(rows) == 6 * len(baselines.METRICS)
    by = {(r["episode"], r["metric"]): r["value"] for r in rows}
    for k in range(6):
        assert by[(k, "return")] == by[(k, "length")] > 0  # +1 per step, every episode ends by the pole falling
        assert by[(k, "terminated")] == 1.0 and by[(k, "last_reward")] == 1.0
    assert rows == baselines.random_policy_rows("CartPole-v1", episodes=6, seed=3)  # reproducible
    assert rows != baselines.random_policy_rows("CartPole-v1", episodes=6, seed=4)
    with pytest.raises(ValueError, match="at least 1"):
        baselines.random_policy_rows("CartPole-v1", episodes=0)


def test_table_from_hand_written_rows(tmp_path: Path) -> None:
    # three episodes of RotGrid-Cross: the goal (+0.9), a hazard (-1.05), a truncation (-0.5, last reward -0.01)
    episodes = [(0.9, 10, 1.0, 1.0), (-1.05, 5, 1.0, -1.0), (-0.5, 50, 0.0, -0.01)]
    rows = [
        {"env_id": "equirl/RotGrid-Cross-v0", "episode": k, "metric": m, "value": v}
        for k, values in enumerate(episodes)
        for m, v in zip(baselines.METRICS, values, strict=True)
    ]
    rawresults.write_raw(tmp_path / "b", rows, {"seed": 0}, started=None, seconds=1.0)
    table = baselines.baselines_table(["b"], root=tmp_path)
    cells = table.splitlines()[2].split(" | ")
    declared = sweep.load_config()["equirl/RotGrid-Cross-v0"].baseline
    assert cells[1] == "3"
    assert cells[2].startswith(f"{(0.9 - 1.05 - 0.5) / 3:.2f} [")
    assert cells[3:6] == ["10", "67%", "33%"]  # median length; terminated 2 of 3; failed (hazard) 1 of 3
    assert cells[6].rstrip(" |") == f"{declared:g}"


def test_committed_baselines_support_the_declared_ones() -> None:
    """Every benchmark environment has a committed random-policy measurement; RotGrid-Cross's declared baseline is
    its mean (rounded), and every declared baseline (a floor for the collapse test) lies between the random
    policy's mean and a quarter of the way from it away from the threshold."""
    rows, _ = rawresults.read_raw(ROOT / "docs/results/baselines")
    benches = sweep.load_config()
    envs = dict.fromkeys(r["env_id"] for r in rows)
    assert set(envs) == set(benches), "the committed baselines cover every benchmark environment"
    for env_id in envs:
        returns = [float(r["value"]) for r in rows if (r["env_id"], r["metric"]) == (env_id, "return")]
        measured, b = sum(returns) / len(returns), benches[env_id]
        if env_id == "equirl/RotGrid-Cross-v0":
            assert round(measured, 2) == b.baseline
        gap = b.threshold - measured  # positive: the threshold lies above a random policy
        assert gap > 0, env_id
        assert measured - 0.25 * gap <= b.baseline <= measured + 0.005 * gap, (env_id, measured, b.baseline)


def test_baseline_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw = tmp_path / "raw"
    assert equirl_main(["bench", "baseline", "CartPole-v1", "--episodes", "3", "--raw", str(raw), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| CartPole-v1 | 3 |" in out and str(raw) in out
    assert rawresults.read_meta(raw)["settings"] == {"envs": ["CartPole-v1"], "episodes": 3, "seed": 0}
    # an existing folder is refused before anything runs, and bad input is named
    assert equirl_main(["bench", "baseline", "CartPole-v1", "--episodes", "3", "--raw", str(raw)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert equirl_main(["bench", "baseline", "CartPole-v1", "--episodes", "0"]) == 2
    assert "--episodes" in capsys.readouterr().err
