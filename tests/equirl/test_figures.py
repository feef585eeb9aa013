"""Figures that `make tables` rebuilds: deterministic bytes, atomic writes, and the figure functions' inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from equirl import rawresults
from equirl.cli import UsageError, bench
from equirl.figures import save_png

ROOT = Path(__file__).resolve().parents[2]
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def _figure():  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1, 2], [3, 1, 2])
    return fig


def test_save_png_is_deterministic_untagged_and_atomic(tmp_path: Path) -> None:
    a, b = save_png(_figure(), tmp_path / "a" / "x.png"), save_png(_figure(), tmp_path / "b" / "x.png")
    data = a.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data == b.read_bytes()
    assert b"Software" not in data and b"matplotlib" not in data  # no version tag: bytes survive an upgrade
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["x.png"]  # no temporary file left


def _vision_folder(tmp_path: Path, models: tuple[str, ...] = ("efficientnet", "conse")) -> Path:
    rows = [
        {"model": m, "method": meth, "element": e, "value": v}
        for m in models
        for meth, base in (("plain", 80.0), ("equitune", 60.0))
        for e, v in zip(("e", "r"), (base, base / 2), strict=True)
    ]
    folder = tmp_path / "vp"
    rawresults.write_raw(folder, rows, {"group": "c4"}, started=None, seconds=1.0)
    return folder


def test_pretrained_plot_draws_the_raw_folder(tmp_path: Path) -> None:
    from equirl.adapters.vision.results import pretrained_plot

    folder = _vision_folder(tmp_path)
    one = pretrained_plot([folder.name], tmp_path / "one.png", root=tmp_path).read_bytes()
    assert one == pretrained_plot([folder.name], tmp_path / "two.png", root=tmp_path).read_bytes()
    # other values draw another picture
    rows, meta = rawresults.read_raw(folder)
    for r in rows:
        r["value"] = 100.0 - float(r["value"])
    rawresults.write_raw(tmp_path / "vp2", rows, meta["settings"], started=None, seconds=1.0)
    assert pretrained_plot(["vp2"], tmp_path / "three.png", root=tmp_path).read_bytes() != one


def test_pretrained_plot_refuses_a_folder_without_a_model(tmp_path: Path) -> None:
    from equirl.adapters.vision.results import pretrained_plot

    _vision_folder(tmp_path, models=("efficientnet",))
    with pytest.raises(ValueError, match="conse"):
        pretrained_plot(["vp"], tmp_path / "x.png", root=tmp_path)


def test_a_plot_on_a_style_without_figures_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.yml").write_text(
        "tables:\n  - raw: [agents/pretrained]\n    md: t.md\n    style: pretrained-agents\n    plot: x.png\n"
    )
    with pytest.raises(UsageError, match="draws no figure"):
        bench.render_figures(ROOT, tmp_path, manifest=tmp_path / "m.yml")
    (tmp_path / "o.yml").write_text(
        "tables:\n  - raw: [agents/pretrained]\n    style: agent-gif\n    plot: x.gif\n    plot_options: {agnet: a}\n"
    )
    with pytest.raises(UsageError, match="Cannot draw x.gif .*agnet"):  # a misspelt option is named
        bench.render_figures(ROOT, tmp_path, manifest=tmp_path / "o.yml")
    (tmp_path / "n.yml").write_text("tables:\n  - raw: [agents/pretrained]\n    style: agent-gif\n")
    with pytest.raises(UsageError, match="'plot'"):  # neither a table nor a figure
        bench.render_tables(ROOT, manifest=tmp_path / "n.yml")


def test_agents_gif_needs_a_saved_agent_folder(tmp_path: Path) -> None:
    pytest.importorskip("imageio")
    from equirl.agents.reports import agents_gif

    with pytest.raises(FileNotFoundError, match="config.json"):
        agents_gif(["docs"], tmp_path / "x.gif", root=ROOT, agent="rotgrid_bottom_plain", env_id="equirl/RotGrid-v0")
    returns = agents_gif(
        ["agents/pretrained"], tmp_path / "x.gif", root=ROOT, agent="rotgrid_bottom_plain",
        env_id="equirl/RotGrid-Corner-v0", env_kwargs={"goal_corners": (0, 1)}, episodes=1,
    )  # fmt: skip
    # the plain agent misses the goal of a task it never saw, equitune finds it (README, "Recording an agent")
    assert returns[0][0] < 0 < 0.9 < returns[1][0]
    assert (tmp_path / "x.gif").read_bytes()[:6] == b"GIF89a"
