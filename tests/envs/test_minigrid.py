"""MiniGrid wrappers, their symmetries against SYMMETRIES.md, and equivariant DQNs on them and on RotGrid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from equirl.agents import EquiDQNPolicy, SmallKernelCNN
from equirl.envs.minigrid_wrappers import (
    DIR_CHANNELS,
    N_CELL_CHANNELS,
    get_minigrid_state,
    set_minigrid_state,
    transform_minigrid_state,
)
from stable_baselines3 import DQN

from equirl import envs

torch.set_num_threads(1)


def test_ego_wrapper_is_one_hot_of_the_raw_image() -> None:
    import gymnasium as gym
    import minigrid  # noqa: F401

    raw = gym.make("MiniGrid-DoorKey-5x5-v0")
    wrapped = envs.make_env("MiniGrid-DoorKey-5x5-v0")
    obs_raw, _ = raw.reset(seed=3)
    obs, _ = wrapped.reset(seed=3)
    assert obs.shape == (20, 7, 7) and obs.dtype == np.uint8 and wrapped.observation_space.high.max() == 1
    assert (obs[:11].sum(0) == 1).all() and (obs[11:17].sum(0) == 1).all() and (obs[17:].sum(0) == 1).all()
    img = obs_raw["image"]  # [x, y, 3]
    assert np.array_equal(obs[:11].argmax(0), img[..., 0])
    assert np.array_equal(obs[11:17].argmax(0), img[..., 1])
    assert np.array_equal(obs[17:20].argmax(0), img[..., 2])


def test_full_wrapper_direction_channels() -> None:
    env = envs.make_env("MiniGrid-Empty-8x8-v0/full-D4")
    obs, _ = env.reset(seed=0)
    u = env.unwrapped
    assert obs.shape == (24, 8, 8)
    x, y = u.agent_pos
    assert obs[DIR_CHANNELS:].sum() == 1 and obs[DIR_CHANNELS + u.agent_dir, x, y] == 1
    assert obs[10, x, y] == 1  # object "agent" at the agent's cell
    obs, *_ = env.step(1)  # turn right: d -> d+1
    assert obs[DIR_CHANNELS + (u.agent_dir), x, y] == 1 and u.agent_dir == 1


def test_ego_mirror_matches_mirrored_world() -> None:
    """SYMMETRIES.md: the ego image of the mirrored world is img[::-1] (flip of dim -2 in [C, x, y])."""
    env = envs.make_env("MiniGrid-DoorKey-8x8-v0")
    twin = envs.make_env("MiniGrid-DoorKey-8x8-v0")
    sym = envs.get_symmetry("MiniGrid-DoorKey-8x8-v0")
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=5)
    twin.reset(seed=5)
    for _ in range(30):
        set_minigrid_state(twin, transform_minigrid_state(get_minigrid_state(env), "flip0"))
        twin_obs = twin.observation(twin.unwrapped.gen_obs())
        assert np.array_equal(twin_obs, obs[:, ::-1, :])
        assert torch.equal(sym.input_action.apply(1, torch.as_tensor(obs)[None])[0], torch.as_tensor(twin_obs))
        obs, *_ = env.step(int(rng.integers(3)))


def test_full_d4_elements_are_world_maps() -> None:
    """Every D4 element's action on the full view equals the view of the transformed world."""
    name = "MiniGrid-DoorKey-6x6-v0/full-D4"
    env, twin = envs.make_env(name), envs.make_env(name)
    sym, mapper = envs.get_symmetry(name), envs.get_state_mapper(name)
    obs, _ = env.reset(seed=2)
    twin.reset(seed=2)
    x = torch.as_tensor(obs)[None]
    for g in range(8):
        mapper.set_state(twin, mapper.map_state(mapper.get_state(env), g, sym))
        want = twin.observation(twin.unwrapped.gen_obs())
        assert torch.equal(sym.input_action.apply(g, x)[0], torch.as_tensor(want)), sym.group.element_names[g]
    # the quarter turn is np.rot90 on [x, y] with d -> d+1 (SYMMETRIES.md)
    r = sym.input_action.apply(1, x)[0].numpy()
    assert np.array_equal(r[:N_CELL_CHANNELS], np.rot90(obs[:N_CELL_CHANNELS], 1, axes=(1, 2)))
    d = env.unwrapped.agent_dir
    assert r[DIR_CHANNELS + (d + 1) % 4].sum() == 1


def _equi_dqn(name: str, method: str, extractor: bool) -> tuple[DQN, object]:
    env = envs.make_env(name)
    kwargs: dict = dict(symmetry=envs.get_symmetry(name), method=method, net_arch=[64])
    if extractor:
        kwargs.update(features_extractor_class=SmallKernelCNN, features_extractor_kwargs=dict(features_dim=64))
    model = DQN(EquiDQNPolicy, env, policy_kwargs=kwargs, learning_starts=0, buffer_size=1000, device="cpu", seed=0)
    return model, env


@pytest.mark.parametrize(
    ("name", "extractor"),
    [
        ("equirl/RotGrid-v0", True),
        ("equirl/RotGrid-v0/C4", True),
        ("equirl/RotGrid-v0/flat", False),
        ("MiniGrid-Empty-8x8-v0", True),
        ("MiniGrid-DoorKey-5x5-v0", True),
        ("MiniGrid-DoorKey-5x5-v0/full-D4", True),
        ("MiniGrid-Empty-8x8-v0/full-C4", True),
    ],
)
@pytest.mark.parametrize("method", ["equitune", "equizero", "lambda"])
def test_equivariant_dqn_q_values(name: str, extractor: bool, method: str) -> None:
    from equirl import equivariance_error

    model, env = _equi_dqn(name, method, extractor)
    # SB3 must see our obs as they are: no transpose, no /255
    assert model.observation_space.shape == env.observation_space.shape
    obs = np.stack([env.reset(seed=s)[0] for s in range(4)] + [env.step(env.action_space.sample())[0]])
    x, _ = model.policy.obs_to_tensor(obs)
    err = equivariance_error(model.q_net, envs.get_symmetry(name), x)
    assert err <= 1e-5
    # a plain network is not equivariant (so the check above can fail)
    if method == "lambda":
        plain = model.q_net.head(model.q_net.encode(x.float()))
        sym = envs.get_symmetry(name)
        orbit = sym.input_action.orbit(x).reshape(-1, *x.shape[1:])
        f_orbit = model.q_net.head(model.q_net.encode(orbit.float())).reshape(sym.order, len(x), -1)
        assert (f_orbit - sym.output_action.orbit(plain)).abs().max() > 1e-4


# -- MiniGrid's Dict observation (image, direction; mission dropped) -----------------------------------------------
DICT_ENV = "MiniGrid-DoorKey-5x5-v0/dict"


def test_dict_wrapper_is_image_and_direction() -> None:
    from equirl.envs.minigrid_wrappers import MiniGridEgoOneHot

    env = envs.make_env(DICT_ENV)
    ego = MiniGridEgoOneHot(env.unwrapped)
    assert set(env.observation_space.spaces) == {"image", "direction"}  # no Text mission: SB3 cannot take it
    obs, _ = env.reset(seed=3)
    for a in (0, 0, 2, 1):
        obs, *_ = env.step(a)
        assert env.observation_space.contains(obs)
        np.testing.assert_array_equal(obs["image"], ego.observation(env.unwrapped.gen_obs()))
        assert obs["direction"] == env.unwrapped.agent_dir


def test_dict_mirror_maps_the_direction_as_the_world_flip() -> None:
    """g·obs(s) == obs(flip(s)): the image flipped along x and the direction d -> (2 - d) mod 4."""
    env = envs.make_env(DICT_ENV)
    sym = envs.get_symmetry(DICT_ENV)
    env.reset(seed=1)
    seen = set()
    for step in range(40):
        state = get_minigrid_state(env)
        obs = env.unwrapped.gen_obs()
        twin = envs.make_env(DICT_ENV)
        twin.reset(seed=1)
        set_minigrid_state(twin, transform_minigrid_state(state, "flip0"))
        want = twin.observation(twin.unwrapped.gen_obs())
        got = sym.input_action.apply(
            1, {k: torch.as_tensor(np.asarray(v))[None] for k, v in env.observation(obs).items()}
        )
        np.testing.assert_array_equal(got["image"][0].numpy(), want["image"])
        assert int(got["direction"][0]) == want["direction"]
        seen.add(int(state["agent_dir"]))
        env.step((0, 2, 1, 2, 0)[step % 5])  # turn left, forward, right, forward, left: every direction
    assert seen == {0, 1, 2, 3}


def test_dict_verifier_catches_a_wrong_direction_map() -> None:
    from equirl import DictAction, Symmetry

    sym = envs.get_symmetry(DICT_ENV)
    assert envs.verify_symmetry(DICT_ENV, seeds=(0,), steps=60).ok
    image_only = Symmetry(sym.group, DictAction(sym.group, {"image": sym.input_action.actions["image"]}),
                          sym.output_action, name="direction left fixed")  # fmt: skip
    report = envs.verify_symmetry(DICT_ENV, image_only, state_mapper=envs.get_state_mapper(DICT_ENV), seeds=(0,))
    assert not report.ok and "observation" in str(report)


@pytest.mark.parametrize(
    "method", ["lambda", *(pytest.param(m, marks=pytest.mark.slow) for m in ("equitune", "equizero", "equizero-td"))]
)
def test_dict_equivariant_dqn_trains(method: str) -> None:
    """MultiInputPolicy's CombinedExtractor on image + direction: exactly equivariant before and after a short run."""
    from stable_baselines3.common.torch_layers import CombinedExtractor

    from equirl import equivariance_error

    env = envs.make_env(DICT_ENV)
    sym = envs.get_symmetry(DICT_ENV)
    model = DQN(EquiDQNPolicy, env, learning_starts=50, buffer_size=500, batch_size=16, train_freq=4, seed=0,
                device="cpu", policy_kwargs=dict(symmetry=sym, method=method, net_arch=[32]))  # fmt: skip
    assert isinstance(model.q_net.features_extractor, CombinedExtractor)
    env.observation_space.seed(0)
    samples = [env.observation_space.sample() for _ in range(6)]
    obs = {k: torch.as_tensor(np.stack([np.asarray(s[k]) for s in samples])) for k in env.observation_space.spaces}
    before = model.q_net(model.policy.obs_to_tensor({k: v.numpy() for k, v in obs.items()})[0]).detach().clone()
    model.learn(200)
    for net in (model.q_net, model.q_net_target):
        assert equivariance_error(net, sym, obs) <= 1e-5
    after = model.q_net(model.policy.obs_to_tensor({k: v.numpy() for k, v in obs.items()})[0])
    assert not torch.allclose(before, after)  # it trained
