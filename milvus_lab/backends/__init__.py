"""The backend registry the engine uses: build, load and search indexes without importing a library.

Every index type names its backend in :mod:`milvus_lab.spec` (``faiss``, ``hnswlib`` or ``annoy``); the
adapter modules are imported on first use. Results follow :mod:`milvus_lab.backends.base`: row positions
of the build array, ``-1`` for a missing hit, squared L2 and binary distances ascending, IP descending.
"""

from __future__ import annotations

import importlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .. import spec
from ..errors import BuildIndexError
from .base import BuiltIndex, pad_results

__all__ = ["BuiltIndex", "SharedSetting", "build", "distances", "exact_search", "load", "pad_results"]

_MODULES = {
    "faiss": "milvus_lab.backends.faiss_backend",
    "hnswlib": "milvus_lab.backends.hnswlib_backend",
    "annoy": "milvus_lab.backends.annoy_backend",
}


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


def _module(backend: str) -> ModuleType:
    try:
        return importlib.import_module(_MODULES[backend])
    except KeyError:
        raise BuildIndexError(f"unknown backend {backend!r}; known: {', '.join(_MODULES)}") from None


def _library_message(exc: BaseException) -> str:
    """A library exception as one readable line (faiss prefixes C++ locations we drop)."""
    text = str(exc).strip() or type(exc).__name__
    if "Error: '" in text:
        text = text[text.index("Error: '"):]
    return f"{type(exc).__name__}: {' '.join(text.split())}"


def _check_array(vectors: Any, metric: str, what: str) -> np.ndarray:
    """The array in the dtype and layout the backends expect (no copy when it already is)."""
    dtype = np.uint8 if spec.is_binary_metric(metric) else np.float32
    array = np.asarray(vectors)
    if array.ndim != 2:
        columns = "bytes" if dtype is np.uint8 else "dim"
        raise BuildIndexError(f"{what} must be a 2-D array (rows x {columns}); got shape {array.shape}")
    if dtype is np.uint8 and array.dtype != np.uint8:
        raise BuildIndexError(f"{what} for binary metric {metric} must be uint8 (dim/8 bytes per row); "
                              f"got {array.dtype}")
    return np.ascontiguousarray(array, dtype=dtype)


def build(index_type: str, params: dict[str, int], vectors: np.ndarray, metric: str) -> BuiltIndex:
    """Build ``index_type`` with validated ``params`` on one segment's vectors.

    ``vectors`` is float32 (n, dim) for L2/IP or uint8 (n, dim/8) for binary metrics. Any failure of the
    library (too few rows to train, degenerate data) raises :class:`BuildIndexError` naming the index
    type, the row count and the cause.
    """
    index_spec = spec.get_index(index_type)
    spec.check_index_metric(index_spec, metric)
    array = _check_array(vectors, metric, f"{index_spec.name} build vectors")
    try:
        return _module(index_spec.backend).build(index_spec.name, dict(params), array, metric)
    except BuildIndexError:
        raise
    except (Exception, MemoryError) as exc:
        raise BuildIndexError(
            f"{index_spec.name} ({metric}) build failed on {array.shape[0]} rows: {_library_message(exc)}"
        ) from exc


def load(index_type: str, params: Mapping[str, int], metric: str, dim: int, path: Path) -> BuiltIndex:
    """Load an index written by ``BuiltIndex.save(path)`` with the library's own reader.

    ``dim`` is the collection's dimension (bits for binary metrics). A missing file raises
    FileNotFoundError; a file the library cannot read raises BuildIndexError.
    """
    index_spec = spec.get_index(index_type)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {index_spec.name} index file at {path}")
    try:
        return _module(index_spec.backend).load(index_spec.name, dict(params), metric, int(dim), path)
    except BuildIndexError:
        raise
    except (Exception, MemoryError) as exc:
        raise BuildIndexError(f"cannot load {index_spec.name} ({metric}) from {path}: "
                              f"{_library_message(exc)}") from exc


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int, metric: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-``k`` of ``queries`` over a raw segment (float or binary); ``k`` may exceed n."""
    vectors = _check_array(vectors, metric, "segment vectors")
    queries = _check_array(queries, metric, "queries")
    return _module("faiss").exact_search(vectors, queries, int(k), metric)


def distances(vectors: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """The exact metric value of every (query, vector) pair: float32 (nq, n).

    SUBSTRUCTURE / SUPERSTRUCTURE give the Jaccard distance of a hit and +inf for a non-hit.
    """
    vectors = _check_array(vectors, metric, "vectors")
    queries = _check_array(queries, metric, "queries")
    return _module("faiss").distances(vectors, queries, metric)
