"""The lockstep verifier: every catalogue symmetry passes; wrong maps fail and the report names the step."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from equirl.envs.verify import action_table

from equirl import PermutationAction, SignFlipAction, SpatialAction, Symmetry, TrivialAction, cyclic, envs


def _steps_for(name: str) -> int:
    # MiniGrid steps at ~1000/s (its own gen_obs); every entry still gets every element checked,
    # and test_exact_symmetries_hold_over_many_steps goes deeper on representatives
    if not name.startswith("MiniGrid"):
        return 100
    return 10 if ("16x16" in name or "FourRooms" in name or "S11" in name or "MultiRoom" in name) else 20


@pytest.mark.parametrize("name", envs.list_symmetries())
def test_every_catalogue_symmetry_passes(name: str) -> None:
    report = envs.verify_symmetry(name, seeds=(0,), steps=_steps_for(name))
    assert report.ok, str(report)
    assert report.failure is None
    assert report.steps_checked == _steps_for(name) * (envs.get_symmetry(name).order - 1)
    assert len(report.elements) == envs.get_symmetry(name).order - 1


@pytest.mark.parametrize(
    ("name", "steps"),
    [
        ("CartPole-v1", 300),
        ("equirl/RotGrid-v0", 300),
        ("MiniGrid-DoorKey-5x5-v0", 300),
        ("MiniGrid-Empty-6x6-v0/full-D4", 60),
    ],
)
def test_exact_symmetries_hold_over_many_steps(name: str, steps: int) -> None:
    report = envs.verify_symmetry(name, seeds=(0, 1), steps=steps)
    assert report.ok, str(report)
    assert report.max_obs_diff == 0.0 and report.max_reward_diff == 0.0
    assert report.mode.startswith("exact")
    assert report.episodes >= 2


def test_acrobot_is_checked_over_short_horizons() -> None:
    report = envs.verify_symmetry("Acrobot-v1", seeds=(0, 1), steps=200)
    assert report.ok, str(report)
    assert report.mode.startswith("short-horizon") and report.notes
    assert "short-horizon" in str(report)


def _with_output(name: str, output_action_factory) -> Symmetry:  # type: ignore[no-untyped-def]
    sym = envs.get_symmetry(name)
    return dataclasses.replace(sym, output_action=output_action_factory(sym.group), name=f"{name} (wrong)")


@pytest.mark.parametrize(
    ("name", "wrong_output"),
    [
        ("CartPole-v1", TrivialAction),  # actions not swapped
        ("Acrobot-v1", TrivialAction),
        ("MiniGrid-Empty-8x8-v0", TrivialAction),  # mirror without the left/right swap
        ("MiniGrid-DoorKey-5x5-v0/full-D4", TrivialAction),  # flips without the swap
        ("equirl/RotGrid-v0/C4", lambda g: PermutationAction(g, [[3, 0, 1, 2]])),  # rotated the wrong way
    ],
)
def test_wrong_action_maps_fail_and_name_the_step(name: str, wrong_output) -> None:  # type: ignore[no-untyped-def]
    bad = _with_output(name, wrong_output)
    report = envs.verify_symmetry(name, bad, state_mapper=envs.get_state_mapper(name), seeds=(0, 1), steps=300)
    assert not report.ok
    f = report.failure
    assert f is not None and f.step >= 1 and f.seed == 0
    assert f.field in ("observation", "reward", "terminated", "truncated")
    assert f.max_abs_diff > 0
    assert f"step {f.step}" in str(report) and "FAILED" in str(report)
    assert report.steps_checked % 300 == f.step  # earlier runs completed; it stopped at the first failing step


def test_wrong_observation_map_fails() -> None:
    c2 = cyclic(2)
    # CartPole mirror that forgets to negate the angular velocity
    bad = Symmetry(c2, SignFlipAction(c2, [[-1.0, -1.0, -1.0, 1.0]]), PermutationAction(c2, [[1, 0]]), name="bad")
    report = envs.verify_symmetry("CartPole-v1", bad, state_mapper=envs.get_state_mapper("CartPole-v1"), steps=50)
    assert not report.ok and report.failure is not None
    assert report.failure.field == "observation" and report.failure.index == (3,)
    # a RotGrid "symmetry" that flips columns but swaps up/down actions
    d = cyclic(2)
    bad2 = Symmetry(d, SpatialAction(d, ["flip1"]), PermutationAction(d, [[2, 1, 0, 3]]), name="bad2")
    mapper = envs.mappers.rotgrid_mapper(["flip0"])
    report2 = envs.verify_symmetry("equirl/RotGrid-v0", bad2, state_mapper=mapper, steps=50)
    assert not report2.ok and report2.failure is not None and report2.failure.step == 0


def test_tolerances_are_arguments() -> None:
    base = envs.get_state_mapper("CartPole-v1")
    noisy = dataclasses.replace(base, map_state=lambda s, g, sym: base.map_state(s, g, sym) + 1e-7)
    sym = envs.get_symmetry("CartPole-v1")
    strict = envs.verify_symmetry("CartPole-v1", sym, state_mapper=noisy, steps=20, obs_atol=1e-9)
    assert not strict.ok and strict.failure is not None and strict.failure.step == 0
    loose = envs.verify_symmetry("CartPole-v1", sym, state_mapper=noisy, steps=20, obs_atol=1e-4)
    assert loose.ok, str(loose)
    assert 0 < loose.max_obs_diff < 1e-4


def test_factory_and_user_mapper() -> None:
    """A user-brought environment: a factory plus a StateMapper built from generator maps."""
    mapper = envs.mapper_from_generators(
        lambda env: np.array(env.unwrapped.state, dtype=np.float64),
        lambda env, s: setattr(env.unwrapped, "state", np.array(s)),
        [lambda s: -s],
    )
    report = envs.verify_symmetry(
        lambda: gym.make("CartPole-v1"), envs.get_symmetry("CartPole-v1"), state_mapper=mapper, steps=100
    )
    assert report.ok and report.steps_checked == 300
    with pytest.raises(TypeError, match="give a symmetry"):
        envs.verify_symmetry(lambda: gym.make("CartPole-v1"))


def test_action_table_follows_the_output_action() -> None:
    sym = envs.get_symmetry("equirl/RotGrid-v0/C4")
    tab = action_table(sym, 4)
    # after a quarter turn (counter-clockwise) "up" plays the role of "right": Q(s, right) sits at Q(g·s, up)
    assert tab[1].tolist() == [3, 0, 1, 2]
    assert tab[0].tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="permute"):
        c2 = cyclic(2)
        action_table(Symmetry(c2, TrivialAction(c2), SignFlipAction(c2, [[-1.0, 1.0]])), 2)
