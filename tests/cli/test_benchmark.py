"""The sample-efficiency sweep: aggregation on known curves, resuming, and tiny end-to-end sweeps."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from equirl.agents import sweep
from equirl.agents.hyperparams import model_arguments, split_hyperparams

from equirl.cli import bench as benchmark
from equirl.cli import main as equirl_main


# -- aggregation on synthetic curves ------------------------------------------------------------
def test_steps_to_threshold_first_crossing_and_never() -> None:
    t = [0, 100, 200, 300, 400]
    assert sweep.steps_to_threshold(t, [0, 5, 10, 3, 12], 10) == 200  # first crossing, not the last
    assert sweep.steps_to_threshold(t, [0, 5, 9.9, 3, 9], 10) == math.inf
    assert sweep.steps_to_threshold(t, [11, 0, 0, 0, 0], 10) == 0


def test_normalised_auc_is_mean_return_over_training() -> None:
    assert sweep.normalised_auc([0, 100], [0, 10]) == pytest.approx(5.0)  # a ramp: mean 5
    assert sweep.normalised_auc([0, 100, 200], [2, 2, 2]) == pytest.approx(2.0)
    # held at the last value up to the budget: 0..100 ramp (area 500) + 100..300 at 10 (area 2000)
    assert sweep.normalised_auc([0, 100], [0, 10], budget=300) == pytest.approx(2500 / 300)


def test_quantile_counts_unsolved_runs_as_slowest() -> None:
    inf = math.inf
    assert sweep.quantile([100, 200, 300], 0.5) == 200
    assert sweep.quantile([100, 200, 300, 400], 0.25) == pytest.approx(np.quantile([100, 200, 300, 400], 0.25))
    assert sweep.quantile([100, 200, inf, inf, inf], 0.5) == inf  # most never solve: median is "never"
    assert sweep.quantile([100, 200, 300, inf, inf], 0.5) == 300
    assert sweep.quantile([100, 200, 300, inf, inf], 0.25) == 200
    assert sweep.quantile([100, 200, 300, 400, inf], 0.75) == 400
    assert sweep.quantile([inf, inf], 0.5) == inf  # np.quantile gives nan here


def test_collapse_only_after_solving() -> None:
    assert sweep.collapsed_after_solving([0, 500, 100, 500], threshold=475, baseline=20)
    assert not sweep.collapsed_after_solving([0, 500, 300, 500], threshold=475, baseline=20)  # above halfway
    assert not sweep.collapsed_after_solving([0, 100, 0, 400], threshold=475, baseline=20)  # never solved


def _synthetic(env_id: str, method: str, curves_by_seed: dict[int, list[float]], t: list[int], seconds: float):
    runs, curves = [], []
    for seed, returns in curves_by_seed.items():
        runs.append(
            dict(
                env_id=env_id,
                method=method,
                seed=seed,
                timesteps=t[-1],
                group_order=1 if method == "plain" else 2,
                train_seconds=seconds,
                eval_seconds=0.0,
                total_seconds=seconds,
                steps_per_second=t[-1] / seconds,
                final_return=returns[-1],
                final_return_std=0.0,
                threshold=10.0,
                baseline=0.0,
            )
        )
        curves += [
            dict(env_id=env_id, method=method, seed=seed, timesteps=ti, mean_return=ri)
            for ti, ri in zip(t, returns, strict=True)
        ]
    return runs, curves


def test_aggregate_on_known_curves() -> None:
    t = [0, 100, 200, 300, 400]
    r1, c1 = _synthetic("E", "plain", {0: [0, 0, 0, 10, 10], 1: [0, 0, 0, 0, 10], 2: [0, 0, 0, 0, 0]}, t, 10.0)
    r2, c2 = _synthetic(
        "E", "equitune", {0: [0, 10, 10, 10, 10], 1: [0, 10, 0, 10, 10], 2: [0, 0, 10, 10, 10]}, t, 25.0
    )
    rows = sweep.aggregate(r1 + r2, c1 + c2)
    plain, equi = rows
    assert (plain["method"], equi["method"]) == ("plain", "equitune")
    assert plain["n_solved"] == 2 and equi["n_solved"] == 3
    assert plain["steps_median"] == 400 and plain["steps_q25"] == 350 and plain["steps_q75"] == math.inf
    assert equi["steps_median"] == 100 and equi["steps_q25"] == 100 and equi["steps_q75"] == 150
    # AUC = mean over training: seed0 plain: trapezoids 0,0,500,1000 over 400 -> 3.75; seed1 1.25; seed2 0
    assert plain["auc_mean"] == pytest.approx((3.75 + 1.25 + 0) / 3)
    assert plain["final_mean"] == pytest.approx(20 / 3)
    assert plain["final_std"] == pytest.approx(np.std([10, 10, 0], ddof=1))  # sample std
    # IQM of 3 runs drops nothing; P(equitune > plain) on final returns: 10 vs (10, 10, 0) -> 2/3
    assert plain["final_iqm"] == pytest.approx(20 / 3) and math.isnan(plain["final_poi"])
    assert equi["final_poi"] == pytest.approx(2 / 3) and equi["final_poi_lo"] <= 2 / 3 <= equi["final_poi_hi"]
    assert equi["auc_poi"] == 1.0  # every equitune run has a larger AUC than every plain run
    assert plain["auc_mean_lo"] <= plain["auc_mean"] <= plain["auc_mean_hi"]
    assert equi["collapses"] == 1 and plain["collapses"] == 0
    assert equi["wallclock_ratio"] == pytest.approx(2.5) and plain["wallclock_ratio"] == pytest.approx(1.0)
    table = sweep.markdown_table(rows)
    assert "| E | equitune | 2 | 3 | 3/3 | 100 [100, 150] |" in table
    assert "| E | plain | 1 | 3 | 2/3 | 400 [350, —] |" in table
    assert "| 1.00 [1.00, 1.00] |" in table.splitlines()[3]  # P(AUC > plain) of equitune
    assert sweep.TABLE_NOTE in table


def test_across_envs_table_normalises_and_stratifies() -> None:
    t = [0, 100]
    runs, curves = [], []
    for env in ("A", "B"):  # threshold 10, baseline 0: a final return of 10 normalises to 1, of 0 to 0
        for method, final in (("plain", 0.0), ("equitune", 10.0)):
            r, c = _synthetic(env, method, {s: [0, final] for s in range(3)}, t, 1.0)
            runs, curves = runs + r, curves + c
    r, c = _synthetic("A", "lambda", {0: [0, 10]}, t, 1.0)  # on one environment only: left out
    table = sweep.across_envs_table(sweep.aggregate(runs + r, curves + c, reps=200), reps=200)
    assert "| plain | 3 | 0.00 [0.00, 0.00] |" in table
    assert "| equitune | 3 | 1.00 [1.00, 1.00] | 0.50 [0.50, 0.50] | 1.00 [1.00, 1.00] | 1.00 [1.00, 1.00] |" in table
    assert "| lambda |" not in table and "Not on every one of them with equal runs: lambda." in table


def test_aggregate_env_order() -> None:
    ra, ca = _synthetic("A", "plain", {0: [0, 5]}, [0, 100], 1.0)
    rb, cb = _synthetic("B", "plain", {0: [0, 5]}, [0, 100], 1.0)
    assert [r["env_id"] for r in sweep.aggregate(ra + rb, ca + cb)] == ["A", "B"]
    assert [r["env_id"] for r in sweep.aggregate(ra + rb, ca + cb, env_order=["B"])] == ["B", "A"]
    assert [r["env_id"] for r in sweep.aggregate(ra + rb, ca + cb, env_order=["B", "A", "B"])] == ["B", "A"]


def test_aggregate_thresholds_override() -> None:
    t = [0, 100]
    runs, curves = _synthetic("E", "plain", {0: [0, 5]}, t, 1.0)
    (row,) = sweep.aggregate(runs, curves, {"E": (4.0, 0.0)})
    assert row["steps_median"] == 100 and row["n_solved"] == 1


def test_config_loads_every_benchmark_environment() -> None:
    benches = sweep.load_config()
    for env_id in (
        "CartPole-v1",
        "Acrobot-v1",
        "equirl/RotGrid-v0",
        "MiniGrid-Empty-8x8-v0",
        "MiniGrid-DoorKey-5x5-v0",
    ):
        b = benches[env_id]
        assert b.timesteps > 0 and 0 < b.eval_freq <= b.timesteps
    assert benches["CartPole-v1"].threshold == 475 and benches["Acrobot-v1"].threshold == -100
    assert sweep.default_seeds() >= 5


@pytest.mark.parametrize("algo", ["ppo", "qrdqn"])
def test_algorithm_configs_load_with_their_algorithm(algo: str) -> None:
    """benchmark_<algo>.yml: every entry runs ``algo`` and its hyperparameters load for it (with the budget's
    schedules kept in absolute steps)."""
    from equirl.agents.algorithms import get_algorithm

    if algo == "qrdqn":
        pytest.importorskip("sb3_contrib")
    config = sweep.config_path(algo)  # a shipped config by name
    assert config == sweep.DEFAULT_CONFIG.with_name(f"benchmark_{algo}.yml")
    benches = sweep.load_config(config)
    assert {"CartPole-v1", "Acrobot-v1", "equirl/RotGrid-v0"} <= set(benches)
    for b in benches.values():
        assert b.algo == algo and 0 < b.eval_freq <= b.timesteps
        hp = sweep._hyperparams(b)
        assert set(split_hyperparams(hp)[0]) <= model_arguments(algo)
    (spec,) = sweep.make_specs([benches["CartPole-v1"]], ["plain"], [0])
    assert spec.run_id == f"{algo}/CartPole-v1/plain/seed0"
    if get_algorithm(algo).on_policy:
        lr = sweep._hyperparams(benches["CartPole-v1"])["learning_rate"]  # rl-zoo3's lin_1e-3 over 1e5 steps
        budget = benches["CartPole-v1"].timesteps
        assert lr(0.0) == pytest.approx(1e-3 * (1 - budget / 1e5))  # the end of the cut run, at the full rate


def test_unknown_config_name_lists_the_shipped_ones() -> None:
    with pytest.raises(FileNotFoundError, match=r"not a shipped config's name \(.*ppo, qrdqn"):
        sweep.config_path("sac")


def test_config_rejects_unknown_algorithm(tmp_path: Path) -> None:
    (tmp_path / "c.yml").write_text(
        "defaults: {algo: sac}\nenvironments:\n  CartPole-v1: {timesteps: 1, eval_freq: 1, threshold: 1, baseline: 0}\n"
    )
    with pytest.raises(ValueError, match="Unknown algorithm 'sac'"):
        sweep.load_config(tmp_path / "c.yml")


def test_aggregate_refuses_mixed_algorithms_and_names_the_baseline() -> None:
    t = [0, 100]
    runs, curves = _synthetic("E", "plain", {0: [0, 5]}, t, 1.0)
    ppo_runs, ppo_curves = _synthetic("E", "lambda", {0: [0, 5]}, t, 1.0)
    for r in ppo_runs:
        r["algo"] = "ppo"
    with pytest.raises(ValueError, match="mix algorithms"):
        sweep.aggregate(runs + ppo_runs, curves + ppo_curves)
    for r in runs:
        r["algo"] = "ppo"
    rows = sweep.aggregate(runs + ppo_runs, curves + ppo_curves)
    assert "plain PPO" in sweep.markdown_table(rows) and "plain DQN" not in sweep.markdown_table(rows)
    assert "plain PPO's" in sweep.overhead_table(rows)


def test_read_raw_without_algo_column_is_dqn(tmp_path: Path) -> None:
    runs, curves = _synthetic("E", "plain", {0: [0, 5]}, [0, 100], 1.0)
    sweep.write_raw(runs, curves, tmp_path)
    header = (tmp_path / "runs.csv").read_text().splitlines()[0].split(",")
    (tmp_path / "runs.csv").write_text(
        "\n".join(",".join(c for i, c in enumerate(line.split(",")) if header[i] != "algo")
                  for line in (tmp_path / "runs.csv").read_text().splitlines()) + "\n"
    )  # fmt: skip
    back, _ = sweep.read_raw(tmp_path)
    assert "algo" not in (tmp_path / "runs.csv").read_text() and back[0]["algo"] == "dqn"


def test_config_rejects_incomplete_entry(tmp_path: Path) -> None:
    (tmp_path / "c.yml").write_text("environments:\n  CartPole-v1:\n    timesteps: 100\n")
    with pytest.raises(ValueError, match="threshold"):
        sweep.load_config(tmp_path / "c.yml")


def test_specs_order_and_ids() -> None:
    a = sweep.EnvBenchmark("A", 10, 5, 1.0, 0.0)
    b = sweep.EnvBenchmark("x/B", 10, 5, 1.0, 0.0)
    seed_major = sweep.make_specs([a, b], ["plain", "lambda"], [0, 1])
    assert [(s.bench.env_id, s.seed) for s in seed_major[:4]] == [("A", 0), ("A", 0), ("x/B", 0), ("x/B", 0)]
    env_major = sweep.make_specs([a, b], ["plain", "lambda"], [0, 1], order="env")
    assert [(s.bench.env_id, s.seed) for s in env_major[:4]] == [("A", 0), ("A", 0), ("A", 1), ("A", 1)]
    assert seed_major[2].run_id == "x_B/plain/seed0"


# -- evaluation time: one owner ---------------------------------------------------------------------
class _SleepyEnv:
    """Factory of a 1-D env whose training steps sleep ``step_sleep`` and evaluation steps ``eval_sleep``.

    The first env built is the training env (as in agents.train); every later one is an evaluation env.
    """

    def __init__(self, step_sleep: float, eval_sleep: float) -> None:
        self.step_sleep, self.eval_sleep, self.calls = step_sleep, eval_sleep, 0

    def __call__(self):
        import time

        import gymnasium as gym

        self.calls += 1
        evaluation = self.calls > 1
        step_sleep, eval_sleep = self.step_sleep, self.eval_sleep

        class Env(gym.Env):
            observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
            action_space = gym.spaces.Discrete(2)

            def reset(self, *, seed=None, options=None):
                super().reset(seed=seed)
                self.t = 0
                return np.zeros(2, np.float32), {}

            def step(self, action):
                self.t += 1
                time.sleep(eval_sleep if evaluation else step_sleep)
                return np.zeros(2, np.float32), 0.0, self.t >= (1 if evaluation else 10), False, {}

        return Env()


def test_eval_time_is_excluded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 200 training steps of >= 2 ms (>= 0.4 s) and 3 evaluations (steps 0, 100, 200) of one episode
    # of one step that sleeps 0.3 s (>= 0.9 s); subtracting the evaluations twice would leave ~0
    monkeypatch.setattr(sweep, "_env_factory", lambda env_id: _SleepyEnv(0.002, 0.3))
    hp = {"policy": "MlpPolicy", "learning_starts": 10_000, "buffer_size": 1000, "policy_kwargs": {"net_arch": [8]}}
    bench = sweep.EnvBenchmark("Sleepy-v0", 200, 100, 1.0, 0.0, n_eval_episodes=1, hyperparams=hp)
    (spec,) = sweep.make_specs([bench], ["plain"], [0])
    summary = sweep.run_one(spec, tmp_path)
    assert 0.9 <= summary["eval_seconds"] < 0.9 + 0.5
    assert 0.4 <= summary["train_seconds"] < 0.4 + 0.6
    assert summary["train_seconds"] + summary["eval_seconds"] <= summary["total_seconds"]
    with open(spec.out_dir(tmp_path) / "curve.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["timesteps"]) for r in rows] == [0, 100, 200]
    train = [float(r["train_seconds"]) for r in rows]
    wall = [float(r["wall_seconds"]) for r in rows]
    assert train == sorted(train) and train[-1] == pytest.approx(summary["train_seconds"], abs=0.05)
    assert wall[-1] - train[-1] >= 0.9  # every evaluation so far is out of train_seconds, each once


# -- resuming -----------------------------------------------------------------------------------
def _tiny_bench() -> sweep.EnvBenchmark:
    return sweep.EnvBenchmark(
        "CartPole-v1",
        timesteps=300,
        eval_freq=150,
        threshold=475,
        baseline=22,
        n_eval_episodes=2,
        overrides={"learning_starts": 100, "train_freq": 50, "gradient_steps": 5, "buffer_size": 1000},
    )


def test_resume_skips_finished_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    specs = sweep.make_specs([_tiny_bench()], ["plain", "equitune"], [0, 1])
    done = specs[1]
    done.out_dir(tmp_path).mkdir(parents=True)
    (done.out_dir(tmp_path) / "summary.json").write_text(json.dumps({"config": sweep.run_config(done)}))
    (specs[2].out_dir(tmp_path)).mkdir(parents=True)  # started but unfinished (no summary): must rerun
    todo = sweep.pending(specs, tmp_path)
    assert done not in todo and len(todo) == 3

    ran: list[str] = []
    monkeypatch.setattr(
        sweep, "_safe_run", lambda spec, out, threads=1: ran.append(spec.run_id) or {"run_id": spec.run_id}
    )
    sweep.run_local(todo, tmp_path, workers=1, progress=False)
    assert ran == [s.run_id for s in specs if s is not done]


def test_resume_through_cli_skips_finished_runs(
    tiny_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    summaries = sorted(tiny_sweep.glob("**/summary.json"))
    stamps = [f.stat().st_mtime_ns for f in summaries]
    b = _tiny_bench()
    config = tmp_path / "bench.yml"
    entry = {
        k: getattr(b, k) for k in ("timesteps", "eval_freq", "threshold", "baseline", "n_eval_episodes", "overrides")
    }
    config.write_text(yaml.safe_dump({"environments": {"CartPole-v1": entry}}))
    args = ["run", "--envs", "CartPole-v1", "--methods", "plain", "equitune", "--seeds", "1", "--config", str(config),
            "--workers", "1", "--out", str(tiny_sweep), "--no-progress"]  # fmt: skip
    assert equirl_main(["bench", *args]) == 0
    assert "2 runs, 2 already finished, 0 to run" in capsys.readouterr().out
    assert [f.stat().st_mtime_ns for f in summaries] == stamps
    # the same runs asked for with another budget and evaluation: refused, naming the file; nothing touched
    other = ["run", "--envs", "CartPole-v1", "--methods", "plain", "--seeds", "1", "--timesteps", "300",
             "--workers", "1", "--out", str(tiny_sweep), "--no-progress"]  # fmt: skip
    assert equirl_main(["bench", *other]) == 2
    err = capsys.readouterr().err
    assert "plain/seed0/summary.json was made with other settings" in err and "bench" in err
    assert [f.stat().st_mtime_ns for f in summaries] == stamps


def test_damaged_summary_is_named_and_rerun(tmp_path: Path) -> None:
    spec = sweep.make_specs([_tiny_bench()], ["plain"], [0])[0]
    spec.out_dir(tmp_path).mkdir(parents=True)
    summary = spec.out_dir(tmp_path) / "summary.json"
    summary.write_text('{"env_id": "CartPole-v1", "met')
    with pytest.warns(UserWarning, match=f"{summary} is damaged"):
        assert sweep.pending([spec], tmp_path) == [spec]
    assert not summary.exists() and summary.with_name("summary.json.damaged").exists()


# -- end to end ---------------------------------------------------------------------------------
def _check_sweep_output(out: Path, n_runs: int) -> str:
    runs, curves = sweep.collect(out)
    assert len(runs) == n_runs
    for r in runs:
        assert r["timesteps"] == 300 and r["steps_per_second"] > 0 and r["train_seconds"] > 0
        assert r["eval_seconds"] > 0 and r["total_seconds"] >= r["train_seconds"]
    for run_dir in out.glob("CartPole-v1/*/seed*"):
        with open(run_dir / "curve.csv") as f:
            rows = list(csv.DictReader(f))
        steps = [float(x["timesteps"]) for x in rows]  # the start, every eval_freq steps after it, the end
        assert len(steps) == 3 and steps[0] == 0 and steps[-1] == 300
        assert all(float(x["train_seconds"]) <= float(x["wall_seconds"]) for x in rows)
        assert json.loads((run_dir / "summary.json").read_text())["method"] == run_dir.parent.name
    sweep.write_raw(runs, curves, out)
    table = benchmark.aggregate_dir(out, print_table=False)
    assert table.splitlines()[0].startswith("| environment | method |")
    assert (out / "summary.csv").exists() and (out / "benchmark_cartpole_v1.png").stat().st_size > 1000
    assert (out / "profile_cartpole_v1.png").stat().st_size > 1000  # the performance profile
    return table


def _table_shape(table: str) -> list[tuple[str, ...]]:
    return [tuple(c.strip() for c in line.split("|")[1:3]) for line in table.splitlines() if line.startswith("|")]


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of 300 steps (plain and equitune on CartPole) on a local pool of two processes."""
    out = tmp_path_factory.mktemp("tiny_sweep")
    specs = sweep.make_specs([_tiny_bench()], ["plain", "equitune"], [0])
    results = sweep.run_local(specs, out, workers=2, progress=False)
    assert not [r for r in results if "error" in r], results
    return out


def test_tiny_sweep_local_backend(tiny_sweep: Path) -> None:
    table = _check_sweep_output(tiny_sweep, 2)
    assert _table_shape(table)[2:] == [("CartPole-v1", "plain"), ("CartPole-v1", "equitune")]
    assert "| 1.00 |" in table.splitlines()[2]  # plain's wall-clock ratio against itself


def test_failed_run_is_reported_not_raised(tmp_path: Path) -> None:
    bad = sweep.EnvBenchmark("CartPole-v1", 100, 50, 475, 22, overrides={"not_a_dqn_argument": 1})
    (result,) = sweep.run_local(sweep.make_specs([bad], ["plain"], [0]), tmp_path, workers=1, progress=False)
    assert "not_a_dqn_argument" in result["error"]
    assert sweep.pending(sweep.make_specs([bad], ["plain"], [0]), tmp_path)  # not marked finished


@pytest.mark.integration
def test_tiny_sweep_ray_backend(tmp_path: Path, tiny_sweep: Path) -> None:
    """The same two runs as Ray tasks on a local Ray instance give the same table as the local pool.

    Ray is in the dev extra and ``make test`` (CI) runs the integration tests; starting Ray takes 10-35 s.
    """
    import ray

    specs = sweep.make_specs([_tiny_bench()], ["plain", "equitune"], [0])
    results = sweep.run_ray(specs, tmp_path / "ray", num_cpus=2, progress=False)
    assert not ray.is_initialized()
    assert not [r for r in results if "error" in r], results
    assert _table_shape(_check_sweep_output(tmp_path / "ray", 2)) == _table_shape(_check_sweep_output(tiny_sweep, 2))


def test_seed_selection(capsys: pytest.CaptureFixture) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    benchmark.add_parser(parser.add_subparsers())

    def seeds(*flags: str) -> list[int]:
        args = parser.parse_args(["bench", "run", "--envs", "CartPole-v1", "--methods", "plain", *flags])
        return [s.seed for s in benchmark._select(args)]

    assert seeds("--seeds", "3") == [0, 1, 2]
    assert seeds("--seeds", "4", "7") == [4, 7]
    assert seeds("--seed-list", "4") == [4]  # one seed alone
    assert seeds("--seed-list", "5", "2", "5") == [5, 2]
    assert seeds() == list(range(sweep.default_seeds()))
    with pytest.raises(SystemExit):  # not both
        seeds("--seeds", "3", "--seed-list", "4")
    assert "not allowed with argument" in capsys.readouterr().err
