"""The in-memory engine: collections, partitions, segments, background indexing."""

from .collection import DEFAULT_PARTITION, Collection, IndexReport, SearchResult
from .engine import Engine

__all__ = ["Collection", "DEFAULT_PARTITION", "Engine", "IndexReport", "SearchResult"]
