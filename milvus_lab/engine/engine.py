"""The engine: a registry of collections and the background indexer that builds sealed segments."""

from __future__ import annotations

import queue
import threading
from typing import Any

from .. import spec
from ..errors import AlreadyExistsError, CollectionNotFoundError, InvalidParameterError, ParamError
from . import validation
from .collection import Collection
from .segment import Segment


class BackgroundIndexer:
    """One worker thread that indexes sealed segments with their collection's current index type."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._pending: dict[int, int] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, collection: Collection, seg: Segment, version: int, index_type: str,
               params: dict[str, int]) -> None:
        with self._cond:
            if self._closed:
                return
            self._pending[id(collection)] = self._pending.get(id(collection), 0) + 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="milvus_lab-indexer", daemon=True)
                self._thread.start()
        self._queue.put((collection, seg, version, index_type, params))

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            collection, seg, version, index_type, params = job
            try:
                collection._background_build(seg, version, index_type, params)
            except Exception as exc:  # never let the worker die; the segment stays raw and says why
                seg.build_error = f"unexpected error: {exc!r}"
            finally:
                with self._cond:
                    self._pending[id(collection)] -= 1
                    if not self._pending[id(collection)]:
                        del self._pending[id(collection)]
                    self._cond.notify_all()

    def wait(self, collection: Collection | None = None, timeout: float | None = None) -> bool:
        """Wait until no build is pending (for one collection, or any); False on timeout."""
        def idle() -> bool:
            return not self._pending if collection is None else id(collection) not in self._pending

        with self._cond:
            return self._cond.wait_for(idle, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=60)


class Engine:
    """In-memory Milvus 0.10: collections by name, each with partitions, segments and one index type.

    ``build_threshold`` is the fewest rows a segment needs before it is indexed (Milvus: 4096)."""

    def __init__(self, build_threshold: int = spec.DEFAULT_BUILD_THRESHOLD):
        if not isinstance(build_threshold, int) or isinstance(build_threshold, bool) or build_threshold < 1:
            raise ParamError(f"build_threshold must be an int >= 1; got {build_threshold!r}")
        self.build_threshold = build_threshold
        self._collections: dict[str, Collection] = {}
        self._lock = threading.RLock()
        self._indexer = BackgroundIndexer()

    def __repr__(self) -> str:
        return f"Engine(collections={self.list_collections()}, build_threshold={self.build_threshold})"

    def create_collection(self, collection_name: str, dimension: int,
                          index_file_size: int = spec.DEFAULT_INDEX_FILE_SIZE_MB, metric_type: Any = "L2"
                          ) -> Collection:
        name = validation.collection_name(collection_name)
        if isinstance(dimension, bool) or not isinstance(dimension, int):
            raise ParamError(f"dimension must be an int; got {dimension!r}")
        if isinstance(index_file_size, bool) or not isinstance(index_file_size, int):
            raise ParamError(f"index_file_size must be an int (MB); got {index_file_size!r}")
        metric = spec.normalize_metric(metric_type)
        dim = spec.validate_dimension(dimension, metric)
        size = spec.validate_index_file_size(index_file_size)
        with self._lock:
            if name in self._collections:
                raise AlreadyExistsError(f"collection {name!r} already exists")
            collection = Collection(self, name, dim, size, metric)
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
        """Remove a collection and free its data and indexes."""
        collection = self.get_collection(collection_name)
        with collection._write, collection._state:
            with self._lock:
                if self._collections.get(collection.name) is not collection:
                    raise CollectionNotFoundError(f"collection {collection.name!r} does not exist")
                del self._collections[collection.name]
            collection._dropped = True
            collection._partitions = {}

    def flush(self, collection_names: list[str] | None = None) -> None:
        names = self.list_collections() if collection_names is None else collection_names
        if not isinstance(names, (list, tuple)):
            raise ParamError(f"collection_name_array must be a list of names; got {names!r}")
        collections = [self.get_collection(n) for n in names]
        for collection in collections:
            collection.flush()

    def wait_for_indexing(self, timeout: float | None = None) -> bool:
        """Block until the background indexer is idle for every collection."""
        return self._indexer.wait(None, timeout)

    def close(self) -> None:
        self._indexer.close()

    def save(self, path: Any) -> Any:
        """Write every collection to ``path`` (JSON manifest with checksums, .npy arrays, library index files)."""
        from .persist import save_engine
        return save_engine(self, path)

    @staticmethod
    def load(path: Any) -> "Engine":
        """An engine read back from ``engine.save(path)``; indexes are loaded, not rebuilt."""
        from .persist import load_engine
        return load_engine(path)

    def load_collection(self, path: Any, name: str | None = None) -> Collection:
        """Add a collection saved with ``collection.save(path)`` (optionally under another name)."""
        from .persist import load_collection
        return load_collection(self, path, name)

    def set_build_threshold(self, rows: int) -> None:
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
            raise InvalidParameterError(f"build_threshold={rows!r} is invalid; allowed: an int >= 1")
        self.build_threshold = rows
