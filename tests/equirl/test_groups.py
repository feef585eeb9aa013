import itertools

import numpy as np
import pytest

import equirl as E


@pytest.mark.parametrize(
    "group,order",
    [
        (E.cyclic(1), 1),
        (E.cyclic(2), 2),
        (E.cyclic(4), 4),
        (E.dihedral(2), 4),
        (E.dihedral(4), 8),
        (E.direct_product(E.cyclic(2), E.cyclic(3)), 6),
        (E.permutation_group([[1, 0, 2], [1, 2, 0]]), 6),
    ],
)
def test_group_axioms(group: E.Group, order: int) -> None:
    assert group.order == order
    n = group.order
    t = group.table
    assert np.array_equal(t[0], np.arange(n)) and np.array_equal(t[:, 0], np.arange(n))
    for a in range(n):
        assert t[a, group.inverse(a)] == 0 and t[group.inverse(a), a] == 0
        assert sorted(t[a]) == list(range(n))  # Latin square
    for a, b, c in itertools.product(range(n), repeat=3):
        assert t[t[a, b], c] == t[a, t[b, c]]


def test_dihedral_relations_and_names() -> None:
    d4 = E.dihedral(4)
    r, s = d4.element_names.index("r"), d4.element_names.index("s")
    assert d4.element_order(r) == 4 and d4.element_order(s) == 2
    assert d4.compose(s, d4.compose(r, s)) == d4.inverse(r)
    assert not d4.is_abelian()
    assert sorted(d4.element_names) == sorted(["e", "r", "r^2", "r^3", "s", "r·s", "r^2·s", "r^3·s"])


def test_cyclic_inverse_is_not_identity_map() -> None:
    c4 = E.cyclic(4)
    assert [c4.inverse(g) for g in range(4)] == [0, 3, 2, 1]


def test_words_generate_elements() -> None:
    g = E.dihedral(3)
    gens = g.generator_indices
    for e, word in enumerate(g.words):
        x = 0
        for w in word:
            x = g.compose(x, gens[w])
        assert x == e


def test_symmetric_group_from_generators() -> None:
    s4 = E.permutation_group([[1, 0, 2, 3], [1, 2, 3, 0]], name="S4")
    assert s4.order == 24 and not s4.is_abelian()


def test_bad_permutation_generator_is_refused() -> None:
    with pytest.raises(ValueError, match="not a permutation of range\\(3\\).*missing \\[2\\].*repeated \\[0\\]"):
        E.permutation_group([[0, 0, 1]])


def test_generator_names_must_match() -> None:
    with pytest.raises(ValueError, match="one name per generator"):
        E.Group("X", [1], lambda a, b: (a + b) % 2, 0, generator_names=["a", "b"])
