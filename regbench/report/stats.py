"""Small pure statistics over per-seed results."""
from __future__ import annotations

import math

import numpy as np
# Student's t from scipy.special (stdtrit: quantile, stdtr: CDF), the functions scipy.stats.t calls:
# the same numbers, without scipy.stats's import (0.65 s against 0.22 s, paid by every leaderboard).
from scipy.special import ndtri, stdtr, stdtrit


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


MIN_SEEDS_FOR_INTERVAL = 3
# With 2 seeds, a 95% t interval has one degree of freedom (t = 12.71): its half-width is 6.35 times the
# distance between the two seeds, wider than most metrics' whole range (digits: 53.6 ± 408.8 %).
FEW_SEEDS_FOR_INTERVAL = (f"no interval with fewer than {MIN_SEEDS_FOR_INTERVAL} seeds: over 2 seeds a 95% t "
                          "interval is 6.4 times their difference wide on each side")


def interval_shown(n: int) -> bool:
    """Whether an interval over n seeds (a t interval of a mean, or of the paired Δ) is shown at all: the
    table prints the mean without ± and the pictures draw the seeds as dots below MIN_SEEDS_FOR_INTERVAL."""
    return n >= MIN_SEEDS_FOR_INTERVAL


def shown_half_width(half_width: float, n: int) -> float:
    """`half_width` where `interval_shown(n)`, else NaN (what renderers print as 'no interval')."""
    return float(half_width) if interval_shown(n) else math.nan


def paired_difference(treated: dict[int, float], baseline: dict[int, float],
                      confidence: float = 0.95) -> tuple[float, float, int]:
    """treated, baseline: seed -> value -> mean_ci of treated[s] - baseline[s] over the shared seeds.

    A seed counts only where both values are finite; n (the third element) is how many did.
    """
    seeds = sorted(set(treated) & set(baseline))
    return mean_ci([treated[s] - baseline[s] for s in seeds], confidence)


def shared(treated: dict[int, float], baseline: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """((n,), (n,)) the two sides' values on the seeds both have, where both are finite, seed order."""
    seeds = sorted(set(treated) & set(baseline))
    x = np.array([treated[s] for s in seeds], dtype=float)
    y = np.array([baseline[s] for s in seeds], dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


TIE_RTOL = 1e-6   # relative: ~8 float32 roundings; results are computed in float32


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """successes: a count out of n trials (may be a half-integer: a tie counts one half) -> (low, high),
    the Wilson score interval for the success probability.

    Unlike a bootstrap over the trials, it is wide when n is small: 3 of 3 gives [0.439, 1] at 95%, where
    every bootstrap resample of three wins is 1. Its ends are exactly 0 and 1 at 0 and n successes.
    (NaN, NaN) for n = 0.
    """
    if n == 0:
        return math.nan, math.nan
    z = float(ndtri(0.5 + confidence / 2))
    share = successes / n
    shrink = 1 + z * z / n
    center = (share + z * z / (2 * n)) / shrink
    half = z / shrink * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    low = 0.0 if successes <= 0 else max(0.0, center - half)
    high = 1.0 if successes >= n else min(1.0, center + half)
    return low, high


def probability_of_improvement(treated: dict[int, float], baseline: dict[int, float],
                               higher_is_better: bool = True,
                               confidence: float = 0.95) -> tuple[float, float, float, float, int]:
    """treated, baseline: seed -> value -> (P, low, high, wins, n): P(X > Y) paired on the n shared seeds.

    wins = number of shared seeds s on which x_s beats y_s, a tie (equal to TIE_RTOL) counting one half;
    P = wins / n (rliable's probability of improvement, taken over same-seed pairs instead of all pairs).
    (low, high): the Wilson score interval of `wilson_interval` for wins out of n, so that 3 wins of 3
    seeds read 1.00 [0.44, 1.00], not the certainty a bootstrap over three seeds would claim.
    All NaN (wins 0) where no seed is shared.
    """
    x, y = shared(treated, baseline)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0.0, 0
    if not higher_is_better:
        x, y = -x, -y
    # float32 metrics that differ only by rounding (a technique too weak to move them) tie, not win
    tied = np.abs(x - y) <= TIE_RTOL * np.maximum(np.abs(x), np.abs(y))
    wins = float(np.where(tied, 0.5, np.where(x > y, 1.0, 0.0)).sum())
    low, high = wilson_interval(wins, n, confidence)
    return wins / n, low, high, wins, n


def holm(p_values) -> np.ndarray:
    """p_values: (m,) raw p-values of one family of tests -> (m,) Holm–Bonferroni adjusted p-values, in
    the same order.

    Sorted ascending, the i-th smallest of the m finite p-values (i = 1..m) becomes
    max over j <= i of min(1, (m − j + 1)·p_(j)): adjusted p-values below α reject the same hypotheses
    as Holm's step-down procedure at family-wise error α, never fewer than Bonferroni. Equal p-values get
    equal adjusted values. NaN entries are no tests: they are left out of the family (m counts the
    others) and stay NaN.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    order = finite[np.argsort(p[finite], kind="stable")]       # (m,) indices, smallest p first
    scaled = (m - np.arange(m)) * p[order]                      # (m,) (m − j + 1)·p_(j)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def score_counting_failures(values, failed, worst: float) -> float:
    """values: (n,) one number per seed, failed: (n,) bool (the seed diverged) -> the mean over all the
    seeds with each failed seed at `worst`, the worst value the metric can take (accuracy 0, loss +inf).

    A leaderboard's rank score. A diverged seed counts against its row as the worst result possible, as
    AlgoPerf scores a failed run as infinitely bad, so a technique cannot rank first on the seeds that
    survived: with accuracy, 2 seeds at 0.80 and 1 diverged score 0.533; with a loss, any diverged seed
    makes the score +inf. On a row without failures it is the plain mean, so clean rows rank in the order
    of the means the table shows. Non-finite values of seeds that did not fail are no result and are left
    out; NaN when nothing is left.
    """
    x = np.asarray(values, dtype=float)
    failed = np.asarray(failed, dtype=bool)
    x = np.where(failed, worst, x)                               # (n,)
    x = x[failed | np.isfinite(x)]
    return float(x.mean()) if len(x) else math.nan


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
