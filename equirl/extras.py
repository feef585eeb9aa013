"""Optional dependencies: import them where they are needed, with an error that names the extra to install.

The core install (``pip install equirl``) brings torch, numpy, gymnasium, stable-baselines3, minigrid and
PyYAML. Tensorboard logs and progress bars need the ``train`` extra, plots ``plots``, GIFs ``gif``, Ray sweeps
``ray`` and rl-zoo3 ``zoo`` (``pip install "equirl[train,plots]"``). This module uses the standard library only.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["MissingExtraError", "require", "progress_bar"]


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message says which extra installs it."""


def require(module: str, extra: str, purpose: str, package: str | None = None) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming the ``extra`` that provides it.

    :param module: import name (``"tqdm.auto"``, ``"matplotlib.pyplot"``).
    :param extra: equirl's extra that installs it (``"train"``, ``"plots"``, ...).
    :param purpose: what needs it, for the message (``"the progress bar"``).
    :param package: the distribution's name on PyPI when it differs from the module's first part.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        dist = package or module.split(".")[0]
        raise MissingExtraError(
            f"{purpose} needs {dist!r}, which is not installed. Install it with "
            f'pip install "equirl[{extra}]" (or pip install {dist}).'
        ) from err


class _NoBar:
    """What :func:`progress_bar` returns when no bar is wanted: tqdm's methods, doing nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "") -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, enabled: bool = True, **kwargs: Any) -> Any:
    """A tqdm bar over ``total`` items when ``enabled`` (needs the ``train`` extra), else a silent stand-in."""
    if not enabled:
        return _NoBar()
    tqdm = require("tqdm.auto", "train", "the progress bar", package="tqdm").tqdm
    return tqdm(total=total, desc=desc, **kwargs)
