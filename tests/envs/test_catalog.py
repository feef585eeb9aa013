"""The catalogue: names, pairing of make_env with get_symmetry, registration, docs."""

from __future__ import annotations

import gymnasium as gym
import pytest

from equirl import PermutationAction, SignFlipAction, Symmetry, cyclic, envs

REPRESENTATIVE = [
    "CartPole-v1",
    "Acrobot-v1",
    "MiniGrid-Empty-8x8-v0",
    "MiniGrid-DoorKey-5x5-v0",
    "MiniGrid-Empty-8x8-v0/full-D4",
    "MiniGrid-DoorKey-5x5-v0/full-C4",
    "equirl/RotGrid-v0",
    "equirl/RotGrid-v0/C4",
    "equirl/RotGrid-v0/flat",
    "equirl/RotGrid-Maze-v0",
]


def test_required_entries_exist() -> None:
    names = set(envs.list_symmetries())
    for n in REPRESENTATIVE + [
        "MiniGrid-DoorKey-5x5-v0/full-D4",
        "equirl/RotGrid-Corner-v0",
        "equirl/RotGrid-CornerRotated-v0",
    ]:
        assert n in names
    groups = {n: envs.get_symmetry(n).group.name for n in REPRESENTATIVE}
    assert groups["CartPole-v1"] == groups["Acrobot-v1"] == groups["MiniGrid-Empty-8x8-v0"] == "C2"
    assert groups["MiniGrid-Empty-8x8-v0/full-D4"] == groups["equirl/RotGrid-v0"] == "D4"
    assert groups["MiniGrid-DoorKey-5x5-v0/full-C4"] == groups["equirl/RotGrid-v0/C4"] == "C4"


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_make_env_fits_symmetry(name: str) -> None:
    env = envs.make_env(name)
    sym = envs.get_symmetry(name)
    assert isinstance(sym, Symmetry) and sym.name == name
    assert sym.description
    assert isinstance(env.action_space, gym.spaces.Discrete)
    sym.validate(env.observation_space.shape, (int(env.action_space.n),))
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    env.close()


def test_every_entry_has_docs_and_a_mapper() -> None:
    docs = envs.symmetry_docs()
    mappers = set(envs.list_state_mappers())
    for name in envs.list_symmetries():
        assert docs[name], name
        assert name in mappers, name
    table = envs.catalogue_table(["CartPole-v1", "equirl/RotGrid-v0"])
    assert "| `CartPole-v1` | C2 |" in table and "| `equirl/RotGrid-v0` | D4 |" in table


def test_unknown_names_raise_with_advice() -> None:
    with pytest.raises(KeyError, match="list_symmetries"):
        envs.get_symmetry("MiniGrid-Empty-8x8-v0/full-D5")
    with pytest.raises(KeyError, match="No environment"):
        envs.make_env("NoSuchEnv-v9")
    with pytest.raises(KeyError, match="register_state_mapper"):
        envs.get_state_mapper("MountainCar-v0")


def test_register_user_symmetry() -> None:
    def mirror() -> Symmetry:
        """C2: MountainCar position/velocity are not symmetric; this entry only tests registration."""
        c2 = cyclic(2)
        return Symmetry(c2, SignFlipAction(c2, [[-1.0, -1.0]]), PermutationAction(c2, [[2, 1, 0]]), name="mc")

    envs.register_symmetry("test/MountainCar-mirror", mirror, make_env=lambda **kw: gym.make("MountainCar-v0", **kw))
    try:
        assert envs.get_symmetry("test/MountainCar-mirror").name == "mc"
        assert envs.make_env("test/MountainCar-mirror").observation_space.shape == (2,)
        with pytest.raises(ValueError, match="already registered"):
            envs.register_symmetry("test/MountainCar-mirror", mirror)
    finally:
        envs.unregister("test/MountainCar-mirror")


def test_full_view_needs_square_grid() -> None:
    envs.register_minigrid("MiniGrid-KeyCorridorS3R1-v0", overwrite=True)
    try:
        env = envs.make_env("MiniGrid-KeyCorridorS3R1-v0")  # egocentric view: any grid
        assert env.observation_space.shape == (20, 7, 7)
        with pytest.raises(ValueError, match="square"):
            envs.make_env("MiniGrid-KeyCorridorS3R1-v0/full-D4")
    finally:
        for n in (
            "MiniGrid-KeyCorridorS3R1-v0",
            "MiniGrid-KeyCorridorS3R1-v0/full-D4",
            "MiniGrid-KeyCorridorS3R1-v0/full-C4",
        ):
            envs.unregister(n)


def test_one_registry_never_overwrites_silently() -> None:
    """register_symmetry(make_env=..., state_mapper=...) on a taken name changes nothing without overwrite=True."""
    name = "MiniGrid-Empty-8x8-v0"
    before = envs.get_entry(name)
    with pytest.raises(ValueError, match="already registered.*overwrite=True"):
        envs.register_symmetry(name, envs.get_entry(name).symmetry, make_env=lambda **kw: gym.make("Acrobot-v1"))
    with pytest.raises(ValueError, match="already registered"):
        envs.register_env(name, lambda **kw: gym.make("Acrobot-v1"))
    with pytest.raises(ValueError, match="already registered"):
        envs.register_state_mapper(name, envs.mappers.acrobot_mapper)
    after = envs.get_entry(name)
    assert (after.symmetry, after.make_env, after.state_mapper) == (
        before.symmetry,
        before.make_env,
        before.state_mapper,
    )
    assert envs.make_env(name).observation_space.shape == (20, 7, 7)
    name = "CartPole-v1"
    # parts can be added one by one to a new name, and replaced explicitly
    try:
        envs.register_env("test/cp", lambda **kw: gym.make("CartPole-v1", **kw))
        assert "test/cp" not in envs.list_symmetries() and "test/cp" not in envs.list_state_mappers()
        envs.register_state_mapper("test/cp", envs.mappers.cartpole_mapper)
        assert "test/cp" in envs.list_state_mappers()
        envs.register_symmetry("test/cp", envs.get_entry(name).symmetry)
        assert envs.verify_symmetry("test/cp", steps=20).ok
        envs.register_env("test/cp", lambda **kw: gym.make("Acrobot-v1", **kw), overwrite=True)
        assert envs.make_env("test/cp").observation_space.shape == (6,)
    finally:
        envs.unregister("test/cp")
    assert "test/cp" not in envs.list_symmetries()
    # the mapper names stay importable from envs.mappers
    assert envs.mappers.get_state_mapper is envs.get_state_mapper


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Box(-1, 1, (3,)),
        gym.spaces.Discrete(5),
        gym.spaces.MultiDiscrete([3, 2]),
        gym.spaces.MultiBinary(4),
        gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (2,)), "b": gym.spaces.Discrete(3)}),
    ],
)
def test_trivial_symmetry_gives_the_plain_network(space: gym.spaces.Space) -> None:
    """An equivariant DQN with trivial_symmetry computes exactly its plain network, on every space DQN accepts."""
    import numpy as np
    import torch
    from equirl.agents import EquiDQNPolicy
    from stable_baselines3 import DQN
    from stable_baselines3.common.envs import IdentityEnv

    sym = envs.trivial_symmetry(space, gym.spaces.Discrete(2))
    assert sym.order == 2 and sym.input_action.acts_trivially and sym.output_action.acts_trivially

    class Env(IdentityEnv):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(space=gym.spaces.Discrete(2))
            self.observation_space = space

        def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
            return space.sample(), {}

    model = DQN(EquiDQNPolicy, Env(), policy_kwargs=dict(symmetry=sym, method="equitune", net_arch=[16]), device="cpu")
    space.seed(0)
    samples = [space.sample() for _ in range(4)]
    if isinstance(space, gym.spaces.Dict):
        raw = {k: np.stack([np.asarray(s[k]) for s in samples]) for k in space.spaces}
    else:
        raw = np.stack([np.asarray(s) for s in samples])
    x, _ = model.policy.obs_to_tensor(raw)
    q = model.q_net(x)
    plain = model.q_net.head(model.q_net.encode(model.q_net.network_input(x)))
    assert q.shape == (4, 2)
    assert torch.allclose(q, plain, atol=1e-6)


def test_trivial_symmetry_refuses_non_spaces() -> None:
    with pytest.raises(TypeError, match="observation_space must be a gymnasium space, got tuple"):
        envs.trivial_symmetry((3,), gym.spaces.Discrete(2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="order must be at least 1"):
        envs.trivial_symmetry(gym.spaces.Discrete(2), gym.spaces.Discrete(2), order=0)
