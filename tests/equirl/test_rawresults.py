"""Raw results folders (equirl.rawresults) and the tables built from hand-written ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from equirl import rawresults


def _write(folder: Path, header: str, lines: list[str], settings: dict[str, object]) -> Path:
    folder.mkdir(parents=True)
    (folder / rawresults.RESULTS).write_text(header + "\n" + "\n".join(lines) + "\n")
    meta = {"command": "python x.py --raw f", "code_version": "abc1234", "machine": "m, 2 cpus",
            "date": "2026-01-01 00:00 UTC", "seconds": 12.0, "settings": settings}  # fmt: skip
    (folder / rawresults.META).write_text(json.dumps(meta))
    return folder


def test_write_read_round_trip_and_refusal(tmp_path: Path) -> None:
    rows = [{"seed": 0, "method": "plain", "value": 0.1 + 0.2}, {"seed": 1, "method": "λ", "value": 3.0}]
    started = rawresults.provenance(command=["python", "s.py"])
    out = rawresults.write_raw(tmp_path / "r", rows, {"steps": 5}, seconds=1.25, started=started)
    back, meta = rawresults.read_raw(out)
    assert [float(r["value"]) for r in back] == [0.1 + 0.2, 3.0]  # floats bit for bit
    assert back[1]["method"] == "λ" and back[0]["seed"] == "0"
    assert meta["command"] == "python s.py" and meta["settings"] == {"steps": 5} and meta["seconds"] == 1.2
    assert meta["code_version"] and "cpus" in meta["machine"]
    with pytest.raises(FileExistsError, match="--overwrite"):
        rawresults.write_raw(out, rows, {})
    rawresults.write_raw(out, rows[:1], {"steps": 6}, overwrite=True)
    assert len(rawresults.read_raw(out)[0]) == 1 and rawresults.read_meta(out)["settings"] == {"steps": 6}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temporary folder left behind


def test_write_refuses_bad_rows(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one row"):
        rawresults.write_raw(tmp_path / "a", [], {})
    with pytest.raises(ValueError, match="'value'"):
        rawresults.write_raw(tmp_path / "b", [{"value": 1.0, "seed": 0}], {})
    with pytest.raises(ValueError, match="Row 1"):
        rawresults.write_raw(tmp_path / "c", [{"a": 1, "value": 1.0}, {"b": 1, "value": 1.0}], {})
    assert not any(tmp_path.iterdir())
    with pytest.raises(FileNotFoundError, match="not a raw results folder"):
        rawresults.read_raw(tmp_path)


def test_mean_sd_is_the_sample_std() -> None:
    assert rawresults.mean_sd([1.0, 2.0, 3.0, 4.0]) == "2.50 ± 1.29"  # sqrt(5/3) = 1.291
    assert rawresults.mean_sd([5.0], digits=1) == "5.0"
    assert rawresults.mean_sd([]) == "-"


def test_vision_cnn_table_from_a_hand_written_folder(tmp_path: Path) -> None:
    from equirl.adapters.vision.results import cnn_table

    lines = ["0,plain,upright,90.0", "0,plain,zero-shot,30.0", "0,plain,finetuned,60.0", "0,eq,zero-shot,50.0",
             "1,plain,zero-shot,32.0", "1,plain,finetuned,64.0", "1,eq,zero-shot,52.0"]  # fmt: skip
    settings = {"n_test": 100, "dataset_name": "toy", "group": "c4"}
    _write(tmp_path / "v", "seed,method,stage,value", lines, settings)
    table = cnn_table(["v"], root=tmp_path)
    assert table.split("\n")[:4] == [
        "| method | zero-shot | finetuned |",
        "|---|---|---|",
        "| plain | 31.00 ± 1.41 | 62.00 ± 2.83 |",
        "| eq | 51.00 ± 1.41 | - |",
    ]
    assert "n = 2 seeds (0, 1)" in table and "sample standard deviation" in table and "90.00" in table
    assert "`python x.py --raw f`" in table and "abc1234" in table
    one = cnn_table(["v"], root=tmp_path, seeds=[1])
    assert "| plain | 32.00 | 64.00 |" in one and "n = 1 seed (1)" in one
