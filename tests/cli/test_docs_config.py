"""The budget tables of the docs say what the benchmark configs say (one place for each fact: the YAML files;
these tests catch a table left behind when a config changes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from equirl.agents import sweep

ROOT = Path(__file__).resolve().parents[2]


def _rows(doc: str, heading: str) -> dict[str, list[str]]:
    """``{environment id: cells}`` of the first table after the line starting with ``heading`` in ``doc``."""
    lines = (ROOT / doc).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    rows = {}
    for line in lines[first + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0].split(" ")[0]] = cells
    return rows


def _number(text: str) -> float:
    """The first number of ``text``: ``15k`` -> 15000, ``8,192`` -> 8192, ``-100`` -> -100."""
    m = re.search(r"-?[\d,]+(\.\d+)?k?", text)
    assert m, text
    s = m.group(0)
    return float(s.rstrip("k").replace(",", "")) * (1000 if s.endswith("k") else 1)


def test_dqn_budget_table_matches_benchmark_yml() -> None:
    rows, benches = _rows("docs/benchmark.md", "## Budgets and thresholds"), sweep.load_config()
    assert set(rows) == set(benches), "one row per benchmark environment"
    for env_id, b in benches.items():
        _, _, _, steps, every, episodes, threshold = rows[env_id]
        assert (_number(steps), _number(every), _number(episodes), _number(threshold)) == (
            b.timesteps,
            b.eval_freq,
            b.n_eval_episodes,
            b.threshold,
        ), env_id
        source = b.hyperparams_from or env_id
        assert f"`{source}`" in rows[env_id][2] or (source == env_id and "dqn.yml" in rows[env_id][2]), env_id


@pytest.mark.parametrize("algo, doc", [("ppo", "docs/algorithms/ppo.md"), ("qrdqn", "docs/algorithms/qrdqn.md")])
def test_other_algorithms_budget_tables_match_their_configs(algo: str, doc: str) -> None:
    rows, benches = _rows(doc, "| environment | \\|G\\| | budget"), sweep.load_config(algo)
    assert set(rows) == set(benches), "one row per benchmark environment"
    for env_id, b in benches.items():
        cells = rows[env_id]
        assert _number(cells[2]) == b.timesteps, env_id
        m = re.fullmatch(r"every ([\d,]+) steps, (\d+) episodes", cells[-1])
        assert m and (_number(m.group(1)), int(m.group(2))) == (b.eval_freq, b.n_eval_episodes), env_id
