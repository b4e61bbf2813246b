"""The collection seam: the few verbs the lab and the widgets need from a collection, named once.

The in-memory :class:`milvus_lab.engine.Collection` implements :class:`IndexedCollection`; a collection
on a Milvus 2.x server (:mod:`milvus_lab.server`) implements it too, so the lab and the forms run on
either without knowing which. A :class:`Target` makes and drops such collections. Each target names the
spec profile whose rules apply to it (``spec.PROFILES``: Milvus 0.10 in memory, Milvus 2.3 on a server).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

import numpy as np

from .errors import ParamError


@dataclass(frozen=True)
class IndexInfo:
    """The index a collection has now: its type and the parameters it was built with."""

    index_type: str
    params: Mapping[str, int] = field(default_factory=dict)


@runtime_checkable
class BuildReport(Protocol):
    """What a create_index did (the engine's IndexReport is one)."""

    index_type: str
    params: dict[str, int]
    indexed_rows: int
    raw_rows: int
    build_seconds: float

    @property
    def fully_indexed(self) -> bool: ...

    def message(self) -> str: ...


@runtime_checkable
class SearchHits(Protocol):
    """nq x top_k ``ids`` (-1 pads) and ``distances`` (±inf pads), best first."""

    ids: np.ndarray
    distances: np.ndarray


@runtime_checkable
class IndexedCollection(Protocol):
    """A collection of vectors the lab and the forms can index and search."""

    name: str
    dimension: int
    metric: str
    #: key of the spec profile whose rules apply (``spec.PROFILES``)
    profile: str

    def insert(self, records: Any) -> np.ndarray: ...

    def count(self) -> int: ...

    def create_index(self, index_type: Any, params: Mapping[str, Any] | None = None) -> BuildReport: ...

    def drop_index(self) -> None: ...

    def describe_index(self) -> IndexInfo: ...

    def search(self, query_records: Any, top_k: int = 10, params: Mapping[str, Any] | None = None
               ) -> SearchHits: ...

    def stats(self) -> dict[str, Any]: ...


#: a change listener: called with the collection's new version, on the thread that made the change
ChangeListener = Callable[[int], None]


@runtime_checkable
class ChangeSignalling(Protocol):
    """A collection that says when it changed, so a form listens instead of polling ``stats()``.

    ``version`` grows by at least one on every call that changes what ``stats()``, ``count()`` or
    ``describe_index()`` may return (and on a background build that finishes); reads never change it.
    ``on_change(callback)`` calls ``callback(version)`` after each such change and returns a function that
    unsubscribes. Both collections of this package implement it; a collection that does not is still an
    :class:`IndexedCollection` (the forms then poll it)."""

    @property
    def version(self) -> int: ...

    def on_change(self, callback: ChangeListener) -> Callable[[], None]: ...


_log = logging.getLogger(__name__)


class ChangeSignal:
    """A thread-safe version counter with listeners: the one implementation of :class:`ChangeSignalling`.

    :meth:`bump` increments the version under a lock (no two bumps share a number) and then calls every
    listener outside it, in subscription order; a listener that raises is logged and skipped, never raised
    into the call that changed the collection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = 0
        self._listeners: list[ChangeListener] = []

    @property
    def version(self) -> int:
        return self._version

    def subscribe(self, callback: ChangeListener) -> Callable[[], None]:
        """Call ``callback(version)`` after every change; return the function that stops it (idempotent)."""
        if not callable(callback):
            raise ParamError(f"on_change: callback must be callable (a function of the new version), got "
                             f"{type(callback).__name__} {callback!r}")
        with self._lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)
        return unsubscribe

    def bump(self) -> int:
        """Count one change and tell the listeners; return the new version."""
        with self._lock:
            self._version += 1
            version, listeners = self._version, list(self._listeners)
        for callback in listeners:
            try:
                callback(version)
            except Exception:  # noqa: BLE001 - a listener never breaks the collection that changed
                _log.exception("a change listener of a collection raised; the change itself stands")
        return version


@runtime_checkable
class Target(Protocol):
    """Where collections live: the in-memory engine, or a Milvus server."""

    #: key of the spec profile whose rules apply (``spec.PROFILES``)
    profile: str

    def describe(self) -> str: ...

    def create_collection(self, collection_name: str, dimension: int, *, metric_type: str = "L2"
                          ) -> IndexedCollection: ...

    def drop_collection(self, collection_name: str) -> None: ...

    def has_collection(self, collection_name: str) -> bool: ...
