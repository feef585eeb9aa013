"""The symmetry catalogue: one registry from names (usually gymnasium ids) to symmetries.

``get_symmetry(name)`` returns a fresh :class:`equirl.Symmetry`; ``register_symmetry(name, factory)``
adds one (a factory is a no-argument callable, so that entries are built on demand).
Every entry's docstring says how the group acts on observations and on actions.
"""

from __future__ import annotations

from collections.abc import Callable

from equirl import PermutationAction, SignFlipAction, Symmetry, cyclic

__all__ = ["get_symmetry", "register_symmetry", "list_symmetries", "symmetry_docs"]

_REGISTRY: dict[str, Callable[[], Symmetry]] = {}


def register_symmetry(name: str, factory: Callable[[], Symmetry], overwrite: bool = False) -> None:
    """Register ``factory`` (``() -> Symmetry``) under ``name``.

    :raises ValueError: if ``name`` is taken and ``overwrite`` is False.
    """
    if not callable(factory):
        raise TypeError(f"register_symmetry({name!r}): factory must be a callable returning a Symmetry.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"A symmetry named {name!r} is already registered; pass overwrite=True to replace it.")
    _REGISTRY[name] = factory


def get_symmetry(name: str) -> Symmetry:
    """The symmetry registered under ``name`` (see :func:`list_symmetries`)."""
    if name not in _REGISTRY:
        raise KeyError(f"No symmetry named {name!r}. Known: {sorted(_REGISTRY)}. Add one with register_symmetry().")
    return _REGISTRY[name]()


def list_symmetries() -> list[str]:
    """Names of all registered symmetries."""
    return sorted(_REGISTRY)


def symmetry_docs() -> dict[str, str]:
    """First docstring line of each entry's factory, by name (for tables and ``--help``)."""
    return {n: (f.__doc__ or "").strip().splitlines()[0] if f.__doc__ else "" for n, f in sorted(_REGISTRY.items())}


def cartpole_reflection() -> Symmetry:
    """C2: observation s -> -s (all four components); actions 0 (push left) <-> 1 (push right)."""
    c2 = cyclic(2)
    return Symmetry(
        c2,
        SignFlipAction(c2, [[-1.0, -1.0, -1.0, -1.0]]),
        PermutationAction(c2, [[1, 0]]),
        name="CartPole-v1",
        description=cartpole_reflection.__doc__ or "",
    )


def acrobot_reflection() -> Symmetry:
    """C2: observation [cos1, sin1, cos2, sin2, dθ1, dθ2] times [1, -1, 1, -1, -1, -1]; torques -1 <-> +1 (actions 0 <-> 2, 1 fixed)."""
    c2 = cyclic(2)
    return Symmetry(
        c2,
        SignFlipAction(c2, [[1.0, -1.0, 1.0, -1.0, -1.0, -1.0]]),
        PermutationAction(c2, [[2, 1, 0]]),
        name="Acrobot-v1",
        description=acrobot_reflection.__doc__ or "",
    )


register_symmetry("CartPole-v1", cartpole_reflection)
register_symmetry("Acrobot-v1", acrobot_reflection)
