"""Forecast: what a setting needs and costs at the size you will deploy, from measurements on a sample.

The dataset's base rows are taken as a random sample of what will be deployed. :func:`forecast` measures each
index type on a **ladder** of nested random subsets (halving from the whole sample: ``n, n/2, n/4, ...``, at
least ``min_rows`` each), always with the same queries, each size's recall against that subset's own exact
neighbours. At each size:

* the build parameters follow one stated rule (:func:`build_rule`): IVF ``nlist = 4·√rows`` (the rule of thumb
  ``compare`` uses, here not rounded to the doubling grid so the growth law stays smooth); every other build
  parameter is the spec's default;
* the search parameter (nprobe, ef, search_length, search_k) is walked up the spec's sweep until recall reaches
  the target, then bisected; the value the target needs is interpolated between the last value below and the
  first at it (straight line in log(value) vs log(1 - recall));
* that setting is timed with the lab's protocol (interleaved rounds, median and spread, busy check), and the
  index memory (counted from the index structures) and build time recorded.

Each figure is then fitted against rows with a stated growth law (:mod:`.growth`: a power law for the search
parameter, build time, QPS and p99; a straight line for memory) and read at ``rows`` with a 95 % prediction
interval that combines the fit's residuals and the measurements' spread and widens with the extrapolation.
Recall at the forecast setting comes from the local recall curve of the largest sample, shifted to the
forecast need; its interval follows the interval of the need. Beyond :data:`MAX_FACTOR` times the largest
sample a figure is not printed (the note says why); beyond :data:`STRETCH_FACTOR` the note says the forecast is
stretching.

Beside the memory forecast: the published formula (:mod:`.sizing`: the Milvus sizing tool's, or faiss's) and
where the measured growth differs from it by more than 5 %; the loading memory by the sizing tool's rule,
applied to the upper end of the forecast memory; the query nodes of ``query_node_gb`` that hold it under
Milvus's 90 % load threshold, and the sizing tool's own node table; whether this machine (or
``machine_memory_gb``) holds the collection and the index in memory.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import spec
from ..errors import ParamError, ServerError
from ..units import GIB, MIB
from . import growth, memory, sizing
from .growth import MAX_FACTOR
from .arguments import check, check_index_type, check_index_types, check_target, index_types_or_all
from .datasets import Dataset, check_dataset
from .measurements import STATUS_OK, LabMemoryError, LabWarning, Session, session_scope
from .metrics import recall_bounds
from .report import result_html, stopped_early
from .setting import Setting
from .sweeps import NLIST_PER_SQRT_ROWS, Progress, search_values
from .timing import (
    DEFAULT_CONCURRENCY_SECONDS,
    DEFAULT_LATENCY_QUERIES,
    ConcurrencyPlan,
    busy_warning,
    check_concurrency,
)
from .tuning import CODE_TARGETS, code_lines, smallest_passing

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from ..protocol import Target

#: sizes of the ladder by default (the whole sample and its halves)
DEFAULT_STEPS = 4
#: the smallest subset the ladder measures by default
DEFAULT_MIN_ROWS = 1_000
#: sizes a fit needs at least (two parameters and one degree of freedom for its spread)
MIN_STEPS = 3
#: beyond this factor the note says the forecast is stretching
STRETCH_FACTOR = 10.0
#: relative resolution of the measured need (bisection stops within 2 %) and of a build time on this kind of
#: machine (a floor under their spread, so two lucky points do not claim more precision than one measurement)
NEED_FLOOR = 0.02
BUILD_FLOOR = 0.10
#: the floor under one timed figure's relative spread (QPS, p99): its rounds say how it moved within the run, but
#: the same setting timed in another run moves more (in three runs of benchmarks/forecast_ivf_law.py its
#: 12,500-row point read 58k, 71k and 72k QPS, each with rounds a few % apart), and no law sees caches filling up
TIMING_FLOOR = 0.05
#: the floor under the spread of the recall deficit's trend at the sweep's first value, when the need itself
#: was not measured: a recall far above the target says little about where it starts to fall (768-d clusters,
#: 50k -> 200k rows: ef=10 kept 0.98 at every sample size and gave 0.83 at 200k), so its interval is wide
DEFICIT_FLOOR = 0.35
#: ... and the setting is then chosen where the deficit's trend is at its 75th percentile (the upper end of a
#: two-sided 50 % interval), a margin for what the trend cannot see; the table's interval stays 95 %
CAUTIOUS_LEVEL = 0.5
#: expected range of m normal draws in standard deviations (d2 of quality control), m = 2..10: turns the lowest
#: and highest of ``repeats`` timing rounds into a standard deviation
_RANGE_D2 = {2: 1.128, 3: 1.693, 4: 2.059, 5: 2.326, 6: 2.534, 7: 2.704, 8: 2.847, 9: 2.970, 10: 3.078}

STATUS_NO_FORECAST = "no forecast"
STATUS_NOT_FORECAST = "not forecast"

TABLE_COLUMNS = [
    "index_type", "rows", "build_params", "search_params", "recall", "recall_lo", "recall_hi",
    "memory_mb", "memory_mb_lo", "memory_mb_hi", "build_s", "build_s_lo", "build_s_hi", "qps", "qps_lo", "qps_hi",
    "p99_ms", "p99_ms_lo", "p99_ms_hi", "search_value", "search_value_lo", "search_value_hi", "formula_memory_mb",
    "formula", "formula_gap", "loading_memory_mb", "query_nodes", "sizing_tool_nodes", "machine_need_mb",
    "fits_machine",
    "extrapolation", "busy", "status", "note",
]
POINT_COLUMNS = ["index_type", "rows", "build_params", "search_params", "phase", "recall", "recall_lo", "recall_hi",
                 "search_value", "needed_value", "qps", "qps_lo", "qps_hi", "p99_ms", "p99_lo", "p99_hi", "build_s",
                 "memory_mb", "busy", "status", "note"]


# --------------------------------------------------------------------------------------------------
# The ladder and the build rule
# --------------------------------------------------------------------------------------------------
def ladder(n: int, steps: int = DEFAULT_STEPS, min_rows: int = DEFAULT_MIN_ROWS) -> list[int]:
    """Sample sizes, ascending: ``n`` and its halves, at most ``steps`` of them, none below ``min_rows``.
    ParamError when fewer than :data:`MIN_STEPS` sizes fit."""
    sizes = [n]
    while len(sizes) < steps and sizes[-1] // 2 >= min_rows:
        sizes.append(sizes[-1] // 2)
    if len(sizes) < MIN_STEPS:
        need = min_rows * 2 ** (MIN_STEPS - 1)
        raise ParamError(f"dataset: a forecast measures at least {MIN_STEPS} sample sizes (the sample and its halves, "
                         f"each >= min_rows={min_rows:,}), so it needs at least {need:,} base rows; the sample has "
                         f"{n:,}. Bring a larger sample, or lower min_rows (fits on tiny subsets extrapolate badly)")
    return sorted(sizes)


def build_rule(index_type: str, rows: int, dim: int, profile: str | None = None) -> tuple[dict[str, int], str]:
    """The build parameters the forecast uses at ``rows`` and how they were chosen (one sentence).

    IVF ``nlist`` grows with the data: ``round(4·√rows)``, within the spec's range; everything else is the
    spec's default for this dimension."""
    profile = profile or spec.DEFAULT_PROFILE
    index_spec = check_index_type(index_type, profile)
    params = spec.default_build_params(index_spec.name, dim, profile=profile)
    if "nlist" not in params:
        return params, "the spec's default build parameters at every size" if params else ""
    high = spec.as_int(index_spec.build["nlist"].high) or rows
    wanted = round(NLIST_PER_SQRT_ROWS * math.sqrt(rows))
    params["nlist"] = max(1, min(wanted, high, rows))
    how = f"nlist = {NLIST_PER_SQRT_ROWS}·√rows = {params['nlist']:,} at {rows:,} rows"
    if params["nlist"] < wanted:
        how += f" (capped: {NLIST_PER_SQRT_ROWS}·√rows = {wanted:,} is above the allowed {high:,})"
    return params, how


def _range_sd(lo: float, hi: float, repeats: int) -> float:
    """Standard deviation (log scale) implied by the lowest and highest of ``repeats`` rounds."""
    if not (lo > 0 and hi > 0) or repeats < 2:
        return float("nan")
    d2 = _RANGE_D2.get(int(repeats), 2 * 1.5 * math.log10(repeats) + 0.3) if repeats <= 10 else 3.2
    return (math.log(hi) - math.log(lo)) / d2


def _deficit(recall: float, floor: float) -> float:
    return math.log(max(1.0 - recall, floor))


def needed_value(curve: Sequence[tuple[int, float]], target: float, floor: float) -> tuple[float, float] | None:
    """(value, local slope) where a recall curve [(value, recall)] reaches ``target``: interpolated on a
    straight line in (log value, log(1 - recall)) between the last value below and the first at the target;
    the slope is that line's (negative: more value, less deficit). When the curve's first value already reaches
    the target, the need is that value (it may be lower: nothing below it was measured) and the slope is the
    next step's. None when no value reaches the target."""
    points = sorted(curve)
    above = [(v, r) for v, r in points if r >= target]
    if not above:
        return None
    v1, r1 = above[0]
    below = [(v, r) for v, r in points if v < v1 and r < target]
    if not below:
        later = [(v, r) for v, r in points if v > v1]
        if not later:
            return float(v1), float("nan")
        v2, r2 = later[0]
        slope = (_deficit(r2, floor) - _deficit(r1, floor)) / (math.log(v2) - math.log(v1))
        return float(v1), slope if slope < 0 else float("nan")
    v0, r0 = below[-1]
    d0, d1, dt = _deficit(r0, floor), _deficit(r1, floor), _deficit(target, floor)
    slope = (d1 - d0) / (math.log(v1) - math.log(v0))
    if not slope < 0:
        return float(v1), float("nan")
    return float(math.exp(math.log(v0) + (dt - d0) / slope)), slope


# --------------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------------
@dataclass
class Forecast:
    """What :func:`forecast` measured and what it forecasts at ``rows``.

    ``table``: one row per index type (see :data:`TABLE_COLUMNS`: the setting, each figure with its 95 %
    interval, the published formula beside the memory, query nodes, whether this machine holds it, and a
    ``note``); ``points``: every measurement the fits were made from (recall sweeps and timed settings, per
    sample size); ``fits``: the fitted laws per (index type, figure); ``sizes``: the ladder.
    """

    rows: int
    target_recall: float
    k: int
    metric: str
    dim: int
    sample_rows: int
    sizes: list[int]
    table: pd.DataFrame
    points: pd.DataFrame
    fits: dict[tuple[str, str], growth.Fit] = field(default_factory=dict)
    machine_memory_gb: float | None = None
    query_node_gb: float = sizing.DEFAULT_QUERY_NODE_GB
    busy_warning: str = ""
    wall_s: float = 0.0
    error: str | None = None
    dataset: str = ""
    target: str = ""

    @property
    def extrapolation(self) -> float:
        """``rows`` over the largest sample measured."""
        return self.rows / max(self.sizes)

    def _row(self, index_type: str | None) -> pd.Series:
        ok = self.table[self.table["status"] == STATUS_OK]
        if index_type is None:
            ok = ok[ok["index_type"].map(lambda name: spec.get_index(name).recommend)]
            if ok.empty:
                raise ValueError("no index type has a forecast setting; see the table's notes")
            return ok.loc[ok["qps"].astype(float).idxmax()]
        name = check_index_type(index_type).name
        rows = ok[ok["index_type"] == name]
        if rows.empty:
            notes = self.table.loc[self.table["index_type"] == name, "note"]
            raise ValueError(f"no forecast setting for {name}" + (f": {notes.iloc[0]}" if len(notes) else ""))
        return rows.iloc[0]

    def setting(self, index_type: str | None = None) -> Setting:
        """The forecast setting of ``index_type`` (default: the one with the highest forecast QPS)."""
        row = self._row(index_type)
        return Setting.from_columns(row["index_type"], row["build_params"], row["search_params"])

    def code(self, index_type: str | None = None, *, target: str = "pymilvus-0.2") -> str:
        """The create_index / search lines of the forecast setting, as :meth:`TuneResult.code` prints them
        (``target``: ``"pymilvus-0.2"`` for milvus_lab and pymilvus 0.2.x, ``"pymilvus-2"`` for Milvus 2.x)."""
        if target not in CODE_TARGETS:
            raise ParamError(f"target must be one of {', '.join(CODE_TARGETS)}; got {spec.show_value(target)}")
        chosen = self.setting(index_type)
        return code_lines(chosen.index_type, chosen.build_params, chosen.search_params, self.k, self.metric, target)

    def summary(self) -> str:
        lines = [f"forecast at {self.rows:,} rows ({self.extrapolation:,.1f}x the {max(self.sizes):,}-row sample; "
                 f"measured at {', '.join(f'{s:,}' for s in self.sizes)} rows) for recall >= {self.target_recall:g} "
                 f"(k-recall@k, k={self.k}); 95 % intervals"]
        for _, row in self.table.iterrows():
            if row["status"] != STATUS_OK:
                lines.append(f"  {row['index_type']:<9} {row['note']}")
                continue
            setting = Setting.from_columns(row["index_type"], row["build_params"], row["search_params"])
            formula = row["formula_memory_mb"]
            formula = f" (formula {formula:,.0f} MB)" if formula == formula else ""
            lines.append(f"  {setting.label()}: recall {_fmt(row, 'recall', '.3f')}, memory "
                         f"{_fmt(row, 'memory_mb', ',.0f')} MB{formula}, build "
                         f"{_fmt(row, 'build_s', ',.3g')} s, {_fmt(row, 'qps', ',.0f')} QPS, p99 "
                         f"{_fmt(row, 'p99_ms', '.3g')} ms; {row['query_nodes']} query node(s) of "
                         f"{self.query_node_gb:g} GB" + (f"; {row['note']}" if row["note"] else ""))
        if self.busy_warning:
            lines.append(self.busy_warning)
        return "\n".join(lines + stopped_early(self.error))

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return result_html(self.summary().splitlines()[0], self.table, self.busy_warning or "")

    def to_markdown(self) -> str:
        """The forecast as a Markdown report (``forecast.md``): the table, the laws, the formulas, the notes."""
        from .forecast_report import markdown

        return markdown(self)

    def plot(self, index_types: Iterable[str] | None = None) -> Figure:
        """Each figure against rows on log axes: measured points, the fitted law, the forecast with its band
        and the target size marked."""
        from .forecast_report import plot

        return plot(self, index_types)


def _fmt(row: Any, col: str, spec_: str) -> str:
    value, lo, hi = row[col], row.get(f"{col}_lo"), row.get(f"{col}_hi")
    if not value == value:
        return "-"
    text = format(value, spec_)
    if lo == lo and hi == hi and lo is not None:
        text += f" [{format(lo, spec_)}, {format(hi, spec_)}]"
    return text


# --------------------------------------------------------------------------------------------------
# Measuring one index type at one size
# --------------------------------------------------------------------------------------------------
@dataclass
class _Size:
    """What one build at one sample size gave."""

    rows: int
    params: dict[str, int]
    status: str
    note: str = ""
    need: float = float("nan")
    slope: float = float("nan")
    value: int | None = None
    timed: dict[str, Any] = field(default_factory=dict)
    build_s: float = float("nan")
    memory_bytes: int = 0
    half_width: float = float("nan")
    #: smallest recall deficit the queries can show (half a neighbour over all queries)
    floor: float = 1e-5
    #: the target was met at the sweep's first value (the need may be lower; nothing below was measured)
    censored: bool = False
    #: mean recall at ``value``
    recall_at_value: float = float("nan")
    #: the sweep's first value, the recall there, and the curve's slope (log deficit per log value) from it to
    #: the next value: what the forecast anchors on when the need was not measured above that first value
    lowest: int = 0
    recall_lowest: float = float("nan")
    slope_lowest: float = float("nan")


def _subset(dataset: Dataset, order: np.ndarray, rows: int) -> Dataset:
    if rows >= dataset.n:
        return dataset
    ids = np.sort(order[:rows])
    labels = None if dataset.labels is None else [dataset.labels[i] for i in ids]
    return Dataset(np.ascontiguousarray(dataset.rows(ids)), dataset.queries, dataset.metric,
                   f"{dataset.name} [{rows:,} rows]", labels, dataset.query_labels)


@dataclass
class _Run:
    session: Session
    target_recall: float
    k: int
    latency_queries: int
    concurrency: ConcurrencyPlan | None = None
    points: list[dict[str, Any]] = field(default_factory=list)

    def point(self, ds: Dataset, setting: Setting, phase: str, **values: Any) -> None:
        self.points.append({**setting.columns(), "rows": ds.n, "phase": phase, **values})

    def measure(self, ds: Dataset, index_type: str, params: dict[str, int]) -> _Size:
        session, k, target = self.session, self.k, self.target_recall
        build = session.build(ds, index_type, params)
        setting = Setting.of(index_type, params)
        if not build.ok:
            self.point(ds, setting, "build", status=build.status, note=build.note, build_s=build.build_s)
            return _Size(ds.n, params, build.status, build.note)
        size = _Size(ds.n, params, STATUS_OK, build_s=build.build_s, memory_bytes=build.memory_bytes)
        found = search_values(index_type, params, ds.n, k, session.profile)
        per_value: dict[int, np.ndarray] = {}
        if found is None:
            per_value[0] = session.recall_of(ds, build, {}, k)
            search: dict[str, int] = {}
        else:
            name, values = found

            def recall(value: int) -> float:
                per_value[value] = session.recall_of(ds, build, {name: value}, k)
                return float(per_value[value].mean())

            value, tried = smallest_passing(recall, values, target, tolerance=0.01)
            if value is not None and value == values[0] and len(values) > 1:
                # met at the sweep's first value: one more value gives the curve's slope there
                tried.append((values[1], recall(values[1]), "slope"))
            for v, r, phase in tried:
                lo, hi = recall_bounds(per_value[v])
                self.point(ds, setting.with_search({name: v}), phase, recall=r, recall_lo=lo, recall_hi=hi,
                           search_value=v, status=STATUS_OK)
            if value is None:
                top = max(tried, key=lambda t: t[1])
                size.status, size.note = STATUS_NO_FORECAST, (
                    f"tops out at recall {top[1]:.3f} ({name}={top[0]:,}) at {ds.n:,} rows, below {target:g}")
                return size
            size.floor = 0.5 / (ds.nq * k)
            curve = [(v, r) for v, r, _ in tried]
            size.need, size.slope = needed_value(curve, target, size.floor)
            size.value, size.censored = value, value == values[0]
            size.recall_at_value = float(per_value[value].mean())
            size.lowest, size.recall_lowest = values[0], float(per_value[values[0]].mean())
            if len(values) > 1 and values[1] in per_value:
                step = (_deficit(float(per_value[values[1]].mean()), size.floor)
                        - _deficit(size.recall_lowest, size.floor)) / (math.log(values[1]) - math.log(values[0]))
                size.slope_lowest = step if step < 0 else float("nan")
            search = {name: value}
        per_query = per_value[size.value if size.value is not None else 0]
        lo, hi = recall_bounds(per_query)
        size.half_width = (hi - lo) / 2
        timed = session.measure_settings(ds, build, [search], k=k, latency_queries=self.latency_queries,
                                         recalls=[per_query], concurrency=self.concurrency)[0]
        size.timed = timed
        self.point(ds, setting.with_search(search), "timed", recall=timed["recall"], recall_lo=lo, recall_hi=hi,
                   search_value=size.value, needed_value=size.need, qps=timed["qps"], qps_lo=timed["qps_lo"],
                   qps_hi=timed["qps_hi"], p99_ms=timed["p99_ms"], p99_lo=timed["p99_lo"], p99_hi=timed["p99_hi"],
                   build_s=build.build_s, memory_mb=build.memory_bytes / MIB, busy=timed.get("busy"),
                   status=STATUS_OK, note=timed.get("note", ""),
                   **{c: v for c, v in timed.items() if c.startswith(("qps_c", "p99_ms_c", "p50_ms_c"))})
        return size


# --------------------------------------------------------------------------------------------------
# From measurements to a forecast row
# --------------------------------------------------------------------------------------------------
def _predict(fit_: growth.Fit, rows: int, factor: float, kind: str) -> growth.Prediction:
    return fit_.predict(rows) if factor <= MAX_FACTOR[kind] else growth.Prediction.none()


def _forecast_type(index_type: str, sizes: list[_Size], rows: int, dim: int, metric: str, target: float, k: int,
                   profile: str, fits: dict[tuple[str, str], growth.Fit], levels: Sequence[int] = ()
                   ) -> dict[str, Any]:
    """The table row of one index type from its measurements at every size."""
    row: dict[str, Any] = {"index_type": index_type, "rows": rows, "status": STATUS_OK}
    factor = rows / max(s.rows for s in sizes)
    row["extrapolation"] = factor
    failed = [s for s in sizes if s.status != STATUS_OK]
    if failed:
        row.update(status=STATUS_NO_FORECAST, note=failed[-1].note or failed[-1].status)
        return row
    build_params, how = build_rule(index_type, rows, dim, profile)
    notes: list[str] = [how] if how and "nlist" in how else []
    n = [s.rows for s in sizes]
    largest = sizes[-1]
    search: dict[str, int] = {}
    found = search_values(index_type, build_params, rows, k, profile)
    if found is not None:
        name, _ = found
        if factor > MAX_FACTOR["search"]:
            row.update(status=STATUS_NO_FORECAST,
                       note=f"{rows:,} rows is {factor:,.0f}x the largest sample; the {name} the target needs is not "
                            f"forecast beyond {MAX_FACTOR['search']:g}x (measure a larger sample)")
            return row
        param = check_index_type(index_type, profile).search[name]
        low, high = spec.bounds(param, {**spec.search_context(k, build_params), "rows": rows})
        measured = [s for s in sizes if not s.censored]
        half = largest.half_width if largest.half_width == largest.half_width else 0.0
        if len(measured) >= MIN_STEPS and not largest.censored:
            got = _from_measured_need(index_type, measured, rows, target, fits)
        else:
            got = _from_lowest_value(index_type, name, sizes, rows, target, fits, notes)
        if got is None:
            row.update(status=STATUS_NO_FORECAST,
                       note=f"the recall curve of {name} is too flat or too noisy at the sizes measured to say what "
                            f"{rows:,} rows need (measure a larger sample or more queries)")
            return row
        need, value_of, recall_of = got
        value = max(low or 1, 1, value_of(need.value))
        row.update(search_value=need.value, search_value_lo=need.lo, search_value_hi=need.hi)
        if high is not None and value > high:
            row.update(status=STATUS_NO_FORECAST,
                       note=f"needs {name} about {need.value:,.0f} [{need.lo:,.0f}, {need.hi:,.0f}] at {rows:,} rows, "
                            f"above its maximum {high:,} with {spec.format_params(build_params) or 'this build'}")
            return row
        if high is not None and need.hi > high:
            notes.append(f"the interval of the {name} needed reaches past its maximum {high:,}")
        search = {name: value}
        recall, worst, best = recall_of(value)
        worst, best = (worst if worst == worst else 0.0), (best if best == best else 1.0)  # no interval: say so
        recall = min(1.0, max(0.0, recall))
        row.update(recall=recall, recall_lo=max(0.0, min(recall, worst) - half),
                   recall_hi=min(1.0, max(recall, best) + half))
        if recall < target:
            notes.append(f"forecast recall {recall:.3f} at {name}={value:,} is below the target")
    else:
        row.update(recall=1.0, recall_lo=1.0, recall_hi=1.0, note="exact search")
    row["_setting"] = Setting.of(index_type, build_params, search)  # JSON only when the table is built
    return _costs(row, index_type, sizes, n, rows, factor, fits, levels, notes, dim)


def _safe_exp(x: float) -> float:
    return math.exp(min(x, 700.0))


def _from_measured_need(index_type: str, measured: list[_Size], rows: int, target: float,
                        fits: dict[tuple[str, str], growth.Fit]) -> tuple[growth.Prediction, Any, Any] | None:
    """The need fitted as a power law of rows over the sizes where it was measured (at least MIN_STEPS of them:
    a size that met the target at the sweep's first value only bounds it from above and is left out); the
    recall at a value from the largest size's local curve, moved to the forecast need."""
    fit_ = growth.fit([s.rows for s in measured], [s.need for s in measured], "power", floor=NEED_FLOOR)
    fits[(index_type, "search_value")] = fit_
    need = fit_.predict(rows)
    slopes = [s.slope for s in measured if s.slope == s.slope]
    slope = measured[-1].slope if measured[-1].slope == measured[-1].slope else \
        (float(np.median(slopes)) if slopes else math.nan)
    if not slope < 0:
        return None
    dt = _deficit(target, measured[-1].floor)

    def recall_at(value: int, needed: float) -> float:
        if needed != needed or not needed > 0:
            return float("nan")
        return 1.0 - _safe_exp(dt + slope * (math.log(value) - math.log(needed)))

    def value_of(needed: float) -> int:
        return math.ceil(min(needed, 2.0**62) - 1e-9)

    def recall_of(value: int) -> tuple[float, float, float]:
        return recall_at(value, need.value), recall_at(value, need.hi), recall_at(value, need.lo)

    return need, value_of, recall_of


def _from_lowest_value(index_type: str, name: str, sizes: list[_Size], rows: int, target: float,
                       fits: dict[tuple[str, str], growth.Fit], notes: list[str]
                       ) -> tuple[growth.Prediction, Any, Any] | None:
    """When the need was measured at fewer than MIN_STEPS sizes (the target met at the sweep's first value v1
    at the largest size, or at most sizes): the deficit 1 - recall at v1, fitted as a power law of rows, read at
    ``rows``; the curve's local slope at v1 then says how far above v1 the target is reached (at v1 when the
    deficit stays below 1 - target) and what recall a value gives."""
    largest = sizes[-1]
    v1 = largest.lowest
    slopes = [s.slope_lowest for s in sizes if s.slope_lowest == s.slope_lowest]
    slope = largest.slope_lowest if largest.slope_lowest == largest.slope_lowest else \
        (float(np.median(slopes)) if slopes else math.nan)
    if not v1 or not slope < 0:
        return None
    fit_ = growth.fit([s.rows for s in sizes], [max(1.0 - s.recall_lowest, s.floor) for s in sizes], "power",
                      floor=DEFICIT_FLOOR)
    fits[(index_type, "recall_deficit")] = fit_
    deficit = fit_.predict(rows)
    allowed = max(1.0 - target, largest.floor)

    def need_for(d: float) -> float:
        return float(v1) if d <= allowed else v1 * _safe_exp((math.log(allowed) - math.log(d)) / slope)

    need = growth.Prediction(need_for(deficit.value), need_for(deficit.lo), need_for(deficit.hi))
    cautious = fit_.predict(rows, level=CAUTIOUS_LEVEL).hi  # the deficit's 75th percentile

    def value_of(needed: float) -> int:  # not the point: the need was not measured, only bounded
        return max(v1, math.ceil(min(max(needed, need_for(cautious)), 2.0**62) - 1e-9))

    def recall_of(value: int) -> tuple[float, float, float]:
        move = _safe_exp(slope * (math.log(value) - math.log(v1)))
        return 1.0 - deficit.value * move, 1.0 - deficit.hi * move, 1.0 - deficit.lo * move

    censored = sum(s.censored for s in sizes)
    notes.append(f"the target is met at the lowest {name} ({v1:,}) at {censored} of {len(sizes)} sizes measured, so "
                 f"the need was measured at too few sizes to fit: the need at {rows:,} rows comes from the trend "
                 f"of the recall at {name}={v1:,} and the curve's slope there, and the setting allows for a recall "
                 f"that falls faster than that trend (its 75th percentile; weak evidence: measure a larger sample "
                 f"to narrow it)")
    return need, value_of, recall_of


def _centroid_mb(params: dict[str, int], dim: int) -> float:
    """MB of an IVF index's coarse centroids (nlist x dim float32); 0 for other types."""
    return int(params.get("nlist", 0)) * dim * 4 / MIB


def _costs(row: dict[str, Any], index_type: str, sizes: list[_Size], n: list[int], rows: int, factor: float,
           fits: dict[tuple[str, str], growth.Fit], levels: Sequence[int], notes: list[str], dim: int
           ) -> dict[str, Any]:
    """Memory, build time and the timed figures of a forecast row, each from its growth law."""
    timing_ok = factor <= MAX_FACTOR["timing"]
    # memory: a count of structures: a straight line in rows, plus (IVF) the coarse centroids, nlist x dim floats,
    # whose nlist grows as 4·√rows (counted exactly at each size and at the forecast nlist, not fitted)
    centroids = [_centroid_mb(s.params, dim) for s in sizes]
    mem_fit = growth.fit(n, [s.memory_bytes / MIB - c for s, c in zip(sizes, centroids)], "linear")
    fits[(index_type, "memory_mb")] = mem_fit
    mem = _predict(mem_fit, rows, factor, "memory")
    extra = _centroid_mb(row["_setting"].build_params, dim)
    row.update(memory_mb=mem.value + extra, memory_mb_lo=mem.lo + extra, memory_mb_hi=mem.hi + extra)
    if index_type != "FLAT":  # FLAT builds nothing: it searches the collection's rows
        build_fit = growth.fit(n, [s.build_s for s in sizes], "power", floor=BUILD_FLOOR)
        fits[(index_type, "build_s")] = build_fit
        build = _predict(build_fit, rows, factor, "timing")
        row.update(build_s=build.value, build_s_lo=build.lo, build_s_hi=build.hi)
    timed_figures = [("qps", "qps_lo", "qps_hi", "qps"), ("p99_ms", "p99_lo", "p99_hi", "p99_ms")]
    for level in levels:
        timed_figures += [(f"qps_c{level}", f"qps_c{level}_lo", f"qps_c{level}_hi", f"qps_c{level}"),
                          (f"p99_ms_c{level}", f"p99_ms_c{level}_lo", f"p99_ms_c{level}_hi", f"p99_ms_c{level}")]
    for col, lo_col, hi_col, out in timed_figures:
        values = [s.timed.get(col, float("nan")) for s in sizes]
        rounds = [int(s.timed.get("repeats") or 0) if col in ("qps", "p99_ms") else
                  int(s.timed.get("concurrency_rounds") or s.timed.get("repeats") or 0) for s in sizes]
        spread = [_range_sd(s.timed.get(lo_col, float("nan")), s.timed.get(hi_col, float("nan")), r)
                  for s, r in zip(sizes, rounds)]
        if not all(v == v and v > 0 for v in values):
            continue
        f = _timing_law(index_type, sizes, values, spread, row, fits, rate=out.startswith("qps"))
        fits[(index_type, out)] = f
        p = _predict(f, rows, factor, "timing")
        row.update({out: p.value, f"{out}_lo": p.lo, f"{out}_hi": p.hi})
    row["busy"] = any(bool(s.timed.get("busy")) for s in sizes)
    if not timing_ok:
        notes.append(f"build time, QPS and p99 not forecast beyond {MAX_FACTOR['timing']:g}x the largest sample")
    elif factor > STRETCH_FACTOR:
        notes.append(f"stretching: {factor:,.0f}x beyond the largest sample; the intervals widen with it")
    row["_notes"] = notes
    return row


#: index types whose query time follows the vectors they scan, nprobe x rows / nlist + nlist (the IVF family)
SCANNED_WORK = ("IVF_FLAT", "IVF_SQ8", "IVF_SQ8H", "IVF_PQ")


def _timing_law(index_type: str, sizes: list[_Size], values: list[float], spread: list[float], row: dict[str, Any],
                fits: dict[tuple[str, str], Any], rate: bool = False) -> Any:
    """The growth law of a timed figure. For the IVF family, the time of a query is a fixed part plus a part per
    vector scanned (nprobe x rows / nlist + nlist, at each size's timed setting and at the forecast setting, since
    both nprobe and nlist move with the rows): a straight line in that work, fitted to the seconds per query of a
    rate (``rate``: QPS, read back as its reciprocal) or to the latency itself. A power law here would read the
    fixed part's share at small sizes as slow growth and carry it to the deploy size (on 50k -> 200k GloVe words
    it forecast 1.35x the QPS measured; the straight line, 1.11x: benchmarks/forecast_ivf_law.py). Every other
    type: a power law of rows. Each measurement's spread is at least :data:`TIMING_FLOOR`."""
    n = [s.rows for s in sizes]
    if index_type not in SCANNED_WORK or not all(s.value for s in sizes):
        return growth.fit(n, values, "power", spread=spread, floor=TIMING_FLOOR)
    work = [s.value * s.rows / s.params["nlist"] + s.params["nlist"] for s in sizes]
    seconds = [1.0 / v for v in values] if rate else list(values)
    # each measurement's spread, from the log scale of its rounds (at least TIMING_FLOOR) to the fitted scale
    linear_spread = [y * (sd if sd == sd and sd > TIMING_FLOOR else TIMING_FLOOR) for y, sd in zip(seconds, spread)]
    fit_ = growth.fit(work, seconds, "linear", spread=linear_spread)
    forecast_rows = int(row["rows"])
    forecast_value = row["_setting"].search_params.get("nprobe", sizes[-1].value)
    need = fits.get((index_type, "search_value"))

    def work_of(rows: float) -> float:
        nlist = max(1, round(NLIST_PER_SQRT_ROWS * math.sqrt(rows)))
        if rows == forecast_rows or need is None:
            nprobe = forecast_value
        else:
            nprobe = max(1, min(nlist, math.ceil(need.predict(rows).value)))
        return nprobe * rows / nlist + nlist

    return growth.OnWork(fit_, work_of, "vectors scanned per query", min(n), max(n), reciprocal=rate, positive=True)


def _sizing(row: dict[str, Any], dim: int, machine_bytes: float | None, node_gb: float, in_memory: bool) -> None:
    """Fill the formula, loading memory, query nodes and machine columns of a forecast row."""
    setting = row.get("_setting")
    if row.get("status") != STATUS_OK or setting is None:
        return
    estimate = sizing.index_estimate(row["index_type"], setting.build_params, row["rows"], dim)
    notes: list[str] = row["_notes"]
    mem = row.get("memory_mb", float("nan"))
    if estimate is None:
        notes.append(f"no published memory formula for {row['index_type']}")
    else:
        row.update(formula_memory_mb=estimate.mb, formula=estimate.formula)
    if estimate is not None and mem == mem and estimate.bytes:
        gap = mem / estimate.mb - 1
        row["formula_gap"] = gap
        if abs(gap) > 0.05:
            notes.append(f"measured growth gives {abs(gap):.0%} {'more' if gap > 0 else 'less'} memory than the "
                         f"published formula ({mem:,.0f} vs {estimate.mb:,.0f} MB)")
    basis = row.get("memory_mb_hi", float("nan"))
    if basis != basis:
        if estimate is None:
            return
        basis = estimate.mb
    loading = sizing.loading_bytes(basis * MIB)
    nodes, node_size = sizing.sizing_tool_nodes(loading)
    row.update(loading_memory_mb=loading / MIB, query_nodes=sizing.query_nodes(loading, node_gb),
               sizing_tool_nodes=f"{nodes} x {node_size} GB")
    raw = sizing.raw_bytes(row["rows"], dim) if in_memory else 0
    need = raw + (0 if row["index_type"] == "FLAT" else basis * MIB)
    row["machine_need_mb"] = need / MIB
    if machine_bytes:
        row["fits_machine"] = bool(need <= machine_bytes)
        if not row["fits_machine"]:
            notes.append(f"does not fit in {machine_bytes / GIB:,.1f} GB: needs {need / GIB:,.1f} GB in memory"
                         + (" (rows and index)" if in_memory else ""))


def _machine_bytes(machine_memory_gb: float | None) -> float | None:
    if machine_memory_gb is not None:
        return machine_memory_gb * GIB
    try:
        import psutil

        return float(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001 - no way to know: the column stays empty
        return None


# --------------------------------------------------------------------------------------------------
# The call
# --------------------------------------------------------------------------------------------------
def forecast(dataset: Dataset, rows: int, index_types: Iterable[str] | None = None, *, target_recall: float = 0.95,
             k: int = 10, steps: int = DEFAULT_STEPS, min_rows: int = DEFAULT_MIN_ROWS,
             machine_memory_gb: float | None = None, query_node_gb: float = sizing.DEFAULT_QUERY_NODE_GB,
             session: Session | None = None, target: Target | None = None,
             latency_queries: int = DEFAULT_LATENCY_QUERIES, repeats: int | None = None, threads: int | None = None,
             progress: bool = True, seed: int = 0, concurrency: Any = None,
             concurrency_seconds: float = DEFAULT_CONCURRENCY_SECONDS, concurrency_batch: int = 1) -> Forecast:
    """Forecast, for each index type, the setting that keeps ``target_recall`` at ``rows`` rows and what it
    costs there (memory, build time, QPS, p99), from measurements on nested random subsets of ``dataset``
    (the module docstring says how). ``dataset.base`` is taken as a random sample of the data to deploy;
    its queries are used at every size.

    ``steps``: sample sizes measured (the sample and its halves, each >= ``min_rows``). ``machine_memory_gb``:
    the memory to check the setting against (default: this machine's). ``query_node_gb``: the size of a Milvus
    2.x query node for the cluster advice. ``target``: where to measure (default: a new in-memory engine; on a
    server target the timings are the server's). ``concurrency`` (e.g. ``(1, 10, 20)``): each size's setting is
    also timed with that many concurrent clients (:meth:`Session.measure_settings`), and ``qps_c{N}`` /
    ``p99_ms_c{N}`` are forecast like the batch figures.
    """
    check_dataset(dataset)
    rows = check("rows", rows)
    target_recall = check("target_recall", target_recall)
    steps, min_rows = check("steps", steps), check("min_rows", min_rows)
    machine_memory_gb = check("machine_memory_gb", machine_memory_gb)
    query_node_gb = check("query_node_gb", query_node_gb)
    latency_queries, repeats = check("latency_queries", latency_queries), check("repeats", repeats)
    threads, progress, seed = check("threads", threads), check("progress", progress), check("seed", seed)
    index_types = check_index_types(index_types)
    check_target(target)
    k = dataset.check_k(k)
    plan = check_concurrency(concurrency, concurrency_seconds, concurrency_batch, nq=dataset.nq)
    if rows < dataset.n:
        raise ParamError(f"rows must be at least the sample's {dataset.n:,} base rows (a forecast extrapolates from "
                         f"the sample; for the sample's own size use compare() or tune()); got {rows:,}")
    started = time.perf_counter()
    with session_scope(session, target=target, threads=threads, repeats=repeats) as run_session:
        profile = run_session.profile
        if profile != spec.DEFAULT_PROFILE:
            min_rows = max(min_rows, spec.SERVER_MIN_INDEX_ROWS)
        sizes = ladder(dataset.n, steps, min_rows)
        if k > sizes[0]:
            raise ParamError(f"k={k} is larger than the smallest sample size {sizes[0]:,} (min_rows={min_rows:,}); "
                             f"raise min_rows to at least {k:,} or lower k")
        types = index_types_or_all(index_types, dataset.metric)
        _check_memory(dataset, sizes, types, profile)
        return _run(run_session, dataset, rows, types, sizes, target_recall, k, latency_queries, progress, seed,
                    machine_memory_gb, query_node_gb, started, plan)


def _check_memory(dataset: Dataset, sizes: list[int], types: list[str], profile: str) -> None:
    """Refuse up front, with the estimate, a forecast whose subsets, collection copy and largest index cannot fit
    in the memory the machine has free (in memory only; a server holds its own)."""
    if profile != spec.DEFAULT_PROFILE:
        return
    row_bytes = dataset.dim * 4
    subsets = sum(s for s in sizes if s < dataset.n) * row_bytes
    largest = 0
    for index_type in types:
        try:
            params, _ = build_rule(index_type, dataset.n, dataset.dim, profile)
        except Exception:  # noqa: BLE001 - a type that cannot be built here is skipped later with its reason
            continue
        largest = max(largest, memory.index_bytes(index_type, params, dataset.n, dataset.dim))
    need = subsets + dataset.n * row_bytes + largest
    free = memory.available_bytes()
    if free is not None and need > free:
        raise LabMemoryError(
            f"this forecast needs about {need / MIB:,.0f} MB more ({subsets / MIB:,.0f} MB for the smaller subsets, "
            f"{dataset.n * row_bytes / MIB:,.0f} MB for the collection's copy of the sample, {largest / MIB:,.0f} MB "
            f"for the largest index) but only {free / MIB:,.0f} MB are free; forecast from a smaller sample (the "
            f"intervals widen), fewer index types, or on a server target")


def _run(session: Session, dataset: Dataset, rows: int, types: list[str], sizes: list[int], target_recall: float,
         k: int, latency_queries: int, progress: bool, seed: int, machine_memory_gb: float | None,
         query_node_gb: float, started: float, plan: ConcurrencyPlan | None = None) -> Forecast:
    """lab.forecast once its arguments are checked and its session is open: say which types are skipped and why,
    measure the others up the ladder, then forecast each type's row from its measurements."""
    import pandas as pd

    profile = session.profile
    skipped = _skipped_types(types, dataset, profile)
    measured = [t for t in types if t not in skipped]
    run = _Run(session, target_recall, k, latency_queries, plan)
    results, error = _measure_ladder(run, dataset, measured, sizes, progress, seed)
    levels = plan.levels if plan is not None else ()
    fits: dict[tuple[str, str], growth.Fit] = {}
    machine = _machine_bytes(machine_memory_gb)
    table_rows = []
    for index_type in types:
        if index_type in skipped:
            table_rows.append({"index_type": index_type, "rows": rows, "status": STATUS_NOT_FORECAST,
                               "note": skipped[index_type]})
        elif len(results[index_type]) < len(sizes):
            table_rows.append({"index_type": index_type, "rows": rows, "status": STATUS_NO_FORECAST,
                               "note": f"measured at {len(results[index_type])} of {len(sizes)} sizes before the run "
                                       f"stopped"})
        else:
            row = _forecast_type(index_type, results[index_type], rows, dataset.dim, dataset.metric, target_recall,
                                 k, profile, fits, levels)
            table_rows.append(_finish_row(row, dataset.dim, machine, query_node_gb, profile))
    extra = [f"{fig}_c{n}{end}" for n in levels for fig in ("qps", "p99_ms") for end in ("", "_lo", "_hi")]
    table = pd.DataFrame(table_rows).reindex(columns=TABLE_COLUMNS + extra)
    table["query_nodes"] = pd.array(table["query_nodes"].tolist(), dtype="Int64")
    table["fits_machine"] = pd.array(table["fits_machine"].tolist(), dtype="boolean")
    table["busy"] = pd.array(table["busy"].tolist(), dtype="boolean")
    points = pd.DataFrame(run.points)
    points = points.reindex(columns=POINT_COLUMNS + [c for c in points.columns if c not in POINT_COLUMNS])
    summary = session.monitor.summary()
    warning = busy_warning(**summary) if summary["busy_groups"] else ""
    return Forecast(rows, target_recall, k, dataset.metric, dataset.dim, dataset.n, sizes, table, points, fits,
                    machine / GIB if machine else None, query_node_gb, warning, time.perf_counter() - started,
                    error, dataset.name, session.describe_target())


def _skipped_types(types: list[str], dataset: Dataset, profile: str) -> dict[str, str]:
    """The index types not forecast, each with why: unavailable on the target for this data, or the same index
    as another type here (IVF_SQ8H)."""
    skipped = {}
    for index_type in types:
        reason = spec.unavailable_reason(index_type, dim=dataset.dim, metric=dataset.metric, profile=profile)
        if reason:
            skipped[index_type] = reason
        elif not spec.get_index(index_type).recommend:
            other = spec.get_index(index_type).same_as
            skipped[index_type] = f"not forecast: the same index as {other} on the CPU here; see {other}"
    return skipped


def _measure_ladder(run: _Run, dataset: Dataset, measured: list[str], sizes: list[int], progress: bool,
                    seed: int) -> tuple[dict[str, list[_Size]], str | None]:
    """Every type of ``measured`` at every size of the ladder (nested random subsets drawn with ``seed``, each
    with its own exact neighbours, the IVF build parameters by :func:`build_rule`); a server error ends the
    ladder with a warning and is returned beside what was measured before it."""
    results: dict[str, list[_Size]] = {t: [] for t in measured}
    order = np.random.default_rng(seed).permutation(dataset.n)
    bar = Progress(sum(sizes) * len(measured) // sizes[0], progress, "forecast")
    profile = run.session.profile
    try:
        with run.session.running():
            for size in sizes:
                ds = _subset(dataset, order, size)
                ds.ground_truth(run.k)
                for index_type in measured:
                    params, _ = build_rule(index_type, size, dataset.dim, profile)
                    bar.describe(f"forecast: {index_type} at {size:,} rows")
                    results[index_type].append(run.measure(ds, index_type, params))
                    bar.step(size // sizes[0], f"{index_type} {size:,}")
    except ServerError as exc:
        warnings.warn(f"forecast stopped: {exc}; the measurements so far are kept in Forecast.points", LabWarning,
                      stacklevel=4)
        return results, str(exc)
    finally:
        bar.close()
    return results, None


def _finish_row(row: dict[str, Any], dim: int, machine: float | None, query_node_gb: float, profile: str
                ) -> dict[str, Any]:
    """A forecast row made ready for the table: the sizing columns filled, the notes joined into ``note``, the
    setting written as its JSON columns."""
    in_memory = profile == spec.DEFAULT_PROFILE
    row.setdefault("_notes", [])
    _sizing(row, dim, machine, query_node_gb, in_memory)
    if not in_memory and row.get("status") == STATUS_OK:
        row["_notes"].append("memory is the Milvus sizing tool's estimate at each size (the server reports no "
                             "index memory); build time, QPS and p99 are the server's")
    extra = "; ".join(row.pop("_notes"))
    row["note"] = "; ".join(t for t in (row.get("note", ""), extra) if t)
    setting = row.pop("_setting", None)
    return row if setting is None else {**row, **setting.columns()}
