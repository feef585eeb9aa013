"""Every fast path against the general path it replaces, on random inputs, for every shipped symmetry kind."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from equirl.envs import get_symmetry
from equirl.envs.gridworld import rotgrid_symmetry
from torch import nn

import equirl as E
from equirl.actions import ComposedAction, IndexAction
from equirl.averaging import by_group, orbit_batch, orbit_rows


def _signed_c2() -> E.Symmetry:
    c2 = E.cyclic(2)
    return E.Symmetry(
        c2, E.PermutationAction(c2, [[2, 1, 0, 3]], signs=[[1, -1, 1, -1]]), E.PermutationAction(c2, [[1, 0, 2]])
    )


# name -> (symmetry factory, sample shape, number of outputs)
SYMMETRIES = {
    "signflip-C2 (CartPole)": (lambda: get_symmetry("CartPole-v1"), (4,), 2),
    "signflip-C2 (Acrobot)": (lambda: get_symmetry("Acrobot-v1"), (6,), 3),
    "signed-permutation-C2": (_signed_c2, (4,), 3),
    "permutation-C4 (RotGrid flat)": (lambda: rotgrid_symmetry("C4", flat=True, size=5), (100,), 4),
    "permutation-D4 (RotGrid flat)": (lambda: get_symmetry("equirl/RotGrid-v0/flat"), (196,), 4),
    "rot90-C4 (RotGrid image)": (lambda: get_symmetry("equirl/RotGrid-v0/C4"), (4, 7, 7), 4),
    "rot90/flip-D4 (RotGrid image)": (lambda: get_symmetry("equirl/RotGrid-v0"), (4, 7, 7), 4),
    "flip-C2 (MiniGrid ego)": (lambda: get_symmetry("MiniGrid-Empty-5x5-v0"), (20, 7, 7), 7),
    "composed-D4 (MiniGrid full)": (lambda: get_symmetry("MiniGrid-Empty-6x6-v0/full-D4"), (24, 6, 6), 7),
    "composed-C4 (MiniGrid full)": (lambda: get_symmetry("MiniGrid-Empty-6x6-v0/full-C4"), (24, 6, 6), 7),
}
NAMES = list(SYMMETRIES)
METHODS = ["equitune", "equizero", "lambda"]


def _general_orbit(action: E.Action, x: torch.Tensor) -> torch.Tensor:
    """The general orbit: every element applied to a copy of x (gather on the expanded batch), part by part."""
    if isinstance(action, ComposedAction):
        return action._orbit_parts(x)
    return E.Action.orbit(action, x)


def _general_inverse_each(action: E.Action, y: torch.Tensor) -> torch.Tensor:
    if isinstance(action, ComposedAction):
        return action._each_parts(y, inverse=True)
    return action.inverse_each(y)


@pytest.mark.parametrize("name", NAMES)
def test_orbit_equals_the_general_path(name: str) -> None:
    make, shape, _ = SYMMETRIES[name]
    sym = make()
    torch.manual_seed(0)
    for x in (torch.randn(5, *shape), torch.randint(0, 3, (3, *shape)).to(torch.uint8), torch.randn(1, *shape)):
        fast, general = sym.input_action.orbit(x), _general_orbit(sym.input_action, x)
        assert fast.shape == (sym.order, *x.shape) and fast.dtype == general.dtype
        assert torch.equal(fast, general), name
        for g in range(sym.order):  # and each slice is g·x as `apply` gives it
            assert torch.equal(fast[g], sym.input_action.apply(g, x))


@pytest.mark.parametrize("name", NAMES)
def test_inverse_mean_and_each_equal_the_general_path(name: str) -> None:
    make, shape, n_out = SYMMETRIES[name]
    sym = make()
    torch.manual_seed(1)
    for action, y in ((sym.output_action, torch.randn(sym.order, 6, n_out)), (sym.input_action, None)):
        if y is None:
            y = torch.randn(sym.order, 4, *shape)
        general = _general_inverse_each(action, y)
        assert torch.equal(action.inverse_each(y), general)
        assert torch.allclose(action.inverse_mean(y), general.mean(0), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["composed-D4 (MiniGrid full)", "composed-C4 (MiniGrid full)"])
def test_composed_actions_merge_into_one_index_action(name: str) -> None:
    sym = SYMMETRIES[name][0]()
    action = sym.input_action
    assert isinstance(action, ComposedAction)
    merged = action.merged()
    assert isinstance(merged, IndexAction) and merged.dims == (-3, -2, -1)
    y = torch.randn(sym.order, 3, 24, 6, 6)
    assert torch.equal(action.apply_each(y), action._each_parts(y, inverse=False))


def test_composed_actions_with_a_gap_and_signs_merge_exactly() -> None:
    """Parts on dims -4 and -2 (dim -3 and -1 untouched), one with signs: the span's tables still match."""
    c2 = E.cyclic(2)
    a = ComposedAction(
        E.PermutationAction(c2, [[1, 0, 2]], dim=-4, signs=[[-1, -1, 1]]),
        E.PermutationAction(c2, [[3, 2, 1, 0]], dim=-2),
    )
    assert a.merged() is not None and a.merged().dims == (-4, -3, -2)
    x = torch.randn(5, 3, 2, 4, 3)
    assert torch.equal(a.orbit(x), a._orbit_parts(x))
    y = torch.randn(2, 5, 3, 2, 4, 3)
    assert torch.equal(a.inverse_each(y), a._each_parts(y, inverse=True))


def test_composed_action_with_a_value_permutation_keeps_the_general_path() -> None:
    c2 = E.cyclic(2)
    a = ComposedAction(E.ValuePermutationAction(c2, [[1, 0, 2]]), E.PermutationAction(c2, [[1, 0]], dim=-1))
    assert a.merged() is None
    x = torch.tensor([[0, 2], [1, 1]])
    assert torch.equal(a.orbit(x), a._orbit_parts(x))


def test_merged_tables_survive_pickling() -> None:
    import pickle

    action = SYMMETRIES["composed-D4 (MiniGrid full)"][0]().input_action
    x = torch.randn(2, 24, 6, 6)
    before = action.orbit(x)
    again = pickle.loads(pickle.dumps(action))
    assert torch.equal(again.orbit(x), before)


# -- reducers --------------------------------------------------------------------------------------
def _isclose_weights(loss: torch.Tensor, tol: float) -> torch.Tensor:
    """equizero's weights as they were computed with torch.isclose (the general tie test)."""
    best = loss.min(0, keepdim=True).values
    w = torch.isclose(loss, best, rtol=tol, atol=tol).to(loss.dtype)
    return w / w.sum(0, keepdim=True)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e4])
def test_equizero_ties_by_one_comparison_equal_isclose(scale: float) -> None:
    torch.manual_seed(2)
    reducer = E.ZeroReducer("neg_max")
    tol = reducer.tie_tolerance
    q = torch.randn(8, 400, 3) * scale
    q[3] = q[0]  # exact ties
    q[5, :100] = q[1, :100] * (1 + 0.4 * tol)  # ties within the tolerance
    q[6, 100:200] = q[2, 100:200] * (1 + 3 * tol) + 3 * tol  # just outside
    loss = reducer._proxy(q)
    assert torch.equal(reducer.weights(q, None), _isclose_weights(loss, tol))


def _small_model(name: str, method: str, seed: int) -> tuple[Any, tuple[int, ...], int, nn.Module, nn.Module, Any]:
    """``(symmetry, input shape, outputs, encoder, head, reducer)`` for a symmetry of :data:`SYMMETRIES`: a one-layer
    tanh encoder (16 features) and a linear head seeded with ``seed``; λ's net with weights far from uniform."""
    make, shape, n_out = SYMMETRIES[name]
    sym = make()
    torch.manual_seed(seed)
    enc = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape)), 16), nn.Tanh())
    head = nn.Linear(16, n_out)
    reducer = E.make_reducer(method, feature_dim=16)
    if method == "lambda":
        for p in reducer.parameters():
            nn.init.normal_(p, std=0.5)
    return sym, shape, n_out, enc, head, reducer


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("method", METHODS)
def test_symmetrize_equals_the_general_path(name: str, method: str) -> None:
    """The stateless fast forward (merged orbit, inverse_mean, combine) against orbit -> network ->
    inverse_each -> Reducer.forward, the general path, for every symmetry and method."""
    sym, shape, n_out, enc, head, reducer = _small_model(name, method, seed=3)
    x = torch.randn(6, *shape)
    x[0] = sym.input_action.apply(1, x[1:2])[0]  # an orbit pair inside the batch
    with torch.no_grad():
        fast, w = E.symmetrize_weights(x, sym, enc, head, reducer)
        G, B = sym.order, x.shape[0]
        h = enc(_general_orbit(sym.input_action, x).reshape(G * B, *shape))
        y = head(h).reshape(G, B, n_out)
        general = reducer(y, _general_inverse_each(sym.output_action, y), h.reshape(G, B, -1))
    assert torch.allclose(fast, general, atol=1e-6, rtol=0), (fast - general).abs().max()
    assert (w is None) == (method == "equitune")
    if w is not None:
        assert torch.equal(w, reducer.last_weights)


def test_symmetrize_weights_is_stateless_and_symmetrize_records_only_when_asked() -> None:
    sym = get_symmetry("CartPole-v1")
    enc, head = nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Linear(8, 2)
    reducer = E.make_reducer("lambda", feature_dim=8)
    x = torch.randn(3, 4)
    out, w = E.symmetrize_weights(x, sym, enc, head, reducer)
    assert reducer.last_weights is None and w is not None and w.shape == (2, 3)
    reducer.record_weights = False
    assert torch.equal(E.symmetrize(x, sym, enc, head, reducer), out) and reducer.last_weights is None
    reducer.record_weights = True
    E.symmetrize(x, sym, enc, head, reducer)
    assert torch.equal(reducer.last_weights, w)


def test_straight_through_gradient_unchanged_by_combine() -> None:
    """equizero's combine keeps the straight-through gradient: the gradient of equitune."""
    sym = get_symmetry("MiniGrid-Empty-6x6-v0/full-D4")
    torch.manual_seed(4)
    enc, head = nn.Sequential(nn.Flatten(), nn.Linear(24 * 36, 8), nn.Tanh()), nn.Linear(8, 7)
    x, up = torch.randn(3, 24, 6, 6), torch.randn(3, 7)
    grads = []
    for method in ("equizero", "equitune"):
        enc.zero_grad()
        head.zero_grad()
        (E.symmetrize(x, sym, enc, head, E.make_reducer(method)) * up).sum().backward()
        grads.append([p.grad.clone() for p in [*enc.parameters(), *head.parameters()]])
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("order", [2, 4])
def test_row_table_orbit_with_signs_and_trailing_dims(order: int) -> None:
    """A signed permutation of dim -2 with a channel dim before it and a dim after it: the orbit over
    whole rows (one index_select) equals the general path, with and without the involution shortcut."""
    group = E.cyclic(order)
    perm, signs = ([1, 0, 3, 2], [-1, -1, 1, 1]) if order == 2 else ([1, 2, 3, 0], [1, -1, -1, 1])
    action = E.PermutationAction(group, [perm], dim=-2, signs=[signs])
    torch.manual_seed(5)
    x = torch.randn(3, 2, 4, 5)
    fast = action.orbit(x)
    assert torch.equal(fast, E.Action.orbit(action, x))
    assert fast.is_contiguous()


# -- whole-batch orbit tables, inverse mean, equizero's score ------------------------------------------
@pytest.mark.parametrize("name", [n for n in NAMES if SYMMETRIES[n][0]().order > 2])
def test_whole_batch_orbit_table_equals_the_rows_path_for_every_batch_size(name: str) -> None:
    """The orbit as one index_select on the flattened batch equals the orbit over whole rows and the general path,
    for batch sizes in any order (one table per shape), float and uint8, and is contiguous."""
    import equirl.actions as A

    make, shape, _ = SYMMETRIES[name]
    action = make().input_action
    index_action = action.merged() if isinstance(action, ComposedAction) else action
    assert isinstance(index_action, IndexAction)
    torch.manual_seed(6)
    for B in (7, 1, 7, 3):
        for x in (torch.randn(B, *shape), torch.randint(0, 9, (B, *shape)).to(torch.uint8)):
            fast = action.orbit(x)
            assert index_action._flat_orbit_table(x) is not None
            assert fast.is_contiguous() and fast.dtype == x.dtype
            assert torch.equal(fast, index_action._orbit_rows(x))
            assert torch.equal(fast, _general_orbit(action, x))
    assert len(index_action._cache["flat"]) <= A._MAX_FLAT_CACHED


def test_whole_batch_orbit_table_with_signs_bounded_cache_and_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import equirl.actions as A

    group = E.cyclic(4)
    action = E.PermutationAction(group, [[1, 2, 3, 0]], dim=-2, signs=[[1, -1, -1, 1]])
    torch.manual_seed(7)
    for B in range(1, A._MAX_FLAT_CACHED + 4):  # more batch sizes than tables kept: the oldest go
        x = torch.randn(B, 2, 4, 5)
        fast = action.orbit(x)
        assert action._flat_orbit_table(x) is not None and fast.is_contiguous()
        assert torch.equal(fast, E.Action.orbit(action, x))
    assert len(action._cache["flat"]) == A._MAX_FLAT_CACHED
    monkeypatch.setattr(A, "_MAX_FLAT", 4 * 3 * 40 - 1)  # one entry too small for B = 3: the rows path
    x = torch.randn(3, 2, 4, 5)
    action._cache.clear()
    assert action._flat_orbit_table(x) is None
    assert torch.equal(action.orbit(x), E.Action.orbit(action, x))


@pytest.mark.parametrize("name", NAMES)
def test_inverse_mean_is_the_mean_of_inverse_each_bit_for_bit(name: str) -> None:
    make, _, n_out = SYMMETRIES[name]
    sym = make()
    torch.manual_seed(8)
    y = torch.randn(sym.order, 5, n_out, requires_grad=True)
    fast = sym.output_action.inverse_mean(y)
    general = _general_inverse_each(sym.output_action, y).mean(0)
    assert torch.equal(fast, general)
    up = torch.randn_like(fast)
    (g_fast,) = torch.autograd.grad((fast * up).sum(), y)
    (g_general,) = torch.autograd.grad((general * up).sum(), y)
    assert torch.equal(g_fast, g_general)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equizero_neg_max_score_equals_the_general_proxy_path(dtype: torch.dtype) -> None:
    """The default proxy's shortcut (max_a Q compared against the best, bool / count weights) gives exactly the
    weights of the general path (any callable proxy: -max_a Q, compared against the least loss)."""
    from equirl.proxy import neg_max

    torch.manual_seed(9)
    fast_reducer = E.ZeroReducer("neg_max")
    general_reducer = E.ZeroReducer(lambda out: neg_max(out))  # not the registered function: the general path
    tol = fast_reducer.tie_tolerance
    for scale in (1e-3, 1.0, 1e4):
        q = (torch.randn(8, 300, 3) * scale).to(dtype)
        q[3] = q[0]
        q[5, :100] = q[1, :100] * (1 + 0.4 * tol)
        q[6, 100:200] = q[2, 100:200] * (1 + 3 * tol) + 3 * tol
        q[:, 250:] = q[0, 250:]  # every view tied
        w_fast, w_general = fast_reducer.weights(q, None), general_reducer.weights(q, None)
        assert w_fast.dtype == dtype and torch.equal(w_fast, w_general)
    sym = get_symmetry("MiniGrid-Empty-6x6-v0/full-D4")
    y = torch.randn(8, 4, 7)
    y[2] = y[0]
    out_fast, _ = fast_reducer.combine(y, sym.output_action, None)
    out_general = general_reducer(y, sym.output_action.inverse_each(y), None)
    assert torch.equal(out_fast, out_general)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("method", METHODS)
def test_symmetrize_gradients_equal_the_general_path(name: str, method: str) -> None:
    """Gradients of every parameter through the fast forward (whole-batch orbit, inverse_mean, combine) equal those
    through orbit -> network -> inverse_each -> Reducer.forward."""
    sym, shape, n_out, enc, head, reducer = _small_model(name, method, seed=10)
    params = [*enc.parameters(), *head.parameters(), *reducer.parameters()]
    x, up = torch.randn(5, *shape), torch.randn(5, n_out)
    fast, _ = E.symmetrize_weights(x, sym, enc, head, reducer)
    g_fast = torch.autograd.grad((fast * up).sum(), params)
    G, B = sym.order, x.shape[0]
    h = enc(_general_orbit(sym.input_action, x).reshape(G * B, *shape))
    y = head(h).reshape(G, B, n_out)
    general = reducer(y, _general_inverse_each(sym.output_action, y), h.reshape(G, B, -1))
    g_general = torch.autograd.grad((general * up).sum(), params)
    for a, b in zip(g_fast, g_general, strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), (a - b).abs().max()


# -- the orbit in sample-major order -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_orbit_by_sample_is_the_orbit_in_sample_major_order(name: str) -> None:
    """Where an action builds the orbit sample-major ([B, |G|, ...], |G| > 2 and not sign flips alone), slice [:, g]
    is g·x, bit for bit, contiguous, for float and uint8 and batch sizes in any order; elsewhere it gives None."""
    make, shape, _ = SYMMETRIES[name]
    action = make().input_action
    torch.manual_seed(11)
    for B in (6, 1, 3):
        for x in (torch.randn(B, *shape), torch.randint(0, 9, (B, *shape)).to(torch.uint8)):
            rows = action.orbit_by_sample(x)
            if make().order <= 2:
                assert rows is None
                continue
            assert rows is not None and rows.shape == (B, action.group.order, *shape) and rows.is_contiguous()
            assert rows.dtype == x.dtype
            assert torch.equal(rows.transpose(0, 1), _general_orbit(action, x)), name


def test_orbit_by_sample_with_signs_and_trailing_dims_and_where_it_declines() -> None:
    group = E.cyclic(4)
    action = E.PermutationAction(group, [[1, 2, 3, 0]], dim=-2, signs=[[1, -1, -1, 1]])
    torch.manual_seed(12)
    x = torch.randn(3, 2, 4, 5)
    rows = action.orbit_by_sample(x)
    assert rows is not None and torch.equal(rows.transpose(0, 1), E.Action.orbit(action, x))
    klein = E.direct_product(E.cyclic(2), E.cyclic(2))
    signs_only = E.SignFlipAction(klein, [[1, -1], [-1, 1]])
    assert signs_only.orbit_by_sample(torch.randn(3, 2)) is None  # one broadcast multiply is faster
    assert E.PermutationAction(group, [[1, 2, 3, 0]]).orbit_by_sample(torch.randn(4)) is None  # no batch dim
    value = E.ValuePermutationAction(group, [[1, 2, 3, 0]])
    assert value.orbit_by_sample(torch.randint(0, 4, (3, 5))) is None  # the base class: no sample-major path


@pytest.mark.parametrize("name", NAMES)
def test_orbit_rows_and_by_group_give_the_group_major_outputs(name: str) -> None:
    """Outputs of a row-wise network on orbit_rows' rows, put back by by_group, equal those on orbit_batch's rows."""
    make, shape, _ = SYMMETRIES[name]
    sym = make()
    torch.manual_seed(13)
    x = torch.randn(5, *shape)
    net = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape)), 3))
    rows, by_sample = orbit_rows(sym, x)
    assert by_sample == (sym.input_action.orbit_by_sample(x) is not None)
    with torch.no_grad():
        got = by_group(net(rows), sym.order, by_sample)
        want = net(orbit_batch(sym, x)).unflatten(0, (sym.order, -1))
    assert got.shape == (sym.order, 5, 3) and torch.equal(got, want)


def test_lambda_scores_read_sample_major_features_as_their_rows() -> None:
    """λ's scores of a [G, B, F] view of sample-major rows [B·G, F] equal those of the same features laid out
    group-major, bit for bit, and need no copy of the features."""
    torch.manual_seed(14)
    reducer = E.make_reducer("lambda", feature_dim=6)
    for p in reducer.parameters():
        nn.init.normal_(p, std=0.5)
    G, B = 4, 5
    rows = torch.randn(B * G, 6)  # row b·G + g
    view = by_group(rows, G, True)  # [G, B, F], not contiguous
    assert not view.is_contiguous()
    group_major = view.contiguous()
    with torch.no_grad():
        got = reducer.scores(view)
        want = reducer.scores(group_major.reshape(G * B, 6), G)
    assert got.shape == (G, B) and torch.equal(got, want)
    assert torch.equal(reducer.scores(group_major), want)


def _output_actions() -> dict[str, E.Action]:
    actions = {name: SYMMETRIES[name][0]().output_action for name in NAMES}
    c4 = E.cyclic(4)
    actions["signed-permutation-C4"] = E.PermutationAction(c4, [[1, 2, 3, 0, 4]], signs=[[1, -1, -1, 1, -1]])
    return actions


@pytest.mark.parametrize("name", list(_output_actions()))
def test_inverse_mean_and_weighted_sum_of_sample_major_outputs_equal_the_general_path(name: str) -> None:
    """Outputs laid out sample-major (a by_group view of [B·G, N] rows) are reduced by one matrix product: values
    and gradients equal the gather path's (to rounding), with signs; contiguous outputs keep the gather path."""
    action = _output_actions()[name]
    G = action.group.order
    n = 5 if name == "signed-permutation-C4" else SYMMETRIES[name][2]
    torch.manual_seed(15)
    rows = torch.randn(6 * G, n, dtype=torch.float64, requires_grad=True)
    w = torch.rand(G, 6, dtype=torch.float64)
    w = w / w.sum(0)
    view = by_group(rows, G, True)
    if isinstance(action, IndexAction) and action.dims == (-1,):
        assert action._sample_major_matrix(view) is not None  # the matrix path is the one measured here
    general = view.contiguous()
    for fast_fn, slow_fn in (
        (lambda: action.inverse_mean(view), lambda: _general_inverse_each(action, general).mean(0)),
        (lambda: action.inverse_weighted_sum(view, w),
         lambda: E.actions.weighted_sum(w, _general_inverse_each(action, general))),
    ):  # fmt: skip
        up = torch.randn(6, n, dtype=torch.float64)
        fast, slow = fast_fn(), slow_fn()
        assert torch.allclose(fast, slow, atol=1e-12, rtol=0)
        (g_fast,) = torch.autograd.grad((fast * up).sum(), rows)
        (g_slow,) = torch.autograd.grad((slow * up).sum(), rows)
        assert torch.allclose(g_fast, g_slow, atol=1e-12, rtol=0)
    if isinstance(action, IndexAction):
        assert action._sample_major_matrix(general) is None  # contiguous: the gather path, bit for bit as before
        assert torch.equal(action.inverse_mean(general), _general_inverse_each(action, general).mean(0))
