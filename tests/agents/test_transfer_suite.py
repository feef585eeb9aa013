"""The transfer suite's like-for-like comparison: true zero-shot at K = 0, every method at the same K, tasks
labelled by what plain scores on them, and the measurement of how far a pretrained network is from equivariant."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from equirl.agents import equivariant_from_pretrained, run_transfer
from equirl.agents.transfer_suite import (
    KEEPS_MOST,
    TASKS,
    budgets,
    read_folder,
    render_folder,
    runs_csv,
    transfer_table,
    view_agreement,
)
from equirl.envs import get_symmetry
from equirl.envs.wrappers import HalfTrack, make_task_env

ROTGRID = "equirl/RotGrid-Corner-v0"
FAST = {"learning_starts": 10, "train_freq": 4, "gradient_steps": 1}


def _task(i: int):  # noqa: ANN202
    return functools.partial(make_task_env, ROTGRID, list(TASKS[ROTGRID].values())[i])


def test_lambda_zero_shot_is_equitune_and_its_fit_counts_inside_k() -> None:
    """At K = 0 no method has seen the task: λ-equitune's initial λ-net is equitune, episode for episode."""
    sym = get_symmetry(ROTGRID)
    kw = dict(n_eval_episodes=4, eval_freq=32, hyperparams=FAST, seed=1)
    equi = run_transfer("rotgrid_bottom_plain", sym, "equitune", _task(1), finetune_steps=0, **kw)
    lam = run_transfer("rotgrid_bottom_plain", sym, "lambda", _task(1), finetune_steps=64, lambda_fit_steps=32, **kw)
    assert lam.zero_shot == equi.zero_shot and lam.curve[0]["timesteps"] == 0
    assert [int(r["timesteps"]) for r in lam.curve] == [0, 32, 64]  # the fit's 32 steps are the first of K = 64
    assert lam.lambda_fit_steps == 32


def _runs(plain_target: float) -> list[dict]:
    runs = []
    for seed in range(3):
        for task, plain0 in (("src", 1.0), ("tgt", plain_target)):
            for m, add in (("plain", 0.0), ("equitune", 0.2)):
                z = plain0 if m == "plain" else 0.8
                curve = [{"timesteps": k, "mean_return": z + (add * k / 200 + 0.01 * seed if add else 0.0),
                          "std_return": 0.0}
                         for k in (0, 100, 200)]  # fmt: skip
                if m == "equitune" and seed == 0:
                    curve.append({"timesteps": 150, "mean_return": 0.0, "std_return": 0.0})  # a point only one run has
                runs.append({"task": task, "method": m, "seed": seed, "curve": curve})
    return runs


@pytest.mark.parametrize(("plain_target", "label"), [(0.9, "does not measure transfer"), (0.1, "measures transfer")])
def test_transfer_table_labels_tasks_by_what_plain_keeps(plain_target: float, label: str) -> None:
    settings = {"tasks": ["src", "tgt"], "methods": ["plain", "equitune"], "lambda_fit_steps": 0, "eval_episodes": 5}
    runs = _runs(plain_target)
    assert budgets(runs) == [0, 100, 200]  # 150: not every run was evaluated there
    table = transfer_table(settings, runs)
    tgt = next(line for line in table.splitlines() if line.startswith("| tgt"))
    assert label in tgt and f"({100 * plain_target:.0f}%)" in tgt
    assert ("does not" in tgt) == (plain_target >= KEEPS_MOST)
    assert "K = 150" not in table and "| K = 0 | K = 100 | K = 200 |" in table
    equi_tgt = table.splitlines()[table.splitlines().index(tgt) + 1]
    # equitune at K = 200 on tgt: 1.0 + 0.01 * seed -> mean 1.01; P(> plain) is 1 when plain stays at 0.1
    assert "1.01 [1.00, 1.02]" in equi_tgt
    assert equi_tgt.endswith("1.00 [1.00, 1.00] |") == (plain_target < 1.0)


def test_raw_results_round_trip(tmp_path: Path) -> None:
    import json

    settings = {"tasks": ["src", "tgt"], "methods": ["plain", "equitune"], "lambda_fit_steps": 0, "eval_episodes": 5}
    runs = _runs(0.1)
    (tmp_path / "runs.csv").write_text(runs_csv(runs))
    (tmp_path / "suite.json").write_text(json.dumps(settings))
    got_settings, got = read_folder(tmp_path)
    assert got_settings == settings and len(got) == len(runs)
    assert render_folder(tmp_path) == transfer_table(settings, runs)
    with pytest.raises(FileNotFoundError, match="suite.json"):
        read_folder(tmp_path / "missing")


def test_view_agreement_of_an_equivariant_network_is_exact() -> None:
    """A symmetrised network's views all equal its Q; the plain network's identity view is itself."""
    plain = view_agreement(ROTGRID, 0, episodes=2)
    by = {r["element"]: r for r in plain}
    assert by["e"]["q_gap"] == 0.0 and by["e"]["argmax_agrees"] == 1.0
    assert max(r["q_gap"] for r in plain[:8]) > 0.05  # the pretrained network is not equivariant
    assert sum(r["picked_by_equizero"] for r in plain[:8]) == pytest.approx(1.0)
    equi = equivariant_from_pretrained("rotgrid_bottom_plain", get_symmetry(ROTGRID), "equitune")
    for r in view_agreement(ROTGRID, 0, pretrained=equi, episodes=2):
        assert r["q_gap"] < 1e-5, r  # (argmax may still differ on states where two actions tie exactly)


def test_half_track_and_its_mirror() -> None:
    env = make_task_env("CartPole-v1", {"half_track": {"low": 0.8, "high": 1.6}})
    mirror = make_task_env("CartPole-v1", {"half_track": {"low": 0.8, "high": 1.6}, "transform": 1})
    for seed in range(5):
        o, _ = env.reset(seed=seed)
        m, _ = mirror.reset(seed=seed)
        assert 0.8 <= o[0] <= 1.6 and np.allclose(m, -o)
    # the cart crossing x = 0 ends the episode (CartPole itself would go on)
    env.reset(seed=0)
    env.unwrapped.state = np.array([0.01, -1.0, 0.0, 0.0])  # one step (τ = 0.02 s) to x = -0.01
    _, _, term, _, _ = env.step(0)
    assert term
    with pytest.raises(ValueError, match="0 < low <= high < 2.4"):
        HalfTrack(make_task_env("CartPole-v1", {}), low=-1.0)


def test_views_command_writes_raw_results_with_their_provenance(tmp_path: Path) -> None:
    import json

    from equirl.agents.transfer_suite import read_views, views_table

    from equirl.cli import main as equirl_main

    assert equirl_main(["transfer", ROTGRID, "--views", "--eval-episodes", "1", "--out", str(tmp_path)]) == 0
    rows = read_views(tmp_path / "views.csv")
    assert [r["element"] for r in rows][:2] == ["e", "r"] and len(rows) == 8 + 2
    meta = json.loads((tmp_path / "views.json").read_text())
    assert meta["command"] and meta["code_version"] and meta["machine"] and meta["episodes"] == 1
    assert views_table(rows).startswith("| suite | task (states) |")
