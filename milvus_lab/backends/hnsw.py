"""HNSW with hnswlib (build ``M``, ``efConstruction``; search ``ef``).

The index is created with ``max_elements`` equal to the segment's row count and built from all rows at
once (labels are row positions), with a fixed ``random_seed`` for the level draws. ``add_items`` inserts
on :func:`~milvus_lab.backends.base.build_threads` threads; with more than one the graph depends on
thread scheduling (not reproducible), with one it is the same on every rebuild.

L2 uses space ``'l2'`` (already squared L2); IP uses space ``'ip'``, whose distance is 1 - dot,
converted back to the dot product so IP results are descending similarities.

``ef`` is index-wide state in hnswlib (``set_ef``): a :class:`SharedSetting` lets searches with the same
``ef`` run together and makes a search with another ``ef`` wait for the index to be idle. hnswlib
searches with max(ef, k), so a ``k`` above ``ef`` works. hnswlib raises RuntimeError when it finds fewer
than k results; the adapter asks for min(k, rows) and, in the rare case the graph still cannot return
that many, retries that batch query by query, bisecting for the largest k the graph can answer, and pads.

hnswlib trusts the files it loads (a link to a node without that level is followed into freed memory),
so :func:`check_file` parses the whole saved graph before hnswlib sees it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path

import hnswlib
import numpy as np

from .. import spec
from ..errors import UntrainableSegmentError
from .base import SEED, BuiltIndex, SharedSetting, build_threads, refuse

_SPACES = {"L2": "l2", "IP": "ip"}
#: hnswlib allocates 65,536 label mutexes (40 bytes each on Linux/glibc) per index, even a tiny one
_FIXED_BYTES = 65536 * 40
#: hnswlib 0.8 ``saveIndex`` header: offsetLevel0, max_elements, cur_element_count, size_data_per_element,
#: label_offset, offsetData (size_t); maxlevel (int); enterpoint_node (uint32); maxM, maxM0, M (size_t);
#: mult (double); ef_construction (size_t)
_HEADER = struct.Struct("<6QiI3QdQ")
_ID = 4  # bytes of a tableint / linklistsizeint
_LABEL = 8  # bytes of a labeltype
_MAX_LEVEL = 64


class HnswIndex(BuiltIndex):
    """A built hnswlib graph over one segment; safe to search from several threads at once."""

    def __init__(self, index: hnswlib.Index, metric: str, params: Mapping[str, int], *, deterministic: bool):
        super().__init__("HNSW", metric, params, index.get_current_count(), index.dim,
                         deterministic=deterministic, build_info={"seed": SEED})
        self.index = index
        self._ef = SharedSetting(index.set_ef)

    def search_batch(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
        with self._ef.use(int(search_params["ef"])):
            labels, dist = self._knn(queries, k)
        if self.metric == "IP":
            dist = np.float32(1.0) - dist
        return dist, labels

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


def deterministic(index_type: str, threads: int) -> bool:
    """Seeded levels; the insertion order (and so the graph) is fixed only on one thread."""
    return threads == 1


def build(index_type: str, params: Mapping[str, int], vectors: np.ndarray, metric: str) -> HnswIndex:
    """Build an HNSW graph from all rows at once (``max_elements`` = row count). hnswlib numbers nodes with
    an unsigned C int: a segment of more rows than that is refused as untrainable before hnswlib sees it."""
    n, dim = vectors.shape
    too_many = spec.INDEXES["HNSW"].too_many_rows(n)
    if too_many:
        raise UntrainableSegmentError(f"HNSW: {too_many}")
    threads = build_threads()
    index = hnswlib.Index(space=_SPACES[metric], dim=dim)
    index.init_index(max_elements=n, M=params["M"], ef_construction=params["efConstruction"], random_seed=SEED)
    index.add_items(vectors, np.arange(n, dtype=np.int64), num_threads=threads)
    return HnswIndex(index, metric, params, deterministic=deterministic(index_type, threads))


def _check_links(path: Path, ids: np.ndarray, counts: np.ndarray, width: int, nodes: int,
                 allowed: np.ndarray | None = None) -> None:
    """Each link list holds at most ``width`` ids, all < ``nodes`` (and, above level 0, nodes that
    reach that level: ``allowed``)."""
    if counts.size and counts.max() > width:
        raise refuse(path, f"an HNSW node lists {int(counts.max())} links, more than {width}")
    used = ids[np.arange(width)[None, :] < counts[:, None]]
    if used.size and used.max() >= nodes:
        raise refuse(path, f"an HNSW link points outside 0..{nodes - 1}")
    if allowed is not None and used.size and not allowed[used].all():
        raise refuse(path, "an HNSW link points to a node that does not reach that level")


def check_file(path: Path, params: Mapping[str, int], dim: int) -> int:
    """Parse an hnswlib 0.8 file: header fields against ``params``/``dim``, sizes summing exactly to the
    file size, levels, labels and every link id in range. Returns the element count."""
    data = Path(path).read_bytes()
    if len(data) < _HEADER.size:
        raise refuse(path, "shorter than an hnswlib header")
    (offset0, capacity, count, per_element, label_offset, data_offset, max_level, entry, max_m, max_m0, m,
     mult, ef_construction) = _HEADER.unpack_from(data, 0)
    links0 = _ID + max_m0 * _ID
    if (offset0 != 0 or m != params["M"] or max_m != m or max_m0 != 2 * m or data_offset != links0
            or label_offset != data_offset + 4 * dim or per_element != label_offset + _LABEL
            or ef_construction != params["efConstruction"] or not np.isfinite(mult)):
        raise refuse(path, f"hnswlib header (M={m}, maxM0={max_m0}, element {per_element} bytes) does not match "
                           f"dim={dim} and {dict(params)}")
    if not 1 <= count <= capacity or capacity != count or not 0 <= max_level < _MAX_LEVEL or entry >= count:
        raise refuse(path, f"hnswlib counts (rows {count}, capacity {capacity}, top level {max_level}, entry "
                           f"{entry}) are out of range")
    end0 = _HEADER.size + count * per_element
    if end0 > len(data):
        raise refuse(path, "the file ends inside the level-0 data")
    level0 = np.frombuffer(data, dtype=np.uint8, count=count * per_element, offset=_HEADER.size)
    level0 = level0.reshape(count, per_element)
    head = level0[:, :_ID].copy().view("<u4")[:, 0]
    if (head >> 16).any():  # the "deleted" mark and unused flag bytes: never set by a milvus_lab save
        raise refuse(path, "an HNSW element is marked deleted")
    ids0 = level0[:, _ID:links0].copy().view("<u4")
    _check_links(path, ids0, (head & 0xFFFF).astype(np.int64), max_m0, count)
    vectors = level0[:, data_offset:label_offset].copy().view("<f4")
    labels = level0[:, label_offset:].copy().view("<u8")[:, 0]
    if not np.isfinite(vectors).all():
        raise refuse(path, "holds NaN or infinite vector values")
    if labels.max() >= count or np.bincount(labels.astype(np.int64), minlength=count).max() != 1:
        raise refuse(path, "HNSW labels are not the row positions 0..n-1, each once")
    levels, lists = _upper_levels(path, data, end0, count, _ID + max_m * _ID)
    if levels.max() != max_level or levels[entry] != max_level:
        raise refuse(path, f"the HNSW entry point {entry} or top level {max_level} disagrees with the levels")
    for level in range(1, max_level + 1):
        rows = np.flatnonzero(levels >= level)
        block = np.stack([lists[row][level - 1] for row in rows])
        _check_links(path, block[:, 1:], block[:, 0].astype(np.int64) & 0xFFFF, max_m, count,
                     allowed=levels >= level)
        if (block[:, 0] >> 16).any():
            raise refuse(path, "an HNSW upper-level list has flag bits set")
    return count


def _upper_levels(path: Path, data: bytes, offset: int, count: int, list_bytes: int
                  ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Level of each element and its upper-level link lists (``level`` rows of 1 + maxM uint32 each)."""
    levels = np.zeros(count, dtype=np.int64)
    lists: list[np.ndarray] = [np.empty((0, list_bytes // _ID), np.uint32)] * count
    size = len(data)
    for row in range(count):
        if offset + _ID > size:
            raise refuse(path, "the file ends inside the HNSW link lists")
        (nbytes,) = struct.unpack_from("<I", data, offset)
        offset += _ID
        if nbytes:
            if nbytes % list_bytes or nbytes // list_bytes >= _MAX_LEVEL or offset + nbytes > size:
                raise refuse(path, f"HNSW element {row} has a link block of {nbytes} bytes")
            levels[row] = nbytes // list_bytes
            lists[row] = np.frombuffer(data, dtype="<u4", count=nbytes // _ID, offset=offset).reshape(
                levels[row], list_bytes // _ID)
            offset += nbytes
    if offset != size:
        raise refuse(path, f"{size - offset} bytes after the last HNSW link list")
    return levels, lists


def load(index_type: str, params: Mapping[str, int], metric: str, dim: int, path: Path) -> HnswIndex:
    """Check the file's whole structure, then read it with hnswlib (capacity as saved)."""
    check_file(path, params, dim)
    index = hnswlib.Index(space=_SPACES[metric], dim=dim)
    index.load_index(str(path), max_elements=0)
    return HnswIndex(index, metric, params, deterministic=deterministic(index_type, build_threads()))
