"""The hyperparameter loader reads rl-zoo3 entries safely and drops nothing silently; zoo entries of ours round-trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from equirl.agents.hyperparams import (
    load_hyperparams,
    normalise_entry,
    parse_policy_kwargs,
    split_hyperparams,
    write_zoo_config,
    zoo_entry,
)
from equirl.agents.training import build_dqn
from equirl.envs import make_env
from torch import nn, optim


def test_parse_policy_kwargs_allows_data_only() -> None:
    text = "dict(net_arch=[64, dict(pi=[8])], activation_fn=nn.ReLU, optimizer_class=th.optim.RMSprop, x=-1e-3, t=(1, 'a'), n=None)"
    assert parse_policy_kwargs(text) == {
        "net_arch": [64, {"pi": [8]}],
        "activation_fn": nn.ReLU,
        "optimizer_class": optim.RMSprop,
        "x": -1e-3,
        "t": (1, "a"),
        "n": None,
    }
    assert parse_policy_kwargs("{'net_arch': [4], 'activation_fn': th.nn.Tanh}") == {
        "net_arch": [4],
        "activation_fn": nn.Tanh,
    }
    for bad, piece in [
        ("dict(symmetry=__import__('equirl.envs').envs.get_symmetry('CartPole-v1'))", "__import__"),
        ("dict(a=open('/etc/passwd').read())", "open("),
        ("dict(**other)", "dict(**other)"),
        ("dict(a=nn.Module)", "nn.Module"),
        ("dict(a=(lambda: 0))", "lambda"),
    ]:
        with pytest.raises(ValueError, match="runs no code") as err:
            parse_policy_kwargs(bad)
        assert piece in str(err.value)
    with pytest.raises(ValueError, match="not a Python expression"):
        parse_policy_kwargs("dict(a=")
    with pytest.raises(ValueError, match="must be dict"):
        parse_policy_kwargs("[1, 2]")


def _entry(**kw: Any) -> dict[str, Any]:
    return {"n_timesteps": "1e5", "policy": "MlpPolicy", "learning_rate": "5e-2", **kw}


def test_numbers_and_harmless_zoo_keys() -> None:
    hp = normalise_entry(_entry(buffer_size="1e4", n_envs=1, normalize=False, policy_kwargs="dict(net_arch=[8])"))
    assert hp["n_timesteps"] == 100_000 and isinstance(hp["n_timesteps"], int)
    assert hp["learning_rate"] == 0.05 and hp["buffer_size"] == 10_000
    assert "n_envs" not in hp and "normalize" not in hp and hp["policy_kwargs"] == {"net_arch": [8]}
    dqn_kwargs, _, _ = split_hyperparams(hp)
    assert set(dqn_kwargs) == {"learning_rate", "buffer_size"}


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"n_envs": 4}, "n_envs: 4 is not supported for DQN"),
        ({"n_envs": 0}, "n_envs must be a whole number >= 1"),
        ({"normalize": True}, "normalize: True is not supported"),
        ({"normalize": "dict(norm_obs=True)"}, "normalize"),
        ({"env_wrapper": ["minigrid.wrappers.FlatObsWrapper"]}, "env_wrapper"),
        ({"frame_stack": 4}, "frame_stack"),
        ({"env_kwargs": {"size": 5}}, "env-kwargs"),
        ({"learnin_rate": 1e-3}, r"unknown keys \['learnin_rate'\]"),
        ({"learning_rate": "exp_1e-3"}, "not a schedule"),
        ({"learning_rate": "lin_x"}, "not a schedule"),
        ({"gamma": "lin_0.99"}, "is a string; give a number"),
        ({"n_epochs": 4}, r"unknown keys \['n_epochs'\]: neither arguments of DQN"),
        ({"policy": "my_package.MyPolicy"}, "not supported"),
        ({"policy": "equirl.agents.EquiActorCriticPolicy"}, "not supported for DQN"),
    ],
)
def test_every_unused_key_is_refused(extra: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        normalise_entry(_entry(**extra), "test")


def test_reads_rl_zoo3_dqn_file() -> None:
    """Every entry of rl-zoo3's own dqn.yml loads or is refused with a message; CartPole-v1 equals ours."""
    rl_zoo3 = pytest.importorskip("rl_zoo3")
    file = Path(rl_zoo3.__file__).parent / "hyperparams" / "dqn.yml"
    loaded, refused = [], []
    for env_id in yaml.safe_load(file.read_text()):
        try:
            load_hyperparams(env_id, file)
            loaded.append(env_id)
        except ValueError as err:
            assert "not supported" in str(err)
            refused.append(env_id)
    assert "atari" in refused and {"CartPole-v1", "Acrobot-v1", "MountainCar-v0"} <= set(loaded)
    theirs, ours = load_hyperparams("CartPole-v1", file), load_hyperparams("CartPole-v1")
    ours.pop("finetune")
    assert theirs == ours


def test_zoo_entry_round_trip(tmp_path: Path) -> None:
    """Our entry as a zoo entry (EquiDQNPolicy, symmetry by name) loads back as our entry and builds the same DQN."""
    entry = zoo_entry("equirl/RotGrid-Corner-v0", "lambda")
    assert entry["policy"] == "equirl.agents.EquiDQNPolicy" and "finetune" not in entry
    assert (
        "symmetry='equirl/RotGrid-Corner-v0'" in entry["policy_kwargs"] and "method='lambda'" in entry["policy_kwargs"]
    )
    path = write_zoo_config(tmp_path / "zoo.yml", ["equirl/RotGrid-Corner-v0", "CartPole-v1"])
    with pytest.raises(FileExistsError):
        write_zoo_config(path, ["CartPole-v1"])
    back = load_hyperparams("equirl/RotGrid-Corner-v0", path)
    ours = load_hyperparams("equirl/RotGrid-Corner-v0")
    ours.pop("finetune")
    assert back.pop("equivariant") == {"symmetry": "equirl/RotGrid-Corner-v0", "method": "lambda"}
    assert back == ours
    model = build_dqn(
        make_env("equirl/RotGrid-Corner-v0"), "lambda", None, load_hyperparams("equirl/RotGrid-Corner-v0", path)
    )
    assert type(model.policy).__name__ == "EquiDQNPolicy" and model.policy.q_net.method == "lambda"
    with pytest.raises(ValueError, match="features_extractor_class"):
        zoo_entry("MiniGrid-Empty-5x5-v0")


def test_replay_buffer_class_by_name_from_an_allow_list() -> None:
    """BitFlipping-v0 names HerReplayBuffer; the loader resolves names from REPLAY_BUFFERS only (no imports by path)."""
    from equirl.agents.hyperparams import REPLAY_BUFFERS
    from equirl.envs import get_symmetry
    from stable_baselines3 import HerReplayBuffer

    hp = load_hyperparams("BitFlipping-v0")
    assert hp["replay_buffer_class"] is HerReplayBuffer and hp["policy"] == "MultiInputPolicy"
    assert "HerReplayBuffer" in REPLAY_BUFFERS
    for method, symmetry in (("plain", None), ("equitune", get_symmetry("BitFlipping-v0"))):
        model = build_dqn(make_env("BitFlipping-v0"), method, symmetry, hp, learning_starts=20)
        assert isinstance(model.replay_buffer, HerReplayBuffer)
        model.learn(40)
    for bad in ("os.system", "stable_baselines3.common.buffers.ReplayBuffer", "RolloutBuffer"):
        with pytest.raises(ValueError, match="unknown replay_buffer_class"):
            normalise_entry({"replay_buffer_class": bad})


def test_lin_schedules_are_linear_and_parsed_without_eval() -> None:
    """rl-zoo3's ``lin_<x>``: x at the start, 0 at the end (x · progress_remaining), a number, never code."""
    from equirl.agents.hyperparams import linear_schedule
    from stable_baselines3.common.utils import LinearSchedule

    hp = normalise_entry({"learning_rate": "lin_1e-3", "clip_range": "lin_0.2", "n_steps": 32}, "t", algo="ppo")
    lr, clip = hp["learning_rate"], hp["clip_range"]
    assert isinstance(lr, LinearSchedule) and isinstance(clip, LinearSchedule)
    for p in (1.0, 0.5, 0.25, 0.0):
        assert lr(p) == pytest.approx(1e-3 * p) and clip(p) == pytest.approx(0.2 * p)
    assert repr(lr) == repr(linear_schedule("lin_1e-3"))  # a stable repr: run records compare equal
    with pytest.raises(ValueError, match="not a schedule"):
        linear_schedule("lin___import__('os')")


def test_keys_are_checked_against_the_algorithms_constructor() -> None:
    """The same key is an argument of one algorithm and refused for another; n_envs stays for on-policy ones."""
    ppo = normalise_entry({"n_envs": 8, "n_steps": 32, "gae_lambda": "0.8", "n_epochs": 20.0}, "t", algo="ppo")
    assert ppo["n_envs"] == 8 and ppo["gae_lambda"] == 0.8
    assert ppo["n_epochs"] == 20 and isinstance(ppo["n_epochs"], int)
    model_kwargs, _, _ = split_hyperparams(ppo)
    assert "n_envs" not in model_kwargs
    a2c = normalise_entry({"n_envs": 4, "use_rms_prop": True}, "t", algo="a2c")
    assert a2c["n_envs"] == 4
    with pytest.raises(ValueError, match=r"unknown keys \['use_rms_prop'\]: neither arguments of PPO"):
        normalise_entry({"use_rms_prop": True}, "t", algo="ppo")
    with pytest.raises(ValueError, match=r"unknown keys \['buffer_size'\]: neither arguments of PPO"):
        normalise_entry({"buffer_size": 100}, "t", algo="ppo")
    with pytest.raises(ValueError, match="n_envs: 4 is not supported for QRDQN"):
        normalise_entry({"n_envs": 4}, "t", algo="qrdqn")
    assert "n_envs" not in normalise_entry({"n_envs": 1}, "t", algo="qrdqn")
    eq = normalise_entry(
        {
            "policy": "equirl.agents.EquiActorCriticPolicy",
            "policy_kwargs": "dict(symmetry='CartPole-v1', proxy_target='actor')",
        },
        "t",
        algo="ppo",
    )
    assert eq["policy"] == "MlpPolicy" and eq["equivariant"] == {"symmetry": "CartPole-v1", "proxy_target": "actor"}


@pytest.mark.parametrize("algo", ["ppo", "a2c", "qrdqn"])
def test_shipped_files_carry_rl_zoo3_values(algo: str) -> None:
    """Our ppo/a2c/qrdqn.yml entries for CartPole and Acrobot (and Pendulum for PPO/A2C) equal rl-zoo3's,
    but for the keys we leave out on purpose (normalize, gSDE) and policy_kwargs given as a mapping."""
    rl_zoo3 = pytest.importorskip("rl_zoo3")
    theirs_file = Path(rl_zoo3.__file__).parent / "hyperparams" / f"{algo}.yml"
    raw = yaml.safe_load(theirs_file.read_text())
    envs = ["CartPole-v1", "Acrobot-v1"] + (["Pendulum-v1"] if algo != "qrdqn" else [])
    for env_id in envs:
        entry = dict(raw[env_id])
        left_out = {k: entry.pop(k) for k in ("normalize", "use_sde", "sde_sample_freq") if k in entry}
        assert set(left_out) <= {"normalize", "use_sde", "sde_sample_freq"}
        theirs = normalise_entry(entry, env_id, algo=algo)
        ours = load_hyperparams(env_id, algo=algo)
        assert repr(theirs) == repr(ours), env_id  # LinearSchedule compares by repr


def test_rl_zoo3_entries_with_normalize_or_sde_are_refused_clearly() -> None:
    rl_zoo3 = pytest.importorskip("rl_zoo3")
    file = Path(rl_zoo3.__file__).parent / "hyperparams" / "ppo.yml"
    with pytest.raises(ValueError, match="normalize: True is not supported"):
        load_hyperparams("Acrobot-v1", file, algo="ppo")
    pendulum = load_hyperparams("Pendulum-v1", file, algo="ppo")  # loads; the policy refuses gSDE when built
    assert pendulum["use_sde"] is True
