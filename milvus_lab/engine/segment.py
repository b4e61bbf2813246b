"""Segments: the unit of storage and of indexing.

Rows go to a partition's open segment until it holds ``index_file_size`` MB; then it seals and is
indexed in the background. Searches never lock a segment: they read an immutable :class:`SegmentView`
(array views plus the index at that moment). Writers only append beyond a view's rows, replace the
deleted mask (copy on write) or swap in an index under the collection's lock.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import NamedTuple

import numpy as np

from ..backends.base import BuiltIndex
from .state import SegmentState


class SegmentView(NamedTuple):
    """What a search reads: rows, ids and the index of one segment at one moment (immutable)."""

    segment_id: int
    partition: str
    vectors: np.ndarray
    ids: np.ndarray
    deleted: np.ndarray | None
    n_deleted: int
    index: BuiltIndex | None
    sealed: bool

    @property
    def name(self) -> str:
        return str(self.segment_id)

    @property
    def live_rows(self) -> int:
        return len(self.ids) - self.n_deleted


class Segment:
    """A growable (while open) block of rows with an optional built index. Guarded by the collection."""

    def __init__(self, segment_id: int, partition: str, row_shape: tuple[int, ...], dtype: np.dtype,
                 capacity_rows: int):
        self.segment_id = segment_id
        self.partition = partition
        self.capacity_rows = capacity_rows
        self._vectors = np.empty((0, *row_shape), dtype=dtype)
        self._ids = np.empty(0, dtype=np.int64)
        self.count = 0
        self.sealed = False
        self.deleted: np.ndarray | None = None
        self.n_deleted = 0
        self.index: BuiltIndex | None = None
        #: why a build attempt left this segment raw (untrainable data, or "build failed: ..."); None otherwise
        self.raw_reason: str | None = None
        self._sorted: tuple[tuple[int, int], np.ndarray, np.ndarray] | None = None

    @property
    def name(self) -> str:
        return str(self.segment_id)

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors[: self.count]

    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self.count]

    @property
    def free_rows(self) -> int:
        return self.capacity_rows - self.count

    def append(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Append rows beyond ``count``; earlier views stay valid (growth allocates a new buffer)."""
        need = self.count + len(ids)
        if need > len(self._ids):
            capacity = min(self.capacity_rows, max(need, int(len(self._ids) * 1.5)))
            new_vectors = np.empty((capacity, *self._vectors.shape[1:]), dtype=self._vectors.dtype)
            new_ids = np.empty(capacity, dtype=np.int64)
            new_vectors[: self.count] = self._vectors[: self.count]
            new_ids[: self.count] = self._ids[: self.count]
            self._vectors, self._ids = new_vectors, new_ids
        self._vectors[self.count: need] = vectors
        self._ids[self.count: need] = ids
        if self.deleted is not None:
            self.deleted = np.concatenate([self.deleted, np.zeros(len(ids), dtype=bool)])
        self.count = need

    def trim(self) -> None:
        """Give back buffer slack (a copy; views taken before keep the old buffer)."""
        if len(self._ids) > self.count:
            self._vectors = self._vectors[: self.count].copy()
            self._ids = self._ids[: self.count].copy()

    def state(self) -> SegmentState:
        """This segment as a value (the arrays are shared, not copied: they are never written in place)."""
        return SegmentState(self.segment_id, self.partition, self.vectors, self.ids, self.deleted, self.sealed,
                            self.capacity_rows, self.index, self.raw_reason)

    @classmethod
    def from_state(cls, state: SegmentState) -> "Segment":
        """A segment holding ``state``'s rows, deletes and index (the state was checked by the collection)."""
        seg = cls(state.segment_id, state.partition, state.vectors.shape[1:], state.vectors.dtype,
                  state.capacity_rows)
        seg._vectors, seg._ids, seg.count = state.vectors, state.ids, state.count
        seg.sealed = state.sealed
        seg.deleted = None if state.deleted is None or not state.deleted.any() else state.deleted
        seg.n_deleted = state.n_deleted
        seg.index = state.index
        seg.raw_reason = state.raw_reason
        return seg

    def view(self) -> SegmentView:
        return SegmentView(self.segment_id, self.partition, self.vectors, self.ids, self.deleted,
                           self.n_deleted, self.index, self.sealed)

    def apply_deletes(self, doomed: np.ndarray, upto: int | None = None) -> np.ndarray:
        """Mark ``doomed`` ids among the first ``upto`` rows deleted (copy on write); return the ids newly
        deleted here."""
        hit = np.isin(self.ids, doomed)
        if upto is not None:
            hit[upto:] = False
        if self.deleted is not None:
            hit &= ~self.deleted
        if not hit.any():
            return np.empty(0, dtype=np.int64)
        self.deleted = hit if self.deleted is None else (self.deleted | hit)
        self.n_deleted = int(self.deleted.sum())
        return self.ids[hit]

    def live_mask(self) -> np.ndarray:
        return np.ones(self.count, dtype=bool) if self.deleted is None else ~self.deleted

    def locate(self, ids: np.ndarray) -> np.ndarray:
        """Row positions of live ``ids`` in this segment (-1 where absent or deleted)."""
        key = (self.count, self.n_deleted)  # both only grow, so the pair identifies the live set
        if self._sorted is None or self._sorted[0] != key:
            live = np.flatnonzero(self.live_mask())
            order = live[np.argsort(self.ids[live], kind="stable")]
            self._sorted = (key, self.ids[order], order)
        _, sorted_ids, order = self._sorted
        if not len(sorted_ids):
            return np.full(len(ids), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
        return np.where(sorted_ids[pos] == ids, order[pos], -1)

    def data_bytes(self) -> int:
        return int(self.vectors.nbytes)

    def memory_bytes(self) -> int:
        """Bytes held by the raw rows and ids (buffer capacity included)."""
        return int(self._vectors.nbytes + self._ids.nbytes
                   + (self.deleted.nbytes if self.deleted is not None else 0))


def _load_malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to call
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def return_freed_memory() -> bool:
    """Hand memory freed by dropped indexes back to the system (glibc keeps it in its heap otherwise).

    Call it after the last reference to the index objects is gone (they are freed by reference counting).
    Returns False where there is no ``malloc_trim``."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True
