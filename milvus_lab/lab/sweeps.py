"""Default sweeps derived from the spec, and :func:`compare`, which runs them on a dataset.

Every grid value comes from :mod:`milvus_lab.spec` (``default_build_params``, ``sweep_range``,
``sweep_values``, ``allowed_values``); the lab adds only data-dependent choices, each stated here:

* IVF ``nlist``: the spec's doubling grid value nearest to 4·√n (a common rule of thumb), at most n;
* search parameters walk the spec's grid upward from the parameter's ``sweep_start``, stopping once
  recall saturates (recall only: one batch search per value); the values walked are then timed together,
  round-robin (see :mod:`.timing`);
* budget ``"thorough"`` adds, per build parameter, the spec grid's neighbours of the default (one
  parameter changed at a time, keeping to the spec's recommendations);
* a parameter with a finite choice set (IVF_PQ ``m``) is also built at its largest allowed value (an extra
  build, after every type's first);
* an index type identical to another here (``IndexSpec.same_as``: IVF_SQ8H is IVF_SQ8 on the CPU) is
  measured at its default setting, with that note, and never recommended; when the run builds the other
  type too, it is timed on that build (the same index) instead of being built a second time.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import TYPE_CHECKING, Any

from .. import spec
from ..errors import InvalidParameterError, ParamError, ServerError
from ..units import MIB
from . import memory
from .arguments import Number, check, check_index_type, check_index_types, check_target, index_types_or_all
from .datasets import Dataset, check_dataset
from .measurements import (
    STATUS_SERVER_ERROR,
    STATUS_SKIPPED,
    Build,
    LabMemoryError,
    LabWarning,
    Session,
    base_row,
    build_row,
    check_session,
    results_frame,
    session_scope,
)
from .metrics import pareto_frontier
from .setting import Setting
from .timing import (
    DEFAULT_CONCURRENCY_SECONDS,
    DEFAULT_LATENCY_QUERIES,
    ConcurrencyPlan,
    busy_warning,
    check_concurrency,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..protocol import Target


@dataclass(frozen=True)
class Budget:
    """How much a default sweep explores: extra builds per type, and when a search sweep stops.

    A search sweep stops once recall reaches ``max_recall``, or once recall has saturated: the last
    ``patience`` steps were each *flat* (gained less than ``min_gain``) or *diminishing* (gained less
    than ``slow_gain`` while the gains shrink so fast that, continued geometrically, all further steps
    would add less than ``min_remaining``)."""

    name: str
    neighbour_builds: bool
    max_recall: float
    min_gain: float
    slow_gain: float
    min_remaining: float
    patience: int = 1


BUDGETS = {
    "quick": Budget("quick", neighbour_builds=False, max_recall=0.98, min_gain=0.005, slow_gain=0.02,
                    min_remaining=0.01),
    "default": Budget("default", neighbour_builds=False, max_recall=0.99, min_gain=0.002, slow_gain=0.01,
                      min_remaining=0.005),
    "thorough": Budget("thorough", neighbour_builds=True, max_recall=0.999, min_gain=0.001, slow_gain=0.005,
                       min_remaining=0.001, patience=2),
}

#: IVF nlist grows with the data as this many times the square root of the rows (a common rule of thumb)
NLIST_PER_SQRT_ROWS = 4

SAME_AS_NOTE = "same index as {other} on the CPU here (a GPU index in Milvus); measured once, never recommended"


def get_budget(budget: str | Budget) -> Budget:
    if isinstance(budget, Budget):
        return budget
    name = budget if type(budget) is str else None
    if name not in BUDGETS:
        raise ParamError(f"budget must be one of {', '.join(BUDGETS)} or a number of seconds; "
                         f"got {spec.show_value(budget)}")
    return BUDGETS[name]


@dataclass
class BuildPlan:
    """One build of a sweep and the search settings to try on it, in increasing-recall order."""

    index_type: str
    build_params: dict[str, int]
    searches: list[dict[str, int]]
    primary: bool = True
    note: str = ""
    #: measure this plan on the build of another index type that is the same index here (IVF_SQ8H on the
    #: IVF_SQ8 build with the same parameters) instead of building it again
    measured_on: str | None = None


@dataclass
class Plan:
    """Everything a sweep will try, and the index types it skips with the reason."""

    builds: list[BuildPlan] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return sum(1 + len(b.searches) for b in self.builds)


# --------------------------------------------------------------------------------------------------
# Grids from the spec
# --------------------------------------------------------------------------------------------------
def _nearest_log(values: Sequence[int], target: float) -> int:
    return min(values, key=lambda v: (abs(math.log(v) - math.log(target)), v))


def center_build_params(index_type: str, n: int, dim: int, profile: str | None = None) -> dict[str, int]:
    """The spec's default build parameters, with IVF ``nlist`` chosen for the data (nearest 4·√n, <= n).

    Raises InvalidParameterError when the index type admits no parameters for ``dim`` (IVF_PQ on 50-d)."""
    profile = profile or spec.DEFAULT_PROFILE
    index_spec = check_index_type(index_type, profile)
    params = spec.default_build_params(index_spec.name, dim, profile=profile)
    if "nlist" in params:
        grid = [v for v in spec.sweep_values(index_spec.build["nlist"]) if v <= n] or [1]
        params["nlist"] = _nearest_log(grid, NLIST_PER_SQRT_ROWS * math.sqrt(n))
    return params


def _neighbours(grid: Sequence[int], value: int) -> list[int]:
    lower = [v for v in grid if v < value]
    higher = [v for v in grid if v > value]
    return ([lower[-1]] if lower else []) + ([higher[0]] if higher else [])


def build_grid(index_type: str, name: str, center: Mapping[str, int], dim: int, metric: str,
               profile: str | None = None) -> list[int]:
    """The values a build parameter can take around ``center`` (the spec's grid, in increasing order)."""
    param = check_index_type(index_type, profile).build[name]
    ctx = {"dim": dim, "metric": metric, **center}
    grid = spec.allowed_values(param, ctx)
    return grid if grid is not None else spec.sweep_values(param, ctx)


def valid_build(index_type: str, params: Mapping[str, int], n: int, dim: int, metric: str,
                profile: str | None = None, *, advice: bool = True) -> bool:
    """Are these build parameters valid on the profile, trainable on ``n`` rows, and (``advice``) within
    the spec's recommendations?"""
    try:
        index_spec, clean = spec.validate_build(index_type, params, dim=dim, metric=metric, warn=False,
                                                profile=profile or spec.DEFAULT_PROFILE)
    except InvalidParameterError:
        return False
    if spec.segment_raw_reason(index_spec.name, clean, n, build_threshold=1,
                               profile=profile or spec.DEFAULT_PROFILE):
        return False
    return not (advice and spec.recommendation_warnings(index_spec, clean))


def neighbour_build_params(index_type: str, center: Mapping[str, int], n: int, dim: int, metric: str,
                           profile: str | None = None) -> list[dict[str, int]]:
    """Builds one grid step from ``center`` (one parameter at a time), valid and within the spec's advice."""
    out = []
    for name in check_index_type(index_type, profile).build:
        for value in _neighbours(build_grid(index_type, name, center, dim, metric, profile), center[name]):
            params = {**center, name: value}
            if valid_build(index_type, params, n, dim, metric, profile):
                out.append(params)
    return out


def choice_builds(index_type: str, center: Mapping[str, int], n: int, dim: int, metric: str,
                  profile: str | None = None) -> list[dict[str, int]]:
    """An extra build at the largest allowed value of a parameter with a finite choice set (IVF_PQ ``m``:
    bytes per vector, the build parameter that decides its recall), so high-dimensional data is not judged
    by the default's small code alone (768-d: m=96 besides m=24)."""
    out = []
    for name, param in check_index_type(index_type, profile).build.items():
        if param.choices is None:
            continue
        larger = [v for v in build_grid(index_type, name, center, dim, metric, profile) if v > center[name]]
        for value in larger[-1:]:
            params = {**center, name: value}
            if valid_build(index_type, params, n, dim, metric, profile, advice=False):
                out.append(params)
    return out


def search_values(index_type: str, build_params: Mapping[str, int], n: int, k: int,
                  profile: str | None = None) -> tuple[str, list[int]] | None:
    """The search parameter of a build and its sweep (from its ``sweep_start`` upward); None for FLAT."""
    index_spec = check_index_type(index_type, profile)
    if not index_spec.search:
        return None
    name, param = next(iter(index_spec.search.items()))
    ctx = {**spec.search_context(k, build_params), "rows": max(n, k)}
    start, stop = spec.sweep_range(param, ctx)
    return name, spec.sweep_values(param, ctx, start=start, stop=stop)


def search_grid(index_type: str, build_params: Mapping[str, int], n: int, k: int,
                profile: str | None = None) -> list[dict[str, int]]:
    """Search settings for one build, in increasing-recall order, from the spec's sweep of its parameter."""
    found = search_values(index_type, build_params, n, k, profile)
    if found is None:
        return [{}]
    name, values = found
    return [{name: v} for v in values]


def default_plan(dataset: Dataset, index_types: Iterable[str] | None = None, *, k: int = 10,
                 budget: str | Budget = "default", profile: str | None = None) -> Plan:
    """The builds and search settings :func:`compare` runs, with skipped index types and why."""
    profile = profile or spec.DEFAULT_PROFILE
    check_dataset(dataset)
    budget = get_budget(budget)
    k = dataset.check_k(k)
    checked = check_index_types(index_types)
    types = index_types_or_all(checked, dataset.metric)
    plan = Plan()
    extras: list[BuildPlan] = []
    planned: list[str] = []
    for index_type in dict.fromkeys(types):
        reason = spec.unavailable_reason(index_type, dim=dataset.dim, metric=dataset.metric, profile=profile)
        if reason:
            plan.skipped[index_type] = reason
            continue
        center = center_build_params(index_type, dataset.n, dataset.dim, profile)
        raw = spec.segment_raw_reason(index_type, center, dataset.n, build_threshold=1, profile=profile)
        if raw:
            plan.skipped[index_type] = (f"{index_type} cannot be trained on this data with "
                                        f"{spec.format_params(center)}: {raw}")
            continue
        other = spec.get_index(index_type).same_as
        if other is not None:
            # measured on the other type's build when the run builds that type too (no second identical build)
            shared = other in types and not spec.unavailable_reason(other, dim=dataset.dim, metric=dataset.metric,
                                                                     profile=profile)
            plan.builds.append(BuildPlan(index_type, center,
                                         [spec.default_search_params(index_type, k, center, profile=profile)],
                                         note=SAME_AS_NOTE.format(other=other)
                                         + (f" (timed on the {other} build)" if shared else ""),
                                         measured_on=other if shared else None))
            continue
        planned.append(index_type)
        plan.builds.append(BuildPlan(index_type, center, search_grid(index_type, center, dataset.n, k, profile)))
        for params in choice_builds(index_type, center, dataset.n, dataset.dim, dataset.metric, profile):
            extras.append(BuildPlan(index_type, params, search_grid(index_type, params, dataset.n, k, profile), False))
        if budget.neighbour_builds:
            for params in neighbour_build_params(index_type, center, dataset.n, dataset.dim, dataset.metric, profile):
                extras.append(BuildPlan(index_type, params, search_grid(index_type, params, dataset.n, k, profile),
                                        False))
    plan.builds.extend(extras)  # every type's first build runs before any extra one
    return plan


def plan_memory(dataset: Dataset, plan: Plan, session: Session) -> dict[str, int]:
    """Bytes a plan adds to what is already held: the collection's copy of the rows (in memory only) and
    the largest index (one index exists at a time)."""
    in_memory = session.profile == spec.DEFAULT_PROFILE
    rows = dataset.base.nbytes if in_memory and not session.holds(dataset) else 0
    largest = max((memory.index_bytes(b.index_type, b.build_params, dataset.n, dataset.dim) for b in plan.builds),
                  default=0) if in_memory else 0
    return {"collection_bytes": rows, "index_bytes": largest, "total_bytes": rows + largest}


def check_memory(dataset: Dataset, plan: Plan, session: Session) -> None:
    """Refuse up front, with the estimate, a plan that cannot fit in the memory the machine has free."""
    need = plan_memory(dataset, plan, session)
    free = memory.available_bytes()
    if free is None or need["total_bytes"] <= free:
        return
    mb = MIB
    biggest = max(plan.builds, key=lambda b: memory.index_bytes(b.index_type, b.build_params, dataset.n, dataset.dim))
    raise LabMemoryError(
        f"this comparison needs about {need['total_bytes'] / mb:,.0f} MB more ({need['collection_bytes'] / mb:,.0f} "
        f"MB for the collection's copy of the {dataset.n:,} x {dataset.dim} rows, {need['index_bytes'] / mb:,.0f} "
        f"MB for the largest index, {biggest.index_type} {spec.format_params(biggest.build_params)}) but only "
        f"{free / mb:,.0f} MB are free; compare fewer index types (index_types=...), a sample of the rows, or "
        f"run on a server target")


# --------------------------------------------------------------------------------------------------
# Running a plan
# --------------------------------------------------------------------------------------------------
StopRule = Callable[[list[float]], bool]


def saturation_rule(budget: Budget, max_recall: float | None = None) -> StopRule:
    """Stop once recall reaches ``max_recall`` (default: the budget's) or has saturated (see Budget)."""
    ceiling = budget.max_recall if max_recall is None else max_recall

    def saturating(recalls: list[float], i: int) -> bool:
        """Is the step into ``recalls[i]`` flat or diminishing?"""
        gain = recalls[i] - recalls[i - 1]
        if gain < budget.min_gain:
            return True
        if i < 2 or gain >= budget.slow_gain:
            return False
        before = recalls[i - 1] - recalls[i - 2]
        ratio = gain / before if before > 0 else 1.0
        return ratio < 1.0 and gain * ratio / (1.0 - ratio) < budget.min_remaining

    def stop(recalls: list[float]) -> bool:
        if recalls[-1] >= ceiling:
            return True
        n = len(recalls)
        return n > budget.patience and all(saturating(recalls, i) for i in range(n - budget.patience, n))

    return stop


class Notice(str):
    """A notice of a run, as data: its text (a Notice is that str), the index type it is about, and whether a
    result row's ``note`` already says it (``in_row``: a skipped type's reason is in its row; "the rows measured
    so far are kept" after a server error is not)."""

    index_type: str | None
    in_row: bool

    def __new__(cls, text: str, index_type: str | None = None, in_row: bool = False) -> Notice:
        notice = super().__new__(cls, text)
        notice.index_type, notice.in_row = index_type, in_row
        return notice

    def __reduce__(self) -> tuple[Any, ...]:  # copies (DataFrame.attrs are deep-copied) keep the fields
        return Notice, (str(self), self.index_type, self.in_row)


class Progress:
    """A tqdm.auto bar over all steps of a run, with elapsed and estimated remaining time (or nothing)."""

    def __init__(self, total: int, enabled: bool, desc: str, notices: list[Notice] | None = None):
        self.bar = None
        self.notices = notices
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, about {remaining} left]"
                                       "{postfix}")

    def step(self, n: int = 1, text: str | None = None) -> None:
        if self.bar is not None:
            if text:
                self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(n)

    def describe(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(text)

    def write(self, text: str, index_type: str | None = None, in_row: bool = False) -> None:
        """A notice: appended to ``notices`` (when given) as a :class:`Notice`, and printed above the bar or
        warned."""
        if self.notices is not None:
            self.notices.append(Notice(text, index_type, in_row))
        if self.bar is not None:
            self.bar.write(text)
        else:
            warnings.warn(text, LabWarning, stacklevel=3)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_plan(session: Session, dataset: Dataset, plan: Plan, *, k: int, stop: StopRule,
             latency_queries: int = DEFAULT_LATENCY_QUERIES, progress: bool = True, time_limit: float | None = None,
             accept_build: Callable[[Build], str | None] | None = None, desc: str = "lab",
             concurrency: ConcurrencyPlan | None = None, notices: list[Notice] | None = None) -> list[dict[str, Any]]:
    """Build each planned index and walk its search settings (recall only) until ``stop`` says so, then
    time the settings walked round-robin.

    ``accept_build`` may refuse a build after it is made (returns the reason), e.g. over a memory budget.
    Rows for skipped index types come first; builds not indexed or failed give one row with the reason. A
    server error ends the run: the rows measured so far are returned with a last row saying what failed.
    Each notice (a skipped type, a build not made or refused, the server error) is also appended to ``notices``.
    """
    started = time.perf_counter()
    dataset.ground_truth(k)
    rows: list[dict[str, Any]] = []
    bar = Progress(plan.steps, progress, desc, notices)
    try:
        for index_type, reason in plan.skipped.items():
            bar.write(reason, index_type, in_row=True)
            row = base_row(dataset, index_type, {}, {}, k, session)
            row.update(status=STATUS_SKIPPED, note=reason)
            rows.append(row)
        for item in plan.builds:
            if time_limit is not None and not item.primary and time.perf_counter() - started > time_limit:
                bar.step(1 + len(item.searches))
                row = base_row(dataset, item.index_type, item.build_params, {}, k, session)
                row.update(status=STATUS_SKIPPED, note=f"time limit of {time_limit:g} s reached before this build")
                rows.append(row)
                continue
            try:
                rows += _run_build(session, dataset, item, k, stop, latency_queries, bar, started, time_limit,
                                   accept_build, desc, concurrency)
            except ServerError as exc:
                row = base_row(dataset, item.index_type, item.build_params, {}, k, session)
                row.update(status=STATUS_SERVER_ERROR, note=str(exc))
                rows.append(row)
                bar.write(f"{item.index_type}: {exc}; the {len(rows) - 1} row(s) measured so far are kept",
                          item.index_type)
                break
    finally:
        bar.close()
    return rows


def _run_build(session: Session, dataset: Dataset, item: BuildPlan, k: int, stop: StopRule, latency_queries: int,
               bar: Progress, started: float, time_limit: float | None,
               accept_build: Callable[[Build], str | None] | None, desc: str,
               concurrency: ConcurrencyPlan | None = None) -> list[dict[str, Any]]:
    label = Setting.of(item.index_type, item.build_params).label()
    bar.describe(f"{desc}: building {label}")
    build = session.build(dataset, item.measured_on or item.index_type, item.build_params)
    bar.step(1)
    refusal = None if not build.ok or accept_build is None else accept_build(build)
    if not build.ok or refusal:
        row = build_row(dataset, build, {}, k, session)
        row["index_type"] = item.index_type
        if refusal:
            row.update(status=STATUS_SKIPPED, note=refusal)
        bar.write(f"{label}: {row['note']}", item.index_type, in_row=True)
        bar.step(len(item.searches))
        return [row]
    bar.describe(f"{desc}: {label}")
    walked, per_query, recalls = [], [], []
    for done, search in enumerate(item.searches, 1):
        found = session.recall_of(dataset, build, search, k)
        walked.append(search)
        per_query.append(found)
        recalls.append(float(found.mean()))
        bar.step(1, f"{spec.format_params(search) or '-'}: recall {recalls[-1]:.3f}")
        over_time = time_limit is not None and time.perf_counter() - started > time_limit
        if stop(recalls) or over_time:
            bar.step(len(item.searches) - done)
            break
    else:
        over_time = False
    bar.describe(f"{desc}: timing {label}")
    rows = session.measure_settings(dataset, build, walked, k=k, latency_queries=latency_queries, recalls=per_query,
                                    concurrency=concurrency)
    for row in rows:
        row["index_type"] = item.index_type
        row["note"] = "; ".join(t for t in (row["note"], item.note) if t)
    if over_time and len(walked) < len(item.searches):
        rows[-1]["note"] = "; ".join(t for t in (rows[-1]["note"], f"sweep stopped: time limit of {time_limit:g} s")
                                     if t)
    return rows


def _split_budget(budget: Any, time_limit: float | None) -> tuple[str | Budget, float | None]:
    time_limit = check("time_limit", time_limit)
    if isinstance(budget, Real) and not isinstance(budget, bool):
        return "default", check("budget", budget, Number(none_ok=False))
    return budget, time_limit


def compare(dataset: Dataset, index_types: Iterable[str] | None = None, *, k: int = 10,
            budget: str | float = "default", session: Session | None = None, target: Target | None = None,
            latency_queries: int = DEFAULT_LATENCY_QUERIES, time_limit: float | None = None,
            repeats: int | None = None, threads: int | None = None, progress: bool = True, concurrency: Any = None,
            concurrency_seconds: float = DEFAULT_CONCURRENCY_SECONDS, concurrency_batch: int = 1) -> pd.DataFrame:
    """Compare index types on ``dataset`` with default sweeps from the spec; one row per measured setting.

    ``target``: where to build (default: a new in-memory engine; a Milvus server target works the same,
    and types it lacks get a row "not available on <target>: <reason>"). ``index_types``: names (default:
    every float index type). ``budget``: ``"quick"``, ``"default"`` or ``"thorough"`` (more builds), or a
    number of seconds (the default grid under a time limit). Recall is k-recall@k against exact ground
    truth; QPS is the median of ``repeats`` interleaved rounds with ``qps_lo`` / ``qps_hi``; ``busy`` flags
    timings taken while other processes used the machine. ``pareto`` marks each type's recall–QPS frontier.
    The plan's memory is checked before anything is built. A server error mid-run returns the rows measured
    so far, the last one saying what failed (``df.attrs["error"]``). The notices printed above the progress
    bar (or warned without one: skipped types, builds not indexed, the server error) are also returned, in
    order, as ``df.attrs["notices"]``, a list of :class:`Notice` (each a str carrying ``index_type`` and
    ``in_row``: whether a row's note already says it). ``concurrency=(1, 10, 20)`` adds
    concurrent-client QPS and latency per setting (see :func:`~milvus_lab.lab.measure`; default None: off); it
    adds about ``concurrency_seconds`` x the number of levels to every measured setting.
    """
    check_dataset(dataset)
    budget, time_limit = _split_budget(budget, time_limit)
    budget_obj = get_budget(budget)
    k = dataset.check_k(k)
    index_types = check_index_types(index_types)
    latency_queries, repeats = check("latency_queries", latency_queries), check("repeats", repeats)
    progress = check("progress", progress)
    clients = check_concurrency(concurrency, concurrency_seconds, concurrency_batch, nq=dataset.nq)
    check_session(session)
    check_target(target)
    with session_scope(session, target=target, threads=threads, repeats=repeats) as session:
        plan = default_plan(dataset, index_types, k=k, budget=budget_obj, profile=session.profile)
        check_memory(dataset, plan, session)
        started = time.perf_counter()
        notices: list[Notice] = []
        with session.running():
            rows = run_plan(session, dataset, plan, k=k, stop=saturation_rule(budget_obj),
                            latency_queries=latency_queries, progress=progress, time_limit=time_limit,
                            desc="compare", concurrency=clients, notices=notices)
        df = results_frame(rows)
        df["pareto"] = pareto_frontier(df)
        df.attrs.update(session.run_attrs(), dataset=dataset.name, k=k, budget=budget_obj.name,
                        wall_s=time.perf_counter() - started, notices=notices)
        df.attrs["busy_warning"] = busy_warning(**session.monitor.summary()) if df["busy"].fillna(False).any() else ""
        failed = df[df["status"] == STATUS_SERVER_ERROR]
        if len(failed):
            df.attrs["error"] = failed["note"].iloc[-1]
            warnings.warn(df.attrs["error"], LabWarning, stacklevel=2)
        return df

