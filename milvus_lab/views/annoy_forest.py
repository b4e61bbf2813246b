"""ANNOY opened up: how ``search_k`` trades nodes inspected for recall.

ANNOY builds ``n_trees`` random-projection trees. A query walks all trees at once from a priority
queue, collecting the vectors in the leaves it reaches until it holds ``search_k`` of them (the
"nodes inspected"; ``search_k = -1`` means ``n_trees * top_k``), computes the distance to each distinct
one, and returns the best ``top_k``. A larger ``search_k`` continues the same walk, so it can only add
candidates: recall rises, and so does the work.

::

    from milvus_lab.datasets import load_glove
    from milvus_lab import views
    vectors, _ = load_glove(10_000)
    curve = views.annoy_search_k_curve(vectors, vectors[:200], n_trees=16)
    views.plot_annoy_search_k_curve(curve)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from annoy import AnnoyIndex

from .. import spec
from ..errors import ParamError
from ..numerics import as_vectors, exact_knn, recall_per_query
from ._common import check_k, check_metric, label_points, new_figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

INDEX_TYPE = "ANNOY"
_ANNOY_METRIC = {"L2": "euclidean", "IP": "dot"}


def build_annoy(vectors: np.ndarray, n_trees: int, metric: str, seed: int = 0) -> AnnoyIndex:
    """An annoy forest of ``n_trees`` trees over ``vectors`` (one build thread, so a seed repeats it)."""
    index = AnnoyIndex(vectors.shape[1], _ANNOY_METRIC[metric])
    index.set_seed(seed)
    for row, vector in enumerate(vectors):
        index.add_item(row, vector)
    index.build(n_trees, n_jobs=1)
    return index


def annoy_search_k_curve(vectors: Any, queries: Any, n_trees: int, search_ks: Sequence[int] | None = None,
                         k: int = 10, *, metric: str = "L2", seed: int = 0) -> pd.DataFrame:
    """Recall, distinct candidates and mean latency per query for each ``search_k``, one forest.

    Default ``search_ks``: -1 (annoy's default, ``n_trees * k``) and k, 2k, 4k, ... up to 512k. Columns:
    ``search_k`` as given, ``search_k_used`` (-1 resolved), ``recall``, ``candidates`` (distinct vectors
    whose distance was computed, mean per query), ``candidates_fraction`` (of the database),
    ``latency_ms`` (mean single query), plus ``n_trees``, ``k``, ``n``, ``nq``. The student sees recall
    rise with the nodes inspected. Parameters are checked by the spec (``search_k = -1 or >= top_k``).
    """
    import pandas as pd

    x = as_vectors(vectors)
    metric = check_metric(metric)
    _, build = spec.validate_build(INDEX_TYPE, {"n_trees": n_trees}, dim=x.shape[1], metric=metric)
    k = check_k(k, len(x))
    number = spec.as_int(seed)
    if number is None or not 0 <= number <= spec.C_INT_MAX:
        raise ParamError(f"seed must be an int in [0, {spec.C_INT_MAX}] (annoy keeps its seed in a C int); got "
                         f"{spec.show_value(seed)}")
    seed = number
    param = spec.get_index(INDEX_TYPE).search["search_k"]
    if search_ks is None:
        search_ks = [-1] + spec.sweep_values(param, spec.search_context(k, build), points=10)
    search_ks = list(search_ks)
    if not search_ks:
        raise ParamError("search_ks must list at least one value (e.g. [-1, 10, 100, 1000])")
    search_ks = [spec.validate_search(INDEX_TYPE, {"search_k": s}, top_k=k, build_params=build)["search_k"]
                 for s in search_ks]
    qs = as_vectors(queries, "queries", x.shape[1])
    index = build_annoy(x, build["n_trees"], metric, seed)
    true_i, _ = exact_knn(x, qs, k, metric)
    n = len(x)
    rows = []
    for search_k in search_ks:
        used = build["n_trees"] * k if search_k == -1 else search_k
        found = np.full((len(qs), k), -1, np.int64)
        seconds = np.empty(len(qs))
        candidates = np.empty(len(qs))
        for i, q in enumerate(qs):
            start = time.perf_counter()
            ids = index.get_nns_by_vector(q, k, search_k=used)
            seconds[i] = time.perf_counter() - start
            found[i, : len(ids)] = ids
            # asking for every vector returns every distinct candidate the same walk collected
            candidates[i] = len(index.get_nns_by_vector(q, n, search_k=used))
        rows.append({"search_k": search_k, "search_k_used": used,
                     "recall": recall_per_query(found, true_i, k, base=x, queries=qs, metric=metric).mean(),
                     "candidates": candidates.mean(), "candidates_fraction": candidates.mean() / n,
                     "latency_ms": 1e3 * seconds.mean(), "n_trees": build["n_trees"], "k": k, "n": n,
                     "nq": len(qs), "metric": metric})
    return pd.DataFrame(rows)


def plot_annoy_search_k_curve(curve: pd.DataFrame) -> Figure:
    """Recall (top) and distinct candidates per query (bottom) against search_k, log scale, one shared x
    axis (two panels, not twin axes); points name their search_k; the dotted line is annoy's default
    search_k = n_trees * top_k."""
    from matplotlib.ticker import FuncFormatter

    fig, (ax, bx) = new_figure(1, figsize=(8, 6.5), nrows=2, sharex=True)
    curve = curve.sort_values("search_k_used")
    k = int(curve["k"].iloc[0])
    row = curve.iloc[0]
    default = int(row["n_trees"]) * k
    ax.plot(curve["search_k_used"], curve["recall"], marker="o", color="tab:blue")
    ax.set_ylabel(f"recall ({k}-recall@{k})")
    ax.set_ylim(0, 1.08)
    bx.plot(curve["search_k_used"], curve["candidates"], marker="s", color="tab:orange")
    bx.set_ylabel("distinct candidates per query\n(distances computed)")
    bx.set_ylim(bottom=0)
    bx.set_xscale("log")
    bx.set_xlabel("search_k (tree nodes inspected per query, log scale)")
    bx.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    for axis in (ax, bx):
        axis.grid(True, which="both", alpha=0.3)
        axis.axvline(default, color="0.4", linestyle=":", linewidth=1.2,
                     label=f"search_k=-1 (= n_trees*top_k = {default})")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize="small")
    ax.set_title(f"ANNOY n_trees={int(row['n_trees'])}: search_k trades nodes inspected for recall\n"
                 f"n={int(row['n']):,}, {int(row['nq']):,} queries, {row['metric']}")
    label_points(ax, curve["search_k_used"], curve["recall"], "search_k")
    label_points(bx, curve["search_k_used"], curve["candidates"], "search_k")
    return fig
