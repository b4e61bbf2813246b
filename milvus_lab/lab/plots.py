"""Plots of lab results (matplotlib): each function takes the results DataFrame and returns a Figure.

Figures are made with ``matplotlib.figure.Figure`` (not pyplot), so they show once in Jupyter, leak no
global state and work under any backend. :func:`save_figure` writes PNG and SVG in one call.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import spec
from ..units import KIB, MIB
from .measurements import STATUS_OK, param_column
from .metrics import pareto_mask
from .report import warnings_of

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_MARKERS = "osD^vP*Xh<>"
#: the spread columns of a measured column (lowest and highest repetition)
SPREAD = {"qps": ("qps_lo", "qps_hi"), "p50_ms": ("p50_lo", "p50_hi"), "p99_ms": ("p99_lo", "p99_hi")}


def type_style(index_type: str) -> dict[str, Any]:
    """A fixed colour and marker per index type (the spec's order), the same in every plot."""
    from matplotlib import colormaps

    i = list(spec.INDEX_TYPES).index(index_type) if index_type in spec.INDEX_TYPES else len(spec.INDEX_TYPES)
    return {"color": colormaps["tab10"](i % 10), "marker": _MARKERS[i % len(_MARKERS)]}


def _measured(results: pd.DataFrame) -> pd.DataFrame:
    ok = results[(results["status"] == STATUS_OK) & results["recall"].notna()]
    if ok.empty:
        raise ValueError("no measured rows to plot (every row is skipped, not indexed or failed)")
    return ok


def _context(results: pd.DataFrame) -> str:
    parts = []
    for col, fmt in (("dataset", "{}"), ("n", "n={:,}"), ("dim", "d={}"), ("nq", "{:,} queries"), ("k", "k={}")):
        if col in results and results[col].notna().any():
            values = results[col].dropna().unique()
            if len(values) == 1:
                parts.append(fmt.format(values[0]))
    return ", ".join(parts)


def _recall_label(results: pd.DataFrame) -> str:
    ks = results["k"].dropna().unique() if "k" in results else []
    return f"Recall ({int(ks[0])}-recall@{int(ks[0])})" if len(ks) == 1 else "Recall (k-recall@k)"


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (10, 5.5)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    from ..figures import NotebookFigure

    fig = NotebookFigure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _repeats_text(results: pd.DataFrame) -> str:
    reps = results["repeats"].dropna().unique() if "repeats" in results else []
    return f"the {int(reps[0])} timing rounds" if len(reps) == 1 else "the timing rounds"


def _frontier_plot(results: pd.DataFrame, y: str, y_higher: bool, ylabel: str, title: str,
                   ax: Axes | None, all_points: bool) -> Figure:
    from ..figures import legend_outside, place_labels

    ok = _measured(results)
    fig, ax = _new_axes(ax)
    labelled: list[tuple[float, float, str, Any]] = []
    has_bars = False
    for index_type, group in ok.groupby("index_type", sort=False):
        style = type_style(index_type)
        mask = pareto_mask(group["recall"], group[y], x_higher=True, y_higher=y_higher)
        front = group[mask].sort_values("recall")
        if all_points:
            rest = group[~mask]
            ax.scatter(rest["recall"], rest[y], color=style["color"], marker=style["marker"], alpha=0.25, s=18)
        ax.plot(front["recall"], front[y], color=style["color"], marker=style["marker"], label=index_type,
                linewidth=1.8, markersize=5)
        several_builds = group["build_params"].nunique() > 1
        labelled += [(p["recall"], p[y], point_label(p, with_build=several_builds), style["color"])
                     for _, p in front.iterrows()]
        lo, hi = SPREAD.get(y, (None, None))
        if lo in front and front[lo].notna().any():
            has_bars = True
            pts = group if all_points else front
            err = np.vstack([(pts[y] - pts[lo]).clip(lower=0), (pts[hi] - pts[y]).clip(lower=0)])
            ax.errorbar(pts["recall"], pts[y], yerr=err, fmt="none", ecolor=style["color"], alpha=0.6, capsize=2,
                        linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel(_recall_label(ok))
    ax.set_ylabel(ylabel)
    context = _context(ok)
    ax.set_title(title + (f"\n{context}" if context else ""))
    ax.grid(True, which="both", alpha=0.3)
    legend_outside(ax, title="index type", fontsize="small")
    better = "faster" if y_higher else "lower in latency"
    caption = (f"Lines join each index type's Pareto frontier: the settings no other setting of that type beats on "
               f"both recall and being {better}; labels name their parameters where there is room.")
    if all_points:
        caption += " Faded points are the type's other settings (dominated)."
    if has_bars:
        caption += (f" Bars span the lowest to the highest {'QPS' if y == 'qps' else 'latency'} over "
                    f"{_repeats_text(ok)}.")
    _write_notes(fig, results, caption=caption)
    labelled.sort(key=lambda p: -p[0])
    place_labels(ax, [p[0] for p in labelled], [p[1] for p in labelled], [p[2] for p in labelled],
                 colors=[p[3] for p in labelled], fontsize=6.5)
    return fig


def missing_reasons(results: pd.DataFrame, index_types: Iterable[str] | None = None) -> dict[str, str]:
    """Why each index type with no measured row is missing, from its rows' status and note (the first
    reason per type), e.g. ``{"IVF_PQ": "IVF_PQ cannot index 50-dimensional vectors: ..."}``."""
    measured = set(results.loc[(results["status"] == STATUS_OK) & results["recall"].notna(), "index_type"])
    wanted = None if index_types is None else set(index_types)
    out: dict[str, str] = {}
    for _, r in results[results["status"] != STATUS_OK].iterrows():
        name = r["index_type"]
        if name in measured or name in out or (wanted is not None and name not in wanted):
            continue
        note = r["note"] if isinstance(r["note"], str) and r["note"].strip() else str(r["status"])
        out[name] = note if note.startswith(name) else f"{name}: {note}"
    return out


def _write_notes(fig: Figure, results: pd.DataFrame, index_types: Iterable[str] | None = None, *,
                 caption: str = "", extra: Sequence[str] = ()) -> None:
    """Write under the figure, in a strip the layout keeps free: the caption (what lines, faded points and
    bars mean), ``extra`` findings, why index types are missing, and the run's warnings (small
    measurement, busy machine, reproducibility)."""
    from ..figures import add_notes

    notes = [(caption, "0.25")] if caption else []
    notes += [(text, "darkorange") for text in extra]
    notes += [(f"Not shown: {reason}", "dimgray") for reason in missing_reasons(results, index_types).values()]
    notes += [(text, "firebrick") for text in warnings_of(results)]
    add_notes(fig, notes)


def plot_recall_qps(results: pd.DataFrame, ax: Axes | None = None, *, all_points: bool = True) -> Figure:
    """Recall vs queries per second (log scale): each index type's Pareto frontier, all points faint."""
    return _frontier_plot(results, "qps", True, "Queries per second (batch, log scale; higher is better)",
                          "Recall vs throughput", ax, all_points)


def plot_recall_latency(results: pd.DataFrame, ax: Axes | None = None, *, percentile: str = "p99",
                        all_points: bool = True) -> Figure:
    """Recall vs single-query latency percentile (``p50``, ``p95`` or ``p99``; ms, log scale)."""
    if percentile not in ("p50", "p95", "p99"):
        raise ValueError(f"percentile must be p50, p95 or p99; got {percentile!r}")
    return _frontier_plot(results, f"{percentile}_ms", False,
                          f"{percentile} single-query latency (ms, log scale; lower is better)",
                          f"Recall vs {percentile} latency", ax, all_points)


def _loads(text: object) -> dict[str, Any]:
    return json.loads(text) if isinstance(text, str) and text else {}


def point_label(row: pd.Series, with_build: bool = False) -> str:
    """A measured point's parameters, e.g. ``nprobe=16`` (``nlist=256, nprobe=16`` with its build; a build
    parameter that shares a search parameter's name is called ``build search_length=45``)."""
    search = _loads(row["search_params"])
    parts = [_build_params_text(row) if with_build else "", spec.format_params(search) if search else ""]
    return ", ".join(p for p in parts if p)


def _build_params_text(row: pd.Series, sep: str = ", ") -> str:
    """The build parameters of ``row``; names that are also search parameters get a ``build`` prefix."""
    params = _loads(row["build_params"])
    searchable = set(spec.get_index(row["index_type"]).search) if row["index_type"] in spec.INDEX_TYPES else set()
    return sep.join(f"{'build ' if k in searchable else ''}{spec.format_params({k: v})}" for k, v in params.items())


def _build_label(row: pd.Series, sep: str = "\n") -> str:
    """``IVF_FLAT`` and its build parameters, one per line (or joined by ``sep``)."""
    params = _build_params_text(row, sep)
    return sep.join([row["index_type"], *([params] if params else [])])


def format_mb(mb: float) -> str:
    """Memory in MiB as a readable label: ``586 KiB``, ``72 B``, ``12.3 MB``."""
    if mb != mb:
        return ""
    size = mb * MIB
    if size < KIB:
        return f"{size:.0f} B"
    if size < MIB:
        return f"{size / KIB:.3g} KiB"
    return f"{mb:,.3g} MB" if mb < 1000 else f"{mb:,.0f} MB"


def format_seconds(s: float) -> str:
    """A duration as a readable label: ``47 µs``, ``3.2 ms``, ``1.25 s``."""
    if s != s:
        return ""
    if s == 0:
        return "0 s"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:,.3g} s" if s < 1000 else f"{s:,.0f} s"


def plot_build_memory(results: pd.DataFrame) -> Figure:
    """Build time (s) and index memory (MB) of every build, as bars coloured by index type."""
    from ..figures import NotebookFigure

    ok = _measured(results).drop_duplicates(["index_type", "build_params"])
    labels = [_build_label(r) for _, r in ok.iterrows()]
    colors = [type_style(t)["color"] for t in ok["index_type"]]
    fig = NotebookFigure(figsize=(max(8.0, 1.5 * len(ok) + 1), 7.5), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    x = np.arange(len(ok))
    for ax, col, ylabel, fmt in ((axes[0], "build_s", "Build time (s)", format_seconds),
                                 (axes[1], "memory_mb", "Index memory (MB)", format_mb)):
        bars = ax.bar(x, ok[col], color=colors)
        ax.bar_label(bars, labels=[fmt(v) for v in ok[col]], fontsize="x-small")
        ax.set_ylabel(ylabel)
        ax.margins(y=0.15)
        ax.grid(True, axis="y", alpha=0.3)
    axes[1].set_xticks(x, labels, fontsize="x-small")
    axes[1].set_xlabel("Build (index type and build parameters); FLAT's memory is the raw vectors")
    context = _context(ok)
    axes[0].set_title("Build time and memory per build" + (f"\n{context}" if context else ""))
    _write_notes(fig, results, caption="Each bar is one build, coloured by index type: the seconds it took (top) "
                                       "and the memory its index holds (bottom).")
    return fig


def plot_parameter(results: pd.DataFrame, index_type: str, param: str | None = None) -> Figure:
    """Recall (top panel) and QPS (bottom panel, log) against one search parameter of ``index_type``, one
    line per build, the panels sharing the x axis. ``param`` defaults to the index type's search parameter
    in the spec."""
    from ..figures import NotebookFigure, legend_outside, place_labels

    index_spec = spec.get_index(index_type)
    if param is None:
        if not index_spec.search:
            raise ValueError(f"{index_spec.name} has no search parameter to plot against")
        param = next(iter(index_spec.search))
    column = param_column(index_spec.name, "search", param) if param in index_spec.search else param
    ok = _measured(results)
    mine = ok[ok["index_type"] == index_spec.name]
    if mine.empty:
        why = missing_reasons(results, [index_spec.name]).get(index_spec.name)
        raise ValueError(f"no measured rows for {index_spec.name}" + (f" ({why})" if why else ""))
    if column not in mine or mine[column].isna().all():
        raise ValueError(f"{index_spec.name} rows have no values for {param!r}")
    fig = NotebookFigure(figsize=(10, 7.5), layout="constrained")
    ax, qps_ax = fig.subplots(2, 1, sharex=True)
    builds = list(dict.fromkeys(mine["build_params"]))
    style = type_style(index_spec.name)
    labelled: list[tuple[float, float, str, str]] = []
    falls: list[str] = []
    for i, build in enumerate(builds):
        rows = mine[mine["build_params"] == build].sort_values(column)
        x = rows[column].astype(float)
        label = _build_params_text(rows.iloc[0]) or "default build"
        ax.plot(x, rows["recall"], marker=style["marker"], color=f"C{i}", label=textwrap.fill(label, 32))
        qps_ax.plot(x, rows["qps"], marker=style["marker"], color=f"C{i}", label=label)
        lo, hi = SPREAD["qps"]
        if lo in rows and rows[lo].notna().any():
            err = np.vstack([(rows["qps"] - rows[lo]).clip(lower=0), (rows[hi] - rows["qps"]).clip(lower=0)])
            qps_ax.errorbar(x, rows["qps"], yerr=err, fmt="none", ecolor=f"C{i}", alpha=0.6, capsize=2, linewidth=1)
        labelled += [(xv, rv, f"{param}={xv:g}", f"C{i}") for xv, rv in zip(x, rows["recall"])]
        fall = recall_fall(rows, column, param)
        if fall:
            falls.append(f"{index_spec.name} {label}: {fall}")
    sweep = index_spec.search[param].sweep if param in index_spec.search else "linear"
    if sweep == "log2":
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        qps_ax.set_xscale("log", base=2)
        ticks = sorted(mine[column].dropna().astype(float).unique())
        qps_ax.set_xticks(ticks)
        qps_ax.xaxis.set_major_formatter(ScalarFormatter())
        qps_ax.xaxis.set_minor_formatter(NullFormatter())
    qps_ax.set_yscale("log")
    where = "search" if param in index_spec.search else "build"
    qps_ax.set_xlabel(f"{param} ({where} parameter of {index_spec.name})")
    ax.set_ylabel(_recall_label(mine))
    qps_ax.set_ylabel("Queries per second (log scale)")
    ax.set_ylim(0, 1.05)
    for a in (ax, qps_ax):
        a.grid(True, which="both", alpha=0.3)
    context = _context(mine)
    ax.set_title(f"{index_spec.name}: recall and QPS vs {param}" + (f"\n{context}" if context else ""))
    legend_outside(ax, title="build", fontsize="small")
    caption = f"One line per build; labels name the {param} of a point where there is room."
    if SPREAD["qps"][0] in mine and mine[SPREAD["qps"][0]].notna().any():
        caption += f" Bars span the lowest to the highest QPS over {_repeats_text(mine)}."
    _write_notes(fig, results, [index_spec.name], caption=caption, extra=falls)
    place_labels(ax, [p[0] for p in labelled], [p[1] for p in labelled], [p[2] for p in labelled],
                 colors=[p[3] for p in labelled], fontsize=6.5)
    return fig


def recall_fall(rows: pd.DataFrame, column: str, param: str) -> str:
    """A sentence when recall falls as ``column`` grows along one build's ``rows`` (the largest drop below an
    earlier, smaller setting's recall, at least one hit in a thousand), saying whether the two measurements'
    95% intervals overlap; empty when recall never falls."""
    rows = rows.sort_values(column)
    recall = rows["recall"].to_numpy(float)
    if len(recall) < 2:
        return ""
    drop = np.maximum.accumulate(recall) - recall
    j = int(np.argmax(drop))
    if drop[j] < 1e-3:
        return ""
    i = int(np.argmax(recall[: j + 1]))
    x = rows[column].to_numpy(float)
    text = (f"recall falls as {param} grows, from {recall[i]:.3f} at {param}={x[i]:g} to {recall[j]:.3f} at "
            f"{param}={x[j]:g}: a larger {param} is not always better here")
    if {"recall_lo", "recall_hi"} <= set(rows.columns):
        lo, hi = rows["recall_lo"].to_numpy(float), rows["recall_hi"].to_numpy(float)
        if np.isfinite([lo[i], hi[j]]).all():
            text += (" (the two 95% intervals overlap, so the fall may be noise)" if hi[j] >= lo[i]
                     else " (beyond both measurements' 95% intervals)")
    return text + "."


def plot_all(results: pd.DataFrame) -> dict[str, Figure]:
    """Every lab plot for ``results``: recall–QPS, recall–p99, build/memory, and one per-parameter plot
    for each measured index type that has a search parameter."""
    figs = {"recall_qps": plot_recall_qps(results), "recall_p99": plot_recall_latency(results),
            "build_memory": plot_build_memory(results)}
    ok = _measured(results)
    for index_type in dict.fromkeys(ok["index_type"]):
        if spec.get_index(index_type).search:
            figs[f"param_{index_type}"] = plot_parameter(results, index_type)
    return figs


def save_figure(fig: Figure, path: str | os.PathLike, formats: Sequence[str] | None = None,
                dpi: int = 150) -> list[Path]:
    """Save ``fig``: to ``path`` as named when it has a suffix, otherwise as ``path.png`` and ``path.svg``
    (or each of ``formats``). Folders are created. Returns the written paths."""
    path = Path(path)
    if formats is None:
        formats = [path.suffix.lstrip(".")] if path.suffix else ["png", "svg"]
    stem = path.with_suffix("") if path.suffix else path
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = stem.with_name(f"{stem.name}.{fmt.lstrip('.')}")
        fig.savefig(target, dpi=dpi, bbox_inches="tight")
        written.append(target)
    return written


def save_plots(results: pd.DataFrame, folder: str | os.PathLike, formats: Iterable[str] = ("png", "svg"),
               dpi: int = 150) -> list[Path]:
    """Write every plot of :func:`plot_all` into ``folder`` in each format; returns the paths."""
    written: list[Path] = []
    for name, fig in plot_all(results).items():
        written += save_figure(fig, Path(folder) / name, list(formats), dpi=dpi)
    return written
