"""faiss adapter: FLAT (float and binary), IVF_FLAT, IVF_SQ8, IVF_SQ8H, IVF_PQ, RNSG and binary IVF_FLAT.

Float metrics
    L2 results are squared L2 ascending, IP results inner products descending (the IVF quantizer is an
    IndexFlatIP for IP). IVF searches pass ``faiss.SearchParametersIVF(nprobe=...)`` per call, so
    concurrent searches share no state. IVF_SQ8H is built exactly as IVF_SQ8 (8-bit scalar quantizer,
    ``QT_8bit``): Milvus's GPU hybrid has no CPU counterpart. IVF_PQ uses 8 bits per code.
    RNSG is faiss ``IndexNSGFlat`` (R = ``out_degree``, GK = ``knng``, build L = ``search_length``,
    C = ``candidate_pool_size``) over an exact k-NN graph. Its search list ``nsg.search_L`` is index-wide
    state, guarded by a :class:`~milvus_lab.backends.SharedSetting`.

Binary metrics (vectors are uint8 rows of dim/8 bytes)
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
    probed cells and ranks them.

Ties at the top-k cut-off are broken arbitrarily; in the returned list equal distances are ordered by
row position for the NumPy metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from .. import spec
from ..errors import BuildIndexError
from . import SharedSetting
from .base import BuiltIndex, pad_results

_FAISS_METRIC = {"L2": faiss.METRIC_L2, "IP": faiss.METRIC_INNER_PRODUCT}
_IVF_STORAGE = {"IVF_FLAT": "Flat", "IVF_SQ8": "SQ8", "IVF_SQ8H": "SQ8", "IVF_PQ": "PQ{m}x8"}
#: working memory (bytes) of one chunk of NumPy binary distances
_CHUNK_BYTES = 1 << 25
#: candidate (query, vector) pairs ranked at once by binary IVF on JACCARD/TANIMOTO
_CHUNK_PAIRS = 1 << 22
_NSG_SUFFIX = ".groups.npy"


# --------------------------------------------------------------------------------------------------
# Exact distances and exact search
# --------------------------------------------------------------------------------------------------
def _words(codes: np.ndarray) -> np.ndarray:
    """Binary rows viewed as the widest unsigned words that divide the row (fewer popcounts)."""
    width = codes.shape[1]
    for dtype, size in ((np.uint64, 8), (np.uint32, 4), (np.uint16, 2)):
        if width % size == 0:
            return np.ascontiguousarray(codes).view(dtype)
    return np.ascontiguousarray(codes)


def _popcount(words: np.ndarray) -> np.ndarray:
    return np.bitwise_count(words).sum(axis=-1, dtype=np.int32)


def _binary_from_counts(metric: str, inter: np.ndarray, pop_q: np.ndarray, pop_b: np.ndarray
                        ) -> np.ndarray:
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


def _binary_matrix(codes: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """Exact binary distances (nq, n) for one block small enough to broadcast."""
    words, qwords = _words(codes), _words(queries)
    if metric == "HAMMING":
        return _popcount(qwords[:, None, :] ^ words[None, :, :]).astype(np.float32)
    inter = _popcount(qwords[:, None, :] & words[None, :, :])
    return _binary_from_counts(metric, inter, _popcount(qwords)[:, None], _popcount(words)[None, :])


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


def _binary_knn(codes: np.ndarray, queries: np.ndarray, k: int, metric: str
                ) -> tuple[np.ndarray, np.ndarray]:
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
            block = _binary_matrix(codes[b0:b0 + b_block], q, metric)
            pos = np.broadcast_to(np.arange(b0, b0 + block.shape[1], dtype=np.int64), block.shape)
            best_d, best_i = _sorted_topk(np.concatenate([best_d, block], axis=1),
                                          np.concatenate([best_i, pos], axis=1), k)
        out_d[q0:q0 + q_block], out_i[q0:q0 + q_block] = best_d, best_i
    if metric in ("SUBSTRUCTURE", "SUPERSTRUCTURE"):
        out_i[np.isinf(out_d)] = -1
    return out_d, out_i


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int, metric: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k over a raw array, padded to k (float: ``faiss.knn``, same cost as IndexFlat)."""
    descending = metric in spec.DESCENDING_METRICS
    kk = min(k, len(vectors))
    if kk == 0 or len(queries) == 0:
        return pad_results(np.empty((len(queries), 0)), np.empty((len(queries), 0)), k, descending)
    if metric in _FAISS_METRIC:
        dist, labels = faiss.knn(queries, vectors, kk, _FAISS_METRIC[metric])
    elif metric == "HAMMING":
        dist, labels = faiss.knn_hamming(queries, vectors, kk)
    else:
        dist, labels = _binary_knn(vectors, queries, kk, metric)
    return pad_results(dist, labels, k, descending)


def distances(vectors: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """Exact metric values (nq, n), float32; L2 and IP are computed in float64 before rounding."""
    if metric in _FAISS_METRIC:
        x, q = vectors.astype(np.float64), queries.astype(np.float64)
        dots = q @ x.T
        if metric == "IP":
            return dots.astype(np.float32)
        sq = (q * q).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2.0 * dots
        return np.maximum(sq, 0.0).astype(np.float32)
    out = np.empty((len(queries), len(vectors)), np.float32)
    q_block, b_block = _row_blocks(len(queries), len(vectors), vectors.shape[1])
    for q0 in range(0, len(queries), q_block):
        for b0 in range(0, len(vectors), b_block):
            out[q0:q0 + q_block, b0:b0 + b_block] = _binary_matrix(
                vectors[b0:b0 + b_block], queries[q0:q0 + q_block], metric)
    return out


# --------------------------------------------------------------------------------------------------
# Built indexes
# --------------------------------------------------------------------------------------------------
class _FaissIndex(BuiltIndex):
    """Common attributes; ``memory_bytes`` is the size of the library's serialisation (cached)."""

    def __init__(self, index_type: str, metric: str, params: Mapping[str, int], ntotal: int, dim: int):
        self.index_type = index_type
        self.metric = metric
        self.params = dict(params)
        self.ntotal = int(ntotal)
        self.dim = int(dim)
        self._descending = metric in spec.DESCENDING_METRICS
        self._memory: int | None = None

    def _serialized_size(self, index: Any) -> int:
        if self._memory is None:
            if isinstance(index, faiss.IndexBinary):
                self._memory = int(faiss.serialize_index_binary(index).size)
            else:
                self._memory = int(faiss.serialize_index(index).size)
        return self._memory

    def _queries(self, queries: np.ndarray) -> np.ndarray:
        dtype = np.uint8 if spec.is_binary_metric(self.metric) else np.float32
        return np.ascontiguousarray(queries, dtype=dtype)

    def _empty(self, nq: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        return pad_results(np.empty((nq, 0)), np.empty((nq, 0)), k, self._descending)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.index_type} {self.metric} {self.params} "
                f"ntotal={self.ntotal} dim={self.dim}>")


class FlatIndex(_FaissIndex):
    """Exact search over the build array itself (kept by reference, not copied)."""

    def __init__(self, vectors: np.ndarray, metric: str):
        binary = spec.is_binary_metric(metric)
        super().__init__("FLAT", metric, {}, len(vectors), vectors.shape[1] * (8 if binary else 1))
        self.vectors = vectors

    def search(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
               ) -> tuple[np.ndarray, np.ndarray]:
        return exact_search(self.vectors, self._queries(queries), k, self.metric)

    def memory_bytes(self) -> int:
        return int(self.vectors.nbytes)

    def save(self, path: Path) -> None:
        """Write a faiss IndexFlat (IndexBinaryFlat for binary metrics) holding the vectors."""
        if spec.is_binary_metric(self.metric):
            index = faiss.IndexBinaryFlat(self.dim)
            index.add(self.vectors)
            faiss.write_index_binary(index, str(path))
        else:
            index = faiss.IndexFlat(self.dim, _FAISS_METRIC[self.metric])
            index.add(self.vectors)
            faiss.write_index(index, str(path))


class IVFIndex(_FaissIndex):
    """IVF_FLAT, IVF_SQ8, IVF_SQ8H, IVF_PQ on float vectors; ``nprobe`` is passed per call."""

    def __init__(self, index_type: str, metric: str, params: Mapping[str, int], index: faiss.IndexIVF):
        super().__init__(index_type, metric, params, index.ntotal, index.d)
        self.index = index
        self._search_params: dict[int, Any] = {}  # read-only per-call settings, shared by all threads

    def search(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
               ) -> tuple[np.ndarray, np.ndarray]:
        queries = self._queries(queries)
        kk = min(k, self.ntotal)
        if kk == 0 or len(queries) == 0:
            return self._empty(len(queries), k)
        nprobe = int(search_params["nprobe"])
        params = self._search_params.get(nprobe)
        if params is None:
            params = self._search_params.setdefault(nprobe, faiss.SearchParametersIVF(nprobe=nprobe))
        dist, labels = self.index.search(queries, kk, params=params)
        return pad_results(dist, labels, k, self._descending)

    def memory_bytes(self) -> int:
        return self._serialized_size(self.index)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))


def _drop_repeated_labels(dist: np.ndarray, labels: np.ndarray, descending: bool
                          ) -> tuple[np.ndarray, np.ndarray]:
    """faiss NSG can list a node twice on graphs with many equal distances: keep each label's best
    (first) occurrence, move the repeats to the end as padding."""
    order = np.argsort(labels, axis=1, kind="stable")
    ranked = np.take_along_axis(labels, order, axis=1)
    repeat_sorted = np.zeros(labels.shape, dtype=bool)
    repeat_sorted[:, 1:] = (ranked[:, 1:] == ranked[:, :-1]) & (ranked[:, 1:] >= 0)
    if not repeat_sorted.any():
        return dist, labels
    repeat = np.empty_like(repeat_sorted)
    np.put_along_axis(repeat, order, repeat_sorted, axis=1)
    labels = np.where(repeat, -1, labels)
    dist = np.where(repeat, -np.inf if descending else np.inf, dist).astype(np.float32)
    keep = np.lexsort((-dist if descending else dist, labels < 0), axis=1)
    return np.take_along_axis(dist, keep, axis=1), np.take_along_axis(labels, keep, axis=1)


class _Groups:
    """Rows with identical vectors: group g holds positions ``order[starts[g]:starts[g + 1]]``."""

    def __init__(self, group_of: np.ndarray):
        self.group_of = group_of.astype(np.int64)
        self.order = np.argsort(self.group_of, kind="stable")
        self.counts = np.bincount(self.group_of)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    @property
    def nbytes(self) -> int:
        return self.group_of.nbytes + self.order.nbytes + self.counts.nbytes + self.starts.nbytes

    def expand(self, dist: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Replace each hit on a group by the group's rows (same distance), keeping k per query."""
        nq, width = labels.shape
        valid = labels >= 0
        per_hit = np.where(valid, np.minimum(self.counts[np.where(valid, labels, 0)], k), 0).ravel()
        total = int(per_hit.sum())
        hit_of = np.repeat(np.arange(nq * width), per_hit)
        within = np.arange(total) - np.repeat(np.cumsum(per_hit) - per_hit, per_hit)
        positions = self.order[self.starts[labels.ravel()[hit_of]] + within]
        query_of = hit_of // width
        per_query = per_hit.reshape(nq, width).sum(1)
        rank = np.arange(total) - np.repeat(np.cumsum(per_query) - per_query, per_query)
        keep = rank < k
        out_d = np.zeros((nq, k), np.float32)
        out_i = np.full((nq, k), -1, np.int64)
        out_d[query_of[keep], rank[keep]] = dist.ravel()[hit_of[keep]]
        out_i[query_of[keep], rank[keep]] = positions[keep]
        return out_d, out_i


def _group_duplicates(vectors: np.ndarray) -> tuple[np.ndarray, _Groups | None]:
    """Distinct rows in first-occurrence order, and the groups of identical rows (None if none)."""
    normalised = np.ascontiguousarray(vectors + np.float32(0.0))  # -0.0 and 0.0 are the same point
    keys = normalised.view(np.dtype((np.void, normalised.shape[1] * normalised.itemsize))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    if len(first) == len(vectors):
        return vectors, None
    by_first = np.argsort(first)
    new_id = np.empty_like(by_first)
    new_id[by_first] = np.arange(len(first))
    return np.ascontiguousarray(vectors[first[by_first]]), _Groups(new_id[inverse.ravel()])


class NSGIndex(_FaissIndex):
    """RNSG: faiss IndexNSGFlat built on the distinct rows of the segment.

    faiss NSG loops forever on exact duplicate vectors (zero distances defeat its pruning), so identical
    rows are indexed once and every hit is expanded to all rows holding that vector. The search list is
    clamped to the number of distinct rows (faiss would otherwise loop filling it).
    """

    def __init__(self, metric: str, params: Mapping[str, int], index: faiss.IndexNSGFlat,
                 groups: _Groups | None):
        ntotal = index.ntotal if groups is None else len(groups.group_of)
        super().__init__("RNSG", metric, params, ntotal, index.d)
        self.index = index
        self.groups = groups
        self._search_l = SharedSetting(self._set_search_l)

    def _set_search_l(self, value: int) -> None:
        self.index.nsg.search_L = value

    def search(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
               ) -> tuple[np.ndarray, np.ndarray]:
        queries = self._queries(queries)
        distinct = self.index.ntotal
        kk = min(k, distinct)
        if kk == 0 or len(queries) == 0:
            return self._empty(len(queries), k)
        # faiss NSG returns duplicates when its search list is shorter than k (as hnswlib uses max(ef, k)):
        # the list holds at least the kk results asked for, never more than the distinct rows
        # ask for a few more than kk: repeated labels are dropped and the list must still hold kk
        want = min(2 * kk, distinct)
        with self._search_l.use(min(max(int(search_params["search_length"]), want), distinct)):
            dist, labels = self.index.search(queries, want)
        dist, labels = _drop_repeated_labels(dist, labels, self._descending)
        dist, labels = dist[:, :kk], labels[:, :kk]
        if self.groups is not None:
            dist, labels = self.groups.expand(dist, labels, min(k, self.ntotal))
        return pad_results(dist, labels, k, self._descending)

    def memory_bytes(self) -> int:
        extra = 0 if self.groups is None else self.groups.nbytes
        return self._serialized_size(self.index) + extra

    def save(self, path: Path) -> None:
        """faiss's NSG file at ``path``; if the segment had duplicate rows, their grouping goes to
        ``<path>.groups.npy`` (NumPy format, no pickle), which must travel with the index file."""
        faiss.write_index(self.index, str(path))
        groups_path = Path(str(path) + _NSG_SUFFIX)
        if self.groups is not None:
            with open(groups_path, "wb") as handle:
                np.save(handle, self.groups.group_of, allow_pickle=False)
        elif groups_path.exists():
            groups_path.unlink()


class BinaryIVFIndex(_FaissIndex):
    """Binary IVF_FLAT: faiss IndexBinaryIVF (HAMMING in faiss; JACCARD/TANIMOTO re-ranked in NumPy)."""

    def __init__(self, metric: str, params: Mapping[str, int], index: faiss.IndexBinaryIVF):
        super().__init__("IVF_FLAT", metric, params, index.ntotal, index.d)
        self.index = index
        self._cells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        if metric != "HAMMING":
            self._cells = _inverted_lists(index)

    def search(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
               ) -> tuple[np.ndarray, np.ndarray]:
        queries = self._queries(queries)
        kk = min(k, self.ntotal)
        if kk == 0 or len(queries) == 0:
            return self._empty(len(queries), k)
        nprobe = int(search_params["nprobe"])
        if self._cells is None:
            dist, labels = self.index.search(queries, kk, params=faiss.SearchParametersIVF(nprobe=nprobe))
            return pad_results(dist, labels, k, False)
        _, probed = self.index.quantizer.search(queries, nprobe)
        return pad_results(*self._rerank(queries, probed, kk), k, False)

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
        qwords = _words(queries)
        qpops = _popcount(qwords)
        begin = 0
        while begin < len(queries):
            done = cumulative[begin - 1] if begin else 0
            end = max(begin + 1, int(np.searchsorted(cumulative, done + _CHUNK_PAIRS, side="right")))
            self._rerank_chunk(slice(begin, end), qwords, qpops, probed, sizes, per_query,
                               ids, words, pops, starts, out_d, out_i)
            begin = end
        return out_d, out_i

    def _rerank_chunk(self, rows: slice, qwords: np.ndarray, qpops: np.ndarray, probed: np.ndarray,
                      sizes: np.ndarray, per_query: np.ndarray, ids: np.ndarray, words: np.ndarray,
                      pops: np.ndarray, starts: np.ndarray, out_d: np.ndarray, out_i: np.ndarray) -> None:
        k = out_d.shape[1]
        cell_sizes = sizes[rows].ravel()
        total = int(cell_sizes.sum())
        if total == 0:
            return
        cell_start = starts[probed[rows].ravel()]
        slots = np.arange(total) - np.repeat(np.cumsum(cell_sizes) - cell_sizes - cell_start, cell_sizes)
        query = np.repeat(np.arange(rows.start, rows.stop), per_query[rows])
        inter = _popcount(qwords[query] & words[slots])
        dist = _binary_from_counts(self.metric, inter, qpops[query], pops[slots])
        order = np.lexsort((ids[slots], dist, query))
        query, dist, slots = query[order], dist[order], slots[order]
        counts = per_query[rows]
        rank = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        keep = rank < k
        out_d[query[keep], rank[keep]] = dist[keep]
        out_i[query[keep], rank[keep]] = ids[slots[keep]]

    def memory_bytes(self) -> int:
        extra = 0 if self._cells is None else sum(a.nbytes for a in self._cells)
        return self._serialized_size(self.index) + extra

    def save(self, path: Path) -> None:
        faiss.write_index_binary(self.index, str(path))


def _inverted_lists(index: faiss.IndexBinaryIVF) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
    words = _words(codes)
    return ids, words, _popcount(words), starts


# --------------------------------------------------------------------------------------------------
# Build and load
# --------------------------------------------------------------------------------------------------
def _need_rows(index_type: str, have: int, need: int, why: str) -> None:
    if have < need:
        raise BuildIndexError(f"{index_type}: {why}; the segment has {have} rows (needs at least {need})")


def _quiet_clustering(*clustering_params: Any) -> None:
    """faiss prints a warning to stderr for every k-means with under 39 points per centroid; the engine
    reports row counts itself, so the library's hint is switched off (nothing else changes)."""
    for cp in clustering_params:
        cp.min_points_per_centroid = 1


def new_ivf_index(index_type: str, params: Mapping[str, int], dim: int, metric: str) -> Any:
    """The untrained faiss IVF index the engine builds for ``index_type`` (the teaching views reuse it)."""
    storage = _IVF_STORAGE[index_type].format(**params)
    index = faiss.index_factory(dim, f"IVF{params['nlist']},{storage}", _FAISS_METRIC[metric])
    _quiet_clustering(index.cp)
    if index_type == "IVF_PQ":
        _quiet_clustering(index.pq.cp)
        index.do_polysemous_training = False  # as Milvus's IndexIVFPQ; the factory's default costs minutes
    return index


def _build_ivf(index_type: str, params: Mapping[str, int], vectors: np.ndarray, metric: str) -> IVFIndex:
    n, dim = vectors.shape
    nlist = params["nlist"]
    _need_rows(index_type, n, nlist, f"k-means needs at least nlist={nlist} rows to train")
    if index_type == "IVF_PQ":
        _need_rows(index_type, n, spec.PQ_MIN_TRAIN_ROWS,
                   f"8-bit product quantization trains {spec.PQ_MIN_TRAIN_ROWS} centroids per sub-quantizer")
    index = new_ivf_index(index_type, params, dim, metric)
    index.train(vectors)
    index.add(vectors)
    return IVFIndex(index_type, metric, params, index)


def _build_nsg(params: Mapping[str, int], vectors: np.ndarray, metric: str) -> NSGIndex:
    distinct, groups = _group_duplicates(vectors)
    need = max(params["knng"], params["search_length"]) + 1
    if len(distinct) < need:
        raise BuildIndexError(
            f"RNSG: needs more distinct rows than knng={params['knng']} and the build "
            f"search_length={params['search_length']} (at least {need}); the segment has "
            f"{len(vectors)} rows, {len(distinct)} distinct")
    index = faiss.IndexNSGFlat(vectors.shape[1], params["out_degree"], _FAISS_METRIC[metric])
    index.GK = params["knng"]
    index.build_type = 0  # exact k-NN graph: faster than NNDescent up to at least 60k rows, and exact
    index.nsg.L = params["search_length"]
    index.nsg.C = params["candidate_pool_size"]
    index.add(distinct)
    return NSGIndex(metric, params, index, groups)


def _build_binary_ivf(params: Mapping[str, int], codes: np.ndarray, metric: str) -> BinaryIVFIndex:
    nlist = params["nlist"]
    _need_rows("IVF_FLAT", len(codes), nlist, f"k-means needs at least nlist={nlist} rows to train")
    dim = codes.shape[1] * 8
    quantizer = faiss.IndexBinaryFlat(dim)
    index = faiss.IndexBinaryIVF(quantizer, dim, nlist)
    quantizer.this.disown()
    index.own_fields = True
    _quiet_clustering(index.cp)
    index.train(codes)
    index.add(codes)
    return BinaryIVFIndex(metric, params, index)


_BUILDERS: dict[str, Callable[[str, Mapping[str, int], np.ndarray, str], BuiltIndex]] = {
    "IVF_FLAT": _build_ivf, "IVF_SQ8": _build_ivf, "IVF_SQ8H": _build_ivf, "IVF_PQ": _build_ivf,
}


def build(index_type: str, params: Mapping[str, int], vectors: np.ndarray, metric: str) -> BuiltIndex:
    """Build a faiss-backed index (params validated by the spec; vectors already in the right dtype)."""
    if index_type == "FLAT":
        return FlatIndex(vectors, metric)
    if len(vectors) == 0:
        raise BuildIndexError(f"{index_type}: cannot build an index on an empty segment")
    if spec.is_binary_metric(metric):
        if index_type != "IVF_FLAT":
            raise BuildIndexError(f"{index_type} is not available for binary metric {metric}")
        return _build_binary_ivf(params, vectors, metric)
    if index_type == "RNSG":
        return _build_nsg(params, vectors, metric)
    if index_type not in _BUILDERS:
        raise BuildIndexError(f"{index_type} is not a faiss index type")
    return _BUILDERS[index_type](index_type, params, vectors, metric)


def _check_loaded(index_type: str, path: Path, got_dim: int, dim: int, got_metric: int | None,
                  metric: str) -> None:
    if got_dim != dim:
        raise BuildIndexError(f"{path} holds a {index_type} index of dimension {got_dim}, expected {dim}")
    if got_metric is not None and got_metric != _FAISS_METRIC[metric]:
        raise BuildIndexError(f"{path} holds a {index_type} index with another metric than {metric}")


def load(index_type: str, params: Mapping[str, int], metric: str, dim: int, path: Path) -> BuiltIndex:
    """Read what ``save`` wrote, with faiss's reader (``read_index`` / ``read_index_binary``)."""
    if spec.is_binary_metric(metric):
        index = faiss.read_index_binary(str(path))
        _check_loaded(index_type, path, index.d, dim, None, metric)
        if index_type == "FLAT":
            codes = faiss.vector_to_array(index.xb).reshape(index.ntotal, index.code_size)
            return FlatIndex(codes, metric)
        return BinaryIVFIndex(metric, params, index)
    index = faiss.read_index(str(path))
    _check_loaded(index_type, path, index.d, dim, index.metric_type, metric)
    if index_type == "FLAT":
        vectors = faiss.vector_to_array(index.codes).view(np.float32).reshape(index.ntotal, index.d)
        return FlatIndex(vectors, metric)
    if index_type == "RNSG":
        groups_path = Path(str(path) + _NSG_SUFFIX)
        groups = _Groups(np.load(groups_path, allow_pickle=False)) if groups_path.exists() else None
        if groups is not None and len(groups.counts) != index.ntotal:
            raise BuildIndexError(f"{groups_path} groups rows into {len(groups.counts)} vectors, but "
                                  f"the RNSG index at {path} holds {index.ntotal}")
        return NSGIndex(metric, params, index, groups)
    return IVFIndex(index_type, metric, params, index)
