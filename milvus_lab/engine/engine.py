"""The engine: a registry of collections and the background indexer that builds sealed segments."""

from __future__ import annotations

import threading
from typing import Any

from .. import spec
from ..errors import AlreadyExistsError, CollectionNotFoundError, InvalidParameterError, MilvusLabError, ParamError
from . import validation
from .collection import Collection, check_savable
from .indexer import BackgroundIndexer
from .persist import load_collection, read_engine_state, save_engine
from .state import CollectionState, EngineState, validate_segment_rows


def _check_build_threshold(rows: Any) -> int:
    """``rows`` as a plain int >= 1 (NumPy integers too, as ``segment_rows``; bools and floats refused)."""
    number = spec.as_int(rows)
    if number is None or number < 1:
        raise InvalidParameterError(f"build_threshold={spec.show_value(rows)} is invalid; allowed: an int >= 1")
    return number


class Engine:
    """In-memory Milvus 0.10: collections by name, each with partitions, segments and one index type.

    ``build_threshold`` is the fewest rows a segment needs before it is indexed (Milvus: 4096).
    ``segment_rows`` (optional) is the rows per segment of every new collection, instead of the size
    derived from its ``index_file_size``; ``create_collection(segment_rows=...)`` sets it per collection.
    ``profile``: whose rules apply (``spec.PROFILES``): Milvus 0.10 (default), or ``"milvus-2.3"`` for the
    server's index types, ranges and COSINE (computed as Milvus does: IP on rows normalised at insert and
    search), so that in-memory results can be compared with a Milvus 2.3 server's. Only a 0.10 engine saves."""

    def __init__(self, build_threshold: int = spec.DEFAULT_BUILD_THRESHOLD, *, segment_rows: int | None = None,
                 profile: str = spec.DEFAULT_PROFILE):
        #: the spec profile whose rules apply (``spec.PROFILES``)
        self.profile = spec.get_profile(profile).name
        self.build_threshold = _check_build_threshold(build_threshold)
        self._segment_rows = None if segment_rows is None else validate_segment_rows(segment_rows)
        self._collections: dict[str, Collection] = {}
        self._lock = threading.RLock()
        self.indexer = BackgroundIndexer()

    def __repr__(self) -> str:
        shown = "" if self.profile == spec.DEFAULT_PROFILE else f", profile={self.profile!r}"
        return f"Engine(collections={self.list_collections()}, build_threshold={self.build_threshold}{shown})"

    @property
    def segment_rows(self) -> int | None:
        """Rows per segment of collections created from now on (None: derived from their index_file_size)."""
        return self._segment_rows

    @segment_rows.setter
    def segment_rows(self, rows: int | None) -> None:
        self._segment_rows = None if rows is None else validate_segment_rows(rows)

    def describe(self) -> str:
        """One line naming the target: what it is and which rules apply."""
        title = spec.get_profile(self.profile).title
        if self.profile != spec.DEFAULT_PROFILE:
            title = f"milvus_lab in memory under {title}'s rules"
        return (f"{title}: {len(self.list_collections())} collection(s), build threshold "
                f"{self.build_threshold:,} rows")

    def create_collection(self, collection_name: str, dimension: int,
                          index_file_size: int = spec.DEFAULT_INDEX_FILE_SIZE_MB, metric_type: Any = "L2", *,
                          segment_rows: int | None = None) -> Collection:
        """A new empty collection; ``segment_rows`` overrides the rows per segment (default: the engine's
        setting, else what ``index_file_size`` MB of rows is)."""
        name = validation.collection_name(collection_name)
        size = spec.validate_index_file_size(index_file_size, profile=self.profile)
        metric = spec.normalize_metric(metric_type, profile=self.profile)
        dim = spec.validate_dimension(dimension, metric, profile=self.profile)
        rows = self.segment_rows if segment_rows is None else validate_segment_rows(segment_rows)
        with self._lock:
            if name in self._collections:
                raise AlreadyExistsError(f"collection {name!r} already exists")
            collection = Collection(self, name, dim, size, metric, segment_rows=rows)
            self._collections[name] = collection
            return collection

    def get_collection(self, collection_name: str) -> Collection:
        name = validation.collection_name(collection_name)
        with self._lock:
            if name not in self._collections:
                raise CollectionNotFoundError(
                    f"collection {name!r} does not exist; collections: "
                    f"{', '.join(self._collections) or 'none'}")
            return self._collections[name]

    __getitem__ = get_collection

    def has_collection(self, collection_name: str) -> bool:
        name = validation.collection_name(collection_name)
        with self._lock:
            return name in self._collections

    def list_collections(self) -> list[str]:
        with self._lock:
            return list(self._collections)

    def drop_collection(self, collection_name: str) -> None:
        """Remove a collection and free its data and indexes (memory goes back to the system)."""
        name = validation.collection_name(collection_name)
        with self._lock:
            collection = self._collections.pop(name, None)
            if collection is None:
                raise CollectionNotFoundError(
                    f"collection {name!r} does not exist; collections: {', '.join(self._collections) or 'none'}")
        collection.release()

    def flush(self, collection_names: list[str] | None = None) -> None:
        names = self.list_collections() if collection_names is None else collection_names
        if not isinstance(names, (list, tuple)):
            raise ParamError(f"collection_name_array must be a list of names; got {names!r}")
        collections = [self.get_collection(n) for n in names]
        for collection in collections:
            collection.flush()

    def wait_for_indexing(self, timeout: float | None = None) -> bool:
        """Block until the background indexer is idle for every collection."""
        return self.indexer.wait(None, timeout)

    def close(self) -> None:
        self.indexer.close()

    def set_build_threshold(self, rows: int) -> None:
        self.build_threshold = _check_build_threshold(rows)

    # ------------------------------------------------------------------ saving
    def save(self, path: Any) -> Any:
        """Write every collection and the settings to the directory ``path`` (JSON manifest with checksums,
        signed with this user's key; .npy arrays; library index files). Only an engine of the default profile."""
        check_savable(self.profile)
        return save_engine(self, path)

    @staticmethod
    def load(path: Any, *, trust: bool = False) -> "Engine":
        """An engine read back from ``engine.save(path)``. A save not signed with this user's key has its
        indexes rebuilt from the saved vectors (UnsignedSaveWarning) unless ``trust=True`` (only for saves
        you know are safe: index files are parsed by faiss/hnswlib/annoy)."""
        return Engine.restore(read_engine_state(path, trust=trust))

    def load_collection(self, path: Any, name: str | None = None, *, trust: bool = False) -> Collection:
        """Add a collection saved with ``collection.save(path)`` (optionally under another name); ``trust``
        as in :meth:`load`."""
        return load_collection(self, path, name, trust=trust)

    # ------------------------------------------------------------------ state as a value
    def snapshot(self) -> EngineState:
        """The engine's settings and every collection's state (collections dropped meanwhile are left out)."""
        with self._lock:
            collections = list(self._collections.values())
        states = []
        for c in collections:
            try:
                states.append(c.snapshot())
            except MilvusLabError:
                if not c.dropped:
                    raise
        return EngineState(self.build_threshold, self.segment_rows, tuple(states))

    @classmethod
    def restore(cls, state: EngineState) -> "Engine":
        """A new engine with ``state``'s settings and collections (indexes as given, missing ones built)."""
        state.check()
        engine = cls(state.build_threshold, segment_rows=state.segment_rows)
        try:
            for c in state.collections:
                engine.restore_collection(c)
        except BaseException:
            engine.close()
            raise
        return engine

    def restore_collection(self, state: CollectionState, *, name: str | None = None) -> Collection:
        """Add the collection ``state`` describes (as ``name`` if given); the engine is unchanged on error."""
        collection = Collection.restore(self, state, name=name)
        with self._lock:
            if collection.name in self._collections:
                raise AlreadyExistsError(f"collection {collection.name!r} already exists; drop it first or load "
                                         f"it under another name (name=...)")
            self._collections[collection.name] = collection
        return collection
