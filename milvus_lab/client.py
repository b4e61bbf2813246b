"""The pymilvus 0.2.x call style over the in-memory engine.

Existing scripts run after changing the import and the constructor: ``Milvus()`` with no host is the
engine in this process. Every call returns ``Status`` or ``(Status, value)`` with Milvus's status codes;
arguments of the wrong type raise :class:`ParamError` before anything is looked up, as pymilvus does.
"""

from __future__ import annotations

import functools
import inspect
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from enum import IntEnum
from typing import Any, Callable

import numpy as np

from . import spec
from .engine import Engine, SearchResult
from .errors import MilvusLabError, ParamError, StatusCode

__all__ = ["Milvus", "IndexType", "MetricType", "Status", "ParamError", "TopKQueryResult", "IndexParam",
           "CollectionSchema", "PartitionParam"]


class IndexType(IntEnum):
    INVALID = 0
    FLAT = 1
    IVFLAT = 2
    IVF_SQ8 = 3
    RNSG = 4
    IVF_SQ8H = 5
    IVF_PQ = 6
    HNSW = 11
    ANNOY = 12
    IVF_FLAT = IVFLAT
    IVF_SQ8_H = IVF_SQ8H

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.name}>"

    def __str__(self) -> str:
        return self.name


class MetricType(IntEnum):
    INVALID = 0
    L2 = 1
    IP = 2
    HAMMING = 3
    JACCARD = 4
    TANIMOTO = 5
    SUBSTRUCTURE = 6
    SUPERSTRUCTURE = 7

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.name}>"

    def __str__(self) -> str:
        return self.name


class Status:
    """A call's outcome: ``code`` (0 is success) and ``message``. The code names (``Status.SUCCESS``,
    ``Status.ILLEGAL_ARGUMENT``, ...) are those of :class:`milvus_lab.errors.StatusCode`."""

    SUCCESS = int(StatusCode.SUCCESS)

    def __init__(self, code: int = StatusCode.SUCCESS, message: str = "Success"):
        self.code = int(code)
        self.message = message

    def OK(self) -> bool:  # noqa: N802 (pymilvus name)
        return self.code == Status.SUCCESS

    def __bool__(self) -> bool:
        return self.OK()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int):
            return self.code == other
        return isinstance(other, Status) and self.code == other.code

    def __hash__(self) -> int:
        return hash(self.code)

    def __repr__(self) -> str:
        return f"Status(code={self.code}, message={self.message!r})"

    __str__ = __repr__


for _code in StatusCode:
    setattr(Status, _code.name, int(_code))


class CollectionSchema:
    def __init__(self, collection_name: str, dimension: int, index_file_size: int, metric_type: MetricType):
        self.collection_name = collection_name
        self.dimension = dimension
        self.index_file_size = index_file_size
        self.metric_type = metric_type

    def __repr__(self) -> str:
        return (f"CollectionSchema(collection_name={self.collection_name!r}, dimension={self.dimension}, "
                f"index_file_size={self.index_file_size}, metric_type={self.metric_type!r})")


class IndexParam:
    def __init__(self, collection_name: str, index_type: IndexType, params: dict):
        self.collection_name = collection_name
        self.index_type = index_type
        self.params = params

    def __repr__(self) -> str:
        return (f"IndexParam(collection_name={self.collection_name!r}, index_type={self.index_type!r}, "
                f"params={self.params!r})")


class PartitionParam:
    def __init__(self, collection_name: str, tag: str):
        self.collection_name = collection_name
        self.tag = tag

    def __repr__(self) -> str:
        return f"PartitionParam(collection_name={self.collection_name!r}, tag={self.tag!r})"


class QueryResult:
    """One hit: ``.id`` and ``.distance``."""

    __slots__ = ("id", "distance")

    def __init__(self, id_: int, distance: float):
        self.id = id_
        self.distance = distance

    def __repr__(self) -> str:
        return f"(id:{self.id}, distance:{self.distance})"


class RowQueryResult:
    """The hits of one query (padding excluded)."""

    def __init__(self, ids: np.ndarray, distances: np.ndarray):
        keep = ids >= 0
        self._ids = ids[keep].tolist()
        self._distances = distances[keep].tolist()

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, item: int) -> QueryResult:
        return QueryResult(self._ids[item], self._distances[item])

    def __iter__(self):
        return (QueryResult(i, d) for i, d in zip(self._ids, self._distances))

    @property
    def id_array(self) -> list[int]:
        return list(self._ids)

    @property
    def distance_array(self) -> list[float]:
        return list(self._distances)

    def __repr__(self) -> str:
        return "[" + ",\n ".join(repr(h) for h in self) + "]"


class TopKQueryResult:
    """Search results: ``len()`` is nq; row i iterates its hits; ``id_array``/``distance_array`` are
    nq x top_k lists padded with -1 / +-inf."""

    def __init__(self, result: SearchResult):
        self._result = result

    @property
    def shape(self) -> tuple[int, int]:
        return self._result.shape

    @property
    def id_array(self) -> list[list[int]]:
        return self._result.ids.tolist()

    @property
    def distance_array(self) -> list[list[float]]:
        return self._result.distances.tolist()

    def __len__(self) -> int:
        return len(self._result)

    def __getitem__(self, item: int) -> RowQueryResult:
        if not -len(self) <= item < len(self):
            raise IndexError(f"query index {item} out of range for {len(self)} queries")
        return RowQueryResult(self._result.ids[item], self._result.distances[item])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        nq, k = self.shape
        lines = [f"TopKQueryResult(nq={nq}, top_k={k})"]
        for i in range(min(nq, 5)):
            row = self[i]
            hits = ", ".join(repr(h) for h in list(row)[:5])
            lines.append(f"  query {i}: [{hits}{', ...' if len(row) > 5 else ''}]")
        if nq > 5:
            lines.append(f"  ... {nq - 5} more queries")
        return "\n".join(lines)


class _Future:
    """What ``_async=True`` returns: ``.result()`` gives the call's normal return value."""

    def __init__(self, future: Future):
        self._future = future

    def result(self, timeout: float | None = None) -> Any:
        return self._future.result(timeout)

    def done(self) -> bool:
        return self._future.done()

    def cancel(self) -> bool:
        return self._future.cancel()


# ------------------------------------------------------------------------------------------------------
# type checks that raise ParamError, run before anything is looked up
# ------------------------------------------------------------------------------------------------------
def _name(value: Any, what: str = "collection_name") -> str:
    if not isinstance(value, str) or not value:
        raise ParamError(f"{what} must be a non-empty str; got {value!r}")
    return value


def _tag(value: Any) -> str:
    if not isinstance(value, str):
        raise ParamError(f"partition_tag must be a str; got {value!r}")
    return value


def _records(records: Any, what: str = "records") -> int:
    """Records must be a non-empty array, or a non-empty list of bytes or of equal-length rows."""
    if isinstance(records, np.ndarray):
        if records.size == 0 or records.ndim != 2:
            raise ParamError(f"{what} must be a non-empty 2-D array; got shape {records.shape}")
        return records.shape[0]
    if not isinstance(records, (list, tuple)) or not records:
        raise ParamError(f"{what} must be a non-empty list of vectors; got {type(records).__name__}"
                         + (" (empty)" if isinstance(records, (list, tuple)) else ""))
    if all(isinstance(r, (bytes, bytearray)) for r in records):
        return len(records)
    lengths = set()
    for row in records:
        if isinstance(row, (str, bytes, bytearray)) or not hasattr(row, "__len__"):
            raise ParamError(f"{what} rows must be lists of numbers (or all bytes); got {type(row).__name__}")
        lengths.add(len(row))
    if len(lengths) != 1 or 0 in lengths:
        raise ParamError(f"{what} rows must all have the same non-zero length; got lengths {sorted(lengths)}")
    return len(records)


def _ids(ids: Any, what: str = "ids") -> list[int]:
    if isinstance(ids, np.ndarray):
        ids = ids.tolist()
    if not isinstance(ids, (list, tuple)) or not ids:
        raise ParamError(f"{what} must be a non-empty list of ints; got {ids!r}")
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ParamError(f"{what} must be ints; got {value!r}")
        if not spec.ID_RANGE[0] <= int(value) <= spec.ID_RANGE[1]:
            raise ParamError(f"{what} must be in [{spec.ID_RANGE[0]}, {spec.ID_RANGE[1]}]; got {value}")
    return list(ids)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(f"{what} must be an int; got {value!r}")
    return value


def _member(enum: type[IntEnum], value: Any, what: str) -> IntEnum:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(f"{what} must be a {enum.__name__} member; got {value!r}")
    try:
        member = enum(value)
    except ValueError:
        member = None
    if member is None or member.value == 0:
        allowed = ", ".join(m.name for m in enum if m.value)
        raise ParamError(f"{what} must be a {enum.__name__} member ({allowed}); got {value!r}")
    return member


def _params(params: Any) -> dict | None:
    if params is not None and not isinstance(params, dict):
        raise ParamError(f"params must be a dict or None; got {type(params).__name__}")
    return params


def _milvus_call(*, value: bool = False, failed: Any = None, asynchronous: bool = False) -> Callable:
    """The one translation from the engine's API to pymilvus's: the decorated method checks argument types
    (raising ParamError, as pymilvus does, before anything is looked up) and returns the engine call as a
    thunk; the thunk's milvus_lab error becomes a non-OK Status. Returns ``Status`` or, with ``value``,
    ``(Status, result)`` (``failed`` in place of the result after an error). ``asynchronous`` methods accept
    pymilvus's ``_async=True`` (a future) and ``_callback=fn`` (called with the return value unpacked)."""

    def decorate(method: Callable[..., Callable[[], Any]]) -> Callable[..., Any]:
        signature = inspect.signature(method)

        @functools.wraps(method)
        def call(self: "Milvus", *args: Any, **kwargs: Any) -> Any:
            run_async, callback = kwargs.pop("_async", False), kwargs.pop("_callback", None)
            if (run_async or callback is not None) and not asynchronous:
                raise ParamError(f"{method.__name__} takes no _async / _callback")
            try:
                signature.bind(self, *args, **kwargs)
            except TypeError as exc:
                raise ParamError(f"{method.__name__}: {exc}") from None
            work = method(self, *args, **kwargs)

            def run() -> Any:
                try:
                    status, result = Status(), work()
                except ParamError:
                    raise
                except MilvusLabError as exc:
                    status = Status(exc.code, exc.message)
                    result = list(failed) if isinstance(failed, list) else failed
                out = (status, result) if value else status
                if callback is not None:
                    callback(*out) if value else callback(out)
                return out

            return self._submit(run) if run_async else run()

        return call

    return decorate


class Milvus:
    """A pymilvus 0.2.x client whose server is the in-memory engine of this process.

    ``Milvus()`` makes a new engine; ``Milvus(engine=e)`` shares one (e.g. with the Pythonic API)."""

    def __init__(self, host: Any = None, port: Any = None, *, engine: Engine | None = None, **kwargs: Any):
        if host is not None or port is not None or kwargs.get("uri"):
            raise ParamError("milvus_lab runs in memory in this process: call Milvus() without host, port "
                             "or uri")
        self.engine = engine if engine is not None else Engine()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<milvus_lab.Milvus in-memory, collections={self.engine.list_collections()}>"

    def __enter__(self) -> "Milvus":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def _submit(self, run: Callable[[], Any]) -> _Future:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="milvus_lab-async")
            return _Future(self._pool.submit(run))

    # -------------------------------------------------------------------------------- server
    def server_version(self, timeout: Any = None) -> tuple[Status, str]:
        return Status(), "0.10.0 (milvus_lab in-memory)"

    def server_status(self, timeout: Any = None) -> tuple[Status, str]:
        return Status(), "OK"

    # -------------------------------------------------------------------------------- collections
    @_milvus_call()
    def create_collection(self, param: dict, timeout: Any = None) -> Callable[[], Any]:
        if not isinstance(param, dict):
            raise ParamError(f"param must be a dict with collection_name and dimension; got {param!r}")
        for key in ("collection_name", "dimension"):
            if key not in param:
                raise ParamError(f"param is missing {key!r}; e.g. {{'collection_name': 'demo', 'dimension': 128, "
                                 f"'index_file_size': {spec.DEFAULT_INDEX_FILE_SIZE_MB}, "
                                 f"'metric_type': MetricType.L2}}")
        unknown = set(param) - {"collection_name", "dimension", "index_file_size", "metric_type"}
        if unknown:
            raise ParamError(f"param has unknown key(s) {sorted(unknown)}; allowed: collection_name, dimension, "
                             f"index_file_size, metric_type")
        name = _name(param["collection_name"])
        dim = _int(param["dimension"], "dimension")
        size = _int(param.get("index_file_size", spec.DEFAULT_INDEX_FILE_SIZE_MB), "index_file_size")
        metric = _member(MetricType, param.get("metric_type", MetricType.L2), "metric_type")
        return lambda: self.engine.create_collection(name, dim, size, metric.name)

    @_milvus_call(value=True, failed=False)
    def has_collection(self, collection_name: str, timeout: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)
        return lambda: self.engine.has_collection(name)

    @_milvus_call(value=True)
    def get_collection_info(self, collection_name: str, timeout: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)

        def info() -> CollectionSchema:
            c = self.engine.get_collection(name)
            return CollectionSchema(c.name, c.dimension, c.index_file_size, MetricType[c.metric])

        return info

    describe_collection = get_collection_info

    @_milvus_call(value=True)
    def list_collections(self, timeout: Any = None) -> Callable[[], Any]:
        return self.engine.list_collections

    @_milvus_call(value=True)
    def count_entities(self, collection_name: str, timeout: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)
        return lambda: self.engine.get_collection(name).count()

    @_milvus_call(value=True)
    def get_collection_stats(self, collection_name: str, timeout: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)
        return lambda: self.engine.get_collection(name).stats()

    @_milvus_call()
    def load_collection(self, collection_name: str, partition_tags: Any = None, timeout: Any = None
                        ) -> Callable[[], Any]:
        name = _name(collection_name)
        return lambda: self.engine.get_collection(name)  # in memory already: only say whether it exists

    @_milvus_call()
    def drop_collection(self, collection_name: str, timeout: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)
        return lambda: self.engine.drop_collection(name)

    # -------------------------------------------------------------------------------- partitions
    @_milvus_call()
    def create_partition(self, collection_name: str, partition_tag: str, timeout: Any = None) -> Callable[[], Any]:
        name, tag = _name(collection_name), _tag(partition_tag)
        return lambda: self.engine.get_collection(name).create_partition(tag)

    @_milvus_call()
    def drop_partition(self, collection_name: str, partition_tag: str, timeout: Any = None) -> Callable[[], Any]:
        name, tag = _name(collection_name), _tag(partition_tag)
        return lambda: self.engine.get_collection(name).drop_partition(tag)

    @_milvus_call(value=True, failed=False)
    def has_partition(self, collection_name: str, partition_tag: str, timeout: Any = None) -> Callable[[], Any]:
        name, tag = _name(collection_name), _tag(partition_tag)
        return lambda: self.engine.get_collection(name).has_partition(tag)

    @_milvus_call(value=True)
    def list_partitions(self, collection_name: str, timeout: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)
        return lambda: [PartitionParam(name, t) for t in self.engine.get_collection(name).list_partitions()]

    # -------------------------------------------------------------------------------- entities
    @_milvus_call(value=True, failed=[], asynchronous=True)
    def insert(self, collection_name: str, records: Any, ids: Any = None, partition_tag: str | None = None,
               params: Any = None, timeout: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)
        n = _records(records)
        if ids is not None:
            ids = _ids(ids)
            if len(ids) != n:
                raise ParamError(f"ids has {len(ids)} entries but records has {n}; give one id per record")
        if partition_tag is not None:
            _tag(partition_tag)
        return lambda: self.engine.get_collection(name).insert(records, ids, partition_tag).tolist()

    @_milvus_call(value=True)
    def get_entity_by_id(self, collection_name: str, ids: Any, timeout: Any = None,
                         partition_tag: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)
        ids = _ids(ids)

        def run() -> list:
            c = self.engine.get_collection(name)
            if c.count() == 0:  # the Milvus 0.10 server's answer on an empty collection
                raise MilvusLabError(f"collection {name!r} is empty", StatusCode.ILLEGAL_ARGUMENT)
            found = c.get_entity_by_id(ids)
            return [([] if v is None else (v.tobytes() if c.binary else v.tolist())) for v in found]

        return run

    @_milvus_call(value=True)
    def list_id_in_segment(self, collection_name: str, segment_name: str, timeout: Any = None
                           ) -> Callable[[], Any]:
        name = _name(collection_name)
        segment = _name(segment_name, "segment_name")
        return lambda: self.engine.get_collection(name).list_id_in_segment(segment)

    @_milvus_call()
    def delete_entity_by_id(self, collection_name: str, id_array: Any, timeout: Any = None,
                            partition_tag: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)
        ids = _ids(id_array, "id_array")
        return lambda: self.engine.get_collection(name).delete(ids)

    @_milvus_call(asynchronous=True)
    def flush(self, collection_name_array: Any = None, timeout: Any = None) -> Callable[[], Any]:
        if collection_name_array is not None:
            if not isinstance(collection_name_array, list) or not collection_name_array:
                raise ParamError(f"collection_name_array must be a non-empty list of names; got "
                                 f"{collection_name_array!r}")
            for n in collection_name_array:
                _name(n)
        return lambda: self.engine.flush(collection_name_array)

    @_milvus_call(asynchronous=True)
    def compact(self, collection_name: str, timeout: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)
        return lambda: self.engine.get_collection(name).compact()

    # -------------------------------------------------------------------------------- indexes
    @_milvus_call(asynchronous=True)
    def create_index(self, collection_name: str, index_type: Any = None, params: Any = None,
                     timeout: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)
        member = IndexType.FLAT if index_type is None else _member(IndexType, index_type, "index_type")
        _params(params)
        return lambda: self.engine.get_collection(name).create_index(member.name, params, warn=False)

    @_milvus_call(value=True)
    def get_index_info(self, collection_name: str, timeout: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)

        def info() -> IndexParam:
            c = self.engine.get_collection(name)
            return IndexParam(name, IndexType[c.describe_index().index_type], c.index_params_given)

        return info

    describe_index = get_index_info

    @_milvus_call()
    def drop_index(self, collection_name: str, timeout: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)
        return lambda: self.engine.get_collection(name).drop_index()

    # -------------------------------------------------------------------------------- search
    @_milvus_call(value=True, asynchronous=True)
    def search(self, collection_name: str, top_k: int, query_records: Any, partition_tags: Any = None,
               params: Any = None, timeout: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)
        _int(top_k, "top_k")
        _records(query_records, "query_records")
        _params(params)
        if partition_tags is not None:
            if not isinstance(partition_tags, list):
                raise ParamError(f"partition_tags must be a list of str; got {partition_tags!r}")
            for tag in partition_tags:
                _tag(tag)
        return lambda: TopKQueryResult(self.engine.get_collection(name).search(
            query_records, top_k, params, partition_tags, warn=False))

    @_milvus_call(value=True, asynchronous=True)
    def search_in_segment(self, collection_name: str, file_ids: Any, query_records: Any, top_k: int,
                          params: Any = None, timeout: Any = None) -> Callable[[], Any]:
        name = _name(collection_name)
        if not isinstance(file_ids, list) or not file_ids:
            raise ParamError(f"file_ids must be a non-empty list of segment ids; got {file_ids!r}")
        for fid in file_ids:
            if isinstance(fid, bool) or not isinstance(fid, (int, str)) or (isinstance(fid, str)
                                                                           and not fid.isdigit()):
                raise ParamError(f"file_ids must be segment ids (ints or decimal strings); got {fid!r}")
        _int(top_k, "top_k")
        _records(query_records, "query_records")
        _params(params)
        return lambda: TopKQueryResult(self.engine.get_collection(name).search_in_segment(
            file_ids, query_records, top_k, params, warn=False))
