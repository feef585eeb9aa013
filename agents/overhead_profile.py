"""Where the symmetrisation's time goes: tensor-operation counts and a one-observation ``predict`` profile.

The library of ``scripts/profile_overhead.py`` (docs/overhead.md, "Where a one-observation `predict` goes" and
"Where a gradient step goes"). Two measurements, on the cases and models of :mod:`equirl.agents.overhead`
(:func:`~equirl.agents.overhead.prepared_models`: every method plus the same-arithmetic references on one
replay buffer):

- ``ops``: the tensor operations dispatched by one ``model.train(gradient_steps=1, batch_size=B)`` (replay sample,
  target forward, online forward and backward, Adam) and by one ``model.predict`` on one observation, counted by
  :class:`OpCounter` (a ``TorchDispatchMode``: every ATen call below autograd, views and backward included), per
  operation name. Deterministic: the same code gives the same counts on any machine.
- ``time``: one-observation ``predict`` taken apart, in µs of process CPU time per call: the whole
  ``model.predict``, SB3's ``policy.set_training_mode(False)``, ``policy.obs_to_tensor`` and the Q-network's
  forward under ``no_grad``. Every (method, section) is one block of ``calls`` calls per round, the blocks of a
  round in a shuffled order, so that load changes hit every method; the load average is recorded with every block.

Rows (:data:`FIELDS`, the folder format of :mod:`equirl.rawresults`): ``kind`` (``ops`` / ``time``), ``case``,
``G``, ``method`` (a method of :data:`~equirl.agents.overhead.METHODS_TIMED`, ``reference`` or
``reference-lambda``), ``measure`` (``train`` / ``predict`` for ``ops``, ``predict1`` for ``time``), ``section``
(an ATen operation for ``ops``, one of :data:`SECTIONS` for ``time``), ``round`` (0 for ``ops``), ``load1`` (the
1-minute load average; empty for ``ops``) and ``value`` (a count, or µs per call). :func:`ops_table`,
:func:`op_names_table` and :func:`predict_profile_table` render the committed folders (``equirl bench tables``).
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from equirl.agents import overhead
from torch.utils._python_dispatch import TorchDispatchMode

from equirl import rawresults

__all__ = [
    "FIELDS",
    "SECTIONS",
    "VARIANTS",
    "OpCounter",
    "count_ops",
    "measure_ops",
    "measure_predict_time",
    "ops_table",
    "op_names_table",
    "predict_profile_table",
]

FIELDS = ("kind", "case", "G", "method", "measure", "section", "round", "load1", "value")
"""Columns of ``results.csv``."""
VARIANTS = ("plain", overhead.REFERENCE, "equitune", "equizero", "lambda", overhead.LAMBDA_REFERENCE)
"""The counted variants, in table order: the references are plain DQN at ``|G|·B`` (``|G|`` observations for
``predict``), λ-equitune's own with its λ-net."""
SECTIONS = ("predict", "set_training_mode", "obs_to_tensor", "q_net")
"""The timed parts of one-observation ``predict``."""
_SECTION_TITLES = {
    "predict": "whole `model.predict`",
    "set_training_mode": "`policy.set_training_mode(False)`",
    "obs_to_tensor": "`policy.obs_to_tensor`",
    "q_net": "the Q-network's forward (`no_grad`)",
}
_COLUMN = {"lambda": "λ", overhead.LAMBDA_REFERENCE: "λ's own reference"}


class OpCounter(TorchDispatchMode):
    """Counts every ATen operation dispatched while active (``with OpCounter() as c: ...``), by name in
    ``c.counts`` (``aten.addmm``...; views, in-place and backward operations included). The operations still run."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.counts[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def count_ops(fn: Callable[[], object]) -> Counter[str]:
    """The ATen operations ``fn()`` dispatches, by name (:class:`OpCounter`)."""
    with OpCounter() as counter:
        fn()
    return counter.counts


def _cases(names: Iterable[str] | None) -> list[overhead.Case]:
    names = list(names) if names is not None else list(overhead.CASES)
    unknown = [n for n in names if n not in overhead.CASES]
    if unknown:
        raise ValueError(f"Unknown case(s) {unknown}; expected some of {list(overhead.CASES)}.")
    return [overhead.CASES[n] for n in names]


def _row(kind: str, case: str, G: int, method: str, measure: str, section: str, rnd: int, load1: Any,
         value: Any) -> dict[str, Any]:  # fmt: skip
    return dict(zip(FIELDS, (kind, case, G, method, measure, section, rnd, load1, value), strict=True))


def measure_ops(cases: Iterable[str] | None = None, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """``ops`` rows: per case (default all of :data:`~equirl.agents.overhead.CASES`) and variant of :data:`VARIANTS`,
    the operations of one ``model.train(1, B)`` (``|G|·B`` for the references) and of one ``model.predict`` on one
    observation (``|G|`` for the references), each counted after two warm-up calls (caches filled, Adam's state
    made)."""
    rows: list[dict[str, Any]] = []
    for case in _cases(cases):
        models, B, G, obs = overhead.prepared_models(case, "cpu")
        log(f"counting {case.name} (|G| = {G}, B = {B})")
        for variant in VARIANTS:
            model = models["plain" if variant == overhead.REFERENCE else variant]
            reference = variant in (overhead.REFERENCE, overhead.LAMBDA_REFERENCE)
            batch, x = (G * B, obs[:G]) if reference else (B, obs[0])
            fns: dict[str, Callable[[], object]] = {
                "train": partial(model.train, gradient_steps=1, batch_size=batch),
                "predict": partial(model.predict, x, deterministic=True),
            }
            for measure, fn in fns.items():
                fn()
                fn()
                counts = count_ops(fn)
                rows += [_row("ops", case.name, G, variant, measure, op, 0, "", n) for op, n in sorted(counts.items())]
    return rows


def measure_predict_time(
    cases: Iterable[str] | None = ("cartpole-C2",),
    rounds: int = 30,
    calls: int = 200,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """``time`` rows: per case, method (:data:`~equirl.agents.overhead.METHODS_TIMED`) and section
    (:data:`SECTIONS`) of one-observation ``predict``, ``rounds`` blocks of ``calls`` calls, one block per
    (method, section) per round in an order shuffled with ``seed``; ``value`` is µs of process CPU time per call."""
    if rounds < 1 or calls < 1:
        raise ValueError(f"rounds and calls must be >= 1, got rounds={rounds}, calls={calls}.")
    rows: list[dict[str, Any]] = []
    for case in _cases(cases):
        models, _, G, obs = overhead.prepared_models(case, "cpu")
        x = obs[0]
        blocks: list[tuple[str, str, Callable[[], object]]] = []
        for m in overhead.METHODS_TIMED:
            policy = models[m].policy
            x_t = policy.obs_to_tensor(x)[0]

            def q_net(policy: Any = policy, x_t: torch.Tensor = x_t) -> object:
                with torch.no_grad():
                    return policy.q_net(x_t)

            fns: dict[str, Callable[[], object]] = {
                "predict": partial(models[m].predict, x, deterministic=True),
                "set_training_mode": partial(policy.set_training_mode, False),
                "obs_to_tensor": partial(policy.obs_to_tensor, x),
                "q_net": q_net,
            }
            blocks += [(m, s, fns[s]) for s in SECTIONS]
        for _, _, fn in blocks:  # warm-up: caches, the evaluation mode
            for _ in range(3):
                fn()
        log(f"timing {case.name}: {rounds} rounds of {len(blocks)} blocks of {calls} calls")
        rng = random.Random(seed)
        for rnd in range(rounds):
            order = list(blocks)
            rng.shuffle(order)
            for m, section, fn in order:
                load = overhead._load1()
                start = time.process_time()
                for _ in range(calls):
                    fn()
                us = (time.process_time() - start) / calls * 1e6
                rows.append(_row("time", case.name, G, m, "predict1", section, rnd, load, round(us, 3)))
    return rows


# -- tables from the committed raw folders --------------------------------------------------------------------
def _read(folders: Sequence[str | Path], root: str | Path) -> tuple[list[dict[str, str]], dict[str, Any], str]:
    if len(folders) != 1:
        raise ValueError(f"An overhead profile table is built from one raw folder, got {list(map(str, folders))}.")
    rows, meta = rawresults.read_raw(Path(root) / folders[0])
    missing = [f for f in FIELDS if rows and f not in rows[0]]
    if missing:
        raise ValueError(f"{folders[0]} is not a profile_overhead.py raw folder: its rows lack {missing}.")
    return rows, meta, str(folders[0])


def _check_measure(measure: str) -> None:
    if measure not in ("train", "predict"):
        raise ValueError(f"measure must be 'train' or 'predict', got {measure!r}.")


def _op_totals(rows: Sequence[dict[str, Any]], measure: str) -> tuple[Counter[tuple[str, str]], dict[str, str]]:
    """``({(case, variant): total operations}, {case: |G|})`` of the ``ops`` rows of one ``measure``."""
    _check_measure(measure)
    total: Counter[tuple[str, str]] = Counter()
    G: dict[str, str] = {}
    for r in rows:
        if r["kind"] == "ops" and r["measure"] == measure:
            total[(str(r["case"]), str(r["method"]))] += int(r["value"])
            G[str(r["case"])] = str(r["G"])
    if not total:
        raise ValueError(f"No 'ops' rows for measure {measure!r}.")
    return total, G


def render_ops(rows: Sequence[dict[str, Any]], measure: str = "train", before: Sequence[dict[str, Any]] = ()) -> str:
    """Markdown table of the ``ops`` rows: total operations of one ``measure`` (``train`` / ``predict``) per case
    (rows, in :data:`~equirl.agents.overhead.CASES` order) and variant (columns, :data:`VARIANTS`). With the rows of
    an older commit as ``before``, a cell whose count changed reads ``before → after``."""
    total, G = _op_totals(rows, measure)
    old = _op_totals(before, measure)[0] if before else Counter()
    cases = sorted(G, key=lambda c: list(overhead.CASES).index(c) if c in overhead.CASES else 99)
    head = "| case | \\|G\\| | " + " | ".join(_COLUMN.get(v, v) for v in VARIANTS) + " |"
    lines = [head, "|---|---|" + "---|" * len(VARIANTS)]
    for c in cases:
        cells = []
        for v in VARIANTS:
            now = str(total[(c, v)]) if (c, v) in total else ""
            was = str(old[(c, v)]) if (c, v) in old else now
            cells.append(now if was == now else f"{was} → {now}")
        lines.append(f"| {c} | {G[c]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_op_names(rows: Sequence[dict[str, Any]], case: str, measure: str = "predict") -> str:
    """Markdown table of one case's ``ops`` rows by operation name (rows, most frequent in plain first) and method
    (columns: plain and the three methods) for one ``measure``, with the totals last."""
    _check_measure(measure)
    methods = overhead.METHODS_TIMED
    n: dict[tuple[str, str], int] = {}
    for r in rows:
        if r["kind"] == "ops" and r["measure"] == measure and r["case"] == case and r["method"] in methods:
            n[(str(r["section"]), str(r["method"]))] = int(r["value"])
    if not n:
        raise ValueError(f"No 'ops' rows for case {case!r} and measure {measure!r}.")
    ops = sorted({op for op, _ in n}, key=lambda op: (-sum(n.get((op, m), 0) for m in methods), op))
    lines = ["| operation | " + " | ".join(_COLUMN.get(m, m) for m in methods) + " |", "|---|" + "---|" * len(methods)]
    for op in ops:
        lines.append(f"| `{op.removeprefix('aten.')}` | " + " | ".join(str(n.get((op, m), "")) for m in methods) + " |")
    totals = [str(sum(v for (_, mm), v in n.items() if mm == m)) for m in methods]
    lines.append("| **total** | " + " | ".join(totals) + " |")
    return "\n".join(lines) + "\n"


def render_predict_profile(rows: Sequence[dict[str, Any]], case: str = "cartpole-C2") -> tuple[str, str]:
    """``(table, words)``: µs per call of each :data:`SECTIONS` (rows) and method (columns) for one case's ``time``
    rows, cells ``median (q1-q3)`` over rounds; ``words`` say n and the load (median, min-max)."""
    mine = [r for r in rows if r["kind"] == "time" and r["case"] == case]
    if not mine:
        raise ValueError(f"No 'time' rows for case {case!r}.")
    methods = [m for m in overhead.METHODS_TIMED if any(r["method"] == m for r in mine)]
    lines = [
        "| µs per call: median (quartiles) | " + " | ".join(_COLUMN.get(m, m) for m in methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    rounds = set()
    for s in SECTIONS:
        cells = []
        for m in methods:
            v = sorted(float(r["value"]) for r in mine if (r["method"], r["section"]) == (m, s))
            rounds.add(len(v))
            if not v:
                cells.append("")
                continue
            q = statistics.quantiles(v, n=4, method="inclusive") if len(v) > 1 else [v[0], v[0], v[0]]
            cells.append(f"{statistics.median(v):.1f} ({q[0]:.1f}-{q[2]:.1f})")
        lines.append(f"| {_SECTION_TITLES[s]} | " + " | ".join(cells) + " |")
    loads = [float(r["load1"]) for r in mine]
    n = "/".join(str(k) for k in sorted(rounds))
    words = (
        f"process CPU time per call, n = {n} rounds per cell, load average {statistics.median(loads):.1f} "
        f"({min(loads):.1f}-{max(loads):.1f})"
    )
    return "\n".join(lines) + "\n", words


def ops_table(folders: Sequence[str | Path], measure: str = "train", root: str | Path = ".") -> str:
    """:func:`render_ops` of one ``profile_overhead.py --raw`` folder, or of two (an older commit's first: cells
    ``before → after`` where the count changed), with the provenance note."""
    if len(folders) not in (1, 2):
        raise ValueError(f"An operations table is built from one raw folder (or two: before, after), got {folders}.")
    rows, meta, folder = _read(folders[-1:], root)
    what = (
        "ATen operations dispatched by one `model.train(1, B)`, references at |G|·B"
        if measure == "train"
        else "ATen operations dispatched by one `model.predict` on one observation, references on |G| observations"
    )
    extra, before = "", list[dict[str, str]]()
    if len(folders) == 2:
        before, old, _ = _read(folders[:1], root)
        package = old.get("settings", {}).get("package")
        imported = f" imported from `{package}`" if package else ""
        extra = f"before: `{folders[0]}`, code {old['code_version']}{imported}, `{old['command']}`"
    table = render_ops(rows, measure, before)
    return table + "\n" + rawresults.note(folder, meta, what + "; deterministic counts", extra) + "\n"


def op_names_table(folders: Sequence[str | Path], case: str, measure: str = "predict", root: str | Path = ".") -> str:
    """:func:`render_op_names` of one ``profile_overhead.py --raw`` folder, with its provenance note."""
    rows, meta, folder = _read(folders, root)
    what = "ATen operations of " + (
        "one `model.train(1, B)`" if measure == "train" else "one `model.predict` on one observation"
    )
    return render_op_names(rows, case, measure) + "\n" + rawresults.note(folder, meta, f"{case}: {what}") + "\n"


def predict_profile_table(folders: Sequence[str | Path], case: str = "cartpole-C2", root: str | Path = ".") -> str:
    """:func:`render_predict_profile` of one ``profile_overhead.py --raw`` folder, with its provenance note."""
    rows, meta, folder = _read(folders, root)
    table, words = render_predict_profile(rows, case)
    return table + "\n" + rawresults.note(folder, meta, f"{case}: {words}") + "\n"
