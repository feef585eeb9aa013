"""EquiDQNPolicy with algorithms other than DQN: a clear error naming the algorithm and what to use instead."""

from __future__ import annotations

import pytest
from equirl.agents import EquiDQNPolicy
from equirl.envs import get_symmetry
from sb3_contrib import QRDQN
from stable_baselines3 import A2C, DQN, PPO


@pytest.mark.parametrize("algo", [PPO, A2C, QRDQN])
def test_other_algorithms_are_refused_clearly(algo: type) -> None:
    with pytest.raises(TypeError, match=rf"policy for SB3's DQN, but {algo.__name__} is building it") as err:
        algo(EquiDQNPolicy, "CartPole-v1", policy_kwargs=dict(symmetry=get_symmetry("CartPole-v1")))
    assert "DQN(EquiDQNPolicy" in str(err.value) and "'MlpPolicy'" in str(err.value)


def test_dqn_and_symmetry_by_name_still_work() -> None:
    model = DQN(EquiDQNPolicy, "CartPole-v1", policy_kwargs=dict(symmetry="CartPole-v1", method="equitune"))
    assert model.policy.q_net.symmetry.name == get_symmetry("CartPole-v1").name
    with pytest.raises(TypeError, match=r"unexpected arguments \['n_quantile'\]"):
        DQN(EquiDQNPolicy, "CartPole-v1", policy_kwargs=dict(symmetry="CartPole-v1", n_quantile=3))
    with pytest.raises(KeyError, match="No symmetry named"):
        DQN(EquiDQNPolicy, "CartPole-v1", policy_kwargs=dict(symmetry="CartPol-v1"))
