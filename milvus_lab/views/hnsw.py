"""HNSW opened up: the layers of the graph and the path one search takes through them.

hnswlib (the engine's HNSW backend) does not expose its graph, so this view builds faiss's
``IndexHNSWFlat`` -- the same algorithm (Malkov & Yashunin) with the same ``M`` and ``efConstruction`` --
reads its layered graph, and replays faiss's search in Python step by step: start at the entry point
on the top layer, move greedily to a closer neighbour until none is closer, drop one layer, repeat; on
layer 0 run a beam search keeping ``ef`` candidates. Every distance computed is recorded. The replay is
checked against faiss's own search of the same graph (same answer, same count of distance evaluations).
hnswlib stops its layer-0 search by a slightly different rule, so its counts differ a little; the
shape (few hops on top, most distances on layer 0, growing with ``ef``) is the same.

::

    from milvus_lab.datasets import load_glove
    from milvus_lab import views
    vectors, words = load_glove(10_000)
    trace = views.hnsw_trace(vectors, vectors[words.index("paris")], M=16, efConstruction=200, ef=64)
    print(trace.summary())
    views.plot_hnsw_trace(trace, labels=words)
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from .. import spec
from ..figures import place_labels
from ..numerics import as_vectors, exact_knn, recall_per_query
from ._common import (
    FAISS_METRIC,
    as_query,
    background_rows,
    check_k,
    check_metric,
    fit_projection,
    new_figure,
    one_thread,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

INDEX_TYPE = "HNSW"


@dataclass(frozen=True, eq=False)
class HnswGraph:
    """The layered graph of a faiss IndexHNSWFlat, as NumPy arrays."""

    #: (n,) the top layer of each node (every node is on layers 0..level)
    levels: np.ndarray
    #: (n + 1,) start of each node's block in ``neighbors``
    offsets: np.ndarray
    #: all neighbour lists, -1 pads a list that is not full
    neighbors: np.ndarray
    #: start of layer l's list inside a node's block
    cum_per_level: np.ndarray
    entry_point: int
    max_level: int

    @classmethod
    def from_faiss(cls, index: Any) -> HnswGraph:
        hnsw = index.hnsw
        return cls(levels=faiss.vector_to_array(hnsw.levels).astype(np.int64) - 1,
                   offsets=faiss.vector_to_array(hnsw.offsets).astype(np.int64),
                   neighbors=faiss.vector_to_array(hnsw.neighbors).astype(np.int64),
                   cum_per_level=faiss.vector_to_array(hnsw.cum_nneighbor_per_level).astype(np.int64),
                   entry_point=int(hnsw.entry_point), max_level=int(hnsw.max_level))

    def neighbours(self, node: int, layer: int) -> np.ndarray:
        """The neighbour list of ``node`` on ``layer``, in storage order."""
        if not 0 <= layer <= self.levels[node]:
            raise ValueError(f"node {node} lives on layers 0..{self.levels[node]}; got layer {layer}")
        start = self.offsets[node]
        row = self.neighbors[start + self.cum_per_level[layer]:start + self.cum_per_level[layer + 1]]
        stop = np.flatnonzero(row < 0)
        return row[: stop[0]] if len(stop) else row

    def nodes_per_layer(self) -> np.ndarray:
        """Nodes present on each layer 0..max_level (layer l holds every node whose level is >= l)."""
        counts = np.bincount(self.levels, minlength=self.max_level + 1)
        return counts[::-1].cumsum()[::-1]


@dataclass(frozen=True, eq=False)
class HnswTrace:
    """One HNSW search replayed: the route from the entry point to the answer and every distance computed.

    ``path`` has one row per step (``layer``, ``node``, ``distance`` to the query): greedy moves on the
    upper layers, a repeated node where the search drops a layer, and on layer 0 the chain of graph edges
    by which the beam search reached its best result. ``evaluations`` lists every distance computation in
    order, with the node whose neighbour list proposed it (``parent``, -1 for the entry point).
    """

    vectors: np.ndarray = field(repr=False)
    query: np.ndarray = field(repr=False)
    metric: str
    M: int
    efConstruction: int
    ef: int
    k: int
    graph: HnswGraph = field(repr=False)
    path: pd.DataFrame = field(repr=False)
    evaluations: pd.DataFrame = field(repr=False)
    #: layer-0 nodes whose neighbour lists the beam search scanned
    expanded: int
    result_ids: np.ndarray
    result_distances: np.ndarray = field(repr=False)
    #: faiss's own search of the same graph with the same ef (the replay must agree)
    faiss_ids: np.ndarray = field(repr=False)
    faiss_distances: np.ndarray = field(repr=False)
    #: faiss's count of distance evaluations (its global hnsw_stats.ndis, read right after the search; it
    #: leaves out the entry point's distance)
    faiss_ndis: int = field(repr=False)
    true_ids: np.ndarray = field(repr=False)
    true_distances: np.ndarray = field(repr=False)

    @property
    def levels(self) -> np.ndarray:
        return self.graph.levels

    @property
    def hops(self) -> int:
        """Moves from one node to another along the path (dropping a layer is not a hop)."""
        nodes = self.path["node"].to_numpy()
        return int((nodes[1:] != nodes[:-1]).sum())

    @property
    def distance_evaluations(self) -> int:
        return len(self.evaluations)

    def evaluations_per_layer(self) -> np.ndarray:
        return np.bincount(self.evaluations["layer"], minlength=self.graph.max_level + 1)

    @property
    def recall(self) -> float:
        return float(recall_per_query(self.result_ids[None, :], self.true_ids[None, :], self.k, base=self.vectors,
                                      queries=self.query[None, :], metric=self.metric)[0])

    def layers(self) -> pd.DataFrame:
        """One row per layer, top first: nodes on it, hops and distance evaluations the search made there."""
        import pandas as pd

        per_layer = self.graph.nodes_per_layer()
        evals = self.evaluations_per_layer()
        nodes = self.path["node"].to_numpy()
        moved = np.r_[False, nodes[1:] != nodes[:-1]]
        hops = np.bincount(self.path["layer"].to_numpy()[moved], minlength=len(per_layer))
        layers = np.arange(len(per_layer))[::-1]
        return pd.DataFrame({"layer": layers, "nodes": per_layer[layers], "hops": hops[layers],
                             "distance_evaluations": evals[layers]})

    def summary(self) -> str:
        n = len(self.vectors)
        return (f"HNSW M={self.M}, efConstruction={self.efConstruction}, ef={self.ef}: {self.graph.max_level + 1} "
                f"layers, {self.hops} hops, {self.distance_evaluations:,} distance evaluations for {n:,} "
                f"vectors ({self.distance_evaluations / n:.1%}); recall@{self.k} = {self.recall:.2f}")


def build_hnsw(vectors: np.ndarray, M: int, efConstruction: int, metric: str) -> Any:
    """faiss IndexHNSWFlat with hnswlib's meaning of M (2*M neighbours on layer 0, M above), built on one
    thread: a parallel build links nodes in a varying order, and a class should see the same graph twice."""
    index = faiss.IndexHNSWFlat(vectors.shape[1], M, FAISS_METRIC[metric])
    index.hnsw.efConstruction = efConstruction
    with one_thread():
        index.add(vectors)
    return index


class _Heap:
    """faiss's MinimaxHeap, step for step (so ties break as in faiss): a max-heap of at most ``n``
    (distance, node) pairs; ``pop_min`` marks the best entry as taken (node -1) but leaves its distance."""

    def __init__(self, n: int):
        self.n, self.k, self.nvalid = n, 0, 0
        self.ids: list[int] = [0] * (n + 1)  # 1-based like faiss's heap code
        self.dis: list[float] = [0.0] * (n + 1)

    @staticmethod
    def _above(a: float, b: float, ia: int, ib: int) -> bool:  # faiss CMax::cmp2
        return a > b or (a == b and ia > ib)

    def _heap_pop(self) -> None:
        k, ids, dis = self.k, self.ids, self.dis
        val, vid, i = dis[k], ids[k], 1
        while True:
            i1 = 2 * i
            i2 = i1 + 1
            if i1 > k:
                break
            child = i1 if i2 == k + 1 or self._above(dis[i1], dis[i2], ids[i1], ids[i2]) else i2
            if self._above(val, dis[child], vid, ids[child]):
                break
            dis[i], ids[i] = dis[child], ids[child]
            i = child
        dis[i], ids[i] = dis[k], ids[k]
        self.k -= 1

    def _heap_push(self, val: float, vid: int) -> None:
        self.k += 1
        ids, dis, i = self.ids, self.dis, self.k
        while i > 1:
            father = i >> 1
            if not self._above(val, dis[father], vid, ids[father]):
                break
            dis[i], ids[i] = dis[father], ids[father]
            i = father
        dis[i], ids[i] = val, vid

    def push(self, node: int, d: float) -> None:
        if self.k == self.n:
            if d >= self.dis[1]:
                return
            if self.ids[1] != -1:
                self.nvalid -= 1
            self._heap_pop()
        self._heap_push(d, node)
        self.nvalid += 1

    def pop_min(self) -> tuple[int, float]:
        ids, dis = self.ids, self.dis
        i = self.k
        while i >= 1 and ids[i] == -1:
            i -= 1
        if i == 0:
            return -1, 0.0
        best, dmin = i, dis[i]
        for j in range(i - 1, 0, -1):
            if ids[j] != -1 and dis[j] < dmin:
                best, dmin = j, dis[j]
        node = ids[best]
        ids[best] = -1
        self.nvalid -= 1
        return node, dmin

    def count_below(self, d: float) -> int:
        return sum(1 for j in range(1, self.k + 1) if self.dis[j] < d)


def _replay(graph: HnswGraph, vectors: np.ndarray, query: np.ndarray, ef: int, k: int, metric: str
            ) -> tuple[list[tuple[int, int, float]], list[tuple[int, int, int, float]], int,
                       list[tuple[float, int]]]:
    """faiss's HNSW search (bounded queue, relative-distance stop) in Python, recording every step.

    Distances are "smaller is better": squared L2, or minus the inner product for IP.
    Returns (path rows, evaluation rows, expanded count, k best (distance, node) ascending).
    """
    sign = -1.0 if metric == "IP" else 1.0

    def dist(nodes: np.ndarray) -> np.ndarray:
        rows = vectors[nodes]
        if metric == "IP":
            return -(rows @ query)
        diff = rows - query
        return np.einsum("ij,ij->i", diff, diff)

    evaluations: list[tuple[int, int, int, float]] = []  # (layer, node, parent, distance)
    nearest = graph.entry_point
    d_nearest = float(dist(np.array([nearest]))[0])
    evaluations.append((graph.max_level, nearest, -1, d_nearest))
    path: list[tuple[int, int, float]] = [(graph.max_level, nearest, d_nearest)]
    for layer in range(graph.max_level, 0, -1):
        if layer != graph.max_level:
            path.append((layer, nearest, d_nearest))
        while True:  # greedy: scan the current node's list, move to the best strictly closer neighbour
            current = nearest
            nbrs = graph.neighbours(current, layer)
            dists = dist(nbrs)
            for node, d in zip(nbrs.tolist(), dists.tolist()):
                evaluations.append((layer, node, current, d))
                if d < d_nearest:
                    nearest, d_nearest = node, d
            if nearest == current:
                break
            path.append((layer, nearest, d_nearest))
    if graph.max_level > 0:
        path.append((0, nearest, d_nearest))

    # layer 0: beam search, as faiss's search_from_candidates with a MinimaxHeap of size ef
    start = nearest
    parent = {start: -1}
    results: list[tuple[float, int]] = [(d_nearest, start)]  # the k best seen, ascending
    heap = _Heap(ef)
    heap.push(start, d_nearest)
    expanded = 0
    while heap.nvalid > 0:
        node, d0 = heap.pop_min()
        if heap.count_below(d0) >= ef:
            break
        nbrs = graph.neighbours(node, 0)
        fresh = np.array([v for v in nbrs.tolist() if v not in parent], dtype=np.int64)
        for v in fresh.tolist():
            parent[v] = node
        for v, d in zip(fresh.tolist(), dist(fresh).tolist() if len(fresh) else []):
            evaluations.append((0, v, node, d))
            if len(results) < k or d < results[-1][0]:
                bisect.insort(results, (d, v))
                del results[k:]
            heap.push(v, d)
        expanded += 1

    route = []
    node = results[0][1]
    while node != start:
        route.append(node)
        node = parent[node]
    d_of = {v: d for (_, v, _, d) in evaluations}
    path.extend((0, v, d_of[v]) for v in reversed(route))
    path = [(layer, v, sign * d) for layer, v, d in path]
    evaluations = [(layer, v, p, sign * d) for layer, v, p, d in evaluations]
    results = [(sign * d, v) for d, v in results]
    return path, evaluations, expanded, results


def hnsw_trace(vectors: Any, query: Any, M: int, efConstruction: int, ef: int, k: int = 10, *,
               metric: str = "L2") -> HnswTrace:
    """Build an HNSW graph on ``vectors`` and replay one search of ``query``, recording every hop.

    The student sees how few nodes live on the upper layers, how the search descends them in a few
    greedy hops, and how many distances layer 0 computes for a given ``ef``. ``M``, ``efConstruction`` and
    ``ef`` are checked against HNSW's ranges in :mod:`milvus_lab.spec`.
    """
    import pandas as pd

    x = as_vectors(vectors)
    metric = check_metric(metric)
    _, build = spec.validate_build(INDEX_TYPE, {"M": M, "efConstruction": efConstruction}, dim=x.shape[1],
                                   metric=metric)
    k = check_k(k, len(x))
    ef = spec.validate_search(INDEX_TYPE, {"ef": ef}, top_k=k, build_params=build)["ef"]
    q = as_query(query, x.shape[1])
    index = build_hnsw(x, build["M"], build["efConstruction"], metric)
    graph = HnswGraph.from_faiss(index)

    faiss.cvar.hnsw_stats.reset()
    f_dist, f_ids = index.search(q, k, params=faiss.SearchParametersHNSW(efSearch=ef))
    faiss_ndis = int(faiss.cvar.hnsw_stats.ndis)

    path, evaluations, expanded, results = _replay(graph, x, q[0], ef, k, metric)
    true_i, true_d = exact_knn(x, q, k, metric)
    ids = np.full(k, -1, np.int64)
    dists = np.full(k, np.inf if metric == "L2" else -np.inf, np.float32)
    ids[: len(results)] = [v for _, v in results]
    dists[: len(results)] = [d for d, _ in results]
    return HnswTrace(
        vectors=x, query=q[0], metric=metric, M=build["M"], efConstruction=build["efConstruction"], ef=ef,
        k=k, graph=graph,
        path=pd.DataFrame(path, columns=["layer", "node", "distance"]).rename_axis("step").reset_index(),
        evaluations=pd.DataFrame(evaluations, columns=["layer", "node", "parent", "distance"]),
        expanded=expanded, result_ids=ids, result_distances=dists, faiss_ids=f_ids[0],
        faiss_distances=f_dist[0], faiss_ndis=faiss_ndis, true_ids=true_i[0], true_distances=true_d[0])


def plot_hnsw_trace(trace: HnswTrace, labels: Sequence[str] | None = None) -> Figure:
    """Left: nodes on each layer (log scale) beside the distances the search computed there. Middle: the
    path on the two principal axes of the path and the query (a projection fitted on all vectors keeps too
    little of their spread, ~8 % on GloVe, to show the way), each hop coloured by its layer, from the entry
    point to the answer. Right: the distance to the query at each
    step, shrinking hop by hop. ``labels`` (e.g. GloVe words) name the path."""
    from matplotlib import colormaps

    fig, (ax, bx, cx) = new_figure(3, figsize=(17, 5.8), width_ratios=[2, 3, 2])
    table = trace.layers()
    top = trace.graph.max_level
    cmap = colormaps["plasma"]

    def layer_color(layer: int) -> Any:
        return cmap(0.85 * layer / max(1, top))

    y = table["layer"].to_numpy()
    ax.barh(y + 0.2, table["nodes"], height=0.4, color=[layer_color(v) for v in y], edgecolor="black",
            linewidth=0.4, label="nodes on the layer")
    ax.barh(y - 0.2, table["distance_evaluations"], height=0.4, color="0.6", label="distances computed there")
    ax.set_xscale("log")
    ax.set_xlim(right=table["nodes"].max() * 12)
    ax.set_yticks(y, [f"layer {v}" for v in y])
    ax.set_xlabel("count (log scale)")
    ax.set_ylabel("layer (the search starts at the top)")
    ax.set_title(f"{len(trace.vectors):,} nodes; about 1 in {trace.M} climbs each layer", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)

    path = trace.path
    nodes = path["node"].to_numpy()
    seen = trace.evaluations["node"].unique()
    proj = fit_projection(np.vstack([trace.vectors[nodes], trace.query[None, :]]), fitted_on="the path")
    bg = background_rows(len(trace.vectors), seen)
    xy = proj(trace.vectors[bg])
    bx.scatter(xy[:, 0], xy[:, 1], s=3, color="0.88", rasterized=True, label="vectors")
    ev0 = trace.evaluations[trace.evaluations["layer"] == 0]["node"].unique()
    exy = proj(trace.vectors[ev0])
    bx.scatter(exy[:, 0], exy[:, 1], s=6, color="0.55", rasterized=True, label="distance computed on layer 0")
    pxy = proj(trace.vectors[nodes])
    layers = path["layer"].to_numpy()
    for i in range(1, len(path)):
        if nodes[i] != nodes[i - 1]:
            bx.annotate("", xy=pxy[i], xytext=pxy[i - 1],
                        arrowprops={"arrowstyle": "-|>", "color": layer_color(layers[i]), "lw": 1.6})
    for layer in sorted(set(layers.tolist()), reverse=True):
        rows = layers == layer
        bx.scatter(pxy[rows, 0], pxy[rows, 1], s=28, color=layer_color(layer), edgecolors="black",
                   linewidths=0.4, zorder=4, label=f"path on layer {layer}")
    bx.scatter(pxy[:1, 0], pxy[:1, 1], marker="s", s=90, color=layer_color(top), edgecolors="black", zorder=5,
               label="entry point")
    axy = proj(trace.vectors[trace.result_ids[:1]])
    bx.scatter(axy[:, 0], axy[:, 1], marker="D", s=80, facecolors="none", edgecolors="green", linewidths=2,
               zorder=6, label="answer (nearest found)")
    qxy = proj(trace.query)
    bx.scatter(qxy[:, 0], qxy[:, 1], marker="*", s=260, color="red", edgecolors="black", zorder=7, label="query")
    proj.label_axes(bx)
    bx.set_title(f"The search path: {trace.hops} hops, {trace.distance_evaluations:,} distances computed",
                 fontsize=10)
    _plot_distance_per_step(cx, trace, layer_color)
    handles, names = ax.get_legend_handles_labels()
    more, more_names = bx.get_legend_handles_labels()
    fig.legend(handles + more, names + more_names, loc="outside lower center", ncols=4, fontsize="small",
               markerscale=1.2)
    fig.suptitle(f"HNSW {spec.format_params({'M': trace.M, 'efConstruction': trace.efConstruction})}, ef={trace.ef}: "
                 f"layers and the path of one search (recall@{trace.k} = {trace.recall:.2f})")
    # last, in the final layout: the bar counts, then the words of the path
    counts = [(nodes_on, yy + 0.2, f"{nodes_on:,} nodes") for yy, nodes_on in zip(y, table["nodes"])]
    counts += [(max(evals, 1), yy - 0.2, f"{evals:,} dist., {hops} hop{'s' if hops != 1 else ''}")
               for yy, evals, hops in zip(y, table["distance_evaluations"], table["hops"])]
    place_labels(ax, [c[0] for c in counts], [c[1] for c in counts], [c[2] for c in counts], colors="black",
                 leader=False)
    if labels is not None:
        path_nodes = list(dict.fromkeys(nodes.tolist()))
        at = proj(trace.vectors[path_nodes])
        place_labels(bx, at[:, 0], at[:, 1], [str(labels[node]) for node in path_nodes], colors="black",
                     avoid=[(qxy[:, 0], qxy[:, 1]), (axy[:, 0], axy[:, 1]), *_arrow_points(pxy)])
    return fig


def _plot_distance_per_step(cx: Any, trace: HnswTrace, layer_color: Any) -> None:
    """The distance from the query to the node the search stands on, step by step, coloured by layer."""
    path = trace.path
    steps = np.arange(len(path))
    dist = path["distance"].to_numpy(dtype=float)
    layers = path["layer"].to_numpy()
    cx.plot(steps, dist, color="0.5", lw=1, zorder=1)
    cx.scatter(steps, dist, s=30, c=[layer_color(v) for v in layers], edgecolors="black", linewidths=0.4, zorder=2)
    if len(trace.true_distances):
        cx.axhline(float(trace.true_distances[0]), color="green", ls="--", lw=1)
    cx.set_xlabel("step along the path")
    cx.set_ylabel("distance to the query" + (" (squared L2)" if trace.metric == "L2" else ""))
    cx.set_title("Distance to the query, step by step\n(dashed: the true nearest neighbour)", fontsize=10)
    cx.grid(True, alpha=0.3)


def _arrow_points(pxy: np.ndarray, per_hop: int = 6) -> list[tuple[np.ndarray, np.ndarray]]:
    """Points along each hop of the drawn path, for labels to keep clear of the arrows."""
    if len(pxy) < 2:
        return []
    t = np.linspace(0.15, 0.85, per_hop)[:, None, None]
    along = (pxy[:-1][None] * (1 - t) + pxy[1:][None] * t).reshape(-1, 2)
    return [(along[:, 0], along[:, 1])]
