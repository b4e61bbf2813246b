"""A collection's and an engine's state as plain values: what ``snapshot()`` returns and ``restore`` takes.

Everything needed to rebuild a collection exactly (schema, id mode, partitions, segments with their rows,
deletes and built index objects, pending deletes with their extents, settings) in frozen dataclasses of
NumPy arrays, ints and strings. :mod:`milvus_lab.engine.persist` saves and loads these values and never
touches a collection's private attributes; :meth:`CollectionState.check` is the one consistency check
that a restore (and a load) runs before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .. import spec
from ..backends.base import BuiltIndex
from ..errors import InvalidParameterError, MilvusLabError
from . import validation

DEFAULT_PARTITION = "_default"


def validate_segment_rows(rows: Any) -> int:
    """Rows per segment: an int >= 1 (the public setting that replaces the size derived from index_file_size)."""
    if not is_int(rows) or rows < 1:
        raise InvalidParameterError(f"segment_rows={rows!r} is invalid; allowed: an int >= 1 (rows per segment)")
    return int(rows)


def is_int(value: Any) -> bool:
    """An integer as spec counts one (Python and NumPy integers, never a bool)."""
    return spec.as_int(value) is not None


def layout_problem(what: str, dtype: np.dtype, shape: tuple[int, ...], want_dtype: np.dtype,
                   want_shape: tuple[int | None, ...]) -> str | None:
    """Why an array of ``dtype`` and ``shape`` is not the stored layout wanted (``None`` in ``want_shape``:
    any length), or None when it is. One check for a state in memory and a .npy file's header and contents."""
    if dtype != want_dtype:
        return f"{what} has dtype {dtype}, expected {np.dtype(want_dtype)}"
    if len(shape) != len(want_shape) or any(w is not None and w != a for w, a in zip(want_shape, shape)):
        return f"{what} has shape {tuple(shape)}, expected {tuple('n' if w is None else w for w in want_shape)}"
    return None


def row_layout(dimension: int, metric: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape of one stored row and its dtype: float32 rows, or packed bits (dim / 8 bytes) for binary."""
    if spec.is_binary_metric(metric):
        return (dimension // 8,), np.dtype(np.uint8)
    return (dimension,), np.dtype(np.float32)


@dataclass(frozen=True)
class SegmentState:
    """One segment: its rows, ids, flushed deletes, sealed flag and built index (or why a build left it raw)."""

    segment_id: int
    partition: str
    vectors: np.ndarray
    ids: np.ndarray
    deleted: np.ndarray | None
    sealed: bool
    capacity_rows: int
    index: BuiltIndex | None = None
    #: why a build attempt left this segment raw (failed or untrainable); other reasons are derived
    raw_reason: str | None = None

    @property
    def name(self) -> str:
        return str(self.segment_id)

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def n_deleted(self) -> int:
        return 0 if self.deleted is None else int(np.count_nonzero(self.deleted))


@dataclass(frozen=True)
class PendingDelete:
    """Ids deleted but not flushed, and how many rows each segment had then (a delete never reaches later
    inserts)."""

    ids: np.ndarray
    extent: Mapping[int, int]


@dataclass(frozen=True)
class CollectionState:
    """Everything a collection holds; ``Collection.restore`` rebuilds it exactly."""

    name: str
    dimension: int
    metric: str
    index_file_size: int
    segment_rows: int
    index_type: str = "FLAT"
    index_params: Mapping[str, int] = field(default_factory=dict)
    index_params_given: Mapping[str, Any] = field(default_factory=dict)
    id_mode: str | None = None
    next_auto_id: int = 0
    next_segment_id: int = 1
    partitions: tuple[str, ...] = (DEFAULT_PARTITION,)
    segments: tuple[SegmentState, ...] = ()
    pending_deletes: tuple[PendingDelete, ...] = ()
    background_errors: tuple[str, ...] = ()

    def check(self) -> None:
        """Raise InvalidParameterError naming the first inconsistency (schema, index, segments, ids, deletes)."""
        _Checker(self).run()


@dataclass(frozen=True)
class EngineState:
    """An engine's settings and its collections."""

    build_threshold: int
    segment_rows: int | None = None
    collections: tuple[CollectionState, ...] = ()

    def check(self) -> None:
        if not is_int(self.build_threshold) or self.build_threshold < 1:
            raise InvalidParameterError(f"build_threshold={self.build_threshold!r} is invalid; allowed: an int >= 1")
        if self.segment_rows is not None:
            validate_segment_rows(self.segment_rows)
        names = [c.name for c in self.collections]
        if len(set(names)) != len(names):
            raise InvalidParameterError(f"a collection name appears twice in {names}")
        for c in self.collections:
            c.check()


class _Checker:
    def __init__(self, state: CollectionState):
        self.s = state
        self.where = f"collection {state.name!r}"

    def require(self, cond: Any, what: str) -> None:
        if not cond:
            raise InvalidParameterError(f"{self.where}: {what}")

    def array(self, value: Any, what: str, dtype: np.dtype, shape: tuple[int | None, ...]) -> None:
        self.require(isinstance(value, np.ndarray), f"{what} is not a NumPy array")
        problem = layout_problem(what, value.dtype, value.shape, dtype, shape)
        self.require(problem is None, str(problem))

    def run(self) -> None:
        s = self.s
        try:
            validation.collection_name(s.name)
            metric = spec.normalize_metric(s.metric)
            spec.validate_dimension(s.dimension, metric)
            spec.validate_index_file_size(s.index_file_size)
            validate_segment_rows(s.segment_rows)
            for tag in s.partitions:
                validation.partition_tag(tag)
        except MilvusLabError as exc:
            raise InvalidParameterError(f"{self.where}: schema is invalid: {exc}") from None
        self.require(metric == s.metric, f"metric {s.metric!r} is not in canonical form ({metric!r})")
        self.require(isinstance(s.index_type, str) and s.index_type in spec.INDEXES,
                     f"index_type {s.index_type!r} is unknown")
        try:
            _, clean = spec.validate_build(s.index_type, dict(s.index_params), dim=s.dimension, metric=metric,
                                           warn=False)
        except MilvusLabError as exc:
            raise InvalidParameterError(f"{self.where}: index parameters are invalid: {exc}") from None
        self.require(clean == dict(s.index_params), f"index parameters {dict(s.index_params)!r} are not canonical")
        self.require(isinstance(s.index_params_given, Mapping), "index_params_given is not a mapping")
        self.require(s.id_mode in (None, "auto", "user"), f"id_mode {s.id_mode!r} is invalid")
        self.require(is_int(s.next_auto_id) and 0 <= s.next_auto_id <= spec.ID_RANGE[1] + 1,
                     f"next_auto_id {s.next_auto_id!r} is invalid")
        self.require(is_int(s.next_segment_id) and s.next_segment_id >= 1,
                     f"next_segment_id {s.next_segment_id!r} is invalid")
        self.require(isinstance(s.partitions, tuple) and DEFAULT_PARTITION in s.partitions
                     and len(set(s.partitions)) == len(s.partitions), f"partitions {s.partitions!r} are invalid")
        self.require(all(isinstance(e, str) for e in s.background_errors), "background_errors must be strings")
        row_shape, dtype = row_layout(s.dimension, metric)
        seen: set[int] = set()
        live_parts = []
        ids_max = -1
        counts: dict[int, int] = {}
        for seg in s.segments:
            self.require(isinstance(seg, SegmentState), "a segment is not a SegmentState")
            self.segment(seg, seen, row_shape, dtype)
            counts[seg.segment_id] = seg.count
            live = seg.ids if seg.deleted is None else seg.ids[~seg.deleted]
            live_parts.append(live)
            if seg.count:
                ids_max = max(ids_max, int(seg.ids.max()))
        self.require(s.next_segment_id > max(seen, default=0),
                     f"next_segment_id {s.next_segment_id} is not above the segment ids")
        live = np.concatenate(live_parts) if live_parts else np.empty(0, np.int64)
        self.require(len(np.unique(live)) == len(live), "a live id appears twice")
        self.require(s.id_mode is not None or not len(live) and ids_max < 0, "rows are stored but id_mode is unset")
        if s.id_mode == "auto":
            self.require(ids_max < s.next_auto_id, f"stored ids reach {ids_max} but next_auto_id is {s.next_auto_id}")
        for batch in s.pending_deletes:
            self.require(isinstance(batch, PendingDelete), "a pending delete is not a PendingDelete")
            self.array(batch.ids, "pending delete ids", np.dtype(np.int64), (None,))
            self.require(not batch.ids.size or batch.ids.min() >= 0, "pending deletes hold negative ids")
            self.require(isinstance(batch.extent, Mapping), "a pending delete extent is not a mapping")
            for sid, rows in batch.extent.items():
                self.require(is_int(sid) and is_int(rows) and rows >= 0, "a pending delete extent is malformed")
                self.require(sid not in counts or rows <= counts[sid],
                             f"a pending delete reaches beyond segment {sid}'s rows")

    def segment(self, seg: SegmentState, seen: set[int], row_shape: tuple[int, ...], dtype: np.dtype) -> None:
        s = self.s
        sid = seg.segment_id
        self.require(is_int(sid) and sid >= 1 and sid not in seen, f"segment id {sid!r} is invalid or repeated")
        seen.add(sid)
        where = f"segment {sid}"
        self.require(seg.partition in s.partitions, f"{where}: unknown partition {seg.partition!r}")
        self.array(seg.ids, f"{where}: ids", np.dtype(np.int64), (None,))
        count = len(seg.ids)
        self.array(seg.vectors, f"{where}: vectors", dtype, (count, *row_shape))
        self.require(not count or seg.ids.min() >= 0, f"{where}: ids must be >= 0")
        if dtype.kind == "f":
            self.require(bool(np.isfinite(seg.vectors).all()), f"{where}: vectors hold NaN or infinite values")
        if seg.deleted is not None:
            self.array(seg.deleted, f"{where}: deleted mask", np.dtype(np.bool_), (count,))
        self.require(isinstance(seg.sealed, bool), f"{where}: sealed is not a bool")
        self.require(is_int(seg.capacity_rows) and seg.capacity_rows >= max(count, 1),
                     f"{where}: capacity_rows {seg.capacity_rows!r} is invalid")
        self.require(seg.raw_reason is None or isinstance(seg.raw_reason, str), f"{where}: raw_reason is invalid")
        if seg.index is not None:
            index = seg.index
            self.require(isinstance(index, BuiltIndex), f"{where}: index is not a BuiltIndex")
            self.require(seg.sealed, f"{where}: an open segment cannot hold a built index")
            self.require(index.index_type == s.index_type and dict(index.params) == dict(s.index_params),
                         f"{where}: built index {index.index_type} {dict(index.params)} differs from the "
                         f"collection's index {s.index_type} {dict(s.index_params)}")
            self.require(getattr(index, "ntotal", count) == count,
                         f"{where}: the index holds {getattr(index, 'ntotal', '?')} rows, the segment {count}")
            self.require(getattr(index, "dim", s.dimension) == s.dimension,
                         f"{where}: the index has dimension {getattr(index, 'dim', '?')}, expected {s.dimension}")
