"""Quantization opened up: how far IVF_SQ8 and IVF_PQ move each vector, and how many bytes they save.

IVF_SQ8 stores each coordinate (of the vector minus its cell's centroid) in one byte: ``dim`` bytes a
vector instead of ``4 * dim``. IVF_PQ cuts the vector into ``m`` sub-vectors and stores, for each, the
number of the nearest of 256 learned sub-centroids: ``m`` bytes a vector. Decoding the codes gives back
an approximation; its distance to the raw vector is the error every search distance carries.

IVF_PQ needs ``dim % m == 0`` with ``dim / m`` in an allowed list: no ``m`` passes for 50-d GloVe, and
the view refuses with the spec's message. Project to 48 dimensions first::

    import pandas as pd
    from milvus_lab.datasets import load_glove
    from milvus_lab import views
    vectors, _ = load_glove(10_000)
    x48 = views.pca_project(vectors, 48)       # for 48-d, m in {2, 3, 4, 8, 12, 16, 24, 48} is allowed
    errors = pd.concat([views.quantization_error(x48, "IVF_SQ8", {"nlist": 128}),
                        views.quantization_error(x48, "IVF_PQ", {"nlist": 128, "m": 8})])
    views.quantization_summary(errors)
    views.plot_quantization_error(errors)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import spec
from ..errors import InvalidParameterError
from ..numerics import as_vectors
from ._common import build_ivf, check_metric, check_trainable, new_figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

#: bytes one vector's code takes, by index type (the meaning of the spec's parameters; coarse cell id aside)
CODE_BYTES: dict[str, Callable[[int, Mapping[str, int]], int]] = {
    "IVF_FLAT": lambda dim, params: 4 * dim,
    "IVF_SQ8": lambda dim, params: dim,
    "IVF_SQ8H": lambda dim, params: dim,
    "IVF_PQ": lambda dim, params: params["m"],
}


def quantization_error(vectors: Any, index_type: str, params: Mapping[str, int] | None = None, *,
                       metric: str = "L2") -> pd.DataFrame:
    """Encode every vector as ``index_type`` (IVF_SQ8, IVF_SQ8H, IVF_PQ; IVF_FLAT as the exact baseline)
    stores it, decode it, and measure how far it moved: one row per vector.

    Columns: ``row``, ``index_type``, ``params`` (e.g. ``"nlist=128, m=8"``), ``error`` (L2 distance
    between the raw and the decoded vector), ``relative_error`` (error / norm of the raw vector),
    ``bytes_per_vector`` and ``raw_bytes_per_vector`` (4 * dim). ``params`` default to the spec's
    teaching defaults; a value the spec refuses raises its InvalidParameterError.
    """
    import pandas as pd

    x = as_vectors(vectors)
    n, dim = x.shape
    metric = check_metric(metric)
    index_spec = spec.get_index(index_type)
    if index_spec.name not in CODE_BYTES:
        raise InvalidParameterError(
            f"quantization_error shows what an IVF index stores; index_type must be one of "
            f"{', '.join(CODE_BYTES)}; got {index_spec.name}")
    if params is None:
        params = spec.default_build_params(index_spec.name, dim)
    _, build = spec.validate_build(index_spec.name, params, dim=dim, metric=metric)
    check_trainable(index_spec.name, build, n)
    index = build_ivf(index_spec.name, build, x, metric)
    decoded = index.sa_decode(index.sa_encode(x))
    error = np.linalg.norm(x.astype(np.float64) - decoded, axis=1)
    norms = np.linalg.norm(x.astype(np.float64), axis=1)
    relative = np.divide(error, norms, out=np.zeros_like(error), where=norms > 0)
    return pd.DataFrame({
        "row": np.arange(n), "index_type": index_spec.name, "params": spec.format_params(build),
        "error": error, "relative_error": relative,
        "bytes_per_vector": CODE_BYTES[index_spec.name](dim, build), "raw_bytes_per_vector": 4 * dim,
    })


def quantization_summary(errors: pd.DataFrame) -> pd.DataFrame:
    """One row per (index_type, params): bytes per vector, compression and the error's mean / median / p95."""
    grouped = errors.groupby(["index_type", "params"], sort=False)
    out = grouped.agg(bytes_per_vector=("bytes_per_vector", "first"),
                      raw_bytes_per_vector=("raw_bytes_per_vector", "first"),
                      mean_relative_error=("relative_error", "mean"),
                      median_relative_error=("relative_error", "median"),
                      p95_relative_error=("relative_error", lambda s: float(np.percentile(s, 95))),
                      mean_error=("error", "mean")).reset_index()
    out.insert(4, "compression", out["raw_bytes_per_vector"] / out["bytes_per_vector"])
    return out


def plot_quantization_error(errors: pd.DataFrame) -> Figure:
    """Histogram of the relative error of every vector, one colour per index type (log scale), with the
    bytes each stores per vector in the legend. An exact type (IVF_FLAT) has no error and no histogram."""
    fig, ax = new_figure(1, figsize=(9, 5.2))
    summary = quantization_summary(errors)
    positive = errors["relative_error"][errors["relative_error"] > 0]
    lo = max(float(positive.min()) if len(positive) else 1e-4, 1e-7)
    hi = max(float(errors["relative_error"].max()), lo * 10)
    bins = np.logspace(np.log10(lo), np.log10(hi), 50)
    for i, row in summary.iterrows():
        group = errors[(errors["index_type"] == row["index_type"]) & (errors["params"] == row["params"])]
        label = (f"{row['index_type']} {row['params']}: {row['bytes_per_vector']:g} B/vector "
                 f"({row['compression']:.0f}x smaller), median error {row['median_relative_error']:.1%}")
        values = group["relative_error"]
        if (values > 0).any():
            ax.hist(values[values > 0], bins=bins, alpha=0.55, color=f"C{i}", label=label)
            ax.axvline(row["median_relative_error"], color=f"C{i}", linestyle="--", linewidth=1)
        else:
            ax.plot([], [], color=f"C{i}", label=label + " (exact)")
    ax.set_xscale("log")
    ax.set_xlabel("relative error |x - decoded(x)| / |x| (log scale)")
    ax.set_ylabel("number of vectors")
    raw = int(errors["raw_bytes_per_vector"].iloc[0])
    ax.set_title(f"Quantization error against the raw vectors ({raw} B/vector raw float32, "
                 f"{len(errors['row'].unique()):,} vectors)")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize="small")  # under the axes
    ax.grid(True, which="both", alpha=0.3)
    return fig
