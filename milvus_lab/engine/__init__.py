"""The in-memory engine: collections, partitions, segments, background indexing."""

from .collection import Collection, IndexReport, SearchResult
from .engine import Engine
from .state import DEFAULT_PARTITION, CollectionState, EngineState, PendingDelete, SegmentState

__all__ = ["Collection", "CollectionState", "DEFAULT_PARTITION", "Engine", "EngineState", "IndexReport",
           "PendingDelete", "SearchResult", "SegmentState"]
