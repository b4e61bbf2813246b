"""Seeded builds: a rebuild on the same rows gives the same results where the library allows it, and the
index says when it does not (multi-threaded graph builds); the package layout of backends/."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest

from milvus_lab import backends, spec
from milvus_lab.backends import nsg
from milvus_lab.errors import UntrainableSegmentError

N, DIM, NQ, K = 3000, 24, 50, 10
CASES = {
    "IVF_FLAT": ({"nlist": 32}, {"nprobe": 4}),
    "IVF_SQ8": ({"nlist": 32}, {"nprobe": 4}),
    "IVF_PQ": ({"nlist": 32, "m": 8}, {"nprobe": 4}),
    "ANNOY": ({"n_trees": 8}, {"search_k": 200}),
    "HNSW": ({"M": 8, "efConstruction": 40}, {"ef": 16}),
    "RNSG": ({"search_length": 30, "out_degree": 16, "candidate_pool_size": 100, "knng": 20},
             {"search_length": 30}),
}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    centers = rng.standard_normal((20, DIM)) * 3
    x = (centers[rng.integers(0, 20, N)] + rng.standard_normal((N, DIM))).astype(np.float32)
    q = (centers[rng.integers(0, 20, NQ)] + rng.standard_normal((NQ, DIM))).astype(np.float32)
    return x, q


@pytest.fixture
def one_thread() -> Iterator[None]:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _twice(index_type: str, x: np.ndarray, q: np.ndarray, metric: str = "L2") -> list:
    build, search = CASES[index_type]
    results = []
    for _ in range(2):
        index = backends.build(index_type, build, x, metric)
        results.append((index, index.search(q, K, search)))
    return results


@pytest.mark.parametrize("index_type", ["IVF_FLAT", "IVF_SQ8", "IVF_PQ", "ANNOY"])
def test_seeded_builds_repeat_on_the_default_thread_count(data, index_type):
    x, q = data
    (first, (d1, i1)), (second, (d2, i2)) = _twice(index_type, x, q)
    assert first.deterministic and second.deterministic
    assert backends.build_is_deterministic(index_type, threads=8)
    assert np.array_equal(i1, i2) and np.array_equal(d1, d2)


@pytest.mark.parametrize("index_type", ["HNSW", "RNSG"])
def test_graph_builds_repeat_on_one_thread(data, one_thread, index_type):
    x, q = data
    (first, (d1, i1)), (_, (d2, i2)) = _twice(index_type, x, q)
    assert first.deterministic and backends.build_is_deterministic(index_type)
    assert np.array_equal(i1, i2) and np.array_equal(d1, d2)


@pytest.mark.parametrize("index_type", ["HNSW", "RNSG"])
def test_multi_threaded_graph_builds_say_they_are_not_reproducible(data, index_type):
    assert not backends.build_is_deterministic(index_type, threads=2)
    if backends.build_threads() > 1:
        index = backends.build(index_type, CASES[index_type][0], data[0][:500], "L2")
        assert index.deterministic is False


def test_binary_ivf_is_seeded():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (2000, 8), dtype=np.uint8)
    results = [backends.build("IVF_FLAT", {"nlist": 16}, codes, "JACCARD").search(codes[:30], K, {"nprobe": 2})
               for _ in range(2)]
    assert np.array_equal(results[0][1], results[1][1])
    assert backends.build_is_deterministic("IVF_FLAT", 2, metric="JACCARD")


def test_rnsg_records_its_graph_builder_and_fast_graphs_keep_recall(data, monkeypatch):
    x, q = data
    params, search = CASES["RNSG"]
    exact = backends.build("RNSG", params, x, "L2")
    assert exact.build_info["graph_builder"] == nsg.EXACT_KNN == nsg.graph_builder(len(x))
    _, truth = backends.exact_search(x, q, K, "L2")
    monkeypatch.setattr(nsg, "FAST_GRAPH_MIN_ROWS", 1000)
    for builder in (nsg.IVF_PROBED, nsg.NN_DESCENT):
        monkeypatch.setattr(nsg, "FAST_GRAPH", builder)
        approx = backends.build("RNSG", params, x, "L2")
        assert approx.build_info["graph_builder"] == builder == nsg.graph_builder(len(x))
        _, found = approx.search(q, K, {"search_length": 60})
        assert np.mean([len(set(a) & set(b)) for a, b in zip(found, truth)]) / K >= 0.8


def test_rnsg_with_too_few_distinct_rows_is_untrainable(data):
    x, _ = data
    with pytest.raises(UntrainableSegmentError, match="distinct"):
        backends.build("RNSG", CASES["RNSG"][0], np.repeat(x[:5], 10, axis=0), "L2")
    with pytest.raises(UntrainableSegmentError, match="nlist=32"):
        backends.build("IVF_FLAT", {"nlist": 32}, x[:10], "L2")


def test_one_dispatch_table_covers_every_index_type_and_metric():
    for name, index_spec in spec.INDEXES.items():
        for metric in index_spec.metrics:
            module = backends.family(name, metric)
            assert callable(module.build) and callable(module.load) and callable(module.deterministic)
    assert set(backends.FAMILIES.values()) == {"flat", "ivf", "nsg", "binary", "hnsw", "annoy"}


def test_backend_modules_import_no_private_names():
    folder = Path(backends.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__future__"]
                assert not private or node.module == "__future__", f"{path.name} imports {private}"
