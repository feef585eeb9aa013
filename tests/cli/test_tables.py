"""Drift test: every committed benchmark table and figure, and every copy of a table in README.md and docs/, is
what `make tables` (`equirl bench tables`) builds from the committed raw results."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from equirl import rawresults
from equirl.cli import bench

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tables() -> dict[Path, str]:
    return bench.render_tables(ROOT)


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("figures")
    return out, bench.render_figures(ROOT, out)


def test_committed_figures_match_their_raw_results(figures: tuple[Path, list[Path]]) -> None:
    out, written = figures
    assert written and len(set(written)) == len(written), "a figure is drawn twice, or none is"
    for rel in written:
        assert (ROOT / rel).exists(), f"{rel} is drawn by `make tables` but not committed"
        assert (out / rel).read_bytes() == (ROOT / rel).read_bytes(), (
            f"{rel} differs from what `make tables` draws: run `make tables` and commit."
        )


IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+\.(?:png|gif|svg|jpg))\)")


def test_every_figure_in_the_docs_is_rebuilt(figures: tuple[Path, list[Path]]) -> None:
    _, written = figures
    shown = set()
    for md in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for link in IMAGE.findall(md.read_text()):
            shown.add((md.parent / link).resolve().relative_to(ROOT))
    assert shown, "no figure found in README.md and docs/"
    missing = sorted(str(p) for p in shown - set(written))
    assert not missing, f"figures shown in the docs that `make tables` does not draw: {missing}"


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
            if t.get("style") == bench.OVERHEAD_STYLE:  # the overhead benchmark's raw CSVs, any names
                assert any(folder.glob("*.csv")), folder
                continue
            if t.get("style") == "agent-gif":  # saved agent folders
                assert any(folder.glob("*/config.json")), folder
                continue
            if t.get("style") == "pretrained-agents":  # the agents' own .json records
                assert any(folder.glob("*.json")), folder
                continue
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


def test_a_tampered_cell_or_raw_value_is_caught(tmp_path: Path) -> None:
    """A raw-style table (one hand-written vision-cnn folder) built into its file and a README copy: changing a
    cell of either copy, or a raw value, makes them differ from what `make tables` builds."""
    raw = tmp_path / "docs" / "results" / "toy"
    raw.mkdir(parents=True)
    (raw / rawresults.RESULTS).write_text(
        "seed,method,stage,value\n0,plain,upright,90.0\n0,plain,zero-shot,30.0\n0,plain,finetuned,60.0\n"
    )
    meta = {"command": "python scripts/vision_cnn.py --raw docs/results/toy", "code_version": "abc", "machine": "m",
            "date": "d", "seconds": 1.0, "settings": {"n_test": 10, "dataset_name": "toy", "group": "c4"}}  # fmt: skip
    (raw / rawresults.META).write_text(json.dumps(meta))
    (tmp_path / "m.yml").write_text(
        "tables:\n  - raw: [docs/results/toy]\n    md: docs/results/toy/table.md\n    style: vision-cnn\n"
    )
    (tmp_path / "README.md").write_text("# x\n\n<!-- table: docs/results/toy/table.md -->\n| old |\n\nafter\n")
    changed = bench.write_tables(tmp_path, "m.yml", plots=False)
    assert set(changed) == {Path("docs/results/toy/table.md"), Path("README.md")}
    built = bench.render_tables(tmp_path, "m.yml")
    readme = (tmp_path / "README.md").read_text()
    assert "| plain | 30.00 | 60.00 |" in readme and readme.endswith("\n\nafter\n")
    assert bench.sync_markdown(readme, built) == readme and bench.write_tables(tmp_path, "m.yml", plots=False) == []
    tampered = readme.replace("| plain | 30.00 |", "| plain | 31.00 |")
    assert bench.sync_markdown(tampered, built) != tampered  # the drift test's check catches the edited copy
    (raw / rawresults.RESULTS).write_text((raw / rawresults.RESULTS).read_text().replace("30.0", "33.0"))
    assert (
        bench.render_tables(tmp_path, "m.yml")[Path("docs/results/toy/table.md")]
        != built[Path("docs/results/toy/table.md")]
    )


def test_an_unknown_raw_folder_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "m.yml").write_text("tables:\n  - raw: [nowhere]\n    md: t.md\n    style: scan\n")
    with pytest.raises(bench.UsageError, match="nowhere"):
        bench.render_tables(tmp_path, "m.yml")
