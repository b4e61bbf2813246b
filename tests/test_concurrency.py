"""Threads inserting, deleting, searching, creating and dropping indexes on one collection at once.

Segments are small, so they seal and build in the background all the time. Every id's vector is known in
advance (row ``id`` of one table), so each result can be checked while the others run: ids unique, live
and never deleted before the search began, distances the true distances, and, when no index change
overlapped the search and the collection was FLAT, the exact top-k of some state between the search's
start and end. At the end no entity is lost or duplicated. ``scripts/soak.py`` runs the same for 60 s.
"""

from __future__ import annotations

import random
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest

from milvus_lab import Engine
from milvus_lab.errors import InvalidParameterError

DIM = 8
#: index types that keep full vectors, so every returned distance must be the true distance
CHURN = [
    ("FLAT", {}),
    ("FLAT", {}),
    ("IVF_FLAT", {"nlist": 4}),
    ("IVF_FLAT", {"nlist": 16}),
    ("HNSW", {"M": 8, "efConstruction": 32}),
    ("ANNOY", {"n_trees": 4}),
    ("RNSG", {"search_length": 20, "out_degree": 10, "candidate_pool_size": 50, "knng": 20}),
]
INSERTERS = 2
ID_SPAN = 10**7  # inserter t owns ids [t * ID_SPAN, (t + 1) * ID_SPAN)


@dataclass
class Shared:
    """What the threads have done, for the checks (guarded by ``lock``)."""

    table: np.ndarray
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: list[int] = field(default_factory=lambda: [0] * INSERTERS)  # rows whose insert began
    committed: list[int] = field(default_factory=lambda: [0] * INSERTERS)  # rows whose insert returned
    delete_requested: set[int] = field(default_factory=set)
    deleted: list[int] = field(default_factory=list)  # ids whose delete was flushed, in order
    index_version: int = 0  # odd while an index change is in progress
    index: tuple[str, dict] = ("FLAT", {})
    errors: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def vector(self, ids: np.ndarray) -> np.ndarray:
        return self.table[(ids // ID_SPAN) * (len(self.table) // INSERTERS) + ids % ID_SPAN]

    def bump(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def fail(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def true_distances(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    q, x = queries.astype(np.float64), vectors.astype(np.float64)
    return ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)


def close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(a, np.float64) - b) <= 2e-3 * (1 + np.abs(b))


def _inserter(c, shared: Shared, t: int, stop: threading.Event, rng: random.Random) -> None:
    per = len(shared.table) // INSERTERS
    while not stop.is_set():
        with shared.lock:
            first = shared.committed[t]
            n = min(rng.randint(1, 40), per - first)
            if n <= 0:
                return
            shared.started[t] = first + n
        ids = np.arange(first, first + n, dtype=np.int64) + t * ID_SPAN
        try:
            c.insert(shared.vector(ids), ids=ids)
        except Exception as exc:  # noqa: BLE001 - every failure is reported
            shared.fail(f"insert: {type(exc).__name__}: {exc}")
            return
        with shared.lock:
            shared.committed[t] = first + n
        shared.bump("inserted rows", n)
        time.sleep(rng.uniform(0, 0.004))


def _deleter(c, shared: Shared, stop: threading.Event, rng: random.Random) -> None:
    while not stop.is_set():
        time.sleep(rng.uniform(0.005, 0.03))
        with shared.lock:
            pool = [t * ID_SPAN + rng.randrange(shared.committed[t]) for t in range(INSERTERS)
                    for _ in range(8) if shared.committed[t]]
            doomed = sorted(set(pool[: rng.randint(0, len(pool))]) - shared.delete_requested)
            shared.delete_requested.update(doomed)
        try:
            if doomed:
                c.delete(doomed)
            c.flush()
            if rng.random() < 0.2:
                c.compact()
                shared.bump("compactions")
        except Exception as exc:  # noqa: BLE001
            shared.fail(f"delete/flush/compact: {type(exc).__name__}: {exc}")
            return
        with shared.lock:
            shared.deleted.extend(doomed)
        shared.bump("deleted rows", len(doomed))


def _churner(c, shared: Shared, stop: threading.Event, rng: random.Random) -> None:
    while not stop.is_set():
        index_type, params = rng.choice(CHURN)
        drop = rng.random() < 0.3
        with shared.lock:
            shared.index_version += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if drop:
                    c.drop_index()
                else:
                    c.create_index(index_type, params)
        except Exception as exc:  # noqa: BLE001
            shared.fail(f"create_index {index_type}: {type(exc).__name__}: {exc}")
            return
        finally:
            with shared.lock:
                shared.index = ("FLAT", {}) if drop else (index_type, params)
                shared.index_version += 1
        shared.bump("index changes")
        time.sleep(rng.uniform(0.01, 0.15))


def _search_params(index: tuple[str, dict], top_k: int) -> dict | None:
    index_type, params = index
    return {"FLAT": None, "IVF_FLAT": {"nprobe": max(1, params.get("nlist", 1) // 2)},
            "HNSW": {"ef": max(top_k, 32)}, "ANNOY": {"search_k": -1},
            "RNSG": {"search_length": 120}}[index_type]  # >= segment rows: see the RNSG bug in test_stateful


def _searcher(c, shared: Shared, stop: threading.Event, rng: random.Random) -> None:
    nprng = np.random.default_rng(rng.randrange(2**32))
    while not stop.is_set():
        top_k = rng.choice([1, 5, 20])
        with shared.lock:
            version, index = shared.index_version, shared.index
            committed = list(shared.committed)
            deleted_before = set(shared.deleted)
        live_ids = np.concatenate([np.arange(n, dtype=np.int64) + t * ID_SPAN for t, n in enumerate(committed)])
        if len(live_ids) and rng.random() < 0.5:
            queries = shared.vector(nprng.choice(live_ids, 3))
        else:
            queries = nprng.normal(size=(3, DIM)).astype(np.float32)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # params of an index just dropped: FLAT ignores them
                res = c.search(queries, top_k, _search_params(index, top_k))
        except InvalidParameterError:
            with shared.lock:  # an odd version: an index change was under way when the search began
                changed = shared.index_version != version or version % 2 == 1
            if not changed:
                shared.fail(f"search refused its own index's parameters ({index})")
                return
            shared.bump("searches refused: index changed meanwhile")
            continue
        except Exception as exc:  # noqa: BLE001
            shared.fail(f"search: {type(exc).__name__}: {exc}")
            return
        with shared.lock:
            stable = shared.index_version == version and version % 2 == 0
            started = list(shared.started)
            requested = set(shared.delete_requested)
        problem = _check(res, queries, top_k, shared, live_ids, started, deleted_before, requested,
                         exact=stable and index[0] == "FLAT")
        if problem:
            shared.fail(problem)
            return
        shared.bump("exact searches checked" if stable and index[0] == "FLAT" else "searches checked")
        if len(live_ids):
            probe = nprng.choice(live_ids, 5)
            got = c.get_entity_by_id(probe.tolist())
            with shared.lock:  # a delete requested after the search above may have been flushed since
                requested = set(shared.delete_requested)
            for i, v in zip(probe.tolist(), got):
                if v is None and i not in requested:
                    shared.fail(f"entity {i} was committed and never deleted but is missing")
                    return
                if v is not None and not np.array_equal(v, shared.vector(np.array([i]))[0]):
                    shared.fail(f"entity {i} has the wrong vector")
                    return


def _check(res: Any, queries: np.ndarray, top_k: int, shared: Shared, committed_ids: np.ndarray,
           started: list[int], deleted_before: set[int], requested: set[int], exact: bool) -> str | None:
    if res.ids.shape != (len(queries), top_k):
        return f"result shape {res.ids.shape}"
    for q in range(len(queries)):
        row = res.ids[q]
        real = row >= 0
        n = int(real.sum())
        if not real[:n].all():
            return f"padding inside a result row: {row.tolist()}"
        hits = row[:n]
        if len(set(hits.tolist())) != n:
            return f"duplicate ids in a result: {hits.tolist()}"
        owner, local = hits // ID_SPAN, hits % ID_SPAN
        if ((owner < 0) | (owner >= INSERTERS)).any() or (local >= np.array(started)[np.clip(owner, 0, INSERTERS - 1)]).any():
            return f"ids never inserted: {hits.tolist()}"
        gone = [i for i in hits.tolist() if i in deleted_before]
        if gone:
            return f"ids deleted and flushed before the search began came back: {gone}"
        truth = true_distances(queries[q:q + 1], shared.vector(hits))[0]
        if not close(res.distances[q][:n], truth).all():
            return f"distances {res.distances[q][:n].tolist()} are not the true ones {truth.tolist()}"
        if n > 1 and (np.diff(res.distances[q][:n]) < -1e-4).any():
            return f"distances not sorted: {res.distances[q][:n].tolist()}"
        if exact:
            sure = np.array([i for i in committed_ids.tolist() if i not in requested], np.int64)
            if len(sure):
                d = true_distances(queries[q:q + 1], shared.vector(sure))[0]
                cut = res.distances[q][n - 1] if n == top_k else np.inf
                missing = set(sure[d < cut - 2e-3 * (1 + abs(cut))].tolist()) - set(hits.tolist())
                if missing:
                    return f"exact FLAT search missed committed ids {sorted(missing)[:5]} (top_k={top_k})"
                if n < min(top_k, len(sure)):
                    return f"exact FLAT search returned {n} hits, at least {min(top_k, len(sure))} are live"
    return None


def run_workload(seconds: float | None = None, seed: int = 0, rows_per_inserter: int = 4_000,
                 segment_rows: int = 96, build_threshold: int = 32,
                 until: Callable[[dict[str, int]], bool] | None = None) -> dict[str, Any]:
    """Run every thread on one collection until ``until(counts)`` holds (the tests: an amount of work, whatever
    the machine's speed) or for ``seconds`` (scripts/soak.py), then check the end state; return the counts."""
    if (seconds is None) == (until is None):
        raise ValueError("run_workload needs exactly one of seconds= and until=")
    rng = random.Random(seed)
    table = np.random.default_rng(seed).normal(size=(rows_per_inserter * INSERTERS, DIM)).astype(np.float32)
    shared = Shared(table)
    engine = Engine(build_threshold=build_threshold)
    try:
        # small segments: they seal and build in the background constantly
        c = engine.create_collection("busy", DIM, segment_rows=segment_rows)
        stop = threading.Event()
        threads = [threading.Thread(target=_inserter, args=(c, shared, t, stop, random.Random(rng.random())),
                                    name=f"inserter-{t}") for t in range(INSERTERS)]
        threads += [threading.Thread(target=_searcher, args=(c, shared, stop, random.Random(rng.random())),
                                     name=f"searcher-{i}") for i in range(2)]
        threads += [threading.Thread(target=_deleter, args=(c, shared, stop, random.Random(rng.random())),
                                     name="deleter"),
                    threading.Thread(target=_churner, args=(c, shared, stop, random.Random(rng.random())),
                                     name="index-churner")]
        started = time.perf_counter()
        for t in threads:
            t.start()
        while not shared.errors:
            with shared.lock:
                counts = dict(shared.counts)
            if (until(counts) if until else time.perf_counter() - started >= seconds) or not any_alive(threads):
                break
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(120)
            if t.is_alive():
                shared.fail(f"thread {t.name} did not finish within 120 s of the stop (deadlock?)")
        # the end state: exactly the committed rows minus the deleted ones, each once, with its vector
        c.flush()
        if not c.wait_for_index(120):
            shared.fail("background builds did not finish within 120 s")
        expect = set()
        for t in range(INSERTERS):
            expect.update(range(t * ID_SPAN, t * ID_SPAN + shared.committed[t]))
        expect -= set(shared.deleted)
        seen: list[int] = []
        for s in c.segments():
            seen += c.list_id_in_segment(s["name"])
        if len(seen) != len(set(seen)):
            shared.fail(f"{len(seen) - len(set(seen))} entities are stored twice")
        if set(seen) != expect:
            shared.fail(f"lost {len(expect - set(seen))} entities, {len(set(seen) - expect)} unexpected")
        if c.count() != len(expect):
            shared.fail(f"count() is {c.count()}, expected {len(expect)}")
        ids = np.array(sorted(expect), np.int64)
        if len(ids):
            got = c.get_entity_by_id(ids.tolist())
            if any(v is None for v in got) or not np.array_equal(np.stack(got), shared.vector(ids)):
                shared.fail("get_entity_by_id does not return the inserted vectors")
        index_type = c.index_type
        wrong = [s for s in c.segments() if s["index_name"] not in ("FLAT", index_type)]
        if wrong:
            shared.fail(f"segments built with a replaced index type: {wrong[:2]}")
        out = dict(shared.counts, seconds=time.perf_counter() - started, segments=len(c.segments()),
                   final_index=index_type, final_rows=c.count(), errors=list(shared.errors))
        return out
    finally:
        engine.close()


def enough_work(counts: dict[str, int]) -> bool:
    """The amount of work the test waits for: rows inserted into many segments, searches, index changes."""
    return (counts.get("inserted rows", 0) > 500 and counts.get("index changes", 0) >= 3
            and counts.get("searches checked", 0) + counts.get("exact searches checked", 0) > 20)


def any_alive(threads: list[threading.Thread]) -> bool:
    return any(t.is_alive() for t in threads)


def test_threads_insert_delete_search_and_churn_indexes():
    result = run_workload(seed=1, until=enough_work)
    assert not result["errors"], result["errors"]
    assert result.get("inserted rows", 0) > 500
    assert result.get("searches checked", 0) + result.get("exact searches checked", 0) > 20
    assert result.get("index changes", 0) >= 3
    assert result["segments"] > 5


def test_two_threads_creating_indexes_at_once():
    engine = Engine(build_threshold=32)
    try:
        c = engine.create_collection("race", DIM, segment_rows=64)
        c.insert(np.random.default_rng(0).normal(size=(1000, DIM)).astype(np.float32))
        errors = []
        plans = [("IVF_FLAT", {"nlist": 8}), ("HNSW", {"M": 8, "efConstruction": 32})] * 3

        def build(plan):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    c.create_index(*plan)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=build, args=(p,)) for p in plans]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert c.wait_for_index(60)
        names = {s["index_name"] for s in c.segments() if s["sealed"]}
        assert names == {c.index_type}, (names, c.index_type)  # one index type, never a mix
        assert c.count() == 1000
    finally:
        engine.close()


@pytest.mark.parametrize("threads", [8])
def test_many_threads_create_and_drop_collections(threads):
    engine = Engine(build_threshold=16)
    errors = []

    def work(i):
        try:
            for round_ in range(5):
                name = f"c{i}_{round_}"
                c = engine.create_collection(name, DIM)
                c.insert(np.random.default_rng(i).normal(size=(40, DIM)).astype(np.float32))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    c.create_index("IVF_FLAT", {"nlist": 4})
                assert c.search(np.zeros((1, DIM), np.float32), 3, {"nprobe": 2}).ids.shape == (1, 3)
                engine.drop_collection(name)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    try:
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert not errors, errors
        assert engine.list_collections() == []
    finally:
        engine.close()
