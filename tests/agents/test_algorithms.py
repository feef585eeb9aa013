"""The algorithm registry: names resolve, each entry's policy is the one that algorithm accepts."""

import pytest
from equirl.agents.algorithms import ALGORITHMS, algorithm_of, get_algorithm
from equirl.agents.symmetrised import POLICY_FOR
from stable_baselines3 import DQN, PPO, SAC


@pytest.mark.parametrize("name,expected", [("dqn", "dqn"), ("PPO", "ppo"), ("QR-DQN", "qrdqn"), ("a2c", "a2c")])
def test_names_resolve(name: str, expected: str) -> None:
    assert get_algorithm(name).name == expected


def test_unknown_name_lists_known() -> None:
    with pytest.raises(ValueError, match="sac.*supports.*'a2c', 'dqn', 'ppo', 'qrdqn'"):
        get_algorithm("sac")


def test_entries_name_their_classes() -> None:
    for algo in ALGORITHMS.values():
        assert algo.model_class().__name__ == algo.class_name
        assert algo.policy_class().__name__ == algo.policy_name
        assert POLICY_FOR[algo.class_name] == algo.policy_name


def test_algorithm_of_models_and_subclasses() -> None:
    class MyDQN(DQN):
        pass

    assert algorithm_of(MyDQN("MlpPolicy", "CartPole-v1", learning_starts=0)).name == "dqn"
    assert algorithm_of(PPO("MlpPolicy", "CartPole-v1", n_steps=8, batch_size=8)).name == "ppo"
    with pytest.raises(TypeError, match="SAC is not an algorithm equirl supports"):
        algorithm_of(SAC("MlpPolicy", "Pendulum-v1", learning_starts=0, buffer_size=10))
