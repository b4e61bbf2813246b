"""Parity: the same index type and parameters measured in memory and on a Milvus server, side by side.

Both sides go through the lab's one measurement protocol (:class:`~milvus_lab.lab.Session`) on the same
dataset, queries and ground truth, so recall must agree where the algorithms agree (IVF_FLAT, IVF_SQ8,
HNSW at the same parameters), while build time and QPS are each target's own: the server's include the
network round trip and pymilvus, and its build time includes loading the collection.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import spec
from ..engine import Engine
from ..errors import InvalidParameterError, ServerError
from .measurements import STATUS_SERVER_ERROR, LabWarning, Session, measure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from .datasets import Dataset
    from ..protocol import Target

#: measured columns shown side by side (``<name>_memory`` / ``<name>_server``)
SIDE_COLUMNS = ("recall", "build_s", "qps", "p50_ms", "p99_ms", "status")


def memory_profile(metric: str) -> str:
    """The rules of parity's in-memory side: Milvus 0.10's, or Milvus 2.3's for a metric only it has (COSINE,
    which the engine then computes as Milvus does: IP on normalised rows)."""
    return spec.profile_for_metric(metric)


def _both(index_type: str, dim: int, metric: str, rows: int) -> str | None:
    """Why ``index_type`` cannot be compared on this data (None: both targets have it)."""
    for profile in (memory_profile(metric), spec.SERVER_PROFILE):
        why = spec.unavailable_reason(index_type, dim=dim, metric=metric, profile=profile, rows=rows)
        if why:
            return why
    return None


def common_index_types(dataset: Dataset) -> list[str]:
    """Index types both milvus_lab in memory and a Milvus 2.3 server can build on ``dataset`` (spec order)."""
    types = spec.index_types_for_metric(dataset.metric, profile=spec.SERVER_PROFILE)
    return [t for t in types if _both(t, dataset.dim, dataset.metric, dataset.n) is None]


def default_settings(dataset: Dataset, index_types: Iterable[str] | None = None, *, k: int = 10
                     ) -> list[tuple[str, dict[str, int], dict[str, int]]]:
    """One (index type, build params, search params) per type both targets have: the spec's defaults,
    valid under both profiles (a default only one side accepts is moved inside the other's range)."""
    out = []
    for index_type in index_types or common_index_types(dataset):
        build = spec.default_build_params(index_type, dataset.dim, profile=spec.SERVER_PROFILE)
        spec.validate_build(index_type, build, dim=dataset.dim, metric=dataset.metric, warn=False,
                            profile=memory_profile(dataset.metric))
        search = spec.default_search_params(index_type, k, build, profile=spec.SERVER_PROFILE)
        spec.validate_search(index_type, search, top_k=k, build_params=build,
                             profile=memory_profile(dataset.metric))
        out.append((spec.get_index(index_type, profile=spec.SERVER_PROFILE).name, build, search))
    return out


def _settings(settings: Any, dataset: Dataset, k: int) -> list[tuple[str, dict[str, int], Any]]:
    if settings is None:
        return default_settings(dataset, k=k)
    out = []
    for item in settings:
        if isinstance(item, Mapping):
            out.append((item["index_type"], dict(item.get("build_params") or {}), item.get("search_params")))
        elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) in (2, 3):
            out.append((item[0], dict(item[1] or {}), item[2] if len(item) == 3 else None))
        else:
            raise InvalidParameterError(
                f"a parity setting is (index_type, build_params, search_params) or a dict with those keys; "
                f"got {item!r}")
    return out


def _side(frame: pd.DataFrame, suffix: str) -> pd.DataFrame:
    keep = [c for c in SIDE_COLUMNS if c in frame]
    return frame[keep].rename(columns={c: f"{c}_{suffix}" for c in keep}).reset_index(drop=True)


def parity(dataset: Dataset, target: Target, settings: Iterable[Any] | None = None, *, k: int = 10,
           latency_queries: int | None = None, repeats: int | None = None, progress: bool = False) -> pd.DataFrame:
    """Measure each setting in memory and on ``target`` (a :func:`milvus_lab.server.connect` target): one row per
    search setting with ``recall_memory`` / ``recall_server`` / ``recall_diff`` (server minus memory),
    ``build_s_*`` (the server's includes loading), ``qps_*``, ``p50_ms_*``, ``p99_ms_*`` side by side.

    ``settings``: (index_type, build_params, search_params) tuples or dicts with those keys; search_params may
    be a dict of lists (``{"nprobe": [8, 32]}``); default: every type both targets have, at the spec's defaults.
    The server side runs in one collection the lab creates and drops. If the server fails mid-way, the rows
    measured so far are returned, the failing one with ``status_server="server error"`` and the error (URI and
    step) in ``note`` and ``df.attrs["error"]``, and a LabWarning says so.
    """
    import pandas as pd

    k = dataset.check_k(k)
    plan = _settings(settings, dataset, k)
    extra: dict[str, Any] = {}
    if latency_queries is not None:
        extra["latency_queries"] = latency_queries
    if repeats is not None:
        extra["repeats"] = repeats
    dataset.ground_truth(k)
    parts: list[pd.DataFrame] = []
    error: ServerError | None = None
    started = time.perf_counter()
    server_session = Session(target=target)
    rules = memory_profile(dataset.metric)
    memory_engine = Engine(build_threshold=1, profile=rules)
    memory_session = Session(target=memory_engine)
    try:
        for step, (index_type, build, search) in enumerate(plan, 1):
            if progress:
                print(f"[{step}/{len(plan)}] {index_type} {spec.format_params(build) or '-'}", flush=True)
            mem = measure(dataset, index_type, build, search, k=k, session=memory_session, **extra)
            ids = mem[["index_type", "build_params", "search_params"]].reset_index(drop=True)
            try:
                srv = measure(dataset, index_type, build, search, k=k, session=server_session, **extra)
            except ServerError as exc:
                error = exc
                srv = pd.DataFrame({"status": [STATUS_SERVER_ERROR] * len(mem)})
            part = pd.concat([ids, _side(mem, "memory"), _side(srv, "server")], axis=1)
            notes = [n for n in (mem.get("note"), srv.get("note")) if n is not None]
            part["note"] = ["; ".join(str(n[i]) for n in notes if isinstance(n[i], str) and n[i]) for i in
                            range(len(part))]
            if error is not None:
                part["note"] = str(error)
                parts.append(part)
                break
            parts.append(part)
    finally:
        memory_session.close()
        memory_engine.close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a dead server cannot drop: the error below says what happened
            server_session.close()
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["index_type"])
    if "recall_memory" in df and "recall_server" in df:
        df["recall_diff"] = df["recall_server"] - df["recall_memory"]
    order = ["index_type", "build_params", "search_params"]
    for name in SIDE_COLUMNS:
        order += [f"{name}_memory", f"{name}_server"] + (["recall_diff"] if name == "recall" else [])
    df = df[[c for c in order if c in df] + [c for c in df if c not in order]]
    df.attrs.update(dataset=dataset.name, n=dataset.n, nq=dataset.nq, k=k, server=target.describe(),
                    memory="milvus_lab in memory" + ("" if rules == spec.DEFAULT_PROFILE else
                                                     f" ({spec.get_profile(rules).title} rules)"),
                    seconds=time.perf_counter() - started)
    if error is not None:
        df.attrs["error"] = str(error)
        warnings.warn(f"parity stopped: {error}; the {len(df) - 1} row(s) measured before are kept",
                      LabWarning, stacklevel=2)
    return df


def parity_markdown(df: pd.DataFrame) -> str:
    """The parity table as Markdown (recall to 3 decimals, times to 2, QPS to whole numbers)."""
    cols = [c for c in df.columns if c != "note"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = []
        for c in cols:
            value = row[c]
            if isinstance(value, float):
                fmt = "{:.3f}" if c.startswith("recall") else "{:,.0f}" if c.startswith("qps") else "{:.2f}"
                cells.append("" if value != value else fmt.format(value))
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_parity(df: pd.DataFrame) -> Figure:
    """One figure, three panels sharing one row per setting: recall, build time (s, log; the server's includes
    loading) and batch QPS (log), a bar in memory and one on the server for each setting. The legend sits beside
    the panels, a setting not measured on a side is left without a bar and named with its reason in a note
    under the figure (as is the run's error), so no text covers a bar or another text."""
    import numpy as np

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from ..figures import NotebookFigure, add_notes, legend_outside
    from .timing import setting_label

    labels = [setting_label(r.index_type, r.build_params, r.search_params) for r in df.itertuples()]
    y = np.arange(len(df))
    fig = NotebookFigure(figsize=(13.0, 1.6 + 0.45 * max(len(df), 3)), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    panels = (("recall", "recall (k-recall@k)", False), ("build_s", "build time (s, log; server: incl. load)", True),
              ("qps", "queries per second (batch, log)", True))
    sides = (("memory", df.attrs.get("memory", "milvus_lab in memory"), "tab:blue", -0.2),
             ("server", df.attrs.get("server", "server"), "tab:orange", 0.2))
    for ax, (name, title, log) in zip(axes, panels):
        for side, side_label, colour, shift in sides:
            col = f"{name}_{side}"
            values = df[col].astype(float).to_numpy() if col in df else np.full(len(df), np.nan)
            ax.barh(y + shift, values, height=0.4, color=colour, label=side_label)  # NaN: no bar
        ax.set_title(title, fontsize=10)
        if log:  # plain ticks, at 1, 2 and 5 when the range is narrow, at each power of ten when it is wide
            ax.set_xscale("log")
            low, high = ax.get_xlim()
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if high / low < 30 else (1.0,)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_xlim(0, 1.02)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].set_ylim(len(df) - 0.5, -0.5)  # the first setting on top, as in the table
    legend_outside(axes[-1], fontsize=8)
    error = df.attrs.get("error")
    notes = []
    for row, label in zip(df.itertuples(), labels):
        for side, side_label, _, _ in sides:
            status = getattr(row, f"status_{side}", "ok")
            if status != "ok":
                note = getattr(row, "note", "")
                note = note if isinstance(note, str) and note and note != error else ""
                notes.append((f"No {side} bars for {label} ({side_label}): {status}" + (f": {note}" if note else ""),
                              "dimgray"))
    if error:
        notes.append((f"Parity stopped: {error}", "firebrick"))
    add_notes(fig, notes)
    fig.suptitle(f"Parity on {df.attrs.get('dataset', 'the dataset')}: milvus_lab in memory vs "
                 f"{df.attrs.get('server', 'a Milvus server')}")
    return fig
