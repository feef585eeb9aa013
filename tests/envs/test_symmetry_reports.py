"""The discovery-timing and verifier-calibration measurements (equirl.envs.symmetry_reports) and their tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from equirl.envs import symmetry_reports as sr

from equirl import rawresults
from tests.rawfolders import ROOT, run_script, write_raw_folder


def _write(folder: Path, header: str, lines: list[str], settings: dict[str, object]) -> None:
    write_raw_folder(folder, header, lines, settings, command="python s.py --raw f", seconds=3.0)


def test_discovery_table_from_hand_written_rows(tmp_path: Path) -> None:
    head = "env,found,catalogue,dynamics,whole_group,metric,value"
    a, b = "Noisy,C2,—,statistical,OK", "Car,C1,C1,lockstep,—"
    lines = [f"{a},seconds,1.26", f"{a},pruned: observation bounds,300", f"{a},pruned: marginal distributions,8",
             f"{a},stepped,23", f"{a},failed one-step,22", f"{a},verified,1", f"{a},group order,2",
             f"{b},seconds,0.04", f"{b},pruned: observation bounds,6", f"{b},pruned: marginal distributions,0",
             f"{b},stepped,1", f"{b},failed one-step,1", f"{b},verified,0"]  # fmt: skip
    _write(tmp_path / "d", head, lines, {"verify_steps": 200})
    text = sr.discovery_table(["d"], root=tmp_path)
    assert text.split("\n")[2:4] == [
        "| `Noisy` | C2 | — | 1.3 | 308 (300 bounds, 8 marginals) | 23 | 22 | 1 | OK (statistical) |",
        "| `Car` | C1 | C1 | 0.0 | 6 (bounds) | 1 | 1 | 0 | — (lockstep) |",
    ]
    assert "`verify_steps=200`" in text and "n = 1" in text and "`python s.py --raw f`" in text
    with pytest.raises(ValueError, match="one raw folder"):
        sr.discovery_table(["d", "d"], root=tmp_path)


def test_discover_timing_script_writes_its_raw_folder(tmp_path: Path) -> None:
    run_script("discover_timing.py", "CartPole-v1", "--no-8d", "--raw", str(tmp_path / "t"))
    rows, meta = rawresults.read_raw(tmp_path / "t")
    assert meta["settings"]["envs"] == ["CartPole-v1"] and meta["settings"]["eight_dim"] is False
    text = sr.discovery_table(["t"], root=tmp_path)
    assert text.split("\n")[2].startswith("| `CartPole-v1` | C2 | C2 | ")
    assert text.split("\n")[2].endswith(" | 1 | OK (lockstep) |")
    assert {r["metric"] for r in rows} >= {"seconds", "stepped", "verified", "group order"}


def test_calibration_tables_from_hand_written_rows(tmp_path: Path) -> None:
    lines = [f"calibration,ks,yes,8,32,true mirror,{i},failed,{f}" for i, f in enumerate((0, 0, 1, 0))]
    lines += [f"calibration,ks,yes,8,32,near miss,{i},failed,1" for i in range(4)]
    lines += [
        "calibration,ks,yes,8,32,true mirror,all,seconds,0.5",
        "calibration,ks,yes,8,32,near miss,all,seconds,0.3",
    ]
    lines += [f"calibration,ks,no,8,64,{c},{i},failed,{int(c == 'near miss' and i < 3)}"
              for c in ("true mirror", "near miss") for i in range(4)]  # fmt: skip
    lines += [f"calibration,ks,no,8,64,{c},all,seconds,2.0" for c in ("true mirror", "near miss")]
    lines += [f"wind,mmd,yes,16,64,w={w},{i},failed,{int(i < k)}" for w, k in (("0.5", 1), ("2", 4)) for i in range(4)]
    lines += [f"wind,mmd,yes,16,64,w={w},all,seconds,0.1" for w in ("0.5", "2")]
    _write(tmp_path / "c", "part,test,mapper,states,rollouts,case,seed,metric,value", lines, {"alpha": 0.05})
    cal = sr.calibration_table(["c"], "calibration", root=tmp_path)
    assert cal.split("\n")[:4] == [
        "| test | mapper | states × rollouts | true mirror | near miss | s/run |",
        "|---|---|---|---|---|---|",
        "| ks | yes | 8 × 32 | 0.25 | 1.00 | 0.40 |",
        "| ks | no | 512 episodes per side | 0.00 | 0.75 | 2.00 |",
    ]
    assert "n = 4 runs per cell" in cal and "seeds 0-3" in cal and "alpha = 0.05" in cal and "at most 0.25" in cal
    wind = sr.calibration_table(["c"], "wind", root=tmp_path)
    assert wind.split("\n")[:3] == ["| test | states × rollouts | w = 0.5 | w = 2 |", "|---|---|---|---|",
                                    "| mmd | 16 × 64 | 0.25 | 1.00 |"]  # fmt: skip
    assert "s/run" not in wind
    with pytest.raises(ValueError, match="'calibration' or 'wind'"):
        sr.calibration_table(["c"], "gpu", root=tmp_path)


def test_measure_calibration_fails_the_near_misses() -> None:
    rows = sr.measure_calibration(1, 0.05, configs=[("mmd", 4, 8, True)], log=lambda _: None)
    failed = {r["case"]: r["value"] for r in rows if r["metric"] == "failed"}
    assert list(failed) == list(sr.calibration_candidates())
    assert failed["wrong sign on θ̇"] == failed["actions not swapped"] == failed["x and θ swapped"] == 1
    assert all(r["seed"] == "all" and r["value"] > 0 for r in rows if r["metric"] == "seconds")


def test_verify_calibration_script_writes_its_raw_folder(tmp_path: Path) -> None:
    res = run_script(
        "verify_calibration.py", "--reps", "1", "--parts", "wind", "--winds", "2", "--raw", str(tmp_path / "v")
    )
    assert "| test | states × rollouts | w = 2 |" in res.stdout
    text = sr.calibration_table(["v"], "wind", root=tmp_path)
    assert len([line for line in text.split("\n") if line.startswith("| ")]) == 1 + len(sr.WIND_CONFIGS)
    assert "n = 1 run per cell" in text and "`python " in text
    assert rawresults.read_meta(tmp_path / "v")["settings"]["winds"] == [2.0]
    with pytest.raises(ValueError, match="'calibration'"):
        sr.calibration_table(["v"], "calibration", root=tmp_path)


def test_scripts_refuse_an_existing_raw_folder_before_running(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    for script in ("discover_timing.py", "verify_calibration.py"):
        res = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--raw", str(tmp_path / "taken")],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert res.returncode == 2 and "--overwrite" in res.stderr and "|" not in res.stdout, script
