"""Values a library cannot hold (issue 20, item 5): every numeric parameter on every entry point, at and beyond
the largest values of the C types the libraries keep them in (int32 2**31 - 1, uint32 2**32 - 1, int64
2**63 - 1), as Python ints, huge ints and NumPy integer scalars.

The oracle is the documented ranges, written out here from the reference's tables and the README's caps (not
read from milvus_lab.spec): a value inside them is accepted and gives the right answer; any other value is refused
with milvus_lab's own exception (the engine's typed error with its status code, a non-OK Status or a
ParamError from the facade, a refusal on the form), whose message names the parameter and the value. No
OverflowError, TypeError or RuntimeError of faiss, hnswlib or annoy ever reaches the caller, and nothing
wraps around: ANNOY ``search_k`` at its cap (annoy's C int) inspects the whole forest, so its answer is the
exact one.
"""

from __future__ import annotations

import re
import types
import warnings
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from milvus_lab import Engine, Milvus, spec
from milvus_lab.errors import (
    IllegalDimensionError,
    IllegalTopKError,
    InvalidParameterError,
    MilvusLabError,
    NotFoundError,
    ParamError,
    StatusCode,
    UntrainableSegmentError,
)

INT32_MAX, UINT32_MAX, INT64_MAX = 2**31 - 1, 2**32 - 1, 2**63 - 1
#: the cap the README documents for ANNOY search_k (annoy keeps it in a C int)
SEARCH_K_CAP = INT32_MAX
#: Python ints at the edges of each C type, beyond them, and far beyond
PY_INTS = [INT32_MAX - 1, INT32_MAX, INT32_MAX + 1, UINT32_MAX, UINT32_MAX + 1, INT64_MAX, INT64_MAX + 1,
           2**64 - 1, 2**64, 10**30, 10**400, -(2**31), -(2**31) - 1, -(2**63), -(2**63) - 1]
#: the same edges as NumPy scalars (what a value read from an array is)
NP_INTS = [np.int32(INT32_MAX), np.int64(INT32_MAX + 1), np.uint32(UINT32_MAX), np.int64(INT64_MAX),
           np.uint64(INT64_MAX + 1), np.uint64(2**64 - 1), np.int64(-(2**63)), np.int32(-(2**31))]
VALUES = PY_INTS + NP_INTS
#: any integer hypothesis likes, and the edges above
INTEGERS = st.one_of(st.integers(), st.integers(-(2**70), 2**70), st.sampled_from(PY_INTS),
                     st.integers(0, len(NP_INTS) - 1).map(lambda i: NP_INTS[i]))

DIM, ROWS, TOP_K = 16, 600, 10
BUILD = {"FLAT": {}, "IVF_FLAT": {"nlist": 8}, "IVF_SQ8": {"nlist": 8}, "IVF_SQ8H": {"nlist": 8},
         "IVF_PQ": {"nlist": 8, "m": 4}, "RNSG": {"search_length": 45, "out_degree": 30, "candidate_pool_size": 100,
                                                  "knng": 50},
         "HNSW": {"M": 8, "efConstruction": 40}, "ANNOY": {"n_trees": 4}}


def shown(value: Any) -> str:
    """How a message prints an integer value (digits; a very long one by its size)."""
    number = int(value)
    return str(number) if number.bit_length() <= 256 else f"<an integer of {number.bit_length()} bits>"


# --------------------------------------------------------------------------------------------------
# The oracle: the documented ranges (the reference's sections 2-4 and the README's caps)
# --------------------------------------------------------------------------------------------------
def search_allowed(name: str, value: int, top_k: int, built: dict[str, int]) -> bool:
    return {"nprobe": lambda v: 1 <= v <= built.get("nlist", 0),
            "search_length": lambda v: 10 <= v <= 300,
            "ef": lambda v: top_k <= v <= 4096,
            "search_k": lambda v: v == -1 or top_k <= v <= SEARCH_K_CAP}[name](value)


BUILD_RANGES = {"nlist": (1, 65536), "M": (4, 64), "efConstruction": (8, 512), "n_trees": (1, 1024),
                "search_length": (10, 300), "out_degree": (5, 300), "candidate_pool_size": (50, 1000),
                "knng": (5, 300)}
SEARCH_PARAM = {"IVF_FLAT": "nprobe", "IVF_SQ8": "nprobe", "IVF_SQ8H": "nprobe", "IVF_PQ": "nprobe",
                "RNSG": "search_length", "HNSW": "ef", "ANNOY": "search_k"}


def exact_ids(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    d = ((queries.astype(np.float64)[:, None, :] - base.astype(np.float64)[None, :, :]) ** 2).sum(-1)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def refused_naming(exc: BaseException, name: str, value: Any) -> None:
    text = str(exc)
    assert name in text, f"{type(exc).__name__} does not name {name}: {text}"
    assert shown(value) in text, f"{type(exc).__name__} does not show the value {shown(value)}: {text}"


# --------------------------------------------------------------------------------------------------
# Fixtures: one small collection per index type, built once
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base() -> np.ndarray:
    return np.random.default_rng(20).normal(size=(ROWS, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return np.random.default_rng(21).normal(size=(5, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def indexed_engine(base):
    """One collection per index type (and a binary IVF_FLAT), each built on ``base``."""
    eng = Engine(build_threshold=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for index_type, params in BUILD.items():
            c = eng.create_collection(index_type.lower(), DIM)
            c.insert(base)
            c.create_index(index_type, params)
            assert c.segments()[0]["index_name"] == index_type
        binary = eng.create_collection("binary", 64, metric_type="HAMMING")
        binary.insert(np.random.default_rng(22).integers(0, 256, (ROWS, 8), dtype=np.uint8))
        binary.create_index("IVF_FLAT", {"nlist": 8})
    yield eng
    eng.close()


def call(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """(result, None) or (None, the exception) with warnings silenced; a foreign exception fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(), None
        except MilvusLabError as exc:
            return None, exc
        except Exception as exc:  # noqa: BLE001 - the property under test
            pytest.fail(f"a foreign {type(exc).__name__} escaped: {exc}")


# --------------------------------------------------------------------------------------------------
# The Pythonic engine: search parameters and top_k
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("index_type", list(SEARCH_PARAM))
def test_engine_search_parameters_at_c_type_edges_are_accepted_in_range_or_refused_naming_them(
        indexed_engine, base, queries, index_type):
    name = SEARCH_PARAM[index_type]
    collection = indexed_engine[index_type.lower()]
    for value in VALUES:
        result, error = call(lambda value=value: collection.search(queries, TOP_K, {name: value}))
        if search_allowed(name, int(value), TOP_K, BUILD[index_type]):
            assert error is None, f"{name}={value!r} is allowed but refused: {error}"
            assert result.ids.shape == (len(queries), TOP_K) and (result.ids >= 0).all()
        else:
            assert isinstance(error, InvalidParameterError) and error.code == StatusCode.ILLEGAL_ARGUMENT, error
            refused_naming(error, name, value)


def test_annoy_search_k_above_its_c_int_is_refused_with_the_documented_cap(indexed_engine, queries):
    annoy = indexed_engine["annoy"]
    for value in (SEARCH_K_CAP + 1, 2**32, 2**63, np.uint64(2**64 - 1), 10**400):
        _, error = call(lambda value=value: annoy.search(queries, TOP_K, {"search_k": value}))
        assert isinstance(error, InvalidParameterError)
        assert f"search_k <= {SEARCH_K_CAP}" in str(error) and "C int" in str(error), str(error)


def test_annoy_search_k_at_its_cap_inspects_the_whole_forest_so_the_answer_is_exact(indexed_engine, base, queries):
    """Nothing wraps around at the cap: annoy collects every item, so the top-k is the exact top-k."""
    found = indexed_engine["annoy"].search(queries, TOP_K, {"search_k": SEARCH_K_CAP}).ids
    assert (found == exact_ids(base, queries, TOP_K)).all()
    found = indexed_engine["annoy"].search(queries, TOP_K, {"search_k": np.int32(SEARCH_K_CAP)}).ids
    assert (found == exact_ids(base, queries, TOP_K)).all()


@pytest.mark.parametrize("index_type", ["FLAT", "HNSW", "ANNOY", "IVF_FLAT"])
def test_engine_top_k_at_c_type_edges(indexed_engine, queries, index_type):
    collection = indexed_engine[index_type.lower()]
    params = {} if index_type == "FLAT" else {SEARCH_PARAM[index_type]: {"HNSW": 4096, "ANNOY": -1}.get(index_type, 8)}
    for value in VALUES:
        result, error = call(lambda value=value: collection.search(queries, value, params))
        if 1 <= int(value) <= 16384:
            assert error is None and result.ids.shape == (len(queries), int(value)), error
        else:
            assert isinstance(error, IllegalTopKError) and error.code == StatusCode.ILLEGAL_TOPK, error
            refused_naming(error, "top_k", value)


def test_binary_ivf_nprobe_at_c_type_edges(indexed_engine):
    collection = indexed_engine["binary"]
    query = [bytes(8)]
    for value in VALUES:
        _, error = call(lambda value=value: collection.search(query, TOP_K, {"nprobe": value}))
        if 1 <= int(value) <= 8:
            assert error is None, error
        else:
            assert isinstance(error, InvalidParameterError), error
            refused_naming(error, "nprobe", value)


# --------------------------------------------------------------------------------------------------
# The engine: build parameters, collection settings, ids, segments
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("index_type", [t for t in BUILD if t != "FLAT"])
def test_engine_build_parameters_at_c_type_edges_are_refused_and_leave_the_index(indexed_engine, index_type):
    """Every boundary value is beyond every build range of Milvus 0.10: refused naming the parameter, with
    the old index still in place."""
    collection = indexed_engine[index_type.lower()]
    for name in BUILD[index_type]:
        for value in VALUES:
            params = {**BUILD[index_type], name: value}
            _, error = call(lambda params=params: collection.create_index(index_type, params))
            low, high = BUILD_RANGES.get(name, (1, 96))
            assert not low <= int(value) <= high
            assert isinstance(error, InvalidParameterError), f"{name}={value!r}: {error}"
            expected = StatusCode.ILLEGAL_NLIST if name == "nlist" else StatusCode.ILLEGAL_ARGUMENT
            assert error.code == expected
            refused_naming(error, name, value)
            assert collection.describe_index().params == BUILD[index_type]


def test_collection_settings_at_c_type_edges():
    engine = Engine()
    try:
        for value in VALUES:
            _, error = call(lambda value=value: engine.create_collection("d", value))
            assert isinstance(error, IllegalDimensionError) and error.code == StatusCode.ILLEGAL_DIMENSION, error
            refused_naming(error, "dimension", value)
            _, error = call(lambda value=value: engine.create_collection("s", DIM, value))
            assert isinstance(error, InvalidParameterError), error
            refused_naming(error, "index_file_size", value)
        assert engine.list_collections() == []
    finally:
        engine.close()


def test_segment_rows_and_build_threshold_are_python_counts_any_positive_size_works(base, queries):
    """Rows per segment and the build threshold are only compared with row counts, never handed to a C
    library: any positive int is accepted and the collection still answers exactly; others are refused."""
    for value in VALUES:
        engine, error = call(lambda value=value: Engine(build_threshold=value, segment_rows=value))
        if int(value) < 1:
            assert error is not None and ("build_threshold" in str(error) or "segment_rows" in str(error))
            continue
        assert error is None, f"{value!r}: {error}"  # NumPy integers too, for both settings alike
        assert type(engine.build_threshold) is int and engine.build_threshold == int(value)
        assert type(engine.segment_rows) is int and engine.segment_rows == int(value)
        try:
            c = engine.create_collection("rows", DIM)
            c.insert(base[:50])
            assert c.segments()[0]["row_count"] == 50
            assert (c.search(queries, 3).ids == exact_ids(base[:50], queries, 3)).all()
        finally:
            engine.close()


def test_int64_ids_round_trip_at_their_edges_and_beyond_is_refused(base):
    engine = Engine()
    try:
        c = engine.create_collection("ids", DIM)
        edge = [INT32_MAX, INT32_MAX + 1, UINT32_MAX + 1, INT64_MAX - 1, INT64_MAX]
        c.insert(base[:5], ids=[edge[0], np.int64(edge[1]), np.uint64(edge[2]), edge[3], np.int64(edge[4])])
        got = c.get_entity_by_id([INT64_MAX, np.uint64(INT64_MAX - 1), INT32_MAX])
        assert np.array_equal(np.asarray(got), base[[4, 3, 0]])
        hit = c.search(base[4:5], 1)
        assert hit.ids[0, 0] == INT64_MAX  # exact: no float round trip on the way
        for value in (INT64_MAX + 1, 2**64, np.uint64(INT64_MAX + 1), np.uint64(2**64 - 1), 10**400, -1,
                      -(2**63)):
            before = c.count()
            for what, fn in (("insert", lambda v=value: c.insert(base[5:6], ids=[v])),
                             ("get_entity_by_id", lambda v=value: c.get_entity_by_id([v])),
                             ("delete", lambda v=value: c.delete([v]))):
                _, error = call(fn)
                assert isinstance(error, ParamError), f"{what}({value!r}): {error}"
                assert "ids" in str(error) or "id_array" in str(error)
            assert c.count() == before
            _, error = call(lambda v=value: c.insert(base[5:6], ids=np.array([v], dtype=np.uint64))
                            if 0 <= int(v) < 2**64 else c.insert(base[5:6], ids=[v]))
            assert isinstance(error, ParamError) and shown(value) in str(error), error
        c.delete([INT64_MAX])
        c.flush()
        assert c.get_entity_by_id([INT64_MAX]) == [None] and c.count() == 4
    finally:
        engine.close()


def test_segment_names_and_file_ids_at_c_type_edges_are_not_found(indexed_engine, queries):
    collection = indexed_engine["flat"]
    for value in VALUES:
        _, error = call(lambda value=value: collection.search_in_segment([value], queries, 1))
        assert isinstance(error, NotFoundError), error
        _, error = call(lambda value=value: collection.list_id_in_segment(str(int(value))))
        assert isinstance(error, (NotFoundError, ParamError)), error


def test_build_threshold_takes_numpy_integers_like_segment_rows_and_refuses_others_naming_it():
    engine = Engine(build_threshold=np.int64(5), segment_rows=np.int64(7))
    try:
        assert (engine.build_threshold, engine.segment_rows) == (5, 7)
        engine.set_build_threshold(np.uint32(9))
        assert type(engine.build_threshold) is int and engine.build_threshold == 9
        for value in (0, np.int64(-1), 2.0, np.float64(5), True, np.bool_(True), "5", -(2**63) - 1):
            _, error = call(lambda value=value: engine.set_build_threshold(value))
            assert isinstance(error, InvalidParameterError) and "build_threshold" in str(error), error
            assert engine.build_threshold == 9
    finally:
        engine.close()


def test_search_in_segment_refuses_segment_ids_that_are_not_integers_naming_them(indexed_engine, queries):
    """1.7 is not segment 1: a float, a bool or a string that is not plain decimal digits is refused (a
    ParamError naming segment_ids and the value); ints, NumPy ints and decimal strings find the segment."""
    collection = indexed_engine["flat"]
    name = collection.segments()[0]["name"]
    expected = collection.search(queries, 3).ids
    for good in (int(name), np.int64(name), np.uint64(name), name):
        result, error = call(lambda good=good: collection.search_in_segment([good], queries, 3))
        assert error is None and (result.ids == expected).all(), (good, error)
    for bad in (float(name), int(name) + 0.7, np.float64(name), True, np.bool_(True), f"{name}.0", f" {name}",
                f"{name}_0", "", "-" + name, None, [int(name)], complex(int(name))):
        _, error = call(lambda bad=bad: collection.search_in_segment([bad], queries, 3))
        assert isinstance(error, ParamError), (bad, error)
        assert "segment_ids" in str(error) and repr(bad) in str(error), str(error)


# --------------------------------------------------------------------------------------------------
# Rows per segment: the libraries number rows in C ints
# --------------------------------------------------------------------------------------------------
ROW_CAPS = {"ANNOY": INT32_MAX, "RNSG": INT32_MAX, "HNSW": UINT32_MAX}


@pytest.mark.parametrize("index_type", list(BUILD))
def test_a_segment_stays_raw_beyond_the_rows_its_library_can_number(index_type):
    params = spec.default_build_params(index_type, DIM)
    cap = ROW_CAPS.get(index_type)
    for rows in (INT32_MAX, INT32_MAX + 1, UINT32_MAX, UINT32_MAX + 1, INT64_MAX, 2**64):
        reason = spec.segment_raw_reason(index_type, params, rows, build_threshold=1)
        if cap is None or rows <= cap:
            assert reason is None, reason
        else:
            assert reason is not None and f"{rows:,} rows" in reason and f"{cap:,}" in reason
            assert "segment_rows" in reason


@pytest.mark.parametrize("module_name, cap", [("annoy", INT32_MAX), ("hnsw", UINT32_MAX), ("nsg", INT32_MAX)])
def test_the_adapters_refuse_a_segment_beyond_their_c_ints_before_the_library_sees_a_row(module_name, cap):
    """A stand-in with only a shape: the adapter refuses it before reading any row (or asking for memory)."""
    import importlib

    module = importlib.import_module(f"milvus_lab.backends.{module_name}")
    index_type = {"annoy": "ANNOY", "hnsw": "HNSW", "nsg": "RNSG"}[module_name]
    rows = types.SimpleNamespace(shape=(cap + 1, DIM))
    with pytest.raises(UntrainableSegmentError, match=f"{cap:,}"):
        module.build(index_type, BUILD[index_type], rows, "L2")


def test_annoy_resolves_minus_one_without_wrapping(indexed_engine):
    """annoy computes n_trees * k in a C int; the adapter does it in Python and passes at most the cap."""
    built = next(seg.index for c in indexed_engine.snapshot().collections
                 if c.name == "annoy" for seg in c.segments)
    trees = built.index.get_n_trees()
    assert built.search_k_used(-1, 7) == trees * 7
    assert built.search_k_used(-1, SEARCH_K_CAP // trees + 1) == SEARCH_K_CAP
    assert built.search_k_used(123, 7) == 123


# --------------------------------------------------------------------------------------------------
# The pymilvus 0.2.x facade
# --------------------------------------------------------------------------------------------------
def facade_outcome(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """(Status, None) or (None, ParamError): nothing else may come out of the facade."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = fn()
        except ParamError as exc:
            return None, exc
        except Exception as exc:  # noqa: BLE001 - the property under test
            pytest.fail(f"a foreign {type(exc).__name__} escaped the facade: {exc}")
    return (out[0] if isinstance(out, tuple) else out), None


@pytest.mark.parametrize("index_type", list(SEARCH_PARAM))
def test_facade_search_parameters_at_c_type_edges_return_a_status(indexed_engine, queries, index_type):
    client = Milvus(engine=indexed_engine)
    name = SEARCH_PARAM[index_type]
    rows = queries.tolist()
    for value in VALUES:
        status, error = facade_outcome(
            lambda value=value: client.search(index_type.lower(), TOP_K, rows, params={name: value}))
        assert error is None, error
        if search_allowed(name, int(value), TOP_K, BUILD[index_type]):
            assert status.OK(), status
        else:
            assert status.code == StatusCode.ILLEGAL_ARGUMENT and name in status.message, status
            assert shown(value) in status.message


def test_facade_top_k_ids_and_collection_settings_at_c_type_edges(indexed_engine, base, queries):
    client = Milvus(engine=indexed_engine)
    rows = queries.tolist()
    for value in VALUES:
        status, error = facade_outcome(lambda value=value: client.search("annoy", value, rows,
                                                                         params={"search_k": -1}))
        if isinstance(value, np.integer):  # pymilvus 0.2.x type-checks top_k as an int
            assert isinstance(error, ParamError) and "top_k" in str(error)
        else:
            assert status.OK() == (1 <= value <= 16384), status
            if not status.OK():
                assert status.code == StatusCode.ILLEGAL_TOPK and "top_k" in status.message
        status, error = facade_outcome(lambda value=value: client.create_collection(
            {"collection_name": "c", "dimension": value, "index_file_size": 1024}))
        assert error is not None or status.code == StatusCode.ILLEGAL_DIMENSION, (status, error)
        status, error = facade_outcome(lambda value=value: client.create_index("ivf_flat", 2, {"nlist": value}))
        assert error is not None or status.code == StatusCode.ILLEGAL_NLIST, (status, error)
        status, error = facade_outcome(lambda value=value: client.get_entity_by_id("flat", [value]))
        assert (error is not None) == (not 0 <= int(value) <= INT64_MAX), (value, status, error)
    assert not client.has_collection("c")[1]


# --------------------------------------------------------------------------------------------------
# Property: any integer at all, on the engine and the facade
# --------------------------------------------------------------------------------------------------
@given(value=INTEGERS, top_k=st.integers(1, 64))
def test_any_integer_search_k_or_ef_is_accepted_exactly_when_documented(indexed_engine, queries, value, top_k):
    client = Milvus(engine=indexed_engine)
    for index_type in ("ANNOY", "HNSW"):
        name = SEARCH_PARAM[index_type]
        collection = indexed_engine[index_type.lower()]
        allowed = search_allowed(name, int(value), top_k, {})
        _, error = call(lambda collection=collection, name=name: collection.search(queries[:1], top_k, {name: value}))
        assert (error is None) == allowed, (index_type, value, top_k, error)
        if error is not None:
            assert error.code == StatusCode.ILLEGAL_ARGUMENT and name in str(error)
        status, raised = facade_outcome(lambda index_type=index_type, name=name: client.search(
            index_type.lower(), top_k, queries[:1].tolist(), params={name: value}))
        assert raised is None and status.OK() == allowed, (index_type, value, status, raised)


# --------------------------------------------------------------------------------------------------
# Milvus 2.3's own limits (the server target checks them before anything is sent)
# --------------------------------------------------------------------------------------------------
class _Sent(Exception):
    """Raised by the stand-in server when a request would have been sent."""


class _NoServer:
    """A server target that refuses to send anything: what reaches it passed every check first."""

    profile = spec.SERVER_PROFILE
    uri = "http://stand-in:19530"
    alias = "stand-in"
    rpc_timeout = 1
    build_timeout = 1.0
    _rpc: dict[str, Any] = {}

    def describe(self) -> str:
        return "a stand-in Milvus 2.3"

    def call(self, step: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raise _Sent(step)


def server_collection() -> Any:
    from milvus_lab.server.target import ServerCollection

    handle = types.SimpleNamespace(insert=None, flush=None, create_index=None, load=None, search=None,
                                   release=None, drop_index=None)  # what pymilvus's Collection would offer
    return ServerCollection(_NoServer(), "stand_in", DIM, "L2", handle=handle)


def server_outcome(fn: Callable[[], Any]) -> str:
    """'sent' when the value passed our checks, 'refused' when our error stopped it first."""
    try:
        fn()
    except _Sent:
        return "sent"
    except MilvusLabError:
        return "refused"
    except Exception as exc:  # noqa: BLE001 - the property under test
        pytest.fail(f"a foreign {type(exc).__name__} escaped the server target: {exc}")
    pytest.fail("the stand-in server was never called")


SERVER_BUILD = {"IVF_FLAT": {"nlist": (1, 65536)}, "IVF_SQ8": {"nlist": (1, 65536)},
                "IVF_PQ": {"nlist": (1, 65536), "m": (1, DIM)},
                "HNSW": {"M": (2, 2048), "efConstruction": (1, INT32_MAX)}}


@pytest.mark.parametrize("index_type", list(SERVER_BUILD))
def test_server_build_parameters_at_c_type_edges_are_checked_before_sending(index_type):
    collection = server_collection()
    ranges = SERVER_BUILD[index_type]
    good = spec.default_build_params(index_type, DIM, profile=spec.SERVER_PROFILE)
    for name, (low, high) in ranges.items():
        for value in VALUES:
            params = {**good, name: value}
            outcome = server_outcome(lambda params=params: collection.create_index(index_type, params))
            allowed = low <= int(value) <= high and (name != "m" or DIM % int(value) == 0)
            assert outcome == ("sent" if allowed else "refused"), (name, value, outcome)


def test_server_search_top_k_and_ids_at_c_type_edges_are_checked_before_sending(queries):
    collection = server_collection()
    collection._index_type, collection._params = "HNSW", {"M": 16, "efConstruction": 200}
    for value in VALUES:
        outcome = server_outcome(lambda value=value: collection.search(queries, TOP_K, {"ef": value}))
        assert outcome == ("sent" if TOP_K <= int(value) <= 32768 else "refused"), ("ef", value)
        outcome = server_outcome(lambda value=value: collection.search(queries, value, {"ef": 32768}))
        assert outcome == ("sent" if 1 <= int(value) <= 16384 else "refused"), ("top_k", value)
        outcome = server_outcome(lambda value=value: collection.insert(queries[:1], ids=[value]))
        assert outcome == ("sent" if 0 <= int(value) <= INT64_MAX else "refused"), ("ids", value)


class _EchoServer(_NoServer):
    """A server target whose requests run: the handle below answers them."""

    def call(self, step: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)


def test_a_server_search_with_more_queries_than_milvus_takes_is_sent_in_parts_and_reassembled_in_order():
    """Milvus 2.3 refuses more than 16,384 query vectors per request (quotaAndLimits.limits.nq): the target
    sends at most that many at a time; each query's answer (its own row number, written into the query)
    lands in its own row."""
    from milvus_lab.server.target import ServerCollection

    sent: list[int] = []

    def search(payload: np.ndarray, *args: Any, **kwargs: Any) -> list[Any]:
        sent.append(len(payload))
        return [types.SimpleNamespace(ids=[int(q[0])], distances=[float(q[1])]) for q in payload]

    handle = types.SimpleNamespace(search=search)
    collection = ServerCollection(_EchoServer(), "stand_in", 2, "L2", handle=handle)
    collection._loaded = collection._server_index = True
    nq = 2 * 16384 + 5
    queries = np.stack([np.arange(nq), np.full(nq, 0.5)], axis=1).astype(np.float32)
    result = collection.search(queries, 3)
    assert sent == [16384, 16384, 5]
    assert (result.ids[:, 0] == np.arange(nq)).all() and (result.ids[:, 1:] == -1).all()
    assert (result.distances[:, 0] == 0.5).all() and np.isinf(result.distances[:, 1:]).all()


def seconds(value: Any) -> float:
    """The oracle's reading of a wait: a number as a float; a bool or an int too big for a float is no wait."""
    if isinstance(value, bool):
        return float("nan")
    try:
        return float(value)
    except OverflowError:
        return float("nan")


def test_server_timeouts_beyond_pythons_longest_wait_are_refused_naming_them():
    """pymilvus waits on Python locks, whose longest wait is threading.TIMEOUT_MAX (a C time type): a larger
    timeout failed deep inside the connect, NaN waited forever, 10**400 raised OverflowError."""
    import threading

    from milvus_lab.server.target import ServerTarget

    for value in VALUES + [0.5, 0.0, float("nan"), float("inf"), threading.TIMEOUT_MAX, 1e10, True]:
        for name, low_ok in (("timeout", False), ("build_timeout", True)):
            try:
                target = ServerTarget("http://stand-in:19530", **{name: value})
            except ParamError as exc:
                assert name in str(exc) and "TIMEOUT_MAX" in str(exc)
                ok = False
            else:
                ok = True
                assert getattr(target, name) == float(value)
            number = seconds(value)
            assert ok == ((0 <= number if low_ok else 0 < number) and number <= threading.TIMEOUT_MAX), (name, value)


# --------------------------------------------------------------------------------------------------
# Sweeps and views stay below the cap
# --------------------------------------------------------------------------------------------------
def test_annoy_sweeps_stop_at_the_cap_on_data_too_large_for_it():
    param = spec.get_index("ANNOY").search["search_k"]
    ctx = {"top_k": 10, "n_trees": 1024, "rows": 10**7}  # n_trees * rows is 10**10, beyond annoy's C int
    start, stop = spec.sweep_range(param, ctx)
    assert stop == SEARCH_K_CAP
    grid = spec.sweep_values(param, ctx, start=start, stop=stop)
    assert grid and max(grid) == SEARCH_K_CAP
    for value in grid:
        spec.validate_search("ANNOY", {"search_k": value}, top_k=10, build_params={"n_trees": 1024})


def test_the_annoy_view_refuses_search_k_beyond_the_cap_and_seeds_beyond_annoys_c_int(base, queries):
    from milvus_lab import views

    with pytest.raises(InvalidParameterError, match="search_k"):
        views.annoy_search_k_curve(base, queries, n_trees=2, search_ks=[10, SEARCH_K_CAP + 1])
    for value in VALUES:
        curve, error = call(lambda value=value: views.annoy_search_k_curve(base[:200], queries, n_trees=2,
                                                                           search_ks=[-1], seed=value))
        if 0 <= int(value) <= INT32_MAX:
            assert error is None and len(curve) == 1, error
        else:
            assert isinstance(error, ParamError) and "seed" in str(error) and shown(value) in str(error), error


# --------------------------------------------------------------------------------------------------
# The forms: a person typing the edges
# --------------------------------------------------------------------------------------------------
TYPED = [str(int(v)) for v in VALUES] + ["9" * 40, "+" + str(INT32_MAX + 1), " 2147483648 "]


def test_search_form_refuses_typed_edges_on_the_form_naming_the_parameter(indexed_engine, base):
    from milvus_lab.widgets import SearchForm

    form = SearchForm(indexed_engine["annoy"], vectors=base, watch=False, query=3)
    try:
        sk = form.fields["search_k"]
        for text in TYPED:
            value = int(text)
            sk.value = text
            shown_result = form.search()
            if search_allowed("search_k", value, TOP_K, {}):
                assert form.errors == {} and shown_result is not None, (text, form.errors)
            else:
                assert "search_k" in form.errors and shown_result is None, (text, form.errors)
                assert "out of range" in sk.message.text and f"{SEARCH_K_CAP}" in sk.message.text, sk.message.text
        sk.value = "-1"
        for text in TYPED:
            form.top_k.value = text
            shown_result = form.search()
            assert (shown_result is not None) == (1 <= int(text) <= 16384), (text, form.errors)
        form.top_k.value = "10"
        for text in TYPED:
            form.query.value = text
            shown_result = form.search()
            assert (shown_result is not None) == (0 <= int(text) < ROWS), text
            if shown_result is None:
                assert form.message.text
    finally:
        form.close()


def test_search_form_ids_at_c_type_edges_are_int64_ids_or_refused_naming_them(indexed_engine, base):
    """The form's ``ids`` are Milvus ids: [0, 2**63 - 1], as the engine's own ids; others are a ParamError."""
    from milvus_lab.widgets import SearchForm

    for value in VALUES:
        for vectors in (None, base[:1]):
            form, error = call(lambda value=value, vectors=vectors: SearchForm(indexed_engine["flat"], vectors=vectors,
                                                                               ids=[value], watch=False))
            if 0 <= int(value) <= INT64_MAX:
                assert error is None and form.vector_ids.tolist() == [int(value)], error
                form.close()
            else:
                assert isinstance(error, ParamError), error
                refused_naming(error, "ids", value)


def test_explorer_seed_and_n_queries_at_c_type_edges_are_ints_or_refused_naming_them(indexed_engine, base):
    """The explorer's seed only draws the query rows (NumPy takes any non-negative int) and n_queries is at
    most the rows: a negative or a non-integer value is a ParamError naming it and the value, never NumPy's
    ValueError or TypeError."""
    from milvus_lab.widgets import Explorer

    for value in VALUES + [True, 1.0]:
        explorer, error = call(lambda value=value: Explorer(indexed_engine["flat"], base, n_queries=5, seed=value))
        if not isinstance(value, (bool, float)) and int(value) >= 0:
            assert error is None and len(explorer.queries) == 5, error
            explorer.close()
        else:
            assert isinstance(error, ParamError) and "seed" in str(error), error
            assert (str(value) if isinstance(value, (bool, float)) else shown(value)) in str(error), error
        explorer, error = call(lambda value=value: Explorer(indexed_engine["flat"], base, n_queries=value))
        if not isinstance(value, (bool, float)) and int(value) >= 1:
            assert error is None and len(explorer.queries) == min(int(value), ROWS), error
            explorer.close()
        else:
            assert isinstance(error, ParamError) and "n_queries" in str(error), error
            assert (str(value) if isinstance(value, (bool, float)) else shown(value)) in str(error), error


def test_explorer_annoy_slider_states_the_cap_and_stays_below_it(indexed_engine, base):
    """search_k has no upper bound in Milvus but a cap in annoy (the spec's IntParam.cap): the slider's note
    says so and the slider never offers more."""
    from milvus_lab.widgets import Explorer

    explorer = Explorer(indexed_engine["annoy"], base, n_queries=5)
    try:
        assert explorer.param == "search_k" and explorer.slider.max <= SEARCH_K_CAP
        text = explorer.slider_help.value
        assert "no upper bound" not in text and f"{SEARCH_K_CAP}" in text and "C int" in text, text
        assert f"the slider stops at {explorer.slider.max:,}" in text, text
    finally:
        explorer.close()


@pytest.mark.parametrize("index_type", ["IVF_FLAT", "RNSG", "HNSW", "ANNOY"])
def test_index_form_refuses_typed_edges_and_leaves_the_index(indexed_engine, index_type):
    from milvus_lab.widgets import IndexForm

    collection = indexed_engine[index_type.lower()]
    form = IndexForm(collection, index_type, watch=False)
    try:
        for name in BUILD[index_type]:
            for text in TYPED:
                for other, value in BUILD[index_type].items():
                    form.fields[other].value = str(value)
                form.fields[name].value = text
                errors = form.validate()
                assert name in errors, (name, text, errors)
                assert form.create() is None
                assert collection.describe_index().params == BUILD[index_type]
    finally:
        form.close()


# --------------------------------------------------------------------------------------------------
# The command line: `milvus-lab demo`
# --------------------------------------------------------------------------------------------------
DEMO_SMALL = {"--n": "2000", "--nlist": "16", "--nprobe": "4", "--queries": "10"}
DEMO_ALLOWED = {"--n": (1, 400_000), "--nlist": (1, 65536), "--nprobe": (1, 16), "--queries": (1, None)}


@pytest.mark.parametrize("option", list(DEMO_SMALL))
def test_demo_options_at_c_type_edges_print_one_line_naming_the_option_and_exit_2(capsys, option):
    """A refused option is one line on stderr naming it and its value, exit status 2, before any data is
    loaded (nothing on stdout); no traceback, whatever the C type the value overflows."""
    from milvus_lab import cli

    low, high = DEMO_ALLOWED[option]
    for value in [int(v) for v in PY_INTS if not low <= int(v) <= (high or int(v))] + [0, high and high + 1]:
        if value is None:
            continue
        argv = ["demo", "--words", "the,of",
                *(a for o, v in DEMO_SMALL.items() for a in (o, str(value) if o == option else v))]
        try:
            status = cli.main(argv)
        except SystemExit as exc:  # argparse itself
            status = exc.code
        except Exception as exc:  # noqa: BLE001 - the property under test
            pytest.fail(f"milvus-lab {' '.join(argv)}: a {type(exc).__name__} escaped: {exc}")
        out, err = capsys.readouterr()
        assert status == 2, (argv, status, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and option in lines[0] and shown(value) in lines[0], err
        assert out == "", out


# --------------------------------------------------------------------------------------------------
# The lab: measure / compare / tune and the dataset's own counts
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(base):
    from milvus_lab import lab

    return lab.from_array(base[:300], n_queries=10, name="c_type_limits")


@pytest.mark.slow
def test_lab_measure_annoy_search_k_at_c_type_edges(dataset):
    from milvus_lab import lab

    for value in VALUES:
        result, error = call(lambda value=value: lab.measure(dataset, "ANNOY", {"n_trees": 2}, {"search_k": value},
                                                             repeats=1, latency_queries=2))
        if search_allowed("search_k", int(value), TOP_K, {}):
            assert error is None, error
            if int(value) == SEARCH_K_CAP:
                assert (result["recall"] == 1.0).all(), "the cap inspects every node: exact recall"
        else:
            assert error is not None and "search_k" in str(error), error


LAB_INT_ARGS = {
    "compare": ("k", "repeats", "latency_queries", "threads"),
    "measure": ("k", "repeats", "latency_queries"),
    "tune": ("k", "repeats", "latency_queries", "max_builds", "seed"),
}


@pytest.mark.slow
@pytest.mark.parametrize("entry, arg", [(e, a) for e, args in LAB_INT_ARGS.items() for a in args])
def test_lab_integer_arguments_at_c_type_edges_are_ours_to_refuse(dataset, entry, arg):
    from milvus_lab import lab

    fns = {"compare": lambda **kw: lab.compare(dataset, index_types=["FLAT"], progress=False, **kw),
           "measure": lambda **kw: lab.measure(dataset, "FLAT", **kw),
           "tune": lambda **kw: lab.tune(dataset, index_types=["FLAT"], progress=False, **kw)}
    for value in VALUES:
        kwargs = {"repeats": 1, "latency_queries": 2, arg: value}
        if entry == "tune" and arg != "max_builds":
            kwargs["max_builds"] = 1
        _, error = call(lambda kwargs=kwargs: fns[entry](**kwargs))
        if error is not None:
            assert re.search(rf"\b{arg}\b", str(error)), f"{entry}({arg}={value!r}): {error}"
        else:  # accepted: only where a huge value means nothing to a C library
            assert arg == "seed" and int(value) >= 0, f"{entry}({arg}={value!r}) was accepted"


@pytest.mark.slow
def test_dataset_counts_at_c_type_edges_are_ours_to_refuse(base, dataset):
    from milvus_lab import lab

    for value in VALUES:
        for arg, fn in (("n_queries", lambda v: lab.from_array(base[:100], n_queries=v)),
                        ("k", lambda v: dataset.ground_truth(v)),
                        ("rows", lambda v: dataset.subset_queries([v]))):
            _, error = call(lambda fn=fn, value=value: fn(value))
            assert error is not None and re.search(rf"\b{arg}\b", str(error)), f"{arg}={value!r}: {error}"
