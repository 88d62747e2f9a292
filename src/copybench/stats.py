"""Statistics, written once: every harness, comparison and report computes them here.

Like ``torch.utils.benchmark``'s ``Measurement`` and pytest-benchmark's ``Stats``: robust
centres (median), spreads (IQR), distribution-free confidence intervals and significance
tests.  numpy and scipy do the arithmetic; this module fixes the choices (which quantile
method, which test, which seed) so that two readers of the same samples agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def median(samples: Sequence[float]) -> float:
    return float(np.median(np.asarray(samples, dtype=float)))


def iqr(samples: Sequence[float]) -> float:
    """Interquartile range, numpy's default (linear) quantiles; 0 for fewer than 2 samples."""
    a = np.asarray(samples, dtype=float)
    if a.size < 2:
        return 0.0
    q1, q3 = np.quantile(a, [0.25, 0.75])
    return float(q3 - q1)


def relative_iqr(samples: Sequence[float]) -> float:
    """IQR / median: the instability measure used to flag noisy measurements."""
    m = median(samples)
    return iqr(samples) / m if m else float("inf")


def summarize(samples: Sequence[float]) -> dict[str, float]:
    return {"median": median(samples), "iqr": iqr(samples), "n": len(samples)}


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    The number of samples below the true median is Binomial(n, 1/2); the interval is the
    pair of order statistics that covers at least ``confidence`` of that distribution.
    Returns (min, max) of the samples when n is too small to reach ``confidence``.
    """
    from scipy.stats import binom

    a = np.sort(np.asarray(samples, dtype=float))
    n = a.size
    if n == 0:
        raise ValueError("median_ci of no samples")
    alpha = 1 - confidence
    lo = int(binom.ppf(alpha / 2, n, 0.5))
    hi = int(binom.isf(alpha / 2, n, 0.5))
    lo = max(lo - 1, 0)
    hi = min(hi, n - 1)
    return float(a[lo]), float(a[hi])


def bootstrap_ci(
    samples: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.median,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic`` (seeded: the same samples give the same CI)."""
    a = np.asarray(samples, dtype=float)
    if a.size == 0:
        raise ValueError("bootstrap_ci of no samples")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_resamples, a.size))
    stats = np.apply_along_axis(statistic, 1, a[idx])
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(lo), float(hi)


def ratio_ci(
    base: Sequence[float],
    head: Sequence[float],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """median(head) / median(base) with a bootstrap CI from independent resampling.

    Returns (ratio, ci_low, ci_high).
    """
    b = np.asarray(base, dtype=float)
    h = np.asarray(head, dtype=float)
    if b.size == 0 or h.size == 0:
        raise ValueError("ratio_ci needs samples on both sides")
    rng = np.random.default_rng(seed)
    mb = np.median(b[rng.integers(0, b.size, size=(n_resamples, b.size))], axis=1)
    mh = np.median(h[rng.integers(0, h.size, size=(n_resamples, h.size))], axis=1)
    ratios = mh / mb
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(ratios, [alpha, 1 - alpha])
    return float(np.median(h) / np.median(b)), float(lo), float(hi)


def mann_whitney_p(base: Sequence[float], head: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value: do the two sample sets come from one distribution?"""
    from scipy.stats import mannwhitneyu

    b = np.asarray(base, dtype=float)
    h = np.asarray(head, dtype=float)
    if b.size == 0 or h.size == 0:
        raise ValueError("mann_whitney_p needs samples on both sides")
    if np.all(b == b[0]) and np.all(h == h[0]) and b[0] == h[0]:
        return 1.0
    return float(mannwhitneyu(b, h, alternative="two-sided").pvalue)


# A measurement whose IQR exceeds this fraction of its median is flagged "unstable" in the
# results table and the report: its median is not a number to gate a build on.
UNSTABLE_RELATIVE_IQR = 0.10


def is_unstable(samples: Sequence[float], threshold: float = UNSTABLE_RELATIVE_IQR) -> bool:
    return len(samples) >= 2 and relative_iqr(samples) > threshold
