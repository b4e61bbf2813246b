"""The winner table (fastest setting per index type at a recall target) and a short Markdown report.

A winner is named only when it is faster than every other index type beyond the measured spread: its
slowest round beats the others' fastest rounds. Otherwise the table says which types tie. Index types
the spec marks as not recommended (IVF_SQ8H: IVF_SQ8 on the CPU here) are shown with that note and
never win.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import spec
from .measurements import STATUS_OK
from .metrics import tied_with_best
from .timing import busy_warning, concurrency_section

if TYPE_CHECKING:
    import pandas as pd

def stopped_early(error: str | None) -> list[str]:
    """The summary line of a run that stopped before its end; none for a run that finished."""
    return [f"stopped early: {error}"] if error else []


def result_html(head: str, table: pd.DataFrame, *bold: str, code: str | None = None) -> str:
    """A lab result as notebook HTML: the first line of its summary, its table, each non-empty ``bold``
    line in bold, then ``code`` preformatted. Every text is escaped here."""
    from html import escape

    cells = table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:,.4g}")
    notes = "".join(f"<p><b>{escape(line)}</b></p>" for line in bold if line)
    return f"<p>{escape(head)}</p>{cells}{notes}" + ("" if code is None else f"<pre>{escape(code)}</pre>")


SUMMARY_COLUMNS = ["index_type", "meets_target", "build_params", "search_params", "recall", "qps", "qps_lo",
                   "qps_hi", "p99_ms", "build_s", "memory_mb", "busy", "note"]


def summary(results: pd.DataFrame, target_recall: float = 0.95) -> pd.DataFrame:
    """One row per index type: its fastest measured setting with recall >= ``target_recall``, or (when
    none reaches it) its highest-recall setting, or why it was not measured. Sorted: types that meet
    the target by QPS, fastest first, then the rest. ``rank`` is "winner", "tie" (QPS intervals overlap
    with the fastest) or empty; ``df.attrs["verdict"]`` says it in a sentence."""
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
        other = spec.get_index(index_type).same_as
        if other is not None:
            note = f"same index as {other} on the CPU here (a GPU index in Milvus), measured once; never recommended"
        rows.append({**{c: best[c] for c in SUMMARY_COLUMNS if c in best.index}, "meets_target": not hit.empty,
                     "note": note})
    out = pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)
    out["_order"] = [(0, -q) if m else (1, -r) for m, q, r in
                     zip(out["meets_target"], out["qps"].fillna(0), out["recall"].fillna(-1))]
    out = out.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
    out["rank"] = ""
    eligible = [i for i, r in out.iterrows() if r["meets_target"] is True and spec.get_index(r["index_type"]).recommend]
    verdict = f"No index type reached recall {target_recall:g}."
    if eligible:
        sub = out.loc[eligible]
        tied = [eligible[i] for i in tied_with_best(sub["qps"], sub["qps_lo"], sub["qps_hi"])]
        if len(tied) == 1:
            out.loc[tied[0], "rank"] = "winner"
            w = out.loc[tied[0]]
            build, search = params_text(w["build_params"]), params_text(w["search_params"])
            verdict = (f"Winner: {w['index_type']}{'' if build == '-' else ' ' + build}"
                       f"{'' if search == '-' else ' with ' + search}: "
                       f"recall {w['recall']:.3f} at {w['qps']:,.0f} QPS ({w['qps_lo']:,.0f}-{w['qps_hi']:,.0f}), "
                       f"faster than the others beyond the spread of the repetitions")
        else:
            out.loc[tied, "rank"] = "tie"
            names = ", ".join(f"{out.loc[i, 'index_type']} ({out.loc[i, 'qps']:,.0f} QPS)" for i in tied)
            verdict = (f"Tie at recall >= {target_recall:g}: {names}; their QPS ranges over the repetitions overlap, "
                       f"so no winner is named")
    if eligible and small_sample_warnings(results, target_recall):
        verdict += " (on a small measurement: see the warnings)"
    out.attrs["verdict"] = verdict
    return out


def params_text(text: object) -> str:
    """A ``build_params`` / ``search_params`` JSON column as ``nlist=1024, nprobe=16`` (``-`` when empty)."""
    if not isinstance(text, str) or not text:
        return "-"
    return spec.format_params(json.loads(text)) or "-"


def _fmt(value: object, fmt: str) -> str:
    try:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        return format(value, fmt)
    except (TypeError, ValueError):
        return str(value)


#: below this many queries, or with a recall interval wider than WIDE_RECALL, recall is called uncertain
FEW_QUERIES = 100
WIDE_RECALL = 0.05
#: below this many base vectors, the comparison is called a small-data one
SMALL_DATA = 10_000


def _single(results: pd.DataFrame, column: str) -> int | None:
    values = results[column].dropna().unique() if column in results else []
    return int(values[0]) if len(values) == 1 else None


def small_sample_warnings(results: pd.DataFrame, target_recall: float = 0.95) -> list[str]:
    """What a small run cannot tell: few queries, a wide recall interval (``recall_lo``/``recall_hi``) on a
    setting that can be chosen at ``target_recall`` (recall_hi within WIDE_RECALL of it or above: an interval
    far below the target changes no choice), and small data (timings of microseconds)."""
    out = []
    ok = results[(results["status"] == STATUS_OK) & results["recall"].notna()] if "status" in results else results
    if ok.empty:
        return out
    nq, n = _single(ok, "nq"), _single(ok, "n")
    width = (ok["recall_hi"] - ok["recall_lo"]) if {"recall_lo", "recall_hi"} <= set(ok.columns) else None
    if width is not None:
        width = width[ok["recall_hi"] >= target_recall - WIDE_RECALL]
    widest = float(width.max()) if width is not None and width.notna().any() else float("nan")
    few = nq is not None and nq < FEW_QUERIES
    if few or widest > WIDE_RECALL:
        if few:
            text = f"Few queries: recall is measured on only {nq:,} queries"
        else:
            text = "Uncertain recall: " + (f"measured on {nq:,} queries" if nq is not None else "wide intervals")
        # an interval narrows with the square root of the query count
        need = FEW_QUERIES * 10
        if widest == widest:
            best = ok.loc[width.idxmax()] if widest > WIDE_RECALL else ok.loc[ok["recall"].idxmax()]
            which = "a recall near the target" if widest > WIDE_RECALL else "the best measured recall"
            text += (f", so it is uncertain: {which}, {best['recall']:.3f}, lies between "
                     f"{best['recall_lo']:.3f} and {best['recall_hi']:.3f} (95% bounds; the widest interval of the "
                     f"settings near the target spans {widest:.3f})")
            if nq is not None and widest > WIDE_RECALL:
                need = max(need, int(math.ceil(nq * (widest / WIDE_RECALL) ** 2 / 100.0)) * 100)
        out.append(text + "; recall differences smaller than that interval mean nothing. Use more queries "
                   f"(about {need:,} narrow every interval to {WIDE_RECALL:g}) before choosing an index type.")
    if n is not None and n < SMALL_DATA:
        exact = bool((ok.groupby("index_type")["recall"].max() >= 0.99).all())
        out.append(f"Small data: only {n:,} base vectors"
                   + (", so every index type measured reaches recall >= 0.99 at its largest setting (the table "
                      "shows the fastest setting at the target instead)" if exact else "")
                   + "; at this size searches take microseconds and the fastest type here says little about "
                     f"{SMALL_DATA:,}+ vectors.")
    return out


def non_monotone_warnings(results: pd.DataFrame) -> list[str]:
    """One sentence per build whose measured recall falls as its one search parameter grows, by more than
    the recall intervals (a larger setting's ``recall_hi`` below a smaller setting's ``recall_lo``): its
    curve must not be read as "more is better". Rows without intervals make no claim."""
    need = {"index_type", "build_params", "search_params", "recall", "recall_lo", "recall_hi"}
    if not need <= set(results.columns):
        return []
    ok = results[results["recall"].notna() & results["recall_lo"].notna() & results["recall_hi"].notna()]
    if "status" in ok:
        ok = ok[ok["status"] == STATUS_OK]
    out = []
    for (index_type, build), rows in ok.groupby(["index_type", "build_params"], sort=False):
        points = []
        for _, r in rows.iterrows():
            search = json.loads(r["search_params"]) if isinstance(r["search_params"], str) else {}
            if len(search) == 1:
                (name, value), = search.items()
                points.append((int(value), name, float(r["recall"]), float(r["recall_lo"]), float(r["recall_hi"])))
        points.sort()
        worst = None  # the largest fall beyond the intervals: (fall, earlier point, later point)
        for i, early in enumerate(points):
            for late in points[i + 1:]:
                if late[0] > early[0] and late[4] < early[3] and (worst is None or early[2] - late[2] > worst[0]):
                    worst = (early[2] - late[2], early, late)
        if worst is not None:
            _, (v1, name, r1, lo1, hi1), (v2, _, r2, lo2, hi2) = worst
            out.append(f"Recall falls as {name} grows: {index_type} {params_text(build)} measured recall {r1:.3f} "
                       f"({lo1:.3f}-{hi1:.3f}) at {name}={v1} but {r2:.3f} ({lo2:.3f}-{hi2:.3f}) at {name}={v2}, "
                       f"beyond the 95% intervals; its curve is not monotone (the index's own behaviour), so a "
                       f"larger {name} is not always better: choose from the measured points, not between them.")
    return out


def warnings_of(results: pd.DataFrame, target_recall: float = 0.95) -> list[str]:
    """The run's caveats: a small measurement (few queries, small data, wide intervals near
    ``target_recall``), a busy machine, builds that are not deterministic, recall that falls as a search
    parameter grows."""
    out = small_sample_warnings(results, target_recall)
    out += non_monotone_warnings(results)
    busy = results["busy"].fillna(False).astype(bool) if "busy" in results else None
    if busy is not None and busy.any():
        text = results.attrs.get("busy_warning")
        if not text:
            others = results["other_cpu"].max() if "other_cpu" in results else float("nan")
            drift = results["drift"].max() if "drift" in results else float("nan")
            text = busy_warning(int(busy.sum()), len(results), float(others), float(drift if drift == drift else 1))
        out.append(text)
    if "deterministic" in results:
        loose = results[(~results["deterministic"].fillna(True).astype(bool)) & (results["status"] == STATUS_OK)]
        types = list(dict.fromkeys(loose["index_type"]))
        if types:
            out.append(f"Not deterministic: {', '.join(types)} builds depend on thread scheduling (multi-threaded "
                       f"graph construction), so their recall can differ slightly on a rerun; the other builds are "
                       f"seeded and repeat exactly.")
    return out


def not_measured_sentence(row: pd.Series) -> str:
    """One sentence for a row that was not measured: its note, naming the index type (and build) once."""
    note = str(row["note"]).strip() if isinstance(row["note"], str) and row["note"].strip() else str(row["status"])
    name = str(row["index_type"])
    params = params_text(row["build_params"])
    if not note.startswith(name):
        note = f"{name}{'' if params == '-' else ' ' + params} ({row['status']}): {note}"
    elif note.startswith(f"{name} skipped: "):
        note = f"{name} is skipped: {note[len(name) + 10:]}"
    return note if note.endswith(".") else note + "."


def winner_table(results: pd.DataFrame, target_recall: float = 0.95) -> str:
    """:func:`summary` as aligned plain text, for the terminal."""
    table = summary(results, target_recall)
    measured = [i for i, r in table.iterrows() if isinstance(r["build_params"], str) and r["build_params"]
                and not math.isnan(r["recall"])]
    shown = {i: (params_text(table.loc[i, "build_params"]), params_text(table.loc[i, "search_params"]))
             for i in measured}
    wb = max([len("build params")] + [len(b) for b, _ in shown.values()])
    ws = max([len("search params")] + [len(s) for _, s in shown.values()])
    header = (f"{'index type':<10} {'build params':<{wb}} {'search params':<{ws}} {'recall':>6} {'QPS':>9} "
              f"{'QPS range':>17} {'p99 ms':>7} {'build s':>7} {'MB':>8}  rank")
    lines = [f"Fastest setting per index type at recall >= {target_recall:g} (k-recall@k; QPS: median of the "
             f"repetitions and their range):", header, "-" * len(header)]
    for i, r in table.iterrows():
        if i in shown:
            b, s = shown[i]
            spread = f"{_fmt(r['qps_lo'], ',.0f')}-{_fmt(r['qps_hi'], ',.0f')}"
            lines.append(f"{r['index_type']:<10} {b:<{wb}} {s:<{ws}} {_fmt(r['recall'], '.3f'):>6} "
                         f"{_fmt(r['qps'], ',.0f'):>9} {spread:>17} {_fmt(r['p99_ms'], '.2f'):>7} "
                         f"{_fmt(r['build_s'], '.1f'):>7} {_fmt(r['memory_mb'], ',.1f'):>8}  {r['rank']}"
                         + (f"   ({r['note']})" if r["note"] else ""))
        else:
            lines.append(f"{r['index_type']:<10} {r['note']}")
    lines.append(table.attrs["verdict"])
    lines += warnings_of(results, target_recall)
    return "\n".join(lines)


def _md_table(df: pd.DataFrame) -> str:
    def cell(v: object) -> str:
        text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _explained_target(target: str) -> str:
    """The target line, with why the lab's engine indexes segments below Milvus's build threshold."""
    found = re.search(r"build threshold ([\d,]+) rows", target)
    if found is None or int(found.group(1).replace(",", "")) >= spec.DEFAULT_BUILD_THRESHOLD:
        return target
    return (f"{target} (the lab builds every segment, however small, so each index type is measured on all the "
            f"rows; Milvus's default is {spec.DEFAULT_BUILD_THRESHOLD:,} rows, below which a segment stays raw "
            f"and is searched exactly)")


def markdown_report(results: pd.DataFrame, target_recall: float = 0.95, *, title: str = "Index comparison",
                    plots: Iterable[str | os.PathLike] = (), command: str | None = None,
                    wall_s: float | None = None) -> str:
    """A short Markdown report: the data, the method, warnings, the winner or tie, skipped types, plots."""
    first = results.iloc[0]
    table = summary(results, target_recall)
    shown = table.copy()
    unmeasured = shown["build_params"].isna() | (shown["build_params"] == "")
    shown.loc[unmeasured, "note"] = "not measured: see below"
    shown["build_params"] = [params_text(v) for v in shown["build_params"]]
    shown["search_params"] = [params_text(v) for v in shown["search_params"]]
    for col, fmt in (("recall", ".3f"), ("qps", ",.0f"), ("qps_lo", ",.0f"), ("qps_hi", ",.0f"), ("p99_ms", ".2f"),
                     ("build_s", ".1f"), ("memory_mb", ",.1f")):
        shown[col] = [_fmt(v, fmt) for v in shown[col]]
    attrs = results.attrs
    k = int(first["k"])
    lines = [f"# {title}", ""]
    warn = warnings_of(results, target_recall)
    if warn:
        lines += [f"> **{w}**" for w in warn] + [""]
    lines.append(f"Data: **{first['dataset']}**, {int(first['n']):,} base vectors of {int(first['dim'])} dimensions, "
                 f"{int(first['nq']):,} held-out queries, metric {first['metric']}, k = {k}.")
    lines.append("")
    repeats = results["repeats"].dropna()
    reps = int(repeats.iloc[0]) if len(repeats) else 0
    lines.append(f"Recall is {k}-recall@{k}: the fraction of each query's {k} exact nearest neighbours found in the "
                 f"{k} results, averaged over the queries (ties at the k-th distance count). QPS is the median of "
                 f"{reps} rounds of the whole query batch, the settings of a build timed round-robin after a "
                 f"warm-up; the range is the slowest and fastest round. p50/p95/p99 are single-query calls "
                 f"spread over the rounds; memory is what the index holds to answer queries (FLAT: the raw "
                 f"vectors).")
    lines.append("")
    threads = attrs.get("threads")
    machine = f"{platform.machine()}, {os.cpu_count()} CPU(s)"
    if threads:
        machine += f", faiss/BLAS threads fixed at {threads}, hnswlib {attrs.get('hnswlib_threads')}"
    lines.append(f"Machine: {machine}. Target: {_explained_target(attrs.get('target', 'in-memory engine'))}."
                 + (f" Wall time: {wall_s:.1f} s." if wall_s is not None else ""))
    if command:
        lines += ["", f"Command: `{command}`"]
    lines += ["", f"## Fastest setting per index type at recall >= {target_recall:g}", "", _md_table(shown), "",
              table.attrs["verdict"] + ".", ""]
    lines += concurrency_section(results, table)
    winner = table[table["rank"] == "winner"]
    if len(winner):
        w = winner.iloc[0]
        build = json.loads(w["build_params"])
        search = json.loads(w["search_params"])
        lines += ["Winner, ready to copy:", "", "```python",
                  f"collection.create_index({w['index_type']!r}, {build!r})",
                  f"results = collection.search(queries, {k}" + (f", {search!r})" if search else ")"),
                  "```", ""]
    skipped = results[results["status"] != STATUS_OK]
    if not skipped.empty:
        lines += ["## Not measured", ""]
        for _, r in skipped.drop_duplicates(["index_type", "build_params", "note"]).iterrows():
            lines.append(f"- {not_measured_sentence(r)}")
        lines.append("")
    plots = [Path(p) for p in plots]
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{p.stem}]({p.name})" for p in plots if p.suffix == ".png"]
        lines.append("")
    lines += [("The full table of every setting is `results.csv` (one row per index type, build and search "
               "parameters)."), ""]
    return "\n".join(lines)
