"""numerics: exact k-NN, pair distances and recall with one tie rule, on float and binary metrics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import examples

from milvus_lab import backends, numerics, spec

FLOAT_METRICS = ["L2", "IP"]
BINARY_METRICS = list(spec.BINARY_METRICS)
ALL_METRICS = FLOAT_METRICS + BINARY_METRICS


def _data(seed: int, n: int, nq: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if spec.is_binary_metric(metric):
        bits = rng.random((n + nq, 32)) < 0.4
        codes = np.packbits(bits, axis=1)
        return codes[:n], codes[n:]
    x = rng.integers(-3, 4, (n + nq, 6)).astype(np.float32)  # small integers: many exact ties
    return x[:n], x[n:]


def _slow_distances(base: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """Every metric from its definition, on unpacked bits or float64 vectors."""
    if not spec.is_binary_metric(metric):
        x, q = base.astype(np.float64), queries.astype(np.float64)
        return q @ x.T if metric == "IP" else ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    x = np.unpackbits(base, axis=1).astype(np.int64)
    q = np.unpackbits(queries, axis=1).astype(np.int64)
    inter = q @ x.T
    pq, px = q.sum(1)[:, None], x.sum(1)[None, :]
    union = pq + px - inter
    if metric == "HAMMING":
        return (pq + px - 2 * inter).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        sim = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        if metric == "TANIMOTO":
            return -np.log2(sim)
    jac = 1.0 - sim
    if metric == "SUBSTRUCTURE":
        return np.where(inter == pq, jac, np.inf)
    if metric == "SUPERSTRUCTURE":
        return np.where(inter == px, jac, np.inf)
    return jac


cases = st.tuples(st.integers(0, 10_000), st.integers(1, 60), st.integers(1, 8), st.integers(1, 12),
                  st.sampled_from(ALL_METRICS))


@settings(max_examples=examples(60), deadline=None)
@given(cases)
def test_exact_answer_has_recall_one(case):
    seed, n, nq, k, metric = case
    base, queries = _data(seed, n, nq, metric)
    ids, dist = numerics.exact_knn(base, queries, k, metric)
    assert ids.shape == dist.shape == (nq, k)
    assert (ids[:, n:] == -1).all()
    recall = numerics.recall_per_query(ids, ids, k, base=base, queries=queries, metric=metric)
    assert np.all(recall == 1.0)


@settings(max_examples=examples(60), deadline=None)
@given(cases)
def test_exact_knn_matches_the_definition(case):
    seed, n, nq, k, metric = case
    base, queries = _data(seed, n, nq, metric)
    ids, dist = numerics.exact_knn(base, queries, k, metric)
    full = _slow_distances(base, queries, metric)
    expected = -np.sort(-full, axis=1) if metric == "IP" else np.sort(full, axis=1)
    expected = expected[:, :k]
    valid = ids >= 0
    if metric in ("SUBSTRUCTURE", "SUPERSTRUCTURE"):
        assert np.array_equal(valid[:, :min(k, n)], np.isfinite(expected))
    got = full[np.arange(nq)[:, None], np.where(valid, ids, 0)]
    m = min(k, n)
    np.testing.assert_allclose(np.where(valid, got, 0)[:, :m], np.where(valid[:, :m], expected, 0),
                               rtol=1e-5, atol=1e-5)
    pairs = numerics.pair_distances(base, queries, ids, metric)
    np.testing.assert_allclose(np.where(valid, pairs, 0), np.where(valid, got, 0), rtol=1e-5, atol=1e-5)
    assert np.isnan(pairs[~valid]).all()


@settings(max_examples=examples(40), deadline=None)
@given(cases)
def test_any_row_tied_with_the_kth_counts_as_found(case):
    seed, n, nq, k, metric = case
    base, queries = _data(seed, n, nq, metric)
    k = min(k, n)
    ids, _ = numerics.exact_knn(base, queries, k, metric)
    full = _slow_distances(base, queries, metric)
    descending = metric == "IP"
    for row in range(nq):
        if ids[row, k - 1] < 0:
            continue
        kth = full[row, ids[row, k - 1]]
        tied = np.flatnonzero(np.isclose(full[row], kth, rtol=1e-9, atol=1e-9) | (full[row] == kth))
        swap = [t for t in tied if t not in ids[row]]
        if not swap:
            continue
        found = ids[row:row + 1].copy()
        found[0, k - 1] = swap[0]  # an equally distant row instead of the k-th
        r = numerics.recall_per_query(found, ids[row:row + 1], k, base=base, queries=queries[row:row + 1],
                                      metric=metric)
        assert r[0] == 1.0, (metric, kth, descending)


@settings(max_examples=examples(40), deadline=None)
@given(cases, st.integers(1, 12))
def test_wrong_ids_lower_recall(case, wrong):
    seed, n, nq, k, metric = case
    base, queries = _data(seed, n, nq, metric)
    k = min(k, n)
    ids, _ = numerics.exact_knn(base, queries, k, metric)
    full = _slow_distances(base, queries, metric)
    found = ids.copy()
    found[:, :min(wrong, k)] = -1  # misses
    recall = numerics.recall_per_query(found, ids, k, base=base, queries=queries, metric=metric)
    exist = (ids >= 0).sum(1)
    lost = np.minimum(min(wrong, k), exist)
    assert np.allclose(recall[exist > 0], ((exist - lost) / np.maximum(exist, 1))[exist > 0])
    # a strictly farther row in place of a true neighbour is a miss
    for row in range(nq):
        if exist[row] == 0:
            continue
        kth = full[row, ids[row, exist[row] - 1]]
        farther = np.flatnonzero(full[row] < kth - 1e-6 if metric == "IP" else full[row] > kth + 1e-6)
        farther = [f for f in farther if np.isfinite(full[row, f])]
        if not farther:
            continue
        bad = ids[row:row + 1].copy()
        bad[0, 0] = farther[0]
        r = numerics.recall_per_query(bad, ids[row:row + 1], k, base=base, queries=queries[row:row + 1],
                                      metric=metric)
        assert r[0] == pytest.approx((exist[row] - 1) / exist[row])


def test_a_row_returned_twice_counts_once():
    base, queries = _data(1, 40, 3, "L2")
    ids, _ = numerics.exact_knn(base, queries, 5, "L2")
    twice = ids.copy()
    twice[:, 1] = twice[:, 0]
    recall = numerics.recall_per_query(twice, ids, 5, base=base, queries=queries, metric="L2")
    assert np.allclose(recall, 0.8)


@pytest.mark.parametrize("metric", ["SUBSTRUCTURE", "SUPERSTRUCTURE"])
def test_few_hits_padding_and_no_hits(metric):
    base = np.packbits(np.eye(16, dtype=bool)[:4], axis=1)  # four single-bit rows
    queries = np.packbits(np.array([[1] * 2 + [0] * 14, [0] * 16], dtype=bool), axis=1)
    ids, dist = numerics.exact_knn(base, queries, 3, metric)
    recall = numerics.recall_per_query(ids, ids, 3, base=base, queries=queries, metric=metric)
    assert np.all(recall == 1.0)
    empty = np.full_like(ids, -1)
    missed = numerics.recall_per_query(empty, ids, 3, base=base, queries=queries, metric=metric)
    exist = (ids >= 0).sum(1)
    assert np.all(missed[exist > 0] == 0.0) and np.all(missed[exist == 0] == 1.0)


def test_binary_pair_distances_match_the_backends_matrix():
    base, queries = _data(3, 50, 4, "JACCARD")
    ids = np.tile(np.arange(50), (4, 1))
    for metric in BINARY_METRICS:
        full = backends.distances(base, queries, metric)
        np.testing.assert_allclose(numerics.pair_distances(base, queries, ids, metric), full, rtol=1e-6)
