"""Raw results of an experiment, committed so that its tables can be rebuilt without rerunning it.

One folder per experiment run (``--raw DIR`` of ``scripts/vision_cnn.py``, ``vision_pretrained.py``,
``fairness.py``, ``scan.py``, ``cartpole.py``, ``gridworld_speed.py``, ``discover_timing.py``,
``verify_calibration.py``, ``symmetry_worked_example.py``, ``threads_speed.py``) holding two files:

- ``results.csv``: long format, one row per measured number. The columns name what was measured
  (for example ``seed, method, stage, metric``) and end with ``value``; every row has every column.
  Floats are written with ``repr`` (they read back bit for bit).
- ``meta.json``: ``command`` (the exact command line), ``code_version`` (``git describe --always
  --dirty`` of the checkout), ``machine``, ``date`` (UTC), ``seconds`` (wall-clock of the run) and the
  experiment's ``settings``.

The folder is written under a temporary name and renamed into place; an existing folder is refused
unless ``overwrite`` (then the old one is replaced only once the new one is complete).
The table renderers (``table(...)`` functions of the adapters, dispatched by ``equirl bench tables``)
read these folders back with :func:`read_raw`. Standard library only.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "RESULTS",
    "META",
    "NOTE_START",
    "code_version",
    "machine",
    "device_words",
    "provenance",
    "check_new",
    "add_raw_arguments",
    "start_raw",
    "write_raw",
    "read_raw",
    "read_meta",
    "mean_sd",
    "spread_words",
    "note",
]

RESULTS = "results.csv"
META = "meta.json"
NOTE_START = "*Raw results: "
"""How the note under every table built from a raw results folder begins (:func:`note`)."""


def code_version() -> str:
    """``git describe --always --dirty`` of the package's checkout (``-dirty``: uncommitted changes), or ``unknown``."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        )  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine(device: str = "CPU") -> str:
    """The machine in words: architecture, CPU count, OS, Python and torch versions and ``device``."""
    try:
        import torch

        torch_version = f", torch {torch.__version__}"
    except ImportError:  # pragma: no cover - torch is a core dependency
        torch_version = ""
    cpu = " ".join(x for x in (platform.machine(), platform.processor()) if x)
    return f"{cpu}, {os.cpu_count()} cpus, {platform.system()}; python {platform.python_version()}{torch_version}, {device}"


def device_words(device: str) -> str:
    """``CPU`` for ``"cpu"``, else the torch device and the accelerator's name, e.g. ``cuda (NVIDIA H200)``."""
    if device == "cpu":
        return "CPU"
    import torch

    return f"{device} ({torch.cuda.get_device_name(device)})" if device.startswith("cuda") else device


def provenance(device: str = "CPU", command: Sequence[str] | None = None) -> dict[str, Any]:
    """``command`` (default ``python`` + ``sys.argv``), ``code_version``, ``machine`` and ``date`` (UTC), taken now.

    Take it when the run starts (the code that runs is the code checked out then) and pass it to :func:`write_raw`.
    """
    argv = list(command) if command is not None else ["python", *sys.argv]
    return {
        "command": shlex.join(argv),
        "code_version": code_version(),
        "machine": machine(device),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def check_new(folder: str | Path, overwrite: bool = False, device: str = "CPU") -> dict[str, Any]:
    """Raise ``FileExistsError`` if ``folder`` exists and ``overwrite`` is false; else return :func:`provenance`.

    Call it before a long run, so that a run that would be refused at the end is refused at the start.
    """
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise FileExistsError(
            f"{folder} already exists; choose another folder for the raw results or pass --overwrite to replace it."
        )
    return provenance(device)


def add_raw_arguments(parser: Any, what: str = "replace an existing --raw folder") -> None:
    """Add a script's ``--raw DIR`` (write the raw results to this new folder) and ``--overwrite`` (``what`` it
    allows) to the ``argparse`` parser ``parser``."""
    parser.add_argument(
        "--raw",
        default=None,
        metavar="DIR",
        help="also write the raw results (results.csv + meta.json) to this new folder",
    )
    parser.add_argument("--overwrite", action="store_true", help=what)


def start_raw(parser: Any, args: Any, device: str = "CPU") -> dict[str, Any] | None:
    """The provenance of a run started now (:func:`check_new`) when ``args.raw`` names a folder, else None.

    An existing ``--raw`` folder without ``--overwrite`` ends the command through ``parser.error`` (exit status 2,
    the message naming the folder) before anything runs.
    """
    if not args.raw:
        return None
    try:
        return check_new(args.raw, args.overwrite, device)
    except FileExistsError as err:
        parser.error(str(err))
        raise  # parser.error exits; this line only tells type checkers so


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        raise ValueError("No result rows to write: an experiment's raw results need at least one row.")
    columns = list(rows[0])
    if columns[-1] != "value":
        raise ValueError(f"The last column of a raw results row must be 'value', got columns {columns}.")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for i, row in enumerate(rows):
        if list(row) != columns:
            raise ValueError(f"Row {i} has columns {list(row)}, expected {columns} (every row the same columns).")
        writer.writerow([repr(v) if isinstance(v, float) else v for v in row.values()])
    return buf.getvalue()


def write_raw(
    folder: str | Path,
    rows: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any],
    *,
    started: Mapping[str, Any] | None,
    seconds: float | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``rows`` to ``folder/results.csv`` and the provenance to ``folder/meta.json``; returns ``folder``.

    :param rows: dicts with the same keys in the same order, the last one ``value``.
    :param settings: the experiment's settings (JSON-serialisable), stored under ``settings``.
    :param seconds: wall-clock time of the run.
    :param started: :func:`provenance` (or :func:`check_new`) taken when the run started (the code that ran is
        the code checked out then); ``None`` only where the run did not ask for raw results at its start, and
        then it is taken now.
    :param overwrite: replace an existing ``folder`` (otherwise ``FileExistsError``).
    """
    folder = Path(folder)
    check_new(folder, overwrite)
    meta = {
        **(dict(started) if started is not None else provenance()),
        "seconds": None if seconds is None else round(seconds, 1),
        "settings": dict(settings),
    }
    text = _csv_text(rows)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        (tmp / RESULTS).write_text(text)
        (tmp / META).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
        if folder.exists():  # overwrite: move the old folder aside, then the new one into place
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            folder.replace(old)
            tmp.replace(folder)
            shutil.rmtree(old)
        else:
            tmp.replace(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def read_meta(folder: str | Path) -> dict[str, Any]:
    """``folder/meta.json`` as a dict."""
    path = Path(folder) / META
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {folder} is not a raw results folder written by --raw.")
    return dict(json.loads(path.read_text()))


def read_raw(folder: str | Path) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """``(rows, meta)`` of a raw results folder; each row maps column -> text (``float(row['value'])``)."""
    path = Path(folder) / RESULTS
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {folder} is not a raw results folder written by --raw.")
    with path.open(newline="") as f:
        rows = [dict(r) for r in csv.DictReader(f)]
    return rows, read_meta(folder)


# -- rendering helpers shared by the table functions ------------------------------------------------------------
def mean_sd(values: Sequence[float], digits: int = 2) -> str:
    """``"mean ± sd"`` with ``digits`` decimals, sd the sample standard deviation (ddof 1); the mean alone for
    one value and ``-`` for none."""
    if not values:
        return "-"
    m = statistics.fmean(values)
    if len(values) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def spread_words(n: int, unit: str, ids: Sequence[object] = ()) -> str:
    """What a cell of :func:`mean_sd` is, e.g. ``n = 3 seeds (0, 1, 2): mean ± sample standard deviation
    (ddof 1)``, or ``n = 1 seed (0): one value, no spread``."""
    which = f" ({', '.join(map(str, ids))})" if ids else ""
    if n == 1:
        return f"n = 1 {unit}{which}: one value, no spread"
    return f"n = {n} {unit}s{which}: mean ± sample standard deviation (ddof 1)"


def note(folder: str | Path, meta: Mapping[str, Any], what: str, extra: str = "") -> str:
    """The one-line note under a table built from the raw results ``folder``: what the cells are, then the
    exact command, code version, machine, date and wall-clock time from ``meta``, and ``extra``."""
    secs = meta.get("seconds")
    parts = [
        f"{NOTE_START}`{folder}` ({what})",
        f"`{meta['command']}`",
        f"code {meta['code_version']}",
        str(meta["machine"]),
        str(meta["date"]),
        "" if secs is None else f"{secs:.0f} s wall-clock",
        extra,
    ]
    return "; ".join(p for p in parts if p) + ".*"
