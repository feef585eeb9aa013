"""Tables of the vision experiments, built from their committed raw results (:mod:`equirl.rawresults`).

- ``scripts/vision_cnn.py --raw DIR``: rows ``seed, method, stage, value`` (top-1 % on the moved test
  set; ``stage`` is ``zero-shot``, ``finetuned`` or ``upright``, the plain CNN on the upright test set).
- ``scripts/vision_pretrained.py --raw DIR``: rows ``model, method, element, value`` (top-1 % with every
  test image moved by the group element; ``model`` is ``efficientnet`` or ``conse``).

``equirl bench tables`` calls :func:`cnn_table` and :func:`pretrained_table` (styles ``vision-cnn`` and
``vision-pretrained`` of ``docs/benchmark/tables.yml``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from equirl import rawresults

__all__ = ["cnn_table", "pretrained_table"]

CNN_STAGES = ("zero-shot", "finetuned")


def _one(folders: Sequence[str | Path], what: str) -> Path:
    if len(folders) != 1:
        raise ValueError(f"A {what} table is built from one raw folder, got {list(map(str, folders))}.")
    return Path(folders[0])


def cnn_table(folders: Sequence[str | Path], root: str | Path = ".", seeds: Sequence[int] | None = None) -> str:
    """Markdown table of one ``vision_cnn.py --raw`` folder: a row per method, zero-shot and finetuned top-1 (%).

    With several seeds each cell is the mean ± sample standard deviation (ddof 1) over the seeds; ``seeds``
    keeps only those. Methods that were not finetuned show ``-``. A note under the table says n, the
    plain CNN's upright accuracy and the provenance.
    """
    folder = _one(folders, "vision-cnn")
    rows, meta = rawresults.read_raw(Path(root) / folder)
    keep = None if seeds is None else {str(s) for s in seeds}
    rows = [r for r in rows if keep is None or r["seed"] in keep or r["stage"] == "upright"]
    used = sorted({int(r["seed"]) for r in rows if r["stage"] != "upright"})
    if not used:
        raise ValueError(f"{folder} holds no results for seeds {seeds}.")
    methods = list(dict.fromkeys(r["method"] for r in rows if r["stage"] != "upright"))
    lines = ["| method | zero-shot | finetuned |", "|---|---|---|"]
    for m in methods:
        cells = [rawresults.mean_sd([float(r["value"]) for r in rows if (r["method"], r["stage"]) == (m, s)])
                 for s in CNN_STAGES]  # fmt: skip
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    upright = [float(r["value"]) for r in rows if r["stage"] == "upright"]
    st = meta["settings"]
    what = (
        f"top-1 % on {st['n_test']} {st['dataset_name']} test images, each moved by a random element of "
        f"{st['group']}; " + rawresults.spread_words(len(used), "seed", used)
    )
    extra = f"plain CNN on the upright test set: {upright[0]:.2f}" if upright else ""
    return "\n".join(lines) + "\n\n" + rawresults.note(folder, meta, what, extra) + "\n"


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
