"""Backend adapters: recall, true distances, padding, persistence, threads, binary metrics, build errors."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from milvus_lab import backends, spec
from milvus_lab.backends.base import BuiltIndex
from milvus_lab.errors import BuildIndexError

N, DIM, NQ, K = 5000, 32, 200, 10
CLUSTERS = 50

#: generous build and search params per float index type (checked against the spec below)
PARAMS: dict[str, tuple[dict[str, int], dict[str, int]]] = {
    "IVF_FLAT": ({"nlist": 64}, {"nprobe": 32}),
    "IVF_SQ8": ({"nlist": 64}, {"nprobe": 32}),
    "IVF_SQ8H": ({"nlist": 64}, {"nprobe": 32}),
    "IVF_PQ": ({"nlist": 64, "m": 32}, {"nprobe": 32}),
    "RNSG": ({"search_length": 60, "out_degree": 32, "candidate_pool_size": 300, "knng": 52},
             {"search_length": 100}),
    "HNSW": ({"M": 16, "efConstruction": 200}, {"ef": 200}),
    "ANNOY": ({"n_trees": 32}, {"search_k": 5000}),
}
#: the same types on a 300-row segment (padding tests)
SMALL_PARAMS: dict[str, tuple[dict[str, int], dict[str, int]]] = {
    "IVF_FLAT": ({"nlist": 8}, {"nprobe": 8}),
    "IVF_SQ8": ({"nlist": 8}, {"nprobe": 8}),
    "IVF_SQ8H": ({"nlist": 8}, {"nprobe": 8}),
    "IVF_PQ": ({"nlist": 8, "m": 8}, {"nprobe": 8}),
    "RNSG": ({"search_length": 40, "out_degree": 16, "candidate_pool_size": 100, "knng": 20},
             {"search_length": 300}),
    "HNSW": ({"M": 8, "efConstruction": 64}, {"ef": 400}),
    "ANNOY": ({"n_trees": 8}, {"search_k": -1}),
}
#: four different search settings per type, for the concurrency test
THREAD_PARAMS: dict[str, list[dict[str, int]]] = {
    **{t: [{"nprobe": p} for p in (1, 4, 16, 64)] for t in ("IVF_FLAT", "IVF_SQ8", "IVF_SQ8H", "IVF_PQ")},
    "RNSG": [{"search_length": s} for s in (10, 30, 60, 120)],
    "HNSW": [{"ef": e} for e in (10, 40, 100, 200)],
    "ANNOY": [{"search_k": s} for s in (-1, 100, 1000, 5000)],
}
FLOAT_TYPES = list(PARAMS)
EXACT_STORAGE = ["IVF_FLAT", "HNSW", "RNSG", "ANNOY"]
METRICS = ["L2", "IP"]


# --------------------------------------------------------------------------------------------------
# Data and cached builds
# --------------------------------------------------------------------------------------------------
def points_around(rng: np.random.Generator, n: int, centers: np.ndarray) -> np.ndarray:
    """``n`` points, each a randomly picked one of ``centers`` plus unit Gaussian noise (base and queries share
    the centres, so queries fall in the base's clusters)."""
    picks = rng.integers(0, len(centers), n)
    return (centers[picks] + rng.standard_normal((n, centers.shape[1]))).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20200610)
    centers = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32) * 3
    return points_around(rng, N, centers), points_around(rng, NQ, centers)


@pytest.fixture(scope="module")
def truth(data) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    x, q = data
    return {metric: backends.exact_search(x, q, K, metric) for metric in METRICS}


@pytest.fixture(scope="module")
def built(data) -> Callable[[str, str], BuiltIndex]:
    x, _ = data
    cache: dict[tuple[str, str], BuiltIndex] = {}

    def get(index_type: str, metric: str) -> BuiltIndex:
        if (index_type, metric) not in cache:
            build_params, _ = PARAMS[index_type]
            cache[index_type, metric] = backends.build(index_type, build_params, x, metric)
        return cache[index_type, metric]

    return get


def recall(found: np.ndarray, expected: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, expected)]))


def true_distances(x: np.ndarray, q: np.ndarray, labels: np.ndarray, metric: str) -> np.ndarray:
    return backends.distances(x, q, metric)[np.arange(len(q))[:, None], labels]


def assert_sorted(dist: np.ndarray, metric: str) -> None:
    before, after = dist[:, :-1], dist[:, 1:]
    assert np.all(after <= before) if metric == "IP" else np.all(after >= before)


# --------------------------------------------------------------------------------------------------
# Float index types
# --------------------------------------------------------------------------------------------------
def test_params_cover_every_index_type_and_are_valid():
    assert set(PARAMS) == set(spec.INDEXES) - {"FLAT"}
    for table in (PARAMS, SMALL_PARAMS):
        for index_type, (build_params, search_params) in table.items():
            for metric in METRICS:
                _, clean = spec.validate_build(index_type, build_params, dim=DIM, metric=metric, warn=False)
                spec.validate_search(index_type, search_params, top_k=K, build_params=clean)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("index_type", FLOAT_TYPES)
def test_recall_at_10(built, data, truth, index_type, metric):
    _, q = data
    index = built(index_type, metric)
    dist, labels = index.search(q, K, PARAMS[index_type][1])
    assert dist.shape == labels.shape == (NQ, K)
    assert dist.dtype == np.float32 and labels.dtype == np.int64
    assert_sorted(dist, metric)
    assert recall(labels, truth[metric][1]) >= 0.9


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("index_type", EXACT_STORAGE)
def test_distances_are_the_true_distances(built, data, index_type, metric):
    x, q = data
    dist, labels = built(index_type, metric).search(q, K, PARAMS[index_type][1])
    assert (labels >= 0).all()
    np.testing.assert_allclose(dist, true_distances(x, q, labels, metric), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("metric", METRICS)
def test_exact_search_is_exact(data, truth, metric):
    x, q = data
    dist, labels = truth[metric]
    full = backends.distances(x, q, metric)
    best = -np.sort(-full, axis=1)[:, :K] if metric == "IP" else np.sort(full, axis=1)[:, :K]
    np.testing.assert_allclose(dist, best, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(dist, true_distances(x, q, labels, metric), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("index_type", ["FLAT"] + FLOAT_TYPES)
def test_k_above_ntotal_is_padded(data, index_type, metric):
    x, q = data
    small = x[:300]
    build_params, search_params = SMALL_PARAMS.get(index_type, ({}, {}))
    index = backends.build(index_type, build_params, small, metric)
    k = 310
    dist, labels = index.search(q[:20], k, search_params)
    assert dist.shape == labels.shape == (20, k)
    fill = -np.inf if metric == "IP" else np.inf
    assert (labels[:, 300:] == -1).all()
    assert np.array_equal(labels == -1, dist == fill)
    for row in labels:
        hits = row[row >= 0]
        assert len(hits) == len(set(hits.tolist())) and hits.max() < 300
    if index_type in ("FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_SQ8H", "IVF_PQ"):
        assert ((labels >= 0).sum(1) == 300).all()
    exact_dist, exact_labels = backends.exact_search(small, q[:20], k, metric)
    assert (exact_labels[:, 300:] == -1).all() and (exact_dist[:, 300:] == fill).all()


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("index_type", FLOAT_TYPES)
def test_save_load_round_trip(built, data, tmp_path, index_type, metric):
    _, q = data
    build_params, search_params = PARAMS[index_type]
    index = built(index_type, metric)
    path = tmp_path / f"{index_type}.index"
    index.save(path)
    loaded = backends.load(index_type, build_params, metric, DIM, path)
    assert (loaded.index_type, loaded.metric, loaded.ntotal, loaded.dim) == (index_type, metric, N, DIM)
    path.unlink()
    for got, want in zip(loaded.search(q, K, search_params), index.search(q, K, search_params)):
        assert np.array_equal(got, want)


def test_flat_save_load_round_trip(data, tmp_path):
    x, q = data
    index = backends.build("FLAT", {}, x, "IP")
    index.save(tmp_path / "flat")
    loaded = backends.load("FLAT", {}, "IP", DIM, tmp_path / "flat")
    for got, want in zip(loaded.search(q, K, {}), index.search(q, K, {})):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("index_type", FLOAT_TYPES)
def test_concurrent_searches_match_serial(built, data, index_type):
    _, q = data
    index = built(index_type, "L2")
    settings = THREAD_PARAMS[index_type]
    serial = [index.search(q, K, params) for params in settings]
    start = threading.Barrier(len(settings))
    mismatches: list[str] = []

    def worker(i: int) -> None:
        start.wait()
        for _ in range(3):
            dist, labels = index.search(q, K, settings[i])
            if not (np.array_equal(labels, serial[i][1]) and np.array_equal(dist, serial[i][0])):
                mismatches.append(f"{settings[i]} differs from its serial result")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(settings))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not mismatches


def test_hnsw_k_above_ef(built, data):
    _, q = data
    dist, labels = built("HNSW", "L2").search(q[:5], 50, {"ef": 10})
    assert (labels >= 0).all() and labels.shape == (5, 50)
    assert_sorted(dist, "L2")


def test_rnsg_indexes_duplicate_rows_once_and_returns_every_copy(data, tmp_path):
    x, q = data
    rows = np.concatenate([x[:1000], x[:1000], np.zeros((200, DIM), np.float32)])
    params = {"search_length": 40, "out_degree": 16, "candidate_pool_size": 100, "knng": 20}
    index = backends.build("RNSG", params, rows, "L2")
    assert index.ntotal == len(rows)
    dist, labels = index.search(rows[[0, 5, 2000]], 2, {"search_length": 50})
    assert sorted(labels[0]) == [0, 1000] and sorted(labels[1]) == [5, 1005]
    assert set(labels[2]) <= set(range(2000, 2200)) and (dist == 0).all()
    index.save(tmp_path / "nsg")
    loaded = backends.load("RNSG", params, "L2", DIM, tmp_path / "nsg")
    search_params = {"search_length": 50}
    for got, want in zip(loaded.search(q, K, search_params), index.search(q, K, search_params)):
        assert np.array_equal(got, want)


def test_memory_bytes(built):
    sizes = {t: built(t, "L2").memory_bytes() for t in FLOAT_TYPES}
    assert all(size > 0 for size in sizes.values())
    assert sizes["IVF_PQ"] < sizes["IVF_FLAT"]
    assert sizes["IVF_SQ8"] < sizes["IVF_FLAT"]


def test_build_errors_are_build_index_errors(data):
    x, _ = data
    with pytest.raises(BuildIndexError, match="nlist=64"):
        backends.build("IVF_FLAT", {"nlist": 64}, x[:50], "L2")
    with pytest.raises(BuildIndexError, match="256"):
        backends.build("IVF_PQ", {"nlist": 8, "m": 8}, x[:200], "L2")
    with pytest.raises(BuildIndexError, match="distinct"):
        backends.build("RNSG", SMALL_PARAMS["RNSG"][0], np.repeat(x[:10], 20, axis=0), "IP")
    with pytest.raises(BuildIndexError, match="nlist=64"):
        backends.build("IVF_FLAT", {"nlist": 64}, np.zeros((50, 4), np.uint8), "JACCARD")


# --------------------------------------------------------------------------------------------------
# Binary metrics
# --------------------------------------------------------------------------------------------------
BITS = 256
BINARY_METRICS = list(spec.BINARY_METRICS)


@pytest.fixture(scope="module")
def binary_data() -> tuple[np.ndarray, np.ndarray]:
    """Rows = a cluster's core bits | sparse extra bits; queries mix plain rows, cores, subsets of cores,
    unions of rows and the all-ones and all-zeros vectors, so every metric has hits and misses."""
    rng = np.random.default_rng(7)
    cores = rng.random((20, BITS)) < 0.3
    cluster = rng.integers(0, len(cores), 3000)
    rows = cores[cluster] | (rng.random((3000, BITS)) < 0.05)
    queries = [rows[:10], cores[:5], cores[5:10] & (rng.random((5, BITS)) < 0.5),
               rows[10:15] | rows[15:20], np.ones((1, BITS), bool), np.zeros((1, BITS), bool),
               rows[20:40] ^ (rng.random((20, BITS)) < 0.05)]
    return np.packbits(rows, axis=1), np.packbits(np.concatenate(queries), axis=1)


def reference_distances(codes: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """Milvus 0.10's binary metrics from unpacked bits, independently of the adapter."""
    x = np.unpackbits(codes, axis=1).astype(np.int64)
    q = np.unpackbits(queries, axis=1).astype(np.int64)
    inter = q @ x.T
    pop_q, pop_x = q.sum(1)[:, None], x.sum(1)[None, :]
    union = pop_q + pop_x - inter
    if metric == "HAMMING":
        return (pop_q + pop_x - 2 * inter).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        similarity = np.where(union > 0, inter / union, 0.0)
        if metric == "TANIMOTO":
            return -np.log2(similarity)
    jaccard = 1.0 - similarity
    if metric == "SUBSTRUCTURE":
        return np.where(inter == pop_q, jaccard, np.inf)
    if metric == "SUPERSTRUCTURE":
        return np.where(inter == pop_x, jaccard, np.inf)
    return jaccard


@pytest.mark.parametrize("metric", BINARY_METRICS)
def test_binary_flat_is_exact(binary_data, metric):
    codes, queries = binary_data
    reference = reference_distances(codes, queries, metric)
    np.testing.assert_allclose(backends.distances(codes, queries, metric), reference, rtol=1e-6)
    k = 25
    index = backends.build("FLAT", {}, codes, metric)
    assert index.dim == BITS and index.ntotal == len(codes)
    for dist, labels in (index.search(queries, k, {}), backends.exact_search(codes, queries, k, metric)):
        expected = np.sort(reference, axis=1)[:, :k]
        if metric in ("SUBSTRUCTURE", "SUPERSTRUCTURE"):
            assert np.array_equal(labels == -1, np.isinf(expected))
        valid = labels >= 0
        np.testing.assert_allclose(dist, expected, rtol=1e-6)
        got = reference[np.arange(len(queries))[:, None], np.where(valid, labels, 0)]
        np.testing.assert_allclose(np.where(valid, got, dist), dist, rtol=1e-6)
    hits = np.isfinite(reference).sum(1)
    if metric in ("SUBSTRUCTURE", "SUPERSTRUCTURE"):
        assert (hits == 0).any() or (hits < k).any()
        assert (hits >= k).any()


def distance_recall(dist: np.ndarray, reference: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of returned hits at least as close as the true k-th neighbour (ties count as found)."""
    kth = np.sort(reference, axis=1)[:, k - 1:k]
    got = reference[np.arange(len(labels))[:, None], np.where(labels >= 0, labels, 0)]
    return float(np.mean((labels >= 0) & (got <= kth + 1e-9)))


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD", "TANIMOTO"])
def test_binary_ivf_recall_and_round_trip(binary_data, tmp_path, metric):
    codes, queries = binary_data
    reference = reference_distances(codes, queries, metric)
    index = backends.build("IVF_FLAT", {"nlist": 32}, codes, metric)
    dist, labels = index.search(queries, K, {"nprobe": 16})
    assert_sorted(dist, metric)
    assert distance_recall(dist, reference, labels, K) >= 0.9
    got = reference[np.arange(len(queries))[:, None], labels]
    np.testing.assert_allclose(dist, got, rtol=1e-6)
    full = index.search(queries, 4000, {"nprobe": 32})[1]
    assert ((full >= 0).sum(1) == len(codes)).all()
    assert index.memory_bytes() > 0
    index.save(tmp_path / "bivf")
    loaded = backends.load("IVF_FLAT", {"nlist": 32}, metric, BITS, tmp_path / "bivf")
    for got_part, want_part in zip(loaded.search(queries, K, {"nprobe": 16}), (dist, labels)):
        assert np.array_equal(got_part, want_part)


def test_binary_flat_round_trip(binary_data, tmp_path):
    codes, queries = binary_data
    index = backends.build("FLAT", {}, codes, "SUBSTRUCTURE")
    index.save(tmp_path / "bflat")
    loaded = backends.load("FLAT", {}, "SUBSTRUCTURE", BITS, tmp_path / "bflat")
    for got, want in zip(loaded.search(queries, K, {}), index.search(queries, K, {})):
        assert np.array_equal(got, want)


def test_rnsg_searches_with_exactly_the_search_length_the_spec_says_is_used():
    """The search list faiss NSG runs with is spec.effective_value: max(search_length, top_k), never more."""
    from milvus_lab.backends import nsg

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(3000, 16)).astype(np.float32)
    index = backends.build("RNSG", {"search_length": 45, "out_degree": 30, "candidate_pool_size": 100,
                                    "knng": 50}, vectors, "L2")
    used: list[int] = []

    def record(value: int) -> None:
        used.append(value)
        nsg._set_search_l(index.index, value)

    param = spec.INDEXES["RNSG"].search["search_length"]
    for top_k, search_length in [(10, 10), (10, 200), (100, 10), (100, 50), (100, 300)]:
        used.clear()
        index._search_l = backends.SharedSetting(record)
        index.search(vectors[:5], top_k, {"search_length": search_length})
        assert used == [spec.effective_value(param, search_length, {"top_k": top_k})]
    short = index.search(vectors[:50], 100, {"search_length": 100})[1]
    long = index.search(vectors[:50], 100, {"search_length": 300})[1]
    assert not np.array_equal(short, long)  # a longer list than top_k changes the answer: it is not ignored
