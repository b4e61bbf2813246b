"""ANNOY with annoy (build ``n_trees``; search ``search_k``).

The forest is built from the whole segment at once, so annoy's "no add after build" limit never shows,
with a fixed seed (``set_seed``) on :func:`~milvus_lab.backends.base.build_threads` threads: annoy seeds
each thread's trees from the index seed, so a rebuild gives the same forest. L2 uses annoy's
``'euclidean'`` metric, whose distances (not squared) are squared here; IP uses ``'dot'`` (results are dot
products, descending). ``search_k=-1`` inspects n_trees * k nodes, as annoy's own ``-1`` does, where k is
what the engine asks for (top_k, or more when it over-fetches).

annoy keeps ``search_k`` and item ids in a C int. The spec caps ``search_k`` at that int's largest value
(``IntParam.cap``) and keeps a segment of more rows than it can number raw (``IndexSpec.max_rows``); this
adapter resolves ``-1`` itself (``get_n_trees() * k``, what annoy computes, in Python) and passes at most
the cap, so the product never wraps around inside annoy when a large over-fetch meets many trees.

Files: annoy's ``save`` and ``load`` switch the live index to an mmap of the file. Each index therefore
lives in a private temporary file that this module owns (removed when the index is garbage-collected);
``save(path)`` copies it to ``path`` and ``load(path)`` copies ``path`` in, so the user's files can be
moved, overwritten or deleted at any time. annoy trusts the files it maps (a child index out of range is
followed at search time), so :func:`check_file` checks every node before annoy sees the file.

annoy has no batch query: one call per query vector. annoy releases the GIL while it searches, so a
batch of queries is split across a small thread pool (measured on 2 cores, 20k x 64, 2000 queries:
search_k=5000 1.8 s serial vs 1.3 s with 2 threads; search_k=320 0.22 s vs 0.18 s).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex as Forest

from .. import spec
from ..errors import BuildIndexError, UntrainableSegmentError
from .base import SEED, BuiltIndex, build_threads, refuse

_METRICS = {"L2": "euclidean", "IP": "dot"}
#: queries per batch below which the thread pool costs more than it saves
_POOL_MIN_QUERIES = 32
#: rows converted to Python lists at a time while adding items
_ADD_CHUNK = 4096
_WORKERS = max(1, min(8, os.cpu_count() or 1))
#: bytes before the vector in an annoy node (n_descendants, then children and a / dot_factor), per metric
_NODE_HEAD = 16
#: where the children array starts in a node: after n_descendants and a (euclidean), after n_descendants (dot)
_CHILDREN_AT = {"L2": 8, "IP": 4}
#: the most nodes a search may be asked to inspect: annoy's C int, declared once in the spec
SEARCH_K_CAP: int = spec.INDEXES["ANNOY"].search["search_k"].cap
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _thread_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="milvus_lab-annoy")
        return _pool


def _private_file() -> str:
    handle, path = tempfile.mkstemp(prefix="milvus_lab_annoy_", suffix=".ann")
    os.close(handle)
    return path


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class AnnoyIndex(BuiltIndex):
    """An annoy forest mmapped from a private file; safe to search from several threads at once."""

    def __init__(self, index: Forest, file: str, metric: str, params: Mapping[str, int], dim: int):
        super().__init__("ANNOY", metric, params, index.get_n_items(), dim, build_info={"seed": SEED})
        self.index = index
        self._file = file
        weakref.finalize(self, _remove, file)

    def search_batch(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
        nq = len(queries)
        labels = np.full((nq, k), -1, np.int64)
        dist = np.zeros((nq, k), np.float32)
        rows = queries.tolist()
        search_k = self.search_k_used(int(search_params["search_k"]), k)
        if nq < _POOL_MIN_QUERIES or _WORKERS == 1:
            self._fill(rows, 0, k, search_k, labels, dist)
        else:
            step = -(-nq // _WORKERS)
            jobs = [_thread_pool().submit(self._fill, rows[lo:lo + step], lo, k, search_k, labels, dist)
                    for lo in range(0, nq, step)]
            for job in jobs:
                job.result()
        if self.metric == "L2":
            np.square(dist, out=dist)
        return dist, labels

    def search_k_used(self, search_k: int, k: int) -> int:
        """The search_k passed to annoy for ``k`` results: ``-1`` resolved as annoy does (n_trees * k),
        then at most :data:`SEARCH_K_CAP` (annoy's C int would wrap around above it)."""
        wanted = self.index.get_n_trees() * k if search_k == -1 else search_k
        return min(wanted, SEARCH_K_CAP)

    def _fill(self, rows: list[list[float]], first: int, k: int, search_k: int, labels: np.ndarray,
              dist: np.ndarray) -> None:
        """Query ``rows`` one by one (annoy has no batch call) into rows ``first...`` of the outputs."""
        query = self.index.get_nns_by_vector
        for offset, row in enumerate(rows):
            ids, ds = query(row, k, search_k=search_k, include_distances=True)
            labels[first + offset, :len(ids)] = ids
            dist[first + offset, :len(ds)] = ds

    def memory_bytes(self) -> int:
        """Size of annoy's node array, which is exactly its file."""
        return int(os.path.getsize(self._file))

    def save(self, path: Path) -> None:
        """Copy the forest to ``path`` in annoy's format (the live index keeps its private file)."""
        shutil.copyfile(self._file, str(path))


def deterministic(index_type: str, threads: int) -> bool:
    """Seeded: annoy derives each build thread's random stream from the index seed."""
    return True


def build(index_type: str, params: Mapping[str, int], vectors: np.ndarray, metric: str) -> AnnoyIndex:
    """Build a forest of ``n_trees`` trees from all rows (item ids are row positions, a C int in annoy:
    a segment of more rows than that is refused as untrainable before annoy sees a row)."""
    n, dim = vectors.shape
    too_many = spec.INDEXES["ANNOY"].too_many_rows(n)
    if too_many:
        raise UntrainableSegmentError(f"ANNOY: {too_many}")
    index = Forest(dim, _METRICS[metric])
    index.set_seed(SEED)
    add = index.add_item
    for start in range(0, n, _ADD_CHUNK):  # a Python list of floats takes 8x the array: convert a chunk at a time
        for position, row in enumerate(vectors[start:start + _ADD_CHUNK].tolist(), start):
            add(position, row)
    if not index.build(params["n_trees"], n_jobs=build_threads()):
        raise BuildIndexError(f"ANNOY: annoy failed to build {params['n_trees']} trees on {n} rows")
    file = _private_file()
    try:
        index.save(file)
    except BaseException:
        _remove(file)
        raise
    return AnnoyIndex(index, file, metric, params, dim)


def check_file(path: Path, metric: str, dim: int, shown: Path | None = None) -> int:
    """Check an annoy file node by node, as annoy's ``load`` and search will read it; returns n_items.

    A node is ``n_descendants`` (int32), then (euclidean) ``a`` and two children or (dot) two children and
    ``dot_factor``, then ``dim`` floats. Items are nodes 0..n_items-1 with one descendant; a bucket node
    lists up to K item ids in its children array; a split node's two children are earlier nodes; the
    last nodes (the most descendants) are the roots. Errors name ``shown`` (default ``path``).
    """
    path, file = Path(shown or path), path
    node = _NODE_HEAD + 4 * dim
    size = os.path.getsize(file)
    if size == 0 or size % node:
        raise refuse(path, f"{size} bytes is not a whole number of annoy nodes of {node} bytes (dim {dim})")
    nodes = np.fromfile(file, dtype=np.uint8).reshape(size // node, node)
    count = len(nodes)
    ints = nodes.view("<i4")
    descendants = ints[:, 0]
    n_items = int(descendants[-1])
    roots = np.flatnonzero(descendants == n_items)
    if not 1 <= n_items <= count or (descendants[:n_items] != 1).any():
        raise refuse(path, f"annoy item count {n_items} disagrees with the {count} nodes")
    at = _CHILDREN_AT[metric] // 4
    capacity = (node - _CHILDREN_AT[metric]) // 4  # annoy's K: item ids a bucket node can hold
    inner = np.arange(n_items, count)
    nd = descendants[n_items:]
    if len(roots) == 0 or (nd < 1).any() or (nd > n_items).any():
        raise refuse(path, "an annoy node has a descendant count out of range")
    bucket = nd <= capacity
    slots = np.arange(capacity)[None, :]
    ids = ints[n_items:, at:at + capacity]
    listed = ids[bucket][slots < nd[bucket][:, None]]
    if listed.size and (listed.min() < 0 or listed.max() >= n_items):
        raise refuse(path, "an annoy leaf lists an item outside the index")
    children = ints[n_items:, at:at + 2][~bucket]
    if children.size and (children.min() < 0 or (children >= inner[~bucket][:, None]).any()):
        raise refuse(path, "an annoy split node points to a node that is not built before it")
    floats = nodes[:, _NODE_HEAD:].copy().view("<f4")
    if not np.isfinite(floats[:n_items]).all() or not np.isfinite(floats[n_items:][~bucket]).all():
        raise refuse(path, "holds NaN or infinite values")
    return n_items


def load(index_type: str, params: Mapping[str, int], metric: str, dim: int, path: Path) -> AnnoyIndex:
    """Copy ``path`` to a private file, check its nodes, and mmap it with ``AnnoyIndex.load``."""
    file = _private_file()
    try:
        shutil.copyfile(str(path), file)
        check_file(Path(file), metric, dim, shown=Path(path))
        index = Forest(dim, _METRICS[metric])
        index.load(file)
    except BaseException:
        _remove(file)
        raise
    return AnnoyIndex(index, file, metric, params, dim)
