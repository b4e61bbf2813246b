"""Concurrent clients: QPS and latency when N clients send queries at the same time.

Batch QPS (every query in one call) says what an index can do; a deployment serves many clients that each
send one query (or a small batch) and wait for the answer. Here, for each concurrency level N and each
search setting, N client threads each send a query, wait for the answer and send the next one at once (a
closed loop with no think time) for a fixed time after a warm-up:

* in memory the clients share the collection (one process, as a multi-threaded service would); on a
  server target each client has its own pymilvus connection (``open_client()``), as real clients have;
* the time per setting and level, ``seconds``, is split into ``rounds`` windows; the windows run
  round-robin: every round times each level, and within it every setting, the first setting rotating from
  round to round (:func:`~milvus_lab.lab.timing.round_robin`), so a slow minute hits all settings alike;
* before each window every client sends ``WARM_UP_CALLS`` untimed calls (connections, caches, threads);
* ``qps_c{N}`` is the median over the rounds of (queries answered in the window) / (window length, from
  the start to the last answer), ``p50_ms_c{N}`` / ``p99_ms_c{N}`` the percentiles of every call's
  latency pooled over the rounds; the spread columns ``*_lo`` / ``*_hi`` are the lowest and the highest
  per-round value (QPS, p50 and p99 of that round alone), as for the batch columns;
* a client whose call raises (a dropped connection) stops; the others finish the window, the row's note
  names the client, the call and the reason, and ``clients_failed_c{N}`` counts the clients that failed.
  A client still inside a call ``JOIN_GRACE_SECONDS`` after its window closed is left behind and counted
  as failed, so nothing hangs.

:func:`saturation` reads where QPS stops growing; :func:`plot_concurrency` draws QPS and p99 against N.
The protocol itself lives in :mod:`milvus_lab.lab.timing` beside the batch timings (the measurements import
it; this module also plots, so it sits above them) and its names are re-exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .arguments import Number, check, check_index_types
from .timing import (
    CLIENT_COLUMN_STEMS,
    DEFAULT_CONCURRENCY_SECONDS,
    JOIN_GRACE_SECONDS,
    MAX_CLIENTS,
    MAX_CONCURRENCY_SECONDS,
    SATURATION_RULE,
    WARM_UP_CALLS,
    ConcurrencyPlan,
    Window,
    check_concurrency,
    client_searches,
    column,
    concurrency_section,
    concurrency_table,
    interleaved_clients,
    level_columns,
    levels_of,
    query_batches,
    rows_chosen,
    run_window,
    saturation,
    saturation_sentences,
    setting_label,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "CLIENT_COLUMN_STEMS", "DEFAULT_CONCURRENCY_SECONDS", "JOIN_GRACE_SECONDS", "MAX_CLIENTS",
    "MAX_CONCURRENCY_SECONDS", "SATURATION_RULE", "WARM_UP_CALLS", "ConcurrencyPlan", "Window", "check_concurrency",
    "client_searches", "column", "concurrency_section", "concurrency_table", "interleaved_clients", "level_columns",
    "levels_of", "plot_concurrency", "query_batches", "run_window", "saturation", "saturation_sentences",
    "setting_label",
]


def plot_concurrency(results: pd.DataFrame, *, target_recall: float | None = None, index_types: Any = None
                     ) -> Figure:
    """QPS (left) and p99 latency (right) against the number of concurrent clients, one line per setting
    (bars: the range over the rounds; dotted line: the setting's batch QPS; ring: where its QPS stops
    growing). ``target_recall``: only each index type's fastest setting at that recall (the report's
    choice); ``index_types``: only these types. The legend sits beside the QPS panel, the saturation rule
    and the run's warnings in a strip under both panels, so no text covers a line or another text."""
    from ..figures import NotebookFigure, add_notes, legend_outside, place_labels
    from .plots import type_style
    from .report import summary, warnings_of

    levels = levels_of(results)
    if not levels:
        raise ValueError("no concurrency columns to plot: measure with concurrency=(1, 10, 20) first")
    table = concurrency_table(results)
    if target_recall is not None:
        target_recall = check("target_recall", target_recall,
                              Number(0.0, 1.0, low_open=False, none_ok=False))
        chosen = summary(results, target_recall)
        table = rows_chosen(table, chosen)
    wanted = check_index_types(index_types)
    if wanted is not None:
        table = table[table["index_type"].isin(wanted)]
    if table.empty:
        raise ValueError("no measured setting with concurrency columns matches the selection")
    # taller with many settings, so that the legend beside the QPS panel (one entry per setting) stays on the page
    fig = NotebookFigure(figsize=(13, max(5.0, 1.5 + 0.17 * len(table))), layout="constrained")
    ax_q, ax_p = fig.subplots(1, 2)
    lookup = results.set_index(["index_type", "build_params", "search_params"], drop=False)
    saturated: list[tuple[float, float, Any]] = []
    for _, r in table.iterrows():
        source = lookup.loc[(r["index_type"], r["build_params"], r["search_params"])]
        source = source.iloc[0] if getattr(source, "ndim", 1) > 1 else source
        style = type_style(r["index_type"])
        label = setting_label(r["index_type"], r["build_params"], r["search_params"])
        for ax, stem in ((ax_q, "qps"), (ax_p, "p99_ms")):
            y = np.array([source[column(stem, n)] for n in levels], dtype=float)
            lo = np.array([source[column(stem, n, "lo")] for n in levels], dtype=float)
            hi = np.array([source[column(stem, n, "hi")] for n in levels], dtype=float)
            ax.errorbar(levels, y, yerr=np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)]),
                        color=style["color"], marker=style["marker"], capsize=3, label=label)
        if r["qps"] == r["qps"]:
            ax_q.axhline(r["qps"], color=style["color"], linestyle=":", linewidth=1)
        at = r["saturates_at"]
        if at == at and at is not None:
            point = (float(at), float(source[column("qps", int(at))]), style["color"])
            ax_q.plot(point[0], point[1], marker="o", markersize=13, markerfacecolor="none",
                      markeredgecolor=style["color"], markeredgewidth=1.2, linestyle="none")
            saturated.append(point)
    batch = results["concurrency_batch"].dropna() if "concurrency_batch" in results else []
    per_call = "one query per call"
    if len(batch) and int(batch.iloc[0]) > 1:
        per_call = f"{int(batch.iloc[0])} queries per call"
    ax_q.set_ylabel("Queries per second (higher is better)")
    ax_q.set_title(f"Throughput vs concurrent clients ({per_call})\ndotted: batch QPS (all queries in one call)")
    ax_p.set_ylabel("p99 latency per call (ms, log scale; lower is better)")
    ax_p.set_yscale("log")
    ax_p.set_title("p99 latency vs concurrent clients")
    for ax in (ax_q, ax_p):
        ax.set_xlabel("concurrent clients")
        ax.set_xticks(levels)
        ax.grid(True, alpha=0.3)
    legend_outside(ax_q, title="setting (bars: range over the rounds)", fontsize="x-small")
    caption = ("Lines: QPS and p99 per call at each number of clients; bars span the lowest to the highest round; "
               "dotted lines: each setting's batch QPS. A ring marks where a setting's QPS stops growing ("
               "labelled where there is room). " + SATURATION_RULE)
    add_notes(fig, [(caption, "0.25"), *[(text, "firebrick") for text in warnings_of(results)]])
    place_labels(ax_q, [p[0] for p in saturated], [p[1] for p in saturated], ["stops growing"] * len(saturated),
                 colors=[p[2] for p in saturated], fontsize="x-small")
    return fig
