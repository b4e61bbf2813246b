"""Default sweeps derived from the spec, and :func:`compare`, which runs them on a dataset.

Every grid value comes from :mod:`milvus_lab.spec` (``default_build_params``, ``sweep_values``,
``bounds``, ``allowed_values``); the lab adds only data-dependent choices, each stated here:

* IVF ``nlist``: the spec's doubling grid value nearest to 4·√n (a common rule of thumb), at most n;
* search parameters walk the spec's grid upward (``nprobe`` doubling from 1 to nlist, HNSW ``ef``
  doubling from top_k, RNSG ``search_length`` in the spec's linear steps from top_k, ANNOY ``search_k``
  doubling from n_trees·top_k, the value -1 stands for, up to n_trees·n), stopping once recall saturates;
* budget ``"thorough"`` adds, per build parameter, the spec grid's neighbours of the default (one
  parameter changed at a time, keeping to the spec's recommendations).
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
from ..errors import InvalidParameterError, ParamError
from .datasets import Dataset
from .measurements import (
    DEFAULT_LATENCY_QUERIES,
    STATUS_SKIPPED,
    Build,
    Session,
    base_row,
    build_row,
    default_session,
    results_frame,
)
from .metrics import pareto_frontier

if TYPE_CHECKING:
    import pandas as pd


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


def get_budget(budget: str | Budget) -> Budget:
    if isinstance(budget, Budget):
        return budget
    if budget not in BUDGETS:
        raise ParamError(f"budget must be one of {', '.join(BUDGETS)} (or a number of seconds as time_limit); "
                         f"got {budget!r}")
    return BUDGETS[budget]


@dataclass
class BuildPlan:
    """One build of a sweep and the search settings to run on it, in increasing-recall order."""

    index_type: str
    build_params: dict[str, int]
    searches: list[dict[str, int]]
    primary: bool = True


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
def lab_index_types(metric: str) -> list[str]:
    """The index types the lab compares for a float metric, in the spec's order."""
    return [name for name in spec.index_types_for_metric(metric)]


def _nearest_log(values: Sequence[int], target: float) -> int:
    return min(values, key=lambda v: (abs(math.log(v) - math.log(target)), v))


def center_build_params(index_type: str, n: int, dim: int) -> dict[str, int]:
    """The spec's default build parameters, with IVF ``nlist`` chosen for the data (nearest 4·√n, <= n).

    Raises InvalidParameterError when the index type admits no parameters for ``dim`` (IVF_PQ on 50-d)."""
    index_spec = spec.get_index(index_type)
    params = spec.default_build_params(index_spec.name, dim)
    if "nlist" in params:
        grid = [v for v in spec.sweep_values(index_spec.build["nlist"]) if v <= n] or [1]
        params["nlist"] = _nearest_log(grid, 4 * math.sqrt(n))
    return params


def unavailable_reason(index_type: str, dim: int) -> str | None:
    """Why ``index_type`` cannot index vectors of dimension ``dim`` at all (None: it can).

    A parameter with a finite choice set that has no allowed value for ``dim`` (IVF_PQ ``m``) rules the
    type out; the reason names the rule and the nearest dimensions that allow it."""
    index_spec = spec.get_index(index_type)
    for name, param in index_spec.build.items():
        if param.choices is None or spec.allowed_values(param, {"dim": dim}):
            continue
        low, high = spec.DIMENSION
        below = next((d for d in range(dim - 1, low - 1, -1) if spec.allowed_values(param, {"dim": d})), None)
        above = next((d for d in range(dim + 1, min(high, 2 * dim) + 1) if spec.allowed_values(param, {"dim": d})),
                     None)
        nearest = " or ".join(str(d) for d in (below, above) if d is not None)
        return (f"{index_spec.name} skipped: no {name} is allowed for dimension {dim} ({param.rule_help}), so "
                f"{index_spec.name} cannot index this data"
                + (f"; dimensions {nearest} would allow it (e.g. a PCA projection, if you choose to)" if nearest
                   else ""))
    return None


def _neighbours(grid: Sequence[int], value: int) -> list[int]:
    lower = [v for v in grid if v < value]
    higher = [v for v in grid if v > value]
    return ([lower[-1]] if lower else []) + ([higher[0]] if higher else [])


def neighbour_build_params(index_type: str, center: Mapping[str, int], n: int, dim: int, metric: str
                           ) -> list[dict[str, int]]:
    """Builds one grid step from ``center`` (one parameter at a time), valid and within the spec's advice."""
    index_spec = spec.get_index(index_type)
    out = []
    for name, param in index_spec.build.items():
        ctx = {"dim": dim, "metric": metric, **center}
        grid = spec.allowed_values(param, ctx)
        if grid is None:
            grid = spec.sweep_values(param, ctx)
        for value in _neighbours(grid, center[name]):
            params = {**center, name: value}
            if "nlist" in params and params["nlist"] > n:
                continue
            try:
                spec.validate_build(index_spec.name, params, dim=dim, metric=metric, warn=False)
            except InvalidParameterError:
                continue
            if spec.recommendation_warnings(index_spec, params):
                continue
            out.append(params)
    return out


def search_grid(index_type: str, build_params: Mapping[str, int], n: int, k: int) -> list[dict[str, int]]:
    """Search settings for one build, in increasing-recall order, from the spec's sweep of its parameter."""
    index_spec = spec.get_index(index_type)
    if not index_spec.search:
        return [{}]
    settings: list[dict[str, int]] = []
    for name, param in index_spec.search.items():
        ctx = spec.search_context(k, build_params)
        start = stop = None
        if index_spec.name == "ANNOY":  # from the value -1 stands for up to every node of every tree
            start, stop = build_params["n_trees"] * k, build_params["n_trees"] * max(n, k)
        elif index_spec.name == "RNSG":  # a search list shorter than top_k cannot return top_k hits
            start = k
        values = spec.sweep_values(param, ctx, start=start, stop=stop)
        settings = [{**s, name: v} for s in (settings or [{}]) for v in values]
    return settings


def default_plan(dataset: Dataset, index_types: Iterable[str] | None = None, *, k: int = 10,
                 budget: str | Budget = "default") -> Plan:
    """The builds and search settings :func:`compare` runs, with skipped index types and why."""
    budget = get_budget(budget)
    types = lab_index_types(dataset.metric) if index_types is None else [spec.get_index(t).name for t in index_types]
    plan = Plan()
    extras: list[BuildPlan] = []
    for index_type in dict.fromkeys(types):
        index_spec = spec.INDEXES[index_type]
        if dataset.metric not in index_spec.metrics:
            plan.skipped[index_type] = f"{index_type} does not support metric {dataset.metric}"
            continue
        reason = unavailable_reason(index_type, dataset.dim)
        if reason:
            plan.skipped[index_type] = reason
            continue
        center = center_build_params(index_type, dataset.n, dataset.dim)
        plan.builds.append(BuildPlan(index_type, center, search_grid(index_type, center, dataset.n, k)))
        if budget.neighbour_builds:
            for params in neighbour_build_params(index_type, center, dataset.n, dataset.dim, dataset.metric):
                extras.append(BuildPlan(index_type, params, search_grid(index_type, params, dataset.n, k), False))
    plan.builds.extend(extras)  # every type's first build runs before any extra one
    return plan


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


def _label(params: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


class _Progress:
    """A tqdm.auto bar over all steps of a run (or nothing), which also prints notes."""

    def __init__(self, total: int, enabled: bool, desc: str):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True)

    def step(self, n: int = 1, text: str | None = None) -> None:
        if self.bar is not None:
            if text:
                self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(n)

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            warnings.warn(text, _lab_warning(), stacklevel=3)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _lab_warning() -> type[Warning]:
    from .measurements import LabWarning

    return LabWarning


def run_plan(session: Session, dataset: Dataset, plan: Plan, *, k: int, stop: StopRule,
             latency_queries: int = DEFAULT_LATENCY_QUERIES, progress: bool = True, time_limit: float | None = None,
             accept_build: Callable[[Build], str | None] | None = None, desc: str = "lab") -> list[dict[str, Any]]:
    """Build each planned index (cached) and walk its search settings until ``stop`` says so.

    ``accept_build`` may refuse a build after it is made (returns the reason), e.g. over a memory budget.
    Rows for skipped index types come first; builds not indexed or failed give one row with the reason.
    """
    started = time.perf_counter()
    dataset.ground_truth(k)
    rows: list[dict[str, Any]] = []
    bar = _Progress(plan.steps, progress, desc)
    try:
        for index_type, reason in plan.skipped.items():
            bar.write(reason)
            row = base_row(dataset, index_type, {}, {}, k)
            row.update(status=STATUS_SKIPPED, note=reason)
            rows.append(row)
        for item in plan.builds:
            if time_limit is not None and not item.primary and time.perf_counter() - started > time_limit:
                bar.step(1 + len(item.searches))
                row = base_row(dataset, item.index_type, item.build_params, {}, k)
                row.update(status=STATUS_SKIPPED, note=f"time limit of {time_limit:g} s reached before this build")
                rows.append(row)
                continue
            if bar.bar is not None:
                bar.bar.set_postfix_str("", refresh=False)
                bar.bar.set_description_str(f"{desc}: building {item.index_type} {_label(item.build_params)}")
            build = session.build(dataset, item.index_type, item.build_params)
            bar.step(1)
            refusal = None if not build.ok or accept_build is None else accept_build(build)
            if not build.ok or refusal:
                row = build_row(dataset, build, {}, k)
                if refusal:
                    row.update(status=STATUS_SKIPPED, note=refusal)
                bar.write(f"{item.index_type} {_label(item.build_params)}: {row['note']}")
                rows.append(row)
                bar.step(len(item.searches))
                continue
            recalls: list[float] = []
            for done, search in enumerate(item.searches, 1):
                if bar.bar is not None:
                    bar.bar.set_description_str(f"{desc}: {item.index_type} {_label(item.build_params)}")
                row = session.measure_setting(dataset, build, search, k=k, latency_queries=latency_queries)
                rows.append(row)
                recalls.append(row["recall"])
                bar.step(1, f"{_label(search) or 'exact'}: recall {row['recall']:.3f}")
                over_time = time_limit is not None and time.perf_counter() - started > time_limit
                if stop(recalls) or over_time:
                    if over_time and done < len(item.searches):
                        row["note"] = (row["note"] + "; " if row["note"] else "") + \
                            f"sweep stopped: time limit of {time_limit:g} s"
                    bar.step(len(item.searches) - done)
                    break
    finally:
        bar.close()
    return rows


def _split_budget(budget: Any, time_limit: float | None) -> tuple[str | Budget, float | None]:
    if isinstance(budget, Real) and not isinstance(budget, bool):
        if budget <= 0:
            raise ParamError(f"a time budget must be positive seconds; got {budget!r}")
        return "default", float(budget)
    return budget, time_limit


def compare(dataset: Dataset, index_types: Iterable[str] | None = None, *, k: int = 10,
            budget: str | float = "default", session: Session | None = None,
            latency_queries: int = DEFAULT_LATENCY_QUERIES, time_limit: float | None = None,
            progress: bool = True) -> pd.DataFrame:
    """Compare index types on ``dataset`` with default sweeps from the spec; one row per measured setting.

    ``index_types``: names (default: every float index type). ``budget``: ``"quick"``, ``"default"``
    or ``"thorough"`` (more builds), or a number of seconds (the default grid under a time limit: extra
    builds and further search points stop once it is spent). Recall is k-recall@k against exact ground
    truth; search sweeps stop when recall saturates. Index types that cannot run on this data (IVF_PQ
    on a dimension that admits no ``m``) get a row with ``status="skipped"`` and the reason; builds that
    left rows raw get ``status="not indexed"`` and are not measured. ``pareto`` marks each type's
    recall–QPS frontier. A tqdm.auto progress bar runs over the whole comparison.
    """
    budget, time_limit = _split_budget(budget, time_limit)
    budget_obj = get_budget(budget)
    k = dataset._check_k(k)
    plan = default_plan(dataset, index_types, k=k, budget=budget_obj)
    started = time.perf_counter()
    rows = run_plan(session or default_session(), dataset, plan, k=k, stop=saturation_rule(budget_obj),
                    latency_queries=latency_queries, progress=progress, time_limit=time_limit, desc="compare")
    df = results_frame(rows)
    df["pareto"] = pareto_frontier(df)
    df.attrs.update(dataset=dataset.name, k=k, budget=budget_obj.name, wall_s=time.perf_counter() - started)
    return df
