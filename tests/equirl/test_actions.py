import pickle

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given, settings

import equirl as E


def _name(group: E.Group, name: str) -> int:
    return group.element_names.index(name)


def test_c4_spatial_matches_rot90() -> None:
    c4 = E.cyclic(4)
    act = E.SpatialAction(c4, ["rot90"])
    x = torch.randn(3, 2, 5, 5)
    orbit = act.orbit(x)
    assert orbit.shape == (4, 3, 2, 5, 5)
    for k in range(4):
        assert torch.equal(orbit[k], torch.rot90(x, k, dims=(-2, -1)))
        assert torch.equal(act.apply(k, x), torch.rot90(x, k, dims=(-2, -1)))


def test_d4_spatial_matches_torch() -> None:
    d4 = E.dihedral(4)
    act = E.SpatialAction(d4, ["rot90", "flip0"])
    x = torch.randn(2, 1, 4, 4)
    orbit = act.orbit(x)
    for k in range(4):
        rot = "e" if k == 0 else ("r" if k == 1 else f"r^{k}")
        ref = "s" if k == 0 else f"{rot}·s"
        assert torch.equal(orbit[_name(d4, rot)], torch.rot90(x, k, dims=(-2, -1)))
        # r^k·s: flip first, then rotate
        assert torch.equal(orbit[_name(d4, ref)], torch.rot90(torch.flip(x, dims=[-2]), k, dims=(-2, -1)))


def test_inverse_each_undoes_orbit_for_non_involutions() -> None:
    c4 = E.cyclic(4)
    for act, x in [
        (E.SpatialAction(c4, ["rot90"]), torch.randn(2, 3, 6, 6)),
        (E.PermutationAction(c4, [[1, 2, 3, 0]]), torch.randn(5, 4)),
        (E.PermutationAction(c4, [[1, 2, 3, 0]], dim=-2), torch.randn(5, 4, 3)),
    ]:
        back = act.inverse_each(act.orbit(x))
        assert torch.equal(back, x.expand(4, *x.shape))
        # and apply_each would NOT undo it: g != g⁻¹ matters here
        assert not torch.equal(act.apply_each(act.orbit(x)), x.expand(4, *x.shape))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 7), st.integers(0, 7), st.integers(2, 5))
def test_action_is_a_homomorphism(a: int, b: int, n: int) -> None:
    d4 = E.dihedral(4)
    acts = [
        E.SpatialAction(d4, ["rot90", "flip1"]),
        E.PermutationAction(d4, [[1, 2, 3, 0], [0, 3, 2, 1]]),
    ]
    xs = [torch.randn(2, n, n), torch.randn(3, 4)]
    for act, x in zip(acts, xs, strict=True):
        ab = d4.compose(a, b)
        assert torch.equal(act.apply(a, act.apply(b, x)), act.apply(ab, x))


def test_sign_flip_and_signed_permutation() -> None:
    c2 = E.cyclic(2)
    act = E.SignFlipAction(c2, [[1, -1, 1, -1, -1, -1]])
    x = torch.randn(7, 6)
    assert torch.equal(act.orbit(x)[1], x * torch.tensor([1.0, -1, 1, -1, -1, -1]))
    signed = E.PermutationAction(c2, [[1, 0]], signs=[[-1, -1]])
    y = torch.randn(3, 2)
    assert torch.equal(signed.orbit(y)[1], -y.flip(-1))


def test_value_permutation_action() -> None:
    c2 = E.cyclic(2)
    act = E.ValuePermutationAction(c2, [[0, 2, 1, 3]])
    tokens = torch.tensor([[1, 2, 3, 0]])
    assert act.orbit(tokens)[1].tolist() == [[2, 1, 3, 0]]
    assert torch.equal(act.inverse_each(act.orbit(tokens)), tokens.expand(2, 1, 4))


def test_composed_action_on_disjoint_dims() -> None:
    c4 = E.cyclic(4)
    act = E.ComposedAction(E.SpatialAction(c4, ["rot90"]), E.PermutationAction(c4, [[1, 2, 3, 0]], dim=-3))
    x = torch.randn(2, 4, 3, 3)
    ref = torch.rot90(x, 1, dims=(-2, -1))[:, [1, 2, 3, 0]]
    assert torch.equal(act.orbit(x)[1], ref)
    assert torch.equal(act.inverse_each(act.orbit(x)), x.expand(4, *x.shape))
    with pytest.raises(ValueError, match="overlap"):
        E.ComposedAction(E.SpatialAction(c4, ["rot90"]), E.PermutationAction(c4, [[1, 2, 3, 0]], dim=-1))


def test_errors_at_construction() -> None:
    c2, c4 = E.cyclic(2), E.cyclic(4)
    with pytest.raises(ValueError, match="not a permutation"):
        E.PermutationAction(c2, [[0, 0, 2]])
    with pytest.raises(ValueError, match="do not define an action of C2"):
        E.PermutationAction(c2, [[1, 2, 0]])  # order 3 image of an order-2 generator
    with pytest.raises(ValueError, match="square grid, but got 3x4"):
        E.SpatialAction(c4, ["rot90"], shape=(3, 4))
    with pytest.raises(ValueError, match="unknown spatial op"):
        E.SpatialAction(c4, ["spin"])
    with pytest.raises(ValueError, match=r"\+1/-1"):
        E.SignFlipAction(c2, [[1, 0.5]])
    with pytest.raises(ValueError, match="generators"):
        E.PermutationAction(E.dihedral(4), [[1, 2, 3, 0]])
    with pytest.raises(ValueError, match="negative"):
        E.PermutationAction(c2, [[1, 0]], dim=1)


def test_validate_names_the_mismatch() -> None:
    c2 = E.cyclic(2)
    sym = E.Symmetry(c2, E.SignFlipAction(c2, [[-1.0] * 4]), E.PermutationAction(c2, [[1, 0]]), "cp")
    sym.validate((4,), (2,))
    with pytest.raises(ValueError, match="permutes 2 entries.*has 3"):
        sym.validate((4,), (3,))
    with pytest.raises(ValueError, match="flips signs of 4 entries"):
        sym.validate((6,), (2,))
    rot = E.SpatialAction(E.cyclic(4), ["rot90"])
    with pytest.raises(ValueError, match="square grid"):
        rot.validate((3, 7, 5))


def test_symmetry_requires_same_group() -> None:
    with pytest.raises(ValueError, match="action of C4"):
        E.Symmetry(E.cyclic(2), E.SpatialAction(E.cyclic(4), ["rot90"]), E.TrivialAction(E.cyclic(2)))


def test_symmetry_pickles_and_prints(c4_symmetry: E.Symmetry) -> None:
    x = torch.randn(2, 1, 5, 5)
    c4_symmetry.input_action.orbit(x)  # fill the tensor caches
    clone = pickle.loads(pickle.dumps(c4_symmetry))
    assert torch.equal(clone.input_action.orbit(x), c4_symmetry.input_action.orbit(x))
    assert "C4" in repr(clone) and "rot90" in repr(clone)
    assert np.array_equal(clone.group.table, c4_symmetry.group.table)


def test_trivial_action_on_dict_batches() -> None:
    """TrivialAction takes {key: tensor} batches as DictAction does: orbit repeats, inverse_mean averages, apply is the identity."""
    g = E.cyclic(3)
    a = E.TrivialAction(g)
    x = {"img": torch.randn(2, 4, 5), "d": torch.tensor([1, 3])}
    orbit = a.orbit(x)
    assert set(orbit) == {"img", "d"}
    assert orbit["img"].shape == (3, 2, 4, 5) and orbit["d"].shape == (3, 2)
    for k in x:
        assert all(torch.equal(orbit[k][i], x[k]) for i in range(3))
    assert torch.allclose(a.inverse_mean({"img": orbit["img"]})["img"], x["img"])
    assert a.apply(2, x) is x and a.apply_each(orbit) is orbit
    with pytest.raises(IndexError, match="not in C3"):
        a.apply(3, x)
    # the same as a DictAction that names no key
    empty = E.DictAction(g, {}).orbit(x)
    assert all(torch.equal(empty[k], orbit[k]) for k in x)
