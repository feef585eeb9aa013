"""The statistical verifier on a stochastic environment, per-field tolerances and exclusions in lockstep mode."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from equirl.envs.verify import StatisticalReport, correct_p_values, two_sample_tests

from equirl import PermutationAction, SignFlipAction, Symmetry, TrivialAction, cyclic, envs

NOISY = envs.NOISY_CARTPOLE_ID
C2 = cyclic(2)
TRUE = envs.get_symmetry("CartPole-v1")
NEAR_MISSES = {
    "wrong sign on θ̇": Symmetry(C2, SignFlipAction(C2, [[-1.0, -1.0, -1.0, 1.0]]), PermutationAction(C2, [[1, 0]])),
    "actions not swapped": dataclasses.replace(TRUE, output_action=TrivialAction(C2)),
    "x and θ swapped": Symmetry(
        C2, PermutationAction(C2, [[2, 1, 0, 3]], signs=[[-1.0] * 4]), PermutationAction(C2, [[1, 0]])
    ),
}


def _stat(sym: Symmetry, **kw: object) -> StatisticalReport:
    kw = {"state_mapper": envs.mappers.cartpole_mapper(), "seeds": (0,), "steps": 100, "states": 8, "rollouts": 32} | kw
    report = envs.verify_symmetry(NOISY, sym, mode="statistical", **kw)  # type: ignore[arg-type]
    assert isinstance(report, StatisticalReport)
    return report


def test_lockstep_cannot_check_a_stochastic_symmetry() -> None:
    """The motivation: the true mirror of the noisy env fails step by step (the twin draws other noise)."""
    report = envs.verify_symmetry(NOISY, TRUE, state_mapper=envs.mappers.cartpole_mapper(), steps=50)
    assert not report.ok and report.failure is not None and report.failure.step == 1


@pytest.mark.parametrize("test", ["ks", "mmd"])
def test_true_symmetry_passes_near_misses_fail(test: str) -> None:
    ok = _stat(TRUE, test=test)
    assert ok.ok, str(ok)
    assert ok.n_tests == (8 * 7 if test == "ks" else 8) and ok.samples == 8 * 2 * 32
    assert ok.p_value >= 0.01 and "no field differs" in str(ok)
    for name, bad in NEAR_MISSES.items():
        report = _stat(bad, test=test)
        assert not report.ok, name
        assert report.p_value < 0.01 and report.differing, name
        assert "FAILED" in str(report) and "fields that differ" in str(report)
    # the report names the field a wrong sign breaks
    assert _stat(NEAR_MISSES["wrong sign on θ̇"]).differing[0].startswith("obs[3]")


def test_without_a_mapper_trajectories_are_compared() -> None:
    ok = envs.verify_symmetry(lambda: envs.make_env(NOISY), TRUE, mode="statistical", seeds=(0,), states=8, rollouts=64)
    assert isinstance(ok, StatisticalReport) and ok.ok, str(ok)
    assert "no state mapper" in ok.method
    bad = envs.verify_symmetry(
        lambda: envs.make_env(NOISY), NEAR_MISSES["actions not swapped"], mode="statistical", seeds=(0,), states=8,
        rollouts=64,
    )  # fmt: skip
    assert not bad.ok


def test_statistical_mode_on_deterministic_dynamics_is_exact() -> None:
    """Deterministic fields need no noise: the catalogue's CartPole mirror passes, the unswapped one fails."""
    assert envs.verify_symmetry("CartPole-v1", mode="statistical", seeds=(0,), states=4, rollouts=16).ok
    bad = dataclasses.replace(TRUE, output_action=TrivialAction(C2))
    report = envs.verify_symmetry(
        "CartPole-v1", bad, mode="statistical", state_mapper=envs.get_state_mapper("CartPole-v1"), states=4, rollouts=16
    )
    assert not report.ok and report.p_value < 1e-6


def test_exclusions_apply_in_statistical_mode() -> None:
    report = _stat(NEAR_MISSES["wrong sign on θ̇"], exclude=["obs[1]", "obs[3]"])
    assert {t.field for t in report.tests} == {"obs[0]", "obs[2]", "reward", "terminated", "truncated"}
    traj = envs.verify_symmetry(
        lambda: envs.make_env(NOISY), TRUE, mode="statistical", seeds=(0,), states=2, rollouts=32,
        exclude=["obs[1]", "truncated"],
    )  # fmt: skip
    fields = {t.field for t in traj.tests}
    assert "obs[1]" not in fields and "Δobs[1]" not in fields and "truncated" not in fields
    assert {"obs[0]", "Δobs[0]", "reward"} <= fields


def test_corrections() -> None:
    p = [0.01, 0.04, 0.03, 0.2]
    assert np.allclose(correct_p_values(p, "bonferroni"), [0.04, 0.16, 0.12, 0.8])
    # Holm: sorted 0.01*4, 0.03*3, 0.04*2, 0.2*1, made monotone
    assert np.allclose(correct_p_values(p, "holm"), [0.04, 0.09, 0.09, 0.2])
    with pytest.raises(ValueError, match="correction"):
        correct_p_values(p, "fdr")


def test_two_sample_tests_detect_a_shift_and_accept_equal_samples() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 2)), rng.normal(size=(200, 2))
    for test in ("ks", "mmd"):
        same = two_sample_tests(x, y, ["a", "b"], "here", test, rng=rng)
        shifted = two_sample_tests(x, y + [0.0, 1.0], ["a", "b"], "here", test, rng=rng)
        assert min(t.p_value for t in same) > 0.01
        assert min(t.p_value for t in shifted) < 1e-3
    ks = two_sample_tests(x, y + [0.0, 1.0], ["a", "b"], "here", "ks")
    assert ks[0].p_value > 0.01 and ks[1].p_value < 1e-6


def test_per_field_tolerances_and_exclusions_in_lockstep() -> None:
    base = envs.get_state_mapper("CartPole-v1")
    nudge = np.array([0.0, 0.0, 0.0, 1e-5])
    noisy = dataclasses.replace(base, map_state=lambda s, g, sym: base.map_state(s, g, sym) + nudge)
    strict = envs.verify_symmetry("CartPole-v1", TRUE, state_mapper=noisy, steps=20)
    assert not strict.ok and strict.failure is not None and strict.failure.index == (3,)
    # (two steps: later the nudge on θ̇ moves θ too)
    per_field = envs.verify_symmetry("CartPole-v1", TRUE, state_mapper=noisy, steps=2, tolerances={"obs[3]": 1e-4})
    assert per_field.ok, str(per_field)
    # the other fields keep their tolerance: a nudge on x is still caught
    nudge_x = dataclasses.replace(base, map_state=lambda s, g, sym: base.map_state(s, g, sym) + nudge[::-1])
    still = envs.verify_symmetry("CartPole-v1", TRUE, state_mapper=nudge_x, steps=2, tolerances={"obs[3]": 1e-4})
    assert not still.ok and still.failure is not None and still.failure.index == (0,)
    skipped = envs.verify_symmetry("CartPole-v1", TRUE, state_mapper=noisy, steps=2, exclude=["obs[3]"])
    assert skipped.ok and "not compared: obs[3]" in str(skipped)
    unswapped = dataclasses.replace(TRUE, output_action=TrivialAction(C2))
    no_obs = envs.verify_symmetry("CartPole-v1", unswapped, state_mapper=base, steps=100, exclude=["observation"])
    assert not no_obs.ok and no_obs.failure is not None and no_obs.failure.field != "observation"
    with pytest.raises(ValueError, match="obs\\[9\\]"):
        envs.verify_symmetry("CartPole-v1", steps=5, tolerances={"obs[9]": 1.0})
    with pytest.raises(ValueError, match="unknown field"):
        envs.verify_symmetry("CartPole-v1", steps=5, exclude=["velocity"])


def test_a_symmetry_of_another_environment_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="does not fit the environment 'CartPole-v1'"):
        envs.verify_symmetry("CartPole-v1", "Acrobot-v1", steps=5)
