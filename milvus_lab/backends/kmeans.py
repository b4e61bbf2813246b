"""Coarse k-means, trained once per set of rows and reused by the builds that would train it again.

Every IVF build (IVF_FLAT, IVF_SQ8, IVF_SQ8H, IVF_PQ) starts by clustering its rows into ``nlist`` cells
with faiss k-means, seeded (:data:`~milvus_lab.backends.base.SEED`), and faiss gives the same centroids
for the same rows whatever the thread count. A comparison builds several IVF types with the same
``nlist`` on the same segment, so it computed the same centroids several times: on 200k x 768 rows and
nlist 2048 that is about a minute each. The RNSG k-NN graph uses the same cells.

:func:`train_quantizer` therefore remembers the last few results, keyed by the rows' buffer (held by weak
reference, so a freed segment's entry is never matched by a new array at the same address), their shape,
a checksum of sampled rows, ``nlist``, the metric and faiss's clustering settings. A reused result is the
result a new training would give; the seconds the first training took travel with it, so a build report
can count them (see ``IndexReport.reused_training_s``). Each row's nearest cells (the assignment faiss
computes when it adds rows, one quantizer search of all rows) are kept with the centroids too.
"""

from __future__ import annotations

import threading
import time
import weakref
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

#: trained quantizers remembered (each nlist x dim float32: 6 MB at 2048 x 768)
CACHE_ENTRIES = 4
#: rows sampled into the checksum that guards a cached entry against rows changed in place
CHECK_ROWS = 64


#: nearest cells kept per row once the rows were assigned (IVF adds use the first, the RNSG graph probes 4)
ASSIGN_WIDTH = 4
#: rows assigned per quantizer search
ASSIGN_CHUNK = 50_000


@dataclass
class Trained:
    """Centroids of one k-means run, what it cost, and (once asked) each row's nearest cells."""

    centroids: np.ndarray
    seconds: float
    nearest: np.ndarray | None = None


_cache: OrderedDict[tuple, tuple[Any, Trained]] = OrderedDict()
_lock = threading.Lock()


def _owner(array: np.ndarray) -> Any:
    """The object that owns the memory of ``array`` (the end of its ``.base`` chain)."""
    owner: Any = array
    while isinstance(owner, np.ndarray) and owner.base is not None:
        owner = owner.base
    return owner


def _checksum(vectors: np.ndarray) -> int:
    picks = np.unique(np.linspace(0, len(vectors) - 1, min(CHECK_ROWS, len(vectors))).astype(np.int64))
    return zlib.crc32(np.ascontiguousarray(vectors[picks]).tobytes())


def _key(vectors: np.ndarray, nlist: int, metric_type: int, cp: Any) -> tuple | None:
    if not vectors.flags.c_contiguous or len(vectors) == 0:
        return None
    settings = (cp.niter, cp.seed, cp.max_points_per_centroid, cp.min_points_per_centroid, cp.spherical,
                cp.int_centroids, cp.update_index, cp.frozen_centroids, cp.nredo)
    address = vectors.__array_interface__["data"][0]
    return (id(_owner(vectors)), address, vectors.shape, vectors.dtype.str, int(nlist), int(metric_type),
            settings, _checksum(vectors))


def _lookup(key: tuple | None, owner: Any) -> Trained | None:
    if key is None:
        return None
    with _lock:
        entry = _cache.get(key)
        if entry is None:
            return None
        ref, trained = entry
        if ref() is not owner:  # the rows were freed and the address reused
            del _cache[key]
            return None
        _cache.move_to_end(key)
        return trained


def _remember(key: tuple | None, owner: Any, trained: Trained) -> None:
    if key is None:
        return
    try:
        ref = weakref.ref(owner)
    except TypeError:  # an owner that cannot be weakly referenced is never cached
        return
    with _lock:
        _cache[key] = (ref, trained)
        _cache.move_to_end(key)
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)


def clear() -> None:
    """Forget every remembered training."""
    with _lock:
        _cache.clear()


def nearest_cells(index: Any, vectors: np.ndarray, width: int = 1) -> np.ndarray:
    """Each row's ``width`` nearest cells (n x width int64, nearest first) in the trained quantizer of
    ``index``: the assignment faiss computes when it adds rows. Kept with the trained centroids of the same
    rows (up to :data:`ASSIGN_WIDTH` cells), so later builds on the same rows do not search them again."""
    ivf = faiss.extract_index_ivf(index)
    quantizer = ivf.quantizer
    key = _key(vectors, ivf.nlist, ivf.metric_type, ivf.cp)
    trained = _lookup(key, _owner(vectors))
    same = trained is not None and quantizer.ntotal == len(trained.centroids) and np.array_equal(
        quantizer.reconstruct_n(0, quantizer.ntotal), trained.centroids)
    if same and trained.nearest is not None and trained.nearest.shape[1] >= width:
        return trained.nearest[:, :width]
    keep = max(width, ASSIGN_WIDTH if same else width)
    keep = min(keep, quantizer.ntotal)
    nearest = np.empty((len(vectors), keep), np.int64)
    for start in range(0, len(vectors), ASSIGN_CHUNK):
        nearest[start:start + ASSIGN_CHUNK] = quantizer.search(vectors[start:start + ASSIGN_CHUNK], keep)[1]
    if same:
        trained.nearest = nearest
    return nearest[:, :width]


def train_quantizer(index: Any, vectors: np.ndarray) -> tuple[float, bool]:
    """Fill the coarse quantizer of an untrained faiss IVF ``index`` with the k-means centroids of
    ``vectors`` (exactly what ``index.train`` would compute: faiss's Clustering with ``index.cp``),
    trained now or reused. Returns (seconds the training took when it ran, reused?).

    Afterwards ``index.train(vectors)`` skips the k-means (faiss does when the quantizer already holds
    ``nlist`` trained centroids) and trains only the codec (SQ ranges, PQ codebooks)."""
    ivf = faiss.extract_index_ivf(index)
    quantizer, nlist, dim = ivf.quantizer, ivf.nlist, ivf.d
    key = _key(vectors, nlist, ivf.metric_type, ivf.cp)
    owner = _owner(vectors)
    trained = _lookup(key, owner)
    reused = trained is not None
    if trained is None:
        started = time.perf_counter()
        clustering = faiss.Clustering(dim, nlist, ivf.cp)
        quantizer.reset()
        clustering.train(vectors, quantizer)
        seconds = time.perf_counter() - started
        centroids = faiss.vector_to_array(clustering.centroids).reshape(nlist, dim).copy()
        trained = Trained(centroids, seconds)
        _remember(key, owner, trained)
    else:
        quantizer.reset()
        quantizer.add(trained.centroids)
    quantizer.is_trained = True
    return trained.seconds, reused
