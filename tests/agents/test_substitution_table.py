"""The table of SB3's own tests with each method substituted (scripts/sb3_substitution.py): parsing and rendering."""

from __future__ import annotations

from pathlib import Path

import pytest
from equirl.agents.reports import OUTCOMES, pytest_outcomes, substitution_table

from equirl import rawresults


def test_pytest_outcomes_parses_the_summary_line() -> None:
    line = "64 passed, 7 skipped, 2637 deselected, 2 xfailed, 1 warning in 51.05s"
    assert pytest_outcomes(line) == {"passed": 64, "failed": 0, "xfailed": 2, "xpassed": 0, "skipped": 7, "error": 0}
    assert pytest_outcomes("1 failed, 3 passed, 2 errors in 1.0s")["error"] == 2
    with pytest.raises(ValueError, match="summary"):
        pytest_outcomes("no tests ran in 0.01s")


def test_substitution_table_from_hand_written_rows(tmp_path: Path) -> None:
    runs = {"native": {"passed": 66, "skipped": 7}, "lambda": {"passed": 64, "xfailed": 2, "skipped": 7}}
    rows = [{"run": r, "outcome": o, "value": c.get(o, 0)} for r, c in runs.items() for o in OUTCOMES]
    rawresults.write_raw(tmp_path / "s", rows, {"runs": list(runs), "sb3_version": "2.9.2"}, started=None, seconds=1.0)
    lines = substitution_table(["s"], root=tmp_path).splitlines()
    assert lines[0] == "| run | cases | passed | xfailed (strict) | skipped |"  # outcomes that occurred, in order
    assert lines[2] == "| native SB3 policies | 73 | 66 | 0 | 7 |"
    assert lines[3] == "| `lambda` | 73 | 64 | 2 | 7 |"
    assert "SB3 2.9.2" in lines[5]
