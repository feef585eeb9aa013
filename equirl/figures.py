"""Writing the figures that ``make tables`` rebuilds: byte for byte the same from the same data, never half-written.

Every plot of the package's reports goes through :func:`save_png`, so that a figure rebuilt from committed raw
results is identical to the committed one (the drift test of ``tests/cli/test_tables.py`` compares bytes):
matplotlib's ``Software`` tag and any date are left out, and the file is written to a temporary name in its
folder and renamed into place (:func:`equirl.files.write_atomic`). Standard library only (the figure is any
object with matplotlib's ``savefig``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from equirl.files import write_atomic

__all__ = ["save_png"]


def save_png(fig: Any, path: str | Path, dpi: int = 100, close: bool = True) -> Path:
    """Save the matplotlib figure ``fig`` as a PNG at ``path`` (folders made), deterministically and atomically.

    ``dpi``: resolution; ``close``: close the figure afterwards (frees its memory). Returns ``path``.
    """
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png", metadata={"Software": None})
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return write_atomic(path, buf.getvalue())
