"""Test helpers for raw results folders (:mod:`equirl.rawresults`): write one by hand, run a script that writes one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from equirl import rawresults

ROOT = Path(__file__).resolve().parents[1]


def write_raw_folder(
    folder: Path,
    header: str,
    lines: list[str],
    settings: dict[str, object],
    command: str = "python x.py --raw f",
    seconds: float = 12.0,
) -> Path:
    """A raw folder written by hand: ``results.csv`` (``header`` and ``lines``) and a ``meta.json`` with ``command``,
    a fixed code version, machine and date, ``seconds`` and ``settings``. Returns ``folder``."""
    folder.mkdir(parents=True)
    (folder / rawresults.RESULTS).write_text(header + "\n" + "\n".join(lines) + "\n")
    meta = {"command": command, "code_version": "abc1234", "machine": "m, 2 cpus",
            "date": "2026-01-01 00:00 UTC", "seconds": seconds, "settings": settings}  # fmt: skip
    (folder / rawresults.META).write_text(json.dumps(meta))
    return folder


def run_script(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/<script>`` with ``args`` (one torch thread); fails the test unless it exits 0."""
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res
