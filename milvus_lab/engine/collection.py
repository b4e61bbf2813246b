"""A collection: partitions of segments, one index type at a time, exact search over raw segments.

Locks: ``_write`` serialises the calls that change data or the index (insert, delete, flush, compact,
create/drop index, partitions); ``_state`` guards the short moments when the segment lists or the index
are swapped. Searches take ``_state`` only to copy a list of immutable views, so they run alongside
inserts and index builds. Every call validates everything before it changes anything, so a refused or
failed call leaves the collection as it was.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np

from .. import backends, numerics, spec
from ..errors import (
    AlreadyExistsError,
    BuildIndexError,
    CollectionNotFoundError,
    IgnoredParameterWarning,
    IllegalIdError,
    IllegalRecordError,
    InvalidParameterError,
    NotFoundError,
    ParamError,
    RawSegmentWarning,
    RecommendationWarning,
    UntrainableSegmentError,
)
from ..protocol import ChangeListener, ChangeSignal, IndexInfo
from ..units import MIB
from . import validation
from .html import collection_html, format_bytes
from .indexer import BackgroundIndexer
from .persist import PersistError, save_collection
from .segment import Segment, SegmentView, return_freed_memory
from .state import DEFAULT_PARTITION, CollectionState, PendingDelete, row_layout, validate_segment_rows


class Host(Protocol):
    """What a collection needs from the engine that holds it: the build threshold and the indexer."""

    build_threshold: int
    indexer: BackgroundIndexer


_SEARCH_MEMO_SIZE = 256  # distinct (top_k, search params) checks remembered per collection
#: index types whose library allocates a fixed amount per index, so many small segments multiply it
_PER_SEGMENT_COST_TYPES = frozenset({"HNSW", "ANNOY"})
_MANY_SEGMENTS = 8  # from this many indexed segments on, the per-segment cost is worth a warning
ProgressCallback = Callable[[int, int], None]


@dataclass
class SearchResult:
    """nq x top_k ids (-1 pads) and distances (+inf / -inf pads), best first."""

    ids: np.ndarray
    distances: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.ids.shape)  # type: ignore[return-value]

    def hits(self, row: int) -> list[tuple[int, float]]:
        keep = self.ids[row] >= 0
        return list(zip(self.ids[row][keep].tolist(), self.distances[row][keep].tolist()))

    def __repr__(self) -> str:
        lines = [f"SearchResult(nq={self.shape[0]}, top_k={self.shape[1]})"]
        for row in range(min(len(self), 5)):
            hits = ", ".join(f"{i}: {d:.4g}" for i, d in self.hits(row)[:5])
            lines.append(f"  query {row}: {hits}{' ...' if len(self.hits(row)) > 5 else ''}")
        return "\n".join(lines)


@dataclass
class IndexReport:
    """What create_index (or a background build) did: which segments were indexed and which stay raw."""

    index_type: str
    params: dict[str, int]
    indexed_segments: int = 0
    indexed_rows: int = 0
    raw_segments: int = 0
    raw_rows: int = 0
    raw_reasons: list[str] = field(default_factory=list)
    build_seconds: float = 0.0
    #: memory held by the indexes built
    index_bytes: int = 0
    #: would a rebuild on the same rows give the same indexes? (None: nothing was built)
    deterministic: bool | None = None
    #: facts the backends report about the builds (e.g. RNSG ``graph_builder``), merged over segments
    build_info: dict[str, Any] = field(default_factory=dict)
    #: seconds of training this build reused instead of repeating (IVF coarse k-means and row assignment of the
    #: same rows and nlist, computed by an earlier build: the same seeded centroids); not in ``build_seconds``
    reused_training_s: float = 0.0

    @property
    def fully_indexed(self) -> bool:
        return self.raw_rows == 0

    def message(self) -> str:
        if self.index_type == "FLAT":
            return "FLAT: no index to build; every search is exact (brute force over all rows)"
        text = (f"{self.index_type} built on {self.indexed_segments} segment(s), {self.indexed_rows:,} rows")
        if self.build_info.get("graph_builder"):
            text += f" (k-NN graph: {self.build_info['graph_builder']})"
        if self.reused_training_s:
            text += (f"; coarse k-means and row assignment reused from an earlier build on the same rows (same "
                     f"seed, same centroids; they took {self.reused_training_s:.3g} s then)")
        if self.raw_rows:
            text += (f"; {self.raw_rows:,} rows in {self.raw_segments} segment(s) stay raw and are searched "
                     f"exactly: " + "; ".join(self.raw_reasons))
        return text


class Collection:
    """A named set of vectors of one dimension and metric, split in partitions and segments.

    ``segment_rows`` is how many rows a segment holds before it seals (by default what ``index_file_size``
    MB of rows is); set it lower to see segments and background builds on small data."""

    def __init__(self, engine: Host, name: str, dimension: int, index_file_size: int, metric: str, *,
                 segment_rows: int | None = None):
        self._engine = engine
        #: the spec profile whose rules apply (``spec.PROFILES``): the engine's
        self.profile: str = getattr(engine, "profile", spec.DEFAULT_PROFILE)
        self.name = name
        self.dimension = dimension
        self.index_file_size = index_file_size
        self.metric = metric
        self.binary = spec.is_binary_metric(metric)
        #: COSINE: rows and queries are normalised to unit length and the libraries compute IP (as Milvus 2.3)
        self._normalise = metric in spec.NORMALISED_METRICS
        self._library_metric = spec.library_metric(metric)
        self._row_shape, self._dtype = row_layout(dimension, metric)
        row_bytes = int(np.prod(self._row_shape)) * self._dtype.itemsize
        self._segment_rows = (max(1, index_file_size * MIB // row_bytes) if segment_rows is None
                              else validate_segment_rows(segment_rows))
        self._write = threading.RLock()
        self._state = threading.RLock()
        self._partitions: dict[str, list[Segment]] = {DEFAULT_PARTITION: []}
        self._index_type = "FLAT"
        self._index_params: dict[str, int] = {}
        self._index_params_given: dict[str, Any] = {}
        self._index_version = 0
        self._id_mode: str | None = None
        self._next_auto_id = 0
        self._live_user_ids: set[int] = set()
        #: (ids, {segment id: rows it had}) per delete call: a delete reaches only rows that existed then
        self._pending_deletes: list[tuple[np.ndarray, dict[int, int]]] = []
        self._next_segment_id = 1
        self._dropped = False
        self._background_errors: list[str] = []
        self._search_checks: dict[tuple, dict[str, int]] = {}
        self._changes = ChangeSignal()

    @property
    def segment_rows(self) -> int:
        """Rows per segment: a segment seals (and is indexed in the background) when it holds this many."""
        return self._segment_rows

    @segment_rows.setter
    def segment_rows(self, rows: int) -> None:
        """Change the segment size for segments opened from now on (an open segment keeps its size)."""
        self._segment_rows = validate_segment_rows(rows)

    # ------------------------------------------------------------------ state as a value
    def snapshot(self) -> CollectionState:
        """Everything this collection holds, as a value (after its background builds finish).

        The arrays are the segments' own (never written in place afterwards), not copies."""
        with self._write:
            self._check_alive()
            # background builds take only _state, so waiting here cannot deadlock; holding _write means
            # no insert can seal (and schedule) another segment meanwhile
            self._engine.indexer.wait(self)
            with self._state:
                return CollectionState(
                    name=self.name, dimension=self.dimension, metric=self.metric,
                    index_file_size=self.index_file_size, segment_rows=self._segment_rows,
                    index_type=self._index_type, index_params=dict(self._index_params),
                    index_params_given=dict(self._index_params_given), id_mode=self._id_mode,
                    next_auto_id=int(self._next_auto_id), next_segment_id=int(self._next_segment_id),
                    partitions=tuple(self._partitions),
                    segments=tuple(seg.state() for seg in self._all_segments()),
                    pending_deletes=tuple(PendingDelete(ids, dict(extent)) for ids, extent in self._pending_deletes),
                    background_errors=tuple(self._background_errors))

    @classmethod
    def restore(cls, engine: Host, state: CollectionState, *, name: str | None = None) -> "Collection":
        """A collection rebuilt from ``state`` (checked first), not registered in any engine.

        Sealed segments that have no index but can have one (a save whose index files were not trusted,
        or a build that was pending) are built now, before this returns."""
        state.check()
        final_name = state.name if name is None else validation.collection_name(name)
        c = cls(engine, final_name, state.dimension, state.index_file_size, state.metric,
                segment_rows=state.segment_rows)
        segments = [Segment.from_state(seg) for seg in state.segments]
        c._partitions = {tag: [s for s in segments if s.partition == tag] for tag in state.partitions}
        c._index_type, c._index_params = state.index_type, dict(state.index_params)
        c._index_params_given = dict(state.index_params_given)
        c._id_mode, c._next_auto_id = state.id_mode, int(state.next_auto_id)
        if c._id_mode == "user":
            c._live_user_ids = {int(i) for seg in segments for i in seg.ids[seg.live_mask()].tolist()}
        present = {seg.segment_id for seg in segments}
        c._pending_deletes = [(batch.ids, {int(k): int(v) for k, v in batch.extent.items() if k in present})
                              for batch in state.pending_deletes]
        c._next_segment_id = int(state.next_segment_id)
        c._background_errors = list(state.background_errors)
        missing = [seg for seg in segments if seg.sealed and seg.index is None and seg.raw_reason is None
                   and c._index_type != "FLAT" and c._too_small(seg.count, c._index_type, c._index_params) is None]
        built, untrainable = c._build_all(missing, c._index_type, c._index_params, None)
        for seg in missing:
            seg.index = built.get(seg.segment_id)
            seg.raw_reason = untrainable.get(seg.segment_id)
        return c

    def release(self) -> None:
        """Mark the collection dropped and free its rows and indexes (``Engine.drop_collection`` calls it)."""
        with self._write, self._state:
            self._dropped = True
            self._partitions = {}
            self._pending_deletes = []
            self._live_user_ids = set()
        self._changes.bump()
        return_freed_memory()

    @property
    def dropped(self) -> bool:
        return self._dropped

    # ------------------------------------------------------------------ change signal
    @property
    def version(self) -> int:
        """Grows on every change of rows, partitions, segments or index (background builds included);
        reads leave it alone (``protocol.ChangeSignalling``)."""
        return self._changes.version

    def on_change(self, callback: ChangeListener) -> Callable[[], None]:
        """Call ``callback(version)`` after every change (on the thread that made it, the engine's indexer
        thread for background builds); return the function that unsubscribes. A raising callback is logged
        and never breaks the change."""
        return self._changes.subscribe(callback)

    # ------------------------------------------------------------------ description
    def __repr__(self) -> str:
        return (f"Collection({self.name!r}, dimension={self.dimension}, metric={self.metric}, "
                f"index_file_size={self.index_file_size}, rows={self.count()}, index={self._index_type})")

    def _repr_html_(self) -> str:
        """``display(collection)`` in a notebook: schema, index, rows, and a table of segments."""
        return collection_html(self)

    def save(self, path: Any) -> Any:
        """Write the collection (rows, partitions, deletes, built indexes) to the directory ``path``, signed
        with this user's key: data only, no pickle (``Engine.load_collection`` reads it back). Only a collection
        of an engine of the default profile (the save format records Milvus 0.10 collections)."""
        check_savable(self.profile)
        return save_collection(self, path)

    @property
    def build_threshold(self) -> int:
        """Rows a segment needs before it is indexed (the engine's setting)."""
        return self._engine.build_threshold

    def describe_index(self) -> IndexInfo:
        """The index this collection has now and its (canonical) parameters."""
        self._check_alive()
        with self._state:
            return IndexInfo(self._index_type, dict(self._index_params))

    def _check_alive(self) -> None:
        if self._dropped:
            raise CollectionNotFoundError(f"collection {self.name!r} was dropped")

    @property
    def index_type(self) -> str:
        return self._index_type

    @property
    def index_params(self) -> dict[str, int]:
        return dict(self._index_params)

    @property
    def index_params_given(self) -> dict[str, Any]:
        """The parameters exactly as given to create_index (FLAT keeps what it ignored)."""
        return dict(self._index_params_given)

    def describe(self) -> dict[str, Any]:
        """Schema, index and row counts in one dict."""
        self._check_alive()
        segments = self.segments()
        indexed = [s for s in segments if s["index_name"] != "FLAT"]
        return {
            "collection_name": self.name, "dimension": self.dimension, "metric_type": self.metric,
            "index_file_size": self.index_file_size, "index_type": self._index_type,
            "index_params": dict(self._index_params), "row_count": self.count(),
            "partitions": list(self._partitions), "segments": len(segments),
            "indexed_segments": len(indexed), "indexed_rows": sum(s["row_count"] for s in indexed),
            "index_memory_bytes": sum(s["index_memory_bytes"] for s in segments),
        }

    # ------------------------------------------------------------------ partitions
    def create_partition(self, tag: str) -> None:
        tag = validation.partition_tag(tag)
        with self._write, self._state:
            self._check_alive()
            if tag in self._partitions:
                raise AlreadyExistsError(f"partition {tag!r} already exists in collection {self.name!r}")
            self._partitions[tag] = []
        self._changes.bump()

    def drop_partition(self, tag: str) -> None:
        tag = validation.partition_tag(tag)
        with self._write, self._state:
            self._check_alive()
            if tag == DEFAULT_PARTITION:
                raise InvalidParameterError(f"partition {DEFAULT_PARTITION!r} cannot be dropped")
            self._require_partition(tag)
            for seg in self._partitions.pop(tag):
                if self._id_mode == "user":
                    self._live_user_ids.difference_update(seg.ids[seg.live_mask()].tolist())
        self._changes.bump()

    def has_partition(self, tag: str) -> bool:
        tag = validation.partition_tag(tag)
        self._check_alive()
        return tag in self._partitions

    def list_partitions(self) -> list[str]:
        self._check_alive()
        return list(self._partitions)

    def _require_partition(self, tag: str) -> list[Segment]:
        if tag not in self._partitions:
            raise NotFoundError(f"partition {tag!r} does not exist in collection {self.name!r}; partitions: "
                                f"{', '.join(self._partitions)}")
        return self._partitions[tag]

    # ------------------------------------------------------------------ insert / delete / flush
    def _vectors(self, records: Any, what: str = "records") -> np.ndarray:
        if self.binary:
            return validation.binary_vectors(records, self.dimension, what)
        vectors = validation.float_vectors(records, self.dimension, what)
        return numerics.normalise_rows(vectors) if self._normalise else vectors

    def insert(self, records: Any, ids: Any = None, partition_tag: str | None = None) -> np.ndarray:
        """Append vectors; return their int64 ids (generated unless the collection uses user ids)."""
        vectors = self._vectors(records)
        user_ids = None
        if ids is not None:
            user_ids = validation.id_list(ids)
            if len(user_ids) != len(vectors):
                raise ParamError(f"ids has {len(user_ids)} entries but records has {len(vectors)} rows; "
                                 f"give one id per row")
            validation.unique_ids(user_ids)
        tag = DEFAULT_PARTITION if partition_tag is None else validation.partition_tag(partition_tag)
        with self._write:
            self._check_alive()
            self._require_partition(tag)
            mode = "user" if user_ids is not None else "auto"
            if self._id_mode is not None and self._id_mode != mode:
                raise IllegalIdError(
                    f"collection {self.name!r} uses {self._id_mode}-generated ids; "
                    + ("give ids for every insert" if self._id_mode == "user" else
                       "ids cannot be given once ids were generated") + " (ids are never mixed)")
            if user_ids is not None:
                live = self._live_user_ids
                clash = [v for v in user_ids.tolist() if v in live][:5]
                if clash:
                    raise IllegalIdError(f"ids already exist in collection {self.name!r}: {clash}; "
                                         f"delete them first or use new ids")
                new_ids = user_ids
            else:
                new_ids = np.arange(self._next_auto_id, self._next_auto_id + len(vectors), dtype=np.int64)
            sealed = self._append(tag, vectors, new_ids)
            self._id_mode = mode
            if user_ids is not None:
                self._live_user_ids.update(user_ids.tolist())
            else:
                self._next_auto_id += len(vectors)
        self._changes.bump()
        self._schedule(sealed)
        return new_ids.copy()

    def _append(self, tag: str, vectors: np.ndarray, ids: np.ndarray) -> list[Segment]:
        """Fill the open segment, sealing it when full; return segments sealed by this call.

        All or nothing: if any step fails (e.g. MemoryError allocating a segment), the partition's segments
        are put back as they were, so no row of the batch stays."""
        segments = self._partitions[tag]
        before = list(segments)
        open_seg = segments[-1] if segments and not segments[-1].sealed else None
        saved = (open_seg, open_seg.count, open_seg.deleted, open_seg.n_deleted) if open_seg else None
        next_id = self._next_segment_id
        try:
            return self._append_rows(tag, vectors, ids)
        except BaseException as exc:
            with self._state:
                self._partitions[tag][:] = before
                self._next_segment_id = next_id
                if saved is not None:
                    seg, count, deleted, n_deleted = saved
                    seg.count, seg.deleted, seg.n_deleted, seg.sealed = count, deleted, n_deleted, False
            if isinstance(exc, MemoryError):
                raise IllegalRecordError(
                    f"inserting {len(ids):,} rows ran out of memory ({exc}); nothing was inserted; insert "
                    f"smaller batches") from None
            raise

    def _append_rows(self, tag: str, vectors: np.ndarray, ids: np.ndarray) -> list[Segment]:
        sealed = []
        segments = self._partitions[tag]
        start = 0
        while start < len(ids):
            with self._state:
                if not segments or segments[-1].sealed:
                    segments.append(self._new_segment(tag))
                seg = segments[-1]
                take = min(seg.free_rows, len(ids) - start)
                seg.append(vectors[start: start + take], ids[start: start + take])
                if seg.free_rows == 0:
                    seg.sealed = True
                    sealed.append(seg)
            start += take
        return sealed

    def _new_segment(self, tag: str) -> Segment:
        seg = Segment(self._next_segment_id, tag, self._row_shape, self._dtype, self.segment_rows)
        self._next_segment_id += 1
        return seg

    def delete(self, ids: Any) -> None:
        """Delete entities by id; the deletion is visible to search and counts after ``flush``."""
        doomed = validation.id_list(ids, "id_array")
        with self._write:
            self._check_alive()
            # a delete reaches only the rows that exist now, not rows inserted later with the same id
            with self._state:
                extent = {seg.segment_id: seg.count for seg in self._all_segments()}
            self._pending_deletes.append((doomed, extent))
        self._changes.bump()

    def flush(self) -> None:
        """Apply pending deletes and give back insert buffer slack."""
        with self._write:
            self._check_alive()
            with self._state:
                for doomed, extent in self._pending_deletes:
                    for seg in self._all_segments():
                        if extent.get(seg.segment_id):
                            gone = seg.apply_deletes(doomed, extent[seg.segment_id])
                            if self._id_mode == "user" and gone.size:
                                self._live_user_ids.difference_update(gone.tolist())
                for seg in self._all_segments():
                    seg.trim()
                self._pending_deletes = []
        self._changes.bump()

    def compact(self) -> None:
        """Rewrite segments that have deleted rows without them (re-indexing sealed ones; blocks).

        Deletes not yet flushed stay pending and still reach the rewritten rows at the next flush."""
        with self._write:
            self._check_alive()
            plan = []
            for tag, segments in self._partitions.items():
                for pos, seg in enumerate(segments):
                    if seg.n_deleted:
                        plan.append((tag, pos, seg))
            if not plan:
                return
            replacements = []
            next_id = self._next_segment_id
            for tag, pos, seg in plan:
                keep = seg.live_mask()
                new = Segment(next_id, tag, self._row_shape, self._dtype, self.segment_rows)
                next_id += 1
                if keep.any():
                    new.append(seg.vectors[keep], seg.ids[keep])
                new.sealed = seg.sealed
                replacements.append((tag, pos, seg, new, keep))
            rebuild = [new for *_, new, _ in replacements if new.sealed and self._index_type != "FLAT"
                       and self._too_small(new.count, self._index_type, self._index_params) is None]
            built, untrainable = self._build_all(rebuild, self._index_type, self._index_params, None)
            with self._state:
                self._next_segment_id = next_id
                for tag, pos, seg, new, keep in replacements:
                    new.index = built.get(new.segment_id)
                    new.raw_reason = untrainable.get(new.segment_id)
                    self._partitions[tag][pos] = new
                    for _, extent in self._pending_deletes:  # kept rows keep their order
                        if seg.segment_id in extent:
                            extent[new.segment_id] = int(keep[: extent.pop(seg.segment_id)].sum())
                for tag in self._partitions:
                    self._partitions[tag] = [s for s in self._partitions[tag] if s.count or not s.sealed]
            freed = any(old.index is not None for _, _, old, _, _ in replacements)
            del plan, replacements, seg  # the old segments (and their indexes) are unreachable from here on
        self._changes.bump()
        if freed:
            return_freed_memory()

    def count(self) -> int:
        """Live rows (deletes count once flushed)."""
        self._check_alive()
        with self._state:
            return sum(seg.count - seg.n_deleted for seg in self._all_segments())

    def _all_segments(self) -> Iterable[Segment]:
        for segments in self._partitions.values():
            yield from segments

    # ------------------------------------------------------------------ entities
    def get_entity_by_id(self, ids: Any) -> list[np.ndarray | None]:
        """The stored vector of each id (a copy), or None where the id does not exist."""
        wanted = validation.id_list(ids)
        self._check_alive()
        with self._state:
            views = [(seg, seg.view()) for seg in self._all_segments()]
            out: list[np.ndarray | None] = [None] * len(wanted)
            for seg, view in views:
                rows = seg.locate(wanted)
                for i in np.flatnonzero(rows >= 0):
                    if out[i] is None:
                        out[i] = view.vectors[rows[i]].copy()
        return out

    def list_id_in_segment(self, segment_name: str) -> list[int]:
        if not isinstance(segment_name, str) or not segment_name:
            raise ParamError(f"segment name must be a non-empty str; got {spec.show_value(segment_name)}")
        segment_name = str.__str__(segment_name)  # a plain copy: a subclass's methods cannot interfere
        self._check_alive()
        with self._state:
            for seg in self._all_segments():
                if seg.name == segment_name:
                    return seg.ids[seg.live_mask()].tolist()
            names = [s.name for s in self._all_segments()]
        raise NotFoundError(f"segment {segment_name!r} does not exist in collection {self.name!r}; segments: "
                            f"{', '.join(names) or 'none'}")

    # ------------------------------------------------------------------ stats
    def segments(self) -> list[dict[str, Any]]:
        """One dict per segment: partition, name, rows, sealed, index actually built, memory, errors."""
        self._check_alive()
        with self._state:
            out = []
            for seg in self._all_segments():
                out.append({
                    "partition": seg.partition, "name": seg.name, "row_count": seg.count - seg.n_deleted,
                    "deleted_rows": seg.n_deleted, "sealed": seg.sealed,
                    "index_name": seg.index.index_type if seg.index is not None else "FLAT",
                    "data_size": seg.data_bytes(),
                    "index_memory_bytes": seg.index.memory_bytes() if seg.index is not None else 0,
                    "raw_reason": None if seg.index is not None else self._why_raw(seg),
                })
            return out

    def stats(self) -> dict[str, Any]:
        """pymilvus 0.2.x's get_collection_stats layout."""
        segs = self.segments()
        parts = []
        for tag in self._partitions:
            mine = [s for s in segs if s["partition"] == tag]
            parts.append({"tag": tag, "row_count": sum(s["row_count"] for s in mine),
                          "segments": [{"name": s["name"], "row_count": s["row_count"],
                                        "index_name": s["index_name"], "data_size": s["data_size"]}
                                       for s in mine]})
        return {"row_count": sum(p["row_count"] for p in parts), "partitions": parts}

    def memory_bytes(self) -> dict[str, int]:
        """Bytes held: raw rows and ids, and built indexes."""
        self._check_alive()
        with self._state:
            raw = sum(seg.memory_bytes() for seg in self._all_segments())
            index = sum(seg.index.memory_bytes() for seg in self._all_segments() if seg.index is not None)
        return {"raw_bytes": raw, "index_bytes": index, "total_bytes": raw + index}

    def _why_raw(self, seg: Segment) -> str | None:
        """Why a segment has no index of the collection's type (None when the collection is FLAT)."""
        if self._index_type == "FLAT":
            return None
        if seg.raw_reason:  # the data could not train the index, or the build failed
            return seg.raw_reason
        if not seg.sealed:
            small = self._too_small(seg.count, self._index_type, self._index_params)
            where = f"open segment ({seg.count:,} of {self.segment_rows:,} rows)"
            return (f"{where}: {small}" if small else
                    f"{where}; indexed when it seals or at the next create_index")
        return self._too_small(seg.count, self._index_type, self._index_params) or \
            "waiting for the background build"

    def _too_small(self, rows: int, index_type: str, params: Mapping[str, int]) -> str | None:
        """Why a segment of ``rows`` rows would stay raw (the spec's rule); None when it will be indexed."""
        return spec.segment_raw_reason(index_type, params, rows, build_threshold=self._engine.build_threshold,
                                       profile=self.profile)

    # ------------------------------------------------------------------ indexes
    def create_index(self, index_type: Any = "FLAT", params: Mapping[str, Any] | None = None, *,
                     progress: ProgressCallback | None = None, warn: bool = True) -> IndexReport:
        """Replace the collection's index and build it on every segment that can be indexed (blocks).

        With ``warn`` (the default) it warns (RawSegmentWarning) when some rows stay raw,
        (RecommendationWarning) for valid values outside the documented advice and when HNSW or ANNOY on
        many small segments costs more memory than the vectors. A failed build leaves the previous index in
        place; a segment whose data cannot train the index (UntrainableSegmentError) stays raw and says why."""
        report = self._build_index(index_type, params, progress, warn)
        if warn and report.raw_rows:
            warnings.warn(report.message(), RawSegmentWarning, stacklevel=2)
        if warn:
            cost = self._segment_cost_note(report)
            if cost:
                warnings.warn(cost, RecommendationWarning, stacklevel=2)
        return report

    def _build_index(self, index_type: Any, params: Mapping[str, Any] | None,
                     progress: ProgressCallback | None, warn: bool) -> IndexReport:
        self._check_alive()
        index_spec, clean = spec.validate_build(index_type, params, dim=self.dimension, metric=self.metric,
                                                warn=warn, profile=self.profile)
        name = index_spec.name
        started = time.perf_counter()
        with self._write:
            self._check_alive()
            report = IndexReport(name, clean)
            # Like Milvus's flush before a build: an open segment big enough to index is sealed and built.
            with self._state:
                chosen = [seg for seg in self._all_segments()
                          if name != "FLAT" and seg.count and self._too_small(seg.count, name, clean) is None]
            built, untrainable = self._build_all(chosen, name, clean, progress)
            with self._state:
                dropped_old = any(seg.index is not None for seg in self._all_segments())
                for seg in self._all_segments():
                    seg.index = None
                    seg.raw_reason = None
                for seg in chosen:
                    if not seg.sealed:
                        seg.sealed = True
                        seg.trim()
                    seg.index = built.get(seg.segment_id)
                    seg.raw_reason = untrainable.get(seg.segment_id)
                self._index_type, self._index_params = name, clean
                self._index_params_given = dict(params or {})
                self._index_version += 1
                for seg in self._all_segments():
                    if seg.count == 0:
                        continue
                    if seg.index is not None:
                        report.indexed_segments += 1
                        report.indexed_rows += seg.count - seg.n_deleted
                        report.index_bytes += seg.index.memory_bytes()
                        report.deterministic = (report.deterministic is not False) and seg.index.deterministic
                        for key, value in seg.index.build_info.items():
                            report.build_info.setdefault(key, value)
                        report.reused_training_s += float(seg.index.build_info.get("reused_training_s", 0.0))
                    elif name != "FLAT":
                        report.raw_segments += 1
                        report.raw_rows += seg.count - seg.n_deleted
                        report.raw_reasons.append(f"segment {seg.name}: {self._why_raw(seg)}")
        report.build_seconds = time.perf_counter() - started
        self._changes.bump()
        if dropped_old:
            return_freed_memory()
        return report

    def _segment_cost_note(self, report: IndexReport) -> str | None:
        """HNSW and ANNOY pay a fixed memory cost per segment: say so when many small segments make the
        index cost more than the vectors it indexes."""
        if report.index_type not in _PER_SEGMENT_COST_TYPES or report.indexed_segments < _MANY_SEGMENTS:
            return None
        index_bytes = report.index_bytes
        raw_bytes = report.indexed_rows * int(np.prod(self._row_shape)) * self._dtype.itemsize
        if index_bytes <= 2 * raw_bytes:
            return None
        n = report.indexed_segments
        overhead = index_bytes - raw_bytes
        return (f"{report.index_type} on {n} segments of about {report.indexed_rows // n:,} rows each holds "
                f"{format_bytes(index_bytes)} of index memory for {format_bytes(raw_bytes)} of vectors: an "
                f"estimated {format_bytes(overhead)} of overhead, about {format_bytes(overhead // n)} per segment; "
                f"fewer, larger segments (segment_rows or index_file_size) cost less")

    def _build_all(self, segments: Sequence[Segment], index_type: str, params: Mapping[str, int],
                   progress: ProgressCallback | None) -> tuple[dict[int, Any], dict[int, str]]:
        """Build one index per segment aside: (built indexes, reasons of segments whose data cannot train
        the index). Raise BuildIndexError (nothing swapped) if any other build fails."""
        if index_type == "FLAT" or not segments:
            return {}, {}
        built, untrainable = {}, {}
        total = len(segments)
        if progress:
            progress(0, total)
        for done, seg in enumerate(segments, 1):
            try:  # all rows, deleted ones too: result positions are segment rows, deletes filtered at search
                built[seg.segment_id] = backends.build(index_type, dict(params), seg.vectors, self._library_metric)
            except UntrainableSegmentError as exc:
                untrainable[seg.segment_id] = str(exc)
            except BuildIndexError as exc:
                raise BuildIndexError(f"{index_type} build failed on segment {seg.name} ({seg.count:,} rows): "
                                      f"{exc}; the previous index is unchanged") from None
            if progress:
                progress(done, total)
        return built, untrainable

    def drop_index(self) -> None:
        """Free every built index (and hand the memory back to the system); the collection searches exactly
        (FLAT) again."""
        with self._write:
            self._check_alive()
            with self._state:
                for seg in self._all_segments():
                    seg.index = None
                    seg.raw_reason = None
                self._index_type, self._index_params, self._index_params_given = "FLAT", {}, {}
                self._index_version += 1
        self._changes.bump()
        return_freed_memory()

    def wait_for_index(self, timeout: float | None = None) -> bool:
        """Block until background builds for this collection are done; False on timeout."""
        return self._engine.indexer.wait(self, timeout)

    def _schedule(self, sealed: list[Segment]) -> None:
        if sealed and self._index_type != "FLAT":
            with self._state:
                version, name, params = self._index_version, self._index_type, dict(self._index_params)
            for seg in sealed:
                if self._too_small(seg.count, name, params) is None:
                    self._engine.indexer.submit(
                        self, lambda seg=seg: self._background_build(seg, version, name, params))

    def _background_build(self, seg: Segment, version: int, index_type: str, params: dict[str, int]) -> None:
        """Run by the engine's indexer thread: build aside, swap in if nothing changed meanwhile."""
        with self._state:
            if self._dropped or version != self._index_version or seg.index is not None:
                return
        try:
            index = backends.build(index_type, params, seg.vectors, self._library_metric)
        except UntrainableSegmentError as exc:  # the data cannot train it: the segment stays raw, says why
            with self._state:
                changed = version == self._index_version
                if changed:
                    seg.raw_reason = str(exc)
            if changed:
                self._changes.bump()
            return
        except Exception as exc:  # noqa: BLE001 - on the worker thread: recorded, shown as the raw reason
            with self._state:
                if version == self._index_version:
                    seg.raw_reason = (f"build failed: {exc}" if isinstance(exc, BuildIndexError)
                                       else f"build failed: unexpected error: {exc!r}")
                    self._background_errors.append(f"segment {seg.name}: {seg.raw_reason}")
                changed = version == self._index_version
            if changed:
                self._changes.bump()
            return
        with self._state:
            alive = any(s is seg for s in self._all_segments())
            swapped = alive and not self._dropped and version == self._index_version and seg.index is None
            if swapped:
                seg.index = index
        if swapped:
            self._changes.bump()

    # ------------------------------------------------------------------ search
    def search(self, query_records: Any, top_k: int = 10, params: Mapping[str, Any] | None = None,
               partition_tags: Sequence[str] | None = None, *, warn: bool = True) -> SearchResult:
        """Search the given partitions (all by default); indexed segments use their index, raw ones exact.

        ``warn``: say so (IgnoredParameterWarning) when search params are given to a FLAT collection."""
        return self._search(query_records, top_k, params, partition_tags, None, warn=warn)

    def search_in_segment(self, segment_ids: Sequence[Any], query_records: Any, top_k: int = 10,
                          params: Mapping[str, Any] | None = None, *, warn: bool = True) -> SearchResult:
        """Search only the named segments (names or their integer ids)."""
        if not isinstance(segment_ids, (list, tuple)) or not segment_ids:
            raise ParamError(f"segment_ids must be a non-empty list of segment ids; got "
                             f"{spec.show_value(segment_ids)}")
        wanted = set()
        for sid in segment_ids:
            number = spec.as_int(sid)  # an int or a NumPy int; 1.7 is not segment 1, nor is True
            if number is None and isinstance(sid, str) and sid.isascii() and sid.isdigit():
                with contextlib.suppress(ValueError):  # beyond Python's int digit limit: no such segment either
                    number = int(sid)
            if number is None:
                raise ParamError(f"segment_ids must be segment ids (ints or strings of decimal digits such as "
                                 f"'1'); got {spec.show_value(sid)}")
            wanted.add(number)
        return self._search(query_records, top_k, params, None, wanted, warn=warn)

    def _checked_search_params(self, version: int, index_type: str, build_params: Mapping[str, int],
                               params: Mapping[str, Any] | None, top_k: int) -> Mapping[str, int]:
        """spec.validate_search, memoised per (index version, top_k, params): the same check every call."""
        try:
            key = (version, top_k, tuple(params.items()) if params else ())
            hit = self._search_checks.get(key)
        except Exception:  # noqa: BLE001 - unhashable (or hostile) values: validate (and refuse) without the memo
            return spec.validate_search(index_type, params, top_k=top_k, build_params=build_params,
                                        profile=self.profile)
        if hit is None:
            hit = spec.validate_search(index_type, params, top_k=top_k, build_params=build_params,
                                       profile=self.profile)
            if len(self._search_checks) > _SEARCH_MEMO_SIZE:
                self._search_checks.clear()
            self._search_checks[key] = hit
        return hit

    def _search(self, query_records: Any, top_k: Any, params: Mapping[str, Any] | None,
                partition_tags: Sequence[str] | None, segment_ids: set[int] | None, warn: bool) -> SearchResult:
        top_k = spec.validate_top_k(top_k, profile=self.profile)
        if params is not None and type(params) is not dict and not isinstance(params, Mapping):
            raise ParamError(f"search params must be a dict or None; got {type(params).__name__}")
        if partition_tags is not None:
            if isinstance(partition_tags, str) or not isinstance(partition_tags, (list, tuple)):
                raise ParamError(f"partition_tags must be a list of str; got {partition_tags!r}")
            partition_tags = [validation.partition_tag(tag) for tag in partition_tags]
        queries = self._vectors(query_records, "query_records")
        self._check_alive()
        with self._state:
            version, index_type, build_params = self._index_version, self._index_type, self._index_params
            if partition_tags:
                for tag in partition_tags:
                    self._require_partition(tag)
                tags = list(dict.fromkeys(partition_tags))
            else:
                tags = list(self._partitions)
            views = [seg.view() for tag in tags for seg in self._partitions[tag] if seg.count]
            if segment_ids is not None:
                present = {seg.segment_id for seg in self._all_segments()}
                missing = sorted(segment_ids - present)
                if missing:
                    raise NotFoundError(f"segment(s) {missing} do not exist in collection {self.name!r}")
                views = [v for v in views if v.segment_id in segment_ids]
        search_params = self._checked_search_params(version, index_type, build_params, params, top_k)
        if warn and index_type == "FLAT" and params:
            warnings.warn(f"collection {self.name!r} has no index (FLAT): search params {dict(params)!r} are "
                          f"ignored", IgnoredParameterWarning, stacklevel=3)
        return merge_search(views, queries, top_k, search_params, self._library_metric)


def check_savable(profile: str) -> None:
    """Refuse to save under a profile other than the default: a save records Milvus 0.10 collections, and
    would come back under 0.10's rules (a COSINE collection not at all)."""
    if profile != spec.DEFAULT_PROFILE:
        raise PersistError(f"an engine under the {profile} profile cannot be saved (a save holds Milvus 0.10 "
                           f"collections, profile {spec.DEFAULT_PROFILE}); rebuild it from your vectors instead")


def _search_view(view: SegmentView, queries: np.ndarray, k: int, params: Mapping[str, int], metric: str,
                 descending: bool) -> tuple[np.ndarray, np.ndarray]:
    n = len(view.ids)
    want = min(k + view.n_deleted, n)
    if view.index is not None:
        dist, pos = view.index.search(queries, want, params)
    else:
        dist, pos = backends.exact_search(view.vectors, queries, want, metric)
    if view.deleted is None and (pos.size == 0 or pos.min() >= 0):
        return dist, view.ids[pos]  # the common case: every hit real, nothing deleted
    valid = pos >= 0
    if view.deleted is not None:
        valid &= ~view.deleted[np.where(valid, pos, 0)]
    ids = np.where(valid, view.ids[np.where(valid, pos, 0)], -1)
    if not valid.all():
        dist = np.where(valid, dist, -np.inf if descending else np.inf).astype(np.float32)
    return dist, ids


def merge_search(views: Sequence[SegmentView], queries: np.ndarray, top_k: int, params: Mapping[str, int],
                 metric: str) -> SearchResult:
    """Search each segment view and merge the per-segment top-k lists with NumPy."""
    descending = metric in spec.DESCENDING_METRICS
    fill = -np.inf if descending else np.inf
    nq = len(queries)
    views = [v for v in views if v.live_rows > 0]
    parts = [_search_view(v, queries, top_k, params, metric, descending) for v in views]
    if not parts:
        return SearchResult(np.full((nq, top_k), -1, np.int64), np.full((nq, top_k), fill, np.float32))
    if len(parts) == 1 and parts[0][0].shape[1] == top_k and views[0].n_deleted == 0:
        dist, ids = parts[0]
        return SearchResult(np.ascontiguousarray(ids, np.int64), np.ascontiguousarray(dist, np.float32))
    dist = np.concatenate([p[0] for p in parts], axis=1)
    ids = np.concatenate([p[1] for p in parts], axis=1)
    key = -dist if descending else dist
    # padding last even when a real hit is at +inf (TANIMOTO of disjoint vectors), then by distance
    order = np.lexsort((key, ids < 0), axis=1)[:, :top_k]
    dist = np.take_along_axis(dist, order, axis=1)
    ids = np.take_along_axis(ids, order, axis=1)
    if ids.shape[1] < top_k:
        pad = top_k - ids.shape[1]
        ids = np.concatenate([ids, np.full((nq, pad), -1, np.int64)], axis=1)
        dist = np.concatenate([dist, np.full((nq, pad), fill, np.float32)], axis=1)
    return SearchResult(np.ascontiguousarray(ids, np.int64), np.ascontiguousarray(dist, np.float32))
