"""The shared base of every backend family: the BuiltIndex interface, padding, shared search settings.

A family module (``flat``, ``ivf``, ``nsg``, ``binary``, ``hnsw``, ``annoy``) turns a segment's vectors into
a :class:`BuiltIndex` and searches it with a batch of queries. Results use row positions of the build
array (the engine maps them to ids), ``-1`` for a missing hit, and distances in the Milvus convention:
squared L2 and binary distances ascending, IP descending; a missing hit has distance +inf (ascending
metrics) or -inf (IP).

Reproducibility: every build is seeded where the library allows it (faiss k-means, hnswlib, annoy).
Graph builds that run on several threads (hnswlib ``add_items``, faiss NSG / NN-descent under OpenMP)
depend on thread scheduling; each built index says so in :attr:`BuiltIndex.deterministic`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from .. import spec
from ..errors import BuildIndexError, UntrainableSegmentError

#: faiss's metric for each float metric
FAISS_METRIC = {"L2": faiss.METRIC_L2, "IP": faiss.METRIC_INNER_PRODUCT}
#: the seed of every randomised build step (faiss k-means, hnswlib levels, annoy splits)
SEED = 1234


def build_threads() -> int:
    """Threads a build uses: faiss's OpenMP count (``faiss.omp_set_num_threads`` or ``OMP_NUM_THREADS``
    set it); hnswlib and annoy builds use the same number, so one knob fixes them all."""
    return max(1, int(faiss.omp_get_max_threads()))


class BuiltIndex(ABC):
    """An index built on one segment. Safe to search from several threads at once.

    ``deterministic`` says whether a rebuild on the same rows gives the same index (seeded, or built on
    one thread); ``build_info`` holds facts a build report may show (e.g. ``graph_builder``).
    """

    def __init__(self, index_type: str, metric: str, params: Mapping[str, int], ntotal: int, dim: int, *,
                 deterministic: bool = True, build_info: Mapping[str, Any] | None = None):
        self.index_type = index_type
        self.metric = metric
        self.params = dict(params)
        self.ntotal = int(ntotal)
        self.dim = int(dim)
        self.deterministic = bool(deterministic)
        self.build_info: dict[str, Any] = dict(build_info or {})
        self.descending = metric in spec.DESCENDING_METRICS

    #: dtype queries are converted to (uint8 rows for binary metrics)
    query_dtype: Any = np.float32

    def search(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
               ) -> tuple[np.ndarray, np.ndarray]:
        """Return (distances float32 nq x k, positions int64 nq x k) for a batch of queries.

        ``k`` may exceed ``ntotal`` (the result is padded) and may exceed ``ef``/``search_k`` (the engine
        over-fetches to skip deleted rows); search params have already been validated against the spec.
        """
        queries = np.ascontiguousarray(queries, dtype=self.query_dtype)
        kk = min(k, self.ntotal)
        if kk == 0 or len(queries) == 0:
            return self.empty_result(len(queries), k)
        dist, labels = self.search_batch(queries, kk, search_params)
        return pad_results(dist, labels, k, self.descending)

    @abstractmethod
    def search_batch(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
        """The library's answer for a non-empty batch and 1 <= k <= ntotal (padded by :meth:`search`)."""

    @abstractmethod
    def memory_bytes(self) -> int:
        """Bytes the index holds (vectors or codes, graph, centroids)."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the index to ``path`` in the library's own format (never pickle)."""

    def empty_result(self, nq: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``nq`` rows of ``k`` missing hits."""
        return pad_results(np.empty((nq, 0)), np.empty((nq, 0)), k, self.descending)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.index_type} {self.metric} {self.params} "
                f"ntotal={self.ntotal} dim={self.dim}>")


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


class SharedSetting:
    """An index-wide search setting (hnswlib ``ef``, faiss NSG ``search_L``) shared by concurrent searches.

    Searches that need the current value run together; a search that needs another value waits until
    the index is idle, applies it, and runs. Once a search is waiting for another value, newcomers queue
    behind it, so no value starves.
    """

    def __init__(self, apply: Callable[[Any], None]):
        self._apply = apply
        self._cond = threading.Condition()
        self._value: Any = None
        self._active = 0
        self._waiting: Counter = Counter()

    def _may_enter(self, value: Any) -> bool:
        if self._active == 0:
            return True
        others = sum(self._waiting.values()) - self._waiting[value]
        return self._value == value and others == 0

    @contextmanager
    def use(self, value: Any) -> Iterator[None]:
        """Hold ``value`` applied to the index for the duration of the block."""
        with self._cond:
            if not self._may_enter(value):
                self._waiting[value] += 1
                try:
                    self._cond.wait_for(lambda: self._may_enter(value))
                finally:
                    self._waiting[value] -= 1
            if self._value != value:
                self._apply(value)
                self._value = value
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                if self._active == 0:
                    self._cond.notify_all()


# --------------------------------------------------------------------------------------------------
# Helpers the families share
# --------------------------------------------------------------------------------------------------
def require_rows(index_type: str, have: int, need: int, why: str) -> None:
    """Refuse a segment whose data cannot train the index (the engine keeps it raw with this reason)."""
    if have < need:
        raise UntrainableSegmentError(f"{index_type}: {why}; the segment has {have} rows (needs at least {need})")


def seed_clustering(*clustering_params: Any) -> None:
    """Seed faiss k-means and switch off its stderr hint for under 39 points per centroid (the engine
    reports row counts itself)."""
    for cp in clustering_params:
        cp.seed = SEED
        cp.min_points_per_centroid = 1


def serialized_size(index: Any) -> int:
    """Bytes a faiss index (float or binary) holds, counted from its structures.

    Not by serialising it: ``faiss.serialize_index`` makes a full copy, which doubled the peak memory of a
    build just to report its size. IVF: codes and ids of every list, the centroids and the quantizer's
    tables; NSG: the vectors and the graph. Other index classes fall back to the serialised size."""
    if isinstance(index, faiss.IndexBinaryIVF):
        return int(index.ntotal * (index.code_size + 8) + index.nlist * index.code_size)
    if isinstance(index, faiss.IndexBinary):
        return int(index.ntotal * index.code_size) if isinstance(index, faiss.IndexBinaryFlat) else \
            int(faiss.serialize_index_binary(index).size)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf = faiss.downcast_index(ivf)
        extra = 0
        if isinstance(ivf, faiss.IndexIVFPQ):
            extra = ivf.pq.M * ivf.pq.ksub * ivf.pq.dsub * 4
        elif isinstance(ivf, faiss.IndexIVFScalarQuantizer):
            extra = ivf.sq.trained.size() * 4
        return int(ivf.ntotal * (ivf.code_size + 8) + ivf.nlist * ivf.d * 4 + extra)
    if isinstance(index, faiss.IndexNSG):
        return int(index.ntotal * index.d * 4 + index.ntotal * index.nsg.R * 4)
    return int(faiss.serialize_index(index).size)


def refuse(path: Path, what: str) -> BuildIndexError:
    """The error for an index file whose structure is not what ``save`` writes."""
    return BuildIndexError(f"{path} is damaged or not a milvus_lab index file: {what}")


def check_faiss_header(index: Any, path: Path, expected_type: type, dim: int, metric: str) -> None:
    """A faiss index read from ``path`` has the class, dimension and metric the collection expects."""
    if not isinstance(index, expected_type):
        raise refuse(path, f"holds a faiss {type(index).__name__}, expected {expected_type.__name__}")
    if index.d != dim:
        raise refuse(path, f"holds an index of dimension {index.d}, expected {dim}")
    if metric in FAISS_METRIC and index.metric_type != FAISS_METRIC[metric]:
        raise refuse(path, f"holds an index with another metric than {metric}")
    if index.ntotal < 0 or not index.is_trained:
        raise refuse(path, f"holds an untrained index or a negative row count ({index.ntotal})")
