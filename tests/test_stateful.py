"""Model-based fuzzing: random call sequences on the engine, checked after every step against NumPy.

The model is a dict of visible entities per collection (id -> vector, partition), the ids waiting for a
flush to be deleted, the id mode and the index type. After every step the engine must agree with it
exactly (counts, partitions, ids per segment, every entity's vector); FLAT searches must equal the exact
top-k (ties allowed), other searches must return live, unique ids with sorted distances that are, for
index types storing full vectors, the true distances. Invalid calls are drawn too: each must raise its
specific error and leave the engine equal to the unchanged model.

Profiles: ``ci`` (bounded, the default here) and ``long`` (>= 10,000 sequences, ``scripts/fuzz_long.py``).
``MILVUS_LAB_FUZZ_PROFILE=long pytest tests/test_stateful.py`` also selects it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from helpers import examples

from milvus_lab import Engine, spec
from milvus_lab.engine import DEFAULT_PARTITION
from milvus_lab.errors import (
    AlreadyExistsError,
    CollectionNotFoundError,
    IllegalDimensionError,
    IllegalIdError,
    IllegalIndexTypeError,
    IllegalRecordError,
    IllegalTopKError,
    InvalidParameterError,
    MilvusLabError,
    NotFoundError,
    ParamError,
)

_COMMON = {"deadline": None, "print_blob": True,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.data_too_large]}
# CI replays the same sequences every run (no flaky red builds; a quick local run replays fewer: helpers.examples);
# the long profile explores at random (scripts/fuzz_long.py). fuzz_ci never replaces conftest's suite-wide "ci".
settings.register_profile("fuzz_ci", max_examples=int(os.environ.get("MILVUS_LAB_FUZZ_EXAMPLES", examples(60))),
                          stateful_step_count=40, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=10_000, stateful_step_count=50, derandomize=False, **_COMMON)
PROFILE = {"ci": "fuzz_ci", "long": "long"}[os.environ.get("MILVUS_LAB_FUZZ_PROFILE", "ci")]

NAMES = ("c0", "c1", "c2")
TAGS = ("p1", "p2")
#: rows per collection at most (keeps every step cheap; IVF_PQ needs 256 rows in one segment)
MAX_ROWS = 320
#: index types whose distances are computed on stored full vectors (quantized ones return code distances)
FULL_VECTOR_INDEXES = {"FLAT", "IVF_FLAT", "RNSG", "HNSW", "ANNOY"}
#: counts of outcomes that are allowed but worth reporting (read by scripts/fuzz_long.py)
STATS: dict[str, int] = {}


def _count(key: str) -> None:
    STATS[key] = STATS.get(key, 0) + 1


# ------------------------------------------------------------------------------------------------------
# The NumPy oracle (independent of the backends)
# ------------------------------------------------------------------------------------------------------
def _bits(codes: np.ndarray) -> np.ndarray:
    return np.unpackbits(np.asarray(codes, dtype=np.uint8), axis=1).astype(np.int64)


def model_distances(metric: str, vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(nq, n) float64 distances in Milvus's convention; +inf where SUB/SUPERSTRUCTURE has no hit."""
    if len(vectors) == 0:
        return np.zeros((len(queries), 0))
    if metric in ("L2", "IP"):
        x = np.asarray(vectors, np.float64)
        q = np.asarray(queries, np.float64)
        if metric == "IP":
            return q @ x.T
        return ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    b, qb = _bits(vectors), _bits(queries)
    inter = qb @ b.T
    pop_q, pop_b = qb.sum(1)[:, None], b.sum(1)[None, :]
    if metric == "HAMMING":
        return (pop_q + pop_b - 2 * inter).astype(np.float64)
    union = pop_q + pop_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        sim = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        if metric == "TANIMOTO":
            return -np.log2(sim)
    jac = 1.0 - sim
    if metric == "JACCARD":
        return jac
    hit = inter == (pop_q if metric == "SUBSTRUCTURE" else pop_b)
    return np.where(hit, jac, np.inf)


def close(a: Any, b: Any) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    both_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    with np.errstate(invalid="ignore"):
        near = np.abs(a - b) <= 2e-3 * (1.0 + np.maximum(np.abs(a), np.abs(b)))
    return both_inf | near


def check_result_shape(res: Any, nq: int, top_k: int, metric: str) -> None:
    """Shape, dtypes, padding at the end only, no duplicate ids, distances sorted best first."""
    assert res.ids.shape == (nq, top_k) and res.distances.shape == (nq, top_k), res.ids.shape
    assert res.ids.dtype == np.int64 and res.distances.dtype == np.float32
    descending = metric in spec.DESCENDING_METRICS
    fill = -np.inf if descending else np.inf
    for row_ids, row_d in zip(res.ids, res.distances):
        real = row_ids >= 0
        n = int(real.sum())
        assert real[:n].all() and not real[n:].any(), f"padding is not at the end: {row_ids.tolist()}"
        assert (row_ids[~real] == -1).all(), row_ids
        assert (row_d[~real] == fill).all(), f"padding distance must be {fill}: {row_d.tolist()}"
        assert len(set(row_ids[real].tolist())) == n, \
            f"duplicate ids in one result row: {row_ids.tolist()}"
        d = row_d[real].astype(np.float64)
        assert not np.isnan(d).any(), d
        if n > 1:
            with np.errstate(invalid="ignore"):
                step = np.diff(d)
            finite = np.isfinite(step)
            ok = (step[finite] <= 1e-4 * (1 + np.abs(d[1:][finite]))) if descending else \
                (step[finite] >= -1e-4 * (1 + np.abs(d[1:][finite])))
            assert ok.all(), f"distances not sorted best first: {d.tolist()}"


def check_search(metric: str, ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, top_k: int,
                 res: Any, *, exact: bool, true_distances: bool) -> None:
    """Check a search result against the rows that were searchable (``ids``/``vectors``)."""
    check_result_shape(res, len(queries), top_k, metric)
    dist = model_distances(metric, vectors, queries)
    where = {int(v): i for i, v in enumerate(ids.tolist())}
    descending = metric in spec.DESCENDING_METRICS
    for q in range(len(queries)):
        real = res.ids[q] >= 0
        got = res.ids[q][real].tolist()
        unknown = [i for i in got if i not in where]
        assert not unknown, f"query {q}: ids {unknown} are not live in the searched rows"
        row = dist[q]
        hits = np.isfinite(row) if metric in ("SUBSTRUCTURE", "SUPERSTRUCTURE") else np.ones(len(row), bool)
        truth = row[[where[i] for i in got]]
        if metric in ("SUBSTRUCTURE", "SUPERSTRUCTURE"):
            assert np.isfinite(truth).all(), f"query {q}: ids {got} include non-hits"
        assert len(got) <= min(top_k, int(hits.sum())), (len(got), top_k, int(hits.sum()))
        if true_distances or exact:
            ok = close(res.distances[q][real], truth)
            assert ok.all(), (f"query {q}: returned distances {res.distances[q][real].tolist()} are not the "
                              f"true distances {truth.tolist()} of ids {got}")
        if exact:
            expect = np.sort(row[hits])
            if descending:
                expect = expect[::-1]
            expect = expect[:top_k]
            assert len(got) == len(expect), (f"query {q}: {len(got)} hits, exact search has {len(expect)}")
            assert close(truth, expect).all(), (f"query {q}: not the exact top-{top_k}: got distances "
                                                f"{truth.tolist()}, exact {expect.tolist()}")


# ------------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------------
@dataclass
class CollectionModel:
    dim: int
    metric: str
    segment_rows: int | None
    partitions: list[str] = field(default_factory=lambda: [DEFAULT_PARTITION])
    rows: dict[int, tuple[np.ndarray, str]] = field(default_factory=dict)
    pending: set[int] = field(default_factory=set)
    gone: set[int] = field(default_factory=set)
    id_mode: str | None = None
    next_auto: int = 0
    index_type: str = "FLAT"
    index_params: dict[str, int] = field(default_factory=dict)

    @property
    def binary(self) -> bool:
        return spec.is_binary_metric(self.metric)

    def arrays(self, tags: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        keep = [(i, v) for i, (v, t) in self.rows.items() if tags is None or t in tags]
        width = self.dim // 8 if self.binary else self.dim
        dtype = np.uint8 if self.binary else np.float32
        if not keep:
            return np.empty(0, np.int64), np.empty((0, width), dtype)
        return np.array([i for i, _ in keep], np.int64), np.stack([v for _, v in keep]).astype(dtype)

    def flush(self) -> None:
        for i in self.pending:
            if i in self.rows:
                del self.rows[i]
                self.gone.add(i)
        self.pending.clear()


def draw_build_params(data: Any, index_type: str, dim: int, small: bool = True) -> dict[str, int]:
    """Valid build parameters drawn from the spec's ranges (kept small so builds take milliseconds)."""
    idx = spec.INDEXES[index_type]
    ctx: dict[str, Any] = {"dim": dim}
    out: dict[str, int] = {}
    todo = list(idx.build.items())
    for _ in range(len(todo) + 1):
        later = []
        for name, param in todo:
            low, high = spec.bounds(param, ctx)
            if high is None and param.high is not None:
                later.append((name, param))  # bound refers to a parameter not drawn yet
                continue
            choices = spec.allowed_values(param, ctx)
            if choices is not None:
                value = data.draw(st.sampled_from(choices), label=name)
            else:
                cap = {"nlist": 40, "out_degree": 24, "knng": 30, "candidate_pool_size": 80, "M": 16,
                       "efConstruction": 48, "n_trees": 8, "search_length": 40}.get(name, 64) if small else high
                hi = min(high, max(low, cap))
                value = data.draw(st.integers(low, hi), label=name)
            out[name] = value
            ctx[name] = value
        todo = later
        if not todo:
            break
    return out


NO_VALID_PARAMS = object()


def draw_search_params(data: Any, index_type: str, build: dict[str, int], top_k: int) -> Any:
    """Valid search parameters for the collection's index type (None or {} for FLAT), or NO_VALID_PARAMS
    when none exist for this top_k (HNSW ef cannot reach a top_k above 4096)."""
    idx = spec.INDEXES[index_type]
    if idx.is_flat:
        return data.draw(st.sampled_from([None, {}]), label="params")
    ctx = spec.search_context(top_k, build)
    out = {}
    for name, param in idx.search.items():
        low, high = spec.bounds(param, ctx)
        if param.special and data.draw(st.booleans(), label=f"{name} special"):
            out[name] = param.special[0]
            continue
        hi = high if high is not None else low + 500
        if low > hi:
            return NO_VALID_PARAMS
        out[name] = data.draw(st.one_of(st.just(low), st.just(hi), st.integers(low, min(hi, low + 300))),
                              label=name)
    return out


# ------------------------------------------------------------------------------------------------------
# The state machine
# ------------------------------------------------------------------------------------------------------
class EngineMachine(RuleBasedStateMachine):
    """Drives one Engine and the model side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.engine: Engine | None = None
        self.model: dict[str, CollectionModel] = {}
        self.threshold = 1
        self.rng = np.random.default_rng(0)

    # ---------------------------------------------------------------- helpers
    def expect(self, error: type[BaseException] | None, call: Callable[[], Any], label: str) -> Any:
        """Run ``call``; it must raise exactly ``error`` (a subclass) or succeed when ``error`` is None."""
        _count(label if error is None else f"refused: {label}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                value = call()
            except MilvusLabError as exc:
                if error is None or not isinstance(exc, error):
                    raise AssertionError(f"{label}: expected {error.__name__ if error else 'success'}, got "
                                         f"{type(exc).__name__}: {exc}") from exc
                assert str(exc), f"{label}: empty error message"
                return exc
        if error is not None:
            raise AssertionError(f"{label}: expected {error.__name__}, but the call succeeded")
        return value

    def choose(self, options: Any) -> Any:
        """A uniform choice from the run's own generator (seeded by a hypothesis draw): in stateful runs
        hypothesis draws small integers so often that ``sampled_from`` rarely reaches the last options."""
        options = list(options)
        return options[int(self.rng.integers(len(options)))]

    def pick(self, data: Any) -> tuple[str, CollectionModel]:
        name = data.draw(st.sampled_from(sorted(self.model)), label="collection")
        return name, self.model[name]

    def vectors(self, data: Any, m: CollectionModel, n: int) -> np.ndarray:
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
        kind = self.choose(["random", "small ints", "copies"])
        if kind == "copies" and m.rows:
            _, pool = m.arrays()
            return pool[rng.integers(0, len(pool), n)].copy()
        if m.binary:
            width = m.dim // 8
            if kind == "small ints":  # sparse bits: zero vectors, subsets and supersets appear
                return np.packbits(rng.random((n, m.dim)) < 0.15, axis=1).astype(np.uint8)
            return rng.integers(0, 256, (n, width), dtype=np.uint8)
        if kind == "small ints":  # many exact ties
            return rng.integers(-2, 3, (n, m.dim)).astype(np.float32)
        return rng.normal(size=(n, m.dim)).astype(np.float32)

    def as_records(self, data: Any, m: CollectionModel, vectors: np.ndarray) -> Any:
        if m.binary:
            return data.draw(st.sampled_from([[bytes(r) for r in vectors], vectors]), label="records form")
        return data.draw(st.sampled_from([vectors, vectors.tolist()]), label="records form")

    # ---------------------------------------------------------------- setup
    @initialize(threshold=st.sampled_from([4, 16, 48]), data=st.data())
    def start(self, threshold: int, data: Any) -> None:
        _count("sequences")
        self.engine = Engine(build_threshold=threshold)
        self.threshold = threshold
        self.rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="choice seed"))
        self.create_collection(data)

    def teardown(self) -> None:
        if self.engine is not None:
            self.engine.close()

    # ---------------------------------------------------------------- collections and partitions
    @rule(data=st.data())
    def create_collection(self, data: Any) -> None:
        free = [n for n in NAMES if n not in self.model]
        taken = bool(self.model) and (data.draw(st.integers(0, 9), label="existing name") == 9 or not free)
        name = data.draw(st.sampled_from(sorted(self.model) if taken else free), label="name")
        metrics = ["L2", "IP", "L2", "IP", "HAMMING", "JACCARD", "TANIMOTO", "SUBSTRUCTURE", "SUPERSTRUCTURE"]
        metric = self.choose(metrics)
        binary = spec.is_binary_metric(metric)
        dim = data.draw(st.sampled_from([8, 16] if binary else [4, 6, 8]), label="dim")
        seg_rows = data.draw(st.sampled_from([None, 20, 64, 300]), label="segment_rows")
        if name in self.model:
            self.expect(AlreadyExistsError, lambda: self.engine.create_collection(name, dim, 1, metric), "create")
            return
        # small segments (segment_rows) seal and build in the background
        self.expect(None, lambda: self.engine.create_collection(name, dim, 1, metric, segment_rows=seg_rows),
                    "create")
        self.model[name] = CollectionModel(dim, metric, seg_rows)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def drop_collection(self, data: Any) -> None:
        missing = [n for n in NAMES if n not in self.model]
        absent = data.draw(st.integers(0, 9), label="missing name") == 9 and missing or not self.model
        name = data.draw(st.sampled_from(missing if absent else sorted(self.model)), label="name")
        if name not in self.model:
            self.expect(CollectionNotFoundError, lambda: self.engine.drop_collection(name), "drop missing")
            return
        self.expect(None, lambda: self.engine.drop_collection(name), "drop")
        del self.model[name]

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def create_partition(self, data: Any) -> None:
        name, m = self.pick(data)
        tag = data.draw(st.sampled_from((DEFAULT_PARTITION,) + TAGS), label="tag")
        c = self.engine.get_collection(name)
        if tag in m.partitions:
            self.expect(AlreadyExistsError, lambda: c.create_partition(tag), "create existing partition")
            return
        self.expect(None, lambda: c.create_partition(tag), "create partition")
        m.partitions.append(tag)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def drop_partition(self, data: Any) -> None:
        name, m = self.pick(data)
        tag = data.draw(st.sampled_from((DEFAULT_PARTITION,) + TAGS), label="tag")
        c = self.engine.get_collection(name)
        if tag == DEFAULT_PARTITION:
            self.expect(InvalidParameterError, lambda: c.drop_partition(tag), "drop _default")
            return
        if tag not in m.partitions:
            self.expect(NotFoundError, lambda: c.drop_partition(tag), "drop missing partition")
            return
        self.expect(None, lambda: c.drop_partition(tag), "drop partition")
        m.partitions.remove(tag)
        for i in [i for i, (_, t) in m.rows.items() if t == tag]:
            del m.rows[i]
            m.gone.add(i)

    # ---------------------------------------------------------------- data
    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def insert(self, data: Any) -> None:
        self._insert(data, 40)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def insert_more(self, data: Any) -> None:
        self._insert(data, 40)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def insert_bulk(self, data: Any) -> None:
        self._insert(data, 200)

    def _insert(self, data: Any, most: int) -> None:
        name, m = self.pick(data)
        room = MAX_ROWS - len(m.rows)
        if room <= 0:
            return
        n = data.draw(st.integers(1, min(room, most)), label="rows")
        if data.draw(st.integers(0, 9), label="any tag") == 9:
            tag = data.draw(st.sampled_from((None, DEFAULT_PARTITION) + TAGS), label="tag")
        else:
            tag = data.draw(st.sampled_from([None] + m.partitions), label="tag")
        if m.id_mode is None:
            user = data.draw(st.booleans(), label="user ids")
        else:
            user = (m.id_mode == "user") != (data.draw(st.integers(0, 9), label="switch mode") == 9)
        vectors = self.vectors(data, m, n)
        ids = None
        if user:
            rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="id seed"))
            ids = rng.integers(0, 2**62, n, dtype=np.int64)
            reuse = data.draw(st.sampled_from(["fresh", "fresh", "deleted", "live", "edges"]), label="ids")
            pool = {"deleted": sorted(m.gone), "live": sorted(m.rows), "edges": [0, spec.ID_RANGE[1]]}.get(reuse, [])
            if pool:
                take = data.draw(st.integers(1, min(n, len(pool))), label="reused")
                ids[:take] = rng.choice(np.array(pool, dtype=np.int64), take, replace=False)
            if len(np.unique(ids)) != n:
                return
            ids = data.draw(st.sampled_from([ids, ids.tolist()]), label="ids form")
        records = self.as_records(data, m, vectors)
        where = DEFAULT_PARTITION if tag is None else tag
        mode = "user" if user else "auto"
        if where not in m.partitions:
            error = NotFoundError
        elif m.id_mode is not None and m.id_mode != mode or user and any(int(i) in m.rows for i in ids):
            error = IllegalIdError
        else:
            error = None
        c = self.engine.get_collection(name)
        got = self.expect(error, lambda: c.insert(records, ids=ids, partition_tag=tag), f"insert ({mode})")
        if error is not None:
            return
        expect_ids = (np.asarray(ids, np.int64) if user else np.arange(m.next_auto, m.next_auto + n))
        assert np.array_equal(got, expect_ids), (got[:5], expect_ids[:5])
        for i, v in zip(expect_ids.tolist(), vectors):
            m.rows[i] = (v.copy(), where)
            m.gone.discard(i)
        m.id_mode = mode
        if not user:
            m.next_auto += n

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete(self, data: Any) -> None:
        name, m = self.pick(data)
        pools = [sorted(m.rows), sorted(m.pending), sorted(m.gone), [0, 7, 10**12]]
        ids: list[int] = []
        for pool in pools:
            if pool:
                ids += data.draw(st.lists(st.sampled_from(pool), max_size=12), label="delete ids")
        if not ids:
            ids = [data.draw(st.integers(0, 1000), label="delete id")]
        # a delete reaches the entities that exist when it is called, never one inserted later with that id
        self.expect(None, lambda: self.engine.get_collection(name).delete(ids), "delete")
        m.pending.update(i for i in ids if i in m.rows)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def flush(self, data: Any) -> None:
        how = data.draw(st.sampled_from(["one", "list", "all"]), label="flush")
        if how == "all":
            self.expect(None, lambda: self.engine.flush(), "flush all")
            names = list(self.model)
        else:
            name, _ = self.pick(data)
            names = [name]
            call = (lambda: self.engine.get_collection(name).flush()) if how == "one" else \
                (lambda: self.engine.flush([name]))
            self.expect(None, call, "flush")
        for name in names:
            self.model[name].flush()

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def compact(self, data: Any) -> None:
        name, _ = self.pick(data)
        c = self.engine.get_collection(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c.compact()  # rebuilds rewritten sealed segments; data that cannot train stays raw, never fails

    # ---------------------------------------------------------------- indexes
    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def create_index(self, data: Any) -> None:
        name, m = self.pick(data)
        allowed = spec.index_types_for_metric(m.metric)
        any_type = data.draw(st.integers(0, 9), label="any index type") == 9
        index_type = self.choose(spec.INDEX_TYPES if any_type else allowed)
        c = self.engine.get_collection(name)
        if m.metric not in spec.INDEXES[index_type].metrics:
            self.expect(IllegalIndexTypeError, lambda: c.create_index(index_type, {}), "index for wrong metric")
            return
        params = draw_build_params(data, index_type, m.dim)
        note(f"create_index({name!r}, {index_type!r}, {params})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # valid parameters always succeed (reference 1): a segment that cannot be indexed stays raw
            report = c.create_index(index_type, params)
        m.index_type, m.index_params = index_type, dict(params)
        _count(f"create_index {index_type}")
        assert report.indexed_rows + report.raw_rows == (len(m.rows) if index_type != "FLAT" else 0) or \
            index_type == "FLAT", report
        if report.indexed_rows:
            _count(f"indexed {index_type}")
        assert len(report.raw_reasons) == report.raw_segments, report  # raw segments always say why
        for seg in c.segments():
            assert (seg["index_name"] == index_type) == (seg["raw_reason"] is None) or index_type == "FLAT", seg
            # reference 1: a segment below the build threshold or too small to train stays raw and says so;
            # any other segment is indexed, unless the backend found its data untrainable (and says why)
            rows = seg["row_count"] + seg["deleted_rows"]
            small = spec.segment_raw_reason(index_type, params, rows, build_threshold=self.engine.build_threshold)
            if small is not None:
                assert seg["index_name"] == "FLAT" and small in seg["raw_reason"], (seg, small)
            elif rows and index_type != "FLAT" and seg["index_name"] == "FLAT":
                _count(f"untrainable segment {index_type}")
                assert seg["raw_reason"], seg

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def create_index_again(self, data: Any) -> None:
        self.create_index(data)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def drop_index(self, data: Any) -> None:
        name, m = self.pick(data)
        c = self.engine.get_collection(name)
        self.expect(None, c.drop_index, "drop_index")
        m.index_type, m.index_params = "FLAT", {}
        assert c.describe()["index_memory_bytes"] == 0

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def wait_for_background_builds(self, data: Any) -> None:
        name, _ = self.pick(data)
        assert self.engine.get_collection(name).wait_for_index(60)

    # ---------------------------------------------------------------- reads
    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def get_entity_by_id(self, data: Any) -> None:
        name, m = self.pick(data)
        pools = [sorted(m.rows), sorted(m.gone), [1, 99, 2**40]]
        ids = []
        for pool in pools:
            if pool:
                ids += data.draw(st.lists(st.sampled_from(pool), max_size=6), label="get ids")
        if not ids:
            return
        got = self.expect(None, lambda: self.engine.get_collection(name).get_entity_by_id(ids), "get_entity")
        for i, v in zip(ids, got):
            if i in m.rows:
                assert v is not None and np.array_equal(v, m.rows[i][0]), (i, v, m.rows[i][0])
            else:
                assert v is None, (i, v)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def search(self, data: Any) -> None:
        name, m = self.pick(data)
        c = self.engine.get_collection(name)
        nq = data.draw(st.integers(1, 3), label="nq")
        queries = self.vectors(data, m, nq)
        top_k = data.draw(st.sampled_from([1, 2, 3, 5, 10, 40, 400, spec.TOP_K[1]]), label="top_k")
        tags = None
        if data.draw(st.booleans(), label="by partition"):
            tags = data.draw(st.lists(st.sampled_from(m.partitions), min_size=1, max_size=3), label="tags")
        params = draw_search_params(data, m.index_type, m.index_params, top_k)
        if params is NO_VALID_PARAMS:
            bad = spec.default_search_params(m.index_type, 1, m.index_params)
            self.expect(InvalidParameterError, lambda: c.search(queries, top_k, bad, tags), "search no params")
            return
        settle = data.draw(st.booleans(), label="wait for background builds")
        if settle:
            assert c.wait_for_index(60)
        res = self.expect(None, lambda: c.search(self.as_records(data, m, queries), top_k, params, tags),
                          "search")
        raw = all(s["index_name"] == "FLAT" for s in c.segments()) if settle else False
        full_probe = (m.index_type == "IVF_FLAT" and params["nprobe"] == m.index_params["nlist"])
        exact = m.index_type == "FLAT" or raw or full_probe
        ids, vectors = m.arrays(tags)
        note(f"search {name} {m.index_type} {params} top_k={top_k} exact={exact}")
        _count(f"search {'exact' if exact else 'approximate'} {m.index_type}")
        if any(s["index_name"] != "FLAT" for s in c.segments()):
            _count(f"search with a built {m.index_type} segment")
        check_search(m.metric, ids, vectors, queries, top_k, res, exact=exact,
                     true_distances=m.index_type in FULL_VECTOR_INDEXES)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def search_again(self, data: Any) -> None:
        self.search(data)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def search_in_segment(self, data: Any) -> None:
        name, m = self.pick(data)
        c = self.engine.get_collection(name)
        assert c.wait_for_index(60)
        segs = [s["name"] for s in c.segments()]
        if not segs:
            return
        chosen = data.draw(st.lists(st.sampled_from(segs), min_size=1, max_size=3, unique=True), label="segs")
        queries = self.vectors(data, m, 2)
        top_k = data.draw(st.sampled_from([1, 4, 30]), label="top_k")
        params = draw_search_params(data, m.index_type, m.index_params, top_k)
        if params is NO_VALID_PARAMS:
            return
        res = self.expect(None, lambda: c.search_in_segment([int(s) for s in chosen], queries, top_k, params),
                          "search_in_segment")
        live = set()
        for s in chosen:
            live.update(c.list_id_in_segment(s))
        ids = np.array(sorted(live), np.int64)
        vectors = np.stack([m.rows[i][0] for i in ids.tolist()]) if len(ids) else m.arrays([])[1]
        raw = all(s["index_name"] == "FLAT" for s in c.segments() if s["name"] in chosen)
        exact = m.index_type == "FLAT" or raw
        check_search(m.metric, ids, vectors, queries, top_k, res, exact=exact,
                     true_distances=m.index_type in FULL_VECTOR_INDEXES)

    # ---------------------------------------------------------------- invalid calls
    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def invalid_call(self, data: Any) -> None:
        name, m = self.pick(data)
        c = self.engine.get_collection(name)
        width = m.dim // 8 if m.binary else m.dim
        good = self.vectors(data, m, 2)
        cases: list[tuple[str, Callable[[], Any], type[BaseException]]] = [
            ("top_k 0", lambda: c.search(good, 0), IllegalTopKError),
            ("top_k too big", lambda: c.search(good, spec.TOP_K[1] + 1), IllegalTopKError),
            ("top_k float", lambda: c.search(good, 2.0), ParamError),
            ("negative id delete", lambda: c.delete([3, -1]), ParamError),
            ("negative id insert", lambda: c.insert(good, ids=[5, -2]), ParamError),
            ("duplicate ids in batch", lambda: c.insert(good, ids=[77, 77]), IllegalIdError),
            ("ids count", lambda: c.insert(good, ids=[1]), ParamError),
            ("missing partition insert", lambda: c.insert(good, partition_tag="nope"), NotFoundError),
            ("missing partition search", lambda: c.search(good, 1, None, ["nope"]), NotFoundError),
            ("bad tag", lambda: c.create_partition("9x"), InvalidParameterError),
            ("drop default", lambda: c.drop_partition(DEFAULT_PARTITION), InvalidParameterError),
            ("unknown segment", lambda: c.list_id_in_segment("999999"), NotFoundError),
            ("unknown segment search", lambda: c.search_in_segment([999999], good, 1), NotFoundError),
            ("unknown index type", lambda: c.create_index("IVF_FOO", {}), IllegalIndexTypeError),
            ("unknown collection", lambda: self.engine.get_collection("nope"), CollectionNotFoundError),
            ("bad collection name", lambda: self.engine.create_collection("1abc", 8), MilvusLabError),
            ("empty ids", lambda: c.get_entity_by_id([]), ParamError),
        ]
        if m.binary:
            cases += [
                ("floats into binary", lambda: c.insert(np.ones((2, width), np.float32)), ParamError),
                ("wrong byte length", lambda: c.insert([b"\x01" * (width + 1)]), IllegalDimensionError),
                ("HNSW on binary", lambda: c.create_index("HNSW", {"M": 8, "efConstruction": 20}),
                 IllegalIndexTypeError),
            ]
        else:
            nan = good.copy()
            nan[1, 0] = np.nan
            inf = good.copy()
            inf[0, -1] = np.inf
            cases += [
                ("wrong dimension", lambda: c.insert(np.ones((2, m.dim + 1), np.float32)), IllegalDimensionError),
                ("wrong query dimension", lambda: c.search(np.ones((1, m.dim - 1)), 1), IllegalDimensionError),
                ("NaN insert", lambda: c.insert(nan), IllegalRecordError),
                ("inf query", lambda: c.search(inf, 1), IllegalRecordError),
                ("bytes into float", lambda: c.insert([b"\x00" * m.dim]), IllegalRecordError),
                ("nlist 0", lambda: c.create_index("IVF_FLAT", {"nlist": 0}), InvalidParameterError),
                ("nlist too big", lambda: c.create_index("IVF_SQ8", {"nlist": 65537}), InvalidParameterError),
                ("unknown build param", lambda: c.create_index("HNSW", {"M": 8, "efConstruction": 20, "x": 1}),
                 InvalidParameterError),
                ("missing build param", lambda: c.create_index("HNSW", {"M": 8}), InvalidParameterError),
                ("PQ m not dividing", lambda: c.create_index("IVF_PQ", {"nlist": 4, "m": 5 if m.dim != 5 else 3}),
                 InvalidParameterError),
                ("RNSG search_length >= pool", lambda: c.create_index(
                    "RNSG", {"search_length": 60, "out_degree": 10, "candidate_pool_size": 60, "knng": 20}),
                 InvalidParameterError),
            ]
        if m.index_type != "FLAT":
            other = {"IVF": {"ef": 50}}.get(m.index_type[:3], {"nprobe": 1})
            cases.append(("search param of another index", lambda: c.search(good, 1, other),
                          InvalidParameterError))
            cases.append(("missing search param", lambda: c.search(good, 1, {}), InvalidParameterError))
            if "nlist" in m.index_params:
                too_many = {"nprobe": m.index_params["nlist"] + 1}
                cases.append(("nprobe > nlist", lambda: c.search(good, 1, too_many), InvalidParameterError))
            if m.index_type == "HNSW":
                cases.append(("ef < top_k", lambda: c.search(good, 20, {"ef": 19}), InvalidParameterError))
            if m.index_type == "ANNOY":
                cases.append(("search_k < top_k", lambda: c.search(good, 20, {"search_k": 5}),
                              InvalidParameterError))
        if m.id_mode == "auto":
            cases.append(("user ids after auto", lambda: c.insert(good, ids=[10**15, 10**15 + 1]), IllegalIdError))
        if m.id_mode == "user":
            cases.append(("auto ids after user", lambda: c.insert(good), IllegalIdError))
            if m.rows:
                live = next(iter(m.rows))
                cases.append(("existing user id", lambda: c.insert(good, ids=[live, 2**61 + 5]), IllegalIdError))
        label, call, error = data.draw(st.sampled_from(cases), label="invalid call")
        self.expect(error, call, label)

    # ---------------------------------------------------------------- the invariant
    @invariant()
    def engine_equals_model(self) -> None:
        if self.engine is None:
            return
        assert sorted(self.engine.list_collections()) == sorted(self.model)
        for name, m in self.model.items():
            c = self.engine.get_collection(name)
            assert c.count() == len(m.rows), (name, c.count(), len(m.rows))
            assert c.list_partitions() == m.partitions
            assert (c.index_type, c.index_params) == (m.index_type, m.index_params)
            stats = c.stats()
            per_tag = {p["tag"]: p["row_count"] for p in stats["partitions"]}
            want = {t: 0 for t in m.partitions}
            for _, t in m.rows.values():
                want[t] += 1
            assert per_tag == want, (per_tag, want)
            seen: dict[int, str] = {}
            for s in c.segments():
                ids = c.list_id_in_segment(s["name"])
                assert len(ids) == s["row_count"], s
                for i in ids:
                    assert i not in seen, f"id {i} is live in two segments"
                    seen[i] = s["partition"]
                assert s["index_name"] in ("FLAT", m.index_type), (s, m.index_type)
                if s["index_name"] != "FLAT":
                    assert s["sealed"] and s["index_memory_bytes"] > 0, s
            assert seen == {i: t for i, (_, t) in m.rows.items()}, "live ids or their partitions differ"
            if m.rows:
                ids = list(m.rows)
                got = c.get_entity_by_id(ids)
                for i, v in zip(ids, got):
                    assert v is not None and np.array_equal(v, m.rows[i][0]), f"entity {i}: {v} != {m.rows[i][0]}"
            if m.gone:
                assert all(v is None for v in c.get_entity_by_id(sorted(m.gone)[:20]))
            if m.index_type == "FLAT":
                assert c.describe()["index_memory_bytes"] == 0


EngineMachine.TestCase.settings = settings.get_profile(PROFILE)
TestEngineMachine = EngineMachine.TestCase


# ------------------------------------------------------------------------------------------------------
# Minimal reproductions of what the fuzzer found (kept as plain tests)
# ------------------------------------------------------------------------------------------------------
#: the shared `engine` fixture (conftest) builds an index once a segment holds this many rows
ENGINE_BUILD_THRESHOLD = 4


@pytest.mark.parametrize("mode", ["auto", "user"])
def test_delete_before_insert_does_not_delete_the_later_entity(engine, mode):
    c = engine.create_collection("d", 4)
    if mode == "auto":
        c.delete([0])  # id 0 does not exist yet
        c.insert(np.ones((1, 4)))  # ... and is generated here
    else:
        c.insert(np.ones((1, 4)), ids=[5])
        c.delete([7])
        c.insert(np.ones((1, 4)), ids=[7])
    before = c.count()
    c.flush()
    assert c.count() == before


@pytest.mark.parametrize("top_k", [1, 2])
def test_tanimoto_hits_at_infinite_distance_are_kept_before_padding(engine, top_k):
    c = engine.create_collection("t", 8, metric_type="TANIMOTO")
    c.insert([b"\x0f", b"\x0f"])  # ids 0 and 1
    c.delete([0])
    c.flush()
    res = c.search([b"\xf0"], top_k)  # shares no bit with 0x0f: distance -log2(0) = +inf, still a hit
    assert res.ids[0].tolist() == [1, -1][:top_k]


def test_rnsg_search_with_top_k_above_search_length_returns_unique_ids(engine):
    dups = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        c = engine.create_collection(f"nsg{seed}", 6)
        c.insert(rng.integers(-2, 3, (200, 6)).astype(np.float32))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c.create_index("RNSG", {"search_length": 36, "out_degree": 14, "candidate_pool_size": 50, "knng": 5})
        res = c.search(rng.normal(size=(3, 6)).astype(np.float32), 40, {"search_length": 10})
        dups += [seed for row in res.ids if len(set(row[row >= 0].tolist())) != int((row >= 0).sum())]
    assert not dups, f"duplicate ids in RNSG results for seeds {sorted(set(dups))}"
