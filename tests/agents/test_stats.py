"""The field's statistics (IQM, stratified bootstrap, probability of improvement) on known answers."""

import math

import numpy as np
import pytest
from equirl.agents import stats


def test_iqm_known_values() -> None:
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # drop 1, 2 and 7, 8: mean of 3..6
    assert stats.iqm([0, 0, 1, 100]) == pytest.approx(0.5)  # the outlier is dropped, the mean is 25.25
    assert stats.iqm([1, 2, 30]) == pytest.approx(11.0)  # N < 4: nothing dropped
    assert stats.iqm([500, 20, 500, 500, 191]) == pytest.approx((191 + 500 + 500) / 3)  # 5 runs: drop 1 each end
    assert stats.iqm([[0, 10], [1, 11], [2, 12], [3, 13]]) == stats.iqm([0, 1, 2, 3, 10, 11, 12, 13])  # all scores


@pytest.mark.parametrize("n", [4, 5, 7, 10, 13])
def test_iqm_matches_scipy_trim_mean(n: int) -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(n).normal(size=n) ** 3
    assert stats.iqm(x) == pytest.approx(scipy_stats.trim_mean(x, 0.25))


def test_sample_std_is_ddof_one() -> None:
    assert stats.sample_std([1, 2, 3, 4]) == pytest.approx(math.sqrt(5 / 3))
    assert stats.sample_std([342.4, 342.4]) == 0.0
    assert math.isnan(stats.sample_std([3.0]))


def test_bad_input_is_refused_with_its_shape() -> None:
    with pytest.raises(ValueError, match=r"shape \(0, 1\)"):
        stats.iqm([])
    with pytest.raises(ValueError, match="NaN"):
        stats.mean([1.0, float("nan")])
    with pytest.raises(ValueError, match="confidence"):
        stats.bootstrap_ci([1, 2, 3], confidence=95)
    with pytest.raises(ValueError, match="tasks"):
        stats.probability_of_improvement(np.zeros((3, 2)), np.zeros((3, 1)))


def test_bootstrap_ci_of_the_mean_covers_the_true_mean_about_95_percent() -> None:
    rng = np.random.default_rng(0)
    hits = 0
    trials = 300
    for i in range(trials):
        x = rng.normal(loc=2.0, scale=1.0, size=40)
        lo, hi = stats.bootstrap_ci(x, stats.mean, reps=1000, seed=i)
        assert lo <= x.mean() <= hi
        hits += lo <= 2.0 <= hi
    # percentile bootstrap of a mean, n = 40: about 0.93-0.94; a 68% or 99.9% interval falls outside
    assert 0.88 <= hits / trials <= 0.98


def test_bootstrap_ci_is_reproducible_and_narrows_with_more_runs() -> None:
    rng = np.random.default_rng(1)
    small, large = rng.normal(size=10), rng.normal(size=1000)
    assert stats.bootstrap_ci(small, seed=3) == stats.bootstrap_ci(small, seed=3)
    w_small = np.subtract(*stats.bootstrap_ci(small, reps=2000)[::-1])
    w_large = np.subtract(*stats.bootstrap_ci(large, reps=2000)[::-1])
    assert w_large < w_small / 3
    assert stats.bootstrap_ci([7.0] * 5) == (7.0, 7.0)  # no spread, no interval


def test_bootstrap_is_stratified_by_task() -> None:
    # every task keeps its n runs in every resample: with constant tasks the mean never moves,
    # whereas pooling the 8 scores and resampling them would give means from 0 to 10
    scores = np.array([[0.0, 10.0]] * 4)
    assert stats.bootstrap_ci(scores, stats.mean, reps=2000) == (5.0, 5.0)
    # tasks are resampled independently (not whole rows): rows of mean 0.5 still give a spread
    lo, hi = stats.bootstrap_ci(np.array([[0.0, 1.0], [1.0, 0.0]] * 3), stats.mean, reps=2000)
    assert lo < 0.5 < hi


def test_bootstrap_custom_statistic_matches_fast_path() -> None:
    x = np.random.default_rng(2).normal(size=(6, 2))
    fast = stats.bootstrap_ci(x, stats.iqm, reps=500, seed=4)
    slow = stats.bootstrap_ci(x, lambda s: stats.iqm(s), reps=500, seed=4)
    assert fast == pytest.approx(slow)


def test_probability_of_improvement_known_samples() -> None:
    # pairs (x, y): 1>0; 2>0; 2=2 (half); 3>0; 3>2 -> 4.5 of 9
    assert stats.probability_of_improvement([1, 2, 3], [0, 2, 4]) == pytest.approx(0.5)
    assert stats.probability_of_improvement([5, 6], [1, 2]) == 1.0
    assert stats.probability_of_improvement([1, 2], [5, 6]) == 0.0
    assert stats.probability_of_improvement([3, 3], [3, 3]) == 0.5
    # two tasks: the average of the tasks' probabilities (1 and 0)
    assert stats.probability_of_improvement([[5, 0], [6, 0]], [[1, 9], [2, 9]]) == 0.5


def test_probability_of_improvement_matches_mann_whitney() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 6, size=7).astype(float), rng.integers(0, 6, size=9).astype(float)  # with ties
    u = scipy_stats.mannwhitneyu(x, y).statistic
    assert stats.probability_of_improvement(x, y) == pytest.approx(u / (len(x) * len(y)))


def test_probability_of_improvement_ci() -> None:
    assert stats.probability_of_improvement_ci([5, 6, 7], [1, 2, 3], reps=500) == (1.0, 1.0)
    lo, hi = stats.probability_of_improvement_ci([1, 2, 3, 4], [1, 2, 3, 4], reps=2000)
    assert lo < 0.5 < hi and 0.0 <= lo and hi <= 1.0


def test_performance_profile_counts_scores_strictly_above() -> None:
    np.testing.assert_allclose(stats.performance_profile([1, 2, 3, 4], [0, 2, 4]), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(stats.performance_profile([[1, 10], [2, 20]], [5]), [0.5])
