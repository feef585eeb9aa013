"""Symmetry discovery: the catalogue's symmetries are found from scratch; an environment without one gets C1."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from equirl.envs.discover import ObsStateCodec, discover_symmetry
from equirl.envs.verify import action_table

from equirl import TrivialAction, envs


def _same_group_action(found: envs.DiscoveryReport, name: str, obs_shape: tuple[int, ...], n_actions: int) -> None:
    """The found symmetry has the catalogue's set of (observation map, action map) pairs."""
    ref = envs.get_symmetry(name)
    sym = found.symmetry
    assert sym.order == ref.order
    x = torch.randn(1, *obs_shape, dtype=torch.float64)

    def pairs(s):  # type: ignore[no-untyped-def]
        orbit = s.input_action.orbit(x).reshape(s.order, -1)
        tab = action_table(s, n_actions)
        return sorted((tuple(np.round(o.numpy(), 9)), tuple(t)) for o, t in zip(orbit, tab, strict=True))

    assert pairs(sym) == pairs(ref)


@pytest.mark.parametrize(
    ("name", "group", "steps"),
    [
        ("CartPole-v1", "C2", 60),
        ("Acrobot-v1", "C2", 60),
        ("equirl/RotGrid-v0", "D4", 60),
        ("MiniGrid-Empty-8x8-v0", "C2", 60),
        ("MiniGrid-Empty-5x5-v0/full-D4", "D4", 20),  # direction channels matched: d -> d+1 per quarter turn
    ],
)
def test_finds_the_catalogue_symmetry(name: str, group: str, steps: int) -> None:
    report = discover_symmetry(name, verify_seeds=(0,), verify_steps=steps)
    assert report.group == group, str(report)
    env = envs.make_env(name)
    _same_group_action(report, name, env.observation_space.shape, int(env.action_space.n))
    # the returned symmetry and mapper verify on their own, and the snippet declares the same symmetry
    assert envs.verify_symmetry(name, report.symmetry, state_mapper=report.state_mapper, seeds=(1,), steps=steps).ok
    scope: dict[str, object] = {}
    exec(report.snippet, scope)  # noqa: S102  (our own generated code)
    declared = scope["symmetry"]
    _same_group_action(report, name, env.observation_space.shape, int(env.action_space.n))
    x = torch.randn(1, *env.observation_space.shape, dtype=torch.float64)
    assert torch.equal(declared.input_action.orbit(x), report.symmetry.input_action.orbit(x))  # type: ignore[attr-defined]
    assert f"found {group}" in str(report) and "re-verified: OK" in str(report)


def test_no_symmetry_gives_the_trivial_group() -> None:
    """MountainCar: the hill is not symmetric about 0 and the bounds are not either: only the identity."""
    report = discover_symmetry("MountainCar-v0", verify_seeds=(0,), verify_steps=60)
    assert report.group == "C1" and report.symmetry.order == 1 and report.state_mapper is None
    assert report.pruned["observation bounds"] == 8 - 2  # 2!·2² signed permutations; position cannot change sign
    assert [c.verdict for c in report.candidates] == ["failed one-step"]
    assert "trivial_group()" in report.snippet


def test_stochastic_environment_and_user_codec() -> None:
    """NoisyCartPole through a user-written codec: detected as stochastic, the mirror found statistically."""
    codec = ObsStateCodec(
        observe=lambda u: np.array(u.state, dtype=np.float64),
        set_obs=lambda u, o: setattr(u, "state", np.array(o, dtype=np.float64)),
    )
    report = discover_symmetry(
        lambda: gym.make(envs.NOISY_CARTPOLE_ID), codec=codec, verify_seeds=(0,), verify_steps=60, name="noisy"
    )
    assert report.stochastic and report.group == "C2", str(report)
    assert report.verification is not None and report.verification.mode == "statistical"
    assert report.symmetry.name == "noisy"
    _same_group_action(report, "CartPole-v1", (4,), 2)


def test_continuous_actions_pendulum() -> None:
    """Pendulum: θ -> -θ with the torque negated, found among sign flips of the continuous action."""
    report = discover_symmetry("Pendulum-v1", verify_seeds=(0,), verify_steps=60)
    assert report.group == "C2", str(report)
    x = torch.tensor([[0.3, 0.4, 1.5]], dtype=torch.float64)
    assert report.symmetry.input_action.apply(1, x).tolist() == [[0.3, -0.4, -1.5]]
    assert report.symmetry.output_action.apply(1, torch.tensor([[0.5]])).tolist() == [[-0.5]]
    assert "actions -> [-a0]" in str(report) and "SignFlipAction(G, [[-1]])" in report.snippet
    # the verifier steps continuous actions too: the unmirrored torque fails
    ok = envs.verify_symmetry("Pendulum-v1", report.symmetry, state_mapper=report.state_mapper, seeds=(1,), steps=50)
    assert ok.ok, str(ok)
    bad = dataclasses.replace(report.symmetry, output_action=TrivialAction(report.symmetry.group))
    fail = envs.verify_symmetry("Pendulum-v1", bad, state_mapper=report.state_mapper, seeds=(1,), steps=50)
    assert not fail.ok and fail.failure is not None and fail.failure.step == 1


def test_unsupported_inputs_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="searched are Discrete actions"):
        discover_symmetry(_FakeContinuous)
    with pytest.raises(ValueError, match="codec=ObsStateCodec"):
        discover_symmetry(_FakeVec)


class _FakeContinuous(gym.Env):
    """Unbounded continuous actions."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,))
    action_space = gym.spaces.Box(-np.inf, np.inf, (1,))


class _FakeVec(gym.Env):
    """A vector env of an unknown class (no built-in codec)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,))
    action_space = gym.spaces.Discrete(2)
