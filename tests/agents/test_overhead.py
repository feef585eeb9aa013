"""The overhead benchmark's bookkeeping: raw rows, paired ratios, the report (no speed is asserted)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from equirl.agents import overhead


def _row(variant: str, batch: int, rep: str, seconds: float, measure: str = "step", **kw: object) -> dict[str, str]:
    base = dict(label="x", commit="c", device="cpu", case="cartpole-C2", obs="vector", group="C2", G=2,
                measure=measure, variant=variant, batch=batch, n_envs=1, threads=1, rep=rep, seconds=seconds,
                calls=10, load1=1.5, time=0)  # fmt: skip
    base.update(kw)
    return {k: str(v) for k, v in base.items()}


def test_paired_ratios_against_plain_and_the_same_arithmetic_reference() -> None:
    rows = []
    for rep, load in (("a0", 1.0), ("a1", 3.0), ("b0", 1.0)):  # a busy round: everything slower together
        rows += [_row("plain", 64, rep, 1.0 * load), _row("reference", 128, rep, 1.5 * load),
                 _row("equitune", 64, rep, 1.65 * load), _row("lambda", 64, rep, 2.0 * load)]  # fmt: skip
    rows.append(_row("equizero", 64, "a0", 3.0))  # a method with one round only
    by = {s.method: s for s in overhead.summarise(rows)}
    assert set(by) == {"plain", "equitune", "lambda", "equizero"}
    assert by["equitune"].vs_plain == pytest.approx((1.65, 1.65, 1.65))
    assert by["equitune"].vs_reference == pytest.approx((1.1, 1.1, 1.1))
    assert by["lambda"].vs_reference[0] == pytest.approx(2.0 / 1.5)
    assert by["equizero"].n == 1 and by["equizero"].vs_plain[0] == pytest.approx(3.0)
    assert by["plain"].seconds == pytest.approx(1.0)  # the median over rounds
    text = overhead.markdown_report(list(by.values()))
    assert "| cartpole-C2 | 2 | 64 | 1 | 1000.000 | 3 |" in text
    assert "1.10 (1.10-1.10)" in text and "| 1.50 |" in text  # equitune / ref, and ref / plain


def test_run_times_one_measure_after_the_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every round of one measure is timed before the next measure's, so that a method's block stays within a
    round of its reference's; every variant is timed in every round."""
    order: list[tuple[str, str]] = []

    def fake_variants(case: Any, device: str, batch: Any, predict_batch: int) -> list[Any]:
        out = []
        for measure in ("step", "predict1", "predictB"):
            for variant in ("plain", "equitune", "reference"):
                out.append(overhead._Variant(measure, variant, 1, lambda m=measure, v=variant: order.append((m, v)),
                                             calls=1))  # fmt: skip
        return out

    monkeypatch.setattr(overhead, "_micro_variants", fake_variants)
    overhead.run_benchmark(tmp_path / "raw.csv", "t", cases=["cartpole-C2"], measures=["predict1", "step"],
                           repeats=3, progress=lambda _: None)  # fmt: skip
    measures = [m for m, _ in order]
    assert measures == ["predict1"] * 9 + ["step"] * 9  # in the order asked, predictB not at all
    assert sorted(order[:9]) == sorted([("predict1", v) for v in ("plain", "equitune", "reference")] * 3)
    rows = overhead.read_raw([tmp_path / "raw.csv"])
    assert [r["measure"] for r in rows] == measures


def test_predict1_reference_is_plain_on_one_observation_per_element() -> None:
    rows = [_row("plain", 1, "0", 1.0, "predict1"), _row("reference", 2, "0", 1.2, "predict1"),
            _row("equitune", 1, "0", 1.8, "predict1")]  # fmt: skip
    (eq,) = [s for s in overhead.summarise(rows) if s.method == "equitune"]
    assert eq.vs_reference[0] == pytest.approx(1.5)


def test_bad_arguments_are_refused_before_any_timing(tmp_path: Path) -> None:
    out = tmp_path / "raw.csv"
    out.write_text("a user's results")
    with pytest.raises(FileExistsError, match="--overwrite"):
        overhead.run_benchmark(out, "t", cases=["cartpole-C2"], measures=["predict1"])
    assert out.read_text() == "a user's results"
    with pytest.raises(ValueError, match="Unknown case"):
        overhead.run_benchmark(tmp_path / "b.csv", "t", cases=["pong"])
    with pytest.raises(ValueError, match="Unknown measure"):
        overhead.run_benchmark(tmp_path / "b.csv", "t", measures=["speed"])


@pytest.mark.slow
def test_run_writes_raw_rows_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "raw.csv"
    overhead.run_benchmark(out, "t", cases=["cartpole-C2"], measures=["predict1"], repeats=2, target_s=0.001,
                           progress=lambda _: None)  # fmt: skip
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == overhead.RAW_FIELDS
    variants = {(r["variant"], r["batch"]) for r in rows}
    assert variants == {("plain", "1"), ("equitune", "1"), ("equizero", "1"), ("lambda", "1"), ("reference", "2"),
                        ("reference-lambda", "2")}  # fmt: skip
    assert all(float(r["cpu_seconds"]) > 0 for r in rows)
    assert len(rows) == 2 * len(variants) and all(float(r["seconds"]) > 0 for r in rows)
    with pytest.raises(FileExistsError, match="--overwrite"):
        overhead.run_benchmark(out, "t", cases=["cartpole-C2"], measures=["predict1"])
    with pytest.raises(ValueError, match="Unknown case"):
        overhead.run_benchmark(tmp_path / "b.csv", "t", cases=["pong"])


def test_lambda_reference_keeps_plain_q_values_and_trains_its_lambda_net() -> None:
    """λ-equitune's same-arithmetic reference: plain DQN's Q-values exactly, with a λ-net that runs forward and
    backward (its parameters are in the optimizer and change in a gradient step)."""
    import copy

    import torch

    case = overhead.CASES["cartpole-C2"]
    model = overhead._build(case, "plain", "cpu", learning_starts=10**9, batch_size=16)
    plain_q = copy.deepcopy(model.q_net)
    overhead.with_lambda_net(model, 8)
    assert isinstance(model.q_net, overhead.LambdaReferenceQNetwork) and model.q_net is model.policy.q_net
    obs = torch.randn(5, 4)
    with torch.no_grad():
        assert torch.equal(model.q_net(obs), plain_q(obs))
        assert torch.equal(model.q_net_target(obs), model.q_net(obs))
    lam = model.q_net.lambda_net
    assert {id(p) for p in lam.parameters()} <= {
        id(p) for g in model.policy.optimizer.param_groups for p in g["params"]
    }
    model.learn(64)  # fills the buffer
    before = [p.detach().clone() for p in lam.parameters()]
    model.train(gradient_steps=1, batch_size=16)
    assert any(not torch.equal(a, p) for a, p in zip(before, lam.parameters(), strict=True))


def test_cpu_clock_is_used_where_rows_have_it() -> None:
    rows = [_row("plain", 64, "0", 2.0, cpu_seconds=1.0), _row("equitune", 64, "0", 3.0, cpu_seconds=1.5)]
    (eq,) = [s for s in overhead.summarise(rows) if s.method == "equitune"]
    assert eq.vs_plain[0] == 1.5 and eq.clock == "cpu"
    (eq,) = [s for s in overhead.summarise(rows, clock="wall") if s.method == "equitune"]
    assert eq.vs_plain[0] == 3.0 / 2.0 and eq.clock == "wall"
    old = [{k: v for k, v in r.items() if k != "cpu_seconds"} for r in rows]  # a CSV written before the column
    (eq,) = [s for s in overhead.summarise(old) if s.method == "equitune"]
    assert eq.clock == "wall" and eq.vs_plain[0] == 1.5


def test_lambda_is_also_compared_with_its_own_reference() -> None:
    rows = [_row("plain", 64, "0", 1.0), _row("reference", 128, "0", 1.5), _row("reference-lambda", 128, "0", 2.0),
            _row("lambda", 64, "0", 2.2), _row("equitune", 64, "0", 1.6)]  # fmt: skip
    by = {s.method: s for s in overhead.summarise(rows)}
    assert set(by) == {"plain", "lambda", "equitune"}  # references are not methods
    assert by["lambda"].vs_reference[0] == pytest.approx(2.2 / 1.5)
    assert by["lambda"].vs_own_reference[0] == pytest.approx(1.1)
    assert by["equitune"].vs_own_reference[0] == pytest.approx(1.6 / 1.5)
    assert "lambda / own ref" in overhead.markdown_report(list(by.values()))
    table = overhead.comparison_table(list(by.values()), "step", "own-reference", ["x"])
    assert "1.10 (1.10-1.10)" in table


def _labelled(label: str, equitune: float) -> list[dict[str, str]]:
    return [_row("plain", 64, "0", 1.0, label=label, cpu_seconds=1.0),
            _row("reference", 128, "0", 1.5, label=label, cpu_seconds=1.5),
            _row("equitune", 64, "0", equitune, label=label, cpu_seconds=equitune)]  # fmt: skip


def test_report_with_compare_puts_the_compact_tables_first() -> None:
    summaries = overhead.summarise(_labelled("before", 1.8) + _labelled("after", 1.65))
    text = overhead.report_markdown(summaries, ["before", "after"])
    order = [("step", "reference"), ("step", "own-reference"), ("step", "plain"), ("predict1", "plain"),
             ("predict1", "reference"), ("predictB", "reference"), ("learn", "plain")]  # fmt: skip
    compact = "".join(
        f"{m}, ratio against {a}:\n\n" + overhead.comparison_table(summaries, m, a, ["before", "after"]) + "\n\n"
        for m, a in order
    )
    assert text == compact + overhead.markdown_report(summaries) + "\n"
    # before -> after in that order: equitune / reference 1.8 / 1.5 = 1.20, then 1.65 / 1.5 = 1.10
    assert "| cartpole-C2 | 2 | 1 | 1.20 → 1.10 (1.10-1.10) | 1.5 |" in text
    assert overhead.report_markdown(summaries) == overhead.markdown_report(summaries) + "\n"
    with pytest.raises(ValueError, match="two labels"):
        overhead.report_markdown(summaries, ["before"])


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_overhead_entries_of_make_tables_rebuild_the_report_and_the_plot(tmp_path: Path) -> None:
    """The manifest's overhead-benchmark entries: the compare form is the script's --md file, the plot is drawn the
    same, byte for byte, from the same CSVs; bad entries are refused with the entry named."""
    from equirl.cli import UsageError, bench

    raw = tmp_path / "raw"
    raw.mkdir()
    _write_csv(raw / "b.csv", _labelled("before", 1.8))
    _write_csv(raw / "a.csv", _labelled("after", 1.65))
    (raw / "sub").mkdir()  # only the folder's own CSVs are read
    _write_csv(raw / "sub" / "x.csv", _labelled("elsewhere", 9.0))
    entry = {"raw": ["raw"], "md": "t.md", "style": "overhead-benchmark", "compare": ["before", "after"]}
    summaries = overhead.summarise(overhead.read_raw([raw / "a.csv", raw / "b.csv"]))
    assert bench._overhead_table(tmp_path, ["raw"], entry) == overhead.report_markdown(summaries, ["before", "after"])
    with pytest.raises(UsageError, match="either compare"):
        bench._overhead_table(tmp_path, ["raw"], {**entry, "measure": "step"})
    with pytest.raises(UsageError, match="two labels"):
        bench._overhead_table(tmp_path, ["raw"], {**entry, "compare": ["before"]})
    with pytest.raises(UsageError, match="needs raw CSVs"):
        bench._overhead_table(tmp_path, ["raw/sub/none"], entry)
    first = overhead.benchmark_plot(["raw"], tmp_path / "img" / "step.png", root=tmp_path)
    second = overhead.benchmark_plot(["raw"], tmp_path / "step2.png", root=tmp_path)
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and first.read_bytes() == second.read_bytes()
    _write_csv(raw / "a.csv", _labelled("after", 2.4))  # another ratio: another figure
    assert overhead.benchmark_plot(["raw"], tmp_path / "step3.png", root=tmp_path).read_bytes() != first.read_bytes()
    assert "overhead-benchmark" in bench.PLOT_STYLES
    with pytest.raises(ValueError, match="No 'predict1' rows"):
        overhead.benchmark_plot(["raw"], tmp_path / "p.png", root=tmp_path, measure="predict1")


def test_the_plot_shows_each_labels_ratio_against_the_own_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import equirl.figures

    figs = []
    monkeypatch.setattr(equirl.figures, "save_png", lambda fig, path, dpi=100: figs.append(fig) or Path(path))
    rows = _labelled("before", 1.8) + _labelled("after", 1.65)
    rows.append(_row("lambda", 64, "0", 2.2, label="after", cpu_seconds=2.2))
    rows.append(_row("reference-lambda", 128, "0", 2.0, label="after", cpu_seconds=2.0))
    overhead.plot_report(overhead.summarise(rows), tmp_path / "p.png")
    (fig,) = figs
    after, before = fig.axes  # one panel per label, sorted
    assert after.get_title().startswith("after:") and before.get_title().startswith("before:")
    from matplotlib.container import BarContainer

    def bars(ax: Any) -> list[list[float]]:
        return [[b.get_height() for b in c] for c in ax.containers if isinstance(c, BarContainer)]

    heights = bars(after)
    # equitune / reference 1.65 / 1.5; equizero not measured; λ against its own reference 2.2 / 2.0
    assert heights[0] == pytest.approx([1.1]) and heights[1][0] != heights[1][0] and heights[2] == pytest.approx([1.1])
    assert bars(before)[0] == pytest.approx([1.2])


def _rounds(variant: str, batch: int, ratios: list[float], measure: str = "step", G: int = 2,
            case: str = "cartpole-C2") -> list[dict[str, str]]:  # fmt: skip
    """One row per round: ``variant`` takes ``ratio`` times the time of a round whose other blocks take 1 s (the
    round's load doubling every other round, which paired ratios cancel)."""
    return [_row(variant, batch, str(i), r * (1 + i % 2), measure, G=G, case=case, cpu_seconds=r * (1 + i % 2))
            for i, r in enumerate(ratios)]  # fmt: skip


def _base(measure: str, batch: int, G: int, n: int, case: str = "cartpole-C2") -> list[dict[str, str]]:
    ref_batch = G if measure == "predict1" else G * batch
    return (_rounds("plain", batch, [1.0] * n, measure, G, case)
            + _rounds("reference", ref_batch, [1.0] * n, measure, G, case)
            + _rounds("reference-lambda", ref_batch, [1.0] * n, measure, G, case))  # fmt: skip


def test_targets_table_gives_each_median_a_bootstrap_interval_and_a_verdict() -> None:
    n = 12
    rows = _base("step", 64, 2, n)
    rows += _rounds("equitune", 64, [1.01, 1.02, 1.03] * 4)  # every round under 1.05: met
    rows += _rounds("equizero", 64, [1.10, 1.12, 1.15] * 4)  # every round over: missed
    rows += _rounds("lambda", 64, [0.98, 1.05, 1.12] * 4)  # straddles it: unresolved
    summaries = overhead.summarise(rows)
    (lam,) = [s for s in summaries if s.method == "lambda"]
    assert sorted(lam.round_ratios("own-reference")) == pytest.approx(sorted([0.98, 1.05, 1.12] * 4))
    assert lam.round_ratios("plain") == lam.round_ratios("own-reference")  # every base variant takes 1 s a round
    with pytest.raises(ValueError, match="against must be"):
        lam.round_ratios("other")
    text = overhead.targets_table(summaries)
    line = {m: next(x for x in text.splitlines() if f"| {m} |" in x and "| step |" in x)
            for m in ("equitune", "equizero", "lambda")}  # fmt: skip
    assert line["equitune"].endswith("| 12 | met |") and "1.020 [1.010, 1.030]" in line["equitune"]
    assert line["equizero"].endswith("| missed |") and "1.120 [1.100, 1.150]" in line["equizero"]
    assert line["lambda"].endswith("| unresolved |") and "| 1.050 [" in line["lambda"]
    assert "step / own-reference <= 1.05 (equitune, equizero, lambda): 1 met, 1 missed, 1 unresolved" in text
    assert "| predict1 |" not in text  # no predict rows measured: none listed
    assert text == overhead.targets_table(summaries)  # a fixed bootstrap seed: the same table


def test_targets_cover_only_the_group_order_they_name_and_one_label() -> None:
    rows = _base("predict1", 1, 2, 4) + _rounds("equitune", 1, [1.1, 1.2, 1.1, 1.2], "predict1")
    rows += _base("predict1", 1, 4, 4, case="rotgrid-C4")
    rows += _rounds("equitune", 1, [2.0] * 4, "predict1", G=4, case="rotgrid-C4")
    summaries = overhead.summarise(rows)
    text = overhead.targets_table(summaries)
    assert "| predict1 | plain | <= 1.25 | cartpole-C2 | 2 | 1 | equitune |" in text and "rotgrid-C4" not in text
    assert "| step |" not in text and "Verdicts: predict1 / plain <= 1.25 (equitune; |G| = 2): 1 " in text
    with pytest.raises(ValueError, match="one label"):
        overhead.targets_table(overhead.summarise(rows + [_row("plain", 1, "0", 1.0, "predict1", label="y")]))


def test_the_gpu_target_covers_cuda_rows_at_order_8_and_batch_256_only() -> None:
    """On a CUDA device the target is a gradient step at |G| = 8 and batch 256 within 1.3× of plain; the CPU targets
    do not read CUDA rows, nor the GPU target CPU rows."""
    cuda = "cuda:NVIDIA H200 (x86_64, 16 cpus)"
    rows = []
    for batch, ratio in ((256, [1.1, 1.2, 1.15, 1.12]), (64, [2.0] * 4)):
        rows += [{**r, "device": cuda} for r in _base("step", batch, 8, 4, case="rotgrid-D4")]
        rows += [{**r, "device": cuda} for r in _rounds("equitune", batch, ratio, G=8, case="rotgrid-D4")]
    text = overhead.targets_table(overhead.summarise(rows))
    assert "| step | plain | <= 1.3 | rotgrid-D4 | 8 | 256 | equitune | 1.135 [" in text and "| 64 |" not in text
    assert "Verdicts: step / plain <= 1.3 (equitune, equizero, lambda; |G| = 8; batch 256; cuda): 1 met" in text
    assert "own-reference" not in text  # the CPU step target reads CPU rows only
    cpu = _base("step", 256, 8, 4, case="rotgrid-D4") + _rounds("equitune", 256, [1.1] * 4, G=8, case="rotgrid-D4")
    assert "| step | plain |" not in overhead.targets_table(overhead.summarise(cpu))
    forward_only = [{**r, "measure": "forward-eager"} for r in rows]
    assert overhead.targets_table(overhead.summarise(forward_only)).endswith(
        "Verdicts: no cell of any target in these rows.\n"
    )


def test_verdicts_compare_the_whole_interval_with_the_bound() -> None:
    assert overhead.verdict((0.9, 1.05), 1.05) == "met"
    assert overhead.verdict((1.0500001, 1.2), 1.05) == "missed"
    assert overhead.verdict((1.0, 1.06), 1.05) == "unresolved"
    lo, hi = overhead.ratio_ci([1.0, 1.2, 1.1, 1.3, 0.9])
    assert 0.9 <= lo <= 1.1 <= hi <= 1.3
    with pytest.raises(ValueError, match="two rounds"):
        overhead.ratio_ci([1.0])


def test_a_targets_entry_of_make_tables_is_the_targets_table(tmp_path: Path) -> None:
    from equirl.cli import UsageError, bench

    raw = tmp_path / "raw"
    raw.mkdir()
    _write_csv(raw / "a.csv", _base("step", 64, 2, 4) + _rounds("equitune", 64, [1.0, 1.1, 1.0, 1.1]))
    entry = {"raw": ["raw"], "md": "t.md", "style": "overhead-benchmark", "targets": True}
    summaries = overhead.summarise(overhead.read_raw([raw / "a.csv"]))
    assert bench._overhead_table(tmp_path, ["raw"], entry) == overhead.targets_table(summaries)
    with pytest.raises(UsageError, match="targets: true takes at most labels"):
        bench._overhead_table(tmp_path, ["raw"], {**entry, "compare": ["a", "b"]})
    with pytest.raises(UsageError, match="targets: true takes at most labels"):
        bench._overhead_table(tmp_path, ["raw"], {**entry, "targets": "yes"})
    with pytest.raises(UsageError, match="targets: true takes at most labels"):
        bench._overhead_table(tmp_path, ["raw"], {**entry, "labels": ["x", "y"]})
    _write_csv(raw / "b.csv", [_row("plain", 64, "0", 1.0, label="other", cpu_seconds=1.0)])  # a second label
    with pytest.raises(UsageError, match="one label"):
        bench._overhead_table(tmp_path, ["raw"], entry)
    assert bench._overhead_table(tmp_path, ["raw"], {**entry, "labels": ["x"]}) == overhead.targets_table(summaries)
    with pytest.raises(UsageError, match="no rows labelled 'z'"):
        bench._overhead_table(tmp_path, ["raw"], {**entry, "labels": ["z"]})
    ci = overhead.benchmark_plot(["raw"], tmp_path / "ci.png", root=tmp_path, interval="ci")
    rng = overhead.benchmark_plot(["raw"], tmp_path / "range.png", root=tmp_path)
    assert ci.read_bytes() != rng.read_bytes()
    with pytest.raises(ValueError, match="interval must be"):
        overhead.benchmark_plot(["raw"], tmp_path / "x.png", root=tmp_path, interval="iqr")
