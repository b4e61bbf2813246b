"""lab.metrics.recall_bounds: a two-sided 95 % interval whose coverage a simulation with a known mean confirms."""

from __future__ import annotations

import numpy as np
import pytest

from milvus_lab.lab.metrics import Z_95, recall_bounds


def _coverage(draw, truth: float, trials: int = 2_000) -> float:
    hits = 0
    for _ in range(trials):
        lo, hi = recall_bounds(draw())
        hits += lo <= truth <= hi
    return hits / trials


def test_z_is_the_two_sided_95_percent_quantile():
    assert Z_95 == pytest.approx(1.959964, abs=1e-6)


def test_interval_covers_the_true_mean_95_percent_of_the_time_when_queries_are_all_or_nothing():
    """Each query finds all its neighbours or none (the widest per-query spread): the Wilson interval is
    exact here, so a one-sided 1.645 quantile would cover only ~90 %."""
    rng = np.random.default_rng(11)
    coverage = _coverage(lambda: (rng.random(1_000) < 0.7).astype(float), 0.7)
    assert 0.935 <= coverage <= 0.965  # z = 1.6449 (the one-sided quantile) covers 0.906 here


def test_interval_is_never_narrower_than_the_mean_of_heterogeneous_queries_allows():
    """Per-query recalls k-binomial around query-specific rates (Beta(8, 1), mean 8/9): coverage at least 95 %."""
    rng = np.random.default_rng(12)

    def draw() -> np.ndarray:
        return rng.binomial(10, rng.beta(8, 1, 1_000)) / 10

    assert _coverage(draw, 8 / 9) >= 0.94


def test_bounds_stay_in_zero_one_and_contain_the_mean():
    for r in ([1.0] * 50, [0.0] * 50, [0.5, 1.0, 0.9]):
        lo, hi = recall_bounds(r)
        assert 0.0 <= lo <= np.mean(r) <= hi <= 1.0
    assert all(np.isnan(recall_bounds([])))
