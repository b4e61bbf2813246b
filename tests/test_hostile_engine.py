"""Hostile values at every public entry point of the engine and the facade (issue 13, item 1).

Values: huge and negative ints, 0, 2**63, bools, nan/inf/1.5, numpy scalars and 0-d arrays, strings, bytes,
None, lists, dicts, objects whose conversions raise, a str subclass whose ``__eq__`` raises. Property: each call either succeeds or raises one of milvus_lab's exceptions (the facade: returns a non-OK
Status or raises ParamError); no other exception type escapes, and after a refusal the engine is exactly as
it was (compared through ``snapshot()``).

These are robustness checks (each test name says ``robust``): they pass when a call succeeds. The refusals a bad
value must get (tests that fail when it is accepted) are in test_bad_input_catalogue.py and the module's own
test file. Every hostile-value file is named test_hostile_<area>.py.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from typing import Any, Callable

import numpy as np
import pytest
from helpers import EvilStrKey

from milvus_lab import Engine, Milvus, Status
from milvus_lab.errors import MilvusLabError


class _Raises:
    """An object whose conversions all raise (``__int__``, ``__index__``, ``__len__``, ``__iter__``, ...)."""

    def _boom(self, *args: Any) -> Any:
        raise RuntimeError("hostile conversion")

    __int__ = __index__ = __float__ = __len__ = __iter__ = __bool__ = __str__ = _boom
    __getitem__ = __hash__ = _boom

    def __repr__(self) -> str:
        return "<_Raises>"


HOSTILE = [
    0, -1, 1, 2**63, 2**63 - 1, -(2**63), 2**200, True, False, float("nan"), float("inf"), -float("inf"), 1.5,
    np.int64(4), np.int32(-3), np.uint64(2**64 - 1), np.float32(2.0), np.bool_(True), np.array(3), np.array([]),
    np.array([[np.nan] * 4]), np.zeros((2, 4), np.float64), np.zeros((0, 4), np.float32), np.zeros((2, 3, 4)),
    "", "x", "L2", "_default", "a" * 300, b"", b"\x00", None, [], [[]], [1, 2], [[1, 2, 3, 4]], [[1, "a", 3, 4]],
    [None], [2**70], [-1], [True], {}, {"nlist": 2**70}, {"nprobe": -1}, {"ef": None}, {1: 2}, {"nlist": _Raises()},
    (), (1,), set(), _Raises(), EvilStrKey("L2"), object(), [[float("inf")] * 4], [b"\x00"] * 2,
    complex(1, 2), np.array([1 + 2j] * 4),
]


def _digest(engine: Engine) -> str:
    h = hashlib.sha256()
    state = engine.snapshot()
    h.update(repr((state.build_threshold, state.segment_rows)).encode())
    for c in state.collections:
        h.update(repr((c.name, c.dimension, c.metric, c.index_file_size, c.segment_rows, c.index_type,
                       sorted(c.index_params.items()), c.id_mode, c.next_auto_id, c.next_segment_id,
                       c.partitions, c.background_errors)).encode())
        for seg in c.segments:
            h.update(repr((seg.segment_id, seg.partition, seg.sealed, seg.capacity_rows, seg.raw_reason,
                           None if seg.index is None else (seg.index.index_type, id(seg.index)))).encode())
            h.update(seg.vectors.tobytes() + seg.ids.tobytes())
            if seg.deleted is not None:
                h.update(seg.deleted.tobytes())
        for batch in c.pending_deletes:
            h.update(batch.ids.tobytes() + repr(sorted(batch.extent.items())).encode())
    return h.hexdigest()


def _engine() -> Engine:
    e = Engine(build_threshold=8)
    c = e.create_collection("f", 4, segment_rows=16)
    c.create_partition("p")
    c.insert(np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c.create_index("IVF_FLAT", {"nlist": 2})
    e.create_collection("b", 16, metric_type="HAMMING").insert([b"\x01\x02"] * 3)
    return e


QUERY = np.ones((1, 4), np.float32)
#: (name, call(engine, value)): the hostile value goes in one argument, the others are valid
ENGINE_CALLS: list[tuple[str, Callable[[Engine, Any], Any]]] = [
    ("create_collection name", lambda e, v: e.create_collection(v, 4)),
    ("create_collection dimension", lambda e, v: e.create_collection("n", v)),
    ("create_collection index_file_size", lambda e, v: e.create_collection("n", 4, v)),
    ("create_collection metric", lambda e, v: e.create_collection("n", 8, metric_type=v)),
    ("create_collection segment_rows", lambda e, v: e.create_collection("n", 4, segment_rows=v)),
    ("get_collection", lambda e, v: e.get_collection(v)),
    ("has_collection", lambda e, v: e.has_collection(v)),
    ("drop_collection", lambda e, v: e.drop_collection(v)),
    ("flush names", lambda e, v: e.flush(v)),
    ("set_build_threshold", lambda e, v: e.set_build_threshold(v)),
    ("insert records", lambda e, v: e["f"].insert(v)),
    ("insert ids", lambda e, v: e["f"].insert(np.ones((2, 4)), ids=v)),
    ("insert tag", lambda e, v: e["f"].insert(np.ones((2, 4)), partition_tag=v)),
    ("insert binary", lambda e, v: e["b"].insert(v)),
    ("delete", lambda e, v: e["f"].delete(v)),
    ("get_entity_by_id", lambda e, v: e["f"].get_entity_by_id(v)),
    ("list_id_in_segment", lambda e, v: e["f"].list_id_in_segment(v)),
    ("create_partition", lambda e, v: e["f"].create_partition(v)),
    ("drop_partition", lambda e, v: e["f"].drop_partition(v)),
    ("has_partition", lambda e, v: e["f"].has_partition(v)),
    ("create_index type", lambda e, v: e["f"].create_index(v, {"nlist": 2})),
    ("create_index params", lambda e, v: e["f"].create_index("IVF_FLAT", v)),
    ("create_index HNSW params", lambda e, v: e["f"].create_index("HNSW", {"M": v, "efConstruction": 16})),
    ("search records", lambda e, v: e["f"].search(v, 1, {"nprobe": 1})),
    ("search top_k", lambda e, v: e["f"].search(QUERY, v, {"nprobe": 1})),
    ("search params", lambda e, v: e["f"].search(QUERY, 1, v)),
    ("search nprobe", lambda e, v: e["f"].search(QUERY, 1, {"nprobe": v})),
    ("search tags", lambda e, v: e["f"].search(QUERY, 1, {"nprobe": 1}, v)),
    ("search_in_segment ids", lambda e, v: e["f"].search_in_segment(v, QUERY, 1, {"nprobe": 1})),
    ("search binary", lambda e, v: e["b"].search(v, 1)),
    ("segment_rows setter", lambda e, v: setattr(e["f"], "segment_rows", v)),
]


def _problem(call: Callable[[], Any], engine: Engine) -> str | None:
    """None when the call succeeded, or refused with our error and left the engine as it was."""
    before = _digest(engine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call()
        except MilvusLabError as exc:
            if not str(exc):
                return "an error without a message"
            if _digest(engine) != before:
                return f"a refused call changed the engine ({exc})"
        except Exception as exc:  # noqa: BLE001 - the property under test
            return f"foreign exception {type(exc).__name__}: {exc}"
    return None


@pytest.mark.parametrize("name", [n for n, _ in ENGINE_CALLS])
def test_engine_entry_points_robust_to_hostile_values(name):
    call = dict(ENGINE_CALLS)[name]
    engine = _engine()
    try:
        problems = [f"{v!r:.50}: {p}" for v in HOSTILE if (p := _problem(lambda v=v: call(engine, v), engine))]
    finally:
        engine.close()
    assert not problems, problems


def test_search_and_insert_robust_to_every_argument_hostile_at_once():
    rng = random.Random(0)  # a fixed sample of combinations (hypothesis hashes values; ours refuse to hash)
    engine = _engine()
    try:
        problems = []
        for _ in range(300):
            args = [rng.choice(HOSTILE) for _ in range(4)]
            for what, call in (("search", lambda args=args: engine["f"].search(*args)),
                               ("insert", lambda args=args: engine["f"].insert(*args[:3]))):
                problem = _problem(call, engine)
                if problem:
                    problems.append(f"{what}{tuple(args)!r:.120}: {problem}")
    finally:
        engine.close()
    assert not problems, problems[:5]


def test_engine_constructor_robust_to_hostile_settings():
    for value in HOSTILE:
        for kwargs in ({"build_threshold": value}, {"segment_rows": value}):
            try:
                Engine(**kwargs).close()
            except MilvusLabError:
                pass
            except Exception as exc:  # noqa: BLE001
                pytest.fail(f"Engine({kwargs!r}): foreign exception {type(exc).__name__}: {exc}")


CLIENT_CALLS: list[tuple[str, Callable[[Milvus, Any], Any]]] = [
    ("create_collection", lambda m, v: m.create_collection(v)),
    ("create_collection dim", lambda m, v: m.create_collection({"collection_name": "n", "dimension": v})),
    ("has_collection", lambda m, v: m.has_collection(v)),
    ("insert", lambda m, v: m.insert("f", v)),
    ("insert ids", lambda m, v: m.insert("f", [[1, 2, 3, 4]], ids=v)),
    ("delete", lambda m, v: m.delete_entity_by_id("f", v)),
    ("get_entity_by_id", lambda m, v: m.get_entity_by_id("f", v)),
    ("create_index type", lambda m, v: m.create_index("f", v, {"nlist": 2})),
    ("create_index params", lambda m, v: m.create_index("f", 2, v)),
    ("search top_k", lambda m, v: m.search("f", v, [[1, 2, 3, 4]], params={"nprobe": 1})),
    ("search params", lambda m, v: m.search("f", 1, [[1, 2, 3, 4]], params=v)),
    ("search records", lambda m, v: m.search("f", 1, v, params={"nprobe": 1})),
    ("search_in_segment", lambda m, v: m.search_in_segment("f", v, [[1, 2, 3, 4]], 1, {"nprobe": 1})),
    ("flush", lambda m, v: m.flush(v)),
    ("partition", lambda m, v: m.create_partition("f", v)),
    ("list_id_in_segment", lambda m, v: m.list_id_in_segment("f", v)),
]


@pytest.mark.parametrize("name", [n for n, _ in CLIENT_CALLS])
def test_facade_entry_points_robust_to_hostile_values(name):
    call = dict(CLIENT_CALLS)[name]
    engine = _engine()
    client = Milvus(engine=engine)
    try:
        for value in HOSTILE:
            before = _digest(engine)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    out = call(client, value)
                except MilvusLabError:  # ParamError: a wrong type, raised as pymilvus does
                    assert _digest(engine) == before
                    continue
                except Exception as exc:  # noqa: BLE001
                    pytest.fail(f"{name}({value!r:.60}): foreign exception {type(exc).__name__}: {exc}")
            status = out[0] if isinstance(out, tuple) else out
            assert isinstance(status, Status)
            if not status.OK():
                assert _digest(engine) == before, f"{name}: a refused call changed the engine"
    finally:
        client.close()
        engine.close()
