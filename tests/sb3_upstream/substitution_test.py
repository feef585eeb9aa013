"""Ours, not SB3's: the vendored files are SB3 2.9.2's, unmodified; the conftest picks the right symmetries and cases."""

from __future__ import annotations

import hashlib

import gymnasium as gym
import pytest
import stable_baselines3
from equirl.agents import EquiDQNPolicy
from stable_baselines3 import DQN
from stable_baselines3.common.envs import BitFlippingEnv, IdentityEnv

from .conftest import HERE, SUBSTITUTES, VENDORED, VENDORED_VERSION, is_dqn_case, symmetry_for

# sha256 of each file in tests/ of the PyPI sdist stable_baselines3-2.9.2.tar.gz
SHA256 = {
    "test_callbacks.py": "a5bb3b2ba45693686ea66a9ffde8388235c66113084499c895dc801daea6499a",
    "test_cnn.py": "90328c996cc0e20e9d14e81976f16e1f7da177ed5a0067b11e1babb2b6c87268",
    "test_custom_policy.py": "f6719e9122b8c6604d3b099301d1cf2a105dee245e9de5d080194c7e44a37926",
    "test_deterministic.py": "d600e6cdf4afe17fe58a6e893dd846a09ce632ea0824aeb9cc541226d48cc2ef",
    "test_dict_env.py": "85b523a5ba7b4c3167e77e567736fe9bf92b9fbf843a0fe0c9709b85e4ae1ad8",
    "test_her.py": "466531eb84f1c62c6a57198b6c87abaca8b11dffe1c2a2fbfa0abebf116403b2",
    "test_identity.py": "f06cff6b4d472966aad9423fb0ce0f153767ddd06d0d8e3b97260976482785a4",
    "test_logger.py": "bd22af0e3157678b35c25e2802ce87d89d4becebcc4b4a494d76c72299fae7a0",
    "test_n_step_replay.py": "5c8d101afc6f8326740a3f56d87314de857fdf76913e2b756694a71d367c0e24",
    "test_predict.py": "0b16af2448b07a093252a3af409481762cb6d7af9f853678c7fc6eef4ee0b428",
    "test_run.py": "80c156550837a7798d112ca630fccce79302bfd0813f3c08facc94a65fbe048e",
    "test_save_load.py": "352a580726436d1861bf021b9c642fee76c18043cfff3018c3cb753c2ff5e3c0",
    "test_spaces.py": "0e275e2ca6561f4ec72cd66be801a2b7798255dc09200098ecba559c9e746009",
    "test_train_eval_mode.py": "3dc83986f5b443866ec01814a7cc95698aa5c20c36a3f1553fe4d992bd26416f",
}


def test_vendored_version() -> None:
    """The vendored files run only against the SB3 they come from; otherwise they are not collected (see conftest)."""
    if stable_baselines3.__version__ != VENDORED_VERSION:
        pytest.skip(
            f"tests/sb3_upstream holds SB3 {VENDORED_VERSION}'s own tests, but SB3 {stable_baselines3.__version__} is "
            "installed: they were not collected. Install stable-baselines3=="
            f"{VENDORED_VERSION} to run them, or vendor the installed version's tests."
        )
    assert sorted(VENDORED) == sorted(SHA256)


def test_vendored_files_are_unmodified() -> None:
    for name, digest in SHA256.items():
        assert hashlib.sha256((HERE / name).read_bytes()).hexdigest() == digest, f"{name} differs from SB3's"
    assert (HERE / "LICENSE").read_text().startswith("The MIT License")


def test_symmetry_for_uses_the_catalogue_where_it_can() -> None:
    cartpole = gym.make("CartPole-v1")
    assert symmetry_for(cartpole.observation_space, cartpole.action_space).name == "CartPole-v1"
    bits = BitFlippingEnv(n_bits=5)
    sym = symmetry_for(bits.observation_space, bits.action_space)
    assert sym.group.name == "C5" and not sym.input_action.acts_trivially
    for env in (IdentityEnv(4), BitFlippingEnv(n_bits=5, discrete_obs_space=True), gym.make("Acrobot-v1")):
        sym = symmetry_for(env.observation_space, env.action_space)
        assert sym.input_action.acts_trivially and sym.output_action.acts_trivially, env


def test_substitutes_are_equivariant_dqn_policies() -> None:
    from stable_baselines3.common.torch_layers import CombinedExtractor, FlattenExtractor

    for alias, cls in SUBSTITUTES.items():
        assert issubclass(cls, EquiDQNPolicy) and alias in DQN.policy_aliases
    model = DQN(SUBSTITUTES["MlpPolicy"], "CartPole-v1")
    assert isinstance(model.policy, EquiDQNPolicy) and isinstance(model.q_net.features_extractor, FlattenExtractor)
    assert model.policy.symmetry.name == "CartPole-v1"
    model = DQN(SUBSTITUTES["MultiInputPolicy"], BitFlippingEnv(n_bits=4))
    assert isinstance(model.q_net.features_extractor, CombinedExtractor)
    assert model.policy.symmetry.group.name == "C4"


class _Item:
    def __init__(self, fn, params):  # type: ignore[no-untyped-def]
        self.function = fn
        self.callspec = type("C", (), {"params": params})() if params is not None else None


def test_only_dqn_cases_are_kept() -> None:
    from stable_baselines3 import PPO

    def names_dqn() -> None:
        DQN("MlpPolicy", "CartPole-v1")

    def names_ppo() -> None:
        PPO("MlpPolicy", "CartPole-v1")

    assert is_dqn_case(_Item(names_ppo, {"model_class": DQN}))  # a class parameter decides
    assert not is_dqn_case(_Item(names_dqn, {"model_class": PPO}))
    assert is_dqn_case(_Item(names_dqn, {"x": 1}))  # no class parameter: the source decides
    assert not is_dqn_case(_Item(names_ppo, None))
