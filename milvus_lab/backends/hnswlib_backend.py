"""hnswlib adapter: HNSW (build ``M``, ``efConstruction``; search ``ef``).

The index is created with ``max_elements`` equal to the segment's row count and built from all rows at
once (labels are row positions). L2 uses space ``'l2'`` (already squared L2); IP uses space ``'ip'``,
whose distance is 1 - dot, converted back to the dot product so IP results are descending similarities.

``ef`` is index-wide state in hnswlib (``set_ef``): a :class:`~milvus_lab.backends.SharedSetting` lets
searches with the same ``ef`` run together and makes a search with another ``ef`` wait for the index to
be idle. hnswlib searches with max(ef, k), so a ``k`` above ``ef`` (the engine over-fetching to skip
deleted rows) works. hnswlib raises RuntimeError when it finds fewer than k results; the adapter asks
for min(k, rows) and, in the rare case the graph still cannot return that many, retries that batch
query by query, bisecting for the largest k the graph can answer, and pads.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path

import hnswlib
import numpy as np

from .. import spec
from ..errors import BuildIndexError
from . import SharedSetting
from .base import BuiltIndex, pad_results

_SPACES = {"L2": "l2", "IP": "ip"}
#: hnswlib's default seed, fixed so that builds are reproducible
_SEED = 100
#: hnswlib allocates 65,536 label mutexes (40 bytes each on Linux/glibc) per index, even a tiny one
_FIXED_BYTES = 65536 * 40


class HnswIndex(BuiltIndex):
    """A built hnswlib graph over one segment; safe to search from several threads at once."""

    def __init__(self, index: hnswlib.Index, metric: str, params: Mapping[str, int]):
        self.index_type = "HNSW"
        self.metric = metric
        self.params = dict(params)
        self.ntotal = int(index.get_current_count())
        self.dim = int(index.dim)
        self.index = index
        self._descending = metric in spec.DESCENDING_METRICS
        self._ef = SharedSetting(index.set_ef)

    def search(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
               ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        kk = min(k, self.ntotal)
        if kk == 0 or len(queries) == 0:
            return pad_results(np.empty((len(queries), 0)), np.empty((len(queries), 0)), k,
                               self._descending)
        with self._ef.use(int(search_params["ef"])):
            labels, dist = self._knn(queries, kk)
        if self.metric == "IP":
            dist = np.float32(1.0) - dist
        return pad_results(dist, labels, k, self._descending)

    def _knn(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            labels, dist = self.index.knn_query(queries, k=k)
            return labels.astype(np.int64), dist
        except RuntimeError:
            pass
        labels = np.full((len(queries), k), -1, np.int64)
        dist = np.zeros((len(queries), k), np.float32)
        for row, query in enumerate(queries):
            best, low, high = None, 0, k
            while low < high:
                want = (low + high + 1) // 2
                try:
                    best = self.index.knn_query(query[None, :], k=want)
                    low = want
                except RuntimeError:
                    high = want - 1
            if best is not None:
                got = best[0].shape[1]
                labels[row, :got] = best[0][0]
                dist[row, :got] = best[1][0]
        return labels, dist

    def memory_bytes(self) -> int:
        """hnswlib's own count of the graph and vectors (``index_file_size``) plus the fixed table of
        label locks every hnswlib index allocates, whatever its size."""
        return int(self.index.index_file_size()) + _FIXED_BYTES

    def save(self, path: Path) -> None:
        self.index.save_index(str(path))

    def __repr__(self) -> str:
        return f"<HnswIndex {self.metric} {self.params} ntotal={self.ntotal} dim={self.dim}>"


def build(index_type: str, params: Mapping[str, int], vectors: np.ndarray, metric: str) -> HnswIndex:
    """Build an HNSW graph from all rows at once (``max_elements`` = row count)."""
    n, dim = vectors.shape
    if n == 0:
        raise BuildIndexError("HNSW: cannot build an index on an empty segment")
    index = hnswlib.Index(space=_SPACES[metric], dim=dim)
    index.init_index(max_elements=n, M=params["M"], ef_construction=params["efConstruction"],
                     random_seed=_SEED)
    index.add_items(vectors, np.arange(n, dtype=np.int64))
    return HnswIndex(index, metric, params)


def _stored_dim(path: Path) -> int | None:
    """The vector dimension recorded in an hnswlib file header (hnswlib itself trusts the caller's)."""
    with open(path, "rb") as handle:
        header = handle.read(48)
    if len(header) < 48:
        return None
    *_, label_offset, data_offset = struct.unpack("<6Q", header)
    return (label_offset - data_offset) // np.dtype(np.float32).itemsize


def load(index_type: str, params: Mapping[str, int], metric: str, dim: int, path: Path) -> HnswIndex:
    """Read a graph written by ``save`` (capacity as saved, i.e. exactly its row count)."""
    stored = _stored_dim(path)
    if stored is None:
        raise BuildIndexError(f"{path} is not an hnswlib index file (too short)")
    if stored != dim:
        raise BuildIndexError(f"{path} holds an HNSW index of dimension {stored}, expected {dim}")
    index = hnswlib.Index(space=_SPACES[metric], dim=dim)
    index.load_index(str(path), max_elements=0)
    return HnswIndex(index, metric, params)
