"""Tables of the vision experiments, built from their committed raw results (:mod:`equirl.rawresults`).

- ``scripts/vision_cnn.py --raw DIR``: rows ``seed, method, stage, value`` (top-1 % on the moved test
  set; ``stage`` is ``zero-shot``, ``finetuned`` or ``upright``, the plain CNN on the upright test set).
- ``scripts/vision_pretrained.py --raw DIR``: rows ``model, method, element, value`` (top-1 % with every
  test image moved by the group element; ``model`` is ``efficientnet`` or ``conse``).

``equirl bench tables`` calls :func:`cnn_table` and :func:`pretrained_table` (styles ``vision-cnn`` and
``vision-pretrained`` of ``docs/benchmark/tables.yml``), and :func:`pretrained_plot` for the figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from equirl import rawresults

__all__ = ["cnn_table", "pretrained_table", "pretrained_plot"]

CNN_STAGES = ("zero-shot", "finetuned")
LAMBDA_METHOD = "λ-equitune"
"""The method name ``vision_cnn.py`` gives λ-equitune, whose first stage is fitted on labelled moved images."""


def _one(folders: Sequence[str | Path], what: str) -> Path:
    if len(folders) != 1:
        raise ValueError(f"A {what} table is built from one raw folder, got {list(map(str, folders))}.")
    return Path(folders[0])


def cnn_table(folders: Sequence[str | Path], root: str | Path = ".", seeds: Sequence[int] | None = None) -> str:
    """Markdown table of ``vision_cnn.py --raw`` folders taken together: a row per method, zero-shot and finetuned
    top-1 (%).

    With several seeds each cell is the mean ± sample standard deviation (ddof 1) over the seeds; ``seeds`` keeps
    only those. Methods that were not finetuned show ``-``. A note per folder says what the cells are, n, the
    plain CNN's upright accuracy and the provenance. ``ValueError`` if two folders hold the same seed or were run
    with different settings (other than the seeds).
    """
    if not folders:
        raise ValueError("A vision-cnn table needs at least one raw folder.")
    keep = None if seeds is None else {str(s) for s in seeds}
    rows: list[dict[str, str]] = []
    metas = []
    for folder in folders:
        r, meta = rawresults.read_raw(Path(root) / folder)
        r = [x for x in r if x["stage"] == "upright" or keep is None or x["seed"] in keep]
        clash = {x["seed"] for x in r if x["stage"] != "upright"} & {x["seed"] for x in rows if x["stage"] != "upright"}
        if clash:
            raise ValueError(f"{folder} repeats seed(s) {sorted(clash)} of another folder of the same table.")
        rows += [x for x in r if x["stage"] != "upright"]
        metas.append((folder, meta, [float(x["value"]) for x in r if x["stage"] == "upright"]))
    settings = [{k: v for k, v in m["settings"].items() if k != "seeds"} for _, m, _ in metas]
    if any(st != settings[0] for st in settings):
        raise ValueError(f"The folders {list(map(str, folders))} were run with different settings.")
    used = sorted({int(r["seed"]) for r in rows})
    if not used:
        raise ValueError(f"{list(map(str, folders))} hold no results for seeds {seeds}.")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    st = settings[0]
    lines = ["| method | zero-shot | finetuned |", "|---|---|---|"]
    for m in methods:
        cells = [rawresults.mean_sd([float(r["value"]) for r in rows if (r["method"], r["stage"]) == (m, s)])
                 for s in CNN_STAGES]  # fmt: skip
        label = f"{m} (λ-net fitted on {st['n_lambda']:,} moved images)" if m == LAMBDA_METHOD else m
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    what = (
        f"top-1 % on {st['n_test']} {st['dataset_name']} test images, each moved by a random element of "
        f"{st['group']}; " + rawresults.spread_words(len(used), "seed", used)
    )
    if LAMBDA_METHOD in methods:
        what += (
            f"; {LAMBDA_METHOD}'s zero-shot column is after fitting its λ-net for {st['lambda_steps']} steps on "
            f"{st['n_lambda']:,} labelled moved images (backbone frozen), so it is not zero-shot: the other methods "
            "see no moved image before finetuning"
        )
    notes = []
    for i, (folder, meta, upright) in enumerate(metas):
        extra = f"plain CNN on the upright test set: {upright[0]:.2f}" if upright else ""
        notes.append(rawresults.note(folder, meta, what if i == 0 else "the same settings", extra))
    return "\n".join(lines) + "\n\n" + " ".join(notes) + "\n"


def pretrained_table(folders: Sequence[str | Path], model: str, root: str | Path = ".") -> str:
    """Markdown table of one ``vision_pretrained.py --raw`` folder for ``model`` (``efficientnet`` or ``conse``).

    A row per method, a column per group element (top-1 % with every test image moved by it) and their mean.
    """
    folder = _one(folders, "vision-pretrained")
    rows, meta = rawresults.read_raw(Path(root) / folder)
    rows = [r for r in rows if r["model"] == model]
    if not rows:
        raise ValueError(f"{folder} holds no results for model {model!r}; expected 'efficientnet' or 'conse'.")
    elements = list(dict.fromkeys(r["element"] for r in rows))
    lines = ["| method | " + " | ".join(elements) + " | mean |", "|---" * (len(elements) + 2) + "|"]
    for m in dict.fromkeys(r["method"] for r in rows):
        v = [float(next(r["value"] for r in rows if (r["method"], r["element"]) == (m, e))) for e in elements]
        lines.append(f"| {m} | " + " | ".join(f"{a:.1f}" for a in v) + f" | {sum(v) / len(v):.1f} |")
    st = meta["settings"]
    what = f"top-1 % on {st[f'n_{model}']} crops moved by each element of {st['group']}; one deterministic run"
    return "\n".join(lines) + "\n\n" + rawresults.note(folder, meta, what) + "\n"


PRETRAINED_PANELS = (("efficientnet", "EfficientNet-Lite0, ImageNet top-1"), ("conse", "ConSE zero-shot, free text"))
"""The panels of :func:`pretrained_plot`: ``(model in the raw rows, title)``."""


def pretrained_plot(folders: Sequence[str | Path], path: str | Path, root: str | Path = ".") -> Path:
    """Bar chart of one ``vision_pretrained.py --raw`` folder as a PNG at ``path``: a panel per model, a group of
    bars per group element (top-1 % with every test image moved by it), a bar per method. Returns ``path``."""
    from equirl.extras import require
    from equirl.figures import save_png

    matplotlib = require("matplotlib", "plots", "Plotting the pretrained-vision results")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = _one(folders, "vision-pretrained")
    rows, meta = rawresults.read_raw(Path(root) / folder)
    group = meta["settings"]["group"]
    fig, axes = plt.subplots(1, len(PRETRAINED_PANELS), figsize=(11, 3.6), sharey=True, squeeze=False)
    for ax, (model, title) in zip(axes[0], PRETRAINED_PANELS, strict=True):
        mine = [r for r in rows if r["model"] == model]
        if not mine:
            raise ValueError(f"{folder} holds no results for model {model!r}; expected 'efficientnet' and 'conse'.")
        elements = list(dict.fromkeys(r["element"] for r in mine))
        methods = list(dict.fromkeys(r["method"] for r in mine))
        width = 0.8 / len(methods)
        for j, m in enumerate(methods):
            values = [float(next(r["value"] for r in mine if (r["method"], r["element"]) == (m, e))) for e in elements]
            ax.bar([i + (j - (len(methods) - 1) / 2) * width for i in range(len(elements))], values, width, label=m)
        ax.set_xticks(range(len(elements)), elements)
        ax.set_xlabel(f"group element applied to the test images ({group})")
        ax.set_title(title, fontsize=9)
        ax.set_ylim(0, 105)
    axes[0][0].set_ylabel("top-1 (%)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_png(fig, path, dpi=130)
