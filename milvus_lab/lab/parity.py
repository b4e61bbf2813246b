"""Parity: the same index type and parameters measured in memory and on a Milvus server, side by side.

Both sides go through the lab's one measurement protocol (:class:`~milvus_lab.lab.Session`) on the same
dataset, queries and ground truth, so recall must agree where the algorithms agree (IVF_FLAT, IVF_SQ8,
HNSW at the same parameters), while build time and QPS are each target's own: the server's include the
network round trip and pymilvus, and its build time includes loading the collection.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, closing, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from .. import spec
from ..engine import Engine
from ..errors import InvalidParameterError, ParamError, ServerError
from .arguments import check, check_target
from .datasets import check_dataset
from .measurements import (
    STATUS_SERVER_ERROR,
    LabWarning,
    Session,
    expand_search_params,
    measure,
    resolve_build_params,
    session_scope,
    target_profile,
)
from .setting import Setting
from .timing import DEFAULT_LATENCY_QUERIES

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from .datasets import Dataset
    from ..protocol import Target

#: measured columns shown side by side (``<name>_memory`` / ``<name>_server``)
SIDE_COLUMNS = ("recall", "build_s", "qps", "p50_ms", "p99_ms", "status")

T = TypeVar("T")


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


# --------------------------------------------------------------------------------------------------
# Checking the arguments and planning the settings (before anything is built)
# --------------------------------------------------------------------------------------------------
def _check_server(value: Any) -> Target:
    """``value`` if it is a Target (an Engine or a server connection; required here, None is refused) that can
    describe itself; ParamError naming ``target`` otherwise."""
    check_target(value, required=True)
    try:
        ok = callable(getattr(value, "describe", None))
    except Exception:  # noqa: BLE001 - a hostile __getattr__
        ok = False
    if not ok:
        raise ParamError(f"target must be a milvus_lab Target (an Engine, or milvus_lab.server.connect(uri)); "
                         f"got {spec.show_value(value)}")
    return value


def _requested(settings: Any) -> list[tuple[Any, Any, Any]]:
    """``settings`` as (index_type, build_params, search_params) as given (build_params None: {}); the shapes
    are checked here, the values by :func:`_checked`."""
    if isinstance(settings, (str, bytes, Mapping)) or not isinstance(settings, Iterable):
        raise ParamError(f"settings must be a list of (index_type, build_params, search_params) tuples or dicts "
                         f"with those keys, or None; got {spec.show_value(settings)}")
    out = []
    for item in settings:
        if isinstance(item, Mapping) and "index_type" in item:
            out.append((item["index_type"], _params(item.get("build_params")), item.get("search_params")))
        elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) in (2, 3):
            out.append((item[0], _params(item[1]), item[2] if len(item) == 3 else None))
        else:
            raise InvalidParameterError(
                f"a parity setting is (index_type, build_params, search_params) or a dict with those keys; "
                f"got {item!r}")
    return out


def _params(value: Any) -> Any:
    """Build parameters as a dict (None: {}), or as given when dict() cannot read them (the spec then refuses
    them, naming ``build_params``)."""
    try:
        return dict(value or {})
    except (TypeError, ValueError):
        return value


def _checked(dataset: Dataset, index_type: Any, build: Any, search: Any, k: int, profile: str
             ) -> tuple[Setting, ...]:
    """One build's search settings, checked under ``profile`` by the functions :func:`measure` checks them with
    (the same errors and messages)."""
    index_spec, clean = resolve_build_params(dataset, index_type, build, profile)
    searches = expand_search_params(index_spec.name, search, k, clean, profile)
    return tuple(Setting.of(index_spec.name, clean, s) for s in searches)


def _plan_settings(dataset: Dataset, settings: Any, k: int, server_rules: str) -> list[tuple[Setting, ...]]:
    """What parity measures: per requested build, in the order given, its search settings (``{"nprobe": [8, 32]}``
    expanded), sharing the index type and build parameters. Each is checked under the in-memory side's rules and
    the target's (``server_rules``), so a setting either side would refuse is refused here, before anything is
    built; the settings are those the in-memory side would measure."""
    requested = default_settings(dataset, k=k) if settings is None else _requested(settings)
    rules = list(dict.fromkeys((memory_profile(dataset.metric), server_rules)))
    plan = []
    for index_type, build, search in requested:
        checked = [_checked(dataset, index_type, build, search, k, profile) for profile in rules]
        plan.append(checked[0])
    return plan


# --------------------------------------------------------------------------------------------------
# Measuring each side
# --------------------------------------------------------------------------------------------------
@contextmanager
def _closed_quietly(scope: AbstractContextManager[T]) -> Iterator[T]:
    """``scope``'s value; ``scope`` is left with warnings silenced (a dead server cannot drop the collection the
    lab made on it: the error parity returns says what happened)."""
    stack = ExitStack()
    value = stack.enter_context(scope)
    try:
        yield value
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stack.close()


def _side(frame: pd.DataFrame, suffix: str) -> pd.DataFrame:
    keep = [c for c in SIDE_COLUMNS if c in frame]
    return frame[keep].rename(columns={c: f"{c}_{suffix}" for c in keep}).reset_index(drop=True)


def _measure_build(dataset: Dataset, build: tuple[Setting, ...], memory: Session, server: Session, **measure_args: Any
                  ) -> tuple[pd.DataFrame, ServerError | None]:
    """One build's search settings measured in memory, then on the server (each side builds once and times its
    settings interleaved): one row per setting measured in memory, the sides' columns side by side, and the
    server's error if it failed (its rows then have ``status_server="server error"`` and the error as note)."""
    import pandas as pd

    index_type, build_params = build[0].index_type, build[0].build_params
    searches = [s.search_params for s in build]
    mem = measure(dataset, index_type, build_params, searches, session=memory, **measure_args)
    error: ServerError | None = None
    try:
        srv = measure(dataset, index_type, build_params, searches, session=server, **measure_args)
    except ServerError as exc:
        error = exc
        srv = pd.DataFrame({"status": [STATUS_SERVER_ERROR] * len(mem)})
    ids = pd.DataFrame([s.columns() for s in build[:len(mem)]])  # a build not indexed has one row
    part = pd.concat([ids, _side(mem, "memory"), _side(srv, "server")], axis=1)
    notes = [n for n in (mem.get("note"), srv.get("note")) if n is not None]
    part["note"] = ["; ".join(str(n[i]) for n in notes if isinstance(n[i], str) and n[i]) for i in range(len(part))]
    if error is not None:
        part["note"] = str(error)
    return part, error


def _measure_plan(dataset: Dataset, target: Target, plan: list[tuple[Setting, ...]], *, progress: bool,
                 **measure_args: Any) -> tuple[list[pd.DataFrame], ServerError | None]:
    """Each build of ``plan`` measured on both sides (:func:`_measure_build`), in order, in one session on
    ``target`` and one on a new in-memory engine under :func:`memory_profile`'s rules, both closed (their
    collections dropped) on return. A server error stops the run: the frames so far are returned with it, the
    failing build's last."""
    parts = []
    with ExitStack() as stack:
        server = stack.enter_context(_closed_quietly(session_scope(None, target=target)))
        engine = stack.enter_context(closing(Engine(build_threshold=1, profile=memory_profile(dataset.metric))))
        memory = stack.enter_context(session_scope(None, target=engine))
        for step, build in enumerate(plan, 1):
            if progress:
                print(f"[{step}/{len(plan)}] {build[0].index_type} {spec.format_params(build[0].build_params) or '-'}",
                      flush=True)
            part, error = _measure_build(dataset, build, memory, server, **measure_args)
            parts.append(part)
            if error is not None:
                return parts, error
    return parts, None


# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------
def _join_parts(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The builds' frames as one table: ``recall_diff`` (server minus memory) added, the id columns first, then
    each of :data:`SIDE_COLUMNS` in memory / on the server, then the rest (``note``)."""
    import pandas as pd

    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["index_type"])
    if "recall_memory" in df and "recall_server" in df:
        df["recall_diff"] = df["recall_server"] - df["recall_memory"]
    order = ["index_type", "build_params", "search_params"]
    for name in SIDE_COLUMNS:
        order += [f"{name}_memory", f"{name}_server"] + (["recall_diff"] if name == "recall" else [])
    return df[[c for c in order if c in df] + [c for c in df if c not in order]]


def _memory_label(metric: str) -> str:
    """How the table names its in-memory side (with the rules when they are not Milvus 0.10's)."""
    rules = memory_profile(metric)
    return "milvus_lab in memory" + ("" if rules == spec.DEFAULT_PROFILE else
                                     f" ({spec.get_profile(rules).title} rules)")


def parity(dataset: Dataset, target: Target, settings: Iterable[Any] | None = None, *, k: int = 10,
           latency_queries: int | None = None, repeats: int | None = None, progress: bool = False) -> pd.DataFrame:
    """Measure each setting in memory and on ``target`` (a :func:`milvus_lab.server.connect` target): one row per
    search setting with ``recall_memory`` / ``recall_server`` / ``recall_diff`` (server minus memory),
    ``build_s_*`` (the server's includes loading), ``qps_*``, ``p50_ms_*``, ``p99_ms_*`` side by side.

    ``settings``: (index_type, build_params, search_params) tuples or dicts with those keys; search_params may
    be a dict of lists (``{"nprobe": [8, 32]}``); default: every type both targets have, at the spec's defaults.
    Every argument, and every setting under both sides' rules, is checked before anything is built (a bad one
    raises, naming it). The server side runs in one collection the lab creates and drops. If the server fails
    mid-way, the rows measured so far are returned, the failing one with ``status_server="server error"`` and
    the error (URI and step) in ``note`` and ``df.attrs["error"]``, and a LabWarning says so.
    """
    check_dataset(dataset)
    _check_server(target)
    k = dataset.check_k(k)
    latency_queries = check("latency_queries", DEFAULT_LATENCY_QUERIES if latency_queries is None else latency_queries)
    repeats, progress = check("repeats", repeats), check("progress", progress)
    plan = _plan_settings(dataset, settings, k, target_profile(target))
    dataset.ground_truth(k)
    started = time.perf_counter()
    parts, error = _measure_plan(dataset, target, plan, progress=progress, k=k, latency_queries=latency_queries,
                                repeats=repeats)
    df = _join_parts(parts)
    df.attrs.update(dataset=dataset.name, n=dataset.n, nq=dataset.nq, k=k, server=target.describe(),
                    memory=_memory_label(dataset.metric), seconds=time.perf_counter() - started)
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
