"""Exact neighbours, recall and vector coercion: NumPy in, NumPy out, one rule each.

Everything in milvus_lab that shows a recall (the lab, the forms, the teaching views, the demo) calls
:func:`recall_per_query` here, so the same result gets the same recall everywhere. Exact k-NN uses the
backends' brute-force kernel (faiss for float vectors, vectorised popcounts for binary ones).

The tie rule: a returned row counts as found when it is one of the exact top ``k`` rows, or when its
exact distance (recomputed in float64) ties the ``k``-th true neighbour's within ``TIE_RTOL`` (relative,
at least absolute ``TIE_RTOL``): an equally distant duplicate of a neighbour is equally right. A row
returned twice counts once. When fewer than ``k`` true neighbours exist (``-1`` padding in the truth:
k above the rows, or SUBSTRUCTURE / SUPERSTRUCTURE with few hits), recall is the share of the true
neighbours that exist, and 1.0 when none exist. Binary metrics use the backends' exact popcount kernel
(their distances are exact ratios of integers, so equal distances compare equal).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import spec
from .errors import IllegalDimensionError, IllegalRecordError
from .units import MIB

#: relative tolerance of a tie with the k-th true distance (float64 recomputation of float32 data)
TIE_RTOL = 1e-6
#: bytes of float64 temporaries one gather of rows may allocate
_GATHER_BYTES = 64 * MIB
#: bytes of one block of the exact-search distance matrix
_KNN_BLOCK_BYTES = 256 * MIB


def as_vectors(data: Any, what: str = "vectors", dim: int | None = None, *, binary: bool = False) -> np.ndarray:
    """``data`` as a C-contiguous (rows, dim) array: float32, or uint8 bytes when ``binary``.

    Refuses what cannot be read as numbers, ragged rows, empty arrays, complex values, NaN / inf and a
    dimension other than ``dim`` (for binary data, ``dim`` counts bits: rows hold ``dim / 8`` bytes).
    A single vector of length ``dim`` is taken as one row.
    """
    try:
        array = np.asarray(data)
    except (TypeError, ValueError, OverflowError) as exc:
        raise IllegalRecordError(f"{what}: cannot read as an array of numbers ({exc}); give a 2-D array "
                                 f"of shape (rows, dim)") from None
    if array.dtype == object:
        raise IllegalRecordError(f"{what}: rows of different lengths or non-numeric values (dtype object); "
                                 f"give a 2-D array of shape (rows, dim)")
    # the kind of values first: fixing the shape of an array of text would only lead to this next
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
        raise IllegalRecordError(f"{what} must hold real numbers; got dtype {array.dtype}")
    width = None if dim is None else (dim // 8 if binary else dim)
    if array.ndim == 1 and array.size and width is not None and array.shape[0] == width:
        array = array[None, :]
    if array.ndim != 2:
        hint = " (one vector? use x[None, :])" if array.ndim == 1 else ""
        raise IllegalRecordError(f"{what} must be a 2-D array of shape (rows, dim); got shape {array.shape}{hint}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise IllegalRecordError(f"{what} is empty: shape {array.shape}; give at least one row of dim >= 1")
    if width is not None and array.shape[1] != width:
        unit = f" bytes ({dim} bits)" if binary else ""
        raise IllegalDimensionError(f"{what} have {array.shape[1]} columns but {width}{unit} are expected; "
                                    f"both must match")
    if binary:
        if not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() > 255:
            raise IllegalRecordError(f"{what}: binary vectors are bytes (uint8 values 0..255); got dtype "
                                     f"{array.dtype}")
        return np.ascontiguousarray(array, dtype=np.uint8)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(out)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        raise IllegalRecordError(
            f"{what}: {len(bad_rows)} row(s) hold NaN or inf, or values too large for float32 (first: row "
            f"{int(bad_rows[0])}); drop or repair them (e.g. x[np.isfinite(x).all(axis=1)])")
    return out


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """A float32 copy of ``x`` with every row scaled to unit length (a zero row stays zero): the rows COSINE
    (``spec.NORMALISED_METRICS``) is the inner product of."""
    out = np.array(x, dtype=np.float32, order="C", copy=True)
    norms = np.linalg.norm(out.astype(np.float64), axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0, casting="unsafe")
    return out


def exact_knn(base: np.ndarray, queries: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` rows of ``base`` for each query: (ids int64 nq x k, distances float32 nq x k).

    Squared L2 and binary distances ascend, IP and COSINE descend; ``k`` larger than the rows pads with -1 / ±inf.
    Large problems are cut into query blocks so the distance matrix stays bounded.
    """
    from .backends import exact_search  # the one brute-force kernel (faiss / binary popcounts)

    if metric in spec.NORMALISED_METRICS:
        base, queries, metric = normalise_rows(base), normalise_rows(queries), spec.library_metric(metric)

    n = max(1, len(base))
    step = max(1, _KNN_BLOCK_BYTES // (4 * n))
    ids = np.empty((len(queries), k), dtype=np.int64)
    dist = np.empty((len(queries), k), dtype=np.float32)
    for start in range(0, len(queries), step):
        d, i = exact_search(base, queries[start:start + step], k, metric)
        ids[start:start + step] = i
        dist[start:start + step] = d
    return ids, dist


def pair_distances(base: np.ndarray, queries: np.ndarray, ids: Any, metric: str) -> np.ndarray:
    """Exact float64 distance of each query to each of its ``ids`` (nq x c); -1 ids give NaN.

    Float metrics are computed per pair in float64, so identical vectors give identical values; binary
    metrics use the backends' exact kernel.
    """
    ids = np.asarray(ids, dtype=np.int64)
    nq, c = ids.shape
    out = np.full((nq, c), np.nan)
    if c == 0 or nq == 0:
        return out
    if spec.is_binary_metric(metric):
        from .backends.binary import pair_distances as binary_pairs

        valid = ids >= 0
        step = max(1, _GATHER_BYTES // max(1, c * base.shape[1]))
        for start in range(0, nq, step):
            block = ids[start:start + step]
            d = binary_pairs(base, queries[start:start + step], np.where(block >= 0, block, 0), metric)
            out[start:start + step] = np.where(valid[start:start + step], d, np.nan)
        return out
    step = max(1, _GATHER_BYTES // max(1, c * base.shape[1] * 8))
    for start in range(0, nq, step):
        block = ids[start:start + step]
        valid = block >= 0
        rows = base[np.where(valid, block, 0)].astype(np.float64)
        q = queries[start:start + step, None, :].astype(np.float64)
        if metric in spec.NORMALISED_METRICS:  # the inner product of the rows at unit length
            rows = rows / np.where((n := np.linalg.norm(rows, axis=-1, keepdims=True)) > 0, n, 1.0)
            q = q / np.where((n := np.linalg.norm(q, axis=-1, keepdims=True)) > 0, n, 1.0)
        d = (rows * q).sum(-1) if metric in spec.DESCENDING_METRICS else ((rows - q) ** 2).sum(-1)
        out[start:start + step] = np.where(valid, d, np.nan)
    return out


def recall_per_query(found: Any, truth: Any, k: int, *, base: np.ndarray, queries: np.ndarray,
                     metric: str) -> np.ndarray:
    """k-recall@k of each query: the share of the first ``k`` returned ids that are right (tie rule above).

    ``found``: returned ids (nq x >= k, -1 for none); ``truth``: exact neighbour ids (nq x >= k, best first).
    """
    found = np.asarray(found, dtype=np.int64)
    truth = np.asarray(truth, dtype=np.int64)
    if found.ndim != 2 or truth.ndim != 2 or found.shape[0] != truth.shape[0]:
        raise ValueError(f"found and truth must be 2-D with one row per query; got {found.shape} and {truth.shape}")
    if found.shape[1] < k or truth.shape[1] < k:
        raise ValueError(f"found and truth need at least k={k} columns; got {found.shape[1]} and {truth.shape[1]}")
    found, truth = found[:, :k], truth[:, :k]
    valid = (found >= 0) & ~_repeats(found)
    in_truth = np.zeros(found.shape, dtype=bool)
    for j in range(k):  # k passes over nq x k: no nq x k x k temporary
        in_truth |= (found == truth[:, j:j + 1]) & (truth[:, j:j + 1] >= 0)
    in_truth &= valid
    others = valid & ~in_truth
    hits = in_truth.sum(1)
    exist = (truth >= 0).sum(1)
    rows = np.flatnonzero(others.any(1) & (exist > 0))
    if len(rows):
        last = truth[rows, exist[rows] - 1][:, None]  # the farthest true neighbour that exists
        kth = pair_distances(base, queries[rows], last, metric)
        dist = pair_distances(base, queries[rows], np.where(others[rows], found[rows], -1), metric)
        tol = TIE_RTOL * np.maximum(np.abs(kth), 1.0)
        with np.errstate(invalid="ignore"):
            ties = (dist >= kth - tol) if metric in spec.DESCENDING_METRICS else (dist <= kth + tol)
        hits[rows] += (ties & others[rows]).sum(1)
    return np.where(exist > 0, np.minimum(hits, exist) / np.maximum(exist, 1), 1.0)


def _repeats(ids: np.ndarray) -> np.ndarray:
    """True where an id already appeared earlier in its row."""
    order = np.argsort(ids, axis=1, kind="stable")
    ranked = np.take_along_axis(ids, order, axis=1)
    repeat_sorted = np.zeros(ids.shape, dtype=bool)
    repeat_sorted[:, 1:] = ranked[:, 1:] == ranked[:, :-1]
    out = np.empty_like(repeat_sorted)
    np.put_along_axis(out, order, repeat_sorted, axis=1)
    return out


def recall(found: Any, truth: Any, k: int, *, base: np.ndarray, queries: np.ndarray, metric: str) -> float:
    """Mean k-recall@k over the queries (see :func:`recall_per_query`)."""
    return float(recall_per_query(found, truth, k, base=base, queries=queries, metric=metric).mean())
