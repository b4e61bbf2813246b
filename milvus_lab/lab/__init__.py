"""The recall/latency lab: compare index types on your data, plot the trade-offs, tune to a recall target,
forecast what a setting needs and costs at the size you will deploy.

Three lines from import to a table and a plot::

    from milvus_lab import lab
    results = lab.compare(lab.load_glove_dataset(20_000))
    lab.plot_recall_qps(results)

Recall is **k-recall@k** (:mod:`milvus_lab.numerics`, one tie rule): the fraction of each query's k exact
nearest neighbours found among the k results, averaged over the queries. QPS is the median of several
interleaved rounds of the whole query batch, with its range (``qps_lo`` / ``qps_hi``); p50/p95/p99 are
single-query calls. Timings taken while other processes used the machine are flagged ``busy``. Every
search goes through a :class:`~milvus_lab.protocol.Target`: the in-memory engine by default, or a
Milvus server (``target=milvus_lab.server.connect(uri)``).
"""

from .concurrency import plot_concurrency
from .datasets import (
    Dataset,
    as_vectors,
    from_array,
    from_dataframe,
    from_files,
    load,
    load_glove_dataset,
    load_hdf5,
    save_hdf5,
)
from .forecasting import Forecast, build_rule, forecast, ladder
from .formats import (
    read_bvecs,
    read_fvecs,
    read_ivecs,
    read_matrix,
    read_vecs,
    write_bvecs,
    write_fvecs,
    write_ivecs,
    write_vecs,
)
from .measurements import Build, LabMemoryError, LabWarning, Session, measure
from .parity import parity, plot_parity
from .metrics import (
    latency_percentiles,
    pareto_frontier,
    pareto_mask,
    recall_at_k,
    recall_bounds,
    recall_per_query,
    tied_with_best,
)
from .plots import (
    plot_all,
    plot_build_memory,
    plot_parameter,
    plot_recall_latency,
    plot_recall_qps,
    save_figure,
    save_plots,
)
from .report import markdown_report, summary, winner_table
from .sweeps import BUDGETS, Plan, compare, default_plan, search_grid
from .timing import interleaved, round_robin
from .setting import Setting
from .tuning import TuneResult, smallest_passing, tune

__all__ = [
    "BUDGETS", "Build", "Dataset", "LabMemoryError", "LabWarning", "Plan", "Session", "TuneResult", "as_vectors",
    "Forecast", "Setting", "build_rule", "compare", "default_plan", "forecast", "ladder",
    "from_array", "from_dataframe", "from_files", "interleaved", "latency_percentiles",
    "load", "load_glove_dataset", "load_hdf5", "markdown_report", "measure", "pareto_frontier", "pareto_mask",
    "parity", "plot_parity",
    "plot_all", "plot_concurrency", "plot_build_memory", "plot_parameter", "plot_recall_latency", "plot_recall_qps",
    "read_bvecs",
    "read_fvecs", "read_ivecs", "read_matrix", "read_vecs", "recall_at_k", "recall_bounds", "recall_per_query",
    "round_robin", "save_figure", "save_hdf5", "save_plots", "search_grid", "smallest_passing", "summary",
    "tied_with_best", "tune", "winner_table", "write_bvecs", "write_fvecs", "write_ivecs", "write_vecs",
]
