"""SB3's own DQN test cases with ``EquiDQNPolicy`` substituted (issue 16, item 5).

The cases SB3's DQN tests exercise, with exact equivariance checks they lack, on
SB3's own test environments (``stable_baselines3.common.envs``): ``test_spaces`` (MultiDiscrete and
MultiBinary observations), ``test_identity`` (Discrete observations), ``test_predict`` (single and
batched observations), ``test_save_load``, ``test_dict_env`` (``SimpleMultiObsEnv``, images and vectors)
and ``test_her`` (``BitFlippingEnv`` with MultiBinary, Discrete and image goals). Each uses a real
symmetry where the environment has one and a trivially acting group otherwise (``trivial_symmetry``), for
every method. SB3's own test files, run with ``EquiDQNPolicy`` substituted, are in ``tests/sb3_upstream``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from equirl.agents import EquiDQNPolicy
from equirl.envs.catalog import bitflipping_symmetry, trivial_symmetry
from gymnasium import spaces
from stable_baselines3 import DQN, HerReplayBuffer
from stable_baselines3.common.envs import (
    BitFlippingEnv,
    IdentityEnv,
    IdentityEnvMultiBinary,
    IdentityEnvMultiDiscrete,
    SimpleMultiObsEnv,
)
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from equirl import Symmetry
from equirl.actions import DictAction, PermutationAction, ValuePermutationAction
from equirl.averaging import equivariance_error
from equirl.groups import cyclic

METHODS = (
    "lambda",
    pytest.param("equitune", marks=pytest.mark.slow),
    pytest.param("equizero", marks=pytest.mark.slow),
)
"""Every method; the default suite runs λ-equitune here (tests/agents/test_spaces.py checks every method on every
space in the default suite), ``-m slow`` the other two."""


def identity_symmetry(n: int) -> Symmetry:
    """IdentityEnv(n): reward when the action equals the state; a cyclic shift of both is a symmetry.

    ``g·s = s + 1 mod n`` and, since ``Q(s)[a] = [a == s]``, ``Q(g·s)[i] = Q(s)[i - 1 mod n]``.
    """
    g = cyclic(n)
    return Symmetry(
        g,
        ValuePermutationAction(g, [[(s + 1) % n for s in range(n)]]),
        PermutationAction(g, [[(i - 1) % n for i in range(n)]]),
        name=f"identity C{n}",
    )


def batch(space: spaces.Space, n: int = 8) -> th.Tensor | dict[str, th.Tensor]:
    space.seed(0)
    xs = [space.sample() for _ in range(n)]
    if isinstance(space, spaces.Dict):
        return {k: th.as_tensor(np.stack([np.asarray(x[k]) for x in xs])) for k in space.spaces}
    return th.as_tensor(np.stack([np.asarray(x) for x in xs]))


def check_equivariant(model: DQN) -> None:
    obs = batch(model.observation_space)
    for net in (model.q_net, model.q_net_target):
        assert equivariance_error(net, model.policy.symmetry, obs) <= 1e-5


# -- test_spaces: MultiDiscrete / MultiBinary observations (SB3's DummyMultiDiscreteSpace / DummyMultiBinary) --
class DummySpaceEnv(gym.Env):  # type: ignore[type-arg]
    """SB3's DummyMultiDiscreteSpace / DummyMultiBinary: random observations of ``space``, Discrete(2) actions."""

    action_space = spaces.Discrete(2)

    def __init__(self, space: spaces.Space) -> None:
        self.observation_space = space
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        self.steps = 0
        return self.observation_space.sample(), {}

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict]:
        self.steps += 1
        return self.observation_space.sample(), 0.0, False, self.steps >= 10, {}


@pytest.mark.parametrize("space", [spaces.MultiDiscrete([4, 3]), spaces.MultiBinary(8), spaces.MultiBinary((7, 2))])
@pytest.mark.parametrize("method", METHODS)
def test_spaces(space: spaces.Space, method: str) -> None:
    model = DQN(EquiDQNPolicy, DummySpaceEnv(space), gamma=0.5, seed=1, learning_starts=20, buffer_size=1000,
                policy_kwargs=dict(symmetry=trivial_symmetry(space, spaces.Discrete(2)), method=method, net_arch=[64]))  # fmt: skip
    model.learn(100)
    evaluate_policy(model, model.get_env(), n_eval_episodes=5, warn=False)
    check_equivariant(model)


# -- test_identity: Discrete observations; SB3's DQN skips the MultiDiscrete / MultiBinary action variants -----
@pytest.mark.parametrize("method", METHODS)
def test_identity_discrete(method: str) -> None:
    env = IdentityEnv(10)
    model = DQN(EquiDQNPolicy, DummyVecEnv([lambda: env]), learning_starts=0, seed=0, buffer_size=1000,
                policy_kwargs=dict(symmetry=identity_symmetry(10), method=method))  # fmt: skip
    model.learn(300)
    check_equivariant(model)
    evaluate_policy(model, model.get_env(), n_eval_episodes=2, warn=False)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lambda", "equitune", "equizero"])
def test_identity_discrete_learns(method: str) -> None:
    """SB3's threshold: mean reward >= 90 of 100 after training (SB3 trains its DQN 10,000 steps)."""
    model = DQN(EquiDQNPolicy, DummyVecEnv([lambda: IdentityEnv(10)]), learning_starts=0, seed=0,
                policy_kwargs=dict(symmetry=identity_symmetry(10), method=method))  # fmt: skip
    model.learn(10_000)
    mean_reward, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=20, warn=False)
    assert mean_reward >= 90


@pytest.mark.parametrize("env_class", [IdentityEnvMultiDiscrete, IdentityEnvMultiBinary])
def test_identity_multi_action_spaces_are_refused(env_class: type) -> None:
    """As SB3's DQN (which needs a Discrete action space), a clear error for MultiDiscrete / MultiBinary actions."""
    with pytest.raises(AssertionError, match="only supports .*Discrete.* as action spaces"):
        DQN(
            EquiDQNPolicy,
            env_class(10),
            policy_kwargs=dict(symmetry=trivial_symmetry(spaces.Discrete(10), spaces.Discrete(2))),
        )


# -- test_predict: single and batched observations, deterministic and not --------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_predict(method: str) -> None:
    env = IdentityEnv(10)
    model = DQN(EquiDQNPolicy, env, seed=0, buffer_size=100,
                policy_kwargs=dict(symmetry=identity_symmetry(10), method=method))  # fmt: skip
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
    actions, _ = model.predict(np.array([0, 3, 7]), deterministic=True)
    assert actions.shape == (3,)
    # equivariance of the greedy action: shifting the state shifts the action (the policy acts on orbits)
    q = model.q_net(th.arange(10))
    assert th.equal(q.argmax(1), (q[0].argmax() + th.arange(10)) % 10)
    vec = DummyVecEnv([lambda: IdentityEnv(10)] * 2)
    actions, _ = model.predict(vec.reset(), deterministic=False)
    assert actions.shape == (2,)


# -- test_save_load: every method, SB3's zip, equal Q-values and predictions after loading -------------------
@pytest.mark.parametrize("method", METHODS)
def test_save_load(method: str, tmp_path: Path) -> None:
    env = IdentityEnv(10)
    model = DQN(EquiDQNPolicy, env, learning_starts=0, seed=0, buffer_size=1000,
                policy_kwargs=dict(symmetry=identity_symmetry(10), method=method))  # fmt: skip
    model.learn(200)
    obs = th.arange(10)
    model.save(tmp_path / "m.zip")
    loaded = DQN.load(tmp_path / "m.zip", env=env)
    with th.no_grad():
        assert th.equal(model.q_net(obs), loaded.q_net(obs)) and th.equal(
            model.q_net_target(obs), loaded.q_net_target(obs)
        )
    assert np.array_equal(
        model.predict(obs.numpy(), deterministic=True)[0], loaded.predict(obs.numpy(), deterministic=True)[0]
    )
    loaded.learn(50)  # continues training


# -- test_dict_env: SimpleMultiObsEnv (vector + image), CombinedExtractor by default -------------------------
@pytest.mark.parametrize("method", METHODS)
def test_dict_env(method: str) -> None:
    env = SimpleMultiObsEnv(random_start=True)
    model = DQN(EquiDQNPolicy, env, learning_starts=20, buffer_size=200, seed=0, policy_kwargs=dict(
        symmetry=trivial_symmetry(env.observation_space, env.action_space), method=method, net_arch=[32], features_extractor_kwargs=dict(cnn_output_dim=32)))  # fmt: skip
    model.learn(60)
    evaluate_policy(model, model.get_env(), n_eval_episodes=2, warn=False)
    check_equivariant(model)


# -- test_her: BitFlippingEnv, with MultiBinary goals (real symmetry), Discrete goals (the same shift, as a
#    permutation of the 2^n integers) and image goals (trivial group) -------------------------------------------
def discrete_bitflipping_symmetry(n: int) -> Symmetry:
    """``bitflipping_symmetry(n)`` for ``discrete_obs_space=True``: states are the integers ``Σ b_i 2^i``."""
    g = cyclic(n)
    bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    perm = (bits[:, (np.arange(n) + 1) % n] << np.arange(n)).sum(1)
    keys = ("observation", "achieved_goal", "desired_goal")
    obs = DictAction(g, {k: ValuePermutationAction(g, [perm.tolist()]) for k in keys})
    return Symmetry(g, obs, bitflipping_symmetry(n).output_action, name=f"BitFlipping C{n} (discrete)")


@pytest.mark.parametrize("kind", ["multibinary", "discrete", "image"])
@pytest.mark.parametrize("method", METHODS)
def test_her(kind: str, method: str) -> None:
    n = 4
    env = BitFlippingEnv(n_bits=n, continuous=False, max_steps=n, discrete_obs_space=kind == "discrete",
                         image_obs_space=kind == "image")  # fmt: skip
    if kind == "image":
        sym = trivial_symmetry(env.observation_space, env.action_space)
    else:
        sym = {"multibinary": bitflipping_symmetry, "discrete": discrete_bitflipping_symmetry}[kind](n)
    model = DQN(EquiDQNPolicy, env, replay_buffer_class=HerReplayBuffer, learning_starts=2 * n, seed=0,
                replay_buffer_kwargs=dict(n_sampled_goal=2, goal_selection_strategy="future"), buffer_size=500,
                policy_kwargs=dict(symmetry=sym, method=method, net_arch=[32]))  # fmt: skip
    model.learn(60)
    check_equivariant(model)
