"""Equivariant DQN on every observation space SB3's DQN accepts: Discrete, MultiDiscrete, MultiBinary, Dict, HER."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from equirl.agents import EquiDQNPolicy
from equirl.agents.io import load_agent, save_agent
from equirl.agents.spaces import lift_symmetry, preprocess
from equirl.envs import get_state_mapper, verify_symmetry
from equirl.envs.catalog import bitflipping_symmetry
from gymnasium import spaces
from stable_baselines3 import DQN, HerReplayBuffer
from stable_baselines3.common.envs import BitFlippingEnv
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from equirl import Symmetry
from equirl.actions import (
    Action,
    ComposedAction,
    DictAction,
    PermutationAction,
    PositionValuePermutationAction,
    SignedPermutationAction,
    TrivialAction,
    ValuePermutationAction,
)
from equirl.averaging import equivariance_error
from equirl.groups import Group, cyclic

METHODS = ("equitune", "equizero", "lambda", "equizero-td")

# FrozenLake with a map symmetric under the transpose (r, c) -> (c, r); the transpose swaps LEFT (0) with UP (3)
# and DOWN (1) with RIGHT (2), and keeps S at (0, 0) and G at (3, 3)
LAKE = ["SFFF", "FHFH", "FFFH", "FHHG"]


def lake_symmetry() -> Symmetry:
    g = cyclic(2)
    states = [4 * (s % 4) + s // 4 for s in range(16)]
    return Symmetry(g, ValuePermutationAction(g, [states]), PermutationAction(g, [[3, 2, 1, 0]]), name="lake transpose")


class GridXY(gym.Env[np.ndarray, int]):
    """A 5 × 5 grid whose observation is the position ``(x, y)`` as ``MultiDiscrete([5, 5])``; reward 1 at the centre.

    Actions 0..3 move by +x, +y, -x, -y. A quarter turn about the centre, ``(x, y) -> (y, 4 - x)``, maps the
    moves +x, +y, -x, -y to -y, +x, +y, -x.
    """

    observation_space = spaces.MultiDiscrete([5, 5])
    action_space = spaces.Discrete(4)
    MOVES = ((1, 0), (0, 1), (-1, 0), (0, -1))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.pos = self.np_random.integers(0, 5, 2)
        return self.pos.copy(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.pos = np.clip(self.pos + self.MOVES[int(action)], 0, 4)
        done = bool((self.pos == 2).all())
        return self.pos.copy(), float(done), done, False, {}


def grid_symmetry() -> Symmetry:
    g = cyclic(4)
    rot = PositionValuePermutationAction(g, [5, 5], [[1, 0]], [[None, [4, 3, 2, 1, 0]]])
    # Q(g·s)[i] = Q(s)[p[i]]: the rotated frame's move i is the original move p[i]
    return Symmetry(g, rot, PermutationAction(g, [[1, 2, 3, 0]]), name="grid quarter turn")


class Bits(gym.Env[np.ndarray, int]):
    """Four bits (``MultiBinary(4)``); action ``i`` flips bit ``i``; reward 1 when all bits are equal."""

    observation_space = spaces.MultiBinary(4)
    action_space = spaces.Discrete(4)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.bits = self.np_random.integers(0, 2, 4).astype(np.int8)
        return self.bits.copy(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.bits[int(action)] ^= 1
        done = bool((self.bits == self.bits[0]).all())
        return self.bits.copy(), float(done), done, False, {}


def bits_symmetry() -> Symmetry:
    """Swap the bit pairs and complement every bit (all-equal stays all-equal); the moves swap as the bits do."""
    g = cyclic(2)
    act = ComposedAction(PermutationAction(g, [[1, 0, 3, 2]]), ValuePermutationAction(g, [[1, 0]]))
    return Symmetry(g, act, PermutationAction(g, [[1, 0, 3, 2]]), name="bits swap + complement")


class DictGrid(GridXY):
    """:class:`GridXY` with a Dict observation: the position, a Box copy of it and an invariant flag."""

    observation_space = spaces.Dict(  # type: ignore[assignment]
        {
            "pos": spaces.MultiDiscrete([5, 5]),
            "xy": spaces.Box(0.0, 4.0, (2,), np.float32),
            "flag": spaces.Discrete(2),
        }
    )

    def _obs(self) -> dict[str, Any]:
        return {
            "pos": self.pos.copy(),
            "xy": self.pos.astype(np.float32) - 2.0,
            "flag": int(self.pos[0] == self.pos[1]),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict]:
        _, r, done, trunc, info = super().step(action)
        return self._obs(), r, done, trunc, info


def dict_symmetry() -> Symmetry:
    base = grid_symmetry()
    g = base.group
    # the centred Box copy turns as (x, y) -> (y, -x): a signed permutation
    xy = PermutationAction(g, [[1, 0]], signs=[[1, -1]])
    return Symmetry(g, DictAction(g, {"pos": base.input_action, "xy": xy}), base.output_action, name="dict grid")


CASES = {
    "discrete": (lambda: gym.make("FrozenLake-v1", desc=LAKE, is_slippery=True), lake_symmetry),
    "multidiscrete": (GridXY, grid_symmetry),
    "multibinary": (Bits, bits_symmetry),
    "dict": (DictGrid, dict_symmetry),
}


def sample_batch(space: spaces.Space, n: int, seed: int = 0) -> Any:
    """``n`` raw observations of ``space`` as SB3 gives them to the network (a tensor, or a dict of tensors)."""
    space.seed(seed)
    samples = [space.sample() for _ in range(n)]
    if isinstance(space, spaces.Dict):
        return {k: th.as_tensor(np.stack([np.asarray(s[k]) for s in samples])) for k in space.spaces}
    return th.as_tensor(np.stack([np.asarray(s) for s in samples]))


def trained(case: str, method: str, **kwargs: Any) -> DQN:
    make_env, make_sym = CASES[case]
    model = DQN(
        EquiDQNPolicy,
        make_env(),
        buffer_size=1000,
        learning_starts=16,
        batch_size=16,
        train_freq=1,
        target_update_interval=10_000,
        policy_kwargs=dict(symmetry=make_sym(), method=method, net_arch=[32]),
        seed=0,
        **kwargs,
    )
    model.learn(64)
    return model


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("method", METHODS)
def test_exactly_equivariant_on_raw_observations(case: str, method: str) -> None:
    model = trained(case, method)
    sym = model.policy.symmetry
    obs = sample_batch(model.observation_space, 32)
    for net in (model.q_net, model.q_net_target):
        net.set_training_mode(False)
        assert equivariance_error(net, sym, obs) <= 1e-5
    # the networks differ from a constant: equivariance is not trivially met
    q = model.q_net(obs)
    assert q.std(0).max() > 1e-4
    if method == "lambda":  # the λ-net trained away from its zero start
        assert any(p.abs().sum() > 0 for p in model.q_net.reducer.lambda_net[-1].parameters())


def test_her_on_bitflipping_stays_equivariant() -> None:
    n = 6
    env = BitFlippingEnv(n_bits=n, continuous=False, max_steps=n)
    sym = bitflipping_symmetry(n)
    for method in ("lambda",):  # every method on Dict observations: test_exactly_equivariant_on_raw_observations
        model = DQN(
            EquiDQNPolicy,
            env,
            replay_buffer_class=HerReplayBuffer,
            replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"),
            buffer_size=1000,
            learning_starts=2 * n,
            batch_size=32,
            target_update_interval=50,
            policy_kwargs=dict(symmetry=sym, method=method, net_arch=[32]),
            seed=0,
        )
        model.learn(300)
        obs = sample_batch(env.observation_space, 32)
        for net in (model.q_net, model.q_net_target):
            assert equivariance_error(net, sym, obs) <= 1e-5, method


def test_lifted_actions_match_raw_actions_after_preprocessing() -> None:
    """g·preprocess(x) == preprocess(g·x) on every case: the lift is the raw action, exactly."""
    for case, (make_env, make_sym) in CASES.items():
        space = make_env().observation_space
        sym = make_sym()
        lifted = lift_symmetry(sym, space)
        x = sample_batch(space, 16)
        raw_orbit = sym.input_action.orbit(x)
        for g in range(sym.order):
            view = {k: v[g] for k, v in raw_orbit.items()} if isinstance(raw_orbit, dict) else raw_orbit[g]
            expected = preprocess(view, space)
            got = lifted.input_action.apply(g, preprocess(x, space))
            if isinstance(expected, dict):
                for k in expected:
                    assert th.equal(got[k], expected[k]), (case, g, k)
            else:
                assert th.equal(got, expected), (case, g)


def test_dict_orbit_is_one_batched_forward() -> None:
    model = DQN(
        EquiDQNPolicy, DictGrid(), buffer_size=100, policy_kwargs=dict(symmetry=dict_symmetry(), method="equitune")
    )
    seen: list[int] = []
    extractor = model.q_net.features_extractor
    handle = extractor.register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    model.q_net(sample_batch(model.observation_space, 5))
    handle.remove()
    assert seen == [4 * 5]


# -- refusals ------------------------------------------------------------------------------------
def _policy(space: spaces.Space, action: Action, n_actions: int = 4) -> EquiDQNPolicy:
    sym = Symmetry(action.group, action, TrivialAction(action.group), name="s")
    return EquiDQNPolicy(space, spaces.Discrete(n_actions), lambda _: 1e-3, symmetry=sym)


def test_refusals_name_the_space() -> None:
    g = cyclic(2)
    swap_out = list(range(15)) + [16, 15]  # sends state 15 to 16, outside Discrete(16)
    with pytest.raises(ValueError, match=r"Symmetry 's'.*Discrete observation space Discrete\(16\).*not a permutation"):
        _policy(spaces.Discrete(16), ValuePermutationAction(g, [swap_out]))
    with pytest.raises(ValueError, match=r"Discrete observation space.*cannot act on a state index"):
        _policy(spaces.Discrete(16), ValuePermutationAction(g, [[1, 0, 2]]))  # a permutation of 3 values only
    with pytest.raises(ValueError, match=r"Discrete observation space.*cannot act on a state index"):
        _policy(spaces.Discrete(4), PermutationAction(g, [[1, 0, 3, 2]]))
    with pytest.raises(ValueError, match=r"MultiDiscrete observation space.*entry 0 of g·x does not read exactly one"):
        _policy(spaces.MultiDiscrete([2, 3]), PermutationAction(g, [[1, 0]]))
    with pytest.raises(ValueError, match=r"MultiBinary observation space.*cannot act on arrays of shape \(3,\)"):
        _policy(spaces.MultiBinary(3), PermutationAction(g, [[1, 0, 3, 2]]))
    with pytest.raises(ValueError, match=r"MultiBinary observation space.*a sign -1 would map bit 1 to -1"):
        _policy(spaces.MultiBinary(2), SignedPermutationAction(g, [[1, 0]], signs=[[-1, -1]]))
    with pytest.raises(ValueError, match=r"Dict observation space.*DictAction"):
        _policy(spaces.Dict({"a": spaces.Discrete(2)}), ValuePermutationAction(g, [[1, 0]]))
    with pytest.raises(ValueError, match=r"keys \['b'\] that are not in the space"):
        _policy(spaces.Dict({"a": spaces.Discrete(2)}), DictAction(g, {"b": ValuePermutationAction(g, [[1, 0]])}))
    with pytest.raises(TypeError, match=r"got the Tuple space"):
        _policy(spaces.Tuple([spaces.Discrete(2)]), TrivialAction(g))


def test_multidiscrete_value_map_must_be_per_entry() -> None:
    """An action that mixes entries ((x, y) -> (x + y mod 3, y)) is refused, not silently lifted."""

    class Mixing(Action):
        def apply_each(self, y: th.Tensor) -> th.Tensor:
            out = y.clone()
            out[1, ..., 0] = (y[1, ..., 0] + y[1, ..., 1]) % 3
            out[1, ..., 1] = (3 - y[1, ..., 1]) % 3  # an involution on y; x + y is not one, caught either way
            return out

    with pytest.raises(ValueError, match="MultiDiscrete observation space"):
        _policy(spaces.MultiDiscrete([3, 3]), Mixing(cyclic(2)))


def test_position_value_permutation_checks_its_group() -> None:
    g = cyclic(2)
    with pytest.raises(ValueError, match="do not define an action of C2"):
        PositionValuePermutationAction(g, [3], [[0]], [[[1, 2, 0]]])  # a 3-cycle is no involution
    with pytest.raises(ValueError, match="only entries with equal sizes"):
        PositionValuePermutationAction(g, [2, 3], [[1, 0]])


# -- data form and save / load -----------------------------------------------------------------
def test_new_actions_round_trip_as_data() -> None:
    for make_sym in (grid_symmetry, dict_symmetry, lambda: bitflipping_symmetry(5)):
        sym = make_sym()
        back = Symmetry.from_dict(json.loads(json.dumps(sym.to_dict())))
        x = sample_batch(CASES["dict"][0]().observation_space, 8) if isinstance(sym.input_action, DictAction) else None
        if x is not None and "pos" in sym.input_action.actions:
            a, b = sym.input_action.orbit(x), back.input_action.orbit(x)
            assert all(th.equal(a[k], b[k]) for k in a)
        assert back.to_dict() == sym.to_dict()


_LOAD = """
import json, sys, torch as th
from stable_baselines3 import DQN
from equirl.agents.io import load_agent
for case in json.loads(sys.argv[2]):
    obs = th.load(f"{sys.argv[1]}/{case}.obs.pt")
    for kind in ("zip", "agent"):
        model = load_agent(f"{sys.argv[1]}/{case}.agent") if kind == "agent" else DQN.load(f"{sys.argv[1]}/{case}.zip", device="cpu")
        with th.no_grad():
            th.save((model.q_net(obs), model.q_net_target(obs)), f"{sys.argv[1]}/{case}.{kind}.pt")
"""


def test_save_and_load_identical_in_a_fresh_process(tmp_path: Path) -> None:
    """SB3's zip and the safe agent format give the same Q-values (online and target) in a new process."""
    expected = {}
    for case in CASES:
        model = trained(case, "lambda")
        obs = sample_batch(model.observation_space, 16)
        th.save(obs, tmp_path / f"{case}.obs.pt")
        with th.no_grad():
            expected[case] = (model.q_net(obs), model.q_net_target(obs))
        model.save(tmp_path / f"{case}.zip")
        save_agent(model, tmp_path / f"{case}.agent")
        assert load_agent(tmp_path / f"{case}.agent").observation_space == model.observation_space
    subprocess.run([sys.executable, "-c", _LOAD, str(tmp_path), json.dumps(sorted(CASES))], check=True)
    for case in CASES:
        for kind in ("zip", "agent"):
            got = th.load(tmp_path / f"{case}.{kind}.pt")
            for a, b in zip(got, expected[case], strict=True):
                assert th.equal(a, b), (case, kind)


def test_group_of_raw_symmetry_is_kept() -> None:
    """The policy keeps the declared (raw) symmetry; the lifted one acts only inside the network."""
    model = DQN(EquiDQNPolicy, GridXY(), buffer_size=100, policy_kwargs=dict(symmetry=grid_symmetry()), seed=0)
    assert isinstance(model.policy.symmetry.input_action, PositionValuePermutationAction)
    assert isinstance(model.q_net.input_symmetry.input_action, PermutationAction)
    assert isinstance(model.q_net.symmetry.group, Group)


def test_bitflipping_catalogue_symmetry_is_verified_and_a_wrong_one_is_not() -> None:
    def make() -> gym.Env:
        return BitFlippingEnv(n_bits=6, continuous=False, max_steps=6)

    sym = bitflipping_symmetry(6)
    mapper = get_state_mapper("BitFlipping-v0")
    assert verify_symmetry(make, sym, state_mapper=mapper, seeds=(0,), steps=60).ok
    wrong_way = PermutationAction(sym.group, [[5, 0, 1, 2, 3, 4]])  # actions shifted against the bits
    wrong = Symmetry(sym.group, sym.input_action, wrong_way, name="wrong")
    assert not verify_symmetry(make, wrong, state_mapper=mapper, seeds=(0,), steps=60).ok


class PerKeyExtractor(BaseFeaturesExtractor):
    """A custom Dict extractor: a linear map per key, summed (reads the preprocessed dict as SB3 gives it)."""

    def __init__(self, observation_space: spaces.Dict, features_dim: int = 16) -> None:
        super().__init__(observation_space, features_dim)
        sizes = {"pos": 10, "xy": 2, "flag": 2}  # one-hot MultiDiscrete([5, 5]), Box(2), one-hot Discrete(2)
        self.parts = th.nn.ModuleDict({k: th.nn.Linear(n, features_dim) for k, n in sizes.items()})

    def forward(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        return th.relu(sum(layer(obs[k].flatten(1)) for k, layer in self.parts.items()))  # type: ignore[return-value]


@pytest.mark.parametrize("method", METHODS)
def test_custom_dict_extractor_is_equivariant(method: str) -> None:
    model = DQN(
        EquiDQNPolicy,
        DictGrid(),
        buffer_size=1000,
        learning_starts=16,
        batch_size=16,
        policy_kwargs=dict(symmetry=dict_symmetry(), method=method, features_extractor_class=PerKeyExtractor),
        seed=0,
    )
    model.learn(48)
    assert isinstance(model.q_net.features_extractor, PerKeyExtractor)
    assert equivariance_error(model.q_net, model.policy.symmetry, sample_batch(model.observation_space, 16)) <= 1e-5


def test_lambda_net_gets_no_gradient_when_inputs_are_invariant() -> None:
    """docs/spaces.md: with a trivial action on observations every view is the same, the weights are uniform
    whatever λ is, and λ's gradient is zero up to rounding (the Q-network's own parameters do get gradients)."""
    g = cyclic(2)
    sym = Symmetry(g, DictAction(g, {}), PermutationAction(g, [[1, 0, 3, 2]]), name="actions only")
    policy = EquiDQNPolicy(
        DictGrid.observation_space, spaces.Discrete(4), lambda _: 1e-3, symmetry=sym, method="lambda"
    )
    th.nn.init.normal_(policy.q_net.reducer.lambda_net[-1].weight)  # away from the zero start
    policy.q_net(sample_batch(DictGrid.observation_space, 8)).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().max() < 1e-6 for p in policy.q_net.reducer.lambda_net.parameters())
    assert policy.q_net.q_net[0].weight.grad.abs().max() > 1e-3


class BatchNormExtractor(BaseFeaturesExtractor):
    def __init__(self, observation_space: spaces.Space, features_dim: int = 16) -> None:
        super().__init__(observation_space, features_dim)
        self.net = th.nn.Sequential(th.nn.Flatten(), th.nn.LazyLinear(features_dim), th.nn.BatchNorm1d(features_dim))

    def forward(self, obs: th.Tensor) -> th.Tensor:
        return self.net(obs)


def test_batchnorm_in_training_mode_stays_equivariant() -> None:
    """BatchNorm's statistics are over the whole orbit, which is the same multiset for x and for g·x."""
    policy = EquiDQNPolicy(
        GridXY.observation_space, spaces.Discrete(4), lambda _: 1e-3, symmetry=grid_symmetry(), method="equitune",
        features_extractor_class=BatchNormExtractor,
    )  # fmt: skip
    policy.q_net.set_training_mode(True)
    assert equivariance_error(policy.q_net, grid_symmetry(), sample_batch(GridXY.observation_space, 16)) <= 1e-5
