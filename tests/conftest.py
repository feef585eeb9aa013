"""Shared fixtures: small symmetries used across the test suite."""

from __future__ import annotations

import pytest
import torch

import equirl as E

torch.set_num_threads(1)


def c4_image_symmetry() -> E.Symmetry:
    """C4 rotating the last two dims of a (C, H, W) image and cyclically shifting four actions.

    ``r`` is not its own inverse, so code that applies ``g`` where ``g⁻¹`` is meant fails with it.
    """
    c4 = E.cyclic(4)
    return E.Symmetry(c4, E.SpatialAction(c4, ["rot90"]), E.PermutationAction(c4, [[1, 2, 3, 0]]), "C4-image")


def d4_image_symmetry() -> E.Symmetry:
    """D4 on (C, H, W) images; rotations shift 4 actions cyclically, the flip swaps actions 1 and 3."""
    d4 = E.dihedral(4)
    return E.Symmetry(
        d4, E.SpatialAction(d4, ["rot90", "flip0"]), E.PermutationAction(d4, [[1, 2, 3, 0], [2, 1, 0, 3]]), "D4-image"
    )


@pytest.fixture
def c4_symmetry() -> E.Symmetry:
    return c4_image_symmetry()


@pytest.fixture
def d4_symmetry() -> E.Symmetry:
    return d4_image_symmetry()
