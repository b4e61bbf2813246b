"""FLAT on float vectors: exact search with ``faiss.knn`` (the same kernel as IndexFlat), no training.

The index keeps the build array by reference (no copy) and saves it as a faiss IndexFlat.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import faiss
import numpy as np

from .. import spec
from .base import FAISS_METRIC, BuiltIndex, check_faiss_header, pad_results
from .faiss_files import Expected, check_file


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int, metric: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k of float ``queries`` over ``vectors``, padded to k."""
    descending = metric in spec.DESCENDING_METRICS
    kk = min(k, len(vectors))
    if kk == 0 or len(queries) == 0:
        return pad_results(np.empty((len(queries), 0)), np.empty((len(queries), 0)), k, descending)
    dist, labels = faiss.knn(queries, vectors, kk, FAISS_METRIC[metric])
    return pad_results(dist, labels, k, descending)


def distances(vectors: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """Exact metric values (nq, n), float32, computed in float64 before rounding."""
    x, q = vectors.astype(np.float64), queries.astype(np.float64)
    dots = q @ x.T
    if metric == "IP":
        return dots.astype(np.float32)
    sq = (q * q).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2.0 * dots
    return np.maximum(sq, 0.0).astype(np.float32)


#: faiss's file tag of an IndexFlat per metric
TAGS = {"L2": b"IxF2", "IP": b"IxFI"}


class FlatIndex(BuiltIndex):
    """Exact search over the build array itself (kept by reference, not copied)."""

    def __init__(self, vectors: np.ndarray, metric: str, dim: int | None = None):
        super().__init__("FLAT", metric, {}, len(vectors), vectors.shape[1] if dim is None else dim)
        self.vectors = vectors

    def search_batch(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
        return exact_search(self.vectors, queries, k, self.metric)

    def memory_bytes(self) -> int:
        return int(self.vectors.nbytes)

    def save(self, path: Path) -> None:
        """Write a faiss IndexFlat holding the vectors."""
        index = faiss.IndexFlat(self.dim, FAISS_METRIC[self.metric])
        index.add(self.vectors)
        faiss.write_index(index, str(path))


def deterministic(index_type: str, threads: int) -> bool:
    """Exact search: nothing random."""
    return True


def build(index_type: str, params: Mapping[str, int], vectors: np.ndarray, metric: str) -> FlatIndex:
    return FlatIndex(vectors, metric)


def load(index_type: str, params: Mapping[str, int], metric: str, dim: int, path: Path) -> FlatIndex:
    """Check the file's structure (sizes, dim, metric, finite values), then read it with faiss's reader."""
    check_file(path, Expected(TAGS[metric], dim, metric))
    index = faiss.read_index(str(path))
    check_faiss_header(index, path, faiss.IndexFlat, dim, metric)
    vectors = faiss.vector_to_array(index.codes).view(np.float32).reshape(index.ntotal, dim)
    return FlatIndex(vectors, metric)
