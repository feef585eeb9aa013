"""The world seen through a group element: GroupTransformed for every element (not only involutions)."""

from __future__ import annotations

import numpy as np
import pytest
from equirl.envs import get_symmetry
from equirl.envs.gridworld import RotGridEnv
from equirl.envs.wrappers import GroupTransformed, make_task_env, transformed_tasks


def _lockstep_mismatch(wrapped: GroupTransformed, reference: RotGridEnv, steps: int = 150) -> str | None:
    """Step the wrapped original world and the genuinely rotated world with the same actions; first difference."""
    rng = np.random.default_rng(0)
    obs, _ = wrapped.reset(seed=3)
    reference.reset(seed=0)
    reference.set_state((obs, 0))
    for t in range(steps):
        a = int(rng.integers(4))
        o1, r1, te1, tr1, _ = wrapped.step(a)
        o2, r2, te2, tr2, _ = reference.step(a)
        if not (np.array_equal(o1, o2) and r1 == r2 and te1 == te2):
            return f"step {t}, action {a}"
        if te1 or tr1:
            obs, _ = wrapped.reset()
            reference.set_state((obs, 0))
    return None


@pytest.mark.parametrize("k", [1, 2, 3])
def test_world_seen_through_rotation_is_the_rotated_world(k: int) -> None:
    """Through r^k (C4: r, r², r³) the maze is the maze with layout_rotation=k, step for step."""
    sym = get_symmetry("equirl/RotGrid-Maze-v0/C4")
    g = sym.group.element_names.index("r" if k == 1 else f"r^{k}")
    wrapped = GroupTransformed(RotGridEnv(layout="maze", goal_corners=(2,)), sym, g)
    reference = RotGridEnv(layout="maze", goal_corners=(2,), layout_rotation=k)
    obs, _ = wrapped.reset(seed=1)
    assert np.array_equal(obs[:2], reference.reset(seed=1)[0][:2])  # walls and hazards: the rotated layout
    assert _lockstep_mismatch(wrapped, reference) is None
    # the test can fail: mapping actions with g⁻¹ instead of g is caught for r and r³ (r² is an involution)
    wrong = GroupTransformed(RotGridEnv(layout="maze", goal_corners=(2,)), sym, g)
    wrong.action_map = GroupTransformed(RotGridEnv(), sym, sym.group.inverse(g)).action_map
    assert (_lockstep_mismatch(wrong, reference) is None) == (k == 2)


def test_transformed_tasks_for_every_element() -> None:
    tasks = transformed_tasks("equirl/RotGrid-v0")  # D4
    assert len(tasks) == 8 and list(tasks)[0] == "original world (pretraining)"
    assert list(tasks)[1:] == [
        f"world seen through {n}" for n in get_symmetry("equirl/RotGrid-v0").group.element_names[1:]
    ]
    env = make_task_env("CartPole-v1", transformed_tasks("CartPole-v1")["world seen through r"])
    o, _ = env.reset(seed=0)
    assert np.allclose(o, -make_task_env("CartPole-v1", {}).reset(seed=0)[0])
    with pytest.raises(ValueError, match="element index"):
        GroupTransformed(RotGridEnv(), get_symmetry("equirl/RotGrid-v0"), 8)
