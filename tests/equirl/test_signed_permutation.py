"""Signed permutations: one constructor, a ComposedAction error that names it, a repr that shows the signs."""

from __future__ import annotations

import pytest
import torch

from equirl import ComposedAction, PermutationAction, SignedPermutationAction, SignFlipAction, cyclic, dihedral


def test_signed_permutation_acts_as_documented() -> None:
    c2 = cyclic(2)
    # swap the two halves and negate everything: (g·x)[i] = signs[i] * x[p[i]]
    a = SignedPermutationAction(c2, [[1, 0, 3, 2]], signs=[[-1, -1, 1, 1]])
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert a.apply(1, x).tolist() == [-2.0, -1.0, 4.0, 3.0]
    assert torch.equal(a.apply(1, a.apply(1, x)), x)
    same = PermutationAction(c2, [[1, 0, 3, 2]], signs=[[-1, -1, 1, 1]])
    assert torch.equal(same.orbit(x), a.orbit(x))
    # a rotation by a quarter turn of (x, y): (x, y) -> (-y, x), of order 4
    r = SignedPermutationAction(cyclic(4), [[1, 0]], signs=[[-1, 1]])
    assert r.orbit(torch.tensor([1.0, 2.0])).tolist() == [[1.0, 2.0], [-2.0, 1.0], [-1.0, -2.0], [2.0, -1.0]]


def test_repr_shows_signs() -> None:
    c2 = cyclic(2)
    assert repr(SignedPermutationAction(c2, [[1, 0]], signs=[[-1, -1]])) == (
        "SignedPermutationAction(C2, [[1, 0]], signs=[[-1, -1]], dim=-1)"
    )
    assert "signs=[[1, -1]]" in repr(PermutationAction(c2, [[0, 1]], signs=[[1, -1]]))
    assert "signs" not in repr(PermutationAction(c2, [[1, 0]]))


def test_errors_name_the_fix() -> None:
    c2 = cyclic(2)
    with pytest.raises(ValueError, match=r"SignedPermutationAction\(group, permutations, signs="):
        ComposedAction(SignFlipAction(c2, [[-1, 1]]), PermutationAction(c2, [[1, 0]]))
    with pytest.raises(ValueError, match="each \\+1 or -1"):
        SignedPermutationAction(c2, [[1, 0]], signs=[[2, 1]])
    with pytest.raises(ValueError, match="one sign vector per generator"):
        SignedPermutationAction(dihedral(2), [[1, 0], [0, 1]], signs=[[1, 1]])
    with pytest.raises(ValueError, match="do not define an action"):  # (x, y) -> (-y, x) has order 4, not 2
        SignedPermutationAction(c2, [[1, 0]], signs=[[-1, 1]])
