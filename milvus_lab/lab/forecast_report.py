"""A forecast as a Markdown report and as a figure: each figure against rows, measured points, the fitted law,
the forecast with its band, the target size marked. Each function takes a
:class:`~milvus_lab.lab.forecasting.Forecast` (not imported here: forecasting imports this module)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from . import sizing
from .arguments import check_index_type
from .growth import LEVEL, MAX_FACTOR
from .setting import Setting

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: (column, axis label, measured column of Forecast.points) of each panel
PANELS = [
    ("search_value", "search parameter the target needs", "needed_value"),
    ("memory_mb", "index memory (MB)", "memory_mb"),
    ("build_s", "build time (s)", "build_s"),
    ("qps", "batch QPS at that setting", "qps"),
    ("p99_ms", "p99 latency (ms) at that setting", "p99_ms"),
]


def _cell(value: object, fmt: str) -> str:
    if value is None or value != value:
        return "-"
    return format(value, fmt)


def _interval(row: object, col: str, fmt: str) -> str:
    value, lo, hi = row[col], row[f"{col}_lo"], row[f"{col}_hi"]
    if value != value:
        return "-"
    if lo != lo or hi != hi:
        return format(value, fmt)
    return f"{format(value, fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"


def markdown(fc: Any) -> str:
    """``forecast.md``: what was measured, the forecast table with intervals, the laws, the formulas, notes."""
    lines = [
        f"# Forecast at {fc.rows:,} rows",
        "",
        f"Dataset `{fc.dataset}` ({fc.sample_rows:,} x {fc.dim}, {fc.metric}) taken as a random sample of the data "
        f"to deploy; measured on {fc.target} at {', '.join(f'{s:,}' for s in fc.sizes)} rows (nested random "
        f"subsets, the same queries, recall against each subset's own exact neighbours). Target: k-recall@{fc.k} "
        f">= {fc.target_recall:g}. The forecast extrapolates {fc.extrapolation:,.1f}x beyond the largest sample; "
        f"intervals are {LEVEL:.0%} prediction intervals from the fit and the measurements' spread.",
        "",
    ]
    if fc.busy_warning:
        lines += [f"**{fc.busy_warning}**", ""]
    lines += ["| index type | setting | recall | memory (MB) | formula (MB) | build (s) | QPS | p99 (ms) "
              "| query nodes |",
              "|---|---|---|---|---|---|---|---|---|"]
    for _, row in fc.table.iterrows():
        if row["status"] != "ok":
            lines.append(f"| {row['index_type']} | {row['status']} | - | - | - | - | - | - | - |")
            continue
        setting = Setting.from_columns(row["index_type"], row["build_params"], row["search_params"])
        label = setting.label().split(" ", 1)[1] if " " in setting.label() else "-"
        lines.append(f"| {row['index_type']} | {label} | {_interval(row, 'recall', '.3f')} | "
                     f"{_interval(row, 'memory_mb', ',.0f')} | {_cell(row['formula_memory_mb'], ',.0f')} | "
                     f"{_interval(row, 'build_s', ',.3g')} | {_interval(row, 'qps', ',.0f')} | "
                     f"{_interval(row, 'p99_ms', '.3g')} | {_cell(row['query_nodes'], 'd')} |")
    lines += ["", "## Notes", "",
              "- Build time, QPS and p99 were timed size by size, each size's setting on its own index (sizes cannot "
              "be interleaved without holding every size's index at once), so a machine that slowed down during the "
              "run bends their growth laws; the busy check flags such sizes, and their intervals include the "
              "rounds' spread."]
    for _, row in fc.table.iterrows():
        if row["note"]:
            lines.append(f"- **{row['index_type']}**: {row['note']}.")
    lines += ["", "## Growth laws fitted", "",
              "Power laws are fitted in log-log (`a x rows^b`), memory as a straight line (`a + b x rows`).", ""]
    for (index_type, figure), fit_ in sorted(fc.fits.items()):
        lines.append(f"- {index_type} `{figure}` = {fit_.describe()} (from {fit_.points} sizes, "
                     f"{fit_.rows_min:,}-{fit_.rows_max:,} rows)")
    lines += ["", "## Memory formulas and Milvus sizing", "",
              f"`formula` is the published formula (milvus_lab.lab.sizing names its source: the Milvus sizing tool, "
              f"or faiss). Loading memory follows the sizing tool's rule, (index + {sizing.LOADING_SEGMENTS} x "
              f"{sizing.DEFAULT_SEGMENT_MB} MB segments) x {sizing.LOADING_EXPANSION:g}, applied to the upper end of "
              f"the forecast memory; a Milvus 2.x query node loads while its predicted memory stays below "
              f"{sizing.QUERY_NODE_MEMORY_THRESHOLD:.0%} of its total ({fc.query_node_gb:g} GB nodes here); the sizing "
              f"tool's own node table is given beside it.", ""]
    for _, row in fc.table.iterrows():
        if row["status"] == "ok" and isinstance(row["formula"], str):
            gap = row["formula_gap"]
            lines.append(f"- {row['index_type']}: {row['formula']} = {row['formula_memory_mb']:,.0f} MB"
                         + (f" (measured growth {gap:+.1%})" if gap == gap else "")
                         + f"; loading {row['loading_memory_mb']:,.0f} MB -> {row['query_nodes']} query node(s) of "
                         f"{fc.query_node_gb:g} GB (sizing tool's table: {row['sizing_tool_nodes']})")
    code = []
    for _, row in fc.table.iterrows():
        if row["status"] != "ok":
            continue
        try:
            lines2 = fc.code(row["index_type"], target="pymilvus-2")
        except Exception as exc:  # noqa: BLE001 - a type Milvus 2.x lacks: say why instead of the lines
            code.append(f"- {row['index_type']}: no Milvus 2.x lines ({exc})")
            continue
        code += [f"- {row['index_type']}:", "", "```python", lines2, "```", ""]
    if code:
        lines += ["", "## The forecast settings for Milvus 2.x (pymilvus)", "", *code]
    if fc.machine_memory_gb:
        fits = [r["index_type"] for _, r in fc.table.iterrows() if r["fits_machine"] is True]
        lines += ["", f"This machine ({fc.machine_memory_gb:,.1f} GB) holds in memory: "
                  f"{', '.join(fits) if fits else 'none of the forecast settings'}."]
    lines += ["", f"Forecast took {fc.wall_s:,.0f} s."]
    return "\n".join(lines) + "\n"


def _limit(column: str) -> float:
    """How far beyond the largest sample a panel's figure is forecast (the forecast's MAX_FACTOR)."""
    if column == "memory_mb":
        return MAX_FACTOR["memory"]
    return MAX_FACTOR["search"] if column == "search_value" else MAX_FACTOR["timing"]


def _short(rows: float) -> str:
    """12.5k, 400k, 10M: a row count short enough for a tick label."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rows >= div:
            return f"{rows / div:.3g}{unit}"
    return f"{rows:.0f}"


def plot(fc: Any, index_types: Iterable[str] | None = None) -> Figure:
    """Five panels on log axes (search need, memory, build time, QPS, p99) against rows, the legend in the
    sixth; under them, in a strip the layout keeps free (:func:`~milvus_lab.figures.add_notes`), a caption
    saying what dots, lines, bands and diamonds are, why a type is not shown, and the busy-machine warning."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    from ..figures import add_notes

    names = [check_index_type(t).name for t in index_types] if index_types is not None else \
        [t for t in fc.table["index_type"] if (t, "memory_mb") in fc.fits]
    fig, axes = plt.subplots(2, 3, figsize=(14, 8.5), layout="constrained")
    flat = axes.ravel()
    grid = np.geomspace(min(fc.sizes), fc.rows, 60)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    timed = fc.points[fc.points["phase"] == "timed"] if len(fc.points) else fc.points
    for ax, (col, label, measured) in zip(flat, PANELS):
        for i, name in enumerate(names):
            fit_ = fc.fits.get((name, col))
            if fit_ is None:
                continue
            color = colors[i % len(colors)]
            pts = timed[timed["index_type"] == name]
            ax.plot(pts["rows"], pts[measured], "o", color=color, label=name)
            reach = grid <= max(fc.sizes) * _limit(col)  # no curve where the table prints no number
            centre, lo, hi = fit_.curve(grid[reach])
            inside = grid[reach] <= fit_.rows_max
            shown = grid[reach]
            ax.plot(shown[inside], centre[inside], "-", color=color, lw=1.2)
            ax.plot(shown[~inside], centre[~inside], "--", color=color, lw=1.2)
            ax.fill_between(shown[~inside], lo[~inside], hi[~inside], color=color, alpha=0.15, lw=0)
            row = fc.table[fc.table["index_type"] == name].iloc[0]
            value, low, high = row.get(col), row.get(f"{col}_lo"), row.get(f"{col}_hi")
            if value == value and low == low and high == high:
                ax.errorbar([fc.rows], [value], yerr=[[value - low], [high - value]], fmt="D", color=color,
                            capsize=4, ms=6)
        ax.axvline(fc.rows, color="0.4", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = sorted({*fc.sizes, fc.rows})
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _short(v)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        ax.set_xlabel("rows")
        ax.set_ylabel(label)
    legend_ax = flat[-1]
    legend_ax.axis("off")
    seen: dict[str, object] = {}
    for ax in flat[:-1]:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(name, handle)
    order = [name for name in names if name in seen]
    legend_ax.legend([seen[name] for name in order], order, loc="upper left", title="index type", frameon=False)
    caption = (f"Dots: measured at {', '.join(f'{s:,}' for s in fc.sizes)} rows. Solid: the fitted law; dashed: "
               f"extrapolated, with its {LEVEL:.0%} band. Diamond: the forecast at {fc.rows:,} rows (dotted line), "
               f"bars: its {LEVEL:.0%} interval.")
    notes = [(caption, "0.25")]
    for _, row in fc.table.iterrows():
        if row["index_type"] not in seen and (index_types is None or row["index_type"] in names):
            note = row["note"] if isinstance(row["note"], str) and row["note"].strip() else ""
            notes.append((f"Not shown: {row['index_type']} ({row['status']})" + (f": {note}" if note else ""),
                          "dimgray"))
    if fc.error:
        notes.append((f"Stopped early: {fc.error}", "firebrick"))
    if fc.busy_warning:
        notes.append((fc.busy_warning, "firebrick"))
    add_notes(fig, notes)
    fig.suptitle(f"Forecast at {fc.rows:,} rows for recall >= {fc.target_recall:g} (k={fc.k})")
    return fig
