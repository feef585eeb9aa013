"""Drift test: every committed benchmark table, and every copy of it in README.md and docs/, is what
`make tables` (`equirl bench tables`) builds from the committed raw results."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from equirl import rawresults
from equirl.cli import bench

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tables() -> dict[Path, str]:
    return bench.render_tables(ROOT)


def test_committed_tables_match_their_raw_results(tables: dict[Path, str]) -> None:
    assert tables, "the manifest lists no tables"
    for md, table in tables.items():
        committed = (ROOT / md).read_text()
        assert committed == table, f"{md} differs from what `make tables` builds: run `make tables` and commit."


def test_embedded_copies_match(tables: dict[Path, str]) -> None:
    files = bench.markdown_files(ROOT)
    assert Path("README.md") in files and Path("docs/benchmark.md") in files
    for f in files:
        text = (ROOT / f).read_text()
        assert bench.sync_markdown(text, tables) == text, f"a table in {f} is stale: run `make tables` and commit."


def test_every_embedded_table_is_regenerable(tables: dict[Path, str]) -> None:
    for f in bench.markdown_files(ROOT):
        for line in (ROOT / f).read_text().splitlines():
            if line.startswith(bench.MARKER):
                path = Path(line[len(bench.MARKER) :].split("-->")[0].strip())
                assert path in tables, f"{f} embeds {path}, which docs/benchmark/tables.yml does not build"


def test_every_raw_folder_is_documented() -> None:
    manifest = yaml.safe_load((ROOT / bench.MANIFEST).read_text())
    needs = {"transfer": ("runs.csv", "suite.json"), "transfer-views": ("views.csv", "views.json")}
    needs |= {
        style: (rawresults.RESULTS, rawresults.META) for style in bench.RAW_STYLES if style != "pretrained-agents"
    }
    for t in manifest["tables"]:
        for r in t["raw"]:
            folder = ROOT / (r if isinstance(r, str) else r["path"])
            for f in needs.get(t.get("style", ""), ("runs.csv", "curves.csv")):
                assert (folder / f).exists(), folder / f
            if t.get("style") in needs and t["style"] in bench.RAW_STYLES:
                meta = rawresults.read_meta(folder)  # provenance of every committed raw folder
                assert meta["command"] and meta["code_version"] and meta["machine"], folder


def test_sync_markdown_replaces_the_block_after_a_marker() -> None:
    from equirl.agents import sweep

    new = "| a |\n|---|\n| 2 |\n\n" + sweep.TABLE_NOTE + "\n"
    text = "intro\n<!-- table: t.md -->\n| a |\n|---|\n| 1 |\n\n" + sweep.TABLE_NOTE + "\n\nafter\n"
    out = bench.sync_markdown(text, {Path("t.md"): new})
    assert out == "intro\n<!-- table: t.md -->\n| a |\n|---|\n| 2 |\n\n" + sweep.TABLE_NOTE + "\n\nafter\n"
    assert bench.sync_markdown(out, {Path("t.md"): new}) == out  # idempotent
    # an old table without its note, and a marker for a table it was not given
    old = "<!-- table: t.md -->\n| a |\n| 1 |\n\nafter\n<!-- table: other.md -->\n| x |\n"
    assert bench.sync_markdown(old, {Path("t.md"): new}) == (
        "<!-- table: t.md -->\n" + new.rstrip("\n") + "\n\nafter\n<!-- table: other.md -->\n| x |\n"
    )
