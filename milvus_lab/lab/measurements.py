"""Measurements: build an index once in the engine, then run the queries once per search setting.

Each setting gives one row: k-recall@k against the exact ground truth, QPS of the whole query batch
(best of a few runs), single-query latency p50 / p95 / p99 over a bounded number of one-query calls,
the build time and the index memory. Builds are cached in a :class:`Session` by (data, index type,
build parameters), so further search settings and later calls reuse them.

An index type whose build left part of the data raw (too few rows to train, see the reference's
section 1) is not measured: its row says why (``status="not indexed"``), and recall / QPS stay empty.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import spec
from ..engine import Collection, Engine, IndexReport
from ..errors import BuildIndexError, ParamError, RawSegmentWarning, RecommendationWarning
from .datasets import Dataset
from .metrics import latency_percentiles, recall_at_k

if TYPE_CHECKING:
    import pandas as pd
    from typing_extensions import Self

#: single-query calls timed per setting for the latency percentiles
DEFAULT_LATENCY_QUERIES = 200
#: ... but only while they take less than this many seconds in all (at least MIN_LATENCY_CALLS calls)
DEFAULT_LATENCY_SECONDS = 1.0
MIN_LATENCY_CALLS = 20
#: the batch is run up to this many times (best time wins) ...
DEFAULT_REPEATS = 3
#: ... stopping early once this much time (s) was spent on it
DEFAULT_MIN_TIME = 0.3

STATUS_OK = "ok"
STATUS_NOT_INDEXED = "not indexed"
STATUS_FAILED = "build failed"
STATUS_SKIPPED = "skipped"

METRIC_COLUMNS = ["recall", "qps", "p50_ms", "p95_ms", "p99_ms", "build_s", "memory_mb"]
INFO_COLUMNS = ["status", "note", "latency_calls", "k", "nq", "n", "dim", "metric", "dataset", "indexed_rows"]


class LabWarning(UserWarning):
    """The lab could not measure something it was asked to (an index type skipped or left raw)."""


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
    return ["index_type", "build_params", "search_params", *METRIC_COLUMNS, *param_columns(), *INFO_COLUMNS]


def results_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows as the lab's tidy DataFrame: fixed columns, integer parameter columns (nullable)."""
    import pandas as pd

    df = pd.DataFrame(list(rows), columns=result_columns())
    for col in param_columns() + ["latency_calls", "k", "nq", "n", "dim", "indexed_rows"]:
        df[col] = pd.array(df[col].tolist(), dtype="Int64") if len(df) else pd.array([], dtype="Int64")
    for col in METRIC_COLUMNS:
        df[col] = df[col].astype(float)
    return df


def format_params(params: Mapping[str, int]) -> str:
    """Parameters as compact JSON, the form the ``build_params`` / ``search_params`` columns hold."""
    return json.dumps({k: int(v) for k, v in params.items()})


# --------------------------------------------------------------------------------------------------
# Timing (usable on any search callable, so benchmarks time raw libraries the same way)
# --------------------------------------------------------------------------------------------------
def time_batch(search: Callable[[np.ndarray], Any], queries: np.ndarray, *, repeats: int = DEFAULT_REPEATS,
               min_time: float = DEFAULT_MIN_TIME) -> tuple[Any, float]:
    """Run ``search(queries)`` up to ``repeats`` times (fewer once ``min_time`` s are spent); return the
    first result and the best wall time in seconds."""
    best, spent, first = float("inf"), 0.0, None
    for run in range(max(1, repeats)):
        started = time.perf_counter()
        out = search(queries)
        elapsed = time.perf_counter() - started
        if run == 0:
            first = out
        best, spent = min(best, elapsed), spent + elapsed
        if spent >= min_time:
            break
    return first, best


def time_single(search: Callable[[np.ndarray], Any], queries: np.ndarray, count: int,
                max_seconds: float | None = None) -> np.ndarray:
    """Wall time (s) of up to ``count`` one-query calls ``search(queries[i:i+1])`` on the first queries,
    stopping early once ``max_seconds`` are spent and at least MIN_LATENCY_CALLS calls were made."""
    times = np.empty(min(count, len(queries)))
    spent = 0.0
    for i in range(len(times)):
        one = queries[i:i + 1]
        started = time.perf_counter()
        search(one)
        times[i] = time.perf_counter() - started
        spent += times[i]
        if max_seconds is not None and spent >= max_seconds and i + 1 >= MIN_LATENCY_CALLS:
            return times[:i + 1]
    return times


# --------------------------------------------------------------------------------------------------
# Builds and the session
# --------------------------------------------------------------------------------------------------
@dataclass
class Build:
    """One index built on a dataset's base vectors (or why it could not be measured)."""

    index_type: str
    params: dict[str, int]
    status: str
    note: str
    build_s: float = float("nan")
    memory_bytes: int = 0
    indexed_rows: int = 0
    collection: Collection | None = None
    report: IndexReport | None = None

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


class Session:
    """An engine (build threshold 1 row, one segment per dataset where possible) and the builds made in it.

    Builds are cached by (base vectors, metric, index type, build parameters); at most
    ``max_cached_builds`` are kept, and at most ``max_cached_bytes`` of collection memory (raw rows plus
    index; default: half of the machine's RAM): the least recently used build is dropped first, the
    newest is always kept. None lifts a limit.
    """

    def __init__(self, *, max_cached_builds: int | None = 16, max_cached_bytes: int | None = -1):
        self.engine = Engine(build_threshold=1)
        self.max_cached_builds = max_cached_builds
        self.max_cached_bytes = _half_of_ram() if max_cached_bytes == -1 else max_cached_bytes
        self._builds: OrderedDict[tuple, Build] = OrderedDict()
        self._serial = itertools.count(1)

    def __repr__(self) -> str:
        return f"Session(cached builds: {len(self._builds)})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def builds(self) -> list[Build]:
        return list(self._builds.values())

    def clear(self) -> None:
        """Drop every cached build and its collection."""
        for build in self._builds.values():
            self._drop(build)
        self._builds.clear()

    def close(self) -> None:
        self.clear()
        self.engine.close()

    def _drop(self, build: Build) -> None:
        if build.collection is not None and self.engine.has_collection(build.collection.name):
            self.engine.drop_collection(build.collection.name)
        build.collection = None

    # ---------------------------------------------------------------- building
    def build(self, dataset: Dataset, index_type: str, params: Mapping[str, Any] | None = None) -> Build:
        """Build ``index_type`` on ``dataset.base`` (or return the cached build). Invalid parameters raise;
        a failed or partial build is returned with its status and reason."""
        index_spec, clean = resolve_build_params(dataset, index_type, params)
        key = (dataset.fingerprint, index_spec.name, tuple(sorted(clean.items())))
        if key in self._builds:
            self._builds.move_to_end(key)
            return self._builds[key]
        build = self._build(dataset, index_spec.name, clean)
        self._builds[key] = build
        self._evict()
        return build

    def cached_bytes(self) -> int:
        """Memory held by the cached builds' collections (raw rows and indexes)."""
        return sum(b.collection.memory_bytes()["total_bytes"] for b in self._builds.values()
                   if b.collection is not None)

    def _evict(self) -> None:
        def over() -> bool:
            if self.max_cached_builds is not None and len(self._builds) > max(1, self.max_cached_builds):
                return True
            return self.max_cached_bytes is not None and self.cached_bytes() > self.max_cached_bytes

        while len(self._builds) > 1 and over():
            _, old = self._builds.popitem(last=False)
            self._drop(old)

    def _build(self, dataset: Dataset, index_type: str, params: dict[str, int]) -> Build:
        name = f"lab{next(self._serial)}_{index_type.lower()}"
        collection = self.engine.create_collection(name, dataset.dim, index_file_size=spec.INDEX_FILE_SIZE_MB[1],
                                                   metric_type=dataset.metric)
        collection.insert(dataset.base)
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
            self.engine.drop_collection(name)
            return Build(index_type, params, STATUS_FAILED, f"{index_type} build failed: {exc}")
        if not report.fully_indexed:
            self.engine.drop_collection(name)
            return Build(index_type, params, STATUS_NOT_INDEXED,
                         f"{index_type} recall/QPS not reported: {report.raw_rows:,} of {dataset.n:,} rows were not "
                         f"indexed{_too_few_rows(index_type, params, dataset.n)}. Engine: {report.message()}",
                         build_s=build_s, indexed_rows=report.indexed_rows, report=report)
        memory = dataset.base.nbytes if index_type == "FLAT" else collection.memory_bytes()["index_bytes"]
        return Build(index_type, params, STATUS_OK, "; ".join(advice), build_s=build_s, memory_bytes=int(memory),
                     indexed_rows=report.indexed_rows if index_type != "FLAT" else dataset.n,
                     collection=collection, report=report)

    # ---------------------------------------------------------------- measuring
    def measure_setting(self, dataset: Dataset, build: Build, search_params: Mapping[str, int] | None, *,
                        k: int = 10, latency_queries: int = DEFAULT_LATENCY_QUERIES,
                        latency_seconds: float | None = DEFAULT_LATENCY_SECONDS, repeats: int = DEFAULT_REPEATS,
                        min_time: float = DEFAULT_MIN_TIME) -> dict[str, Any]:
        """One row: search ``dataset.queries`` with ``search_params`` on a build (no rebuild)."""
        search_params = dict(search_params or {})
        row = build_row(dataset, build, search_params, k)
        if not build.ok:
            return row
        if build.collection is None:
            raise ValueError(f"this {build.index_type} build was dropped from the session's cache; get it again "
                             f"with session.build(dataset, {build.index_type!r}, {build.params!r})")
        collection = build.collection
        params = search_params or None

        def search(queries: np.ndarray) -> Any:
            return collection.search(queries, k, params)

        search(dataset.queries[:1])  # warm-up: thread pools, caches
        result, seconds = time_batch(search, dataset.queries, repeats=repeats, min_time=min_time)
        single = time_single(search, dataset.queries, latency_queries, latency_seconds)
        row.update(recall=recall_at_k(result.ids, dataset, k), qps=dataset.nq / seconds, latency_calls=len(single),
                   **latency_percentiles(single))
        return row

    def measure(self, dataset: Dataset, index_type: str, build_params: Mapping[str, Any] | None = None,
                search_params: Any = None, *, k: int = 10, latency_queries: int = DEFAULT_LATENCY_QUERIES,
                repeats: int = DEFAULT_REPEATS, min_time: float = DEFAULT_MIN_TIME) -> pd.DataFrame:
        """Build once (cached), run the queries once per search setting; one row per setting.

        ``search_params``: a dict, a list of dicts, or a dict of lists (``{"nprobe": [1, 8, 64]}``);
        None uses the spec's default. Recall is k-recall@k against the exact ground truth.
        """
        index_spec, clean = resolve_build_params(dataset, index_type, build_params)
        k = dataset._check_k(k)
        settings = expand_search_params(index_spec.name, search_params, k, clean)
        dataset.ground_truth(k)
        build = self.build(dataset, index_spec.name, clean)
        if not build.ok:
            warnings.warn(build.note, LabWarning, stacklevel=2)
        rows = [self.measure_setting(dataset, build, s, k=k, latency_queries=latency_queries, repeats=repeats,
                                     min_time=min_time) for s in (settings if build.ok else settings[:1])]
        return results_frame(rows)


def _half_of_ram() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, OSError, ValueError):
        return None


def _too_few_rows(index_type: str, params: Mapping[str, int], rows: int) -> str:
    """The spec's training requirement when ``rows`` do not meet it (else empty)."""
    index_spec = spec.INDEXES[index_type]
    need = index_spec.min_rows(params)
    if rows >= need:
        return ""
    return (f" because {index_type} needs at least {need:,} rows to train ({index_spec.min_rows_help}) "
            f"and the data has {rows:,}")


def resolve_build_params(dataset: Dataset, index_type: str, params: Mapping[str, Any] | None
                         ) -> tuple[spec.IndexSpec, dict[str, int]]:
    """The spec and validated build parameters (None: the spec's defaults for this dimension)."""
    index_spec = spec.get_index(index_type)
    if params is None:
        params = spec.default_build_params(index_spec.name, dataset.dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecommendationWarning)
        return spec.validate_build(index_spec.name, params, dim=dataset.dim, metric=dataset.metric, warn=False)


def expand_search_params(index_type: str, search_params: Any, k: int, build_params: Mapping[str, int]
                         ) -> list[dict[str, int]]:
    """Normalise ``search_params`` (dict, list of dicts, dict of lists, None) and validate each setting."""
    if search_params is None:
        settings: list[Mapping[str, Any]] = [spec.default_search_params(index_type, k, build_params)]
    elif isinstance(search_params, Mapping):
        names = list(search_params)
        values = [v if isinstance(v, (list, tuple, range, np.ndarray)) else [v] for v in search_params.values()]
        settings = [dict(zip(names, combo)) for combo in itertools.product(*values)]
    elif isinstance(search_params, Sequence) and not isinstance(search_params, str):
        settings = list(search_params)
    else:
        raise ParamError(f"search_params must be a dict, a list of dicts or None; got {search_params!r}")
    if not settings:
        raise ParamError("search_params is empty; give at least one setting")
    return [spec.validate_search(index_type, s, top_k=k, build_params=build_params) for s in settings]


def build_row(dataset: Dataset, build: Build, search_params: Mapping[str, int], k: int) -> dict[str, Any]:
    """A result row for a build, with its status, build time and memory; search measurements empty."""
    row = base_row(dataset, build.index_type, build.params, search_params, k)
    row.update(status=build.status, note=build.note, build_s=build.build_s,
               memory_mb=build.memory_bytes / 2**20 if build.ok else float("nan"), indexed_rows=build.indexed_rows)
    return row


def base_row(dataset: Dataset, index_type: str, build_params: Mapping[str, int], search_params: Mapping[str, int],
             k: int) -> dict[str, Any]:
    """A result row with the identifying columns filled and the measurements empty."""
    row: dict[str, Any] = {
        "index_type": index_type, "build_params": format_params(build_params),
        "search_params": format_params(search_params), "k": k, "nq": dataset.nq, "n": dataset.n,
        "dim": dataset.dim, "metric": dataset.metric, "dataset": dataset.name, "status": STATUS_OK, "note": "",
        **{col: float("nan") for col in METRIC_COLUMNS},
    }
    for name, value in build_params.items():
        row[param_column(index_type, "build", name)] = int(value)
    for name, value in search_params.items():
        row[param_column(index_type, "search", name)] = int(value)
    return row


_DEFAULT_SESSION: Session | None = None


def default_session() -> Session:
    """The session module-level functions use when none is given (one per process)."""
    global _DEFAULT_SESSION
    if _DEFAULT_SESSION is None:
        _DEFAULT_SESSION = Session()
    return _DEFAULT_SESSION


def measure(dataset: Dataset, index_type: str, build_params: Mapping[str, Any] | None = None,
            search_params: Any = None, *, k: int = 10, session: Session | None = None,
            latency_queries: int = DEFAULT_LATENCY_QUERIES, repeats: int = DEFAULT_REPEATS,
            min_time: float = DEFAULT_MIN_TIME) -> pd.DataFrame:
    """Measure one index type and build on ``dataset`` for each search setting (see :meth:`Session.measure`).

    Columns: index_type, build_params, search_params, recall (k-recall@k), qps (whole batch),
    p50_ms / p95_ms / p99_ms (single-query calls), build_s, memory_mb (what the index holds to answer
    queries; FLAT: the raw vectors), one column per parameter, status and note.
    """
    return (session or default_session()).measure(dataset, index_type, build_params, search_params, k=k,
                                                  latency_queries=latency_queries, repeats=repeats,
                                                  min_time=min_time)
