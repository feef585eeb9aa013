"""Transfer from a pretrained plain PPO agent: zero-shot through load_plain_weights, finetuning budgets, raw files."""

from __future__ import annotations

from pathlib import Path

import pytest
from equirl.agents import policy_transfer as pt
from equirl.agents.hyperparams import hyperparams_for

from equirl.cli import bench

TASKS = {
    "source": {"env_kwargs": {"goal_corners": (2, 3)}},
    "world seen through r2": {"env_kwargs": {"goal_corners": (2, 3)}, "transform": 2},  # GroupTransformed
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ptransfer")
    pt.run(out, tasks=TASKS, methods=("plain", "equitune", "lambda"), seeds=(0,), budgets=(512,),
           pretrain_steps=512, n_eval_episodes=4, progress=False)  # fmt: skip
    return out


def test_zero_shot_and_budgets_are_recorded(tiny: Path) -> None:
    runs, curves = pt.read_raw(tiny)
    assert {(r["task"], r["method"]) for r in runs} == {
        ("world seen through r2", m) for m in ("plain", "equitune", "lambda")
    }
    by = {(c["method"], c["timesteps"]): c["mean_return"] for c in curves}
    assert sorted({k for _, k in by}) == [0.0, 512.0]  # K = 0 (zero-shot) is always there
    # an untrained λ-equitune is equitune: zero λ-nets give uniform weights, so the same greedy returns
    assert by[("lambda", 0.0)] == by[("equitune", 0.0)]
    assert all(r["algo"] == "ppo" and r["source_return"] == runs[0]["source_return"] for r in runs)
    table = pt.transfer_table(runs, curves, reps=200)
    assert "| world seen through r2 | lambda | 1 |" in table and "K = 512: IQM" in table
    assert pt.TRANSFER_NOTE in table and "plain PPO" in table


def test_pretrained_weights_are_reused_and_other_budgets_refused(tiny: Path) -> None:
    path = tiny / "pretrained" / "seed0.safetensors"
    stamp = path.stat().st_mtime_ns
    _, hp = hyperparams_for(pt.DEFAULT_ENV, algo="ppo")
    state, ret = pt.pretrain(pt.DEFAULT_ENV, TASKS["source"], hp, 512, 0, tiny)
    assert path.stat().st_mtime_ns == stamp and "action_net.weight" in state
    with pytest.raises(FileExistsError, match="for 512 steps, not ppo for 1024"):
        pt.pretrain(pt.DEFAULT_ENV, TASKS["source"], hp, 1024, 0, tiny)


def test_results_are_not_overwritten_silently(tiny: Path) -> None:
    with pytest.raises(FileExistsError, match="--overwrite"):
        pt.run(tiny, tasks=TASKS, methods=("plain",), seeds=(0,), budgets=(512,), pretrain_steps=512)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unknown methods"):
        pt.run(tmp_path, tasks=TASKS, methods=("plane",))
    with pytest.raises(ValueError, match="at least one target task"):
        pt.run(tmp_path, tasks={"source": {}})


def test_manifest_transfer_style(tiny: Path, tmp_path: Path) -> None:
    """``style: policy-transfer`` in docs/benchmark/tables.yml builds the table from the folder, like `make tables`."""
    (tmp_path / "raw").symlink_to(tiny)
    (tmp_path / "m.yml").write_text("tables:\n  - raw: [raw]\n    md: t.md\n    style: policy-transfer\n")
    (tmp_path / "docs").mkdir()
    changed = bench.write_tables(tmp_path, "m.yml", plots=False)
    assert changed == [Path("t.md")] and (tmp_path / "t.md").read_text() == pt.transfer_table(*pt.read_raw(tiny))
    assert bench.write_tables(tmp_path, "m.yml", plots=False) == []  # rebuilt: no drift
