"""SCAN (Lake & Baroni, 2018), generated from its grammar, with the published splits.

SCAN maps navigation commands to action sequences. The grammar (Lake & Baroni 2018, fig. 7)::

    C -> S and S | S after S | S
    S -> V twice | V thrice | V
    V -> D[1] opposite D[2] | D[1] around D[2] | D | U
    D -> U left | U right | turn left | turn right
    U -> walk | look | run | jump

where ``D[1] opposite D[2]`` means a direction phrase ``D`` split around the word ``opposite``
(``walk opposite left``, ``turn opposite right``). It generates exactly 20,910 commands. The
interpretation::

    [walk] = I_WALK   [look] = I_LOOK   [run] = I_RUN   [jump] = I_JUMP
    [turn left] = I_TURN_LEFT                 [u left] = I_TURN_LEFT [u]
    [turn opposite left] = I_TURN_LEFT x2     [u opposite left] = I_TURN_LEFT x2 [u]
    [turn around left] = I_TURN_LEFT x4       [u around left] = (I_TURN_LEFT [u]) x4
    [x twice] = [x] x2    [x thrice] = [x] x3
    [x1 and x2] = [x1] [x2]                   [x1 after x2] = [x2] [x1]

(the same with ``right``). Splits, by the published rules and sizes:

- ``simple``: every command once (20,910; the published random 80/20 split is a random
  partition of this set).
- ``addprim_jump_train`` / ``addprim_jump_test`` (Lake & Baroni 2018, "Add-Jump"): train is
  every command without ``jump`` (13,203) plus ``jump`` alone repeated 1,467 times (14,670
  lines, as in the published ``tasks_train_addprim_jump.txt``); test is every other command
  containing ``jump`` (7,706).
- ``template_around_right_train`` / ``template_around_right_test`` (Loula et al. 2018): train
  is every command without ``around right`` (15,225); test is every command with ``U around
  right`` for a primitive verb ``U`` and without ``turn around right`` (4,476). The 1,209
  commands containing ``turn around right`` are in neither.

Everything here is plain Python (no torch): ``load_split(name) -> list[(command, actions)]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

__all__ = [
    "VERBS",
    "DIRECTIONS",
    "SPLITS",
    "ADDPRIM_JUMP_REPEATS",
    "all_commands",
    "interpret",
    "load_split",
    "split_sizes",
    "RESULT_ROWS",
    "results_table",
    "split_notes",
    "table",
]

VERBS = ("walk", "look", "run", "jump")
"""The primitive verbs ``U``."""

DIRECTIONS = ("left", "right")

ADDPRIM_JUMP_REPEATS = 1467
"""How many times ``jump`` alone appears in the published Add-Jump train file: 14,670 lines
minus the 13,203 jump-free commands."""

SPLITS = (
    "simple",
    "addprim_jump_train",
    "addprim_jump_test",
    "template_around_right_train",
    "template_around_right_test",
)
"""Names accepted by :func:`load_split`."""

_ACTION = {"walk": "I_WALK", "look": "I_LOOK", "run": "I_RUN", "jump": "I_JUMP"}
_TURN = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}


def _v_phrases() -> list[str]:
    """The 34 ``V`` phrases, in grammar order."""
    firsts = [*VERBS, "turn"]
    out: list[str] = []
    for u in firsts:
        for d in DIRECTIONS:
            out.append(f"{u} opposite {d}")
    for u in firsts:
        for d in DIRECTIONS:
            out.append(f"{u} around {d}")
    for u in firsts:
        for d in DIRECTIONS:
            out.append(f"{u} {d}")
    out.extend(VERBS)
    return out


def _s_phrases() -> list[str]:
    """The 102 ``S`` phrases."""
    out: list[str] = []
    for v in _v_phrases():
        out.extend([f"{v} twice", f"{v} thrice", v])
    return out


@lru_cache(maxsize=1)
def all_commands() -> tuple[str, ...]:
    """Every SCAN command once (20,910), in grammar order: ``S``, then ``S and S``, then ``S after S``."""
    s = _s_phrases()
    out = list(s)
    for conj in ("and", "after"):
        out.extend(f"{a} {conj} {b}" for a in s for b in s)
    return tuple(out)


def _interpret_v(words: list[str]) -> list[str]:
    if len(words) == 1:
        if words[0] not in _ACTION:
            raise ValueError(f"not a SCAN verb phrase: {' '.join(words)!r}")
        return [_ACTION[words[0]]]
    if len(words) == 2:
        u, d = words
        return [_TURN[d]] if u == "turn" else [_TURN[d], _ACTION[u]]
    if len(words) == 3:
        u, mode, d = words
        turn = _TURN[d]
        step = [turn] if u == "turn" else [turn, _ACTION[u]]
        if mode == "opposite":
            return [turn, turn] if u == "turn" else [turn, turn, _ACTION[u]]
        if mode == "around":
            return step * 4
    raise ValueError(f"not a SCAN verb phrase: {' '.join(words)!r}")


def _interpret_s(words: list[str]) -> list[str]:
    if words and words[-1] == "twice":
        return _interpret_v(words[:-1]) * 2
    if words and words[-1] == "thrice":
        return _interpret_v(words[:-1]) * 3
    return _interpret_v(words)


def interpret(command: str) -> str:
    """The action sequence of a SCAN command, space-separated (``"jump twice" -> "I_JUMP I_JUMP"``)."""
    words = command.split()
    for conj in ("and", "after"):
        if conj in words:
            i = words.index(conj)
            a, b = _interpret_s(words[:i]), _interpret_s(words[i + 1 :])
            return " ".join(a + b if conj == "and" else b + a)
    return " ".join(_interpret_s(words))


def _has_around_right_primitive(words: list[str]) -> bool:
    """Whether ``U around right`` occurs for a primitive verb ``U``."""
    return any(words[i] in VERBS and words[i + 1 : i + 3] == ["around", "right"] for i in range(len(words) - 2))


def _select(name: str) -> list[str]:
    cmds = all_commands()
    if name == "simple":
        return list(cmds)
    if name == "addprim_jump_train":
        return [c for c in cmds if "jump" not in c.split()] + ["jump"] * ADDPRIM_JUMP_REPEATS
    if name == "addprim_jump_test":
        return [c for c in cmds if "jump" in c.split() and c != "jump"]
    if name == "template_around_right_train":
        return [c for c in cmds if "around right" not in c]
    if name == "template_around_right_test":
        return [c for c in cmds if _has_around_right_primitive(c.split()) and "turn around right" not in c]
    raise ValueError(f"Unknown SCAN split {name!r}; expected one of {SPLITS}.")


def load_split(name: str) -> list[tuple[str, str]]:
    """The SCAN split ``name`` (one of :data:`SPLITS`) as ``(command, actions)`` string pairs.

    Order is deterministic (grammar order; Add-Jump train ends with the ``jump`` repeats).
    Shuffle before training.
    """
    return [(c, interpret(c)) for c in _select(name)]


def split_sizes() -> dict[str, int]:
    """Number of lines of every split (``simple`` 20,910; Add-Jump 14,670 / 7,706; Around-Right 15,225 / 4,476)."""
    return {name: len(_select(name)) for name in SPLITS}


# -- the experiment's table (scripts/scan.py), from its raw results (equirl.rawresults) -------------------------
RESULT_ROWS = (
    ("plain", "zero-shot"),
    ("equitune", "zero-shot"),
    ("equizero", "zero-shot"),
    ("lambda", "zero-shot"),
    ("plain", "finetuned"),
    ("equitune", "finetuned"),
    ("equizero", "finetuned"),
    ("lambda", "finetuned"),
)
"""The table's rows: (method, stage)."""
TRAIN_ACCURACY = "pretrained-train-subset"
"""The ``stage`` of the pretrained model's exact match on 2,000 train commands."""
VIEW_RATE = "in-distribution-view-rate"
"""The ``stage`` of the share of test commands with a view ``g·x``, ``g ≠ e``, in the train set (method ``-``)."""


def results_table(rows: Sequence[Mapping[str, object]]) -> str:
    """Markdown table of ``scripts/scan.py``'s raw rows (``split, seed, method, stage, value``, value in %).

    A row per (method, stage) of :data:`RESULT_ROWS`, a column per split: the mean over seeds and, with
    several seeds, ± the sample standard deviation (ddof 1), then ``(n=...)``.
    """
    from equirl import rawresults

    splits = list(dict.fromkeys(str(r["split"]) for r in rows))
    lines = ["| method | stage | " + " | ".join(splits) + " |", "|---|---|" + "---|" * len(splits)]

    def values(split: str, method: str, stage: str) -> list[float]:
        return [float(str(r["value"])) for r in rows if (r["split"], r["method"], r["stage"]) == (split, method, stage)]

    for method, stage in RESULT_ROWS:
        cells = []
        for split in splits:
            v = values(split, method, stage)
            cells.append(f"{rawresults.mean_sd(v, digits=1)} (n={len(v)})" if v else "-")
        name = "λ-equitune" if method == "lambda" else method
        lines.append(f"| {name} | {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def split_notes(rows: Sequence[Mapping[str, object]]) -> str:
    """Per split of the raw rows: the share of test commands with an in-distribution view and the pretrained
    model's exact match on 2,000 train commands (mean over seeds), in one line."""
    from equirl import rawresults

    def values(split: str, method: str, stage: str) -> list[float]:
        return [float(str(r["value"])) for r in rows if (r["split"], r["method"], r["stage"]) == (split, method, stage)]

    return "; ".join(
        f"{split}: {rawresults.mean_sd(values(split, '-', VIEW_RATE)[:1], 1)}% of test commands have an "
        f"in-distribution view, the pretrained model's exact match on 2,000 train commands is "
        f"{rawresults.mean_sd(values(split, 'plain', TRAIN_ACCURACY), 1)}%"
        for split in dict.fromkeys(str(r["split"]) for r in rows)
    )


def table(folders: Sequence[str | Path], root: str | Path = ".") -> str:
    """The table of the ``scripts/scan.py --raw`` folders taken together (:func:`results_table`), with a note per
    folder (what was measured, the settings, n, :func:`split_notes` and the provenance); a split measured in two
    folders is refused."""
    from equirl import rawresults

    rows: list[dict[str, str]] = []
    notes = []
    for folder in folders:
        r, meta = rawresults.read_raw(Path(root) / folder)
        clash = {x["split"] for x in r} & {x["split"] for x in rows}
        if clash:
            raise ValueError(f"{folder} repeats the split(s) {sorted(clash)} of another folder of the same table.")
        rows += r
        st = meta["settings"]
        seeds = sorted({int(x["seed"]) for x in r if x["stage"] in ("zero-shot", "finetuned")})
        test = f"{st['eval_subset']} random test commands" if st["eval_subset"] else "the full test split"
        what = (
            f"exact match (%) with greedy decoding on {test}; pretrain {st['pretrain_epochs']} epochs, "
            f"λ {st['lambda_epochs']}, finetune {st['finetune_epochs']}; "
            + rawresults.spread_words(len(seeds), "seed", seeds)
        )
        notes.append(rawresults.note(folder, meta, what, split_notes(r)))
    return results_table(rows) + "\n" + " ".join(notes) + "\n"
