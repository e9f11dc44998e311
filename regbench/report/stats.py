"""Small pure statistics over per-seed results."""
from __future__ import annotations

import math

import numpy as np
# Student's t from scipy.special (stdtrit: quantile, stdtr: CDF), the functions scipy.stats.t calls:
# the same numbers, without scipy.stats's import (0.65 s against 0.22 s, paid by every leaderboard).
from scipy.special import stdtr, stdtrit


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, int]:
    """values: (n,) one number per seed -> (mean, half-width of a Student-t interval, n used).

    Non-finite entries (NaN) are dropped before anything else. half_width is NaN when n < 2 (one seed
    says nothing about the spread) and mean is NaN when n = 0.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(x[0]), math.nan, 1
    half = stdtrit(n - 1, 0.5 + confidence / 2) * x.std(ddof=1) / math.sqrt(n)
    return float(x.mean()), float(half), n


def paired_difference(treated: dict[int, float], baseline: dict[int, float],
                      confidence: float = 0.95) -> tuple[float, float, int]:
    """treated, baseline: seed -> value -> mean_ci of treated[s] - baseline[s] over the shared seeds.

    A seed counts only where both values are finite; n (the third element) is how many did.
    """
    seeds = sorted(set(treated) & set(baseline))
    return mean_ci([treated[s] - baseline[s] for s in seeds], confidence)


BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # fixed: the same results give the same interval on every rebuild


def shared(treated: dict[int, float], baseline: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """((n,), (n,)) the two sides' values on the seeds both have, where both are finite, seed order."""
    seeds = sorted(set(treated) & set(baseline))
    x = np.array([treated[s] for s in seeds], dtype=float)
    y = np.array([baseline[s] for s in seeds], dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


TIE_RTOL = 1e-6   # relative: ~8 float32 roundings; results are computed in float32


def probability_of_improvement(treated: dict[int, float], baseline: dict[int, float],
                               higher_is_better: bool = True, confidence: float = 0.95,
                               resamples: int = BOOTSTRAP_RESAMPLES,
                               seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float, int]:
    """treated, baseline: seed -> value -> (P, low, high, n): P(X > Y) paired on the shared seeds.

    P = mean over shared seeds s of [1 if x_s beats y_s, 0.5 if tied (equal to TIE_RTOL), 0 otherwise] (rliable's
    probability of improvement, taken over same-seed pairs instead of all pairs). (low, high): percentile
    bootstrap interval over `resamples` resamples of the seeds, drawn from a generator seeded with `seed`.
    NaN where no seed is shared; low = high = P for one seed.
    """
    x, y = shared(treated, baseline)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    if not higher_is_better:
        x, y = -x, -y
    # float32 metrics that differ only by rounding (a technique too weak to move them) tie, not win
    tied = np.abs(x - y) <= TIE_RTOL * np.maximum(np.abs(x), np.abs(y))
    wins = np.where(tied, 0.5, np.where(x > y, 1.0, 0.0))                       # (n,)
    rows = np.random.default_rng(seed).integers(0, n, size=(resamples, n))      # (resamples, n)
    boot = wins[rows].mean(1)                                                   # (resamples,)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(boot, [tail, 100 - tail])
    return float(wins.mean()), float(low), float(high), n


def paired_p_value(treated: dict[int, float], baseline: dict[int, float]) -> tuple[float, int]:
    """(two-sided p of a paired t-test that the mean of treated - baseline is 0, n shared seeds).

    The same t distribution as `paired_difference`'s interval: p < 0.05 exactly when that 95% interval
    leaves out 0. NaN for fewer than 2 seeds or differences that are all equal (no spread to test with).
    """
    x, y = shared(treated, baseline)
    d = x - y
    n = len(d)
    if n < 2 or np.allclose(d, d[0], rtol=1e-9, atol=1e-12):  # equal up to rounding
        return math.nan, n
    t = d.mean() / (d.std(ddof=1) / math.sqrt(n))
    return float(2 * stdtr(n - 1, -abs(t))), n


def difference_of_means(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """a: (n_a,), b: (n_b,) independent samples -> (mean(b) - mean(a), Welch half-width).

    Welch–Satterthwaite degrees of freedom; NaN half-width when either side has fewer than 2 values.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        return math.nan, math.nan
    diff = float(b.mean() - a.mean())
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        return diff, 0.0
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return diff, float(stdtrit(dof, 0.5 + confidence / 2) * math.sqrt(va + vb))
