"""Aggregate statistics of RL runs as the field reports them (Agarwal et al. 2021, "rliable"), in numpy.

Scores are per-run numbers (one per seed: a final return, a mean return over training). With
several tasks they form a matrix ``[n_runs, n_tasks]``; a 1-D array is one task.

* :func:`iqm` — interquartile mean: the mean of the middle 50% of the runs (the lowest and highest
  ``floor(n/4)`` dropped, as ``scipy.stats.trim_mean(x, 0.25)`` and rliable do).
* :func:`bootstrap_ci` — percentile confidence interval of any statistic from a **stratified**
  bootstrap: runs are resampled with replacement within each task (rliable's ``StratifiedBootstrap``).
* :func:`probability_of_improvement` — ``P(X > Y)`` of a random run of X over a random run of Y
  (ties count half; the Mann-Whitney U statistic over ``n·m``), averaged over tasks, and
  :func:`probability_of_improvement_ci` its interval, X and Y resampled independently per task.
* :func:`performance_profile` — the fraction of runs whose score exceeds each threshold ``τ``.
* :func:`sample_std` — the sample standard deviation (``ddof=1``), the one every "±" in equirl's
  tables means.

Everything here is deterministic for a given ``seed``; no torch, no scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "Interval",
    "iqm",
    "mean",
    "median",
    "sample_std",
    "bootstrap_ci",
    "probability_of_improvement",
    "probability_of_improvement_ci",
    "performance_profile",
    "DEFAULT_REPS",
]

Scores = Sequence[float] | Sequence[Sequence[float]] | np.ndarray
"""Per-run scores: 1-D ``[n_runs]`` (one task) or 2-D ``[n_runs, n_tasks]``."""
Interval = tuple[float, float]
"""A confidence interval ``(low, high)``."""
DEFAULT_REPS = 10_000
"""Bootstrap resamples (rliable uses 50,000 for its figures; 10,000 keeps the second decimal stable)."""


def _matrix(scores: Scores, name: str = "scores") -> np.ndarray:
    """``scores`` as a float matrix ``[n_runs, n_tasks]``; a clear error for empty or >2-D input."""
    a = np.asarray(scores, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(
            f"{name}: expected a non-empty 1-D array [n_runs] or 2-D array [n_runs, n_tasks], got shape {a.shape}."
        )
    if np.isnan(a).any():
        raise ValueError(f"{name}: contains NaN; drop or fill missing runs first.")
    return a


def iqm(scores: Scores) -> float:
    """Interquartile mean over all runs and tasks: sort, drop ``floor(N/4)`` from each end, average the rest.

    ``N`` is the number of scores in total (runs × tasks), as in rliable. For N < 4 nothing is
    dropped (the IQM is the mean).
    """
    v = np.sort(_matrix(scores).ravel())
    k = int(0.25 * len(v))
    return float(v[k : len(v) - k].mean())


def mean(scores: Scores) -> float:
    """The mean over all runs and tasks."""
    return float(_matrix(scores).mean())


def median(scores: Scores) -> float:
    """The median over all runs and tasks (for paired timing ratios, which a few disturbed rounds skew)."""
    return float(np.median(_matrix(scores)))


def sample_std(values: Sequence[float] | np.ndarray) -> float:
    """Sample standard deviation (``ddof=1``) of a 1-D sequence; ``nan`` for fewer than two values."""
    v = np.asarray(values, dtype=float).ravel()
    if len(v) < 2:
        return math.nan
    return float(np.std(v, ddof=1))


def _resample_indices(rng: np.random.Generator, n_runs: int, n_tasks: int, reps: int) -> np.ndarray:
    """Row indices ``[reps, n_runs, n_tasks]``: each task's runs drawn with replacement, independently."""
    return rng.integers(0, n_runs, size=(reps, n_runs, n_tasks))


def _check_ci_args(reps: int, confidence: float) -> None:
    if not isinstance(reps, int) or reps < 1:
        raise ValueError(f"reps must be a positive int, got {reps!r}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), for example 0.95; got {confidence!r}.")


def _percentile_interval(stats: np.ndarray, confidence: float) -> Interval:
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(stats, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def bootstrap_ci(
    scores: Scores,
    statistic: Callable[[np.ndarray], float] = iqm,
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile ``confidence`` interval of ``statistic`` from a stratified bootstrap over runs.

    :param scores: ``[n_runs]`` or ``[n_runs, n_tasks]``; each task's column is resampled on its own.
    :param statistic: ``[n_runs, n_tasks] -> float`` (default :func:`iqm`; :func:`mean` and :func:`median` work too).
    :param reps: bootstrap resamples.
    :param confidence: e.g. 0.95 for the 2.5th and 97.5th percentiles of the resampled statistic.
    :param seed: seed of the resampling (the interval is reproducible).
    Returns ``(low, high)``.
    """
    _check_ci_args(reps, confidence)
    a = _matrix(scores)
    n, t = a.shape
    idx = _resample_indices(np.random.default_rng(seed), n, t, reps)
    samples = np.take_along_axis(a[None], idx, axis=1)  # [reps, n, t]
    if statistic is iqm or statistic is mean or statistic is median:  # vectorised fast paths
        flat = samples.reshape(reps, -1)
        if statistic is mean:
            stats = flat.mean(1)
        elif statistic is median:
            stats = np.median(flat, axis=1)
        else:
            k = int(0.25 * flat.shape[1])
            stats = np.sort(flat, axis=1)[:, k : flat.shape[1] - k].mean(1)
    else:
        stats = np.array([statistic(s) for s in samples])
    return _percentile_interval(stats, confidence)


def _prob_greater(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``P(X > Y) + P(X = Y)/2`` per task, for ``x [..., n, t]`` and ``y [..., m, t]`` -> ``[..., t]``."""
    diff = x[..., :, None, :] - y[..., None, :, :]  # [..., n, m, t]
    return ((diff > 0).mean((-3, -2)) + 0.5 * (diff == 0).mean((-3, -2))).astype(float)


def probability_of_improvement(x: Scores, y: Scores) -> float:
    """``P(X > Y)``: the probability that a random run of X scores higher than a random run of Y.

    Per task it is the Mann-Whitney U statistic over ``n·m`` (ties count half); over several tasks
    the average of the tasks' probabilities. ``x [n_runs_x, n_tasks]``, ``y [n_runs_y, n_tasks]``
    (or 1-D for one task); the task counts must match.
    """
    a, b = _matrix(x, "x"), _matrix(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x has {a.shape[1]} tasks and y has {b.shape[1]}; they must match.")
    return float(_prob_greater(a, b).mean())


def probability_of_improvement_ci(
    x: Scores, y: Scores, reps: int = DEFAULT_REPS, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Percentile interval of :func:`probability_of_improvement`, X and Y resampled independently per task."""
    _check_ci_args(reps, confidence)
    a, b = _matrix(x, "x"), _matrix(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x has {a.shape[1]} tasks and y has {b.shape[1]}; they must match.")
    rng = np.random.default_rng(seed)
    (n, t), (m, _) = a.shape, b.shape
    xs = np.take_along_axis(a[None], _resample_indices(rng, n, t, reps), axis=1)
    ys = np.take_along_axis(b[None], _resample_indices(rng, m, t, reps), axis=1)
    stats = _prob_greater(xs, ys).mean(-1)
    return _percentile_interval(stats, confidence)


def performance_profile(scores: Scores, taus: Sequence[float] | np.ndarray) -> np.ndarray:
    """The fraction of scores (runs × tasks) strictly above each threshold: ``[len(taus)]`` in ``[0, 1]``.

    This is rliable's run-score distribution; plotted against ``τ`` it is the performance profile.
    """
    v = _matrix(scores).ravel()
    t = np.asarray(taus, dtype=float).ravel()
    return (v[None, :] > t[:, None]).mean(1)
