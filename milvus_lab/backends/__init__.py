"""The backend registry the engine uses: build, load and search indexes without importing a library.

One family module per kind of index, on the shared :mod:`~milvus_lab.backends.base`: ``flat`` (float
FLAT), ``ivf`` (IVF_FLAT / SQ8 / SQ8H / PQ), ``nsg`` (RNSG), ``binary`` (FLAT and IVF_FLAT on binary
metrics, and the popcount kernels), ``hnsw`` (hnswlib) and ``annoy``. :data:`FAMILIES` is the one
dispatch table: (the spec's ``backend``, index type, binary metric?) -> family module; family modules are
imported on first use. Results: row positions of the build array, ``-1`` for a missing hit, squared L2
and binary distances ascending, IP descending.

Every family module offers ``build``, ``load`` and ``deterministic(index_type, threads)``; ``flat`` and
``binary`` also offer ``exact_search`` and ``distances``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .. import spec
from ..errors import BuildIndexError
from .base import BuiltIndex, SharedSetting, build_threads, pad_results

__all__ = ["FAMILIES", "BuiltIndex", "SharedSetting", "build", "build_is_deterministic", "build_threads",
           "distances", "exact_search", "family", "load", "pad_results"]

#: the one dispatch table: (spec backend, index type, binary metric?) -> family module
FAMILIES: dict[tuple[str, str, bool], str] = {
    ("faiss", "FLAT", False): "flat",
    ("faiss", "IVF_FLAT", False): "ivf",
    ("faiss", "IVF_SQ8", False): "ivf",
    ("faiss", "IVF_SQ8H", False): "ivf",
    ("faiss", "IVF_PQ", False): "ivf",
    ("faiss", "RNSG", False): "nsg",
    ("faiss", "FLAT", True): "binary",
    ("faiss", "IVF_FLAT", True): "binary",
    ("hnswlib", "HNSW", False): "hnsw",
    ("annoy", "ANNOY", False): "annoy",
}


def family(index_type: str, metric: str) -> ModuleType:
    """The family module that builds and loads ``index_type`` for ``metric``."""
    index_spec = spec.get_index(index_type)
    key = (index_spec.backend, index_spec.name, spec.is_binary_metric(metric))
    if key not in FAMILIES:
        raise BuildIndexError(f"{index_spec.name} is not available for metric {metric} (backend "
                              f"{index_spec.backend})")
    return importlib.import_module(f"{__name__}.{FAMILIES[key]}")


def library_message(exc: BaseException) -> str:
    """A library exception as one readable line (faiss prefixes C++ locations we drop)."""
    text = str(exc).strip() or type(exc).__name__
    if "Error: '" in text:
        text = text[text.index("Error: '"):]
    return f"{type(exc).__name__}: {' '.join(text.split())}"


def check_array(vectors: Any, metric: str, what: str) -> np.ndarray:
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

    ``vectors`` is float32 (n, dim) for L2/IP or uint8 (n, dim/8) for binary metrics. Data that cannot
    train the index raises :class:`~milvus_lab.errors.UntrainableSegmentError`; any other failure of the
    library raises :class:`BuildIndexError` naming the index type, the row count and the cause.
    """
    index_spec = spec.get_index(index_type)
    spec.check_index_metric(index_spec, metric)
    array = check_array(vectors, metric, f"{index_spec.name} build vectors")
    if len(array) == 0 and not index_spec.is_flat:
        raise BuildIndexError(f"{index_spec.name}: cannot build an index on an empty segment")
    module = family(index_spec.name, metric)
    try:
        return module.build(index_spec.name, dict(params), array, metric)
    except BuildIndexError:
        raise
    except Exception as exc:  # MemoryError is an Exception too
        raise BuildIndexError(
            f"{index_spec.name} ({metric}) build failed on {array.shape[0]} rows: {library_message(exc)}"
        ) from exc


def load(index_type: str, params: Mapping[str, int], metric: str, dim: int, path: Path) -> BuiltIndex:
    """Load an index written by ``BuiltIndex.save(path)``.

    ``dim`` is the collection's dimension (bits for binary metrics). The file's structure is checked
    against ``params``, ``metric`` and ``dim`` before (hnswlib, annoy, NSG) or right after (faiss IVF and
    FLAT, whose reader checks sizes) the library reads it. A missing file raises FileNotFoundError; a
    damaged file or one the library cannot read raises BuildIndexError.
    """
    index_spec = spec.get_index(index_type)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {index_spec.name} index file at {path}")
    module = family(index_spec.name, metric)
    try:
        return module.load(index_spec.name, dict(params), metric, int(dim), path)
    except BuildIndexError:
        raise
    except Exception as exc:
        raise BuildIndexError(f"cannot load {index_spec.name} ({metric}) from {path}: "
                              f"{library_message(exc)}") from exc


def build_is_deterministic(index_type: str, threads: int | None = None, metric: str = "L2") -> bool:
    """Whether two builds of ``index_type`` on the same rows give the same index (and the same recall).

    Seeded builds (faiss k-means, annoy) always do; multi-threaded graph builds (HNSW, RNSG) only on one
    thread. ``threads`` defaults to :func:`build_threads`, the count builds use now.
    """
    count = build_threads() if threads is None else int(threads)
    return bool(family(index_type, metric).deterministic(spec.get_index(index_type).name, count))


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int, metric: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-``k`` of ``queries`` over a raw segment (float or binary); ``k`` may exceed n."""
    vectors = check_array(vectors, metric, "segment vectors")
    queries = check_array(queries, metric, "queries")
    return family("FLAT", metric).exact_search(vectors, queries, int(k), metric)


def distances(vectors: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """The exact metric value of every (query, vector) pair: float32 (nq, n).

    SUBSTRUCTURE / SUPERSTRUCTURE give the Jaccard distance of a hit and +inf for a non-hit.
    """
    vectors = check_array(vectors, metric, "vectors")
    queries = check_array(queries, metric, "queries")
    return family("FLAT", metric).distances(vectors, queries, metric)
