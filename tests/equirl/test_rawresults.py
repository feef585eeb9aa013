"""Raw results folders (equirl.rawresults) and the tables built from hand-written ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from equirl import rawresults
from tests.rawfolders import write_raw_folder

_write = write_raw_folder


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
        rawresults.write_raw(out, rows, {}, started=None)
    rawresults.write_raw(out, rows[:1], {"steps": 6}, started=None, overwrite=True)
    assert len(rawresults.read_raw(out)[0]) == 1 and rawresults.read_meta(out)["settings"] == {"steps": 6}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temporary folder left behind


def test_write_refuses_bad_rows(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one row"):
        rawresults.write_raw(tmp_path / "a", [], {}, started=None)
    with pytest.raises(ValueError, match="'value'"):
        rawresults.write_raw(tmp_path / "b", [{"value": 1.0, "seed": 0}], {}, started=None)
    with pytest.raises(ValueError, match="Row 1"):
        rawresults.write_raw(tmp_path / "c", [{"a": 1, "value": 1.0}, {"b": 1, "value": 1.0}], {}, started=None)
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
    _write(tmp_path / "w", "seed,method,stage,value", ["2,plain,zero-shot,34.0"], settings)
    assert "| plain | 32.00 ± 2.00 | 62.00 ± 2.83 |" in cnn_table(["v", "w"], root=tmp_path)  # 30, 32, 34
    with pytest.raises(ValueError, match="repeats seed"):
        cnn_table(["v", "v"], root=tmp_path)
    _write(tmp_path / "x", "seed,method,stage,value", ["3,plain,zero-shot,34.0"], {**settings, "group": "d4"})
    with pytest.raises(ValueError, match="different settings"):
        cnn_table(["v", "x"], root=tmp_path)
    one = cnn_table(["v"], root=tmp_path, seeds=[1])
    assert "| plain | 32.00 | 64.00 |" in one and "n = 1 seed (1)" in one


def test_fairness_rows_round_trip_to_the_table(tmp_path: Path) -> None:
    from equirl.adapters.fairness import raw_rows, render_table, table

    rows = [
        {"axis": "gender", "method": "plain", "space": "-", "|G|": 1, "occ_tv": 0.5, "occ_mass_gap": 0.05,
         "regard_gap": 0.125, "max_abs_dp": 0.04, "ppl": 50.0, "seconds": 3.0, "ppl_change_pct": 0.0},
        {"axis": "gender", "method": "lambda", "space": "logprob", "|G|": 2, "lambda_loss_first_last": (5.5, 5.25),
         "occ_tv": 0.0, "occ_mass_gap": 0.0, "regard_gap": 0.0, "max_abs_dp": 1e-8, "ppl": 49.0, "seconds": 9.0,
         "ppl_change_pct": -2.0},
    ]  # fmt: skip
    long = raw_rows(rows)
    assert {
        "axis": "gender",
        "method": "lambda",
        "space": "logprob",
        "metric": "lambda_loss_last",
        "value": 5.25,
    } in long
    settings = {"lambda_steps": 60, "lambda_lr": 0.003, "seed": 0}
    rawresults.write_raw(tmp_path / "f", long, settings, started=rawresults.provenance(command=["python", "f.py"]))
    text = table(["f"], root=tmp_path)
    assert text.startswith(render_table(rows, False))  # the same table as the script printed
    assert "| gender | lambda | logprob | 0.0000 | 0.00e+00 | 0.0000 | 1.0e-08 | 49.00 | -2.00 |" in text
    assert "`python f.py`" in text


def test_scan_table_from_hand_written_rows(tmp_path: Path) -> None:
    from equirl.adapters.scan import RESULT_ROWS, TRAIN_ACCURACY, VIEW_RATE, table

    lines = [f"addjump,0,-,{VIEW_RATE},77.0", f"addjump,0,plain,{TRAIN_ACCURACY},96.0"]
    lines += [f"addjump,{s},{m},{st},{10.0 * (i + 1) + s}" for s in (0, 1) for i, (m, st) in enumerate(RESULT_ROWS)]
    settings = {"eval_subset": 0, "pretrain_epochs": 3, "lambda_epochs": 1, "finetune_epochs": 1}
    _write(tmp_path / "s", "split,seed,method,stage,value", lines, settings)
    text = table(["s"], root=tmp_path)
    assert "| equitune | zero-shot | 20.5 ± 0.7 (n=2) |" in text  # 20, 21: sample std 0.707
    assert "| λ-equitune | finetuned | 80.5 ± 0.7 (n=2) |" in text
    assert "77.0% of test commands" in text and "96.0%" in text and "the full test split" in text
    with pytest.raises(ValueError, match="repeats the split"):
        table(["s", "s"], root=tmp_path)


def test_train_table_converts_the_population_std() -> None:
    from equirl.agents.reports import train_table

    rows = [{"method": "plain", "seed": 0, "timesteps": t, "metric": "eval_mean_return", "value": v}
            for t, v in ((0, 9.0), (50, 100.0), (100, 300.0))]  # fmt: skip
    final = {"final_mean_return": 300.0, "final_std_return_ddof0": 3.0, "n_eval_episodes": 10.0,
             "train_seconds": 2.0, "steps_per_second": 50.0, "equivariance_error": 0.0}  # fmt: skip
    rows += [{"method": "plain", "seed": 0, "timesteps": 100, "metric": k, "value": v} for k, v in final.items()]
    line = train_table(rows).split("\n")[2]
    # sd ddof 1 = 3 * sqrt(10/9) = 3.16; second half: the evaluation at 100 only; best 300
    assert line == "| plain | 0 | 300.0 ± 3.2 | 300.0 | 300.0 | 2.0 | 50 | 0.00e+00 |"


def test_pretrained_agents_table_reads_the_shipped_json() -> None:
    from equirl.agents.reports import pretrained_table

    root = Path(__file__).resolve().parents[2]
    text = pretrained_table(["agents/pretrained"], root=root)
    row = next(line for line in text.split("\n") if line.startswith("| `acrobot_plain`"))
    # recorded: mean -94.5, population std 19.704 over 10 episodes -> sample std 19.704 * sqrt(10/9) = 20.77
    assert "| -94.50 ± 20.77 (10) |" in row and "`Acrobot-v1`" in row and "--save-pretrained acrobot_plain" in row
    with pytest.raises(FileNotFoundError):
        pretrained_table(["docs"], root=root)


def test_speed_tables_from_hand_written_rows(tmp_path: Path) -> None:
    from equirl.envs.speed import table

    lines = ["env,RotGrid,-,steps,1000", "env,RotGrid,-,steps_per_second,12345.6",
             "verifier,`CartPole-v1`,C2,steps_checked,1500", "verifier,`CartPole-v1`,C2,steps_per_second,800.4"]  # fmt: skip
    _write(tmp_path / "g", "table,name,group,metric,value", lines, {})
    assert "| RotGrid | 1,000 | 12,346 |" in table(["g"], "env", root=tmp_path)
    assert "| `CartPole-v1` | C2 | 1,500 | 800 |" in table(["g"], "verifier", root=tmp_path)
    with pytest.raises(ValueError, match="part"):
        table(["g"], "gpu", root=tmp_path)


def test_a_script_refuses_an_existing_raw_folder_before_running(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "taken").mkdir()
    res = subprocess.run(
        [sys.executable, str(root / "scripts" / "gridworld_speed.py"), "--raw", str(tmp_path / "taken")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2 and "--overwrite" in res.stderr and "steps/s" not in res.stdout


def test_start_raw_takes_provenance_or_refuses_before_the_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    rawresults.add_raw_arguments(parser)
    assert rawresults.start_raw(parser, parser.parse_args([])) is None  # no --raw: nothing to check
    started = rawresults.start_raw(parser, parser.parse_args(["--raw", str(tmp_path / "new")]), device="a GPU")
    assert started is not None and started["machine"].endswith("a GPU") and not (tmp_path / "new").exists()
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit) as exit_:
        rawresults.start_raw(parser, parser.parse_args(["--raw", str(tmp_path / "taken")]))
    assert exit_.value.code == 2 and "taken already exists" in capsys.readouterr().err
    assert rawresults.start_raw(parser, parser.parse_args(["--raw", str(tmp_path / "taken"), "--overwrite"]))
