"""Binary metrics: FLAT and IVF_FLAT on uint8 rows of dim/8 bytes, and the NumPy popcount kernels.

HAMMING runs in faiss (``knn_hamming``, ``IndexBinaryIVF``). The other metrics are vectorised NumPy
(popcount of AND, chunked to bound memory), following Milvus 0.10's definitions:

* JACCARD = 1 - |a & b| / |a | b| (1.0 when both vectors are all zeros, as in Milvus);
* TANIMOTO = -log2(|a & b| / |a | b|), i.e. -log2(1 - JACCARD), Milvus's ``Jaccard_2_Tanimoto``
  (not the chemists' Tanimoto coefficient). It ranks exactly like JACCARD and is +inf for vectors
  with no bit in common;
* SUBSTRUCTURE: hits are database vectors b that contain the query q (q & b == q);
  SUPERSTRUCTURE: hits are b contained in q (q & b == b). Non-hits are never returned (padded).
  Milvus 0.10 returned the first top_k hits in storage order, each with distance 0; here hits are
  ranked by their Jaccard distance to the query, ascending, and that distance is returned.

Binary IVF_FLAT on JACCARD/TANIMOTO chooses its ``nprobe`` cells by Hamming distance to the cell
centroids (``IndexBinaryIVF``'s quantizer), then computes the exact metric on every vector of the
probed cells and ranks them. Its k-means is seeded, so a rebuild gives the same cells.

Ties at the top-k cut-off are broken arbitrarily; in the returned list equal distances are ordered by
row position for the NumPy metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from .base import SEED, BuiltIndex, check_faiss_header, pad_results, require_rows, seed_clustering, serialized_size
from .faiss_files import Expected, check_file
from .flat import FlatIndex

#: working memory (bytes) of one chunk of NumPy binary distances
_CHUNK_BYTES = 1 << 25
#: candidate (query, vector) pairs ranked at once by binary IVF on JACCARD/TANIMOTO
_CHUNK_PAIRS = 1 << 22
_BITS_PER_BYTE = 8


# --------------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------------
def as_words(codes: np.ndarray) -> np.ndarray:
    """Binary rows viewed as the widest unsigned words that divide the row (fewer popcounts)."""
    width = codes.shape[1]
    for dtype, size in ((np.uint64, 8), (np.uint32, 4), (np.uint16, 2)):
        if width % size == 0:
            return np.ascontiguousarray(codes).view(dtype)
    return np.ascontiguousarray(codes)


def popcount(words: np.ndarray) -> np.ndarray:
    """Set bits of each row (last axis)."""
    return np.bitwise_count(words).sum(axis=-1, dtype=np.int32)


def from_counts(metric: str, inter: np.ndarray, pop_q: np.ndarray, pop_b: np.ndarray) -> np.ndarray:
    """Milvus's binary distance from |q & b|, |q| and |b| (arrays broadcast together)."""
    union = pop_q + pop_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        similarity = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        if metric == "TANIMOTO":
            return (-np.log2(similarity)).astype(np.float32)
    jaccard = (1.0 - similarity).astype(np.float32)
    if metric == "JACCARD":
        return jaccard
    hit = inter == (pop_q if metric == "SUBSTRUCTURE" else pop_b)
    return np.where(hit, jaccard, np.float32(np.inf))


def _matrix(codes: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """Exact binary distances (nq, n) for one block small enough to broadcast."""
    words, qwords = as_words(codes), as_words(queries)
    if metric == "HAMMING":
        return popcount(qwords[:, None, :] ^ words[None, :, :]).astype(np.float32)
    inter = popcount(qwords[:, None, :] & words[None, :, :])
    return from_counts(metric, inter, popcount(qwords)[:, None], popcount(words)[None, :])


def _row_blocks(nq: int, n: int, row_bytes: int) -> tuple[int, int]:
    """Query and database block sizes keeping one broadcast block under _CHUNK_BYTES."""
    q_block = max(1, min(nq, 256))
    b_block = max(1, min(n, _CHUNK_BYTES // max(1, q_block * row_bytes)))
    return q_block, b_block


def _sorted_topk(dist: np.ndarray, pos: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest of each row, sorted by distance then position."""
    if dist.shape[1] > k:
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        dist = np.take_along_axis(dist, part, axis=1)
        pos = np.take_along_axis(pos, part, axis=1)
    order = np.lexsort((pos, dist), axis=1)
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(pos, order, axis=1)


def _numpy_knn(codes: np.ndarray, queries: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (k <= n) for JACCARD, TANIMOTO, SUBSTRUCTURE and SUPERSTRUCTURE, in blocks."""
    nq, n = len(queries), len(codes)
    q_block, b_block = _row_blocks(nq, n, codes.shape[1])
    out_d = np.empty((nq, k), np.float32)
    out_i = np.empty((nq, k), np.int64)
    for q0 in range(0, nq, q_block):
        q = queries[q0:q0 + q_block]
        best_d = np.empty((len(q), 0), np.float32)
        best_i = np.empty((len(q), 0), np.int64)
        for b0 in range(0, n, b_block):
            block = _matrix(codes[b0:b0 + b_block], q, metric)
            pos = np.broadcast_to(np.arange(b0, b0 + block.shape[1], dtype=np.int64), block.shape)
            best_d, best_i = _sorted_topk(np.concatenate([best_d, block], axis=1),
                                          np.concatenate([best_i, pos], axis=1), k)
        out_d[q0:q0 + q_block], out_i[q0:q0 + q_block] = best_d, best_i
    if metric in ("SUBSTRUCTURE", "SUPERSTRUCTURE"):
        out_i[np.isinf(out_d)] = -1
    return out_d, out_i


def exact_search(codes: np.ndarray, queries: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k of binary ``queries`` over ``codes``, padded to k (+inf / -1)."""
    kk = min(k, len(codes))
    if kk == 0 or len(queries) == 0:
        return pad_results(np.empty((len(queries), 0)), np.empty((len(queries), 0)), k, False)
    if metric == "HAMMING":
        dist, labels = faiss.knn_hamming(queries, codes, kk)
    else:
        dist, labels = _numpy_knn(codes, queries, kk, metric)
    return pad_results(dist, labels, k, False)


def distances(codes: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """Exact metric values (nq, n), float32 (SUBSTRUCTURE / SUPERSTRUCTURE: +inf for a non-hit)."""
    out = np.empty((len(queries), len(codes)), np.float32)
    q_block, b_block = _row_blocks(len(queries), len(codes), codes.shape[1])
    for q0 in range(0, len(queries), q_block):
        for b0 in range(0, len(codes), b_block):
            out[q0:q0 + q_block, b0:b0 + b_block] = _matrix(codes[b0:b0 + b_block], queries[q0:q0 + q_block],
                                                            metric)
    return out


def pair_distances(codes: np.ndarray, queries: np.ndarray, ids: np.ndarray, metric: str) -> np.ndarray:
    """Exact metric of each query to each of its ``ids`` (nq x c, all ids valid rows of ``codes``)."""
    rows = as_words(codes)[ids]  # nq x c x words
    q = as_words(queries)[:, None, :]
    if metric == "HAMMING":
        return popcount(rows ^ q).astype(np.float32)
    return from_counts(metric, popcount(rows & q), popcount(q), popcount(rows))


# --------------------------------------------------------------------------------------------------
# Built indexes
# --------------------------------------------------------------------------------------------------
class BinaryFlatIndex(FlatIndex):
    """Exact binary search over the build array (kept by reference)."""

    def __init__(self, codes: np.ndarray, metric: str):
        super().__init__(codes, metric, dim=codes.shape[1] * _BITS_PER_BYTE)

    query_dtype = np.uint8

    def search_batch(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
        return exact_search(self.vectors, queries, k, self.metric)

    def save(self, path: Path) -> None:
        """Write a faiss IndexBinaryFlat holding the codes."""
        index = faiss.IndexBinaryFlat(self.dim)
        index.add(self.vectors)
        faiss.write_index_binary(index, str(path))


class BinaryIVFIndex(BuiltIndex):
    """Binary IVF_FLAT: faiss IndexBinaryIVF (HAMMING in faiss; JACCARD/TANIMOTO re-ranked in NumPy)."""

    def __init__(self, metric: str, params: Mapping[str, int], index: Any):
        super().__init__("IVF_FLAT", metric, params, index.ntotal, index.d, build_info={"seed": SEED})
        self.index = index
        self._cells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        if metric != "HAMMING":
            self._cells = _inverted_lists(index)
        self._memory: int | None = None

    query_dtype = np.uint8

    def search_batch(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
        nprobe = int(search_params["nprobe"])
        if self._cells is None:
            return self.index.search(queries, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
        _, probed = self.index.quantizer.search(queries, nprobe)
        return self._rerank(queries, probed, k)

    def _rerank(self, queries: np.ndarray, probed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact metric on all rows of the probed cells, top-k per query, in chunks of query rows."""
        ids, words, pops, starts = self._cells
        valid = probed >= 0
        probed = np.where(valid, probed, 0)
        sizes = np.where(valid, np.diff(starts)[probed], 0)
        per_query = sizes.sum(1)
        cumulative = np.cumsum(per_query)
        out_d = np.full((len(queries), k), np.inf, np.float32)
        out_i = np.full((len(queries), k), -1, np.int64)
        qwords = as_words(queries)
        qpops = popcount(qwords)
        begin = 0
        while begin < len(queries):
            done = cumulative[begin - 1] if begin else 0
            end = max(begin + 1, int(np.searchsorted(cumulative, done + _CHUNK_PAIRS, side="right")))
            self._rerank_chunk(slice(begin, end), qwords, qpops, probed, sizes, per_query, out_d, out_i)
            begin = end
        return out_d, out_i

    def _rerank_chunk(self, rows: slice, qwords: np.ndarray, qpops: np.ndarray, probed: np.ndarray,
                      sizes: np.ndarray, per_query: np.ndarray, out_d: np.ndarray, out_i: np.ndarray) -> None:
        ids, words, pops, starts = self._cells
        k = out_d.shape[1]
        cell_sizes = sizes[rows].ravel()
        total = int(cell_sizes.sum())
        if total == 0:
            return
        cell_start = starts[probed[rows].ravel()]
        slots = np.arange(total) - np.repeat(np.cumsum(cell_sizes) - cell_sizes - cell_start, cell_sizes)
        query = np.repeat(np.arange(rows.start, rows.stop), per_query[rows])
        inter = popcount(qwords[query] & words[slots])
        dist = from_counts(self.metric, inter, qpops[query], pops[slots])
        order = np.lexsort((ids[slots], dist, query))
        query, dist, slots = query[order], dist[order], slots[order]
        counts = per_query[rows]
        rank = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        keep = rank < k
        out_d[query[keep], rank[keep]] = dist[keep]
        out_i[query[keep], rank[keep]] = ids[slots[keep]]

    def memory_bytes(self) -> int:
        if self._memory is None:
            self._memory = serialized_size(self.index)
        return self._memory + (0 if self._cells is None else sum(a.nbytes for a in self._cells))

    def save(self, path: Path) -> None:
        faiss.write_index_binary(self.index, str(path))


def _inverted_lists(index: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row ids, codes (as words), popcounts and cell offsets of an IndexBinaryIVF, cell by cell."""
    lists = index.invlists
    sizes = np.array([lists.list_size(c) for c in range(index.nlist)], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    ids = np.empty(int(starts[-1]), np.int64)
    codes = np.empty((int(starts[-1]), index.code_size), np.uint8)
    for cell in np.flatnonzero(sizes):
        size = int(sizes[cell])
        lo, hi = starts[cell], starts[cell + 1]
        ids[lo:hi] = faiss.rev_swig_ptr(lists.get_ids(int(cell)), size)
        codes[lo:hi] = faiss.rev_swig_ptr(lists.get_codes(int(cell)), size * index.code_size).reshape(
            size, index.code_size)
    words = as_words(codes)
    return ids, words, popcount(words), starts


# --------------------------------------------------------------------------------------------------
# Build and load
# --------------------------------------------------------------------------------------------------
def deterministic(index_type: str, threads: int) -> bool:
    """Exact FLAT; IVF_FLAT's binary k-means is seeded."""
    return True


def build(index_type: str, params: Mapping[str, int], codes: np.ndarray, metric: str) -> BuiltIndex:
    if index_type == "FLAT":
        return BinaryFlatIndex(codes, metric)
    nlist = params["nlist"]
    require_rows("IVF_FLAT", len(codes), nlist, f"k-means needs at least nlist={nlist} rows to train")
    dim = codes.shape[1] * _BITS_PER_BYTE
    quantizer = faiss.IndexBinaryFlat(dim)
    index = faiss.IndexBinaryIVF(quantizer, dim, nlist)
    quantizer.this.disown()
    index.own_fields = True
    seed_clustering(index.cp)
    index.train(codes)
    index.add(codes)
    return BinaryIVFIndex(metric, params, index)


def load(index_type: str, params: Mapping[str, int], metric: str, dim: int, path: Path) -> BuiltIndex:
    """Check the file's structure (bits, codes, every row listed once), then read it with faiss's reader."""
    flat = index_type == "FLAT"
    check_file(path, Expected(b"IBxF" if flat else b"IBwF", dim, metric, dict(params)))
    index = faiss.read_index_binary(str(path))
    check_faiss_header(index, path, faiss.IndexBinaryFlat if flat else faiss.IndexBinaryIVF, dim, metric)
    if flat:
        codes = faiss.vector_to_array(index.xb)
        return BinaryFlatIndex(codes.reshape(index.ntotal, index.code_size), metric)
    return BinaryIVFIndex(metric, params, index)
