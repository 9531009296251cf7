"""Statistics for benchmark results: bootstrap confidence intervals and paired comparisons.

All resampling is seeded, so a report is reproducible bit for bit.  NaN
values (PESQ on a silent output) are left out; a paired comparison keeps the
clips where both systems have a value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["N_BOOT", "SEED", "LEVEL", "bootstrap_ci", "paired_comparison"]

N_BOOT = 2000
SEED = 0
LEVEL = 0.95


def _finite(values: Sequence[float | None]) -> np.ndarray:
    v = np.array([np.nan if x is None else float(x) for x in values], dtype=np.float64)
    return v[np.isfinite(v)]


def _boot_means(v: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(n_boot, v.size))
    return v[idx].mean(axis=1)


def bootstrap_ci(values: Sequence[float | None], *, n_boot: int = N_BOOT, seed: int = SEED,
                 level: float = LEVEL) -> dict[str, float | int | None]:
    """Mean and percentile-bootstrap confidence interval of the mean.

    Returns ``{"mean", "ci_low", "ci_high", "n"}``; the bounds are None with
    fewer than 2 values, everything None with none.
    """
    v = _finite(values)
    if v.size == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    mean = float(v.mean())
    if v.size < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "n": 1}
    boots = _boot_means(v, n_boot, seed)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(boots, [a, 1.0 - a])
    return {"mean": mean, "ci_low": float(lo), "ci_high": float(hi), "n": int(v.size)}


def paired_comparison(a: Sequence[float | None], b: Sequence[float | None], *, higher_is_better: bool = True,
                      n_boot: int = N_BOOT, seed: int = SEED, level: float = LEVEL) -> dict:
    """Is system A better than system B on a metric, clip by clip?

    ``a[i]`` and ``b[i]`` are the two systems' values on the same clip.  The
    per-clip difference ``d = a - b`` is bootstrapped (resampling clips, so
    the pairing is kept); A **beats** B when the whole ``level`` confidence
    interval of ``mean(d)`` lies on A's better side of 0 (above for
    higher-is-better metrics, below otherwise), B beats A in the mirror case,
    otherwise the result is a tie.  The two-sided Wilcoxon signed-rank
    p-value (scipy) is reported alongside.

    Returns ``{"n", "mean_diff", "ci_low", "ci_high", "p_wilcoxon", "winner"}``
    with ``winner`` ``"a"``, ``"b"`` or None.
    """
    if len(a) != len(b):
        raise ValueError(f"paired values differ in length: {len(a)} vs {len(b)}")
    va = np.array([np.nan if x is None else float(x) for x in a], dtype=np.float64)
    vb = np.array([np.nan if x is None else float(x) for x in b], dtype=np.float64)
    keep = np.isfinite(va) & np.isfinite(vb)
    d = va[keep] - vb[keep]
    out: dict = {"n": int(d.size), "mean_diff": None, "ci_low": None, "ci_high": None,
                 "p_wilcoxon": None, "winner": None}
    if d.size == 0:
        return out
    out["mean_diff"] = float(d.mean())
    if d.size < 2:
        return out
    boots = _boot_means(d, n_boot, seed)
    q = (1.0 - level) / 2.0
    lo, hi = (float(v) for v in np.quantile(boots, [q, 1.0 - q]))
    out["ci_low"], out["ci_high"] = lo, hi
    if np.any(d != 0):
        from scipy.stats import wilcoxon

        p = float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
        out["p_wilcoxon"] = None if math.isnan(p) else p
    else:
        out["p_wilcoxon"] = 1.0
    if lo > 0 or hi < 0:
        a_higher = lo > 0
        out["winner"] = "a" if a_higher == higher_is_better else "b"
    return out
