"""IVF_FLAT, IVF_SQ8, IVF_SQ8H and IVF_PQ on float vectors (faiss IndexIVF*).

L2 results are squared L2 ascending, IP results inner products descending (the quantizer is an
IndexFlatIP for IP). Searches pass ``faiss.SearchParametersIVF(nprobe=...)`` per call, so concurrent
searches share no state. IVF_SQ8H is built exactly as IVF_SQ8 (8-bit scalar quantizer, ``QT_8bit``):
Milvus's GPU hybrid has no CPU counterpart. IVF_PQ uses 8 bits per code.

Builds are reproducible: the coarse k-means and the PQ k-means use a fixed seed, and faiss k-means gives
the same centroids whatever the thread count. The coarse centroids of the same rows and ``nlist`` are
therefore computed once and reused by the next IVF build (:mod:`.kmeans`), with each row's nearest cell;
the build info says so and carries the seconds that work took (``coarse_kmeans_s``,
``coarse_kmeans_reused``, ``reused_training_s``: the part of it this build did not repeat).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from .. import spec
from ..units import MIB
from . import kmeans
from .base import FAISS_METRIC, SEED, BuiltIndex, check_faiss_header, require_rows, seed_clustering, serialized_size
from .faiss_files import Expected, check_file

_STORAGE = {"IVF_FLAT": "Flat", "IVF_SQ8": "SQ8", "IVF_SQ8H": "SQ8", "IVF_PQ": "PQ{m}x8"}
_CLASSES = {"IVF_FLAT": faiss.IndexIVFFlat, "IVF_SQ8": faiss.IndexIVFScalarQuantizer,
            "IVF_SQ8H": faiss.IndexIVFScalarQuantizer, "IVF_PQ": faiss.IndexIVFPQ}
#: rows per faiss ``add`` call (faiss itself works in blocks of about this size)
ADD_CHUNK_ROWS = 50_000
#: bytes of the temporary distance table an IVF_PQ ``add`` call may build
ADD_TABLE_BYTES = 64 * MIB
_TAGS = {"IVF_FLAT": b"IwFl", "IVF_SQ8": b"IwSq", "IVF_SQ8H": b"IwSq", "IVF_PQ": b"IwPQ"}


def new_ivf_index(index_type: str, params: Mapping[str, int], dim: int, metric: str) -> Any:
    """The untrained, seeded faiss IVF index the engine builds for ``index_type`` (the views reuse it)."""
    storage = _STORAGE[index_type].format(**params)
    index = faiss.index_factory(dim, f"IVF{params['nlist']},{storage}", FAISS_METRIC[metric])
    seed_clustering(index.cp)
    if index_type == "IVF_PQ":
        seed_clustering(index.pq.cp)
        index.do_polysemous_training = False  # as Milvus's IndexIVFPQ; the factory's default costs minutes
    return index


class IVFIndex(BuiltIndex):
    """IVF_FLAT, IVF_SQ8, IVF_SQ8H, IVF_PQ on float vectors; ``nprobe`` is passed per call."""

    def __init__(self, index_type: str, metric: str, params: Mapping[str, int], index: Any,
                 build_info: Mapping[str, Any] | None = None):
        super().__init__(index_type, metric, params, index.ntotal, index.d,
                         build_info={"seed": SEED, **(build_info or {})})
        self.index = index
        self._search_params: dict[int, Any] = {}  # read-only per-call settings, shared by all threads
        self._memory: int | None = None

    def search_batch(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
        nprobe = int(search_params["nprobe"])
        params = self._search_params.get(nprobe)
        if params is None:
            params = self._search_params.setdefault(nprobe, faiss.SearchParametersIVF(nprobe=nprobe))
        return self.index.search(queries, k, params=params)

    def memory_bytes(self) -> int:
        if self._memory is None:
            self._memory = serialized_size(self.index)
        return self._memory

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))


def deterministic(index_type: str, threads: int) -> bool:
    """Seeded k-means: the same rows give the same cells and codes on any thread count."""
    return True


def build(index_type: str, params: Mapping[str, int], vectors: np.ndarray, metric: str) -> IVFIndex:
    n, dim = vectors.shape
    nlist = params["nlist"]
    require_rows(index_type, n, nlist, f"k-means needs at least nlist={nlist} rows to train")
    if index_type == "IVF_PQ":
        require_rows(index_type, n, spec.PQ_MIN_TRAIN_ROWS,
                     f"8-bit product quantization trains {spec.PQ_MIN_TRAIN_ROWS} centroids per sub-quantizer")
    index = new_ivf_index(index_type, params, dim, metric)
    # the coarse k-means and each row's cell, shared with other builds on the same rows
    cells, kmeans_s, reused_s = kmeans.prepare(index, vectors)
    index.train(vectors)  # the codec only (SQ ranges, PQ codebooks): the quantizer is trained
    step = add_chunk_rows(index_type, params)
    for start in range(0, n, step):
        rows = np.ascontiguousarray(vectors[start:start + step])
        assigned = np.ascontiguousarray(cells[start:start + step, 0])
        index.add_core(len(rows), faiss.swig_ptr(rows), None, faiss.swig_ptr(assigned))
    return IVFIndex(index_type, metric, params, index,
                    {"coarse_kmeans_s": kmeans_s, "coarse_kmeans_reused": reused_s > 0,
                     "reused_training_s": reused_s})


def add_chunk_rows(index_type: str, params: Mapping[str, int]) -> int:
    """Rows added to faiss per call. faiss encodes PQ codes of 16+ dimensions per sub-vector through a
    table of rows x 256 x m floats (50,000 rows at m=24: 1.2 GB on top of the data), so IVF_PQ adds in
    chunks whose table stays under :data:`ADD_TABLE_BYTES`; codes are the same as in one call."""
    if index_type != "IVF_PQ":
        return ADD_CHUNK_ROWS
    return max(1, ADD_TABLE_BYTES // (spec.PQ_MIN_TRAIN_ROWS * params["m"] * 4))


def load(index_type: str, params: Mapping[str, int], metric: str, dim: int, path: Path) -> IVFIndex:
    """Check the file's structure (codec sizes, every row listed once), then read it with faiss's reader."""
    check_file(path, Expected(_TAGS[index_type], dim, metric, dict(params)))
    index = faiss.read_index(str(path))
    check_faiss_header(index, path, _CLASSES[index_type], dim, metric)
    return IVFIndex(index_type, metric, params, index)
