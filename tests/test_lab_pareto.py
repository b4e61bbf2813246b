"""Pareto frontiers and latency percentiles on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from milvus_lab import lab


@pytest.fixture
def table():
    rows = [
        # index_type, recall, qps, p99_ms, on the recall-QPS frontier of its type?
        ("A", 0.50, 1000.0, 1.0, True),    # fastest
        ("A", 0.70, 800.0, 2.0, True),
        ("A", 0.60, 700.0, 3.0, False),    # (0.70, 800) is better in both
        ("A", 0.90, 100.0, 9.0, True),     # best recall
        ("A", 0.90, 90.0, 8.0, False),     # same recall, slower
        ("A", 0.70, 800.0, 2.5, True),     # identical in recall and QPS to a frontier point: not dominated
        ("A", np.nan, 5000.0, 0.1, False),  # not measured: never on a frontier
        ("B", 0.40, 50.0, 5.0, True),      # its own group: alone, so on its frontier
        ("B", 0.30, 40.0, 6.0, False),
    ]
    return pd.DataFrame(rows, columns=["index_type", "recall", "qps", "p99_ms", "expected"])


def test_frontier_per_index_type(table):
    got = lab.pareto_frontier(table)
    assert got.tolist() == table["expected"].tolist()
    assert got.name == "pareto" and got.index.equals(table.index)


def test_frontier_over_all_types(table):
    got = lab.pareto_frontier(table, by=None)
    # B's points are dominated by A's (0.50, 1000)
    assert got.tolist() == [True, True, False, True, False, True, False, False, False]


def test_latency_frontier_lower_is_better(table):
    got = lab.pareto_frontier(table, y="p99_ms", y_higher=False)
    # A: (0.5,1ms) (0.7,2ms) (0.9,8ms) are the frontier; (0.7,2.5) and (0.9,9) are dominated
    assert got.tolist() == [True, True, False, False, True, False, False, True, False]


def test_frontier_keeps_the_original_index(table):
    shuffled = table.sample(frac=1.0, random_state=0)
    shuffled.index = shuffled.index * 10 + 3
    got = lab.pareto_frontier(shuffled)
    assert got.tolist() == shuffled["expected"].tolist()


def test_pareto_mask_edge_cases():
    assert lab.pareto_mask([], []).tolist() == []
    assert lab.pareto_mask([0.5], [1.0]).tolist() == [True]
    assert lab.pareto_mask([np.nan, 0.1], [1.0, np.inf]).tolist() == [False, False]


def test_latency_percentiles_in_ms():
    seconds = np.arange(1, 101) / 1000.0  # 1..100 ms
    p = lab.latency_percentiles(seconds)
    assert p["p50_ms"] == pytest.approx(50.5)
    assert p["p95_ms"] == pytest.approx(95.05)
    assert p["p99_ms"] == pytest.approx(99.01)
    assert np.isnan(lab.latency_percentiles([])["p99_ms"])
