"""The collection seam: the few verbs the lab and the widgets need from a collection, named once.

The in-memory :class:`milvus_lab.engine.Collection` implements :class:`IndexedCollection`; a collection
on a Milvus 2.x server (:mod:`milvus_lab.server`) implements it too, so the lab and the forms run on
either without knowing which. A :class:`Target` makes and drops such collections. Each target names the
spec profile whose rules apply to it (``spec.PROFILES``: Milvus 0.10 in memory, Milvus 2.3 on a server).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np


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
