"""Shared helpers of the teaching views: input checks, a 2-D projection, IVF builds (exact neighbours, recall
and vector coercion are :mod:`milvus_lab.numerics`'s, as everywhere else).

The views open indexes up, so they call the libraries directly (as the engine's adapters do) and take
every parameter range from :mod:`milvus_lab.spec`, so a wrong value gets the same sentence as in the engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from .. import spec
from ..numerics import as_vectors
from ..backends.ivf import new_ivf_index
from ..errors import BuildIndexError, IllegalDimensionError, IllegalRecordError, IllegalTopKError, ParamError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FAISS_METRIC = {"L2": faiss.METRIC_L2, "IP": faiss.METRIC_INNER_PRODUCT}
#: rows used to fit the 2-D projection (enough for two principal axes, fast on 400k GloVe rows)
PROJECTION_SAMPLE = 20_000
#: background points drawn in a projection plot (the interesting ones are always drawn)
BACKGROUND_POINTS = 4000


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------
def as_query(query: Any, dim: int) -> np.ndarray:
    """One query vector as a (1, dim) float32 array (a 1-D vector or a single row)."""
    shape = np.shape(query)
    if len(shape) == 1 and shape[0] != dim:
        raise IllegalDimensionError(f"query has dimension {shape[0]} but the vectors have dimension {dim}; "
                                    f"both must match")
    q = as_vectors(query, "query", dim)
    if len(q) != 1:
        raise IllegalRecordError(f"query must be one vector of dimension {dim}; got {len(q)} rows "
                                 f"(the curves take many queries; this view traces one)")
    return q


def check_metric(metric: Any) -> str:
    name = spec.normalize_metric(metric)
    if name not in spec.FLOAT_METRICS:
        raise ParamError(f"the teaching views use float vectors; metric must be one of "
                         f"{', '.join(spec.FLOAT_METRICS)}; got {name}")
    return name


def check_k(k: Any, n: int) -> int:
    """``top_k`` by the spec's rule, and not more than the ``n`` vectors there are to find."""
    k = spec.validate_top_k(k)
    if k > n:
        raise IllegalTopKError(f"top_k={k} is larger than the number of vectors ({n}); allowed: "
                               f"1 <= top_k <= {n}")
    return k


def check_trainable(index_type: str, params: Mapping[str, int], n: int) -> None:
    """Refuse a build on fewer rows than the index type needs to train (the engine keeps such data raw);
    the reason is the spec's (:func:`milvus_lab.spec.segment_raw_reason`, with no build threshold)."""
    reason = spec.segment_raw_reason(index_type, params, n, build_threshold=0)
    if reason:
        raise BuildIndexError(f"{index_type}: {reason}; give more vectors or smaller parameters")


@contextmanager
def one_thread() -> Iterator[None]:
    """Run faiss on one OpenMP thread inside the block, in the calling thread only (OpenMP keeps the
    thread count per thread), so a build is repeatable: the same data gives the same graph."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


# --------------------------------------------------------------------------------------------------
# IVF builds (the same index_factory strings as the faiss adapter)
# --------------------------------------------------------------------------------------------------
def build_ivf(index_type: str, params: Mapping[str, int], vectors: np.ndarray, metric: str) -> Any:
    """Train and fill a faiss IVF index of ``index_type`` exactly as the engine's adapter does."""
    index = new_ivf_index(index_type, params, vectors.shape[1], metric)
    index.train(vectors)
    index.add(vectors)
    return index


def inverted_lists(index: Any) -> tuple[np.ndarray, list[np.ndarray]]:
    """(cell of each row, row ids of each cell) read from a faiss IVF index's inverted lists."""
    lists = index.invlists
    cell_ids = []
    for cell in range(index.nlist):
        size = lists.list_size(cell)
        ids = faiss.rev_swig_ptr(lists.get_ids(cell), size).copy() if size else np.empty(0, np.int64)
        cell_ids.append(ids.astype(np.int64))
    assignment = np.full(index.ntotal, -1, np.int64)
    for cell, ids in enumerate(cell_ids):
        assignment[ids] = cell
    return assignment, cell_ids


def centroids(index: Any) -> np.ndarray:
    """The nlist k-means centroids of a faiss IVF index, (nlist, dim) float32."""
    return index.quantizer.reconstruct_n(0, index.nlist)


# --------------------------------------------------------------------------------------------------
# 2-D projection and figures
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Projection:
    """The two principal axes of a set of vectors (PCA by NumPy SVD), to draw d-dimensional data in 2-D."""

    mean: np.ndarray
    axes: np.ndarray
    explained: np.ndarray
    #: what the axes were fitted on, for the axis labels
    fitted_on: str = "all vectors"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(x) - self.mean) @ self.axes.T

    def label_axes(self, ax: Axes) -> None:
        for axis, (name, share) in zip((ax.xaxis, ax.yaxis), enumerate(self.explained, start=1)):
            axis.set_label_text(f"principal axis {name} ({share:.0%} of the variance of {self.fitted_on})")


def fit_projection(vectors: np.ndarray, fitted_on: str = "all vectors", seed: int = 0) -> Projection:
    """PCA axes of ``vectors`` (a random sample of PROJECTION_SAMPLE rows when there are more)."""
    sample = vectors
    if len(vectors) > PROJECTION_SAMPLE:
        rows = np.random.default_rng(seed).choice(len(vectors), PROJECTION_SAMPLE, replace=False)
        sample = vectors[rows]
    mean = sample.mean(axis=0)
    _, s, vt = np.linalg.svd(sample - mean, full_matrices=False)
    var = s**2
    axes = np.zeros((2, vectors.shape[1]), np.float32)
    axes[: min(2, len(vt))] = vt[:2]
    explained = np.zeros(2)
    explained[: min(2, len(var))] = (var / max(var.sum(), 1e-30))[:2]
    return Projection(mean.astype(np.float32), axes, explained, fitted_on)


def pca_project(vectors: Any, dim: int) -> np.ndarray:
    """``vectors`` projected on their ``dim`` principal axes (float32), e.g. 50-d GloVe to 48-d for IVF_PQ."""
    x = as_vectors(vectors)
    if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= x.shape[1]:
        raise ParamError(f"dim must be an int in [1, {x.shape[1]}] (the vectors' dimension); got {dim!r}")
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return np.ascontiguousarray((x - mean) @ vt[:dim].T, dtype=np.float32)


def background_rows(n: int, keep: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """A sample of at most BACKGROUND_POINTS row ids to draw as context, excluding ``keep``."""
    rows = np.arange(n)
    if keep is not None and len(keep):
        rows = np.setdiff1d(rows, keep)
    if len(rows) > BACKGROUND_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, BACKGROUND_POINTS, replace=False))
    return rows


def new_figure(ncols: int = 1, figsize: tuple[float, float] = (8, 5.5), *, nrows: int = 1, **kw: Any
               ) -> tuple[Figure, Any]:
    """A pyplot-free Figure (shows once in Jupyter, no global state) and its axes."""
    from ..figures import NotebookFigure

    fig = NotebookFigure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, **kw)
    return fig, axes


def label_points(ax: Axes, xs: Any, ys: Any, name: str, fmt: str = "{:g}") -> int:
    """Write ``name=value`` beside each point where it overlaps no other label (call it once the figure's
    layout is final), so a reader sees which setting gave it; returns how many labels found no room."""
    from ..figures import place_labels

    xs, ys = list(xs), list(ys)
    return place_labels(ax, xs, ys, [f"{name}={fmt.format(x)}" for x in xs])


def legend_below(fig: Figure, ax: Axes, ncols: int = 3) -> None:
    """``ax``'s legend entries in one legend under the whole figure, where it covers no panel."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize="small", markerscale=1.5)
