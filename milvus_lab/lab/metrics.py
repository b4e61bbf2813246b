"""Recall, latency percentiles and Pareto frontiers: short NumPy / pandas functions.

Recall is **k-recall@k**: for each query, the fraction of its ``k`` exact nearest neighbours found among
the ``k`` results returned, averaged over the queries. As in ann-benchmarks, a returned row whose exact
distance ties the k-th true neighbour's counts as found (duplicates of a neighbour are equally right).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from .datasets import Dataset

#: relative tolerance for a tie with the k-th true distance (distances are recomputed exactly in float64)
TIE_RTOL = 1e-9


def recall_per_query(found: Any, dataset: Dataset, k: int) -> np.ndarray:
    """k-recall@k of each query: |returned top-k ∩ exact top-k| / k, ties at the k-th distance counted."""
    from .datasets import exact_distances

    found = np.asarray(found, dtype=np.int64)
    if found.ndim != 2 or found.shape[0] != dataset.nq or found.shape[1] < k:
        raise ValueError(f"found ids must have shape (nq={dataset.nq}, >= k={k}); got {found.shape}")
    found = found[:, :k]
    truth = dataset.ground_truth(k)
    valid = found >= 0
    in_truth = np.zeros(found.shape, dtype=bool)
    for j in range(k):  # k passes over nq x k: no nq x k x k temporary
        in_truth |= found == truth[:, j:j + 1]
    in_truth &= valid
    others = valid & ~in_truth
    hits = in_truth.sum(1)
    if others.any():
        rows = np.flatnonzero(others.any(1))
        dist = exact_distances(dataset.base, dataset.queries[rows], np.where(others[rows], found[rows], -1),
                               dataset.metric)
        kth = dataset.kth_distance(k)[rows][:, None]
        tol = TIE_RTOL * np.maximum(np.abs(kth), 1.0)
        ties = (dist >= kth - tol) if dataset.metric == "IP" else (dist <= kth + tol)
        hits[rows] += (ties & others[rows]).sum(1)
    return np.minimum(hits, k) / k


def recall_at_k(found: Any, dataset: Dataset, k: int) -> float:
    """k-recall@k averaged over the dataset's queries (see :func:`recall_per_query`)."""
    return float(recall_per_query(found, dataset, k).mean())


def latency_percentiles(seconds: Any) -> dict[str, float]:
    """p50 / p95 / p99 of single-query latencies, in milliseconds (linear interpolation)."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    if ms.size == 0:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}


def pareto_mask(x: Any, y: Any, *, x_higher: bool = True, y_higher: bool = True) -> np.ndarray:
    """True for points no other point dominates (at least as good in both, better in one). NaN: False."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if not x_higher:
        x = -x
    if not y_higher:
        y = -y
    ok = np.isfinite(x) & np.isfinite(y)
    xs, ys = x[ok], y[ok]
    ge = (xs[None, :] >= xs[:, None]) & (ys[None, :] >= ys[:, None])
    gt = (xs[None, :] > xs[:, None]) | (ys[None, :] > ys[:, None])
    dominated = (ge & gt).any(axis=1)
    out = np.zeros(len(x), dtype=bool)
    out[np.flatnonzero(ok)] = ~dominated
    return out


def pareto_frontier(results: pd.DataFrame, x: str = "recall", y: str = "qps", *, by: str | None = "index_type",
                    x_higher: bool = True, y_higher: bool = True) -> pd.Series:
    """Boolean Series: is each row on its group's Pareto frontier of (``x``, ``y``)?

    Default: recall and QPS, both higher is better, one frontier per index type (``by=None``: one overall).
    Use ``y="p99_ms", y_higher=False`` for the latency frontier.
    """
    import pandas as pd

    out = pd.Series(False, index=results.index, name="pareto")
    groups = [(None, results)] if by is None else results.groupby(by, sort=False)
    for _, group in groups:
        out.loc[group.index] = pareto_mask(group[x], group[y], x_higher=x_higher, y_higher=y_higher)
    return out
