"""Collection and Engine state as values: snapshot, restore, the consistency check, untrainable segments."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from milvus_lab import Engine, backends
from milvus_lab.engine import CollectionState, EngineState, PendingDelete, SegmentState
from milvus_lab.errors import AlreadyExistsError, InvalidParameterError, UntrainableSegmentError
from milvus_lab.protocol import IndexedCollection, IndexInfo, Target

DIM = 8


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


#: the shared `engine` fixture (conftest) builds an index once a segment holds this many rows
ENGINE_BUILD_THRESHOLD = 16


def _same_search(a, b, queries, k, params=None):
    ra, rb = a.search(queries, k, params), b.search(queries, k, params)
    np.testing.assert_array_equal(ra.ids, rb.ids)
    np.testing.assert_allclose(ra.distances, rb.distances, rtol=1e-6)


def test_snapshot_restore_is_exact_with_indexes_partitions_and_pending_deletes(engine):
    c = engine.create_collection("src", DIM, segment_rows=40)
    c.create_partition("p")
    c.insert(_vectors(100), ids=list(range(100)))
    c.insert(_vectors(30, 1), ids=list(range(100, 130)), partition_tag="p")
    c.create_index("IVF_FLAT", {"nlist": 4})
    c.delete([1, 2, 3])
    c.flush()
    c.delete([4, 105])  # pending: travels with the state
    state = c.snapshot()
    assert isinstance(state, CollectionState) and all(isinstance(s, SegmentState) for s in state.segments)
    assert state.pending_deletes and isinstance(state.pending_deletes[0], PendingDelete)
    d = engine.restore_collection(state, name="copy")
    assert d.segments() == c.segments() and d.describe_index() == c.describe_index() == IndexInfo(
        "IVF_FLAT", {"nlist": 4})
    _same_search(c, d, _vectors(5, 9), 7, {"nprobe": 4})
    d.flush()
    c.flush()
    assert d.count() == c.count() == 125
    with pytest.raises(Exception, match="ids already exist"):  # user-id mode and live ids travelled too
        d.insert(_vectors(1), ids=[10])
    d.insert(_vectors(1), ids=[4])  # deleted by the pending delete, so free again


def test_restore_builds_indexes_the_state_lacks_and_refuses_a_taken_name(engine):
    c = engine.create_collection("src", DIM, segment_rows=40)
    c.insert(_vectors(100))
    c.create_index("HNSW", {"M": 8, "efConstruction": 32})
    state = c.snapshot()
    bare = dataclasses.replace(state, segments=tuple(dataclasses.replace(s, index=None) for s in state.segments))
    d = engine.restore_collection(bare, name="rebuilt")
    assert [s["index_name"] for s in d.segments()] == [s["index_name"] for s in c.segments()]
    with pytest.raises(AlreadyExistsError):
        engine.restore_collection(state)
    assert engine.list_collections() == ["src", "rebuilt"]


def test_engine_snapshot_and_restore_keep_settings_and_collections(engine):
    engine.create_collection("a", DIM).insert(_vectors(10))
    engine.create_collection("b", 16, metric_type="HAMMING").insert([bytes(2)] * 3)
    state = engine.snapshot()
    assert isinstance(state, EngineState) and state.build_threshold == 16
    other = Engine.restore(state)
    try:
        assert other.list_collections() == ["a", "b"] and other.build_threshold == 16
        assert other["a"].count() == 10 and other["b"].count() == 3
    finally:
        other.close()


@pytest.mark.parametrize("change, match", [
    (lambda s: dataclasses.replace(s, next_segment_id=1), "next_segment_id"),
    (lambda s: dataclasses.replace(s, next_auto_id=0), "next_auto_id"),
    (lambda s: dataclasses.replace(s, index_type="NOPE"), "index_type"),
    (lambda s: dataclasses.replace(s, index_params={"nlist": 0}), "index parameters"),
    (lambda s: dataclasses.replace(s, partitions=("p",)), "partitions"),
    (lambda s: dataclasses.replace(s, segments=s.segments + s.segments), "segment id"),
    (lambda s: dataclasses.replace(s, segments=(dataclasses.replace(
        s.segments[0], ids=s.segments[0].ids[:-1]),) + s.segments[1:]), "shape"),
    (lambda s: dataclasses.replace(s, segment_rows=0), "segment_rows"),
    (lambda s: dataclasses.replace(s, pending_deletes=(PendingDelete(np.array([1]), {1: 10**6}),)), "beyond"),
])
def test_restore_refuses_an_inconsistent_state_and_changes_nothing(engine, change, match):
    c = engine.create_collection("src", DIM, segment_rows=40)
    c.insert(_vectors(100))
    c.create_index("IVF_FLAT", {"nlist": 4})
    with pytest.raises(InvalidParameterError, match=match):
        engine.restore_collection(change(c.snapshot()), name="bad")
    assert engine.list_collections() == ["src"]


def test_segment_rows_is_a_validated_public_setting(engine):
    with pytest.raises(InvalidParameterError, match="segment_rows"):
        engine.create_collection("x", DIM, segment_rows=0)
    with pytest.raises(InvalidParameterError, match="segment_rows"):
        Engine(segment_rows=True)
    e = Engine(segment_rows=25)
    try:
        c = e.create_collection("x", DIM)
        c.insert(_vectors(60))
        assert c.segment_rows == 25 and [s["row_count"] for s in c.segments()] == [25, 25, 10]
        c.segment_rows = 50
        with pytest.raises(InvalidParameterError):
            c.segment_rows = -1
        assert c.segment_rows == 50
    finally:
        e.close()


def test_an_untrainable_segment_stays_raw_with_the_reason(engine, monkeypatch):
    c = engine.create_collection("src", DIM, segment_rows=60)
    c.insert(_vectors(120))
    c.insert(np.zeros((60, DIM), np.float32))  # one segment of identical rows
    real = backends.build

    def build(index_type, params, vectors, metric):
        if not vectors.any():
            raise UntrainableSegmentError("RNSG needs at least 20 distinct rows; this segment has 1")
        return real(index_type, params, vectors, metric)

    monkeypatch.setattr(backends, "build", build)
    params = {"search_length": 40, "out_degree": 10, "candidate_pool_size": 200, "knng": 30}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = c.create_index("RNSG", params)
    assert report.indexed_segments == 2 and report.raw_segments == 1 and report.raw_rows == 60
    assert any("distinct rows" in str(w.message) for w in caught)
    raw = [s for s in c.segments() if s["index_name"] == "FLAT"]
    assert len(raw) == 1 and "distinct rows" in raw[0]["raw_reason"]
    assert c.search(np.zeros((1, DIM), np.float32), 3, {"search_length": 40}).ids.shape == (1, 3)


def test_engine_is_a_target_and_collection_an_indexed_collection(engine):
    assert isinstance(engine, Target) and engine.profile == "milvus-0.10" and "0.10" in engine.describe()
    c = engine.create_collection("t", DIM, metric_type="IP", index_file_size=16)
    assert isinstance(c, IndexedCollection) and c.profile == "milvus-0.10" and c.metric == "IP"
    assert engine.has_collection("t")
    c.insert(_vectors(64))
    report = c.create_index("IVF_FLAT", {"nlist": 4})
    assert report.build_seconds > 0 and report.fully_indexed and report.indexed_rows == 64 == c.count()
    assert c.describe_index() == IndexInfo("IVF_FLAT", {"nlist": 4})
    hits = c.search(_vectors(2, 3), 5, {"nprobe": 4})
    assert hits.ids.shape == hits.distances.shape == (2, 5)
    assert c.stats()["row_count"] == 64
    c.drop_index()
    assert c.describe_index() == IndexInfo("FLAT", {})
    engine.drop_collection("t")
    assert not engine.has_collection("t")


def test_rnsg_on_a_segment_of_identical_rows_keeps_it_raw_and_searches_it_exactly(engine):
    c = engine.create_collection("rnsg", DIM, segment_rows=200)
    c.insert(_vectors(200))
    c.insert(np.ones((200, DIM), np.float32), ids=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = c.create_index("RNSG", {"search_length": 40, "out_degree": 10, "candidate_pool_size": 200,
                                         "knng": 30})
    assert (report.indexed_segments, report.raw_segments, report.raw_rows) == (1, 1, 200)
    reasons = [s["raw_reason"] for s in c.segments()]
    assert reasons[0] is None and "distinct" in reasons[1]
    hits = c.search(np.ones((1, DIM), np.float32), 3, {"search_length": 40})
    assert (hits.ids[0] >= 200).all() and (hits.distances[0] == 0).all()  # the raw segment, searched exactly


def test_numpy_integer_counters_are_integers_to_restore_save_and_load_alike(engine, tmp_path):
    """State, save and load count integers one way (spec.as_int): NumPy integers yes, bools no."""
    from milvus_lab.engine.persist import load_collection, save_collection

    c = engine.create_collection("src", DIM, segment_rows=40)
    c.insert(_vectors(50))
    state = c.snapshot()
    numpy_state = dataclasses.replace(state, next_auto_id=np.int64(state.next_auto_id),
                                      next_segment_id=np.int32(state.next_segment_id),
                                      segment_rows=np.int64(state.segment_rows))
    restored = engine.restore_collection(numpy_state, name="np_counters")
    assert restored.count() == 50 and restored.snapshot().next_auto_id == state.next_auto_id
    loaded = load_collection(engine, save_collection(numpy_state, tmp_path / "save"), name="loaded")
    _same_search(c, loaded, _vectors(3, 5), 4)
    assert loaded.snapshot().next_segment_id == state.next_segment_id
    for flag in (True, np.bool_(True)):
        with pytest.raises(InvalidParameterError, match="next_segment_id"):
            engine.restore_collection(dataclasses.replace(state, next_segment_id=flag), name="bad")
    assert sorted(engine.list_collections()) == ["loaded", "np_counters", "src"]


@pytest.mark.parametrize("array", [np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float64), np.zeros(3, np.int64),
                                   np.zeros((3, 5), np.float32), np.zeros((2, 3, 4), np.float32),
                                   np.zeros(3, np.bool_), np.empty(3, object)])
@pytest.mark.parametrize("want_dtype, want_shape", [(np.float32, (3, 4)), (np.float32, (None, 4)),
                                                    (np.int64, (None,)), (np.bool_, (3,))])
def test_layout_problem_agrees_with_numpy_on_dtype_and_shape(array, want_dtype, want_shape):
    from milvus_lab.engine.state import layout_problem

    fits = array.dtype == want_dtype and array.ndim == len(want_shape) and all(
        w is None or w == n for w, n in zip(want_shape, array.shape))
    problem = layout_problem("rows", array.dtype, array.shape, np.dtype(want_dtype), want_shape)
    assert (problem is None) == fits
    if problem is not None:
        assert problem.startswith("rows has ") and ("dtype" in problem) == (array.dtype != want_dtype)
