"""EquiActorCriticPolicy: an equivariant action distribution and an invariant value for PPO and A2C."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch as th
from equirl.agents import EquiActorCriticPolicy, EquiDQNPolicy
from equirl.envs import get_symmetry, verify_symmetry
from gymnasium import spaces
from stable_baselines3 import A2C, PPO

from equirl import METHODS, PermutationAction, SignedPermutationAction, Symmetry, cyclic, equivariance_error


def _policy(
    obs_space: spaces.Space, action_space: spaces.Space, symmetry: Symmetry, method: str, **kw: object
) -> EquiActorCriticPolicy:
    policy = EquiActorCriticPolicy(
        obs_space, action_space, lambda _: 3e-4, symmetry=symmetry, method=method, net_arch=[16, 16], **kw
    )
    th.nn.init.normal_(policy.action_net.weight)  # SB3 starts the actor near zero (gain 0.01)
    for reducer in (policy.reducer, policy.value_reducer):
        if reducer is not None and reducer.method == "lambda":  # λ-nets start at zero (= equitune)
            th.nn.init.normal_(reducer.lambda_net[-1].weight)
    return policy


def _env_policy(env: str, method: str, **kw: object) -> tuple[EquiActorCriticPolicy, Symmetry]:
    from equirl.envs import make_env

    e = make_env(env)
    sym = get_symmetry(env)
    return _policy(e.observation_space, e.action_space, sym, method, **kw), sym


def _check_distribution(policy: EquiActorCriticPolicy, sym: Symmetry, x: th.Tensor) -> None:
    """Logits or (mean, std) equivariant, the value invariant, the log-probabilities equivariant."""
    G, B = sym.order, x.shape[0]
    with th.no_grad():
        assert equivariance_error(lambda o: policy.symmetrised_outputs(o)[0], sym, x) <= 1e-5
        values = policy.predict_values(x)
        orbit = sym.input_action.orbit(x).flatten(0, 1)
        assert (policy.predict_values(orbit).reshape(G, B, 1) - values).abs().max() <= 1e-5
        # SB3's distribution objects are reused by the policy: read each before the next call
        dist_x = policy.get_distribution(x)
        actions = dist_x.sample()  # [B] or [B, A]
        logp_x = dist_x.log_prob(actions)
        std_x = dist_x.distribution.stddev if actions.dim() > 1 else None
        dist_orbit = policy.get_distribution(orbit)
        if std_x is None:  # logits: log π(ρ(g)a | g·s) = log π(a | s), with ρ(g) permuting the logits
            onehot = th.nn.functional.one_hot(actions, policy.action_space.n).float()
            moved = sym.output_action.orbit(onehot).argmax(-1).flatten(0, 1)
        else:
            moved = sym.output_action.orbit(actions).flatten(0, 1)
            std_orbit = dist_orbit.distribution.stddev.reshape(G, B, -1)
            assert (std_orbit - sym.output_action.orbit(std_x).abs()).abs().max() <= 1e-5
        logp_orbit = dist_orbit.log_prob(moved).reshape(G, B)
        assert (logp_orbit - logp_x).abs().max() <= 1e-4


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("env", ["CartPole-v1", "Acrobot-v1", "Pendulum-v1"])
def test_distribution_equivariant_and_value_invariant(env: str, method: str) -> None:
    policy, sym = _env_policy(env, method)
    x = th.randn(16, policy.observation_space.shape[0])
    _check_distribution(policy, sym, x)
    # the unsymmetrised actor is not equivariant: the check above can fail
    raw = lambda o: policy.action_net(policy._latents(o)[0])  # noqa: E731
    assert equivariance_error(raw, sym, x) > 1e-4


@pytest.mark.parametrize("method", ["equizero", "lambda"])
def test_separate_feature_extractors_and_actor_proxy(method: str) -> None:
    policy, sym = _env_policy("CartPole-v1", method, share_features_extractor=False, proxy_target="actor",
                              proxy_loss="entropy")  # fmt: skip
    assert policy.vf_features_extractor is not policy.pi_features_extractor
    _check_distribution(policy, sym, th.randn(16, 4))


def test_equizero_actor_and_critic_use_the_view_the_critic_values_most() -> None:
    policy, sym = _env_policy("Pendulum-v1", "equizero")
    x = th.randn(8, 3)
    with th.no_grad():
        orbit = sym.input_action.orbit(x).flatten(0, 1)
        latent_pi, latent_vf = policy._latents(orbit)
        v = policy.value_net(latent_vf).reshape(2, 8)
        mean = sym.output_action.inverse_each(policy.action_net(latent_pi).reshape(2, 8, 1))
        best = v.argmax(0)
        actor, values = policy.symmetrised_outputs(x)
    assert th.allclose(values.squeeze(-1), v.max(0).values)
    assert th.allclose(actor, mean[best, th.arange(8)])


def test_log_std_is_symmetrised() -> None:
    """With two action entries that the group swaps, a log-std that differs between them is not invariant:
    the distribution is equivariant only because the policy averages it over the group's action."""
    c2 = cyclic(2)
    sym = Symmetry(c2, PermutationAction(c2, [[2, 3, 0, 1]]), SignedPermutationAction(c2, [[1, 0]], signs=[[-1, -1]]))
    policy = _policy(spaces.Box(-1, 1, (4,)), spaces.Box(-1, 1, (2,)), sym, "equitune")
    with th.no_grad():
        policy.log_std.copy_(th.tensor([0.0, 1.0]))
    raw_std = policy.log_std.exp()
    # without symmetrising, std(g·s) = std(s) (state-independent) but should be |ρ(g)| std(s): not equal here
    assert (sym.output_action.orbit(raw_std).abs()[1] - raw_std).abs().max() > 0.5
    _check_distribution(policy, sym, th.randn(16, 4))
    assert th.allclose(policy.symmetrised_log_std(), th.tensor([0.5, 0.5]))
    # the symmetrised log-std still trains: its gradient reaches the parameter
    policy.symmetrised_log_std().sum().backward()
    assert policy.log_std.grad is not None and th.allclose(policy.log_std.grad, th.ones(2))


def test_clear_errors() -> None:
    sym = get_symmetry("CartPole-v1")
    box, disc = spaces.Box(-1, 1, (4,)), spaces.Discrete(2)
    with pytest.raises(TypeError, match="needs policy_kwargs=dict\\(symmetry"):
        EquiActorCriticPolicy(box, disc, lambda _: 1e-3)
    with pytest.raises(ValueError, match="use_sde"):
        EquiActorCriticPolicy(box, disc, lambda _: 1e-3, symmetry=sym, use_sde=True)
    with pytest.raises(ValueError, match="proxy_target"):
        EquiActorCriticPolicy(box, disc, lambda _: 1e-3, symmetry=sym, proxy_target="value")
    with pytest.raises(TypeError, match="Discrete and 1-D Box"):
        EquiActorCriticPolicy(box, spaces.MultiDiscrete([2, 2]), lambda _: 1e-3, symmetry=sym)
    with pytest.raises(ValueError, match="does not fit outputs"):
        EquiActorCriticPolicy(box, spaces.Discrete(3), lambda _: 1e-3, symmetry=sym)
    with pytest.raises(TypeError, match="PPO is building it.*EquiActorCriticPolicy"):
        PPO(EquiDQNPolicy, "CartPole-v1", policy_kwargs=dict(symmetry=sym))


def test_pendulum_symmetry_is_verified() -> None:
    assert verify_symmetry("Pendulum-v1", seeds=(0,), steps=200).ok
    c2 = cyclic(2)  # the torque not flipped: not a symmetry, and the verifier says so
    wrong = Symmetry(c2, get_symmetry("Pendulum-v1").input_action, SignedPermutationAction(c2, [[0]], signs=[[1.0]]))
    assert not verify_symmetry("Pendulum-v1", wrong, seeds=(0,), steps=200).ok


@pytest.mark.parametrize("method", METHODS)
def test_ppo_pendulum_and_a2c_cartpole_train(method: str) -> None:
    for algo, env, kw in [
        (PPO, "Pendulum-v1", dict(n_steps=128, batch_size=64, n_epochs=2)),
        (A2C, "CartPole-v1", dict(n_steps=8)),
    ]:
        sym = get_symmetry(env)
        model = algo(EquiActorCriticPolicy, env, policy_kwargs=dict(symmetry=sym, method=method, net_arch=[16]),
                     seed=0, **kw)  # fmt: skip
        model.learn(256)
        x = th.randn(8, model.observation_space.shape[0])
        assert equivariance_error(lambda o, p=model.policy: p.symmetrised_outputs(o)[0], sym, x) <= 1e-5


def test_sb3_save_load_is_identical_in_a_fresh_process(tmp_path: Path) -> None:
    model = PPO(EquiActorCriticPolicy, "Pendulum-v1", n_steps=64, batch_size=32, n_epochs=1, seed=0,
                policy_kwargs=dict(symmetry=get_symmetry("Pendulum-v1"), method="lambda", net_arch=[16]))  # fmt: skip
    model.learn(64)
    path = tmp_path / "ppo.zip"
    model.save(path)
    x = th.randn(8, 3)
    th.save(x, tmp_path / "x.pt")
    with th.no_grad():
        mean, values = model.policy.symmetrised_outputs(x)
        log_std = model.policy.symmetrised_log_std()
    code = textwrap.dedent(
        f"""
        import torch as th
        from stable_baselines3 import PPO
        model = PPO.load({str(path)!r})
        x = th.load({str(tmp_path / "x.pt")!r})
        with th.no_grad():
            th.save((*model.policy.symmetrised_outputs(x), model.policy.symmetrised_log_std(), model.policy.method),
                    {str(tmp_path / "out.pt")!r})
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    mean2, values2, log_std2, method = th.load(tmp_path / "out.pt")
    assert method == "lambda" and th.equal(mean, mean2) and th.equal(values, values2) and th.equal(log_std, log_std2)


def test_plain_ppo_weights_transfer_zero_shot() -> None:
    """A plain PPO's weights load into the equivariant policy; equitune is then the group average of the plain
    network's outputs (zero-shot transfer), and a different architecture is a clear error."""
    from equirl.agents.symmetrised import load_plain_weights

    sym = get_symmetry("Pendulum-v1")
    plain = PPO("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=[16]), seed=1)
    model = PPO(EquiActorCriticPolicy, "Pendulum-v1", policy_kwargs=dict(symmetry=sym, method="lambda", net_arch=[16]))
    left = load_plain_weights(model.policy, plain.policy.state_dict())
    assert left and all("reducer." in k for k in left)
    x = th.randn(8, 3)
    with th.no_grad():
        orbit = sym.input_action.orbit(x).flatten(0, 1)
        lp, lv = plain.policy.mlp_extractor(plain.policy.extract_features(orbit))
        mean = sym.output_action.inverse_each(plain.policy.action_net(lp).reshape(2, 8, 1)).mean(0)
        value = plain.policy.value_net(lv).reshape(2, 8, 1).mean(0)
        actor, values = model.policy.symmetrised_outputs(x)  # the λ-nets start at zero: equitune
    assert th.allclose(actor, mean, atol=1e-6) and th.allclose(values, value, atol=1e-6)
    wider = PPO(EquiActorCriticPolicy, "Pendulum-v1", policy_kwargs=dict(symmetry=sym, net_arch=[32]))
    with pytest.raises(ValueError, match="do not fit"):
        load_plain_weights(wider.policy, plain.policy.state_dict())


@pytest.mark.parametrize("method", ["equizero", "lambda"])
def test_ppo_on_images_with_vectorised_envs(method: str) -> None:
    """RotGrid's D4 on uint8 image observations (a CNN extractor, 2 vectorised environments)."""
    from equirl.agents import SmallKernelCNN
    from equirl.envs import make_env
    from stable_baselines3.common.env_util import make_vec_env

    name = "equirl/RotGrid-v0"
    sym = get_symmetry(name)
    venv = make_vec_env(lambda: make_env(name), n_envs=2, seed=0)
    model = PPO(EquiActorCriticPolicy, venv, n_steps=16, batch_size=16, n_epochs=1, seed=0,
                policy_kwargs=dict(symmetry=sym, method=method, net_arch=[16], features_extractor_class=SmallKernelCNN,
                                   features_extractor_kwargs=dict(features_dim=32)))  # fmt: skip
    model.learn(64)
    obs = th.as_tensor(np.stack([venv.observation_space.sample() for _ in range(6)]))  # uint8 [6, 4, 7, 7]
    assert obs.dtype == th.uint8
    _check_distribution(model.policy, sym, obs)


def test_other_algorithms_building_the_new_policies_get_a_clear_error() -> None:
    from equirl.agents import EquiQRDQNPolicy
    from sb3_contrib import QRDQN
    from stable_baselines3 import DQN

    kw = dict(policy_kwargs=dict(symmetry="CartPole-v1"))
    with pytest.raises(
        TypeError, match="EquiActorCriticPolicy is a policy for OnPolicyAlgorithm, but DQN .*EquiDQNPolicy"
    ):
        DQN(EquiActorCriticPolicy, "CartPole-v1", **kw)
    with pytest.raises(TypeError, match="but QRDQN is building it; use equirl.agents.EquiQRDQNPolicy"):
        QRDQN(EquiActorCriticPolicy, "CartPole-v1", **kw)
    with pytest.raises(TypeError, match="EquiQRDQNPolicy is a policy for QRDQN, but PPO .*EquiActorCriticPolicy"):
        PPO(EquiQRDQNPolicy, "CartPole-v1", **kw)
    with pytest.raises(TypeError, match="but DQN is building it; use equirl.agents.EquiDQNPolicy"):
        DQN(EquiQRDQNPolicy, "CartPole-v1", **kw)
