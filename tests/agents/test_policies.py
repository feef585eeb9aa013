import json
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from equirl.agents import EquiDQNPolicy, GroupWeightLogger, SmallKernelCNN
from equirl.envs import get_symmetry
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure

import equirl as E
from tests.agents.image_env import RandomImageEnv
from tests.conftest import c4_image_symmetry

METHODS = ["equitune", "equizero", "lambda"]
FAST = dict(
    learning_starts=50, train_freq=8, gradient_steps=4, batch_size=16, buffer_size=1000, target_update_interval=20
)


def cartpole_dqn(method: str, **kw) -> DQN:
    return DQN(
        EquiDQNPolicy,
        "CartPole-v1",
        policy_kwargs=dict(symmetry=get_symmetry("CartPole-v1"), method=method, net_arch=[32, 32]),
        seed=0,
        **{**FAST, **kw},
    )


def image_dqn(method: str, n_envs: int = 1) -> DQN:
    env = make_vec_env(RandomImageEnv, n_envs=n_envs, seed=0)
    return DQN(
        EquiDQNPolicy,
        env,
        policy_kwargs=dict(
            symmetry=c4_image_symmetry(),
            method=method,
            net_arch=[32],
            features_extractor_class=SmallKernelCNN,
            features_extractor_kwargs=dict(features_dim=32),
        ),
        seed=0,
        **FAST,
    )


def _lambda_nontrivial(model: DQN) -> None:
    """Give λ nets random weights so λ-equitune is not just equitune."""
    for net in (model.q_net, model.q_net_target):
        if net.method == "lambda":
            for p in net.reducer.parameters():
                torch.nn.init.normal_(p, std=0.3)


@pytest.mark.parametrize("method", METHODS)
def test_cartpole_q_and_target_equivariant_before_and_after_training(method: str) -> None:
    sym = get_symmetry("CartPole-v1")
    model = cartpole_dqn(method)
    _lambda_nontrivial(model)
    states = torch.randn(64, 4)
    for net in (model.q_net, model.q_net_target):
        assert E.equivariance_error(net, sym, states) <= 1e-5
    model.learn(300)
    assert model._n_updates > 0
    for net in (model.q_net, model.q_net_target):
        assert E.equivariance_error(net, sym, states) <= 1e-5


@pytest.mark.parametrize("method", METHODS)
def test_image_c4_equivariance_with_vec_env(method: str) -> None:
    sym = c4_image_symmetry()
    model = image_dqn(method, n_envs=2)
    _lambda_nontrivial(model)
    obs = torch.randint(0, 256, (16, 1, 6, 6), dtype=torch.uint8)
    for net in (model.q_net, model.q_net_target):
        assert E.equivariance_error(net, sym, obs) <= 1e-5
    model.learn(200)
    for net in (model.q_net, model.q_net_target):
        assert E.equivariance_error(net, sym, obs) <= 1e-5


def test_target_network_is_symmetrised_with_its_own_lambda() -> None:
    model = cartpole_dqn("lambda")
    assert model.q_net_target.reducer is not model.q_net.reducer
    assert any("reducer.lambda_net" in k for k in model.q_net_target.state_dict())


def test_predict_single_and_batched() -> None:
    model = cartpole_dqn("lambda")
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert np.shape(action) == () and int(action) in (0, 1)
    batch = np.stack([obs, -obs, obs * 0.5])
    actions, _ = model.predict(batch, deterministic=True)
    assert actions.shape == (3,)
    # equivariance shows in the greedy actions too: reflected state -> swapped action
    assert actions[1] == 1 - actions[0]
    image = image_dqn("equizero")
    frame = RandomImageEnv().observation_space.sample()
    a, _ = image.predict(frame, deterministic=True)
    assert np.shape(a) == ()


SAVE_LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    from stable_baselines3 import DQN
    from equirl.agents import EquiDQNPolicy
    path, states_path, policy_path = sys.argv[1:4]
    states = torch.tensor(json.load(open(states_path)))
    model = DQN.load(path, device="cpu")
    policy = EquiDQNPolicy.load(policy_path, device="cpu")
    with torch.no_grad():
        out = {"q": model.q_net(states).tolist(), "target": model.q_net_target(states).tolist(),
               "policy_q": policy.q_net(states).tolist(), "method": model.policy.method,
               "group": model.policy.symmetry.group.name}
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("method", METHODS)
def test_save_load_in_a_fresh_process(method: str, tmp_path: Path) -> None:
    model = cartpole_dqn(method)
    _lambda_nontrivial(model)
    model.learn(200)
    states = torch.randn(8, 4)
    model.save(tmp_path / "model.zip")
    model.policy.save(str(tmp_path / "policy.pt"))
    (tmp_path / "states.json").write_text(json.dumps(states.tolist()))
    (tmp_path / "load.py").write_text(SAVE_LOAD_SCRIPT)
    result = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "load.py"),
            str(tmp_path / "model.zip"),
            str(tmp_path / "states.json"),
            str(tmp_path / "policy.pt"),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    with torch.no_grad():
        q, target = model.q_net(states), model.q_net_target(states)
    assert loaded["method"] == method and loaded["group"] == "C2"
    assert torch.equal(torch.tensor(loaded["q"]), q)
    assert torch.equal(torch.tensor(loaded["target"]), target)
    assert torch.equal(torch.tensor(loaded["policy_q"]), q)


def test_group_weights_are_logged(tmp_path: Path) -> None:
    model = cartpole_dqn("lambda")
    _lambda_nontrivial(model)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(400, callback=GroupWeightLogger(), log_interval=1)
    model.logger.dump(model.num_timesteps)  # episodes may be long: write what was recorded since the last dump
    text = (tmp_path / "progress.csv").read_text()
    header = text.splitlines()[0].split(",")
    assert "equi/entropy" in header and "equi/weight/e" in header and "equi/weight/r" in header
    col = header.index("equi/entropy")
    values = [float(r.split(",")[col]) for r in text.splitlines()[1:] if r.split(",")[col]]
    assert values and all(0.0 <= v <= np.log(2) + 1e-6 for v in values)


def test_clear_errors_at_construction() -> None:
    c2 = E.cyclic(2)
    two_actions = E.Symmetry(c2, E.SignFlipAction(c2, [[1, -1, 1, -1, -1, -1]]), E.PermutationAction(c2, [[1, 0]]))
    with pytest.raises(ValueError, match="permutes 2 entries.*has 3 there \\(for a Q-network: the action space has 3"):
        DQN(EquiDQNPolicy, "Acrobot-v1", policy_kwargs=dict(symmetry=two_actions))
    with pytest.raises(ValueError, match="flips signs of 6 entries.*has 4"):
        DQN(EquiDQNPolicy, "CartPole-v1", policy_kwargs=dict(symmetry=get_symmetry("Acrobot-v1")))
    with pytest.raises(ValueError, match="Unknown method 'mean'"):
        DQN(EquiDQNPolicy, "CartPole-v1", policy_kwargs=dict(symmetry=get_symmetry("CartPole-v1"), method="mean"))
    with pytest.raises(TypeError, match="needs policy_kwargs=dict\\(symmetry=...\\)"):
        DQN(EquiDQNPolicy, "CartPole-v1")
    with pytest.raises(TypeError, match="must be an equirl.Symmetry"):
        DQN(EquiDQNPolicy, "CartPole-v1", policy_kwargs=dict(symmetry=42))
    with pytest.raises(ValueError, match="square grid, but got 6x5"):
        DQN(EquiDQNPolicy, RandomImageEnv(size=6, width=5), policy_kwargs=dict(symmetry=c4_image_symmetry()))


def test_progress_bar_and_tensorboard(tmp_path: Path) -> None:
    model = cartpole_dqn("equizero", tensorboard_log=str(tmp_path))
    model.learn(100, progress_bar=True)
    assert list(tmp_path.rglob("events.out.tfevents*"))
