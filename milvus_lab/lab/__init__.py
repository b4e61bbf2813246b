"""The recall/latency lab: compare index types on your data, plot the trade-offs, tune to a recall target.

Three lines from import to a table and a plot::

    from milvus_lab import lab
    results = lab.compare(lab.load_glove_dataset(20_000))
    lab.plot_recall_qps(results)

Recall is **k-recall@k**: the fraction of each query's k exact nearest neighbours (faiss brute force,
computed once per dataset) found among the k results, averaged over the queries; a result tying the
k-th exact distance counts as found. QPS is the whole query batch in one call; p50/p95/p99 latencies
are single-query calls. Every search goes through milvus_lab's engine, like the user's own code.
"""

from .datasets import (
    Dataset,
    as_vectors,
    from_array,
    from_dataframe,
    from_files,
    load,
    load_glove_dataset,
    load_hdf5,
    read_bvecs,
    read_fvecs,
    read_ivecs,
    read_matrix,
    read_vecs,
    save_hdf5,
    write_bvecs,
    write_fvecs,
    write_ivecs,
    write_vecs,
)
from .measurements import Build, LabWarning, Session, default_session, measure, time_batch, time_single
from .metrics import latency_percentiles, pareto_frontier, pareto_mask, recall_at_k, recall_per_query
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
from .sweeps import BUDGETS, Plan, compare, default_plan, search_grid, unavailable_reason
from .tuning import TuneResult, tune

__all__ = [
    "BUDGETS", "Build", "Dataset", "LabWarning", "Plan", "Session", "TuneResult", "as_vectors", "compare",
    "default_plan", "default_session", "from_array", "from_dataframe", "from_files", "latency_percentiles", "load",
    "load_glove_dataset", "load_hdf5", "markdown_report", "measure", "pareto_frontier", "pareto_mask", "plot_all",
    "plot_build_memory", "plot_parameter", "plot_recall_latency", "plot_recall_qps", "read_bvecs", "read_fvecs",
    "read_ivecs", "read_matrix", "read_vecs", "recall_at_k", "recall_per_query", "save_figure", "save_hdf5",
    "save_plots", "search_grid", "summary", "time_batch", "time_single", "tune", "unavailable_reason",
    "winner_table", "write_bvecs", "write_fvecs", "write_ivecs", "write_vecs",
]
