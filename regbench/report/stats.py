"""Small pure statistics over per-seed results."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats


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
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return float(x.mean()), float(half), n


def paired_difference(treated: dict[int, float], baseline: dict[int, float],
                      confidence: float = 0.95) -> tuple[float, float, int]:
    """treated, baseline: seed -> value -> mean_ci of treated[s] - baseline[s] over the shared seeds.

    A seed counts only where both values are finite; n (the third element) is how many did.
    """
    seeds = sorted(set(treated) & set(baseline))
    return mean_ci([treated[s] - baseline[s] for s in seeds], confidence)
