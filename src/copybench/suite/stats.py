"""Statistics, written once: every harness, comparison and report computes them here.

Like ``torch.utils.benchmark``'s ``Measurement`` and pytest-benchmark's ``Stats``: robust
centres (median), spreads (IQR), distribution-free confidence intervals and significance
tests.  numpy and scipy do the arithmetic; this module fixes the choices (which quantile
method, which test, which seed) so that two readers of the same samples agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import comb
from typing import Any

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


def tukey_fences(values: Sequence[float], k: float = 3.0) -> tuple[float, float]:
    """Tukey's fences: the quartiles, widened by ``k`` IQRs each way (3: his "far out"
    values lie beyond them); NaNs ignored, (nan, nan) for none left."""
    a = np.asarray(values, dtype=float)
    a = a[~np.isnan(a)]
    if not a.size:
        return float("nan"), float("nan")
    q1, q3 = np.quantile(a, [0.25, 0.75])
    return float(q1 - k * (q3 - q1)), float(q3 + k * (q3 - q1))


def relative_iqr(samples: Sequence[float]) -> float:
    """IQR / median: the instability measure used to flag noisy measurements."""
    m = median(samples)
    return iqr(samples) / m if m else float("inf")


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, IQR and count of one set of samples."""
    return {"median": median(samples), "iqr": iqr(samples), "n": len(samples)}


def summarize_modes(samples: Sequence[float]) -> dict[str, Any]:
    """:func:`summarize`, plus the fast/slow split (:func:`split_modes`) and the
    instability flag: for single-call timings that flip between two modes, such as a large
    allocation served from the heap one call and by ``mmap`` the next."""
    modes = split_modes(samples)
    return {
        **summarize(samples),
        "bimodal": modes.bimodal,
        "slow_fraction": modes.slow_fraction,
        "fast_median": modes.fast_median,
        "slow_median": modes.slow_median,
        "unstable": is_unstable(samples),
    }


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    The number of samples below the true median is Binomial(n, 1/2); the interval is the
    pair of order statistics that covers at least ``confidence`` of that distribution.
    Returns (min, max) of the samples when n is too small to reach ``confidence``.
    """
    a = np.sort(np.asarray(samples, dtype=float))
    n = a.size
    if n == 0:
        raise ValueError("median_ci of no samples")
    lo, hi = _binomial_half_quantiles(n, (1 - confidence) / 2)
    lo = max(lo - 1, 0)
    hi = min(hi, n - 1)
    return float(a[lo]), float(a[hi])


# Up to this many samples the order statistics of median_ci are found exactly, in integers.
EXACT_BINOMIAL_N = 20_000


def _binomial_half_quantiles(n: int, q: float) -> tuple[int, int]:
    """``scipy.stats.binom(n, 0.5)``'s ``ppf(q)`` and ``isf(q)``, in exact integer
    arithmetic: the CDF is a sum of binomial coefficients over 2**n.  It equals scipy's
    for every n up to 2,000 at confidences 0.5 to 0.999 (checked when it was written),
    and spares each worker process the 2-5 s import of ``scipy.stats``."""
    if n > EXACT_BINOMIAL_N:
        from scipy.stats import binom

        return int(binom.ppf(q, n, 0.5)), int(binom.isf(q, n, 0.5))
    num, den = float(q).as_integer_ratio()
    total = 1 << n
    lo = hi = None
    coefficient, cumulative = 1, 0
    for k in range(n + 1):
        cumulative += coefficient  # sum of C(n, i) for i <= k
        if lo is None and cumulative * den >= num * total:
            lo = k
        if hi is None and (total - cumulative) * den <= num * total:
            hi = k
        if lo is not None and hi is not None:
            break
        coefficient = coefficient * (n - k) // (k + 1)
    return lo, hi


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


def _bootstrap_medians(
    base: Sequence[float], head: Sequence[float], n_resamples: int, seed: int, who: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both sample sets as arrays and ``n_resamples`` bootstrap medians of each, resampled
    independently (the two sides are separate runs, not pairs)."""
    b = np.asarray(base, dtype=float)
    h = np.asarray(head, dtype=float)
    if b.size == 0 or h.size == 0:
        raise ValueError(f"{who} needs samples on both sides")
    rng = np.random.default_rng(seed)
    mb = np.median(b[rng.integers(0, b.size, size=(n_resamples, b.size))], axis=1)
    mh = np.median(h[rng.integers(0, h.size, size=(n_resamples, h.size))], axis=1)
    return b, h, mb, mh


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
    b, h, mb, mh = _bootstrap_medians(base, head, n_resamples, seed, "ratio_ci")
    # A zero median (a tracked count such as "bytes grown" or "slow fraction") has no ratio:
    # inf or nan is the honest answer, without numpy's warnings on the way.
    with np.errstate(divide="ignore", invalid="ignore"):
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


# --- regression verdicts (``copybench compare``) --------------------------------------------

VERDICTS: tuple[str, ...] = (
    "regressed",
    "drifted",
    "improved",
    "not significant",
    "too few processes",
    "unchanged",
)


@dataclass(frozen=True)
class Change:
    """How ``head`` compares with ``base`` (larger is worse: time, bytes).

    ``ratio`` is median(head) / median(base) with its bootstrap CI; ``p`` the Mann-Whitney
    p-value (``nan`` when either side has fewer than 2 samples), before any correction for
    the number of comparisons.
    """

    base_median: float
    head_median: float
    ratio: float
    ci_low: float
    ci_high: float
    p: float
    n_base: int
    n_head: int


def change(
    base: Sequence[float], head: Sequence[float], confidence: float = 0.95, seed: int = 0
) -> Change:
    """Ratio of medians with a bootstrap CI, and the Mann-Whitney p-value, in one record."""
    b = np.asarray(base, dtype=float)
    h = np.asarray(head, dtype=float)
    if b.size == 0 or h.size == 0:
        raise ValueError("change needs samples on both sides")
    ratio, lo, hi = ratio_ci(b, h, confidence=confidence, seed=seed)
    p = mann_whitney_p(b, h) if b.size >= 2 and h.size >= 2 else float("nan")
    return Change(median(b), median(h), ratio, lo, hi, p, int(b.size), int(h.size))


def holm_adjust(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error control; ``nan`` passes through).

    A nightly compares hundreds of cases: at a 5% level, one in twenty identical cases would
    otherwise come out "significant" by chance alone.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    if valid.size == 0:
        return out.tolist()
    order = valid[np.argsort(p[valid], kind="stable")]
    m = order.size
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def verdict(
    c: Change,
    threshold: float = 0.05,
    alpha: float = 0.05,
    p: float | None = None,
    deterministic: bool = False,
) -> str:
    """One of VERDICTS.

    "unchanged": the ratio is within ``threshold`` (either way), significant or not.
    "regressed" / "improved": the change is significant - p (``p`` if given, e.g.
    Holm-adjusted, else ``c.p``) below ``alpha`` - *and* confidently beyond the threshold:
    the whole CI of the ratio lies above ``1 + threshold`` (or below its reciprocal).
    "not significant": the point estimate is beyond the threshold but the samples cannot
    tell it from noise, or from a change within the threshold (or there are too few).

    A ``deterministic`` measure (an instruction count, identical from run to run) has no
    noise to test against: one value per side decides, by the threshold alone.
    """
    if 1 / (1 + threshold) <= c.ratio <= 1 + threshold:
        return "unchanged"
    if deterministic:
        return "regressed" if c.ratio > 1 else "improved"
    p = c.p if p is None else p
    significant = (not np.isnan(p)) and p < alpha
    if significant and c.ci_low > 1 + threshold:
        return "regressed"
    if significant and c.ci_high < 1 / (1 + threshold):
        return "improved"
    return "not significant"


def count_threshold(
    count: float, threshold: float, floor: float | None, noise: float | None = None
) -> float:
    """The smallest change, as a fraction of ``count``, by which an exact instruction count
    (one per side, no noise to test against) is judged moved: ``threshold``, or down to half
    of it where that half is still ``floor`` instructions per call or more (None: no floor
    is known, ``threshold`` alone); never less than ``noise`` instructions per call.

    Why the two: what else differs between two sides (an import that leaves the heap or
    Python's type caches in another state, another environment) moves an untouched copy's
    count by a roughly fixed number of instructions per call and tensor, not by a fraction
    of its work: measured, +274 at most in 24,000 (1.1%, a 128 KiB clone), +84 in 469,000
    (a 4 MiB one), +1,018 in 678,000 (a state_dict snapshot of 8 tensors).  A relative
    threshold alone must stay above the first, and then misses a real 1.5% in the second's
    469,000.  The floor is given per call, so scaled by the tensors a call copies: a model
    of many small tensors is mostly that fixed cost, and keeps ``threshold``.  The same
    fixed shifts bound the threshold from below where a count is small: the rounds of one
    count of a 32-element clone wandered by 225 instructions (2.1%) with heap history alone,
    so ``noise`` (per call, scaled alike) keeps any change that small unnamed."""
    if count <= 0:
        return threshold
    level = threshold if floor is None else max(threshold / 2, min(threshold, floor / count))
    return level if noise is None else max(level, noise / count)


# --- the process as the unit (``copybench gate``) ----------------------------------------------


def rank_sum_null(m: int, n: int) -> list[int]:
    """The exact null distribution of the rank-sum (Mann-Whitney) statistic ``U`` for
    groups of ``m`` and ``n``: how many of the ``C(m + n, m)`` equally likely splits give
    ``U = 0, 1, ..., m * n``, in exact integers.

    These are the coefficients of the Gaussian binomial ``[m + n choose m]_q``, built as
    the product over ``i`` of ``(1 - q^(n + i)) / (1 - q^i)``; truncating at degree ``m * n``
    at every step is exact, since the result has that degree.
    """
    size = m * n + 1
    counts = [1] + [0] * (size - 1)
    for i in range(1, m + 1):
        for u in range(size - 1, n + i - 1, -1):
            counts[u] -= counts[u - n - i]
        for u in range(i, size):
            counts[u] += counts[u - i]
    return counts


def rank_sum_p(u: float, m: int, n: int) -> float:
    """Two-sided exact p-value of a rank-sum statistic ``u`` (pairs where the first group's
    value is the larger; a tie counts one half) for groups of ``m`` and ``n``."""
    if m == 0 or n == 0:
        return float("nan")
    counts = rank_sum_null(m, n)
    total = sum(counts)
    low = sum(counts[: int(np.floor(u)) + 1])  # P(U <= u)
    high = sum(counts[int(np.ceil(u)) :])  # P(U >= u)
    return min(1.0, 2 * min(low, high) / total)


def smallest_rank_sum_p(rounds: int) -> float:
    """The smallest two-sided p :func:`order_balanced_change` can give over ``rounds``
    rounds split as evenly as they can be: complete separation of the two groups."""
    m = rounds // 2
    if m == 0:
        return 1.0
    return min(1.0, 2 / comb(rounds, m))


def processes_for(alpha: float, comparisons: int) -> int:
    """Rounds needed before any of ``comparisons`` Holm-adjusted tests of
    :func:`order_balanced_change` can reach ``alpha``: fewer can only ever say "too few
    processes"."""
    n = 2
    while comparisons * smallest_rank_sum_p(n) >= alpha:
        n += 1
    return n


def order_balanced_change(
    base_medians: Sequence[float],
    head_medians: Sequence[float],
    head_second: Sequence[bool],
    confidence: float = 0.95,
) -> Change:
    """How head compares with base over rounds of one fresh process per side, back to back,
    in an order drawn at random and balanced over the rounds (``copybench gate``).

    Round ``i`` gives the log ratio ``d_i = log(head_i / base_i)`` of the two processes'
    medians.  Whatever favours the second process of a round (or the first) shifts every
    ``d_i`` of one order one way and of the other order the other way, so:

    - the **test** is the exact rank-sum test between the rounds where head ran second and
      those where it ran first, on ``L_i = log(second / first)``: a slower head raises the
      first group's ``L`` and lowers the second's.  Under A/A the two processes of a round
      are the same program and which one is labelled head was drawn at random, independent
      of anything measured; so every split of the rounds into the two orders was as likely
      to have produced what was seen, and the test's p is exact - without assuming a
      distribution, independence between rounds, or that the machine held still.
    - the **estimate** is the matching Hodges-Lehmann estimate: the median, over every pair
      of a head-second and a head-first round, of the mean of their two ``d``, in which
      the order effect cancels; its CI inverts the same test (Moses).

    Returns a :class:`Change` whose ``ratio`` is ``exp`` of the estimate, ``p`` the test's
    two-sided p (``nan`` with no round of one of the orders), ``n_base``/``n_head`` the
    rounds.
    """
    b = np.log(np.asarray(base_medians, dtype=float))
    h = np.log(np.asarray(head_medians, dtype=float))
    second = np.asarray(head_second, dtype=bool)
    if not (b.size == h.size == second.size) or b.size == 0:
        raise ValueError("order_balanced_change needs one base, head and order per round")
    d = h - b
    a, f = d[second], d[~second]  # head second: L = d; head first: L = -d
    if a.size == 0 or f.size == 0:
        est, inf, nan = float(np.exp(np.median(d))), float("inf"), float("nan")
        return Change(median(np.exp(b)), median(np.exp(h)), est, 0.0, inf, nan, b.size, h.size)
    # L_a - L_f = d_a + d_f for every pair: its sign is the rank-sum statistic's.
    w = np.sort((a[:, None] + f[None, :]).ravel() / 2)
    u = float((w > 0).sum() + 0.5 * (w == 0).sum())
    p = rank_sum_p(u, a.size, f.size)
    lo, hi = _moses_interval(w, a.size, f.size, confidence)
    return Change(
        median(np.exp(b)),
        median(np.exp(h)),
        float(np.exp(np.median(w))),
        float(np.exp(lo)),
        float(np.exp(hi)),
        p,
        int(b.size),
        int(h.size),
    )


def _moses_interval(w: np.ndarray, m: int, n: int, confidence: float) -> tuple[float, float]:
    """The CI of the Hodges-Lehmann estimate from the sorted pairwise means ``w`` of ``m``
    and ``n`` rounds: as many cut from each end as the rank-sum test's null leaves in its
    tail (Moses' interval)."""
    counts = rank_sum_null(m, n)
    total, tail, k = sum(counts), (1 - confidence) / 2, 0
    cumulative = 0
    while k < len(counts) and (cumulative + counts[k]) / total <= tail:
        cumulative += counts[k]
        k += 1
    # k pairwise means cut from each end still leave ``confidence``.
    return (w[k], w[w.size - 1 - k]) if k < w.size - k else (w[0], w[-1])


def process_verdict(
    c: Change, comparisons: int, threshold: float = 0.05, alpha: float = 0.05, p: float = 1.0
) -> str:
    """The verdict on an :func:`order_balanced_change`, ``p`` Holm-adjusted over
    ``comparisons``:

    - "too few processes" where no p could reach ``alpha`` with this many rounds (a verdict
      of "unchanged" would be as unfounded as one of "regressed");
    - "regressed" / "improved": significant, and the estimate beyond the threshold (asv's
      rule for ``--factor``).  The test controls how often an A/A gate says either;
      asking the whole CI to clear the threshold as well bought no safety the test does not
      give, and cost the gate every slowdown smaller than twice its CI's half-width;
    - "unchanged" only where the whole CI lies within the threshold;
    - "not significant" otherwise.
    """
    if comparisons * smallest_rank_sum_p(min(c.n_base, c.n_head)) >= alpha:
        return "too few processes"
    significant = (not np.isnan(p)) and p < alpha
    if significant and c.ratio > 1 + threshold:
        return "regressed"
    if significant and c.ratio < 1 / (1 + threshold):
        return "improved"
    if 1 / (1 + threshold) <= c.ci_low and c.ci_high <= 1 + threshold:
        return "unchanged"
    return "not significant"


def relative_verdict(verdict: str, raw: Change, threshold: float) -> str:
    """A relative row's verdict (a case's time over its in-process reference), judged
    beside the raw time's :class:`Change` of the same case: "regressed" stands only where
    the raw CI reaches past ``1 + threshold``, "improved" only where it reaches below its
    reciprocal; otherwise "not significant".

    The relative time cancels the process's state, but its reference is a second
    measurement that can move alone: a wrapper installed at start-up (another library's
    monkeypatch) shifted the relative time of an untouched ``copy_`` case at 128 KiB to
    1.00-1.03 across the 10 loaded 1.2x gates of the power study, its raw time staying at
    0.99-1.01 (the reference ran faster in the wrapped head's processes).  In two of the
    study's gates it "regressed" while its raw time ruled out any change beyond the
    threshold (loaded: 1.024 [1.008, 1.041] relative, 1.006 [0.995, 1.016] raw).  Where
    the raw CI reaches past the threshold the raw time cannot rule the change out, and the
    relative verdict stands: a true change beyond the threshold leaves the raw CI short of
    it with probability at most about ``alpha / 2``, so this costs the relative rows almost
    no power.
    """
    if verdict == "regressed" and raw.ci_high <= 1 + threshold:
        return "not significant"
    if verdict == "improved" and raw.ci_low >= 1 / (1 + threshold):
        return "not significant"
    return verdict


# --- paired measurements (``copybench overhead``, the noise study) ---------------------------


def paired_ratio_ci(
    base: Sequence[Sequence[float]],
    head: Sequence[Sequence[float]],
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Median of the per-pair ratios head[i] / base[i], with its CI; one sequence of pairs
    per process.

    For A and B timed in alternation, pair ``i`` shares whatever the machine did at that
    moment (frequency, a neighbour's job, cache state), so the ratio within a pair cancels
    most of it, where :func:`ratio_ci` (independent medians) keeps it.  The median of the
    ratios is robust to the pairs an interrupt hit.  Its CI is distribution-free: order
    statistics for one process, whole processes resampled for several
    (:func:`clustered_median_ci`).  Returns (ratio, ci_low, ci_high).
    """
    return clustered_median_ci(_per_pair(base, head, np.divide), confidence)


def paired_difference_ci(
    base: Sequence[Sequence[float]],
    head: Sequence[Sequence[float]],
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Median of the per-pair differences head[i] - base[i], with its CI, as
    :func:`paired_ratio_ci`.  Returns (difference, ci_low, ci_high)."""
    return clustered_median_ci(_per_pair(base, head, np.subtract), confidence)


def _per_pair(
    base: Sequence[Sequence[float]],
    head: Sequence[Sequence[float]],
    op: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> list[np.ndarray]:
    if len(base) != len(head) or any(len(b) != len(h) for b, h in zip(base, head, strict=True)):
        raise ValueError("paired statistics need the same number of samples per side")
    return [
        op(np.asarray(h, dtype=float), np.asarray(b, dtype=float))
        for b, h in zip(base, head, strict=True)
    ]


def clustered_median_ci(
    groups: Sequence[Sequence[float]],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Median of the pooled samples of several groups, with a CI that respects the groups.

    Samples from one process share that process's memory layout, so they are not
    independent: an order-statistics CI over the pooled samples would be as narrow as if
    they were, and too narrow.  The CI here is a cluster bootstrap (resample whole groups
    with replacement, pool, take the median; percentile interval).  With one group it is
    :func:`median_ci` of that group.  Returns (median, ci_low, ci_high).
    """
    arrays = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not arrays:
        raise ValueError("clustered_median_ci of no samples")
    pooled = np.concatenate(arrays)
    if len(arrays) == 1:
        return (median(pooled), *median_ci(pooled, confidence))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(arrays), size=(n_resamples, len(arrays)))
    medians = [float(np.median(np.concatenate([arrays[i] for i in row]))) for row in picks]
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(medians, [alpha, 1 - alpha])
    return median(pooled), float(lo), float(hi)


def spread(values: Sequence[float]) -> float:
    """max - min: how far repeated estimates of one quantity disagree (the noise study)."""
    a = np.asarray(values, dtype=float)
    return float(a.max() - a.min()) if a.size else 0.0


@dataclass(frozen=True)
class Modes:
    """Samples split at the widest gap between a fast and a slow cluster.

    ``threshold`` is None when the samples are unimodal (no gap of the required factor with
    enough samples on both sides); ``slow_fraction`` is then 0.
    """

    threshold: float | None
    slow_fraction: float
    fast_median: float
    slow_median: float | None

    @property
    def bimodal(self) -> bool:
        return self.threshold is not None


def split_modes(samples: Sequence[float], gap: float = 2.0, min_fraction: float = 0.05) -> Modes:
    """Find two modes a factor ``gap`` or more apart, each holding ``min_fraction`` of samples.

    Timings of a large allocation are bimodal when the allocator sometimes reuses a freed
    block and sometimes returns its pages to the kernel and faults them in again (glibc's
    dynamic mmap threshold): the median of such samples is whichever mode happens to hold
    more than half of them, a number that jumps between runs.  This reports the split
    instead of averaging it away.  The split is at the largest ratio between consecutive
    sorted samples, which is scale-free and needs no model of either mode.
    """
    a = np.sort(np.asarray(samples, dtype=float))
    if a.size == 0:
        raise ValueError("split_modes of no samples")
    k = max(1, int(np.ceil(min_fraction * a.size)))
    if a.size < 2 * k or a[0] <= 0:
        return Modes(None, 0.0, float(np.median(a)), None)
    jumps = a[1:] / a[:-1]
    # Only splits that leave at least k samples on each side are candidates.
    candidates = jumps[k - 1 : a.size - k]
    i = int(np.argmax(candidates)) + k - 1
    if jumps[i] < gap:
        return Modes(None, 0.0, float(np.median(a)), None)
    threshold = float(np.sqrt(a[i] * a[i + 1]))
    fast, slow = a[: i + 1], a[i + 1 :]
    return Modes(threshold, slow.size / a.size, float(np.median(fast)), float(np.median(slow)))
