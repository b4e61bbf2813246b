"""COSINE (issue 20.2): Milvus 2.3 has it for float vectors, so the ``milvus-2.3`` profile offers it on the server
and in memory (computed as Milvus does: the inner product of rows normalised to unit length); Milvus 0.10
refuses it with the reason. The oracle is NumPy's cosine similarity in float64 (conftest's exact scores on
rows divided by their norms), never the code under test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import clustered, exact_topk

from milvus_lab import Engine, lab, numerics, spec
from milvus_lab.engine.persist import PersistError
from milvus_lab.errors import IllegalMetricError, InvalidParameterError
from milvus_lab.lab.parity import memory_profile, parity
from milvus_lab.server import pymilvus2_index_code
from milvus_lab.widgets import IndexForm

SERVER = spec.PROFILES[spec.SERVER_PROFILE]
OLD = spec.PROFILES[spec.DEFAULT_PROFILE]


def _unit(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _cosine(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """NumPy's cosine similarity of every query with every row (nq x n, float64)."""
    return _unit(queries) @ _unit(base).T


@pytest.fixture(scope="module")
def scaled_data():
    """Clustered rows with lengths spread over two orders of magnitude: L2 and IP rank them otherwise than COSINE."""
    rng = np.random.default_rng(5)
    base = clustered(3000, 24, clusters=30, seed=5) * rng.uniform(0.1, 10.0, (3000, 1)).astype(np.float32)
    queries = clustered(40, 24, clusters=30, seed=6) * rng.uniform(0.1, 10.0, (40, 1)).astype(np.float32)
    return base.astype(np.float32), queries.astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Declared once in spec: Milvus 2.3 has it on every float index type, Milvus 0.10 refuses it with the reason
# --------------------------------------------------------------------------------------------------
def test_the_server_profile_has_cosine_on_every_float_index_type():
    assert "COSINE" in SERVER.metrics and "COSINE" not in OLD.metrics
    assert spec.index_types_for_metric("COSINE", profile=spec.SERVER_PROFILE) == list(SERVER.indexes)
    assert spec.index_types_for_metric("COSINE") == []
    assert spec.normalize_metric("cosine", profile=spec.SERVER_PROFILE) == "COSINE"
    assert "COSINE" in spec.DESCENDING_METRICS and spec.library_metric("COSINE") == "IP"


def test_milvus_010_refuses_cosine_with_the_reason():
    with pytest.raises(IllegalMetricError, match="COSINE is not available on Milvus 0.10.*normalise.*IP"):
        spec.normalize_metric("COSINE")
    assert "normalise the vectors" in spec.unavailable_reason("HNSW", dim=8, metric="COSINE")
    with pytest.raises(IllegalMetricError, match="Milvus 0.10 has no COSINE"):
        Engine().create_collection("c", 8, metric_type="COSINE")


def test_the_profile_for_a_metric_is_the_default_when_it_has_it():
    assert spec.profile_for_metric("L2") == spec.profile_for_metric("HAMMING") == spec.DEFAULT_PROFILE
    assert spec.profile_for_metric("cosine") == spec.SERVER_PROFILE == memory_profile("COSINE")
    with pytest.raises(IllegalMetricError, match="unknown metric_type 'EUCLID'"):
        spec.profile_for_metric("EUCLID")


def test_an_engine_refuses_an_unknown_profile():
    with pytest.raises(InvalidParameterError, match="profile='milvus-9'.*milvus-0.10, milvus-2.3"):
        Engine(profile="milvus-9")


def test_code_lines_for_cosine_name_the_metric():
    code = pymilvus2_index_code("HNSW", {"M": 16, "efConstruction": 64}, {"ef": 32}, "COSINE", k=5)
    assert "index_type='HNSW', metric_type='COSINE'" in code
    compile(code, "<code>", "exec")


# --------------------------------------------------------------------------------------------------
# In memory under the milvus-2.3 profile: the inner product of normalised rows
# --------------------------------------------------------------------------------------------------
def test_exact_cosine_neighbours_are_numpys(scaled_data):
    base, queries = scaled_data
    ids, dist = numerics.exact_knn(base, queries, 10, "COSINE")
    scores = _cosine(base, queries)
    assert np.array_equal(ids, np.argsort(-scores, axis=1, kind="stable")[:, :10])
    assert np.allclose(dist, np.take_along_axis(scores, ids, axis=1), atol=1e-5)
    assert np.allclose(numerics.pair_distances(base, queries, ids, "COSINE"), np.take_along_axis(scores, ids, 1))


def test_the_ranking_differs_from_inner_product_on_these_rows(scaled_data):
    """The data can tell COSINE from IP (else the tests below could not fail)."""
    base, queries = scaled_data
    ip = exact_topk(base, queries, 10, "IP")
    cos = np.argsort(-_cosine(base, queries), axis=1, kind="stable")[:, :10]
    assert (ip != cos).mean() > 0.5


@pytest.mark.parametrize("index_type, build, search, least", [
    ("FLAT", {}, {}, 1.0),
    ("IVF_FLAT", {"nlist": 16}, {"nprobe": 16}, 1.0),  # every cell probed: exhaustive
    ("HNSW", {"M": 16, "efConstruction": 200}, {"ef": 256}, 0.99),
    ("IVF_SQ8", {"nlist": 16}, {"nprobe": 16}, 0.9),
])
def test_in_memory_cosine_finds_numpys_neighbours(scaled_data, index_type, build, search, least):
    base, queries = scaled_data
    engine = Engine(build_threshold=1, profile=spec.SERVER_PROFILE)
    try:
        c = engine.create_collection("cos", base.shape[1], metric_type="COSINE", segment_rows=1000)
        c.insert(base)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c.create_index(index_type, build)
        got = c.search(queries, 10, search)
        scores = _cosine(base, queries)
        truth = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        hits = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got.ids, truth)])
        assert hits >= least
        assert (np.diff(got.distances, axis=1) <= 1e-6).all()  # similarities descend
        found = np.take_along_axis(scores, got.ids, axis=1)
        tol = 0.02 if index_type == "IVF_SQ8" else 1e-5  # SQ8 stores rows in 8 bits
        assert np.allclose(got.distances, found, atol=tol)
    finally:
        engine.close()


def test_in_memory_cosine_ignores_the_rows_lengths(scaled_data):
    base, queries = scaled_data
    engine = Engine(build_threshold=1, profile=spec.SERVER_PROFILE)
    try:
        a = engine.create_collection("a", base.shape[1], metric_type="COSINE")
        b = engine.create_collection("b", base.shape[1], metric_type="COSINE")
        a.insert(base)
        b.insert(base * np.linspace(0.5, 50, len(base), dtype=np.float32)[:, None])
        for c in (a, b):
            c.create_index("IVF_FLAT", {"nlist": 16})
        ra, rb = a.search(queries, 10, {"nprobe": 16}), b.search(queries * 7, 10, {"nprobe": 16})
        assert np.array_equal(ra.ids, rb.ids) and np.allclose(ra.distances, rb.distances, atol=1e-5)
    finally:
        engine.close()


def test_an_engine_under_the_server_profile_has_its_rules_and_does_not_save(tmp_path):
    engine = Engine(build_threshold=1, profile=spec.SERVER_PROFILE)
    try:
        c = engine.create_collection("c", 16, metric_type="COSINE")
        c.insert(clustered(300, 16, seed=1))
        with pytest.raises(Exception, match="ANNOY is not available on Milvus 2.3"):
            c.create_index("ANNOY", {"n_trees": 8})
        c.create_index("HNSW", {"M": 100, "efConstruction": 64})  # beyond 0.10's M <= 64, inside 2.3's
        assert "Milvus 2.3" in engine.describe() and "in memory" in engine.describe()
        with pytest.raises(PersistError, match="milvus-2.3 profile cannot be saved"):
            engine.save(tmp_path / "save")
        with pytest.raises(PersistError, match="cannot be saved"):
            c.save(tmp_path / "c")
        assert not (tmp_path / "save").exists() and not (tmp_path / "c").exists()
    finally:
        engine.close()


def test_the_lab_measures_cosine_only_where_the_profile_has_it(scaled_data):
    base, queries = scaled_data
    dataset = lab.from_array(base, queries, metric="COSINE")
    with pytest.raises(IllegalMetricError, match="Milvus 0.10 has no COSINE"):
        lab.measure(dataset, "IVF_FLAT", {"nlist": 16}, {"nprobe": 16}, latency_queries=5, repeats=1)
    engine = Engine(build_threshold=1, profile=spec.SERVER_PROFILE)
    try:
        df = lab.measure(dataset, "IVF_FLAT", {"nlist": 16}, {"nprobe": 16}, target=engine, latency_queries=5,
                         repeats=1)
        assert df["recall"].tolist() == [1.0] and df["metric"].tolist() == ["COSINE"]
    finally:
        engine.close()


def test_the_form_offers_cosine_index_types_where_the_profile_has_them():
    engine = Engine(build_threshold=1, profile=spec.SERVER_PROFILE)
    try:
        c = engine.create_collection("c", 16, metric_type="COSINE")
        c.insert(clustered(500, 16, seed=2))
        form = IndexForm(c, "HNSW", watch=False)
        offered = [t for t in form.types if spec.unavailable_reason(t, dim=16, metric="COSINE",
                                                                     profile=spec.SERVER_PROFILE) is None]
        assert offered == list(SERVER.indexes)
        form.fields["M"].value = 16
        assert form.create() is not None, form.message.text
        assert c.describe_index().index_type == "HNSW"
    finally:
        engine.close()


# --------------------------------------------------------------------------------------------------
# On the server
# --------------------------------------------------------------------------------------------------
@pytest.mark.server
def test_server_cosine_scores_are_numpys_and_ignore_the_rows_lengths(milvus_server, scaled_data):
    from milvus_lab.server import connect

    base, queries = scaled_data
    with connect(milvus_server.uri) as target:  # the session's server: its password is found, not typed
        c = target.create_collection(target.unique_name("cosine"), base.shape[1], metric_type="COSINE")
        c.insert(base * np.linspace(0.5, 50, len(base), dtype=np.float32)[:, None])
        c.create_index("FLAT")
        got = c.search(queries, 10)
        scores = _cosine(base, queries)
        assert np.array_equal(got.ids, np.argsort(-scores, axis=1, kind="stable")[:, :10])
        assert np.allclose(got.distances, np.take_along_axis(scores, got.ids, axis=1), atol=1e-5)


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize("normalize", [True, False], ids=["normalised", "raw"])
def test_cosine_parity_on_glove_recall_equal_within_a_hundredth(milvus_server, normalize):
    from milvus_lab.server import connect

    dataset = lab.load_glove_dataset(20_000, 200, metric="COSINE", normalize=normalize)
    settings = [("IVF_FLAT", {"nlist": 256}, {"nprobe": [8, 32]}), ("HNSW", {"M": 16, "efConstruction": 100},
                                                                     {"ef": [16, 64]})]
    with connect(milvus_server.uri) as target:
        df = parity(dataset, target, settings, latency_queries=20, repeats=1)
    assert df["index_type"].tolist() == ["IVF_FLAT", "IVF_FLAT", "HNSW", "HNSW"]
    assert (df["status_memory"] == "ok").all() and (df["status_server"] == "ok").all(), df["note"].tolist()
    assert (df["recall_diff"].abs() <= 0.01).all(), df[["index_type", "search_params", "recall_memory",
                                                        "recall_server"]]
    assert (df["recall_server"] > 0.6).all() and df["recall_server"].iloc[1] > df["recall_server"].iloc[0]
    assert df.attrs["memory"] == "milvus_lab in memory (Milvus 2.3 rules)"


def test_compare_and_tune_know_the_cosine_index_types_and_010_skips_them_with_the_reason(scaled_data):
    from milvus_lab.lab.arguments import index_types_or_all

    base, queries = scaled_data
    assert index_types_or_all(None, "COSINE") == list(SERVER.indexes)
    assert index_types_or_all(None, "L2") == list(OLD.indexes)
    dataset = lab.from_array(base, queries, metric="COSINE")
    df = lab.compare(dataset, index_types=["IVF_FLAT", "HNSW"])
    assert set(df["status"]) == {"skipped"} and df["note"].str.contains("Milvus 0.10 has no COSINE").all()
