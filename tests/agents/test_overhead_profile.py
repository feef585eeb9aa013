"""The overhead profile (scripts/profile_overhead.py): the operation counter, the measurements' rows and the tables
rebuilt from a raw folder (no speed is asserted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from equirl.agents import overhead, overhead_profile

from equirl import rawresults


def test_op_counter_counts_a_tiny_model_exactly() -> None:
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    # Linear: a transposed view of the weight and one addmm
    assert overhead_profile.count_ops(lambda: lin(x)) == {"aten.t": 1, "aten.addmm": 1}
    mlp = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    with torch.no_grad():  # (with autograd, relu's output is also saved for backward: one aten.detach more)
        counts = overhead_profile.count_ops(lambda: mlp(x))
    assert counts == {"aten.t": 2, "aten.addmm": 2, "aten.relu": 1} and sum(counts.values()) == 5
    with torch.no_grad():
        y = lin(x)
    assert torch.equal(y, torch.nn.functional.linear(x, lin.weight, lin.bias))  # the counted ops still run
    assert overhead_profile.count_ops(lambda: None) == {}
    # backward runs inside the counter too: the weight's gradient is one mm, the seed gradient one ones_like
    backward = overhead_profile.count_ops(lambda: lin(x).sum().backward())
    assert backward["aten.mm"] == 1 and backward["aten.ones_like"] == 1 and backward["aten.addmm"] == 1


def _ops(case: str, G: int, method: str, measure: str, op: str, n: int) -> dict[str, Any]:
    return dict(zip(overhead_profile.FIELDS, ("ops", case, G, method, measure, op, 0, "", n), strict=True))


def _time(case: str, method: str, section: str, rnd: int, us: float, load: float = 2.0) -> dict[str, Any]:
    return dict(
        zip(overhead_profile.FIELDS, ("time", case, 2, method, "predict1", section, rnd, load, us), strict=True)
    )


SYNTHETIC = [
    # every variant a different total, so that a swapped column shows
    *[_ops("cartpole-C2", 2, v, "train", "aten.addmm", 100 + 10 * i) for i, v in enumerate(overhead_profile.VARIANTS)],
    *[_ops("cartpole-C2", 2, v, "train", "aten.mul", i) for i, v in enumerate(overhead_profile.VARIANTS)],
    _ops("rotgrid-C4", 4, "plain", "train", "aten.addmm", 7),
    _ops("cartpole-C2", 2, "plain", "predict", "aten.addmm", 3),
    _ops("cartpole-C2", 2, "equitune", "predict", "aten.addmm", 3),
    _ops("cartpole-C2", 2, "equitune", "predict", "aten.gather", 1),
    _ops("cartpole-C2", 2, "equizero", "predict", "aten.amax", 2),
    _ops("cartpole-C2", 2, "lambda", "predict", "aten.addmm", 5),
]


def test_ops_table_sums_each_variant_in_its_column() -> None:
    table = overhead_profile.render_ops(SYNTHETIC, "train")
    lines = table.splitlines()
    assert lines[0] == "| case | \\|G\\| | plain | reference | equitune | equizero | λ | λ's own reference |"
    # rotgrid-C4 is listed after cartpole-C2 (the order of overhead.CASES), with only plain measured
    assert lines[2:] == [
        "| cartpole-C2 | 2 | 100 | 111 | 122 | 133 | 144 | 155 |",
        "| rotgrid-C4 | 4 | 7 |  |  |  |  |  |",
    ]
    assert (
        overhead_profile.render_ops(SYNTHETIC, "predict").splitlines()[2] == "| cartpole-C2 | 2 | 3 |  | 4 | 2 | 5 |  |"
    )
    with pytest.raises(ValueError, match="'train' or 'predict'"):
        overhead_profile.render_ops(SYNTHETIC, "step")


def test_op_names_table_by_operation_and_method() -> None:
    lines = overhead_profile.render_op_names(SYNTHETIC, "cartpole-C2", "predict").splitlines()
    assert lines[0] == "| operation | plain | equitune | equizero | λ |"
    assert lines[2:] == ["| `addmm` | 3 | 3 |  | 5 |", "| `amax` |  |  | 2 |  |", "| `gather` |  | 1 |  |  |",
                         "| **total** | 3 | 4 | 2 | 5 |"]  # fmt: skip
    with pytest.raises(ValueError, match="No 'ops' rows"):
        overhead_profile.render_op_names(SYNTHETIC, "minigrid-ego-C2")


def test_predict_profile_medians_and_quartiles_per_section_and_method() -> None:
    rows = []
    for rnd, scale in enumerate((1.0, 2.0, 3.0, 4.0, 5.0)):
        for j, m in enumerate(overhead.METHODS_TIMED):
            for k, s in enumerate(overhead_profile.SECTIONS):
                rows.append(_time("cartpole-C2", m, s, rnd, scale * (100 * (k + 1) + j), load=1.0 + rnd))
    table, words = overhead_profile.render_predict_profile(rows, "cartpole-C2")
    lines = table.splitlines()
    assert lines[0] == "| µs per call: median (quartiles) | plain | equitune | equizero | λ |"
    # section rows in SECTIONS order; the values of rounds 1..5 are 1..5 times the base: median 3x, quartiles 2x, 4x
    assert lines[2] == "| whole `model.predict` | 300.0 (200.0-400.0) | 303.0 (202.0-404.0) | 306.0 (204.0-408.0) | " \
        "309.0 (206.0-412.0) |"  # fmt: skip
    assert lines[5].startswith("| the Q-network's forward (`no_grad`) | 1200.0 (800.0-1600.0) | 1203.0")
    assert words == "process CPU time per call, n = 5 rounds per cell, load average 3.0 (1.0-5.0)"
    with pytest.raises(ValueError, match="No 'time' rows"):
        overhead_profile.render_predict_profile(rows, "rotgrid-C4")


def test_tables_from_a_raw_folder_carry_its_provenance(tmp_path: Path) -> None:
    rows = [*SYNTHETIC, *[_time("cartpole-C2", m, s, 0, 10.0) for m in overhead.METHODS_TIMED
                          for s in overhead_profile.SECTIONS]]  # fmt: skip
    started = {"command": "python scripts/profile_overhead.py --raw x", "code_version": "abc1234",
               "machine": "toy", "date": "2026-01-01 00:00 UTC"}  # fmt: skip
    rawresults.write_raw(tmp_path / "raw", rows, {"rounds": 1}, started=started)
    table = overhead_profile.ops_table(["raw"], "train", root=tmp_path)
    assert table.startswith(overhead_profile.render_ops(rows, "train"))
    assert "`python scripts/profile_overhead.py --raw x`" in table and "code abc1234" in table
    assert "| `gather` |  | 1 |  |  |" in overhead_profile.op_names_table(["raw"], "cartpole-C2", root=tmp_path)
    assert "| 10.0 (10.0-10.0) |" in overhead_profile.predict_profile_table(["raw"], "cartpole-C2", root=tmp_path)
    with pytest.raises(ValueError, match="one raw folder"):
        overhead_profile.op_names_table(["raw", "raw"], "cartpole-C2", root=tmp_path)


def test_measurements_cover_every_variant_and_section() -> None:
    torch.set_num_threads(1)
    rows = overhead_profile.measure_ops(["cartpole-C2"], log=lambda _: None)
    total: dict[tuple[str, str], int] = {}
    for r in rows:
        assert tuple(r) == overhead_profile.FIELDS and r["value"] > 0
        total[(r["method"], r["measure"])] = total.get((r["method"], r["measure"]), 0) + r["value"]
    assert set(total) == {(v, m) for v in overhead_profile.VARIANTS for m in ("train", "predict")}
    # the same-arithmetic reference runs the same operations as plain, on |G| times the rows
    assert total[("reference", "train")] == total[("plain", "train")]
    assert total[("reference", "predict")] == total[("plain", "predict")]
    assert total[("equitune", "train")] > total[("plain", "train")]
    assert rows == overhead_profile.measure_ops(["cartpole-C2"], log=lambda _: None)  # deterministic
    timed = overhead_profile.measure_predict_time(["cartpole-C2"], rounds=2, calls=2, log=lambda _: None)
    assert len(timed) == 2 * len(overhead.METHODS_TIMED) * len(overhead_profile.SECTIONS)
    assert all(r["kind"] == "time" and r["value"] >= 0 for r in timed)
    with pytest.raises(ValueError, match="Unknown case"):
        overhead_profile.measure_ops(["pong"])


def test_ops_table_of_two_folders_shows_before_and_after(tmp_path: Path) -> None:
    before = [_ops("cartpole-C2", 2, "plain", "train", "aten.addmm", 100), _ops("cartpole-C2", 2, "equitune", "train",
              "aten.addmm", 130)]  # fmt: skip
    after = [_ops("cartpole-C2", 2, "plain", "train", "aten.addmm", 100), _ops("cartpole-C2", 2, "equitune", "train",
             "aten.addmm", 120)]  # fmt: skip
    for name, rows, code in (("old", before, "5a7070b"), ("new", after, "abc1234")):
        started = {"command": f"python scripts/profile_overhead.py --raw {name}", "code_version": code,
                   "machine": "toy", "date": "2026-01-01 00:00 UTC"}  # fmt: skip
        rawresults.write_raw(tmp_path / name, rows, {}, started=started)
    table = overhead_profile.ops_table(["old", "new"], "train", root=tmp_path)
    assert table.splitlines()[2] == "| cartpole-C2 | 2 | 100 |  | 130 → 120 |  |  |  |"
    note = table.splitlines()[-1]
    assert "code abc1234" in note and "before: `old`, code 5a7070b" in note and note.count("\n") == 0
    with pytest.raises(ValueError, match="one raw folder"):
        overhead_profile.ops_table(["old", "new", "new"], root=tmp_path)
