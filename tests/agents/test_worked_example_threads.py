"""The worked example of docs/symmetry.md (equirl.agents.worked_example) and the threads measurement
(equirl.agents.threads): their tables from hand-written raw folders and their scripts' --raw folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from equirl.agents import threads, worked_example

from equirl import rawresults
from tests.rawfolders import run_script, write_raw_folder


def _write(folder: Path, header: str, lines: list[str], settings: dict[str, object]) -> None:
    write_raw_folder(folder, header, lines, settings, command="python s.py --raw f", seconds=3.0)


def _worked_lines() -> list[str]:
    lines = ["discovery,-,-,seconds,0.5", "discovery,-,-,pruned: observation bounds,352",
             "discovery,-,-,pruned: marginal distributions,8", "discovery,-,-,stepped,23",
             "discovery,-,-,failed one-step,22", "discovery,-,-,verified,1", "discovery,-,-,group order,2",
             "check,-,-,ok,1", "check,-,-,tests,336", "check,-,-,samples,6144", "check,-,-,smallest corrected p,1.0",
             "check,-,-,seconds,2.0"]  # fmt: skip
    returns = {(0, "lambda"): (500.0, 400.0), (0, "plain"): (100.0, 120.0),
               (1, "lambda"): (300.0, 300.0), (1, "plain"): (200.0, 220.0)}  # fmt: skip
    for (seed, method), rets in returns.items():
        lines.append(f"train,{seed},{method},train seconds,{60.0 if method == 'lambda' else 20.0 + seed * 10}")
        lines += [f"train,{seed},{method},episode return,{r}" for r in rets]
        if method == "lambda":
            lines.append(f"train,{seed},lambda,equivariance error,{1e-7 * (seed + 1)}")
    return lines


def test_worked_example_table_from_hand_written_rows(tmp_path: Path) -> None:
    settings = {"steps": 5000, "seeds": [0, 1], "eval_episodes": 2, "check_seeds": [10, 11, 12]}
    _write(tmp_path / "w", "stage,seed,method,metric,value", _worked_lines(), settings)
    text = worked_example.table(["w"], root=tmp_path)
    assert text.split("\n")[2:5] == [
        "| 0 | 450.0 ± 70.7 | 110.0 ± 14.1 | 60 | 20 | 1e-07 |",  # sd of (500, 400) = 70.71
        "| 1 | 300.0 ± 0.0 | 210.0 ± 14.1 | 60 | 30 | 2e-07 |",
        "| all 2 seeds | 375.0 ± 106.1 | 160.0 ± 70.7 | 60 ± 0 | 25 ± 7 | 2e-07 |",  # per-seed means 450, 300
    ]
    assert "n = 2 greedy episodes" in text and "5,000 steps" in text and "seeds 0, 1" in text
    assert "360 candidates pruned (352 by observation bounds, 8 by marginal distributions)" in text
    assert "OK, 336 KS tests on 6144 samples, smallest corrected p-value 1" in text
    with pytest.raises(ValueError, match="one raw folder"):
        worked_example.table(["w", "w"], root=tmp_path)
    with pytest.raises(ValueError, match="'train' rows"):
        worked_example.render([])


def test_worked_example_script_writes_its_raw_folder(tmp_path: Path) -> None:
    run_script("symmetry_worked_example.py", "--steps", "150", "--seeds", "3", "--eval-episodes", "2",
         "--raw", str(tmp_path / "r"))  # fmt: skip
    rows, meta = rawresults.read_raw(tmp_path / "r")
    assert meta["settings"]["seeds"] == [3] and meta["settings"]["steps"] == 150
    errors = [float(r["value"]) for r in rows if r["metric"] == worked_example.ERR]
    assert len(errors) == 1 and errors[0] <= 1e-5  # the λ-equitune Q-network is equivariant
    assert sum(r["metric"] == "episode return" for r in rows) == 2 * len(worked_example.METHODS)
    order = {r["metric"]: float(r["value"]) for r in rows if r["stage"] == "discovery"}["group order"]
    assert order == 2  # the mirror is found
    text = worked_example.table(["r"], root=tmp_path)
    assert text.split("\n")[2].startswith("| 3 | ") and "all 1 seeds" not in text


def test_threads_table_from_hand_written_rows(tmp_path: Path) -> None:
    lines = []
    for rep, (d_plain, d_lam, o_plain, o_lam) in enumerate(((40.0, 30.0, 1000.0, 600.0), (60.0, 50.0, 1200.0, 640.0))):
        for setting, t, p, lam in (("default", 2, d_plain, d_lam), ("1", 1, o_plain, o_lam)):
            lines += [f"{setting},{rep},{t},plain,steps per second,{p}", f"{setting},{rep},{t},lambda,steps per second,{lam}",
                      f"{setting},{rep},{t},-,load before,{1.5 + rep}", f"{setting},{rep},{t},-,load after,{2.25 + rep}",
                      f"{setting},{rep},{t},-,steps,3000"]  # fmt: skip
    _write(tmp_path / "t", "setting,rep,torch_threads,method,metric,value", lines, {"steps": 3000})
    text = threads.table(["t"], root=tmp_path)
    assert text.split("\n")[2:4] == [
        "| 2 (torch's default here) | 50 ± 14 (40, 60) | 40 ± 14 (30, 50) | 1.50 → 2.25, 2.50 → 3.25 |",
        "| 1 | 1100 ± 141 (1000, 1200) | 620 ± 28 (600, 640) | 1.50 → 2.25, 2.50 → 3.25 |",
    ]
    assert "n = 2 runs" in text and "3,000 environment steps" in text


def test_threads_script_writes_its_raw_folder(tmp_path: Path) -> None:
    res = run_script("threads_speed.py", "--steps", "30", "--threads", "1", "--raw", str(tmp_path / "s"))
    assert "| 1 |" in res.stdout
    rows, meta = rawresults.read_raw(tmp_path / "s")
    assert {r["torch_threads"] for r in rows} == {"1"} and meta["settings"]["threads"] == ["1"]
    speeds = [float(r["value"]) for r in rows if r["metric"] == "steps per second"]
    assert len(speeds) == 2 and min(speeds) > 0
    assert "n = 1 run (0): one value, no spread" in threads.table(["s"], root=tmp_path)
    with pytest.raises(ValueError, match="thread setting"):
        threads.measure(30, ["two"])
