"""Teaching views: what an index is doing, as numbers and as a matplotlib Figure.

Each view is a computation that returns plain numbers (a dataclass or a DataFrame; tests assert them)
and a ``plot_*`` function that draws them. The views build small indexes with the libraries directly
(faiss, annoy) to open them up, and take every parameter range from :mod:`milvus_lab.spec`, so a wrong
value gets the engine's sentence. Nothing in the engine imports them.

=====================================  ===============================================================
IVF: the cells one query probes        :func:`ivf_probe` -> :class:`IvfProbe`, :func:`plot_ivf_probe`
IVF: recall against nprobe             :func:`ivf_recall_curve`, :func:`plot_ivf_recall_curve`
HNSW: layers and one search's path     :func:`hnsw_trace` -> :class:`HnswTrace`, :func:`plot_hnsw_trace`
IVF_SQ8 / IVF_PQ: quantization error   :func:`quantization_error`, :func:`quantization_summary`,
                                       :func:`plot_quantization_error`
ANNOY: recall against search_k         :func:`annoy_search_k_curve`, :func:`plot_annoy_search_k_curve`
=====================================  ===============================================================

:func:`pca_project` reduces dimensions (e.g. 50-d GloVe to 48-d, which IVF_PQ accepts).
"""

from ._common import pca_project
from .annoy_forest import annoy_search_k_curve, plot_annoy_search_k_curve
from .hnsw import HnswGraph, HnswTrace, hnsw_trace, plot_hnsw_trace
from .ivf import IvfProbe, ivf_probe, ivf_recall_curve, plot_ivf_probe, plot_ivf_recall_curve
from .quantization import plot_quantization_error, quantization_error, quantization_summary

__all__ = [
    "HnswGraph", "HnswTrace", "IvfProbe", "annoy_search_k_curve", "hnsw_trace", "ivf_probe", "ivf_recall_curve",
    "pca_project", "plot_annoy_search_k_curve", "plot_hnsw_trace", "plot_ivf_probe", "plot_ivf_recall_curve",
    "plot_quantization_error", "quantization_error", "quantization_summary",
]
