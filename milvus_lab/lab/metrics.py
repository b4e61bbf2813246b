"""Latency percentiles, confidence bounds, ties and Pareto frontiers: short NumPy / pandas functions.

Recall itself is computed by :mod:`milvus_lab.numerics` (one tie rule for the whole package); the two
functions here only pass a :class:`~milvus_lab.lab.Dataset`'s base, queries and ground truth to it.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import numerics

if TYPE_CHECKING:
    import pandas as pd

    from .datasets import Dataset

#: normal quantile of a two-sided 95 % interval (1.95996...)
Z_95 = NormalDist().inv_cdf(0.975)


def recall_per_query(found: Any, dataset: Dataset, k: int) -> np.ndarray:
    """k-recall@k of each of ``dataset``'s queries (:func:`milvus_lab.numerics.recall_per_query`).

    When the base is memory-mapped from a file, the rows the tie rule may need (returned and true ids) are
    read into a compact array first, so checking recall does not map the file back into memory."""
    truth = dataset.ground_truth(k)
    if not dataset.file_backed:
        return numerics.recall_per_query(found, truth, k, base=dataset.base, queries=dataset.queries,
                                         metric=dataset.metric)
    found = np.asarray(found, dtype=np.int64)[:, :k]
    needed = np.unique(np.concatenate([found[found >= 0], truth.ravel()]))
    compact_found = np.where(found >= 0, np.searchsorted(needed, np.maximum(found, 0)), -1)
    return numerics.recall_per_query(compact_found, np.searchsorted(needed, truth), k, base=dataset.rows(needed),
                                     queries=dataset.queries, metric=dataset.metric)


def recall_at_k(found: Any, dataset: Dataset, k: int) -> float:
    """k-recall@k averaged over ``dataset``'s queries."""
    return float(recall_per_query(found, dataset, k).mean())


def recall_bounds(per_query: Any, z: float = Z_95) -> tuple[float, float]:
    """A two-sided 95 % confidence interval (lower, upper) of the mean recall from per-query recalls.

    Each query's recall is a share of k trials, so the mean is a binomial-like proportion; the interval is the
    Wilson score interval on the number of queries, widened to the normal interval of the mean of the
    per-query recalls when that is wider (neighbours of one query are not independent trials). Its coverage
    is checked by simulation in the tests."""
    r = np.asarray(per_query, dtype=np.float64)
    n = len(r)
    if n == 0:
        return float("nan"), float("nan")
    p = float(r.mean())
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    sem = z * float(r.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    low = min(centre - half, p - sem)
    high = max(centre + half, p + sem)
    return max(0.0, low), min(1.0, high)


def latency_percentiles(seconds: Any) -> dict[str, float]:
    """p50 / p95 / p99 of single-query latencies, in milliseconds (linear interpolation)."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    if ms.size == 0:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}


def tied_with_best(qps: Sequence[float], lo: Sequence[float], hi: Sequence[float]) -> list[int]:
    """Positions of the settings that tie with the fastest (by median QPS): their QPS interval reaches the
    fastest one's lowest round. One position means a clear winner."""
    qps_a = np.asarray(qps, dtype=np.float64)
    if qps_a.size == 0 or not np.isfinite(qps_a).any():
        return []
    best = int(np.nanargmax(qps_a))
    lo_a = np.asarray(lo, dtype=np.float64)
    hi_a = np.asarray(hi, dtype=np.float64)
    floor = lo_a[best] if np.isfinite(lo_a[best]) else qps_a[best]
    top = np.where(np.isfinite(hi_a), hi_a, qps_a)
    tied = [i for i in range(len(qps_a)) if i != best and np.isfinite(qps_a[i]) and top[i] >= floor]
    return [best, *sorted(tied, key=lambda i: -qps_a[i])]


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
