"""The one small interface every backend adapter implements.

A backend turns a segment's vectors into a :class:`BuiltIndex` and searches it with a batch of queries.
Results use row positions of the build array (the engine maps them to ids), ``-1`` for a missing hit,
and distances in the Milvus convention: squared L2 and binary distances ascending, IP descending; a
missing hit has distance +inf (ascending metrics) or -inf (IP).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Mapping

import numpy as np


class BuiltIndex(ABC):
    """An index built on one segment. Safe to search from several threads at once."""

    index_type: str
    metric: str
    params: dict[str, int]
    ntotal: int
    dim: int

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
               ) -> tuple[np.ndarray, np.ndarray]:
        """Return (distances float32 nq x k, positions int64 nq x k) for a batch of queries.

        ``k`` may exceed ``ntotal`` (the result is padded) and may exceed ``ef``/``search_k`` (the engine
        over-fetches to skip deleted rows); search params have already been validated against the spec.
        """

    @abstractmethod
    def memory_bytes(self) -> int:
        """Bytes the index holds (vectors or codes, graph, centroids)."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the index to ``path`` in the library's own format (never pickle)."""


def pad_results(distances: np.ndarray, labels: np.ndarray, k: int, descending: bool
                ) -> tuple[np.ndarray, np.ndarray]:
    """Pad (nq x k') results to nq x k with -1 / +-inf, and normalise dtypes and the padding value."""
    distances = np.asarray(distances, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    nq, have = labels.shape
    if have == k and (labels.size == 0 or labels.min() >= 0):
        return distances, labels  # the common case: nothing to pad
    fill = -np.inf if descending else np.inf
    if have < k:
        distances = np.concatenate([distances, np.full((nq, k - have), fill, np.float32)], axis=1)
        labels = np.concatenate([labels, np.full((nq, k - have), -1, np.int64)], axis=1)
    missing = labels < 0
    if missing.any():
        distances = distances.copy()
        distances[missing] = fill
    return distances, labels
