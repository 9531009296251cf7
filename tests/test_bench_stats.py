"""Bootstrap intervals and paired comparisons (mediacore.bench.stats) on synthetic numbers."""

from __future__ import annotations

import numpy as np
import pytest

from mediacore.bench import stats


def test_bootstrap_ci_covers_the_mean_and_is_seeded():
    v = np.random.default_rng(1).normal(3.0, 1.0, 200)
    a = stats.bootstrap_ci(v)
    assert a["n"] == 200 and a["mean"] == pytest.approx(v.mean())
    assert a["ci_low"] < a["mean"] < a["ci_high"]
    assert a["ci_high"] - a["ci_low"] == pytest.approx(2 * 1.96 / np.sqrt(200), rel=0.25)
    assert stats.bootstrap_ci(v) == a  # same seed, same interval
    assert stats.bootstrap_ci(v, seed=5) != a


def test_bootstrap_ci_skips_nan_and_none():
    a = stats.bootstrap_ci([1.0, float("nan"), None, 3.0])
    assert a["n"] == 2 and a["mean"] == 2.0
    assert stats.bootstrap_ci([None, float("nan")]) == {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    assert stats.bootstrap_ci([4.0])["ci_low"] is None


def test_paired_comparison_finds_a_consistent_small_gain():
    rng = np.random.default_rng(2)
    b = rng.normal(2.0, 1.0, 40)            # large spread between clips ...
    a = b + 0.1 + rng.normal(0, 0.05, 40)   # ... but A is better on every clip
    r = stats.paired_comparison(a, b)
    assert r["winner"] == "a" and r["n"] == 40
    assert r["mean_diff"] == pytest.approx(0.1, abs=0.03)
    assert r["ci_low"] > 0 and r["p_wilcoxon"] < 1e-6
    assert stats.paired_comparison(b, a)["winner"] == "b"
    # lower is better (e.g. residual noise level): the same numbers make B the winner
    assert stats.paired_comparison(a, b, higher_is_better=False)["winner"] == "b"


def test_paired_comparison_calls_noise_a_tie():
    rng = np.random.default_rng(3)
    b = rng.normal(2.0, 1.0, 40)
    a = b + rng.normal(0, 0.3, 40) - 0.0
    a -= (a - b).mean()  # exactly zero mean difference
    r = stats.paired_comparison(a, b)
    assert r["winner"] is None and r["ci_low"] < 0 < r["ci_high"] and r["p_wilcoxon"] > 0.05


def test_paired_comparison_drops_unpaired_values_and_checks_length():
    r = stats.paired_comparison([1.0, None, 3.0, 4.0], [0.5, 2.0, float("nan"), 3.0])
    assert r["n"] == 2 and r["mean_diff"] == pytest.approx(0.75)
    assert stats.paired_comparison([1.0, 1.0], [1.0, 1.0])["winner"] is None
    with pytest.raises(ValueError):
        stats.paired_comparison([1.0], [1.0, 2.0])
