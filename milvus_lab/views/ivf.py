"""IVF opened up: which cells a query probes, and how recall grows with ``nprobe``.

An IVF index splits the vectors into ``nlist`` k-means cells. A search compares the query with the
``nlist`` centroids, scans every vector of the ``nprobe`` closest cells, and returns the best ``k`` of
those candidates. A true neighbour is missed exactly when its cell was not probed.

::

    from milvus_lab.datasets import load_glove
    from milvus_lab import views
    vectors, words = load_glove(10_000)
    probe = views.ivf_probe(vectors, vectors[words.index("king")], nlist=128, nprobe=4)
    views.plot_ivf_probe(probe, labels=words)
    curve = views.ivf_recall_curve(vectors, vectors[:200], nlist=128)
    views.plot_ivf_recall_curve(curve)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from .. import spec
from ..numerics import as_vectors, exact_knn, recall_per_query
from ..errors import ParamError
from ..figures import place_labels
from ._common import (
    as_query,
    background_rows,
    build_ivf,
    centroids,
    check_k,
    check_metric,
    check_trainable,
    fit_projection,
    inverted_lists,
    label_points,
    legend_below,
    new_figure,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

INDEX_TYPE = "IVF_FLAT"


@dataclass(frozen=True, eq=False)
class IvfProbe:
    """What one IVF_FLAT search did: the cells it probed (closest centroid first), what it scanned, found
    and missed. Row ids are positions in ``vectors``."""

    vectors: np.ndarray = field(repr=False)
    query: np.ndarray = field(repr=False)
    metric: str
    nlist: int
    nprobe: int
    k: int
    #: (nlist, dim) k-means centroids, one per cell
    centroids: np.ndarray = field(repr=False)
    #: (n,) the cell each vector is stored in
    assignment: np.ndarray = field(repr=False)
    #: (nprobe,) cells probed, in probe order (closest centroid first)
    probed: np.ndarray
    #: (nprobe,) query-to-centroid distance of each probed cell (squared L2, or inner product for IP)
    probe_distances: np.ndarray = field(repr=False)
    #: row ids of every vector scanned (all rows of the probed cells, in probe order)
    candidates: np.ndarray = field(repr=False)
    #: the index's answer: k row ids and distances, best first
    result_ids: np.ndarray
    result_distances: np.ndarray = field(repr=False)
    #: the exact answer (brute force)
    true_ids: np.ndarray
    true_distances: np.ndarray = field(repr=False)

    @property
    def cell_sizes(self) -> np.ndarray:
        """Vectors stored in each of the nlist cells."""
        return np.bincount(self.assignment, minlength=self.nlist)

    @property
    def n_candidates(self) -> int:
        """Vectors whose distance the search computed (the sizes of the probed cells, summed)."""
        return len(self.candidates)

    @property
    def true_cells(self) -> np.ndarray:
        """The cell of each true neighbour."""
        return self.assignment[self.true_ids]

    @property
    def true_probed(self) -> np.ndarray:
        """For each true neighbour: was its cell probed? (it can only be found if so)"""
        return np.isin(self.true_cells, self.probed)

    @property
    def true_found(self) -> np.ndarray:
        """For each true neighbour: is it among the returned ids?"""
        return np.isin(self.true_ids, self.result_ids)

    @property
    def recall(self) -> float:
        """k-recall@k of this query (a returned duplicate of a neighbour, at the same distance, counts)."""
        return float(recall_per_query(self.result_ids[None, :], self.true_ids[None, :], self.k, base=self.vectors,
                                      queries=self.query[None, :], metric=self.metric)[0])

    def cells(self) -> pd.DataFrame:
        """One row per probed cell, in probe order: its size and the true neighbours it holds."""
        import pandas as pd

        sizes = self.cell_sizes
        cells = self.true_cells
        return pd.DataFrame({
            "probe_rank": np.arange(1, self.nprobe + 1),
            "cell": self.probed,
            "centroid_distance": self.probe_distances,
            "size": sizes[self.probed],
            "true_neighbours": [int((cells == c).sum()) for c in self.probed],
        })

    def summary(self) -> str:
        n = len(self.vectors)
        missed = int((~self.true_probed).sum())
        return (f"IVF_FLAT nlist={self.nlist}, nprobe={self.nprobe}: probed {len(self.probed)} of {self.nlist} "
                f"cells, scanned {self.n_candidates:,} of {n:,} vectors ({self.n_candidates / n:.1%}); "
                f"recall@{self.k} = {self.recall:.2f}"
                + (f" ({missed} true neighbour(s) sit in cells not probed)" if missed else ""))


def _validate(vectors: Any, nlist: Any, nprobes: Sequence[Any], k: Any, metric: Any
              ) -> tuple[np.ndarray, str, dict[str, int], list[int], int]:
    x = as_vectors(vectors)
    metric = check_metric(metric)
    index_spec, build = spec.validate_build(INDEX_TYPE, {"nlist": nlist}, dim=x.shape[1], metric=metric)
    k = check_k(k, len(x))
    probes = [spec.validate_search(INDEX_TYPE, {"nprobe": p}, top_k=k, build_params=build)["nprobe"]
              for p in nprobes]
    check_trainable(index_spec.name, build, len(x))
    return x, metric, build, probes, k


def ivf_probe(vectors: Any, query: Any, nlist: int, nprobe: int, k: int = 10, *, metric: str = "L2"
              ) -> IvfProbe:
    """Build IVF_FLAT (``nlist`` cells) on ``vectors`` and record one search of ``query`` with ``nprobe``.

    The student sees which cells are probed, how many vectors that scans, and which true neighbours are
    missed because their cell was not probed. Parameters are checked by the spec (``nprobe <= nlist``).
    """
    x, metric, build, (nprobe,), k = _validate(vectors, nlist, [nprobe], k, metric)
    q = as_query(query, x.shape[1])
    index = build_ivf(INDEX_TYPE, build, x, metric)
    probe_d, probed = index.quantizer.search(q, nprobe)
    assignment, cell_ids = inverted_lists(index)
    scanned = np.concatenate([cell_ids[c] for c in probed[0]]) if nprobe else np.empty(0, np.int64)
    dist, ids = index.search(q, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
    true_i, true_d = exact_knn(x, q, k, metric)
    return IvfProbe(
        vectors=x, query=q[0], metric=metric, nlist=build["nlist"], nprobe=nprobe, k=k,
        centroids=centroids(index), assignment=assignment, probed=probed[0].astype(np.int64),
        probe_distances=probe_d[0], candidates=scanned, result_ids=ids[0], result_distances=dist[0],
        true_ids=true_i[0], true_distances=true_d[0])


def ivf_recall_curve(vectors: Any, queries: Any, nlist: int, nprobes: Sequence[int] | None = None, k: int = 10,
                     *, metric: str = "L2") -> pd.DataFrame:
    """Recall and vectors scanned per query for each ``nprobe`` (default: 1, 2, 4, ... nlist), one build.

    The student sees recall climb towards 1.0 while the share of the database scanned grows; at
    ``nprobe = nlist`` IVF_FLAT scans everything and is exact.
    """
    import pandas as pd

    if nprobes is None:
        nprobes = spec.sweep_values(spec.get_index(INDEX_TYPE).search["nprobe"],
                                    {"nlist": nlist if isinstance(nlist, int) else None})
    if not list(nprobes):
        raise ParamError("nprobes must list at least one value (e.g. [1, 2, 4, 8])")
    x, metric, build, probes, k = _validate(vectors, nlist, list(nprobes), k, metric)
    qs = as_vectors(queries, "queries", x.shape[1])
    index = build_ivf(INDEX_TYPE, build, x, metric)
    _, cell_ids = inverted_lists(index)
    sizes = np.array([len(c) for c in cell_ids], np.int64)
    true_i, _ = exact_knn(x, qs, k, metric)
    rows = []
    for nprobe in probes:
        _, probed = index.quantizer.search(qs, nprobe)
        _, ids = index.search(qs, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
        scanned = sizes[probed].sum(axis=1)
        recall = recall_per_query(ids, true_i, k, base=x, queries=qs, metric=metric).mean()
        rows.append({"nprobe": nprobe, "recall": recall,
                     "candidates_scanned": scanned.mean(), "scanned_fraction": scanned.mean() / len(x),
                     "nlist": build["nlist"], "k": k, "n": len(x), "nq": len(qs), "metric": metric})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------
def plot_ivf_probe(probe: IvfProbe, labels: Sequence[str] | None = None) -> Figure:
    """Left: vectors and centroids on the two principal axes of the probed cells (and of the cells holding
    missed neighbours, in red), each probed cell coloured by its probe order, the query and its true
    neighbours marked (a missed neighbour is a red cross).
    Right: the size of each probed cell and the true neighbours it holds. ``labels`` (e.g. GloVe words)
    name the query's neighbours. Cells are regions in all dimensions, so in 2-D they overlap."""
    from matplotlib import colormaps

    fig, (ax, bx) = new_figure(2, figsize=(13, 5.8), width_ratios=[3, 2])
    in_probed = np.isin(probe.assignment, probe.probed)
    missed_cells = np.setdiff1d(probe.true_cells, probe.probed)
    in_missed = np.isin(probe.assignment, missed_cells)
    proj = fit_projection(np.vstack([probe.vectors[in_probed | in_missed], probe.query[None, :]]),
                          "the coloured cells")
    cmap = colormaps["viridis"]
    colors = [cmap(i / max(1, probe.nprobe - 1) * 0.9) for i in range(probe.nprobe)]
    bg = background_rows(len(probe.vectors), np.flatnonzero(in_probed | in_missed))
    xy = proj(probe.vectors[bg])
    ax.scatter(xy[:, 0], xy[:, 1], s=3, color="0.82", label="vectors in other cells", rasterized=True)
    if len(missed_cells):
        xy = proj(probe.vectors[in_missed])
        ax.scatter(xy[:, 0], xy[:, 1], s=5, color="salmon", alpha=0.5, rasterized=True,
                   label="vectors in cells not probed that hold true neighbours")
    for rank, cell in enumerate(probe.probed):
        rows = np.flatnonzero(probe.assignment == cell)
        xy = proj(probe.vectors[rows])
        ax.scatter(xy[:, 0], xy[:, 1], s=6, color=colors[rank], alpha=0.6, rasterized=True,
                   label="vectors in probed cells (colour = probe order)" if rank == 0 else None)
    cxy = proj(probe.centroids)
    others = np.setdiff1d(np.arange(probe.nlist), probe.probed)
    ax.scatter(cxy[others, 0], cxy[others, 1], marker="x", s=18, color="0.45", label="centroids (not probed)")
    ax.scatter(cxy[probe.probed, 0], cxy[probe.probed, 1], marker="X", s=90, c=colors, edgecolors="black",
               label="probed centroids (numbered)")
    txy = proj(probe.vectors[probe.true_ids])
    hit = probe.true_probed
    ax.scatter(txy[hit, 0], txy[hit, 1], s=60, facecolors="none", edgecolors="green", linewidths=1.6,
               label="true neighbours in probed cells")
    if (~hit).any():
        ax.scatter(txy[~hit, 0], txy[~hit, 1], s=70, marker="x", color="red", linewidths=2,
                   label="true neighbours missed (cell not probed)")
    qxy = proj(probe.query)
    ax.scatter(qxy[:, 0], qxy[:, 1], marker="*", s=260, color="red", edgecolors="black", zorder=5, label="query")
    proj.label_axes(ax)
    ax.set_title("Cells on the two principal axes")
    legend_below(fig, ax)

    table = probe.cells()
    positions = np.arange(len(table))
    bx.bar(positions, table["size"], color=colors, edgecolor="black", linewidth=0.4)
    bx.set_xlabel("probed cells, in probe order (closest centroid first)")
    bx.set_ylabel("vectors in the cell (all are scanned)")
    bx.set_xticks(positions, [f"{r}\n#{c}" for r, c in zip(table["probe_rank"], table["cell"])]
                  if len(table) <= 16 else [str(r) for r in table["probe_rank"]], fontsize=7)
    for pos, (size, found) in enumerate(zip(table["size"], table["true_neighbours"])):
        if found:
            bx.annotate(f"{found} nn", (pos, size), textcoords="offset points", xytext=(0, 3), ha="center",
                        fontsize=7, color="green")
    missed = int((~hit).sum())
    bx.set_title(f"Scanned {probe.n_candidates:,} of {len(probe.vectors):,} vectors; "
                 f"{probe.k - missed} of {probe.k} true neighbours in probed cells", fontsize=9)
    bx.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"IVF_FLAT nlist={probe.nlist}, nprobe={probe.nprobe}: which cells the query probes "
                 f"(recall@{probe.k} = {probe.recall:.2f})")
    # last: labels are placed in the final layout, centroid numbers first
    place_labels(ax, cxy[probe.probed[:20], 0], cxy[probe.probed[:20], 1],
                 [str(rank + 1) for rank in range(min(20, len(probe.probed)))], colors="black", fontsize=8)
    if labels is not None:
        place_labels(ax, txy[:10, 0], txy[:10, 1], [str(labels[row]) for row in probe.true_ids[:10]],
                     avoid=[(qxy[:, 0], qxy[:, 1]), (cxy[probe.probed, 0], cxy[probe.probed, 1])])
    return fig


def plot_ivf_recall_curve(curve: pd.DataFrame) -> Figure:
    """Recall (top) and share of the database scanned (bottom) against nprobe, log2 scale, one shared x
    axis (two panels, not twin axes: the curves' crossing would mean nothing); points name their nprobe."""
    fig, (ax, bx) = new_figure(1, figsize=(8, 6.5), nrows=2, sharex=True)
    k = int(curve["k"].iloc[0])
    ax.plot(curve["nprobe"], curve["recall"], marker="o", color="tab:blue")
    ax.set_ylabel(f"recall ({k}-recall@{k})")
    ax.set_ylim(0, 1.08)
    bx.plot(curve["nprobe"], 100 * curve["scanned_fraction"], marker="s", color="tab:orange")
    bx.set_ylabel("vectors scanned per query\n(% of the database)")
    bx.set_ylim(0, 108)
    bx.set_xscale("log", base=2)
    bx.set_xlabel("nprobe (cells probed per query, log scale)")
    bx.set_xticks(curve["nprobe"], [str(v) for v in curve["nprobe"]])
    bx.minorticks_off()
    for axis in (ax, bx):
        axis.grid(True, which="both", alpha=0.3)
    row = curve.iloc[0]
    ax.set_title(f"IVF_FLAT nlist={int(row['nlist'])}: recall grows with nprobe, and so does the work\n"
                 f"n={int(row['n']):,}, {int(row['nq']):,} queries, {row['metric']}")
    label_points(ax, curve["nprobe"], curve["recall"], "nprobe")
    label_points(bx, curve["nprobe"], 100 * curve["scanned_fraction"], "nprobe")
    return fig
