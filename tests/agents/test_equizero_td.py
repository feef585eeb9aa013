"""equizero-td: equizero's view selection online, equitune in the TD target network."""

import pytest
import torch
from equirl.agents import EquiDQNPolicy
from equirl.envs import get_symmetry
from stable_baselines3 import DQN

import equirl as E
from tests.agents.image_env import RandomImageEnv
from tests.conftest import c4_image_symmetry

FAST = dict(learning_starts=50, train_freq=8, gradient_steps=4, batch_size=16, buffer_size=1000, target_update_interval=20)


def cartpole_dqn(method: str, seed: int = 0) -> DQN:
    return DQN(
        EquiDQNPolicy,
        "CartPole-v1",
        policy_kwargs=dict(symmetry=get_symmetry("CartPole-v1"), method=method, net_arch=[32, 32]),
        seed=seed,
        **FAST,
    )


def test_td_target_method_maps_only_equizero_td() -> None:
    assert E.td_target_method("equizero-td") == "equitune"
    for m in ("equitune", "equizero", "lambda"):
        assert E.td_target_method(m) == m
    with pytest.raises(ValueError, match="Unknown method 'equizero_td'"):
        E.td_target_method("equizero_td")


def test_equizero_td_reducer_selects_like_equizero() -> None:
    torch.manual_seed(0)
    outputs = torch.randn(4, 5, 3)
    back = torch.randn(4, 5, 3)
    paper, td = E.make_reducer("equizero"), E.make_reducer("equizero-td")
    assert isinstance(td, E.ZeroTDReducer) and td.method == "equizero-td"
    torch.testing.assert_close(td(outputs, back, None), paper(outputs, back, None), rtol=0, atol=0)


def test_online_and_target_equivariant_before_and_after_training() -> None:
    sym = get_symmetry("CartPole-v1")
    model = cartpole_dqn("equizero-td")
    assert model.q_net.reducer.method == "equizero-td"
    assert model.q_net_target.reducer.method == "equitune"
    states = torch.randn(64, 4)
    for net in (model.q_net, model.q_net_target):
        assert E.equivariance_error(net, sym, states) <= 1e-5
    model.learn(300)
    assert model._n_updates > 0
    for net in (model.q_net, model.q_net_target):
        assert E.equivariance_error(net, sym, states) <= 1e-5


def test_image_c4_target_equivariant() -> None:
    from equirl.agents import SmallKernelCNN

    sym = c4_image_symmetry()
    model = DQN(
        EquiDQNPolicy,
        RandomImageEnv(),
        policy_kwargs=dict(
            symmetry=sym,
            method="equizero-td",
            net_arch=[16],
            features_extractor_class=SmallKernelCNN,
            features_extractor_kwargs=dict(features_dim=16),
        ),
        seed=0,
        **FAST,
    )
    obs = torch.randint(0, 256, (8, 1, 6, 6), dtype=torch.uint8)
    for net in (model.q_net, model.q_net_target):
        assert E.equivariance_error(net, sym, obs) <= 1e-5


def _views(net: torch.nn.Module, sym: E.Symmetry, obs: torch.Tensor) -> torch.Tensor:
    """``ρ(g)⁻¹ Q(g·s)`` for every element, ``[G, B, A]``, computed view by view."""
    G = sym.order
    orbit = sym.input_action.orbit(obs)  # [G, B, ...]
    with torch.no_grad():
        q = torch.stack([net.head(net.encode(orbit[g])) for g in range(G)])
    return sym.output_action.inverse_each(q)


def test_target_state_value_is_the_average_not_the_max_over_views() -> None:
    sym = get_symmetry("CartPole-v1")
    td, paper = cartpole_dqn("equizero-td", seed=1), cartpole_dqn("equizero", seed=1)
    paper.q_net_target.load_state_dict(td.q_net_target.state_dict())
    obs = torch.randn(256, 4) * 2
    views = _views(td.q_net_target, sym, obs)  # [G, B, A]
    with torch.no_grad():
        v_td = td.q_net_target(obs).max(1).values
        v_paper = paper.q_net_target(obs).max(1).values
    # the intended formulas: max_a mean_g for equizero-td, max_g max_a for the paper's equizero
    torch.testing.assert_close(v_td, views.mean(0).max(1).values, rtol=0, atol=1e-6)
    torch.testing.assert_close(v_paper, views.max(2).values.max(0).values, rtol=0, atol=1e-6)
    assert bool((v_td <= v_paper + 1e-6).all())
    gap = v_paper - v_td
    assert float(gap.max()) > 1e-3, "the views should disagree on random weights"
    # the online network still selects the view with the largest max-Q, as the paper's equizero
    with torch.no_grad():
        online = td.q_net(obs)
    online_views = _views(td.q_net, sym, obs)
    best = online_views.max(2).values.argmax(0)  # [B]
    torch.testing.assert_close(online, online_views[best, torch.arange(len(obs))], rtol=0, atol=1e-6)


def test_save_load_keeps_the_equitune_target(tmp_path) -> None:
    model = cartpole_dqn("equizero-td")
    model.learn(100)
    model.save(tmp_path / "m.zip")
    loaded = DQN.load(tmp_path / "m.zip")
    assert loaded.q_net.reducer.method == "equizero-td"
    assert loaded.q_net_target.reducer.method == "equitune"
    obs = torch.randn(16, 4)
    with torch.no_grad():
        torch.testing.assert_close(loaded.q_net_target(obs), model.q_net_target(obs))
