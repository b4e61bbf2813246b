"""The winner table (fastest setting per index type at a recall target) and a short Markdown report."""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .measurements import STATUS_OK

if TYPE_CHECKING:
    import pandas as pd

SUMMARY_COLUMNS = ["index_type", "meets_target", "build_params", "search_params", "recall", "qps", "p99_ms",
                   "build_s", "memory_mb", "note"]


def summary(results: pd.DataFrame, target_recall: float = 0.95) -> pd.DataFrame:
    """One row per index type: its fastest measured setting with recall >= ``target_recall``, or (when
    none reaches it) its highest-recall setting, or why it was not measured. Sorted: types that meet
    the target by QPS, fastest first (the winner), then the rest."""
    import pandas as pd

    rows = []
    for index_type, group in results.groupby("index_type", sort=False):
        ok = group[(group["status"] == STATUS_OK) & group["recall"].notna()]
        if ok.empty:
            notes = [n for n in group["note"] if isinstance(n, str) and n]
            rows.append({"index_type": index_type, "meets_target": False,
                         "note": notes[0] if notes else f"not measured ({group['status'].iloc[0]})"})
            continue
        hit = ok[ok["recall"] >= target_recall]
        if hit.empty:
            best = ok.loc[ok["recall"].idxmax()]
            note = f"tops out at recall {best['recall']:.3f} < {target_recall:g}"
        else:
            best = hit.loc[hit["qps"].idxmax()]
            note = ""
        rows.append({**{c: best[c] for c in SUMMARY_COLUMNS if c in best.index}, "meets_target": not hit.empty,
                     "note": note})
    out = pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)
    out["_order"] = [(0, -q) if m else (1, -r) for m, q, r in
                     zip(out["meets_target"], out["qps"].fillna(0), out["recall"].fillna(-1))]
    return out.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def _fmt(value: object, fmt: str) -> str:
    try:
        if isinstance(value, float) and math.isnan(value):
            return ""
        return format(value, fmt)
    except (TypeError, ValueError):
        return str(value)


def winner_table(results: pd.DataFrame, target_recall: float = 0.95) -> str:
    """:func:`summary` as aligned plain text, for the terminal."""
    table = summary(results, target_recall)
    measured_idx = {i for i, r in table.iterrows()
                    if isinstance(r["build_params"], str) and r["build_params"] and not math.isnan(r["recall"])}
    measured = [table.loc[i] for i in sorted(measured_idx)]
    wb = max([len("build params")] + [len(r["build_params"]) for r in measured])
    ws = max([len("search params")] + [len(r["search_params"]) for r in measured])
    header = (f"{'index type':<10} {'build params':<{wb}} {'search params':<{ws}} {'recall':>6} {'QPS':>9} "
              f"{'p99 ms':>7} {'build s':>7} {'MB':>8}")
    lines = [f"Fastest setting per index type at recall >= {target_recall:g} (k-recall@k):", header,
             "-" * len(header)]
    for i, r in table.iterrows():
        if i in measured_idx:
            lines.append(f"{r['index_type']:<10} {r['build_params']:<{wb}} {r['search_params']:<{ws}} "
                         f"{_fmt(r['recall'], '.3f'):>6} {_fmt(r['qps'], ',.0f'):>9} {_fmt(r['p99_ms'], '.2f'):>7} "
                         f"{_fmt(r['build_s'], '.1f'):>7} {_fmt(r['memory_mb'], ',.1f'):>8}"
                         + (f"   ({r['note']})" if r["note"] else ""))
        else:
            lines.append(f"{r['index_type']:<10} {r['note']}")
    if len(table) and table["meets_target"].iloc[0]:
        w = table.iloc[0]
        lines.append(f"Winner: {w['index_type']} {w['build_params']} with {w['search_params']}: recall "
                     f"{w['recall']:.3f} at {w['qps']:,.0f} QPS")
    else:
        lines.append(f"No index type reached recall {target_recall:g}.")
    return "\n".join(lines)


def _md_table(df: pd.DataFrame) -> str:
    def cell(v: object) -> str:
        text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def markdown_report(results: pd.DataFrame, target_recall: float = 0.95, *, title: str = "Index comparison",
                    plots: Iterable[str | os.PathLike] = (), command: str | None = None,
                    wall_s: float | None = None) -> str:
    """A short Markdown report: the data, the method, the winner table, skipped types and the plots."""
    import faiss

    first = results.iloc[0]
    table = summary(results, target_recall)
    shown = table.copy()
    for col, fmt in (("recall", ".3f"), ("qps", ",.0f"), ("p99_ms", ".2f"), ("build_s", ".1f"),
                     ("memory_mb", ",.1f")):
        shown[col] = [_fmt(v, fmt) for v in shown[col]]
    lines = [f"# {title}", ""]
    lines.append(f"Data: **{first['dataset']}**, {int(first['n']):,} base vectors of {int(first['dim'])} dimensions, "
                 f"{int(first['nq']):,} held-out queries, metric {first['metric']}, k = {int(first['k'])}.")
    lines.append("")
    lines.append(f"Recall is {int(first['k'])}-recall@{int(first['k'])}: the fraction of each query's "
                 f"{int(first['k'])} exact nearest neighbours (faiss brute force) found in the "
                 f"{int(first['k'])} results, averaged over the queries (ties at the k-th distance count). QPS "
                 "is the whole query batch in one call (best of up to 3 runs); p50/p95/p99 are single-query "
                 "calls; memory is what the index holds to answer queries (FLAT: the raw vectors). Every "
                 "search went through milvus_lab's engine.")
    lines.append("")
    machine = f"{platform.machine()}, {os.cpu_count()} CPU(s), faiss threads {faiss.omp_get_max_threads()}"
    lines.append(f"Machine: {machine}." + (f" Wall time: {wall_s:.1f} s." if wall_s is not None else ""))
    if command:
        lines += ["", f"Command: `{command}`"]
    lines += ["", f"## Fastest setting per index type at recall >= {target_recall:g}", "", _md_table(shown), ""]
    if len(table) and table["meets_target"].iloc[0]:
        w = table.iloc[0]
        build = json.loads(w["build_params"])
        search = json.loads(w["search_params"])
        lines += ["Winner, ready to copy:", "", "```python",
                  f"collection.create_index({w['index_type']!r}, {build!r})",
                  f"results = collection.search(queries, {int(first['k'])}" + (f", {search!r})" if search else ")"),
                  "```", ""]
    skipped = results[results["status"] != STATUS_OK]
    if not skipped.empty:
        lines += ["## Not measured", ""]
        for _, r in skipped.drop_duplicates(["index_type", "build_params", "note"]).iterrows():
            lines.append(f"- **{r['index_type']}** {r['build_params']}: {r['status']}: {r['note']}")
        lines.append("")
    plots = [Path(p) for p in plots]
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{p.stem}]({p.name})" for p in plots if p.suffix == ".png"]
        lines.append("")
    lines += [("The full table of every setting is `results.csv` (one row per index type, build and search "
               "parameters)."), ""]
    return "\n".join(lines)
