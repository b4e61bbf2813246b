"""Coarse k-means, trained once per set of rows and reused by the builds that would train it again.

Every IVF build (IVF_FLAT, IVF_SQ8, IVF_SQ8H, IVF_PQ) starts by clustering its rows into ``nlist`` cells
with faiss k-means, seeded (:data:`~milvus_lab.backends.base.SEED`), and faiss gives the same centroids
for the same rows whatever the thread count. A comparison builds several IVF types with the same
``nlist`` on the same segment, so it computed the same centroids several times: on 200k x 768 rows and
nlist 2048 that is about a minute each. The RNSG k-NN graph uses the same cells.

:func:`prepare` therefore remembers the last few results, keyed by the rows' buffer (held by weak
reference, so a freed segment's entry is never matched by a new array at the same address, and dropped
when the rows are freed), their shape, a checksum of all their bytes (a row changed in place trains again),
``nlist``, the metric and faiss's clustering settings. A reused result is the
result a new training would give; the seconds the first training took travel with it, so a build report
can count them (see ``IndexReport.reused_training_s``). Each row's nearest cells (the assignment faiss
computes when it adds rows, one quantizer search of all rows) are kept with the centroids too, with the
seconds they took.
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
    assign_seconds: float = 0.0


_cache: OrderedDict[tuple, tuple[Any, Trained]] = OrderedDict()
_lock = threading.RLock()  # re-entrant: a weakref callback may fire while this thread holds it


def _owner(array: np.ndarray) -> Any:
    """The object that owns the memory of ``array`` (the end of its ``.base`` chain)."""
    owner: Any = array
    while isinstance(owner, np.ndarray) and owner.base is not None:
        owner = owner.base
    return owner


def _checksum(vectors: np.ndarray) -> int:
    """CRC-32 of every byte of the (C-contiguous) rows: 0.4 s for 586 MB, against a minute of k-means."""
    return zlib.crc32(memoryview(vectors).cast("B"))


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


def _forget(ref: Any) -> None:
    """Drop the entries of rows that were freed (weakref callback)."""
    with _lock:
        for key, (held, _) in list(_cache.items()):
            if held is ref:
                del _cache[key]


def _remember(key: tuple | None, owner: Any, trained: Trained) -> None:
    if key is None:
        return
    try:
        ref = weakref.ref(owner, _forget)
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


def prepare(index: Any, vectors: np.ndarray, width: int = 1) -> tuple[np.ndarray, float, float]:
    """Train the coarse quantizer of the untrained faiss IVF ``index`` on ``vectors`` (faiss's Clustering with
    ``index.cp``: exactly what ``index.train`` computes) and find each row's ``width`` nearest cells (the
    assignment faiss computes when it adds rows), each done now or reused from an earlier build on the same
    rows. Returns (nearest cells n x width, seconds the work took when it was done, seconds of it reused).

    Afterwards ``index.train(vectors)`` skips the k-means (faiss does when the quantizer already holds
    ``nlist`` trained centroids) and trains only the codec (SQ ranges, PQ codebooks)."""
    ivf = faiss.extract_index_ivf(index)
    quantizer, nlist, dim = ivf.quantizer, ivf.nlist, ivf.d
    key = _key(vectors, nlist, ivf.metric_type, ivf.cp)
    owner = _owner(vectors)
    trained = _lookup(key, owner)
    reused = 0.0
    if trained is None:
        started = time.perf_counter()
        clustering = faiss.Clustering(dim, nlist, ivf.cp)
        quantizer.reset()
        clustering.train(vectors, quantizer)
        centroids = faiss.vector_to_array(clustering.centroids).reshape(nlist, dim).copy()
        trained = Trained(centroids, time.perf_counter() - started)
        _remember(key, owner, trained)
    else:
        quantizer.reset()
        quantizer.add(trained.centroids)
        reused += trained.seconds
    quantizer.is_trained = True
    if trained.nearest is not None and trained.nearest.shape[1] >= width:
        reused += trained.assign_seconds
    else:
        started = time.perf_counter()
        keep = min(max(width, ASSIGN_WIDTH), nlist)
        nearest = np.empty((len(vectors), keep), np.int64)
        for start in range(0, len(vectors), ASSIGN_CHUNK):
            nearest[start:start + ASSIGN_CHUNK] = quantizer.search(vectors[start:start + ASSIGN_CHUNK], keep)[1]
        trained.nearest, trained.assign_seconds = nearest, time.perf_counter() - started
    return trained.nearest[:, :width], trained.seconds + trained.assign_seconds, reused
