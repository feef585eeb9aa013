"""The Q-network's forward: equal to the general path, stateless unless a logger asks, statistics as tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from equirl.agents import GroupWeightLogger, build_dqn, load_hyperparams
from equirl.envs import get_symmetry, make_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.preprocessing import preprocess_obs

import equirl as E

METHODS = ["equitune", "equizero", "lambda"]


def _model(env_id: str, hp_id: str, method: str, **overrides):  # type: ignore[no-untyped-def]
    hp = load_hyperparams(hp_id)
    hp["policy_kwargs"]["net_arch"] = [32]
    model = build_dqn(make_env(env_id), method, get_symmetry(env_id), hp, seed=0, **overrides)
    if method == "lambda":
        torch.manual_seed(0)
        for p in model.q_net.reducer.parameters():
            torch.nn.init.normal_(p, std=0.5)
    return model


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("env_id", "hp_id"), [("CartPole-v1", "CartPole-v1"),
                                              ("MiniGrid-Empty-5x5-v0/full-D4", "MiniGrid-Empty-5x5-v0")])  # fmt: skip
def test_q_network_forward_equals_the_general_path(method: str, env_id: str, hp_id: str) -> None:
    """Raw (uint8) observations through the fast forward against: orbit of the raw observations by the
    general path, SB3's preprocessing, the network, inverse_each and the reducer module."""
    model = _model(env_id, hp_id, method)
    q_net = model.q_net.eval()
    sym = q_net.symmetry
    space = model.observation_space
    space.seed(0)
    obs = torch.as_tensor(torch.stack([torch.as_tensor(space.sample()) for _ in range(5)]))
    with torch.no_grad():
        fast = q_net(obs)
        G, B = sym.order, obs.shape[0]
        orbit = E.Action.orbit(sym.input_action, obs).reshape(G * B, *obs.shape[1:])  # the gather path
        h = q_net.features_extractor(preprocess_obs(orbit, space, q_net.normalize_images))
        for layer in list(q_net.q_net)[:-1]:
            h = layer(h)
        y = list(q_net.q_net)[-1](h).reshape(G, B, -1)
        general = q_net.reducer(y, sym.output_action.inverse_each(y), h.reshape(G, B, -1))
    assert torch.allclose(fast, general, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", ["equizero", "lambda"])
def test_forward_stores_nothing_unless_asked(method: str) -> None:
    model = _model("CartPole-v1", "CartPole-v1", method)
    q_net = model.q_net
    x = torch.randn(8, 4)
    for training in (False, True):
        q_net.train(training)
        q_net(x)
    assert q_net.reducer.last_weights is None and q_net.weight_stats() == {}
    q_net.collect_weight_stats = True
    q_net.eval()
    q_net(x)
    assert q_net.weight_stats(reset=False) == {}  # evaluation forwards are never counted
    q_net.train()
    q_net(x)
    q_net(x)
    assert all(type(v) is torch.Tensor for v in q_net._stats.values())  # no Python counters
    stats = q_net.weight_stats()
    assert set(stats) == {"entropy", "max_weight", "weight/e", "weight/r"}
    assert abs(stats["weight/e"] + stats["weight/r"] - 1) < 1e-6 and q_net.weight_stats() == {}


def test_group_weight_logger_switches_collection_on_and_off() -> None:
    model = _model("CartPole-v1", "CartPole-v1", "lambda", learning_starts=50, train_freq=16, gradient_steps=2,
                   batch_size=16)  # fmt: skip
    model.set_logger(Logger(None, []))
    assert model.q_net.collect_weight_stats is False
    seen = []

    class Probe(GroupWeightLogger):
        def _on_rollout_end(self) -> None:
            seen.append((self.model.q_net.collect_weight_stats, float(self.model.q_net._stats["count"])))
            super()._on_rollout_end()

    model.learn(200, callback=Probe())
    assert seen and all(on for on, _ in seen) and any(n > 0 for _, n in seen)
    assert model.q_net.collect_weight_stats is False  # off again after training
    assert model.q_net_target.collect_weight_stats is False


@pytest.mark.slow  # torch.compile's tracing takes several seconds
def test_training_forward_with_statistics_does_not_recompile_under_torch_compile() -> None:
    """Statistics are tensors (no Python counter that torch.compile would specialise on), so compiled
    training forwards that collect them compile once, not once per call."""
    import torch._dynamo
    import torch._dynamo.testing

    model = _model("CartPole-v1", "CartPole-v1", "lambda")
    q_net = model.q_net.train()
    q_net.collect_weight_stats = True
    torch._dynamo.reset()
    counter = torch._dynamo.testing.CompileCounter()  # dynamo only: no C++ compiler needed
    compiled = torch.compile(q_net, backend=counter)
    x = torch.randn(8, 4)
    for _ in range(3):
        compiled(x)
    frames = counter.frame_count
    for _ in range(6):
        compiled(x)
    assert counter.frame_count == frames
    assert float(q_net._stats["count"]) == 9
    torch._dynamo.reset()


@pytest.mark.parametrize("method", ["equitune", "lambda"])
def test_set_training_mode_reaches_every_module_and_skips_only_when_nothing_differs(method: str) -> None:
    """The policy's set_training_mode skips SB3's walk over the modules only when every module already has the
    mode: a submodule switched by hand, or one added later, still gets it."""
    policy = _model("CartPole-v1", "CartPole-v1", method).policy
    for mode in (False, True, False):
        policy.set_training_mode(mode)
        assert all(m.training is mode for m in policy.modules())
    policy.q_net.q_net[0].train()  # by hand, behind the policy's back
    policy.set_training_mode(False)
    assert all(not m.training for m in policy.modules())
    policy.q_net.extra = torch.nn.Linear(2, 2)  # a module registered later (in train mode)
    assert policy.q_net.extra.training
    policy.set_training_mode(False)
    assert not policy.q_net.extra.training
    policy.set_training_mode(True)
    assert all(m.training for m in policy.modules())


def test_lambda_scores_of_flat_orbit_features_equal_the_grouped_ones() -> None:
    """λ's weights read the orbit's features [G·B, F] as the network gives them, as from [G, B, F]."""
    torch.manual_seed(5)
    reducer = E.make_reducer("lambda", feature_dim=6)
    for p in reducer.parameters():
        torch.nn.init.normal_(p, std=0.5)
    h, y = torch.randn(4 * 3, 6), torch.randn(4, 3, 2)
    assert torch.equal(reducer.weights(y, h), reducer.weights(y, h.reshape(4, 3, 6)))
    assert torch.equal(reducer.scores(h, 4), reducer.scores(h.reshape(4, 3, 6)))


def test_plans_looked_up_by_shape_serve_every_batch_size() -> None:
    """The orbit and the inverse map, with plans cached by shape, agree with the general gather path for batch
    sizes in any order (one plan per shape, never one batch size's tensors for another)."""
    for env_id in ("CartPole-v1", "MiniGrid-Empty-5x5-v0", "MiniGrid-Empty-6x6-v0/full-D4"):
        sym = get_symmetry(env_id)
        space = make_env(env_id).observation_space
        for B in (1, 7, 1, 32, 7):
            x = torch.as_tensor(np.stack([space.sample() for _ in range(B)])).float()
            assert torch.equal(sym.input_action.orbit(x), E.Action.orbit(sym.input_action, x))
            y = torch.randn(sym.order, B, 7 if "Grid" in env_id else 2)
            general = sym.output_action.apply_each(y[list(sym.group.inverse_table)])[list(sym.group.inverse_table)]
            assert torch.equal(sym.output_action.inverse_each(y), general)


def test_straight_through_forward_values_equal_the_selected_ones() -> None:
    """equizero's training forward (weighted sum outside autograd, the mean carrying the gradient) gives the values
    of the selected views, as the evaluation forward does, and the gradient of equitune."""
    torch.manual_seed(6)
    model = _model("CartPole-v1", "CartPole-v1", "equizero")
    q_net = model.q_net.train()
    x = torch.randn(9, 4)
    x[0] = -x[1]  # an orbit pair: tied views
    out = q_net(x)
    assert out.requires_grad
    with torch.no_grad():
        selected = q_net(x)
        mean = E.symmetrize(x, q_net.symmetry, q_net.encode, q_net.head, E.make_reducer("equitune"))
    assert torch.equal(out, mean + (selected - mean))  # the straight-through values, bit for bit
    assert torch.allclose(out, selected, atol=1e-6, rtol=0)
    out.sum().backward()
    grads = [p.grad.clone() for p in q_net.q_net.parameters()]
    q_net.zero_grad()
    sym = q_net.symmetry
    E.symmetrize(x, sym, q_net.encode, q_net.head, E.make_reducer("equitune")).sum().backward()
    for a, p in zip(grads, q_net.q_net.parameters(), strict=True):
        assert torch.allclose(a, p.grad, atol=1e-6)
