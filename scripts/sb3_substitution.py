"""SB3's own DQN tests with each equivariant method substituted: the outcome counts per run.

    python scripts/sb3_substitution.py [--raw docs/results/sb3_substitution]

Runs ``pytest -m "" tests/sb3_upstream`` once per run (``native``: SB3's own policies; then every method of
``tests/sb3_upstream/conftest.py``), each selecting that run's cases only, and prints the table that docs/spaces.md
shows. ``--raw DIR`` keeps the counts (:mod:`equirl.rawresults`) for ``make tables``. A few minutes of CPU.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import stable_baselines3
from equirl.agents.reports import OUTCOMES, pytest_outcomes, substitution_table

from equirl import rawresults

ROOT = Path(__file__).resolve().parents[1]


def _runs() -> tuple[str, ...]:
    """The runs of tests/sb3_upstream/conftest.py, its one list: ``NATIVE`` then ``METHODS``, the table's order."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sb3_upstream_conftest", ROOT / "tests/sb3_upstream/conftest.py")
    assert spec is not None and spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    return (conftest.NATIVE, *conftest.METHODS)


RUNS = _runs()


def selection(run: str) -> str:
    """The ``-k`` expression that keeps ``run``'s cases only (``equizero`` is a prefix of ``equizero-td``)."""
    others = [r for r in RUNS if r != run and run in r]
    return " and ".join([run, *(f"not {o}" for o in others)])


def counts(run: str) -> dict[str, int]:
    """Outcome counts of ``run``'s cases (one pytest process; its last line is the summary)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "", "tests/sb3_upstream", "-k", selection(run)]
    done = subprocess.run(cmd + ["-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    return pytest_outcomes(last)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rawresults.add_raw_arguments(p)
    args = p.parse_args()
    started = rawresults.start_raw(p, args)
    t0 = time.time()
    rows = []
    for run in RUNS:
        found = counts(run)
        print(f"{run}: " + ", ".join(f"{n} {o}" for o, n in found.items() if n), flush=True)
        rows += [{"run": run, "outcome": o, "value": found[o]} for o in OUTCOMES]
    settings = {"runs": list(RUNS), "sb3_version": stable_baselines3.__version__}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.raw) if args.raw else Path(tmp) / "raw"
        rawresults.write_raw(
            folder, rows, settings, started=started, seconds=time.time() - t0, overwrite=args.overwrite
        )
        print(substitution_table([folder]))


if __name__ == "__main__":
    main()
