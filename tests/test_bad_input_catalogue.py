"""The bad-input catalogue: invalid calls across the public API, each with its specific error and code.

Every row runs against the same populated engine (float collection with user ids, a partition and a
built HNSW index; one with a built IVF_FLAT; a binary one; a SUBSTRUCTURE one) and the whole engine state
(collections, counts, partitions, segments, indexes, entities, pending deletes) must be identical before
and after. Rows marked ``facade`` go through the pymilvus-style client, which raises ParamError for wrong
types and returns a non-OK Status with Milvus's code for rule violations.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from milvus_lab import Engine, IndexType, MetricType, Milvus
from milvus_lab.engine.segment import Segment
from milvus_lab.errors import (
    AlreadyExistsError,
    CollectionNotFoundError,
    IllegalCollectionNameError,
    IllegalDimensionError,
    IllegalIdError,
    IllegalIndexTypeError,
    IllegalMetricError,
    IllegalRecordError,
    IllegalTopKError,
    InvalidParameterError,
    MilvusLabError,
    NotFoundError,
    ParamError,
    StatusCode,
)

ROOT = Path(__file__).resolve().parent.parent
DIM = 8
ONE = np.ones((1, DIM), np.float32)


def build_engine() -> Engine:
    e = Engine(build_threshold=16)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = e.create_collection("f", DIM)
        f.create_partition("p1")
        f.insert(rng.normal(size=(60, DIM)).astype(np.float32), ids=list(range(100, 160)))
        f.insert(rng.normal(size=(20, DIM)).astype(np.float32), ids=list(range(200, 220)), partition_tag="p1")
        f.create_index("HNSW", {"M": 8, "efConstruction": 32})
        f.delete([101, 102])  # pending, not flushed
        ivf = e.create_collection("ivf", DIM, metric_type="IP")
        ivf.insert(rng.normal(size=(40, DIM)).astype(np.float32))
        ivf.create_index("IVF_FLAT", {"nlist": 4})
        b = e.create_collection("b", 16, metric_type="HAMMING")
        b.insert([bytes(r) for r in rng.integers(0, 256, (30, 2), dtype=np.uint8)])
        e.create_collection("sub", 16, metric_type="SUBSTRUCTURE")
    return e


def fingerprint(e: Engine) -> str:
    """A digest of everything observable about the engine (and the pending deletes)."""
    h = hashlib.sha256()
    for name in sorted(e.list_collections()):
        c = e.get_collection(name)
        h.update(repr((name, c.dimension, c.metric, c.index_file_size, c.count(), c.index_type, c.index_params,
                       c.index_params_given, c.list_partitions(), c.stats())).encode())
        state = c.snapshot()
        h.update(repr((state.id_mode, state.next_auto_id, state.next_segment_id, state.segment_rows)).encode())
        h.update(repr([(s["name"], s["row_count"], s["deleted_rows"], s["sealed"], s["index_name"])
                       for s in c.segments()]).encode())
        for s in c.segments():
            ids = c.list_id_in_segment(s["name"])
            h.update(np.asarray(ids, np.int64).tobytes())
            if ids:
                h.update(b"".join(np.asarray(v).tobytes() for v in c.get_entity_by_id(ids)))
        pending = (np.concatenate([batch.ids for batch in state.pending_deletes]) if state.pending_deletes
                   else np.empty(0, np.int64))
        h.update(np.sort(pending).tobytes())
    return h.hexdigest()


F = lambda e: e.get_collection("f")
IVF = lambda e: e.get_collection("ivf")
B = lambda e: e.get_collection("b")
SUB = lambda e: e.get_collection("sub")

# (label, call(engine, client), expected exception class, expected status code)
CATALOGUE = [
    # ---- records: types, shapes, values
    ("1-D list of floats", lambda e, m: F(e).insert([1.0] * DIM), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("3-D array", lambda e, m: F(e).insert(np.ones((1, 2, DIM))), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("string records", lambda e, m: F(e).insert("abc"), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("dict records", lambda e, m: F(e).insert({"a": 1}), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("None records", lambda e, m: F(e).insert(None), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("rows of strings", lambda e, m: F(e).insert([["a"] * DIM]), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("ragged rows", lambda e, m: F(e).insert([[1.0] * DIM, [1.0]]), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("empty list", lambda e, m: F(e).insert([]), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("empty array", lambda e, m: F(e).insert(np.empty((0, DIM))), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("object array", lambda e, m: F(e).insert(np.array([[object()] * DIM])), ParamError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("wrong dimension", lambda e, m: F(e).insert(np.ones((2, DIM + 1))), IllegalDimensionError,
     StatusCode.ILLEGAL_DIMENSION),
    ("NaN", lambda e, m: F(e).insert(np.full((1, DIM), np.nan)), IllegalRecordError, StatusCode.ILLEGAL_ROWRECORD),
    ("+inf", lambda e, m: F(e).insert([[np.inf] + [0.0] * (DIM - 1)]), IllegalRecordError,
     StatusCode.ILLEGAL_ROWRECORD),
    ("-inf in the last row", lambda e, m: F(e).insert([[0.0] * DIM, [0.0] * (DIM - 1) + [-np.inf]]),
     IllegalRecordError, StatusCode.ILLEGAL_ROWRECORD),
    ("float64 overflowing float32", lambda e, m: F(e).insert(np.full((1, DIM), 1e39)), IllegalRecordError,
     StatusCode.ILLEGAL_ROWRECORD),
    ("bytes into a float collection", lambda e, m: F(e).insert([b"\x00" * DIM]), IllegalRecordError,
     StatusCode.ILLEGAL_ROWRECORD),
    # ---- ids
    ("negative id", lambda e, m: F(e).insert(ONE, ids=[-1]), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("id above int64", lambda e, m: F(e).insert(ONE, ids=[2**63]), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("float id", lambda e, m: F(e).insert(ONE, ids=[1.0]), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("bool id", lambda e, m: F(e).insert(ONE, ids=[True]), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("string ids", lambda e, m: F(e).insert(ONE, ids="1"), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("float id array", lambda e, m: F(e).insert(ONE, ids=np.array([1.0])), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("uint64 id above int64", lambda e, m: F(e).insert(ONE, ids=np.array([2**63], np.uint64)), ParamError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("2-D id array", lambda e, m: F(e).insert(ONE, ids=np.array([[1]])), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("id count differs", lambda e, m: F(e).insert(np.ones((2, DIM)), ids=[1]), ParamError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("duplicate ids in one batch", lambda e, m: F(e).insert(np.ones((2, DIM)), ids=[7, 7]), IllegalIdError,
     StatusCode.ILLEGAL_VECTOR_ID),
    ("existing id", lambda e, m: F(e).insert(ONE, ids=[100]), IllegalIdError, StatusCode.ILLEGAL_VECTOR_ID),
    ("pending-deleted id reused before flush", lambda e, m: F(e).insert(ONE, ids=[101]), IllegalIdError,
     StatusCode.ILLEGAL_VECTOR_ID),
    ("auto ids into a user-id collection", lambda e, m: F(e).insert(ONE), IllegalIdError,
     StatusCode.ILLEGAL_VECTOR_ID),
    ("user ids into an auto-id collection", lambda e, m: IVF(e).insert(ONE, ids=[10**9]), IllegalIdError,
     StatusCode.ILLEGAL_VECTOR_ID),
    # ---- partitions
    ("unknown partition", lambda e, m: F(e).insert(ONE, ids=[1], partition_tag="nope"), NotFoundError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("partition tag not a str", lambda e, m: F(e).insert(ONE, ids=[1], partition_tag=3), ParamError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("partition tag with a space", lambda e, m: F(e).create_partition("a b"), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("existing partition", lambda e, m: F(e).create_partition("p1"), AlreadyExistsError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("create _default", lambda e, m: F(e).create_partition("_default"), AlreadyExistsError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("drop _default", lambda e, m: F(e).drop_partition("_default"), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("drop unknown partition", lambda e, m: F(e).drop_partition("nope"), NotFoundError, StatusCode.ILLEGAL_ARGUMENT),
    # ---- search
    ("top_k 0", lambda e, m: F(e).search(ONE, 0, {"ef": 10}), IllegalTopKError, StatusCode.ILLEGAL_TOPK),
    ("top_k -1", lambda e, m: F(e).search(ONE, -1, {"ef": 10}), IllegalTopKError, StatusCode.ILLEGAL_TOPK),
    ("top_k 16385", lambda e, m: F(e).search(ONE, 16385, {"ef": 4096}), IllegalTopKError, StatusCode.ILLEGAL_TOPK),
    ("huge top_k", lambda e, m: F(e).search(ONE, 10**30, {"ef": 10}), IllegalTopKError, StatusCode.ILLEGAL_TOPK),
    ("top_k float", lambda e, m: F(e).search(ONE, 2.0, {"ef": 10}), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("top_k bool", lambda e, m: F(e).search(ONE, True, {"ef": 10}), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("top_k str", lambda e, m: F(e).search(ONE, "10", {"ef": 10}), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("query of wrong dimension", lambda e, m: F(e).search(np.ones((1, 3)), 1, {"ef": 10}), IllegalDimensionError,
     StatusCode.ILLEGAL_DIMENSION),
    ("NaN query", lambda e, m: F(e).search(np.full((1, DIM), np.nan), 1, {"ef": 10}), IllegalRecordError,
     StatusCode.ILLEGAL_ROWRECORD),
    ("bytes query on floats", lambda e, m: F(e).search([b"\x00" * DIM], 1, {"ef": 10}), IllegalRecordError,
     StatusCode.ILLEGAL_ROWRECORD),
    ("search params a list", lambda e, m: F(e).search(ONE, 1, [("ef", 10)]), ParamError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("HNSW ef below top_k", lambda e, m: F(e).search(ONE, 20, {"ef": 19}), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("HNSW ef above 4096", lambda e, m: F(e).search(ONE, 1, {"ef": 4097}), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("HNSW ef missing", lambda e, m: F(e).search(ONE, 1, {}), InvalidParameterError, StatusCode.ILLEGAL_ARGUMENT),
    ("HNSW given nprobe", lambda e, m: F(e).search(ONE, 1, {"nprobe": 4}), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("HNSW ef float", lambda e, m: F(e).search(ONE, 1, {"ef": 10.0}), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("HNSW ef bool", lambda e, m: F(e).search(ONE, 1, {"ef": True}), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("IVF nprobe above built nlist", lambda e, m: IVF(e).search(ONE, 1, {"nprobe": 5}), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("IVF nprobe 0", lambda e, m: IVF(e).search(ONE, 1, {"nprobe": 0}), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("partition_tags a str", lambda e, m: F(e).search(ONE, 1, {"ef": 10}, "p1"), ParamError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("unknown partition in search", lambda e, m: F(e).search(ONE, 1, {"ef": 10}, ["nope"]), NotFoundError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("search_in_segment unknown segment", lambda e, m: F(e).search_in_segment([999], ONE, 1, {"ef": 10}),
     NotFoundError, StatusCode.ILLEGAL_ARGUMENT),
    ("search_in_segment non-numeric id", lambda e, m: F(e).search_in_segment(["abc"], ONE, 1, {"ef": 10}),
     ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("search_in_segment empty list", lambda e, m: F(e).search_in_segment([], ONE, 1, {"ef": 10}), ParamError,
     StatusCode.ILLEGAL_ARGUMENT),
    # ---- indexes
    ("unknown index type", lambda e, m: F(e).create_index("IVF_FOO", {}), IllegalIndexTypeError,
     StatusCode.ILLEGAL_INDEX_TYPE),
    ("empty index type", lambda e, m: F(e).create_index("", {}), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("index type None", lambda e, m: F(e).create_index(None, {}), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("nlist 0", lambda e, m: F(e).create_index("IVF_FLAT", {"nlist": 0}), InvalidParameterError,
     StatusCode.ILLEGAL_NLIST),
    ("nlist 65537", lambda e, m: F(e).create_index("IVF_SQ8", {"nlist": 65537}), InvalidParameterError,
     StatusCode.ILLEGAL_NLIST),
    ("nlist a str", lambda e, m: F(e).create_index("IVF_FLAT", {"nlist": "16"}), InvalidParameterError,
     StatusCode.ILLEGAL_NLIST),
    ("nlist a bool", lambda e, m: F(e).create_index("IVF_FLAT", {"nlist": True}), InvalidParameterError,
     StatusCode.ILLEGAL_NLIST),
    ("nlist a float", lambda e, m: F(e).create_index("IVF_FLAT", {"nlist": 16.0}), InvalidParameterError,
     StatusCode.ILLEGAL_NLIST),
    ("misspelt parameter", lambda e, m: F(e).create_index("IVF_FLAT", {"nlsit": 16}), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("IVF_PQ without m", lambda e, m: F(e).create_index("IVF_PQ", {"nlist": 4}), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("IVF_PQ m not dividing dim", lambda e, m: F(e).create_index("IVF_PQ", {"nlist": 4, "m": 3}),
     InvalidParameterError, StatusCode.ILLEGAL_ARGUMENT),
    ("IVF_PQ m above dim", lambda e, m: F(e).create_index("IVF_PQ", {"nlist": 4, "m": 16}), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("RNSG search_length >= candidate_pool_size", lambda e, m: F(e).create_index(
        "RNSG", {"search_length": 60, "out_degree": 10, "candidate_pool_size": 60, "knng": 20}),
     InvalidParameterError, StatusCode.ILLEGAL_ARGUMENT),
    ("HNSW M 65", lambda e, m: F(e).create_index("HNSW", {"M": 65, "efConstruction": 40}), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("HNSW efConstruction 7", lambda e, m: F(e).create_index("HNSW", {"M": 8, "efConstruction": 7}),
     InvalidParameterError, StatusCode.ILLEGAL_ARGUMENT),
    ("ANNOY n_trees 0", lambda e, m: F(e).create_index("ANNOY", {"n_trees": 0}), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("index params a list", lambda e, m: F(e).create_index("IVF_FLAT", [("nlist", 4)]), ParamError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("HNSW on a binary collection", lambda e, m: B(e).create_index("HNSW", {"M": 8, "efConstruction": 40}),
     IllegalIndexTypeError, StatusCode.ILLEGAL_INDEX_TYPE),
    ("IVF_SQ8 on a binary collection", lambda e, m: B(e).create_index("IVF_SQ8", {"nlist": 4}),
     IllegalIndexTypeError, StatusCode.ILLEGAL_INDEX_TYPE),
    ("IVF_FLAT on SUBSTRUCTURE", lambda e, m: SUB(e).create_index("IVF_FLAT", {"nlist": 4}),
     IllegalIndexTypeError, StatusCode.ILLEGAL_INDEX_TYPE),
    # ---- binary records
    ("floats into a binary collection", lambda e, m: B(e).insert(np.ones((1, 2), np.float32)), ParamError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("wrong byte length", lambda e, m: B(e).insert([b"\x01\x02\x03"]), IllegalDimensionError,
     StatusCode.ILLEGAL_DIMENSION),
    ("one bytes object, not a list", lambda e, m: B(e).insert(b"\x01\x02"), ParamError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("strings into a binary collection", lambda e, m: B(e).insert(["ab"]), IllegalRecordError,
     StatusCode.ILLEGAL_ROWRECORD),
    ("uint8 array of wrong width", lambda e, m: B(e).insert(np.zeros((1, 3), np.uint8)), IllegalDimensionError,
     StatusCode.ILLEGAL_DIMENSION),
    ("binary query of wrong length", lambda e, m: B(e).search([b"\x01"], 1), IllegalDimensionError,
     StatusCode.ILLEGAL_DIMENSION),
    # ---- collections
    ("existing collection", lambda e, m: e.create_collection("f", DIM), AlreadyExistsError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("name starting with a digit", lambda e, m: e.create_collection("1abc", DIM), IllegalCollectionNameError,
     StatusCode.ILLEGAL_COLLECTION_NAME),
    ("name of 256 characters", lambda e, m: e.create_collection("a" * 256, DIM), IllegalCollectionNameError,
     StatusCode.ILLEGAL_COLLECTION_NAME),
    ("name with a dash", lambda e, m: e.create_collection("a-b", DIM), IllegalCollectionNameError,
     StatusCode.ILLEGAL_COLLECTION_NAME),
    ("empty name", lambda e, m: e.create_collection("", DIM), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("name not a str", lambda e, m: e.create_collection(5, DIM), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("dimension 0", lambda e, m: e.create_collection("x", 0), IllegalDimensionError, StatusCode.ILLEGAL_DIMENSION),
    ("dimension 32769", lambda e, m: e.create_collection("x", 32769), IllegalDimensionError,
     StatusCode.ILLEGAL_DIMENSION),
    ("dimension a str", lambda e, m: e.create_collection("x", "8"), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("dimension a float", lambda e, m: e.create_collection("x", 8.0), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("binary dimension not a multiple of 8", lambda e, m: e.create_collection("x", 12, metric_type="HAMMING"),
     IllegalDimensionError, StatusCode.ILLEGAL_DIMENSION),
    ("index_file_size 0", lambda e, m: e.create_collection("x", DIM, index_file_size=0), InvalidParameterError,
     StatusCode.ILLEGAL_ARGUMENT),
    ("index_file_size 4097", lambda e, m: e.create_collection("x", DIM, index_file_size=4097),
     InvalidParameterError, StatusCode.ILLEGAL_ARGUMENT),
    ("unknown metric", lambda e, m: e.create_collection("x", DIM, metric_type="COSINE"), IllegalMetricError,
     StatusCode.ILLEGAL_METRIC_TYPE),
    ("unknown collection", lambda e, m: e.get_collection("ghost"), CollectionNotFoundError,
     StatusCode.COLLECTION_NOT_EXISTS),
    ("drop unknown collection", lambda e, m: e.drop_collection("ghost"), CollectionNotFoundError,
     StatusCode.COLLECTION_NOT_EXISTS),
    ("flush a str", lambda e, m: e.flush("f"), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("flush an unknown collection", lambda e, m: e.flush(["f", "ghost"]), CollectionNotFoundError,
     StatusCode.COLLECTION_NOT_EXISTS),
    # ---- entities and segments
    ("unknown segment", lambda e, m: F(e).list_id_in_segment("999"), NotFoundError, StatusCode.ILLEGAL_ARGUMENT),
    ("segment name an int", lambda e, m: F(e).list_id_in_segment(3), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("delete a negative id", lambda e, m: F(e).delete([5, -1]), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("delete nothing", lambda e, m: F(e).delete([]), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("delete a str", lambda e, m: F(e).delete("1"), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("get no entity", lambda e, m: F(e).get_entity_by_id([]), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    ("get a float id", lambda e, m: F(e).get_entity_by_id([1.5]), ParamError, StatusCode.ILLEGAL_ARGUMENT),
    # ---- the pymilvus facade: wrong types raise ParamError, rule violations return their Status code
    ("facade: metric INVALID", lambda e, m: m.create_collection(
        {"collection_name": "x", "dimension": DIM, "metric_type": MetricType.INVALID}), ParamError, None),
    ("facade: index type 100", lambda e, m: m.create_index("f", 100, {}), ParamError, None),
    ("facade: top_k str", lambda e, m: m.search("f", "3", ONE.tolist(), params={"ef": 10}), ParamError, None),
    ("facade: ids not ints", lambda e, m: m.insert("f", ONE.tolist(), ids=["1"]), ParamError, None),
    ("facade: unknown key in param", lambda e, m: m.create_collection(
        {"collection_name": "x", "dimension": DIM, "dim": 3}), ParamError, None),
    ("facade: search unknown collection", lambda e, m: m.search("ghost", 3, ONE.tolist()), None,
     StatusCode.COLLECTION_NOT_EXISTS),
    ("facade: nlist 0", lambda e, m: m.create_index("ivf", IndexType.IVF_FLAT, {"nlist": 0}), None,
     StatusCode.ILLEGAL_NLIST),
    ("facade: NaN insert", lambda e, m: m.insert("ivf", [[float("nan")] * DIM]), None, StatusCode.ILLEGAL_ROWRECORD),
    ("facade: wrong dimension", lambda e, m: m.insert("ivf", [[0.0] * (DIM + 1)]), None,
     StatusCode.ILLEGAL_DIMENSION),
    ("facade: existing id", lambda e, m: m.insert("f", ONE.tolist(), ids=[100]), None, StatusCode.ILLEGAL_VECTOR_ID),
    ("facade: top_k 0", lambda e, m: m.search("f", 0, ONE.tolist(), params={"ef": 10}), None,
     StatusCode.ILLEGAL_TOPK),
    ("facade: HNSW on binary", lambda e, m: m.create_index("b", IndexType.HNSW, {"M": 8, "efConstruction": 40}),
     None, StatusCode.ILLEGAL_INDEX_TYPE),
    ("facade: bad collection name", lambda e, m: m.create_collection({"collection_name": "1x", "dimension": DIM}),
     None, StatusCode.ILLEGAL_COLLECTION_NAME),
    ("facade: unknown metric value", lambda e, m: m.create_collection(
        {"collection_name": "x", "dimension": DIM, "metric_type": 100}), ParamError, None),
]


@pytest.fixture(scope="module")
def populated():
    e = build_engine()
    yield e, Milvus(engine=e), fingerprint(e)
    e.close()


def test_the_catalogue_is_large_enough():
    assert len(CATALOGUE) >= 60
    assert len({row[0] for row in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("label,call,error,code", CATALOGUE, ids=[row[0] for row in CATALOGUE])
def test_invalid_call_gives_its_error_and_changes_nothing(populated, label, call, error, code):
    engine, client, before = populated
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if error is None:  # facade rule violation: a non-OK Status with Milvus's code
            out = call(engine, client)
            status = out[0] if isinstance(out, tuple) else out
            assert not status.OK() and status.code == code, status
            assert status.message
        else:
            with pytest.raises(error) as caught:
                call(engine, client)
            if code is not None:
                assert caught.value.code == code, (caught.value.code, code)
            assert isinstance(caught.value, MilvusLabError) and len(str(caught.value)) > 15
    assert fingerprint(engine) == before, f"{label} changed the engine"


# ------------------------------------------------------------------------------------------------------
# engine bugs found while writing the catalogue
# ------------------------------------------------------------------------------------------------------
def test_complex_vectors_are_refused():
    e = Engine()
    try:
        c = e.create_collection("c", 2)
        with pytest.raises(ParamError), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c.insert(np.array([[1 + 2j, 3 + 0j]]))
        assert c.count() == 0
    finally:
        e.close()


def test_insert_is_all_or_nothing_when_a_segment_allocation_fails(monkeypatch):
    e = Engine()
    try:
        c = e.create_collection("m", 4, segment_rows=10)
        real = Segment.append
        calls = []

        def flaky(self, vectors, ids):
            calls.append(1)
            if len(calls) == 2:
                raise MemoryError("simulated: cannot allocate the second segment")
            real(self, vectors, ids)

        monkeypatch.setattr(Segment, "append", flaky)
        with pytest.raises((MemoryError, MilvusLabError)):
            c.insert(np.ones((15, 4), np.float32))
        monkeypatch.setattr(Segment, "append", real)
        assert c.count() == 0
        ids = c.insert(np.ones((3, 4), np.float32))
        c.flush()
        stored = [i for s in c.segments() for i in c.list_id_in_segment(s["name"])]
        assert sorted(stored) == sorted(ids.tolist())
    finally:
        e.close()


@pytest.mark.slow
def test_oversized_batch_gives_a_specific_error_and_changes_nothing():
    code = textwrap.dedent("""
        import resource, sys, numpy as np
        from milvus_lab import Engine
        from milvus_lab.errors import MilvusLabError
        e = Engine()
        c = e.create_collection("x", 8)
        c.insert(np.ones((3, 8), np.float32))
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))
        big = np.broadcast_to(np.float32(1), (2**26, 8))  # a 2 GiB batch that costs nothing to create
        try:
            c.insert(big)
            print("accepted")
        except MilvusLabError as exc:
            print("refused", type(exc).__name__, c.count())
        except MemoryError:
            print("MemoryError", c.count())
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[0] == "refused" and proc.stdout.split()[-1] == "3", proc.stdout
