"""Measurements: index a dataset once on a target, then time every search setting with the protocol.

A :class:`Session` holds a :class:`~milvus_lab.protocol.Target` (default: a new in-memory
:class:`~milvus_lab.engine.Engine`; a Milvus server target works the same) and, per dataset, **one**
collection holding the base rows once. A build replaces that collection's index (``drop_index`` first,
so two indexes never sit in memory together), which bounds memory at the data plus one index however many
settings a sweep tries. The session drops only the collections it created.

Each setting gives one row: k-recall@k against the exact ground truth (one batch search), QPS as the
median of interleaved rounds with its spread, single-query latency percentiles with theirs, the build time
and the index memory, the thread count, and whether the machine was busy (see :mod:`.timing`).

An index type whose build left part of the data raw (too few rows to train, see the reference's
section 1) is not measured: its row says why (``status="not indexed"``), and recall / QPS stay empty.
"""

from __future__ import annotations

import itertools
import os
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import spec
from ..units import MIB
from ..errors import BuildIndexError, MilvusLabError, ParamError, RawSegmentWarning, RecommendationWarning
from . import sizing
from .arguments import ARGUMENTS, Int, check, check_index_type, check_target
from .setting import params_json
from .datasets import Dataset, check_dataset
from .metrics import recall_bounds, recall_per_query
from .timing import (
    DEFAULT_CONCURRENCY_SECONDS,
    DEFAULT_LATENCY_QUERIES,
    DEFAULT_REPEATS,
    TIMING_COLUMNS,
    ConcurrencyPlan,
    Monitor,
    check_concurrency,
    client_searches,
    fixed_threads,
    interleaved,
    interleaved_clients,
)

if TYPE_CHECKING:
    import pandas as pd
    from typing_extensions import Self

    from ..protocol import IndexedCollection, Target

STATUS_OK = "ok"
STATUS_NOT_INDEXED = "not indexed"
STATUS_FAILED = "build failed"
STATUS_SKIPPED = "skipped"
STATUS_SERVER_ERROR = "server error"
#: the note of a row whose memory_mb is the published formula's estimate
ESTIMATED_MEMORY_NOTE = ("memory_mb is an estimate from the Milvus sizing tool's formula for this type and these "
                         "parameters: the server reports no index memory")

METRIC_COLUMNS = ["recall", "qps", "p50_ms", "p95_ms", "p99_ms", "build_s", "memory_mb"]
SPREAD_COLUMNS = ["recall_lo", "recall_hi", *TIMING_COLUMNS[:6]]
INFO_COLUMNS = ["status", "note", "latency_calls", "repeats", "threads", "busy", "other_cpu", "drift",
                "deterministic", "memory_estimated", "k", "nq", "n", "dim", "metric", "dataset", "indexed_rows",
                "target"]


#: numbers the collections the lab creates (process-wide, so sessions sharing a target never clash)
_SERIAL = itertools.count(1)


class LabWarning(UserWarning):
    """The lab could not measure something it was asked to (an index type skipped or left raw)."""


class LabMemoryError(MemoryError):
    """A plan would not fit in memory; raised before anything is built, with the estimate."""


# --------------------------------------------------------------------------------------------------
# Parameter columns (from the spec)
# --------------------------------------------------------------------------------------------------
def param_column(index_type: str, stage: str, name: str) -> str:
    """The flattened column of a parameter: its name, or ``build_<name>`` when the index type also has a
    search parameter of that name (RNSG ``search_length``)."""
    index_spec = spec.get_index(index_type)
    if stage == "build" and name in index_spec.search:
        return f"build_{name}"
    return name


def param_columns() -> list[str]:
    """Every flattened parameter column, in the spec's order (build parameters first)."""
    cols: list[str] = []
    for stage in ("build", "search"):
        for name, index_spec in spec.INDEXES.items():
            for param in getattr(index_spec, stage):
                col = param_column(name, stage, param)
                if col not in cols:
                    cols.append(col)
    return cols


def result_columns() -> list[str]:
    return ["index_type", "build_params", "search_params", *METRIC_COLUMNS, *SPREAD_COLUMNS, *param_columns(),
            *INFO_COLUMNS]


def results_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows as the lab's tidy DataFrame: fixed columns, integer parameter columns (nullable)."""
    import pandas as pd

    rows = list(rows)
    extra = [c for r in rows for c in r if c not in result_columns()]
    df = pd.DataFrame(rows, columns=result_columns() + list(dict.fromkeys(extra)))
    for col in param_columns() + ["latency_calls", "repeats", "threads", "k", "nq", "n", "dim", "indexed_rows"]:
        df[col] = pd.array(df[col].tolist(), dtype="Int64") if len(df) else pd.array([], dtype="Int64")
    for col in METRIC_COLUMNS + SPREAD_COLUMNS + ["other_cpu", "drift"]:
        df[col] = df[col].astype(float)
    for col in ("busy", "deterministic", "memory_estimated"):
        df[col] = pd.array(df[col].tolist(), dtype="boolean") if len(df) else pd.array([], dtype="boolean")
    return df


# --------------------------------------------------------------------------------------------------
# Builds and the session
# --------------------------------------------------------------------------------------------------
@dataclass
class Build:
    """One index built on a dataset's base vectors (or why it could not be measured).

    ``collection`` is the dataset's collection while this build is its current index, None once another
    build replaced it (ask the session for it again to rebuild)."""

    index_type: str
    params: dict[str, int]
    status: str
    note: str
    build_s: float = float("nan")
    memory_bytes: int = 0
    indexed_rows: int = 0
    collection: IndexedCollection | None = None
    report: Any = None
    deterministic: bool | None = None
    #: ``memory_bytes`` is the published formula's estimate (the target reports no index memory), not a count
    memory_estimated: bool = False

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


@dataclass
class _Data:
    collection: IndexedCollection
    current: Build | None = None


def target_profile(target: Any) -> str:
    """The spec profile whose rules apply on ``target`` (a Target or a collection): its own ``profile``, else
    Milvus 0.10's (the in-memory engine's)."""
    return getattr(target, "profile", None) or spec.DEFAULT_PROFILE


@dataclass
class Session:
    """A target, one collection per dataset on it, the builds made, and the measurement protocol.

    ``target``: a :class:`~milvus_lab.protocol.Target` (default: a new in-memory Engine with build
    threshold 1). ``threads``: faiss/BLAS threads during runs (default: one per core). ``repeats``:
    timed rounds per setting. ``max_datasets``: collections kept (least recently used dropped first).
    """

    target: Target | None = None
    threads: int | None = None
    repeats: int = DEFAULT_REPEATS
    max_datasets: int = 2
    monitor: Monitor = field(default_factory=Monitor)
    _data: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _builds: dict = field(default_factory=dict, repr=False)
    _created: list = field(default_factory=list, repr=False)
    _own_target: bool = field(default=False, repr=False)
    thread_info: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        check_target(self.target)
        self.threads = check("threads", self.threads)
        self.max_datasets = check("max_datasets", self.max_datasets)
        if self.target is None:
            from ..engine import Engine

            self.target = Engine(build_threshold=1)
            self._own_target = True
        self.repeats = check("repeats", self.repeats, Int(1, ARGUMENTS["repeats"].high))

    def __repr__(self) -> str:
        return f"Session(target={self.describe_target()}, datasets: {len(self._data)}, builds: {len(self._builds)})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def profile(self) -> str:
        """The spec profile whose rules apply on this session's target (:func:`target_profile`)."""
        return target_profile(self.target)

    def describe_target(self) -> str:
        describe = getattr(self.target, "describe", None)
        return describe() if callable(describe) else type(self.target).__name__

    @property
    def builds(self) -> list[Build]:
        return list(self._builds.values())

    def clear(self) -> None:
        """Drop the collections this session created (never any other) and forget its builds."""
        while self._data:
            _, data = self._data.popitem(last=False)
            self._drop_collection(data)
        for build in self._builds.values():
            build.collection = None
        self._builds.clear()

    def close(self) -> None:
        self.clear()
        if self._own_target:
            close = getattr(self.target, "close", None)
            if callable(close):
                close()

    def _drop_collection(self, data: _Data) -> None:
        name = data.collection.name
        if data.current is not None:
            data.current.collection = None
        if name in self._created:
            self._created.remove(name)
            try:
                self.target.drop_collection(name)
            except Exception as exc:  # noqa: BLE001 - a dead server must not hide the error that killed it
                warnings.warn(f"could not drop collection {name!r} on {self.describe_target()}: {exc}", LabWarning,
                              stacklevel=3)

    @contextmanager
    def running(self) -> Iterator[dict[str, Any]]:
        """Fix the thread counts for a run (and record them in ``thread_info``)."""
        with fixed_threads(self.threads) as info:
            self.thread_info = info
            self.monitor.threads = info["threads"]
            yield info

    # ---------------------------------------------------------------- the data's collection
    def holds(self, dataset: Dataset) -> bool:
        """Is ``dataset`` already in a collection of this session?"""
        return dataset.fingerprint in self._data

    def collection_for(self, dataset: Dataset) -> IndexedCollection:
        """The dataset's collection on the target (created and filled on first use)."""
        key = dataset.fingerprint
        if key in self._data:
            self._data.move_to_end(key)
            return self._data[key].collection
        while len(self._data) >= max(1, self.max_datasets):
            _, old = self._data.popitem(last=False)
            self._drop_collection(old)
        name = f"milvus_lab_{os.getpid()}_{next(_SERIAL)}"
        while self.target.has_collection(name):  # never touch a collection the lab did not create
            name = f"milvus_lab_{os.getpid()}_{next(_SERIAL)}"
        collection = self.target.create_collection(name, dataset.dim, metric_type=dataset.metric)
        self._created.append(name)
        try:
            collection.insert(dataset.base)
        except BaseException:
            self._drop_collection(_Data(collection))
            raise
        dataset.ground_truth(1)  # computed (or cached) before the file's pages are let go
        dataset.release_pages()
        self._data[key] = _Data(collection)
        return collection

    # ---------------------------------------------------------------- building
    def build(self, dataset: Dataset, index_type: str, params: Mapping[str, Any] | None = None) -> Build:
        """Build ``index_type`` on ``dataset.base`` (or return the build if it is still the current index).
        Invalid parameters raise; a failed or partial build is returned with its status and reason."""
        index_spec, clean = resolve_build_params(dataset, index_type, params, self.profile)
        key = (dataset.fingerprint, index_spec.name, tuple(sorted(clean.items())))
        cached = self._builds.get(key)
        if cached is not None and (cached.collection is not None or not cached.ok):
            return cached
        collection = self.collection_for(dataset)
        data = self._data[dataset.fingerprint]
        if data.current is not None:
            data.current.collection = None
            data.current = None
            collection.drop_index()  # free the old index before the new one is built
        build = self._build(dataset, collection, index_spec.name, clean)
        if build.ok:
            data.current = build
        self._builds[key] = build
        return build

    def _build(self, dataset: Dataset, collection: IndexedCollection, index_type: str, params: dict[str, int]
               ) -> Build:
        advice: list[str] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                started = time.perf_counter()
                report = collection.create_index(index_type, params)
                build_s = time.perf_counter() - started
            advice = [str(w.message) for w in caught if issubclass(w.category, RecommendationWarning)]
            for w in caught:
                if not issubclass(w.category, (RecommendationWarning, RawSegmentWarning)):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        except BuildIndexError as exc:
            return Build(index_type, params, STATUS_FAILED, f"{index_type} build failed: {exc}")
        deterministic = getattr(report, "deterministic", None)
        if not report.fully_indexed:
            collection.drop_index()
            why = spec.segment_raw_reason(index_type, params, dataset.n, build_threshold=1, profile=self.profile)
            return Build(index_type, params, STATUS_NOT_INDEXED,
                         f"{index_type} recall/QPS not reported: {report.raw_rows:,} of {dataset.n:,} rows were not "
                         f"indexed" + (f" ({why})" if why else "") + f". Target: {report.message()}",
                         build_s=build_s, indexed_rows=report.indexed_rows, report=report)
        memory, estimated = index_memory(dataset, collection, report, index_type, params)
        if estimated:
            advice.append(ESTIMATED_MEMORY_NOTE)
        reused = float(getattr(report, "reused_training_s", 0.0) or 0.0)
        if reused:  # a build from scratch would have trained it: count it, and say so
            build_s += reused
            advice.append(f"build_s counts {reused:.3g} s of coarse k-means and row assignment an earlier build on "
                          f"the same rows computed (same seed, same centroids; reused, not repeated)")
        note = "; ".join(advice)
        return Build(index_type, params, STATUS_OK, note, build_s=build_s, memory_bytes=int(memory),
                     indexed_rows=report.indexed_rows if index_type != "FLAT" else dataset.n,
                     collection=collection, report=report, deterministic=deterministic,
                     memory_estimated=estimated)

    # ---------------------------------------------------------------- measuring
    def search_fn(self, build: Build, k: int, search_params: Mapping[str, int]) -> Callable[[np.ndarray], Any]:
        if build.collection is None:
            raise ValueError(f"this {build.index_type} build was replaced by another on the dataset's collection; "
                             f"get it again with session.build(dataset, {build.index_type!r}, {build.params!r})")
        collection, params = build.collection, dict(search_params) or None

        def search(queries: np.ndarray) -> Any:
            return collection.search(queries, k, params)

        return search

    def recall_of(self, dataset: Dataset, build: Build, search_params: Mapping[str, int], k: int) -> np.ndarray:
        """Per-query k-recall@k of one batch search with ``search_params`` (no timing)."""
        result = self.search_fn(build, k, search_params)(dataset.queries)
        return recall_per_query(result.ids, dataset, k)

    def measure_settings(self, dataset: Dataset, build: Build, settings: Sequence[Mapping[str, int]], *, k: int = 10,
                         latency_queries: int = DEFAULT_LATENCY_QUERIES, repeats: int | None = None,
                         recalls: Sequence[np.ndarray | None] | None = None, concurrency: Any = None,
                         concurrency_seconds: float = DEFAULT_CONCURRENCY_SECONDS,
                         concurrency_batch: int = 1) -> list[dict[str, Any]]:
        """One row per search setting of one build: recall, then every setting timed round-robin.

        ``concurrency`` (e.g. ``(1, 10, 20)``; None: off) adds the concurrent-client columns ``qps_c{N}``,
        ``p50_ms_c{N}``, ``p99_ms_c{N}`` with their spread (:mod:`.concurrency`), the settings interleaved
        again and the busy-machine check covering those timings too."""
        plan = check_concurrency(concurrency, concurrency_seconds, concurrency_batch, nq=dataset.nq)
        settings = [dict(s) for s in settings]
        rows = [build_row(dataset, build, s, k, self) for s in settings]
        if not build.ok:
            return rows[:1]
        recalls = list(recalls) if recalls is not None else [None] * len(settings)
        for row, s, per_query in zip(rows, settings, recalls):
            if per_query is None:
                per_query = self.recall_of(dataset, build, s, k)
            lo, hi = recall_bounds(per_query)
            row.update(recall=float(np.mean(per_query)), recall_lo=lo, recall_hi=hi)
        searches = [self.search_fn(build, k, s) for s in settings]
        with self.monitor.watch() as load:
            timings = interleaved(searches, dataset.queries, repeats=repeats or self.repeats,
                                  latency_queries=latency_queries)
        for row, timing in zip(rows, timings):
            row.update(timing, **load)
        if plan is not None:
            self._measure_clients(dataset, build, settings, rows, k, plan, repeats or self.repeats)
        return rows

    def _measure_clients(self, dataset: Dataset, build: Build, settings: list[dict[str, int]],
                         rows: list[dict[str, Any]], k: int, plan: ConcurrencyPlan, rounds: int) -> None:
        """Concurrent-client columns for every setting of a build (one connection per client on a server)."""
        if build.collection is None:
            self.search_fn(build, k, {})  # raises, naming the build that was replaced
        with client_searches(build.collection, k, settings, max(plan.levels)) as searches, \
                self.monitor.watch() as load:
            timed = interleaved_clients(searches, dataset.queries, plan, rounds=rounds)
        for row, extra in zip(rows, timed):
            note = extra.pop("concurrency_note")
            row.update(extra)
            row["note"] = "; ".join(t for t in (row["note"], note) if t)
            row["busy"] = bool(row.get("busy") or load["busy"])
            row["other_cpu"] = float(np.nanmax([row.get("other_cpu", np.nan), load["other_cpu"]]))
            row["drift"] = float(np.nanmax([row.get("drift", np.nan), load["drift"]]))

    def measure_setting(self, dataset: Dataset, build: Build, search_params: Mapping[str, int] | None, *,
                        k: int = 10, latency_queries: int = DEFAULT_LATENCY_QUERIES,
                        repeats: int | None = None, concurrency: Any = None,
                        concurrency_seconds: float = DEFAULT_CONCURRENCY_SECONDS,
                        concurrency_batch: int = 1) -> dict[str, Any]:
        """One row: search ``dataset.queries`` with ``search_params`` on a build (no rebuild)."""
        return self.measure_settings(dataset, build, [dict(search_params or {})], k=k,
                                     latency_queries=latency_queries, repeats=repeats, concurrency=concurrency,
                                     concurrency_seconds=concurrency_seconds,
                                     concurrency_batch=concurrency_batch)[0]

    def measure(self, dataset: Dataset, index_type: str, build_params: Mapping[str, Any] | None = None,
                search_params: Any = None, *, k: int = 10, latency_queries: int = DEFAULT_LATENCY_QUERIES,
                repeats: int | None = None, concurrency: Any = None,
                concurrency_seconds: float = DEFAULT_CONCURRENCY_SECONDS,
                concurrency_batch: int = 1) -> pd.DataFrame:
        """Build once, then time every search setting interleaved; one row per setting.

        ``search_params``: a dict, a list of dicts, or a dict of lists (``{"nprobe": [1, 8, 64]}``);
        None uses the spec's default. Recall is k-recall@k against the exact ground truth.
        ``concurrency``: see :meth:`measure_settings`.
        """
        check_dataset(dataset)
        latency_queries, repeats = check("latency_queries", latency_queries), check("repeats", repeats)
        plan = check_concurrency(concurrency, concurrency_seconds, concurrency_batch, nq=dataset.nq)
        index_spec, clean = resolve_build_params(dataset, index_type, build_params, self.profile)
        k = dataset.check_k(k)
        settings = expand_search_params(index_spec.name, search_params, k, clean, self.profile)
        dataset.ground_truth(k)
        with self.running():
            build = self.build(dataset, index_spec.name, clean)
            if not build.ok:
                warnings.warn(build.note, LabWarning, stacklevel=2)
            rows = self.measure_settings(dataset, build, settings, k=k, latency_queries=latency_queries,
                                         repeats=repeats, concurrency=plan)
        df = results_frame(rows)
        df.attrs.update(self.run_attrs())
        return df

    def run_attrs(self) -> dict[str, Any]:
        """What a results frame records about the run: threads, target, how busy the machine was."""
        return {**self.thread_info, "target": self.describe_target(), "profile": self.profile,
                **self.monitor.summary()}


def index_memory(dataset: Dataset, collection: Any, report: Any, index_type: str,
                 params: Mapping[str, int] | None = None) -> tuple[int, bool]:
    """(bytes the index holds to answer queries, whether that is an estimate). In memory the engine counts its
    structures (FLAT: the raw vectors); a target that reports no index memory (a Milvus server) gets the
    published formula's figure for the type and parameters (:mod:`.sizing`), marked as an estimate."""
    held = getattr(report, "index_bytes", None)
    memory = getattr(collection, "memory_bytes", None)
    if index_type == "FLAT" and callable(memory):
        return dataset.base.nbytes, False
    if held:
        return int(held), False
    if callable(memory):
        return int(memory()["index_bytes"]), False
    estimate = sizing.index_estimate(index_type, params or {}, dataset.n, dataset.dim)
    return (0, False) if estimate is None else (estimate.bytes, True)


def resolve_build_params(dataset: Dataset, index_type: str, params: Mapping[str, Any] | None,
                         profile: str | None = None) -> tuple[spec.IndexSpec, dict[str, int]]:
    """The spec and validated build parameters (None: the spec's defaults for this dimension)."""
    profile = profile or spec.DEFAULT_PROFILE
    with named("index_type"):
        index_spec = check_index_type(index_type, profile)
    if params is None:
        params = spec.default_build_params(index_spec.name, dataset.dim, profile=profile)
    with warnings.catch_warnings(), named("build_params"):
        warnings.simplefilter("ignore", RecommendationWarning)
        return spec.validate_build(index_spec.name, params, dim=dataset.dim, metric=dataset.metric, warn=False,
                                   profile=profile)


@contextmanager
def named(argument: str) -> Iterator[None]:
    """Re-raise a refusal from the spec with the argument it is about in front, when it does not say it."""
    try:
        yield
    except MilvusLabError as exc:
        if argument in exc.message:
            raise
        raise type(exc)(f"{argument}: {exc.message}") from None


def expand_search_params(index_type: str, search_params: Any, k: int, build_params: Mapping[str, int],
                         profile: str | None = None) -> list[dict[str, int]]:
    """Normalise ``search_params`` (dict, list of dicts, dict of lists, None) and validate each setting."""
    profile = profile or spec.DEFAULT_PROFILE
    with named("search_params"):
        return _expand_search_params(index_type, search_params, k, build_params, profile)


def _expand_search_params(index_type: str, search_params: Any, k: int, build_params: Mapping[str, int],
                          profile: str) -> list[dict[str, int]]:
    if search_params is None:
        settings: list[Mapping[str, Any]] = [spec.default_search_params(index_type, k, build_params, profile=profile)]
    elif isinstance(search_params, Mapping):
        names = list(search_params)
        values = [v if isinstance(v, (list, tuple, range, np.ndarray)) else [v] for v in search_params.values()]
        settings = [dict(zip(names, combo)) for combo in itertools.product(*values)]
    elif isinstance(search_params, Sequence) and not isinstance(search_params, str):
        settings = list(search_params)
    else:
        raise ParamError(f"search_params must be a dict, a list of dicts or None; got {spec.show_value(search_params)}")
    if not settings:
        raise ParamError("search_params is empty; give at least one setting")
    return [spec.validate_search(index_type, s, top_k=k, build_params=build_params, profile=profile)
            for s in settings]


def build_row(dataset: Dataset, build: Build, search_params: Mapping[str, int], k: int,
              session: Session | None = None) -> dict[str, Any]:
    """A result row for a build, with its status, build time and memory; search measurements empty."""
    row = base_row(dataset, build.index_type, build.params, search_params, k, session)
    row.update(status=build.status, note=build.note, build_s=build.build_s,
               memory_mb=build.memory_bytes / MIB if build.ok else float("nan"), indexed_rows=build.indexed_rows,
               deterministic=build.deterministic, memory_estimated=build.memory_estimated if build.ok else None)
    return row


def base_row(dataset: Dataset, index_type: str, build_params: Mapping[str, int], search_params: Mapping[str, int],
             k: int, session: Session | None = None) -> dict[str, Any]:
    """A result row with the identifying columns filled and the measurements empty."""
    row: dict[str, Any] = {
        "index_type": index_type, "build_params": params_json(build_params),
        "search_params": params_json(search_params), "k": k, "nq": dataset.nq, "n": dataset.n,
        "dim": dataset.dim, "metric": dataset.metric, "dataset": dataset.name, "status": STATUS_OK, "note": "",
        **{col: float("nan") for col in METRIC_COLUMNS + SPREAD_COLUMNS},
    }
    if session is not None:
        row.update(threads=session.thread_info.get("threads"), target=session.profile)
    for name, value in build_params.items():
        row[param_column(index_type, "build", name)] = int(value)
    for name, value in search_params.items():
        row[param_column(index_type, "search", name)] = int(value)
    return row


def measure(dataset: Dataset, index_type: str, build_params: Mapping[str, Any] | None = None,
            search_params: Any = None, *, k: int = 10, session: Session | None = None, target: Target | None = None,
            latency_queries: int = DEFAULT_LATENCY_QUERIES, repeats: int | None = None, concurrency: Any = None,
            concurrency_seconds: float = DEFAULT_CONCURRENCY_SECONDS, concurrency_batch: int = 1) -> pd.DataFrame:
    """Measure one index type and build on ``dataset`` for each search setting (see :meth:`Session.measure`).

    ``target``: where to build (default: a new in-memory engine); ``session`` reuses one across calls.
    Columns: index_type, build_params, search_params, recall (k-recall@k) with recall_lo / recall_hi,
    qps (median of interleaved rounds) with qps_lo / qps_hi, p50_ms / p95_ms / p99_ms (single-query calls)
    with the per-round spread, build_s, memory_mb, one column per parameter, threads, busy, status, note.

    ``concurrency=(1, 10, 20)`` (default None: off) also times N client threads per level, each sending
    ``concurrency_batch`` queries per call back to back for ``concurrency_seconds`` per setting and level (split
    over the ``repeats`` rounds, after a warm-up; one connection per client on a server): columns
    ``qps_c{N}`` (median of the rounds), ``p50_ms_c{N}`` / ``p99_ms_c{N}`` (all calls pooled), each with
    ``_lo`` / ``_hi`` (the lowest and highest round), ``calls_c{N}`` and ``clients_failed_c{N}`` (a client whose
    connection dropped; the note says which and why). That adds about ``concurrency_seconds`` x the number of
    levels per setting. See :mod:`milvus_lab.lab.concurrency`.
    """
    check_dataset(dataset)
    check_session(session)
    check_target(target)
    plan = check_concurrency(concurrency, concurrency_seconds, concurrency_batch, nq=dataset.nq)
    with session_scope(session, target=target) as run:
        return run.measure(dataset, index_type, build_params, search_params, k=k, latency_queries=latency_queries,
                           repeats=repeats, concurrency=plan)


@contextmanager
def session_scope(session: Session | None, *, target: Any = None, threads: int | None = None,
                  repeats: int | None = None) -> Iterator[Session]:
    """The caller's ``session``, or a new one on ``target`` that is closed (its collections dropped) on exit."""
    check_session(session)
    if session is not None:
        yield session
        return
    own = Session(target=target, threads=threads, **({"repeats": repeats} if repeats else {}))
    try:
        yield own
    finally:
        own.close()


def check_session(value: Any) -> Session | None:
    """``value`` if it is a lab Session or None; else a ParamError."""
    if value is not None and not isinstance(value, Session):
        raise ParamError(f"session must be a lab Session or None; got {spec.show_value(value)}")
    return value
