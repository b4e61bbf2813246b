"""The Pythonic core: recall per index type, segment lifecycle, deletes, atomic failures."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from conftest import clustered, exact_topk, recall

from milvus_lab import backends, spec
from milvus_lab.errors import (
    BuildIndexError,
    CollectionNotFoundError,
    IgnoredParameterWarning,
    IllegalCollectionNameError,
    IllegalDimensionError,
    IllegalIdError,
    IllegalIndexTypeError,
    IllegalRecordError,
    IllegalTopKError,
    InvalidParameterError,
    NotFoundError,
    ParamError,
    RawSegmentWarning,
)

GENEROUS = {
    "IVF_FLAT": ({"nlist": 64}, {"nprobe": 32}),
    "IVF_SQ8": ({"nlist": 64}, {"nprobe": 32}),
    "IVF_SQ8H": ({"nlist": 64}, {"nprobe": 32}),
    "IVF_PQ": ({"nlist": 64, "m": 16}, {"nprobe": 32}),
    "RNSG": ({"search_length": 60, "out_degree": 40, "candidate_pool_size": 300, "knng": 60},
             {"search_length": 300}),
    "HNSW": ({"M": 16, "efConstruction": 200}, {"ef": 200}),
    "ANNOY": ({"n_trees": 32}, {"search_k": 20000}),
}


def state(c):
    """Everything observable about a collection, to compare before and after a refused call."""
    return (c.count(), c.index_type, c.index_params, [(s["name"], s["row_count"], s["index_name"], s["sealed"])
                                                      for s in c.segments()], c.list_partitions())


@pytest.mark.parametrize("metric", ["L2", "IP"])
@pytest.mark.parametrize("index", ["FLAT", *GENEROUS])
def test_recall_at_10_per_index_type(engine, data_64, index, metric):
    base, queries = data_64
    if index == "IVF_PQ":  # 8-bit PQ training is the slow part: 1-d sub-vectors on 16-d data keep it short
        base, queries = clustered(4500, 16, seed=1), clustered(100, 16, seed=2)
    if metric == "IP":
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    c = engine.create_collection("rec", base.shape[1], metric_type=metric)
    c.insert(base)
    build, search = GENEROUS.get(index, ({}, {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        report = c.create_index(index, build)
    assert report.fully_indexed
    assert all(s["index_name"] == index for s in c.segments())
    result = c.search(queries, 10, search or None)
    r = recall(result.ids, base, queries, 10, metric)
    if index == "FLAT":
        assert r == 1.0
    else:
        assert r >= 0.9, (index, metric, r)
    # results are sorted in the metric's order
    d = result.distances
    assert (np.diff(d, axis=1) <= 1e-6).all() if metric == "IP" else (np.diff(d, axis=1) >= -1e-6).all()


@pytest.mark.parametrize("metric", spec.BINARY_METRICS)
def test_binary_flat_is_exact(engine, metric):
    rng = np.random.default_rng(3)
    bits = rng.random((500, 64)) < 0.3
    queries_bits = rng.random((20, 64)) < 0.3
    if metric == "SUBSTRUCTURE":
        queries_bits = bits[:20] & (rng.random((20, 64)) < 0.5)
    if metric == "SUPERSTRUCTURE":
        queries_bits = bits[:20] | (rng.random((20, 64)) < 0.2)
    base = np.packbits(bits, axis=1)
    queries = np.packbits(queries_bits, axis=1)
    c = engine.create_collection("bin", 64, metric_type=metric)
    c.insert([row.tobytes() for row in base])
    result = c.search([q.tobytes() for q in queries], 10)
    truth = backends.distances(base, queries, metric)
    for qi in range(len(queries)):
        hits = result.ids[qi][result.ids[qi] >= 0]
        assert len(hits) > 0
        np.testing.assert_allclose(result.distances[qi][: len(hits)], truth[qi, hits], rtol=1e-5)
        if metric not in ("SUBSTRUCTURE", "SUPERSTRUCTURE"):
            kth = np.sort(truth[qi])[9]
            assert (truth[qi, hits] <= kth + 1e-6).all()
        else:
            b = bits[hits]
            q = queries_bits[qi]
            related = ((q & b) == q).all(1) if metric == "SUBSTRUCTURE" else ((q & b) == b).all(1)
            assert related.all()


def test_binary_ivf_flat_hamming_recall(engine):
    rng = np.random.default_rng(4)
    centres = rng.random((20, 128)) < 0.5
    bits = centres[rng.integers(0, 20, 5000)] ^ (rng.random((5000, 128)) < 0.05)
    base = np.packbits(bits, axis=1)
    queries = base[:50]
    c = engine.create_collection("binivf", 128, metric_type="HAMMING")
    c.insert(base)
    c.create_index("IVF_FLAT", {"nlist": 32})
    result = c.search(queries, 10, {"nprobe": 32})
    truth = backends.distances(base, queries, "HAMMING")
    kth = np.sort(truth, axis=1)[:, 9]
    assert (result.distances[:, 9] <= kth + 1e-6).all()  # nprobe = nlist: exact


def test_create_replace_drop_lifecycle(engine, data_64):
    base, queries = data_64
    c = engine.create_collection("life", 64)
    c.insert(base)
    assert c.index_type == "FLAT"
    c.create_index("IVF_FLAT", {"nlist": 32})
    assert c.index_type == "IVF_FLAT" and c.index_params == {"nlist": 32}
    assert c.memory_bytes()["index_bytes"] > 0
    c.create_index("HNSW", {"M": 8, "efConstruction": 64})
    assert {s["index_name"] for s in c.segments()} == {"HNSW"}
    with pytest.raises(InvalidParameterError, match="nprobe"):
        c.search(queries, 5, {"nprobe": 4})  # params of the old index are refused
    c.drop_index()
    assert c.index_type == "FLAT" and c.memory_bytes()["index_bytes"] == 0
    assert {s["index_name"] for s in c.segments()} == {"FLAT"}
    assert recall(c.search(queries, 10).ids, base, queries, 10) == 1.0


def test_background_indexing_of_sealed_segments(engine):
    dim = 64
    c = engine.create_collection("bg", dim, index_file_size=1)  # 1 MB = 4096 rows of 64 floats
    assert c.segment_rows == 4096
    base = clustered(10000, dim, seed=5)
    c.insert(base)
    segs = c.segments()
    assert [s["sealed"] for s in segs] == [True, True, False]
    assert [s["row_count"] for s in segs] == [4096, 4096, 1808]
    with pytest.warns(RawSegmentWarning, match="1,808 rows .*below the build threshold of 4,096"):
        report = c.create_index("IVF_FLAT", {"nlist": 16})
    assert (report.indexed_segments, report.indexed_rows, report.raw_rows) == (2, 8192, 1808)
    stats = c.stats()["partitions"][0]["segments"]
    assert [s["index_name"] for s in stats] == ["IVF_FLAT", "IVF_FLAT", "FLAT"]
    c.insert(clustered(3000, dim, seed=6))  # fills segment 3 -> sealed -> background build
    assert c.wait_for_index(timeout=60)
    names = [(s["name"], s["sealed"], s["index_name"]) for s in c.segments()]
    assert names[2] == ("3", True, "IVF_FLAT") and names[3][2] == "FLAT"
    raw = [s for s in c.segments() if s["index_name"] == "FLAT"]
    assert raw and "open segment" in raw[0]["raw_reason"]


def test_segment_too_small_to_train_stays_raw_and_says_so(engine):
    c = engine.create_collection("small", 16)
    c.insert(clustered(5000, 16))
    with pytest.warns(RawSegmentWarning, match="fewer than IVF_FLAT needs to train"):
        report = c.create_index("IVF_FLAT", {"nlist": 8192})
    assert report.indexed_rows == 0 and report.raw_rows == 5000
    seg = c.segments()[0]
    assert seg["index_name"] == "FLAT" and "nlist" in seg["raw_reason"]


def test_search_merges_indexed_and_raw_segments(engine):
    dim = 64
    c = engine.create_collection("merge", dim, index_file_size=1)
    base = clustered(4096 + 1000, dim, seed=7)
    c.insert(base)
    with pytest.warns(RawSegmentWarning):
        c.create_index("IVF_FLAT", {"nlist": 16})
    assert [s["index_name"] for s in c.segments()] == ["IVF_FLAT", "FLAT"]
    queries = base[[5, 4100, 4500, 10]] + 0.001
    result = c.search(queries, 5, {"nprobe": 16})  # nprobe = nlist: exact on the indexed part too
    truth = exact_topk(base, queries, 5)
    np.testing.assert_array_equal(result.ids, truth)
    true_d = ((base[truth] - queries[:, None, :]) ** 2).sum(-1)
    np.testing.assert_allclose(result.distances, true_d, rtol=1e-4, atol=1e-4)


def test_delete_flush_hides_ids_and_compact_reclaims(engine, data_64):
    base, queries = data_64
    c = engine.create_collection("del", 64)
    ids = c.insert(base)
    c.create_index("IVF_FLAT", {"nlist": 32})
    victims = c.search(queries[:3], 5, {"nprobe": 32}).ids[:, 0]
    c.delete(victims.tolist())
    assert c.count() == len(base)  # not yet flushed
    c.flush()
    assert c.count() == len(base) - len(set(victims.tolist()))
    after = c.search(queries[:3], 5, {"nprobe": 32}).ids
    assert not np.isin(after, victims).any() and (after >= 0).all()
    assert c.get_entity_by_id(victims.tolist()) == [None] * 3
    c.compact()
    assert c.segments()[0]["deleted_rows"] == 0 and c.segments()[0]["index_name"] == "IVF_FLAT"
    assert c.count() == len(base) - 3
    assert not np.isin(c.search(queries[:3], 5, {"nprobe": 32}).ids, victims).any()
    seg = c.segments()[0]["name"]
    assert set(c.list_id_in_segment(seg)) == set(ids.tolist()) - set(victims.tolist())


def test_failed_create_index_leaves_old_index(engine, monkeypatch):
    c = engine.create_collection("fail", 32, index_file_size=1)  # 8192 rows per segment
    c.insert(clustered(20000, 32))
    with pytest.warns(RawSegmentWarning):
        c.create_index("IVF_FLAT", {"nlist": 16})
    before = state(c)
    real_build = backends.build
    calls = []

    def flaky(index_type, params, vectors, metric):
        calls.append(1)
        if len(calls) == 2:
            raise BuildIndexError("simulated out of memory")
        return real_build(index_type, params, vectors, metric)

    monkeypatch.setattr(backends, "build", flaky)
    with pytest.raises(BuildIndexError, match="simulated out of memory.*previous index is unchanged"):
        c.create_index("HNSW", {"M": 8, "efConstruction": 40})
    assert state(c) == before
    assert c.index_type == "IVF_FLAT"


def test_ids_auto_user_never_mixed(engine):
    c = engine.create_collection("ids", 4)
    first = c.insert(np.ones((3, 4)))
    assert first.tolist() == [0, 1, 2]
    with pytest.raises(IllegalIdError, match="never mixed"):
        c.insert(np.ones((2, 4)), ids=[10, 11])
    u = engine.create_collection("uids", 4)
    u.insert(np.ones((2, 4)), ids=[7, 9])
    with pytest.raises(IllegalIdError, match="never mixed"):
        u.insert(np.ones((1, 4)))
    with pytest.raises(IllegalIdError, match=r"already exist.*\[9\]"):
        u.insert(np.ones((1, 4)), ids=[9])
    with pytest.raises(IllegalIdError, match="duplicates"):
        u.insert(np.ones((2, 4)), ids=[20, 20])
    assert u.count() == 2
    u.delete([9])
    u.flush()
    u.insert(np.zeros((1, 4)), ids=[9])  # a deleted id can be reused
    assert u.get_entity_by_id([9])[0].tolist() == [0, 0, 0, 0]


def test_partitions_insert_and_search_by_tag(engine):
    c = engine.create_collection("parts", 8)
    c.create_partition("a")
    ca = c.insert(np.full((5, 8), 1.0), partition_tag="a")
    cd = c.insert(np.full((5, 8), 5.0))
    q = np.full((1, 8), 1.0)
    assert set(c.search(q, 10, partition_tags=["a"]).ids[0][:5].tolist()) == set(ca.tolist())
    assert (c.search(q, 10, partition_tags=["a"]).ids[0][5:] == -1).all()
    assert set(c.search(q, 10, partition_tags=["_default"]).ids[0][:5].tolist()) == set(cd.tolist())
    assert c.search(q, 10).ids[0][:5].tolist() == sorted(ca.tolist())
    with pytest.raises(NotFoundError, match="partition 'zz' does not exist"):
        c.search(q, 3, partition_tags=["zz"])
    c.drop_partition("a")
    assert c.count() == 5 and c.list_partitions() == ["_default"]


def test_padding_when_fewer_hits_than_top_k(engine):
    c = engine.create_collection("pad", 4, metric_type="IP")
    c.insert(np.eye(4))
    r = c.search(np.ones((2, 4)), 6)
    assert (r.ids[:, 4:] == -1).all() and np.isneginf(r.distances[:, 4:]).all()
    e = engine.create_collection("pad2", 4)
    r = e.search(np.ones((1, 4)), 3)
    assert (r.ids == -1).all() and np.isposinf(r.distances).all()


BAD_INPUTS = [
    ("wrong dimension", lambda c: c.insert(np.ones((2, 5))), IllegalDimensionError),
    ("NaN", lambda c: c.insert(np.array([[np.nan, 0, 0, 0]])), IllegalRecordError),
    ("inf query", lambda c: c.search(np.array([[np.inf, 0, 0, 0]]), 1), IllegalRecordError),
    ("non-numeric", lambda c: c.insert([["a", "b", "c", "d"]]), ParamError),
    ("ragged", lambda c: c.insert([[1, 2, 3, 4], [1, 2]]), ParamError),
    ("empty batch", lambda c: c.insert([]), ParamError),
    ("empty array", lambda c: c.insert(np.empty((0, 4))), ParamError),
    ("bytes into float", lambda c: c.insert([b"\x00" * 4]), IllegalRecordError),
    ("negative id", lambda c: c.insert(np.ones((1, 4)), ids=[-1]), ParamError),
    ("ids count", lambda c: c.insert(np.ones((2, 4)), ids=[1]), ParamError),
    ("top_k 0", lambda c: c.search(np.ones((1, 4)), 0), IllegalTopKError),
    ("top_k huge", lambda c: c.search(np.ones((1, 4)), 16385), IllegalTopKError),
    ("top_k float", lambda c: c.search(np.ones((1, 4)), 3.0), ParamError),
    ("top_k bool", lambda c: c.search(np.ones((1, 4)), True), ParamError),
    ("unknown partition", lambda c: c.insert(np.ones((1, 4)), partition_tag="nope"), NotFoundError),
    ("bad partition name", lambda c: c.create_partition("1bad"), InvalidParameterError),
    ("params not dict", lambda c: c.search(np.ones((1, 4)), 1, params=[1]), ParamError),
    ("unknown index", lambda c: c.create_index("IVF_FOO", {}), IllegalIndexTypeError),
    ("binary index on float", lambda c: c.create_index("IVF_FLAT", {"nlist": 0}), InvalidParameterError),
    ("pq on dim 4", lambda c: c.create_index("IVF_PQ", {"nlist": 4, "m": 3}), InvalidParameterError),
    ("unknown segment", lambda c: c.list_id_in_segment("999"), NotFoundError),
]


@pytest.mark.parametrize("label,call,error", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_refused_and_state_unchanged(engine, label, call, error):
    c = engine.create_collection("bad", 4)
    c.insert(np.arange(40, dtype=np.float32).reshape(10, 4))
    before = state(c)
    with pytest.raises(error) as err:
        call(c)
    assert str(err.value)
    assert state(c) == before


def test_collection_names_and_existence(engine):
    with pytest.raises(IllegalCollectionNameError, match="invalid"):
        engine.create_collection("9lives", 4)
    with pytest.raises(IllegalCollectionNameError):
        engine.create_collection("a" * 256, 4)
    with pytest.raises(ParamError):
        engine.create_collection("", 4)
    with pytest.raises(IllegalDimensionError):
        engine.create_collection("x", 0)
    with pytest.raises(IllegalDimensionError, match="multiple of 8"):
        engine.create_collection("x", 12, metric_type="HAMMING")
    with pytest.raises(InvalidParameterError, match="index_file_size"):
        engine.create_collection("x", 4, index_file_size=4097)
    with pytest.raises(CollectionNotFoundError, match="does not exist"):
        engine.get_collection("missing")
    assert engine.list_collections() == []
    c = engine.create_collection("x", 4)
    engine.drop_collection("x")
    with pytest.raises(CollectionNotFoundError):
        c.count()


def test_flat_warns_about_ignored_params(engine):
    c = engine.create_collection("flat", 4)
    c.insert(np.ones((3, 4)))
    with pytest.warns(IgnoredParameterWarning):
        c.search(np.ones((1, 4)), 1, {"nprobe": 3})
    with pytest.warns(IgnoredParameterWarning):
        c.create_index("FLAT", {"nlist": 3})


def test_concurrent_search_insert_and_index(engine):
    dim = 32
    c = engine.create_collection("conc", dim, index_file_size=1)
    c.insert(clustered(9000, dim))
    errors = []
    stop = threading.Event()

    def searcher():
        q = clustered(8, dim, seed=9)
        while not stop.is_set():
            try:
                params = {"nprobe": 4} if c.index_type.startswith("IVF") else None
                r = c.search(q, 5, params)
                assert r.ids.shape == (8, 5)
            except InvalidParameterError:
                pass  # the index type changed between reading it and searching: a clean refusal
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    def inserter():
        for i in range(10):
            c.insert(clustered(1000, dim, seed=100 + i))

    threads = [threading.Thread(target=searcher) for _ in range(2)] + [threading.Thread(target=inserter)]
    for t in threads:
        t.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c.create_index("IVF_FLAT", {"nlist": 16})
        c.create_index("IVF_SQ8", {"nlist": 16})
    threads[-1].join()
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors
    assert c.count() == 19000
    assert c.wait_for_index(60)
    assert all(s["index_name"] == "IVF_SQ8" for s in c.segments() if s["sealed"])


def test_display_shows_a_rich_summary(engine):
    c = engine.create_collection("shown", 8)
    c.insert(np.ones((5, 8)))
    html = c._repr_html_()
    assert "shown" in html and "<table" in html and "FLAT" in html and "0x" not in html
