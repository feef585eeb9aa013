import pytest
import torch
from torch import nn

import equirl as E
from equirl.actions import weighted_sum

METHODS = ["equitune", "equizero", "lambda"]


def cartpole_symmetry() -> E.Symmetry:
    c2 = E.cyclic(2)
    return E.Symmetry(c2, E.SignFlipAction(c2, [[-1.0] * 4]), E.PermutationAction(c2, [[1, 0]]))


def mlp_model(symmetry: E.Symmetry, method: str, in_dim: int = 4, n_out: int = 2, **kw) -> E.GroupAveraged:
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Flatten(), nn.Linear(in_dim, 32), nn.Tanh())
    head = nn.Linear(32, n_out)
    model = E.GroupAveraged(symmetry, enc, head, method=method, feature_dim=32, **kw)
    if method == "lambda":  # a non-trivial λ, so that λ-equitune differs from equitune
        for p in model.reducer.parameters():
            nn.init.normal_(p, std=0.5)
    return model


@pytest.mark.parametrize("method", METHODS)
def test_equivariance_vector(method: str) -> None:
    sym = cartpole_symmetry()
    model = mlp_model(sym, method)
    x = torch.randn(64, 4)
    assert E.equivariance_error(model, sym, x) <= 1e-5
    # the backbone alone is not equivariant: the check has teeth
    raw = nn.Sequential(model.encoder, model.head)
    assert E.equivariance_error(raw, sym, x) > 1e-3


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sym_name", ["c4_symmetry", "d4_symmetry"])
def test_equivariance_images(method: str, sym_name: str, request: pytest.FixtureRequest) -> None:
    sym = request.getfixturevalue(sym_name)
    model = mlp_model(sym, method, in_dim=2 * 5 * 5, n_out=4)
    x = torch.randn(16, 2, 5, 5)
    assert E.equivariance_error(model, sym, x) <= 1e-5


def test_g_instead_of_g_inverse_is_caught(c4_symmetry: E.Symmetry) -> None:
    """Averaging with ρ(g) instead of ρ(g)⁻¹ is not equivariant for C4 with a 4-cycle on actions."""
    model = mlp_model(c4_symmetry, "equitune", in_dim=25, n_out=4)
    x = torch.randn(8, 1, 5, 5)

    def wrong(z: torch.Tensor) -> torch.Tensor:
        G, B = 4, z.shape[0]
        y = model.head(model.encoder(c4_symmetry.input_action.orbit(z).reshape(G * B, 1, 5, 5))).reshape(G, B, 4)
        return c4_symmetry.output_action.apply_each(y).mean(0)  # bug: g where g⁻¹ is meant

    assert E.equivariance_error(model, c4_symmetry, x) <= 1e-5
    assert E.equivariance_error(wrong, c4_symmetry, x) > 1e-3


def test_constant_lambda_equals_equitune() -> None:
    sym = cartpole_symmetry()
    lam = mlp_model(sym, "lambda")
    eq = mlp_model(sym, "equitune")
    eq.load_state_dict(lam.state_dict(), strict=False)
    last = lam.reducer.lambda_net[-1]
    nn.init.zeros_(last.weight)
    nn.init.constant_(last.bias, 3.0)
    x = torch.randn(32, 4)
    assert torch.allclose(lam(x), eq(x), atol=1e-6)


def test_one_hot_lambda_equals_equizero() -> None:
    """A λ-net whose score is -1e4·proxy(head(h)) puts all weight on equizero's choice."""
    sym = cartpole_symmetry()
    zero = mlp_model(sym, "equizero", proxy_loss="neg_max")
    head = zero.head

    class ProxyScore(nn.Module):
        def forward(self, h: torch.Tensor) -> torch.Tensor:
            return 1e4 * head(h).max(-1).values

    lam = E.GroupAveraged(sym, zero.encoder, head, method="lambda", lambda_net=ProxyScore())
    x = torch.randn(32, 4)
    assert torch.allclose(lam(x), zero(x), atol=1e-5)


def test_equizero_picks_the_most_confident_view() -> None:
    sym = cartpole_symmetry()
    model = mlp_model(sym, "equizero", proxy_loss="neg_max")
    x = torch.randn(16, 4)
    orbit = sym.input_action.orbit(x).reshape(-1, 4)
    q = model.head(model.encoder(orbit)).reshape(2, 16, 2)
    best = q.max(-1).values.argmax(0)  # the view with the highest max-Q
    back = sym.output_action.inverse_each(q)
    expected = back[best, torch.arange(16)]
    assert torch.allclose(model(x), expected)


def test_equizero_ties_are_averaged_and_stay_equivariant() -> None:
    sym = cartpole_symmetry()
    model = mlp_model(sym, "equizero")
    x = torch.zeros(3, 4)  # fixed by the reflection: both views tie exactly
    out = model(x)
    assert torch.allclose(model.reducer.last_weights, torch.full((2, 3), 0.5))
    assert torch.allclose(out, out.flip(-1), atol=1e-6)  # invariant state -> ρ-symmetric Q
    assert E.equivariance_error(model, sym, x) <= 1e-6


def test_straight_through_gradient_equals_equitune_gradient() -> None:
    sym = cartpole_symmetry()
    zero = mlp_model(sym, "equizero", straight_through=True)
    mean = mlp_model(sym, "equitune")
    mean.load_state_dict(zero.state_dict())
    x = torch.randn(32, 4)
    upstream = torch.randn(32, 2)  # the same dL/d(output) for both: compares the Jacobians
    for m in (zero, mean):
        m.zero_grad()
        (m(x) * upstream).sum().backward()
    for pz, pm in zip(zero.parameters(), mean.parameters(), strict=True):
        assert torch.allclose(pz.grad, pm.grad, atol=1e-6)
    # the forward is still equizero's, not the mean
    assert not torch.allclose(zero(x), mean(x))


def test_lambda_weights_are_convex_and_input_dependent() -> None:
    sym = cartpole_symmetry()
    model = mlp_model(sym, "lambda")
    model(torch.randn(10, 4))
    w = model.reducer.last_weights
    assert w.shape == (2, 10) and bool((w > 0).all())
    assert torch.allclose(w.sum(0), torch.ones(10))
    assert w.std() > 1e-3


def test_default_lambda_starts_as_equitune() -> None:
    sym = cartpole_symmetry()
    torch.manual_seed(0)
    enc, head = nn.Sequential(nn.Linear(4, 16), nn.ReLU()), nn.Linear(16, 2)
    lam = E.GroupAveraged(sym, enc, head, method="lambda", feature_dim=16)
    eq = E.GroupAveraged(sym, enc, head, method="equitune")
    x = torch.randn(8, 4)
    assert torch.allclose(lam(x), eq(x), atol=1e-7)


@pytest.mark.parametrize("method", METHODS)
def test_equivariance_survives_training(method: str, c4_symmetry: E.Symmetry) -> None:
    model = mlp_model(c4_symmetry, method, in_dim=25, n_out=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(32, 1, 5, 5)
    target = torch.randn(32, 4)
    for _ in range(20):
        opt.zero_grad()
        ((model(x) - target) ** 2).mean().backward()
        opt.step()
    assert E.equivariance_error(model, c4_symmetry, torch.randn(16, 1, 5, 5)) <= 1e-5


def test_unknown_method_and_proxy() -> None:
    sym = cartpole_symmetry()
    with pytest.raises(ValueError, match="Unknown method 'average'.*equitune"):
        E.GroupAveraged(sym, nn.Linear(4, 2), method="average")
    with pytest.raises(ValueError, match="Unknown proxy loss 'confidence'"):
        E.GroupAveraged(sym, nn.Linear(4, 2), method="equizero", proxy_loss="confidence")
    with pytest.raises(ValueError, match="feature_dim"):
        E.GroupAveraged(sym, nn.Linear(4, 2), method="lambda")


def test_proxy_losses_prefer_confident_outputs() -> None:
    confident = torch.tensor([[[5.0, 0.0, 0.0]]])
    unsure = torch.tensor([[[1.0, 1.0, 0.9]]])
    both = torch.cat([confident, unsure])  # [G=2, B=1, K=3]
    for name, fn in E.PROXY_LOSSES.items():
        loss = fn(both)
        assert loss.shape == (2, 1), name
        assert loss[0, 0] < loss[1, 0], name


def test_weighted_sum_shapes() -> None:
    w = torch.tensor([[0.25, 1.0], [0.75, 0.0]])
    v = torch.arange(12.0).reshape(2, 2, 3)
    out = weighted_sum(w, v)
    assert torch.allclose(out[0], 0.25 * v[0, 0] + 0.75 * v[1, 0])
    assert torch.allclose(out[1], v[0, 1])


@pytest.mark.parametrize("method", ["equizero", "lambda"])
def test_reduce_orbit_per_position_weights_each_position_on_its_own(method: str) -> None:
    """position_dims=1 equals reducing every position separately (and differs from one weight per sample)."""
    sym = cartpole_symmetry()
    reducer = E.make_reducer(method, feature_dim=3)
    if method == "lambda":
        for p in reducer.parameters():
            nn.init.normal_(p, std=1.0)
    outputs, features = torch.randn(2, 4, 5, 2), torch.randn(2, 4, 5, 3)  # [G, B, T, K], [G, B, T, F]
    per_position = E.reduce_orbit(outputs, sym, reducer, features, position_dims=1)
    assert per_position.shape == (4, 5, 2)
    for t in range(5):
        alone = E.reduce_orbit(outputs[:, :, t], sym, reducer, features[:, :, t])
        assert torch.allclose(per_position[:, t], alone, atol=1e-6)
    if method == "equizero":  # one weight per sample (proxy averaged over positions) is another function
        assert not torch.allclose(per_position, E.reduce_orbit(outputs, sym, reducer), atol=1e-3)
