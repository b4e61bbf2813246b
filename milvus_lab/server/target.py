"""A Milvus 2.x server as a :class:`~milvus_lab.protocol.Target`: the lab and the forms act on its collections
through the same verbs as on the in-memory engine.

Rules come from the spec's ``milvus-2.3`` profile and are checked here *before* anything is sent, so a value
the server would refuse, or silently misread (nprobe > nlist, ef < top_k, HNSW M=1), is refused with the
same message format as in memory. Everything the server does wrong (unreachable, wrong URI, authentication,
a build that never finishes, the server dying) raises :class:`~milvus_lab.errors.ServerError` naming the
URI and the step. A target drops only the collections it created itself; it never touches others.
"""

from __future__ import annotations

import itertools
import logging
import math
import numbers
import os
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from .. import numerics, spec
from ..engine import validation
from ..errors import AlreadyExistsError, BuildIndexError, InvalidParameterError, ParamError, ServerError
from ..protocol import ChangeListener, ChangeSignal, IndexInfo
from ..units import MIB
from .embedded import INSTALL_HINT

#: seconds one request may take (pymilvus retries a failing request until then)
DEFAULT_TIMEOUT = 30.0
#: seconds an index build plus the load that follows may take before it counts as never finishing
DEFAULT_BUILD_TIMEOUT = 900.0
#: how often a running build or load is polled (s)
POLL_SECONDS = 0.05
#: bytes of vectors sent in one insert request (gRPC's default message limit is 64 MiB)
INSERT_BATCH_BYTES = 16 * MIB
ID_FIELD = "id"
VECTOR_FIELD = "vector"
#: how many times pymilvus may retry a request that failed for a transient reason
RETRIES = 3

_aliases = itertools.count(1)
_quiet = threading.local()


class _QuietFilter(logging.Filter):
    """pymilvus logs every failed request as an error; while milvus_lab raises its own ServerError for the
    same failure, that log line is noise, so it is dropped (only for calls made by this module)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_quiet, "depth", 0)


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError as exc:
        raise ServerError(f"talking to a Milvus server needs pymilvus 2.x: {INSTALL_HINT} ({exc})") from exc
    for name in ("pymilvus.decorators", "pymilvus.client.grpc_handler", "pymilvus.orm.connections"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _QuietFilter) for f in logger.filters):
            logger.addFilter(_QuietFilter())
    return pymilvus


@contextmanager
def _quietly() -> Iterator[None]:
    _quiet.depth = getattr(_quiet, "depth", 0) + 1
    try:
        yield
    finally:
        _quiet.depth -= 1


def _reason(exc: BaseException) -> str:
    """The server's or the network's words for a failure, without pymilvus's nested reprs."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:  # pymilvus raises `e from e`: a cause can be itself
        visited.add(id(seen))
        code = getattr(seen, "code", None)
        details = getattr(seen, "details", None)
        if callable(code) and callable(details):  # a grpc.RpcError
            name = getattr(code(), "name", str(code()))
            text = details() or ""
            if name == "UNAVAILABLE":
                return f"server unavailable ({text})"
            if name == "UNAUTHENTICATED":
                return f"authentication failed ({text}); pass token='user:password' of a user of this server"
            if name == "DEADLINE_EXCEEDED":
                return f"no answer in time ({text})"
            return f"{name}: {text}"
        owner = getattr(code, "__self__", None)  # pymilvus wraps a grpc error's bound code() in its exception
        seen = owner if isinstance(owner, BaseException) else seen.__cause__ or seen.__context__
    message = getattr(exc, "message", None)
    return str(message if message else exc).strip() or type(exc).__name__


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------
@dataclass
class ServerBuildReport:
    """What create_index did on the server: rows in indexed and in raw segments, the build time including
    the load (a Milvus 2.x collection answers queries only once loaded)."""

    index_type: str
    params: dict[str, int]
    indexed_rows: int
    raw_rows: int
    build_seconds: float
    load_seconds: float = 0.0
    server_index_type: str = ""
    uri: str = ""
    raw_reasons: list[str] = field(default_factory=list)

    @property
    def fully_indexed(self) -> bool:
        return self.raw_rows == 0

    def message(self) -> str:
        text = (f"{self.server_index_type or self.index_type} built on the Milvus server at {self.uri}: "
                f"{self.indexed_rows:,} rows indexed ({self.build_seconds:.1f} s including "
                f"{self.load_seconds:.1f} s to load)")
        if self.raw_rows:
            text += f"; {self.raw_rows:,} rows are not indexed: " + "; ".join(self.raw_reasons)
        return text


@dataclass
class ServerSearchResult:
    """nq x top_k ``ids`` (int64, -1 pads) and ``distances`` (float32; +inf pads, -inf for IP), best first.

    L2 distances are squared, like milvus_lab's and Milvus 0.10's (the server returns them squared)."""

    ids: np.ndarray
    distances: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.ids.shape  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def id_array(self) -> list[list[int]]:
        return self.ids.tolist()

    @property
    def distance_array(self) -> list[list[float]]:
        return self.distances.tolist()


# --------------------------------------------------------------------------------------------------
# The target
# --------------------------------------------------------------------------------------------------
def _seconds(name: str, value: Any, *, zero_ok: bool = False) -> float:
    """A wait in seconds: a finite number > 0 (>= 0 with ``zero_ok``) and at most ``threading.TIMEOUT_MAX``, the
    longest wait Python's locks (and pymilvus's waits on them) take; ParamError naming ``name`` otherwise (NaN
    waited forever, a larger value failed deep inside the connect, an int too big for a float raised
    OverflowError)."""
    try:
        real = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
        seconds = float(value) if real else math.nan
    except Exception:  # noqa: BLE001 - too big for a float, or a hostile __float__: not a wait we can use
        seconds = math.nan
    if not (0 <= seconds if zero_ok else 0 < seconds) or not seconds <= threading.TIMEOUT_MAX:
        raise ParamError(f"{name} must be a number of seconds {'>=' if zero_ok else '>'} 0 and at most "
                         f"{threading.TIMEOUT_MAX:.0f} (Python's longest wait, threading.TIMEOUT_MAX); got "
                         f"{spec.show_value(value)}")
    return seconds


def _normalise_uri(uri: Any) -> str:
    if not isinstance(uri, str) or not uri.strip():
        raise ServerError(f"a Milvus server URI must be a non-empty string like 'http://127.0.0.1:19530'; "
                          f"got {uri!r}")
    uri = uri.strip()
    return uri if "://" in uri else "http://" + uri


class ServerTarget:
    """Collections on one Milvus 2.x server (rules: the spec's ``milvus-2.3`` profile). Make one with
    :func:`connect`. It remembers which collections it created and drops only those (``close()`` drops them
    all); a collection it did not create is never modified or dropped."""

    profile = spec.SERVER_PROFILE

    def __init__(self, uri: str, *, token: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 build_timeout: float = DEFAULT_BUILD_TIMEOUT):
        self.uri = _normalise_uri(uri)
        self.timeout = _seconds("timeout", timeout)
        self.build_timeout = _seconds("build_timeout", build_timeout, zero_ok=True)
        self.alias = f"milvus_lab_{os.getpid()}_{next(_aliases)}"
        self.server_version = ""
        self._token = token
        self._created: dict[str, ServerCollection] = {}
        self._lock = threading.RLock()
        self._connected = False

    # ---------------------------------------------------------------- plumbing
    def call(self, step: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one pymilvus call; any failure becomes a ServerError naming the URI and ``step``."""
        try:
            with _quietly():
                return fn(*args, **kwargs)
        except ServerError:
            raise
        except Exception as exc:  # pymilvus raises MilvusException, grpc errors and plain exceptions
            raise ServerError(f"Milvus server at {self.uri}: {step} failed: {_reason(exc)}") from exc

    @property
    def rpc_timeout(self) -> int:
        """The timeout of one request in whole seconds: pymilvus stops retrying a failing request after it only
        when it is an int (with a float it retries 75 times, minutes against a dead server)."""
        return max(1, round(self.timeout))

    @property
    def _rpc(self) -> dict[str, Any]:
        """Keyword arguments of every request: its timeout and few retries."""
        return {"timeout": self.rpc_timeout, "retry_times": RETRIES}

    def _connect(self) -> None:
        pymilvus = _pymilvus()
        kwargs: dict[str, Any] = {"uri": self.uri, "timeout": self.timeout}
        if self._token:
            kwargs["token"] = self._token
        self.call("connect", pymilvus.connections.connect, self.alias, **kwargs)
        self._connected = True
        version = self.call("connect (server version)", pymilvus.utility.get_server_version, using=self.alias,
                            timeout=self.rpc_timeout)
        self.server_version = str(version)
        # a request that needs a user: with authorization on and no (or a wrong) token, it fails here
        self.call("connect (list collections)", pymilvus.utility.list_collections, timeout=self.rpc_timeout,
                  using=self.alias)

    @property
    def version(self) -> str:
        """The server's version without the build suffix: 'v2.3.5' for 'v2.3.5-lite'."""
        return self.server_version.split("-")[0] or "v2.x"

    def describe(self) -> str:
        return f"Milvus {self.version} at {self.uri}"

    def __repr__(self) -> str:
        return f"ServerTarget({self.describe()}, created: {sorted(self._created)})"

    def __enter__(self) -> ServerTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- collections
    @property
    def created(self) -> list[str]:
        """Names of the collections this target created and has not dropped."""
        return sorted(self._created)

    def list_collections(self) -> list[str]:
        """Every collection on the server (read only: others are listed, never touched)."""
        pymilvus = _pymilvus()
        return sorted(self.call("list collections", pymilvus.utility.list_collections, timeout=self.rpc_timeout,
                                using=self.alias))

    def has_collection(self, collection_name: str) -> bool:
        pymilvus = _pymilvus()
        return bool(self.call(f"look up collection {collection_name!r}", pymilvus.utility.has_collection,
                              collection_name, timeout=self.rpc_timeout, using=self.alias))

    def unique_name(self, prefix: str = "milvus_lab") -> str:
        """A collection name not in use on the server, for collections the lab creates."""
        while True:
            name = f"{prefix}_{uuid.uuid4().hex[:12]}"
            if not self.has_collection(name):
                return name

    def create_collection(self, collection_name: str, dimension: int, *, metric_type: Any = "L2",
                          **_: Any) -> ServerCollection:
        """Create a collection (int64 primary key ``id``, vector field ``vector``) for ``metric_type``.

        Refuses a name that exists on the server: milvus_lab never touches a collection it did not create."""
        pymilvus = _pymilvus()
        name = validation.collection_name(collection_name)
        metric = spec.normalize_metric(metric_type, profile=self.profile)
        dim = spec.validate_dimension(dimension, metric, profile=self.profile)
        with self._lock:
            if name in self._created or self.has_collection(name):
                raise AlreadyExistsError(
                    f"collection {name!r} already exists on {self.describe()}; milvus_lab does not touch "
                    f"collections it did not create: choose another name")
            dtype = pymilvus.DataType.BINARY_VECTOR if spec.is_binary_metric(metric) else pymilvus.DataType.FLOAT_VECTOR
            schema = pymilvus.CollectionSchema(
                [pymilvus.FieldSchema(ID_FIELD, pymilvus.DataType.INT64, is_primary=True, auto_id=False),
                 pymilvus.FieldSchema(VECTOR_FIELD, dtype, dim=dim)],
                description="created by milvus_lab")
            handle = self.call(f"create collection {name!r}", pymilvus.Collection, name, schema, using=self.alias,
                               consistency_level="Strong", **self._rpc)
            collection = ServerCollection(self, name, dim, metric, handle)
            self._created[name] = collection
            return collection

    def get_collection(self, collection_name: str) -> ServerCollection:
        """A collection this target created (others are not handed out: they are not ours to change)."""
        try:
            return self._created[collection_name]
        except KeyError:
            raise ServerError(f"collection {collection_name!r} was not created by this target ({self.describe()}); "
                              f"milvus_lab acts only on collections it created") from None

    def drop_collection(self, collection_name: str) -> None:
        """Drop a collection this target created; any other name is refused and left untouched."""
        pymilvus = _pymilvus()
        with self._lock:
            if collection_name not in self._created:
                raise ServerError(f"refusing to drop {collection_name!r} on {self.describe()}: this target did not "
                                  f"create it, and milvus_lab never touches collections it did not create")
            self.call(f"drop collection {collection_name!r}", pymilvus.utility.drop_collection, collection_name,
                      timeout=self.rpc_timeout, using=self.alias)
            dropped = self._created.pop(collection_name)
            dropped.dropped = True
        dropped._changes.bump()

    def close(self, *, drop_created: bool = True) -> list[str]:
        """Drop the collections this target created (unless ``drop_created=False``) and disconnect.

        Returns the names it could not drop (the server gone, say); they stay listed in ``created``."""
        failed = []
        if drop_created and self._connected:
            for name in list(self._created):
                try:
                    self.drop_collection(name)
                except ServerError:
                    failed.append(name)
        if self._connected:
            try:
                _pymilvus().connections.disconnect(self.alias)
            except Exception:  # noqa: BLE001 - disconnecting a dead connection is not an error worth raising
                pass
            self._connected = False
        return failed


def connect(uri: str = "http://127.0.0.1:19530", *, token: str | None = None, timeout: float = DEFAULT_TIMEOUT,
            build_timeout: float = DEFAULT_BUILD_TIMEOUT) -> ServerTarget:
    """Connect to a Milvus 2.x server (standalone or cluster) at ``uri``; ``token`` is 'user:password' when the
    server has authorization on. Without ``token``, an embedded server of this user on 127.0.0.1
    (``milvus-lab server start``) is given its kept root password. Raises ServerError naming the URI and the
    step when it cannot be used."""
    if token is None:
        from .embedded import token_for_uri

        token = token_for_uri(_normalise_uri(uri))
    target = ServerTarget(uri, token=token, timeout=timeout, build_timeout=build_timeout)
    try:
        target._connect()
    except ServerError:
        target.close(drop_created=False)
        raise
    return target


# --------------------------------------------------------------------------------------------------
# A collection on the server
# --------------------------------------------------------------------------------------------------
class ServerCollection:
    """A collection on a Milvus 2.x server, with the verbs of :class:`~milvus_lab.protocol.IndexedCollection`.

    Ids are int64, given by the caller or numbered 0, 1, 2, ... by insert order. One index at a time:
    creating another replaces it; a collection without an index searches exactly (a FLAT index is made
    and loaded on first search, as Milvus 2.x answers only loaded, indexed collections)."""

    def __init__(self, target: ServerTarget, name: str, dimension: int, metric: str, handle: Any):
        self.target = target
        self.name = name
        self.dimension = dimension
        self.metric = metric
        self.profile = target.profile
        self.binary = spec.is_binary_metric(metric)
        self.dropped = False
        self._handle = handle
        self._lock = threading.RLock()
        self._index_type = "FLAT"
        self._params: dict[str, int] = {}
        self._server_index = False  # an index exists on the server
        self._loaded = False
        #: rows were inserted since the last load: searches wait for them (Strong consistency) until a reload
        self._fresh_rows = False
        self._count = 0
        self._next_id = 0
        self._user_ids: bool | None = None
        self._ids = np.empty(0, dtype=np.int64)
        self._changes = ChangeSignal()

    def __repr__(self) -> str:
        return (f"ServerCollection({self.name!r}, dimension={self.dimension}, metric={self.metric}, "
                f"rows={self._count:,}, index={self._index_type}, on {self.target.describe()})")

    @property
    def uri(self) -> str:
        return self.target.uri

    def _check_alive(self) -> None:
        if self.dropped:
            raise ServerError(f"collection {self.name!r} on {self.target.describe()} was dropped")

    # ---------------------------------------------------------------- change signal
    @property
    def version(self) -> int:
        """Grows on every insert, create_index, drop_index and drop made *through this object*; costs no RPC.

        A Milvus server pushes no notifications, so a change made by another client (or by the server
        itself, e.g. a background compaction) does not move it: a form's Refresh button shows those."""
        return self._changes.version

    def on_change(self, callback: ChangeListener) -> Callable[[], None]:
        """Call ``callback(version)`` after every change made through this object (see :attr:`version`);
        return the function that unsubscribes. A raising callback is logged and never breaks the change."""
        return self._changes.subscribe(callback)

    def _call(self, step: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.target.call(f"{step} ({self.name!r})", fn, *args, **kwargs)

    # ---------------------------------------------------------------- rows
    def _records(self, records: Any, what: str) -> np.ndarray:
        return numerics.as_vectors(records, what, self.dimension, binary=self.binary)

    def _payload(self, vectors: np.ndarray) -> Any:
        return [row.tobytes() for row in vectors] if self.binary else vectors

    def insert(self, records: Any, ids: Any = None) -> np.ndarray:
        """Insert vectors with int64 ids (given, or the next numbers in insert order); flushes, so the rows
        are sealed, counted and indexable when this returns."""
        vectors = self._records(records, "records")
        with self._lock:
            self._check_alive()
            if ids is None:
                if self._user_ids:
                    raise InvalidParameterError(f"collection {self.name!r} uses your ids; give ids= for every insert")
                new_ids = np.arange(self._next_id, self._next_id + len(vectors), dtype=np.int64)
            else:
                if self._user_ids is False:
                    raise InvalidParameterError(f"collection {self.name!r} numbers its rows itself; an insert "
                                                f"cannot give ids=")
                new_ids = validation.id_list(ids)
                if len(new_ids) != len(vectors):
                    raise InvalidParameterError(f"{len(new_ids)} ids for {len(vectors)} records; give one id per row")
                validation.unique_ids(new_ids)
                clash = np.intersect1d(new_ids, self._ids)
                if clash.size:
                    raise InvalidParameterError(f"ids already in collection {self.name!r}: {clash[:5].tolist()}")
            row_bytes = vectors.shape[1] * vectors.itemsize
            step = max(1, INSERT_BATCH_BYTES // max(1, row_bytes))
            for start in range(0, len(vectors), step):
                chunk = slice(start, start + step)
                self._call("insert", self._handle.insert, [new_ids[chunk].tolist(), self._payload(vectors[chunk])],
                           **self.target._rpc)
            self._call("flush", self._handle.flush, **self.target._rpc)
            self._user_ids = ids is not None
            self._fresh_rows = True
            self._ids = np.concatenate([self._ids, new_ids]) if ids is not None else self._ids
            self._next_id = max(self._next_id, int(new_ids.max()) + 1)
            self._count += len(vectors)
        self._changes.bump()
        return new_ids

    def count(self) -> int:
        """Rows in the collection (as the server counts them)."""
        self._check_alive()
        return int(self._call("count rows", getattr, self._handle, "num_entities"))

    # ---------------------------------------------------------------- index
    def describe_index(self) -> IndexInfo:
        return IndexInfo(self._index_type, dict(self._params))

    def _release(self) -> None:
        if self._loaded:
            self._call("release", self._handle.release, **self.target._rpc)
            self._loaded = False

    def _drop_server_index(self) -> None:
        if self._server_index:
            self._call("drop index", self._handle.drop_index, **self.target._rpc)
            self._server_index = False

    def _unindex(self) -> None:
        """Release the collection and drop its index on the server (the caller holds the lock): FLAT again."""
        self._release()
        self._drop_server_index()
        self._index_type, self._params = "FLAT", {}

    def drop_index(self) -> None:
        """Drop the index on the server; the collection searches exactly (FLAT) again."""
        with self._lock:
            self._check_alive()
            try:
                self._unindex()
            finally:  # an RPC that failed half way may still have released or dropped: listeners look again
                self._changes.bump()

    def _index_state(self) -> tuple[Any, str]:
        """(state, failure reason) of the collection's index on the server."""
        from pymilvus import connections

        handler = connections._fetch_handler(self.target.alias)  # the one call the ORM layer does not expose
        return handler.get_index_state(self.name, "", timeout=self.target.rpc_timeout, field_name=VECTOR_FIELD)

    def _wait_built(self, server_type: str, params: Mapping[str, int], deadline: float) -> None:
        from pymilvus import utility
        from pymilvus.client.types import IndexState

        step = f"wait for the {server_type} build {spec.format_params(params) if params else ''}".rstrip()
        next_state_check = 0.0
        while True:
            progress = self._call(step, utility.index_building_progress, self.name, using=self.target.alias,
                                  timeout=self.target.rpc_timeout)
            if progress["indexed_rows"] >= self._count and not progress["pending_index_rows"]:
                return
            now = time.monotonic()
            if now >= next_state_check:
                state, reason = self._call(step, self._index_state)
                if state == IndexState.Finished:
                    return
                if state == IndexState.Failed:
                    raise BuildIndexError(f"Milvus server at {self.uri}: the {server_type} build of {self.name!r} "
                                          f"failed: {reason}")
                next_state_check = now + 1.0
            if now >= deadline:
                raise ServerError(
                    f"Milvus server at {self.uri}: {step} ({self.name!r}) failed: the {server_type} build did not "
                    f"finish within {self.target.build_timeout:.0f} s ({progress['indexed_rows']:,} of "
                    f"{self._count:,} rows indexed); the index was dropped")
            time.sleep(POLL_SECONDS)

    def _wait_loaded(self, deadline: float) -> None:
        from pymilvus import utility

        while True:
            progress = self._call("wait for the load", utility.loading_progress, self.name, using=self.target.alias,
                                  timeout=self.target.rpc_timeout)
            if str(progress.get("loading_progress", "")).rstrip("%") == "100":
                return
            if time.monotonic() >= deadline:
                raise ServerError(f"Milvus server at {self.uri}: wait for the load ({self.name!r}) failed: not loaded "
                                  f"within {self.target.build_timeout:.0f} s ({progress})")
            time.sleep(POLL_SECONDS)

    def _segments(self) -> list[Any]:
        from pymilvus import utility

        return list(self._call("segment info", utility.get_query_segment_info, self.name, using=self.target.alias,
                               timeout=self.target.rpc_timeout))

    def _build(self, server_type: str, params: dict[str, int]) -> tuple[float, float]:
        """Create the index on the server, wait for it, load; (build seconds including load, load seconds)."""
        index_params = {"index_type": server_type, "metric_type": self.metric, "params": params}
        started = time.perf_counter()
        deadline = time.monotonic() + self.target.build_timeout
        self._call(f"create index {server_type}", self._handle.create_index, VECTOR_FIELD, index_params,
                   sync=False, **self.target._rpc)
        self._server_index = True
        try:
            self._wait_built(server_type, params, deadline)
        except (ServerError, BuildIndexError):
            try:  # stop the server from retrying a build that will never finish
                self._drop_server_index()
            except ServerError:
                pass
            raise
        loading = time.perf_counter()
        self._load(deadline)
        done = time.perf_counter()
        return done - started, done - loading

    def create_index(self, index_type: Any = "FLAT", params: Mapping[str, Any] | None = None) -> ServerBuildReport:
        """Replace the index: checked with the server profile's rules first, then built on the server and
        loaded (blocks). ``build_seconds`` includes the load. Rows in segments the server leaves unindexed
        (below its minSegmentNumRowsToEnableIndex, spec.SERVER_MIN_INDEX_ROWS by default) are reported as raw."""
        index_spec, clean = spec.validate_build(index_type, params, dim=self.dimension, metric=self.metric,
                                                profile=self.profile)
        server_type = spec.native_index_name(index_spec.name, self.metric, profile=self.profile)
        with self._lock:
            self._check_alive()
            try:
                self._unindex()
                build_s, load_s = self._build(server_type, clean)
                self._index_type, self._params = index_spec.name, clean
            finally:  # a failed build has dropped the old index already: listeners look again either way
                self._changes.bump()
            raw_rows, reasons = 0, []
            if not index_spec.is_flat:
                raw = [s for s in self._segments() if not s.indexID]
                raw_rows = sum(int(s.num_rows) for s in raw)
                if raw_rows:
                    reasons.append(f"{len(raw)} segment(s) below the server's minSegmentNumRowsToEnableIndex "
                                   f"({spec.SERVER_MIN_INDEX_ROWS:,} rows by default) are searched without the "
                                   f"index")
            return ServerBuildReport(index_spec.name, clean, self._count - raw_rows, raw_rows, build_s, load_s,
                                     server_type, self.uri, reasons)

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        if not self._server_index:  # Milvus 2.x searches only indexed collections: FLAT is exact search
            self._build(spec.native_index_name("FLAT", self.metric, profile=self.profile), {})
            return
        self._load(time.monotonic() + self.target.build_timeout)

    def _load(self, deadline: float) -> None:
        self._call("load", self._handle.load, _async=True, **self.target._rpc)
        self._wait_loaded(deadline)
        self._loaded = True
        self._fresh_rows = False

    # ---------------------------------------------------------------- search
    def search(self, query_records: Any, top_k: int = 10, params: Mapping[str, Any] | None = None
               ) -> ServerSearchResult:
        """Search the server; search params are checked against the index and top_k first (server profile)."""
        return self._search_on(self._handle, query_records, top_k, params)

    def open_client(self) -> ServerClient:
        """A new connection to this collection for one concurrent client (the lab's concurrency timing gives
        each client its own, as real clients have); ``close()`` it when done."""
        self._check_alive()
        return ServerClient(self)

    def _search_on(self, handle: Any, query_records: Any, top_k: int, params: Mapping[str, Any] | None
                   ) -> ServerSearchResult:
        top_k = spec.validate_top_k(top_k, profile=self.profile)
        clean = spec.validate_search(self._index_type, params, top_k=top_k, build_params=self._params,
                                     profile=self.profile)
        queries = self._records(query_records, "query_records")
        with self._lock:
            self._check_alive()
            self._ensure_loaded()
            # Strong consistency waits for the server's next time tick (~200 ms a query): needed only while rows
            # inserted after the load may not be searchable yet; a loaded, flushed collection answers at once
            consistency = "Strong" if self._fresh_rows else "Eventually"
        nq = len(queries)
        ids = np.full((nq, top_k), -1, dtype=np.int64)
        pad = -np.inf if self.metric in spec.DESCENDING_METRICS else np.inf
        distances = np.full((nq, top_k), pad, dtype=np.float32)
        step = spec.SERVER_MAX_NQ  # the server refuses a request with more query vectors: send them in parts
        for first in range(0, nq, step):
            hits = self._call("search", handle.search, self._payload(queries[first:first + step]), VECTOR_FIELD,
                              {"metric_type": self.metric, "params": clean}, limit=top_k,
                              consistency_level=consistency, **self.target._rpc)
            for row, found in enumerate(hits, first):
                got = len(found.ids)
                if got:
                    ids[row, :got] = found.ids
                    distances[row, :got] = found.distances
        return ServerSearchResult(ids, distances)

    # ---------------------------------------------------------------- stats
    def stats(self) -> dict[str, Any]:
        """pymilvus 0.2.x's get_collection_stats layout, from the server's loaded segments."""
        with self._lock:
            self._check_alive()
            segments = []
            if self._loaded:
                for seg in self._segments():
                    indexed = bool(seg.indexID) or self._index_type == "FLAT"
                    segments.append({"name": str(seg.segmentID), "row_count": int(seg.num_rows),
                                     "index_name": self._index_type if indexed else "FLAT",
                                     "data_size": int(seg.mem_size)})
            rows = self.count()
            return {"row_count": rows, "index_type": self._index_type, "loaded": self._loaded,
                    "partitions": [{"tag": "_default", "row_count": rows, "segments": segments}]}


class ServerClient:
    """One more pymilvus connection (its own alias and channel) to a collection a target created: one concurrent
    client. ``search`` is the collection's (same checks, same result); ``close()`` disconnects."""

    def __init__(self, collection: ServerCollection):
        pymilvus = _pymilvus()
        target = collection.target
        self.collection = collection
        self.alias = f"{target.alias}_client_{next(_aliases)}"
        kwargs: dict[str, Any] = {"uri": target.uri, "timeout": target.timeout}
        if target._token:
            kwargs["token"] = target._token
        target.call("connect a client", pymilvus.connections.connect, self.alias, **kwargs)
        try:
            self._handle = collection._call("open for a client", pymilvus.Collection, collection.name,
                                            using=self.alias)
        except ServerError:
            self.close()
            raise

    def search(self, query_records: Any, top_k: int = 10, params: Mapping[str, Any] | None = None
               ) -> ServerSearchResult:
        return self.collection._search_on(self._handle, query_records, top_k, params)

    def close(self) -> None:
        try:
            _pymilvus().connections.disconnect(self.alias)
        except Exception:  # noqa: BLE001 - disconnecting a dead connection is not an error worth raising
            pass
