"""RNSG: faiss IndexNSGFlat (R = ``out_degree``, GK = ``knng``, build L = ``search_length``,
C = ``candidate_pool_size``).

The k-NN graph NSG starts from is exact (brute force, O(n^2)) below :data:`FAST_GRAPH_MIN_ROWS` distinct
rows. From there on it is IVF-probed (:func:`ivf_knn_graph`): rows are clustered by seeded k-means (the
cells an IVF build of the same rows trains, reused when one did) and each row's neighbours are found
exactly among the rows of its :data:`IVF_GRAPH_NPROBE` nearest cells, at O(n^1.5). Measured on GloVe
(2 cores, spec defaults, recall@10 at search_length 45 / 90 / 180): 100k rows, graph 10.3 s + link
16.7 s, recall 0.947 / 0.980 / 0.994, against the exact graph's 24.8 s + 13.6 s, 0.947 / 0.984 / 0.996;
50k rows 2.8 + 5.0 s against 4.5 + 4.6 s; 20k rows 0.9 + 1.4 s against 1.1 + 1.5 s. faiss's NN-descent
(``build_type`` 1) was no faster than the exact graph up to 100k GloVe rows, so it is offered
(:data:`NN_DESCENT`) but not chosen.
The built index records the choice in ``build_info["graph_builder"]``.
The search list ``nsg.search_L`` is index-wide state, guarded by a :class:`SharedSetting`.

Fidelity: the parameters reach faiss as Milvus 0.10's knowhere NSG uses them (L bounds the search that
collects each node's candidates, C how deep the pruning reads them), and a segment below
:data:`FAST_GRAPH_MIN_ROWS` gets the graph faiss's own NSG builds from an exact k-NN graph:
``tests/test_rnsg_fidelity.py`` pins recall within 0.02 of it at every search_length (measured equal to
three decimals on one thread, 20k clustered x 128 and 20k GloVe; the IVF-probed graph within 0.018 on 50k
clustered, 0.006 on 50k GloVe; ``benchmarks/rnsg_fidelity.py``). The recall curve is not monotone on
clustered data (0.47 / 0.25 / 0.36 / 0.64 at search_length 10 / 20 / 40 / 80) and that is faiss's own
search: it seeds every query's list with the entry point's first neighbours, then the same pseudo-random
rows for every query, so the list's length decides which clusters a search can start in. Milvus 0.10 drew
fresh random rows per query; faiss offers no way to, so the lab's report names such a fall instead.

faiss NSG loops forever on exact duplicate vectors (zero distances defeat its pruning), so identical rows
are indexed once and every hit is expanded to all rows holding that vector; the grouping is saved beside
the index file (``<path>.groups.npy``). The NSG link step (and NN-descent) run on OpenMP threads with
locks, so a build on more than one thread is not reproducible; on one thread it is.

faiss's NSG reader trusts the graph it reads (a row with too many neighbours writes past its buffer, a
neighbour id out of range is followed at search time), so :func:`load` has
:func:`~milvus_lab.backends.faiss_files.check_file` walk the whole file before faiss sees it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from .. import spec
from ..errors import UntrainableSegmentError
from . import kmeans
from .base import (FAISS_METRIC, BuiltIndex, SharedSetting, build_threads, check_faiss_header, refuse,
                   seed_clustering, serialized_size)
from .faiss_files import Expected, check_file

#: distinct rows from which the k-NN graph is IVF-probed instead of exact (GloVe-300, 2 cores: 50k rows
#: 7.8 s against 9.1 s exact for the same recall within 0.004; below that the exact graph costs little)
FAST_GRAPH_MIN_ROWS = 50_000
#: IVF cells each row's neighbours are looked for in, when the graph is IVF-probed (4, 8 and 16 gave the
#: same RNSG recall within 0.003 on 100k GloVe; 16 took twice as long)
IVF_GRAPH_NPROBE = 4
EXACT_KNN = "exact k-NN"
NN_DESCENT = "NN-descent"
IVF_PROBED = "IVF-probed k-NN"
#: the builder used from FAST_GRAPH_MIN_ROWS on
FAST_GRAPH = IVF_PROBED
GROUPS_SUFFIX = ".groups.npy"
#: rows hashed at a time when looking for duplicate rows
_HASH_BLOCK = 8192


def graph_builder(distinct_rows: int) -> str:
    """How the k-NN graph of a segment with ``distinct_rows`` distinct vectors is built."""
    return FAST_GRAPH if distinct_rows >= FAST_GRAPH_MIN_ROWS else EXACT_KNN


def graph_cells(n: int) -> int:
    """k-means cells of the IVF-probed graph: the power of two nearest 4 sqrt(n) (the IVF rule of thumb the
    lab uses too, so an IVF build on the same rows has trained these cells already), at most n."""
    return int(max(1, min(n, 2 ** round(np.log2(max(1.0, 4 * np.sqrt(n)))))))


def ivf_knn_graph(vectors: np.ndarray, neighbours: int, metric: str, info: dict | None = None) -> np.ndarray:
    """An approximate k-NN graph (n x ``neighbours`` row positions, -1 when a row found too few).

    The rows are clustered into :func:`graph_cells` cells by seeded faiss k-means (shared with IVF builds
    on the same rows, see :mod:`.kmeans`), and each row is given its :data:`IVF_GRAPH_NPROBE` nearest
    cells, as an IVF search would probe them. Then, cell by cell, the cell's rows look for their
    neighbours exactly (one BLAS distance block) among the rows of every cell one of them probes: each row
    sees at least the rows an IVF search with that nprobe would scan. Only one cell's candidates are
    copied at a time, never the whole set of rows. ``info`` (a dict) receives the k-means seconds and the
    part of them reused from an earlier build."""
    n, dim = vectors.shape
    nlist = graph_cells(n)
    ivf = faiss.index_factory(dim, f"IVF{nlist},Flat", FAISS_METRIC[metric])
    seed_clustering(ivf.cp)
    probed, kmeans_s, reused_s = kmeans.prepare(ivf, vectors, min(IVF_GRAPH_NPROBE, nlist))
    if info is not None:  # the build info of the index: k-means work reused from an IVF build counts in build_s
        info.update(coarse_kmeans_s=kmeans_s, coarse_kmeans_reused=reused_s > 0, reused_training_s=reused_s)
    cell_of = probed[:, 0]
    order = np.argsort(cell_of, kind="stable")
    starts = np.searchsorted(cell_of[order], np.arange(nlist + 1))
    graph = np.full((n, neighbours), -1, np.int64)

    def rows_in(cells: np.ndarray) -> np.ndarray:
        """The rows of the distinct cells listed (-1: none)."""
        cells = np.unique(cells)
        return np.concatenate([order[starts[c]:starts[c + 1]] for c in cells[cells >= 0]])

    for cell in range(nlist):
        rows = order[starts[cell]:starts[cell + 1]]
        if not len(rows):
            continue
        candidates = rows_in(probed[rows])
        width = probed.shape[1]
        while len(candidates) < min(neighbours + 1, n) and width < nlist:
            # small cells: probe more of these rows' nearest cells until every row can be given its neighbours
            width = min(nlist, 2 * width)
            candidates = rows_in(ivf.quantizer.search(vectors[rows], width)[1])
        want = min(neighbours + 1, len(candidates))
        _, found = faiss.knn(vectors[rows], vectors[candidates], want, metric=FAISS_METRIC[metric])
        ids = np.where(found >= 0, candidates[np.maximum(found, 0)], -1)
        not_self = np.argsort(ids == rows[:, None], axis=1, kind="stable")[:, :neighbours]
        ids = np.take_along_axis(ids, not_self, axis=1)
        ids[ids == rows[:, None]] = -1
        graph[rows, :ids.shape[1]] = ids
    return graph


def drop_repeated_labels(dist: np.ndarray, labels: np.ndarray, descending: bool
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


class Groups:
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


def group_duplicates(vectors: np.ndarray) -> tuple[np.ndarray, Groups | None]:
    """Distinct rows in first-occurrence order, and the groups of identical rows (None if none).

    Rows are hashed a block at a time (-0.0 and 0.0 are the same point); only rows whose hash repeats are
    compared exactly, so the usual case (no duplicates) holds no copy of the rows."""
    n = len(vectors)
    hashes = np.empty(n, np.int64)
    for start in range(0, n, _HASH_BLOCK):
        block = vectors[start:start + _HASH_BLOCK] + np.float32(0.0)
        hashes[start:start + len(block)] = [hash(row.tobytes()) for row in block]
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    suspects = np.flatnonzero(counts[inverse.ravel()] > 1)
    if not len(suspects):
        return vectors, None
    # exact grouping of the suspects: each row's representative is the first row holding its vector
    rows = np.ascontiguousarray(vectors[suspects] + np.float32(0.0))
    keys = rows.view(np.dtype((np.void, rows.shape[1] * rows.itemsize))).ravel()
    _, first, same = np.unique(keys, return_index=True, return_inverse=True)
    representative = np.arange(n)
    representative[suspects] = suspects[first][same.ravel()]
    distinct = np.flatnonzero(representative == np.arange(n))
    if len(distinct) == n:
        return vectors, None
    new_id = np.empty(n, np.int64)
    new_id[distinct] = np.arange(len(distinct))
    return np.ascontiguousarray(vectors[distinct]), Groups(new_id[representative])


def _set_search_l(index: Any, value: int) -> None:
    index.nsg.search_L = value


class NSGIndex(BuiltIndex):
    """RNSG: faiss IndexNSGFlat built on the distinct rows of the segment.

    The search list is clamped to the number of distinct rows (faiss would otherwise loop filling it).
    """

    def __init__(self, metric: str, params: Mapping[str, int], index: Any, groups: Groups | None, *,
                 deterministic: bool = True, builder: str = EXACT_KNN):
        ntotal = index.ntotal if groups is None else len(groups.group_of)
        super().__init__("RNSG", metric, params, ntotal, index.d, deterministic=deterministic,
                         build_info={"graph_builder": builder, "distinct_rows": int(index.ntotal)})
        self.index = index
        self.groups = groups
        # a function of the faiss index, not a bound method: a cycle back to self would keep the rows and the
        # graph alive after the index is dropped, until the garbage collector happens to run
        self._search_l = SharedSetting(functools.partial(_set_search_l, index))
        self._memory: int | None = None

    def search_batch(self, queries: np.ndarray, k: int, search_params: Mapping[str, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
        distinct = self.index.ntotal
        kk = min(k, distinct)
        # the search list is what the spec says runs (spec.effective_value: max(search_length, top_k)),
        # capped at the distinct rows; faiss NSG can repeat a row, so ask for up to twice kk from that same
        # list (never more than it holds: faiss would silently lengthen it) and drop the repeats
        search_l = min(max(int(search_params["search_length"]), kk), distinct)
        want = min(2 * kk, search_l)
        with self._search_l.use(search_l):
            dist, labels = self.index.search(queries, want)
        dist, labels = drop_repeated_labels(dist, labels, self.descending)
        dist, labels = dist[:, :kk], labels[:, :kk]
        if self.groups is not None:
            dist, labels = self.groups.expand(dist, labels, k)
        return dist, labels

    def memory_bytes(self) -> int:
        if self._memory is None:
            self._memory = serialized_size(self.index)
        return self._memory + (0 if self.groups is None else self.groups.nbytes)

    def save(self, path: Path) -> None:
        """faiss's NSG file at ``path``; if the segment had duplicate rows, their grouping goes to
        ``<path>.groups.npy`` (NumPy format, no pickle), which must travel with the index file."""
        faiss.write_index(self.index, str(path))
        groups_path = Path(str(path) + GROUPS_SUFFIX)
        if self.groups is not None:
            with open(groups_path, "wb") as handle:
                np.save(handle, self.groups.group_of, allow_pickle=False)
        elif groups_path.exists():
            groups_path.unlink()


def deterministic(index_type: str, threads: int) -> bool:
    """NSG linking (and NN-descent) take locks on OpenMP threads: reproducible on one thread only."""
    return threads == 1


def build(index_type: str, params: Mapping[str, int], vectors: np.ndarray, metric: str, *,
          builder: str | None = None) -> NSGIndex:
    """NSG on the distinct rows; the k-NN graph builder is :func:`graph_builder`'s choice unless given
    (EXACT_KNN, NN_DESCENT or IVF_PROBED: for measurements). faiss NSG numbers nodes with a C int: a segment
    of more rows than that is refused as untrainable before faiss sees a row."""
    too_many = spec.INDEXES["RNSG"].too_many_rows(vectors.shape[0])
    if too_many:
        raise UntrainableSegmentError(f"RNSG: {too_many}")
    distinct, groups = group_duplicates(vectors)
    need = max(params["knng"], params["search_length"]) + 1
    if len(distinct) < need:
        raise UntrainableSegmentError(
            f"RNSG: needs more distinct rows than knng={params['knng']} and the build "
            f"search_length={params['search_length']} (at least {need}); the segment has "
            f"{len(vectors)} rows, {len(distinct)} distinct")
    builder = builder or graph_builder(len(distinct))
    threads = build_threads()
    index = faiss.IndexNSGFlat(vectors.shape[1], params["out_degree"], FAISS_METRIC[metric])
    index.GK = params["knng"]
    index.build_type = 1 if builder == NN_DESCENT else 0
    index.nsg.L = params["search_length"]
    index.nsg.C = params["candidate_pool_size"]
    info: dict = {}
    if builder == IVF_PROBED:
        index.build(distinct, ivf_knn_graph(distinct, params["knng"], metric, info))
    else:
        index.add(distinct)
    built = NSGIndex(metric, params, index, groups, deterministic=deterministic(index_type, threads),
                     builder=builder)
    built.build_info.update(info)
    return built


def _load_groups(path: Path, nodes: int) -> Groups | None:
    groups_path = Path(str(path) + GROUPS_SUFFIX)
    if not groups_path.exists():
        return None
    try:
        group_of = np.load(groups_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise refuse(groups_path, f"not a NumPy array file ({exc})") from None
    if group_of.ndim != 1 or group_of.dtype.kind not in "iu" or len(group_of) < nodes:
        raise refuse(groups_path, "the duplicate-row groups are not a 1-D integer array")
    if group_of.min() < 0 or group_of.max() != nodes - 1 or np.bincount(group_of).min() == 0:
        raise refuse(groups_path, f"the duplicate-row groups do not map rows onto the {nodes} graph nodes")
    return Groups(group_of)


def load(index_type: str, params: Mapping[str, int], metric: str, dim: int, path: Path) -> NSGIndex:
    """Check the file's structure, then read it with faiss's reader."""
    nodes = check_file(path, Expected(b"INSf", dim, metric, dict(params)))
    groups = _load_groups(path, nodes)
    index = faiss.read_index(str(path))
    check_faiss_header(index, path, faiss.IndexNSGFlat, dim, metric)
    return NSGIndex(metric, params, index, groups, deterministic=deterministic(index_type, build_threads()),
                    builder=graph_builder(nodes))
