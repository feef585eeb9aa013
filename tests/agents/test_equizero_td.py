"""equizero-td: equizero's view selection, trained through the selected view, with an online-selected TD target."""

import torch
from equirl.agents import EquiDQNPolicy
from equirl.agents.policies import OnlineSelectedTarget
from equirl.envs import get_symmetry
from stable_baselines3 import DQN

import equirl as E
from tests.agents.image_env import RandomImageEnv
from tests.conftest import c4_image_symmetry

FAST = dict(
    learning_starts=50, train_freq=8, gradient_steps=4, batch_size=16, buffer_size=1000, target_update_interval=20
)


def cartpole_dqn(method: str, seed: int = 0) -> DQN:
    return DQN(
        EquiDQNPolicy,
        "CartPole-v1",
        policy_kwargs=dict(symmetry=get_symmetry("CartPole-v1"), method=method, net_arch=[32, 32]),
        seed=seed,
        **FAST,
    )


def test_equizero_td_reducer_selects_like_equizero_without_straight_through() -> None:
    torch.manual_seed(0)
    outputs = torch.randn(4, 5, 3)
    back = torch.randn(4, 5, 3, requires_grad=True)
    paper = E.make_reducer("equizero", straight_through=True)
    td = E.make_reducer("equizero-td", straight_through=True)  # no straight-through, whatever it says
    assert isinstance(td, E.ZeroTDReducer) and td.method == "equizero-td" and "equizero-td" in E.METHODS
    torch.testing.assert_close(td(outputs, back, None), paper(outputs, back, None), rtol=0, atol=1e-6)
    td(outputs, back, None).sum().backward()
    selected = torch.zeros(4, 5)
    selected[(-outputs.max(-1).values).argmin(0), torch.arange(5)] = 1.0
    # the gradient reaches the selected view of each sample only (equitune's would be 1/4 everywhere)
    torch.testing.assert_close(back.grad, selected.unsqueeze(-1).expand(4, 5, 3), rtol=0, atol=0)


def test_online_and_target_equivariant_before_and_after_training() -> None:
    sym = get_symmetry("CartPole-v1")
    model = cartpole_dqn("equizero-td")
    assert model.q_net.reducer.method == "equizero-td"
    assert isinstance(model.q_net_target, OnlineSelectedTarget) and model.q_net_target._online[0] is model.q_net
    states = torch.randn(64, 4)

    def check() -> None:
        for net in (model.q_net, model.q_net_target):
            assert E.equivariance_error(net, sym, states) <= 1e-5

    check()
    model.learn(300)
    assert model._n_updates > 0
    check()


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


def test_target_evaluates_the_online_view_not_the_max_over_views() -> None:
    sym = get_symmetry("CartPole-v1")
    td, paper = cartpole_dqn("equizero-td", seed=1), cartpole_dqn("equizero", seed=1)
    with torch.no_grad():  # a target network that disagrees with the online one (as after some updates)
        for p in td.q_net_target.parameters():
            p.add_(0.3 * torch.randn_like(p))
    paper.q_net_target.load_state_dict(td.q_net_target.state_dict())
    obs = torch.randn(256, 4) * 2
    target_views = _views(td.q_net_target, sym, obs)  # [G, B, A]
    online_views = _views(td.q_net, sym, obs)
    best = online_views.max(2).values.argmax(0)  # the online network's view, per sample
    with torch.no_grad():
        v_td = td.q_net_target(obs).max(1).values
        v_paper = paper.q_net_target(obs).max(1).values
    # the intended formulas: max_a Q'(g*·s) with g* chosen online; the paper's max_g max_a Q'(g·s)
    torch.testing.assert_close(v_td, target_views[best, torch.arange(len(obs))].max(1).values, rtol=0, atol=1e-6)
    torch.testing.assert_close(v_paper, target_views.max(2).values.max(0).values, rtol=0, atol=1e-6)
    assert bool((v_td <= v_paper + 1e-6).all())
    assert float((v_paper - v_td).max()) > 1e-3, "online and target should pick different views somewhere"
    # acting, the online network selects the view with the largest max-Q, as the paper's equizero
    with torch.no_grad():
        torch.testing.assert_close(td.q_net(obs), online_views[best, torch.arange(len(obs))], rtol=0, atol=1e-6)


def test_save_load_keeps_the_online_selected_target(tmp_path) -> None:
    model = cartpole_dqn("equizero-td")
    model.learn(100)
    model.save(tmp_path / "m.zip")
    loaded = DQN.load(tmp_path / "m.zip")
    assert loaded.q_net.reducer.method == "equizero-td"
    assert isinstance(loaded.q_net_target, OnlineSelectedTarget) and loaded.q_net_target._online[0] is loaded.q_net
    obs = torch.randn(16, 4)
    with torch.no_grad():
        torch.testing.assert_close(loaded.q_net_target(obs), model.q_net_target(obs))
