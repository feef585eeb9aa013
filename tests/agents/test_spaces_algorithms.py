"""QR-DQN and actor-critic (PPO, A2C) on Discrete, MultiDiscrete, MultiBinary and Dict observations, through
the same code in agents/spaces.py that DQN uses (saving and loading them in a fresh process:
tests/agents/test_io_algorithms.py)."""

from __future__ import annotations

from typing import Any

import pytest
import torch as th
from equirl.agents import EquiActorCriticPolicy, EquiQRDQNPolicy
from equirl.agents.qrdqn import EquiQuantileNetwork
from gymnasium import spaces
from sb3_contrib import QRDQN
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.torch_layers import CombinedExtractor

from equirl import METHODS
from equirl.averaging import LambdaReducer, equivariance_error
from tests.agents.test_spaces import CASES, DictGrid, PerKeyExtractor, dict_symmetry, sample_batch


def _qrdqn(case: str, method: str, **kw: Any) -> QRDQN:
    make_env, make_sym = CASES[case]
    return QRDQN(
        EquiQRDQNPolicy, make_env(), buffer_size=1000, learning_starts=32, batch_size=16, train_freq=4,
        target_update_interval=50, policy_kwargs=dict(symmetry=make_sym(), method=method, net_arch=[32],
        n_quantiles=5, **kw), seed=0, device="cpu",
    )  # fmt: skip


def _actor_critic(case: str, method: str, algo: type = PPO, **kw: Any) -> Any:
    make_env, make_sym = CASES[case]
    extra = dict(n_steps=64, batch_size=32, n_epochs=2) if algo is PPO else dict(n_steps=8)
    return algo(
        EquiActorCriticPolicy, make_env(), policy_kwargs=dict(symmetry=make_sym(), method=method, net_arch=[32], **kw),
        seed=0, device="cpu", **extra,
    )  # fmt: skip


def _randomise(policy: th.nn.Module) -> None:
    """Move λ-nets away from their zero start and the actor away from SB3's near-zero start, so that
    equivariance is not met by near-constant outputs."""
    for module in policy.modules():
        if isinstance(module, LambdaReducer):
            th.nn.init.normal_(module.lambda_net[-1].weight)
    if hasattr(policy, "action_net"):
        th.nn.init.normal_(policy.action_net.weight)


def _check(model: Any, obs: Any) -> None:
    """Equivariance <= 1e-5 of every symmetrised output at raw observations ``obs``; outputs not constant."""
    policy, sym = model.policy, model.policy.symmetry
    policy.set_training_mode(False)
    if isinstance(policy, EquiQRDQNPolicy):
        for net in (policy.quantile_net, policy.quantile_net_target):
            assert isinstance(net, EquiQuantileNetwork) and equivariance_error(net, sym, obs) <= 1e-5
        out = policy.quantile_net(obs)
    else:
        assert equivariance_error(lambda o: policy.symmetrised_outputs(o)[0], sym, obs) <= 1e-5
        # the value is invariant: the same at every view of the observations
        orbit = sym.input_action.orbit(obs)
        views = [{k: v[g] for k, v in orbit.items()} if isinstance(orbit, dict) else orbit[g] for g in range(sym.order)]
        values = policy.predict_values(obs)
        assert all((policy.predict_values(v) - values).abs().max() <= 1e-5 for v in views)
        out = policy.symmetrised_outputs(obs)[0]
    assert out.std(0).max() > 1e-4


@pytest.mark.parametrize("case", ["discrete", "dict"])
@pytest.mark.parametrize("method", METHODS)
def test_qrdqn_and_ppo_train_and_stay_equivariant(case: str, method: str) -> None:
    """A few hundred training steps of QR-DQN and PPO on a Discrete (FrozenLake) and a Dict environment."""
    for model in (_qrdqn(case, method), _actor_critic(case, method)):
        model.learn(192)
        _randomise(model.policy)
        _check(model, sample_batch(model.observation_space, 32))


@pytest.mark.parametrize("case", ["multidiscrete", "multibinary"])
def test_the_other_spaces_and_a2c(case: str) -> None:
    """MultiDiscrete and MultiBinary too, and A2C: construction, a short training run, equivariance."""
    for model in (_qrdqn(case, "equizero"), _actor_critic(case, "lambda"), _actor_critic(case, "equizero", A2C)):
        model.learn(64)
        _randomise(model.policy)
        _check(model, sample_batch(model.observation_space, 32))


def test_dict_observations_use_the_combined_extractor_or_a_custom_one() -> None:
    model = _actor_critic("dict", "lambda", share_features_extractor=False)
    assert isinstance(model.policy.pi_features_extractor, CombinedExtractor)
    custom = _qrdqn("dict", "lambda", features_extractor_class=PerKeyExtractor)
    assert isinstance(custom.policy.quantile_net.features_extractor, PerKeyExtractor)
    for m in (model, custom):
        _randomise(m.policy)
        _check(m, sample_batch(DictGrid.observation_space, 16))
    seen: list[int] = []  # the Dict orbit is one batched forward
    hook = model.policy.pi_features_extractor.register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    model.policy.symmetrised_outputs(sample_batch(DictGrid.observation_space, 5))
    hook.remove()
    assert seen == [dict_symmetry().order * 5]


def test_refusal_names_the_space() -> None:
    from equirl import Symmetry
    from equirl.actions import PermutationAction
    from equirl.groups import cyclic

    g = cyclic(2)
    wrong = Symmetry(g, PermutationAction(g, [[1, 0, 2]]), PermutationAction(g, [[1, 0, 3, 2]]), name="wrong")
    with pytest.raises(ValueError, match="MultiDiscrete observation space"):
        EquiActorCriticPolicy(spaces.MultiDiscrete([5, 5]), spaces.Discrete(4), lambda _: 1e-3, symmetry=wrong)
