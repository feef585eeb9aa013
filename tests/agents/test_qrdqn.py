"""EquiQRDQNPolicy: equivariant quantiles (online and target), every method, training, SB3 save/load."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch as th
from equirl.agents import EquiDQNPolicy, EquiQRDQNPolicy
from equirl.agents.qrdqn import EquiQuantileNetwork, OnlineSelectedQuantileTarget
from equirl.envs import get_symmetry
from sb3_contrib import QRDQN

from equirl import METHODS, equivariance_error

SYM = get_symmetry("Acrobot-v1")  # 3 actions, action 1 fixed: a permutation that is not a plain swap of all
KW = dict(n_quantiles=5, net_arch=[16, 16])


def _model(method: str, env: str = "Acrobot-v1", **kw: object) -> QRDQN:
    model = QRDQN(
        EquiQRDQNPolicy, env, policy_kwargs=dict(symmetry=get_symmetry(env), method=method, **KW), seed=0, **kw
    )
    for net in (model.policy.quantile_net, model.policy.quantile_net_target):
        if net.method == "lambda":  # a λ-net that is not uniform (it starts at zero = equitune)
            th.nn.init.normal_(net.reducer.lambda_net[-1].weight, std=1.0)
    return model


@pytest.mark.parametrize("method", METHODS)
def test_quantiles_are_equivariant_online_and_target(method: str) -> None:
    model = _model(method)
    x = th.randn(32, 6)
    for net in (model.policy.quantile_net, model.policy.quantile_net_target):
        assert isinstance(net, EquiQuantileNetwork)
        assert net(x).shape == (32, 5, 3)
        assert equivariance_error(net, SYM, x) <= 1e-5
        # the unsymmetrised network is not equivariant: the check above can fail
        assert equivariance_error(lambda o, n=net: n.head(n.encode(o)), SYM, x) > 1e-4
    if method == "equizero-td":
        target = model.policy.quantile_net_target
        assert isinstance(target, OnlineSelectedQuantileTarget) and target._online[0] is model.policy.quantile_net


@pytest.mark.parametrize("method", METHODS)
def test_quantiles_are_equivariant_under_a_group_of_order_8(method: str) -> None:
    """RotGrid's D4 on flat observations: the orbit's rows come sample-major (|G| > 2), and every method stays
    equivariant, λ with weights far from uniform."""
    name = "equirl/RotGrid-v0/flat"
    sym = get_symmetry(name)
    from equirl.envs import make_env

    model = QRDQN(EquiQRDQNPolicy, make_env(name), policy_kwargs=dict(symmetry=sym, method=method, **KW), seed=0)
    x = th.as_tensor(np.stack([model.observation_space.sample() for _ in range(12)])).float()
    assert sym.input_action.orbit_by_sample(x) is not None
    for net in (model.policy.quantile_net, model.policy.quantile_net_target):
        if net.method == "lambda":
            th.nn.init.normal_(net.reducer.lambda_net[-1].weight, std=1.0)
        assert equivariance_error(net, sym, x) <= 1e-5


def test_equizero_scores_the_mean_over_quantiles_and_moves_actions_only() -> None:
    net = _model("equizero").policy.quantile_net
    x = th.randn(8, 6)
    with th.no_grad():
        q, _ = net.orbit_quantiles(x)  # [G, B, Nq, A]
        best = q.mean(-2).max(-1).values.argmax(0)  # the view of largest max_a mean_q θ
        back = SYM.output_action.inverse_each(q)  # actions permuted, quantiles untouched
        expected = back[best, th.arange(8)]
        assert th.allclose(net(x), expected, atol=1e-6)
        # the reflected view's quantiles are those of the identity view with actions 0 and 2 swapped
        assert th.equal(back[1][..., [2, 1, 0]], q[1])


@pytest.mark.parametrize("method", METHODS)
def test_qrdqn_trains_under_every_method(method: str) -> None:
    model = _model(method, "CartPole-v1", learning_starts=64, train_freq=4, batch_size=16, target_update_interval=50)
    model.learn(240)
    x = th.randn(16, 4)
    for net in (model.policy.quantile_net, model.policy.quantile_net_target):
        assert equivariance_error(net, get_symmetry("CartPole-v1"), x) <= 1e-5


def test_dqn_policy_in_qrdqn_points_to_the_qrdqn_policy() -> None:
    with pytest.raises(TypeError, match="QRDQN is building it.*EquiQRDQNPolicy"):
        QRDQN(EquiDQNPolicy, "CartPole-v1", policy_kwargs=dict(symmetry=SYM))
    with pytest.raises(TypeError, match="needs policy_kwargs=dict\\(symmetry"):
        QRDQN(EquiQRDQNPolicy, "CartPole-v1")
    with pytest.raises(TypeError, match="actor-critic"):
        EquiQRDQNPolicy(SYM, SYM, lambda _: 1e-3, symmetry=SYM, use_sde=False)  # type: ignore[arg-type]


def test_sb3_save_load_is_identical_in_a_fresh_process(tmp_path: Path) -> None:
    model = _model("lambda", learning_starts=10, train_freq=4)
    model.learn(60)
    path = tmp_path / "qrdqn.zip"
    model.save(path)
    x = th.randn(8, 6)
    th.save(x, tmp_path / "x.pt")
    with th.no_grad():
        online, target = model.policy.quantile_net(x), model.policy.quantile_net_target(x)
    code = textwrap.dedent(
        f"""
        import torch as th
        from sb3_contrib import QRDQN
        model = QRDQN.load({str(path)!r})
        x = th.load({str(tmp_path / "x.pt")!r})
        with th.no_grad():
            th.save((model.policy.quantile_net(x), model.policy.quantile_net_target(x),
                     model.policy.quantile_net.method), {str(tmp_path / "out.pt")!r})
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    online2, target2, method = th.load(tmp_path / "out.pt")
    assert method == "lambda" and th.equal(online, online2) and th.equal(target, target2)


def test_plain_qrdqn_weights_transfer() -> None:
    from equirl.agents.symmetrised import load_plain_weights

    plain = QRDQN("MlpPolicy", "Acrobot-v1", policy_kwargs=KW, seed=1)
    model = _model("equitune")
    assert load_plain_weights(model.policy, plain.policy.state_dict()) == []  # equitune has no λ-net
    x = th.randn(8, 6)
    with th.no_grad():
        q = plain.policy.quantile_net(SYM.input_action.orbit(x).flatten(0, 1)).reshape(2, 8, 5, 3)
        assert th.allclose(model.policy.quantile_net(x), SYM.output_action.inverse_each(q).mean(0), atol=1e-6)
