"""Auto-tuning: per index type, the fastest setting that reaches a recall target on held-out queries.

The queries are split in two: the *tuning* half steers the search, the *held-out* half verifies and times.

* **Search parameter** (one integer per index type: nprobe, ef, search_length, search_k): its recall is
  measured walking the spec's sweep upward from ``sweep_start`` until the target is reached (the bracket),
  then the integer is **bisected** between the last value below the target and the first at it, so the
  answer is the smallest value that reaches the target, not the next grid point above it.
* **Verification**: the chosen value is searched with the held-out queries; it passes when the recall over
  all queries (tuning and held-out) reaches the target and the held-out recall is not below it beyond its
  uncertainty (the upper bound of a 95 % interval on the mean of the per-query recalls,
  :func:`~milvus_lab.lab.metrics.recall_bounds`). If it fails, the tuning target is raised by twice the
  shortfall, once, and the search repeated. When it passes, the value is moved further down to the smallest that
  still passes the verification (the tuning half alone overshoots by its sampling error): the values tried
  below it are checked on all queries, downwards, until one fails; then the integer is bisected between
  that value and the smallest passing one. Then the setting is timed with the measurement protocol
  (interleaved rounds, median and range).
* **Build parameters** (nlist; HNSW M and efConstruction; ANNOY n_trees; IVF_PQ m and nlist; RNSG
  out_degree, knng, candidate_pool_size, search_length) are explored by **coordinate search** from the
  spec's defaults: one parameter at a time, one grid step in the cheaper direction first, continuing while
  the held-out QPS at the target (median) beats the best build's fastest round by more than ``min_gain`` (builds
  are timed at different moments, so only a gain beyond the spread counts), within ``time_budget_s`` and
  ``max_builds`` per type. Every point tried is kept, with why the search stopped.

Index types the spec marks as not recommended (IVF_SQ8H, the same index as IVF_SQ8 here) are not tuned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..codegen import pymilvus2_index_code
from ..errors import ParamError, ServerError
from ..units import MIB
from .. import spec
from .datasets import Dataset, check_dataset
from .arguments import check, check_all, check_index_types, check_target, index_types_or_all
from .setting import Setting
from .measurements import STATUS_OK, Session, base_row, check_session, results_frame, session_scope
from .metrics import recall_bounds, tied_with_best
from .report import params_text, result_html, stopped_early
from .sweeps import Progress, build_grid, center_build_params, search_values, valid_build
from .timing import (
    DEFAULT_CONCURRENCY_SECONDS,
    DEFAULT_LATENCY_QUERIES,
    ConcurrencyPlan,
    check_concurrency,
    level_columns,
    levels_of,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..protocol import Target

BEST_COLUMNS = ["index_type", "build_params", "search_params", "recall", "recall_lo", "recall_hi", "tuning_recall",
                "qps", "qps_lo", "qps_hi", "p50_ms", "p95_ms", "p99_ms", "build_s", "memory_mb", "busy", "status",
                "note"]
#: relative QPS gain a build must show over the best so far for the coordinate search to move on to it
DEFAULT_MIN_GAIN = 0.03
#: builds tried per index type at most
DEFAULT_MAX_BUILDS = 8
STATUS_NO_SETTING = "no setting"
STATUS_NOT_TUNED = "not tuned"

CODE_TARGETS = ("pymilvus-0.2", "pymilvus-2")


# --------------------------------------------------------------------------------------------------
# The search parameter: bracket, then bisect
# --------------------------------------------------------------------------------------------------
def bisect_smallest(passes: Callable[[int], bool], low: int, high: int, *, tolerance: float = 0.02) -> int:
    """For a ``passes`` that holds from some integer on, with ``low`` failing and ``high`` passing: bisect until
    the two are adjacent (or within ``tolerance`` of ``high``) and return ``high``, the smallest passing value
    seen. Each value is asked at most once."""
    while high - low > max(1, int(tolerance * high)):
        mid = (low + high) // 2
        if passes(mid):
            high = mid
        else:
            low = mid
    return high


def smallest_passing(recall: Callable[[int], float], values: list[int], target: float, *,
                     tolerance: float = 0.02) -> tuple[int | None, list[tuple[int, float, str]]]:
    """The smallest integer value whose ``recall(value)`` reaches ``target``, for a recall that grows with the
    value: walk ``values`` (increasing) until one passes, then :func:`bisect_smallest` between the last failing
    value and it. Returns (value or None, points tried as (value, recall, phase))."""
    points: list[tuple[int, float, str]] = []

    def probe(value: int, phase: str) -> bool:
        points.append((value, recall(value), phase))
        return points[-1][1] >= target

    low = None
    for value in values:
        if probe(value, "bracket"):
            if low is None:
                return value, points
            return bisect_smallest(lambda mid: probe(mid, "bisect"), low, value, tolerance=tolerance), points
        low = value
    return None, points


# --------------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------------
def code_lines(index_type: str, build_params: dict[str, int], search_params: dict[str, int], k: int, metric: str,
               target: str) -> str:
    """The create_index / search lines of a setting for ``target`` (one of :data:`CODE_TARGETS`)."""
    if target == "pymilvus-0.2":
        search = f", {search_params!r}" if search_params else ""
        return (f"collection.create_index({index_type!r}, {build_params!r})\n"
                f"collection.search(queries, {k}{search})\n"
                f"# pymilvus 0.2.x: milvus.create_index(name, IndexType.{index_type}, {build_params!r}); "
                f"milvus.search(name, {k}, queries, params={search_params!r})")
    if target != "pymilvus-2":
        raise ParamError(f"target must be one of {', '.join(CODE_TARGETS)}; got {target!r}")
    # the server's rules: refuses what Milvus 2.3 lacks or would misread (the lines the server tests run)
    return pymilvus2_index_code(index_type, build_params, search_params, metric, k=k)


@dataclass
class TuneResult:
    """What :func:`tune` found: the best setting per index type, the winner, and everything it tried.

    ``best``: one row per index type (held-out recall with its interval, QPS with its range, latency, or
    why none qualified); ``winner``: the fastest best row by median QPS (None if no type met the
    constraints); ``ties``: the types whose QPS range overlaps the winner's (one entry: a clear winner);
    ``trials``: one row per build tried (``reason`` says why it was kept or left); ``points``: every
    recall evaluation of the search parameter (bracket and bisection steps); ``holdout``: the held-out
    timings; ``stopped``: per index type, why its search ended.
    """

    target_recall: float
    k: int
    metric: str
    best: pd.DataFrame
    winner: pd.Series | None
    ties: list[str]
    trials: pd.DataFrame
    points: pd.DataFrame
    holdout: pd.DataFrame
    stopped: dict[str, str] = field(default_factory=dict)
    memory_budget_mb: float | None = None
    max_p99_ms: float | None = None
    wall_s: float = 0.0
    error: str | None = None

    def code(self, index_type: str | None = None, *, target: str = "pymilvus-0.2") -> str:
        """The create_index / search lines for the winner (or ``index_type``'s best setting).

        ``target="pymilvus-0.2"``: milvus_lab's Collection and the pymilvus 0.2.x call; ``"pymilvus-2"``:
        the Milvus 2.x lines (ORM ``create_index`` / ``search`` and MilvusClient ``index_params``); a type
        that Milvus 2.3 lacks raises with the reason."""
        row = self.winner if index_type is None else self._best_row(index_type)
        if row is None:
            raise ValueError("no setting met the target" + (f" for {index_type}" if index_type else ""))
        chosen = Setting.from_columns(row["index_type"], row["build_params"], row["search_params"])
        return code_lines(chosen.index_type, chosen.build_params, chosen.search_params, self.k, self.metric,
                          target)

    def _best_row(self, index_type: str) -> pd.Series | None:
        rows = self.best[(self.best["index_type"] == index_type) & (self.best["status"] == STATUS_OK)]
        return None if rows.empty else rows.iloc[0]

    def summary(self) -> str:
        limits = [f"recall >= {self.target_recall:g} (k-recall@k, k={self.k}, held-out queries)"]
        if self.max_p99_ms is not None:
            limits.append(f"p99 <= {self.max_p99_ms:g} ms")
        if self.memory_budget_mb is not None:
            limits.append(f"memory <= {self.memory_budget_mb:,.0f} MB")
        lines = ["tune: " + ", ".join(limits)]
        for _, row in self.best.iterrows():
            if row["status"] == STATUS_OK:
                lines.append(f"  {row['index_type']:<9} {params_text(row['build_params'])}; "
                             f"{params_text(row['search_params'])}: recall {row['recall']:.3f} "
                             f"[{row['recall_lo']:.3f}, {row['recall_hi']:.3f}], {row['qps']:,.0f} QPS "
                             f"({row['qps_lo']:,.0f}-{row['qps_hi']:,.0f}), p99 {row['p99_ms']:.2f} ms, "
                             f"{row['memory_mb']:,.1f} MB")
            else:
                lines.append(f"  {row['index_type']:<9} {row['note']}")
        if self.winner is None:
            lines.append("winner: none (no index type met every constraint)")
        elif len(self.ties) > 1:
            lines.append(f"tie: {', '.join(self.ties)} (QPS ranges overlap); fastest by median: "
                         f"{self.winner['index_type']} {params_text(self.winner['build_params'])}; "
                         f"{params_text(self.winner['search_params'])}")
        else:
            lines.append(f"winner: {self.winner['index_type']} {params_text(self.winner['build_params'])}; "
                         f"{params_text(self.winner['search_params'])}")
        return "\n".join(lines + stopped_early(self.error))

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        lines = self.summary().splitlines()
        return result_html(lines[0], self.best, lines[-1], code=None if self.winner is None else self.code())


# --------------------------------------------------------------------------------------------------
# The tuner
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    """One build :func:`tune` tried: its setting (the search value it chose, if any), what the build cost, the
    recall and QPS it reached on the held-out queries, and why it was kept or left (``status``, ``reason``).

    ``row`` is the timed held-out result row (None until the setting is timed); ``score`` is the held-out QPS of
    a trial that met every constraint, ``-inf`` otherwise. :meth:`columns` is its row in ``TuneResult.trials``."""

    setting: Setting
    build_s: float
    memory_mb: float
    status: str
    reason: str
    recall: float = float("nan")
    tuning_recall: float = float("nan")
    qps: float = float("nan")
    row: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def score(self) -> float:
        return self.qps if self.ok else -np.inf

    @property
    def fastest_qps(self) -> float:
        """The QPS of its fastest timed round (``-inf`` when it met no target): the bar a new build must beat."""
        return self.row["qps_hi"] if self.ok and self.row is not None else -np.inf

    def columns(self) -> dict[str, Any]:
        return {**self.setting.columns(), "build_s": self.build_s, "memory_mb": self.memory_mb, "qps": self.qps,
                "recall": self.recall, "tuning_recall": self.tuning_recall, "status": self.status,
                "reason": self.reason, "score": self.score}


@dataclass(frozen=True)
class _Choice:
    """A search setting with its per-query recalls on the tuning and the held-out queries."""

    search: Mapping[str, int]
    tuning: np.ndarray
    held: np.ndarray

    def verdict(self, target: float) -> tuple[bool, float, float, float]:
        """(passes, recall over all queries, held-out 95 % interval low, high): it passes when the recall over
        all queries reaches ``target`` and the held-out recall is not below it beyond its interval."""
        pooled = float(np.concatenate([self.tuning, self.held]).mean())
        low, high = recall_bounds(self.held)
        return pooled >= target and high >= target, pooled, low, high


@dataclass
class _Tuner:
    session: Session
    tune_ds: Dataset
    hold_ds: Dataset
    target: float
    k: int
    memory_budget_mb: float | None
    max_p99_ms: float | None
    latency_queries: int
    bar: Progress
    concurrency: ConcurrencyPlan | None = None
    points: list[dict[str, Any]] = field(default_factory=list)
    trials: list[Trial] = field(default_factory=list)
    holdout: list[dict[str, Any]] = field(default_factory=list)

    def point(self, index_type: str, build_params: Mapping[str, int], search: Mapping[str, int], recall: float,
              phase: str, queries: str, required: float | None = None) -> None:
        row = base_row(self.tune_ds, index_type, build_params, search, self.k, self.session)
        row.update(recall=recall, phase=phase, queries=queries, required=required)
        self.points.append(row)

    def relabel(self, trial: Trial, reason: str) -> Trial:
        """``trial`` with a new ``reason``, replaced in :attr:`trials` too."""
        new = replace(trial, reason=reason)
        self.trials[next(i for i, t in enumerate(self.trials) if t is trial)] = new
        return new

    # one trial: build, choose (find, verify, refine), time ---------------------------------------------------
    def evaluate(self, index_type: str, params: dict[str, int]) -> Trial:
        """Build ``params``, choose the smallest search value that passes on the held-out queries, time it: one
        trial, recorded in :attr:`trials` even when a server error ends it half way."""
        setting = Setting.of(index_type, params)
        label = setting.label()
        self.bar.describe(f"tune: building {label}")
        build = self.session.build(self.tune_ds, index_type, params)
        trial = Trial(setting, build.build_s, build.memory_bytes / MIB, build.status, build.note)
        self.bar.step(1, label)
        try:
            trial = self.qualify(trial, build, label)
        finally:
            self.trials.append(trial)
        return trial

    def qualify(self, trial: Trial, build: Any, label: str) -> Trial:
        """A measured build's trial carried through the memory budget, the choice of search value, the timing
        and the p99 limit; the first that fails says why in ``reason``."""
        if not build.ok:
            return trial
        if self.memory_budget_mb is not None and trial.memory_mb > self.memory_budget_mb:
            return replace(trial, status=STATUS_NO_SETTING,
                           reason=f"index needs {trial.memory_mb:,.3g} MB, over the memory budget of "
                                  f"{self.memory_budget_mb:,.3g} MB")
        self.bar.describe(f"tune: {label}")
        choice, failure = self.choose(trial.setting, build)
        if choice is not None:
            trial = replace(trial, setting=trial.setting.with_search(choice.search),
                            tuning_recall=float(choice.tuning.mean()), recall=float(choice.held.mean()))
        if failure is not None:
            return replace(trial, status=STATUS_NO_SETTING, reason=failure)
        self.bar.describe(f"tune: timing {label}")
        row = self.time(build, choice)
        trial = replace(trial, qps=row["qps"], row=row)
        if self.max_p99_ms is not None and row["p99_ms"] > self.max_p99_ms:
            return replace(trial, status=STATUS_NO_SETTING,
                           reason=f"reaches the target only at p99 {row['p99_ms']:.2f} ms, over {self.max_p99_ms:g} ms")
        return replace(trial, status=STATUS_OK, reason="meets the target")

    def choose(self, setting: Setting, build: Any) -> tuple[_Choice | None, str | None]:
        """The smallest search value that passes the held-out verification: found on the tuning queries, verified,
        then refined downwards. If the first pick fails the verification, the tuning target is raised by twice
        the shortfall, once. Returns (the last choice looked at, None) or (it or None, why none passes)."""
        found = search_values(setting.index_type, setting.build_params, self.tune_ds.n, self.k, self.session.profile)
        required = self.target
        choice = None
        for attempt in range(2):
            picked, tried, failure = self.find(setting, build, found, required)
            if failure is not None:
                return choice, failure
            choice = picked
            ok, pooled, low, high = self.verify(setting, build, choice)
            if ok:
                return (self.refine(setting, build, choice, tried) if found is not None else choice), None
            held = float(choice.held.mean())
            if attempt == 0:  # aim higher by the shortfall, once
                required = min(1.0, required + 2 * (self.target - min(pooled, held)))
        return choice, (f"held-out recall {held:.3f} (95% interval {low:.3f}-{high:.3f}; all queries {pooled:.3f}) "
                        f"stays below {self.target:g}")

    def find(self, setting: Setting, build: Any, found: tuple[str, list[int]] | None, required: float
             ) -> tuple[_Choice | None, list[tuple[int, float, str]], str | None]:
        """The smallest search value whose recall on the tuning queries reaches ``required`` (no search parameter:
        the index's only setting), with the held-out recalls of it; (choice, values tried, None) or
        (None, values tried, why no value reaches it)."""
        ds, index_type, params = self.tune_ds, setting.index_type, setting.build_params
        if found is None:
            tuning = self.session.recall_of(ds, build, {}, self.k)
            self.point(index_type, params, {}, float(tuning.mean()), "exact", "tuning")
            return _Choice({}, tuning, self.session.recall_of(self.hold_ds, build, {}, self.k)), [], None
        name, values = found
        per_value: dict[int, np.ndarray] = {}

        def recall(value: int) -> float:
            per_value[value] = self.session.recall_of(ds, build, {name: value}, self.k)
            return float(per_value[value].mean())

        value, tried = smallest_passing(recall, values, required)
        for v, r, phase in tried:
            self.point(index_type, params, {name: v}, r, phase, "tuning", required)
        if value is None:
            top = max(tried, key=lambda t: t[1])
            return None, tried, (f"tops out at recall {top[1]:.3f} ({name}={top[0]}) on the tuning queries, "
                                 f"below {required:.3f}")
        search = {name: value}
        return _Choice(search, per_value[value], self.session.recall_of(self.hold_ds, build, search, self.k)), \
            tried, None

    def verify(self, setting: Setting, build: Any, choice: _Choice) -> tuple[bool, float, float, float]:
        """:meth:`_Choice.verdict` of ``choice``, its held-out recall recorded as a ``verify`` point."""
        self.point(setting.index_type, setting.build_params, choice.search, float(choice.held.mean()), "verify",
                   "held-out")
        return choice.verdict(self.target)

    def refine(self, setting: Setting, build: Any, choice: _Choice, tried: list[tuple[int, float, str]]) -> _Choice:
        """The smallest value at or below the verified one that still passes the verification on all queries: the
        tuning half alone overshoots by its sampling error. The values below it that missed on the tuning half
        are checked downwards until one fails; then :func:`bisect_smallest` runs between that one and the
        smallest passing."""
        (name, value), = choice.search.items()
        passing: dict[int, _Choice] = {value: choice}

        def passes(mid: int) -> bool:
            candidate = _Choice({name: mid}, self.session.recall_of(self.tune_ds, build, {name: mid}, self.k),
                                self.session.recall_of(self.hold_ds, build, {name: mid}, self.k))
            ok, pooled, _, _ = candidate.verdict(self.target)
            self.point(setting.index_type, setting.build_params, {name: mid}, pooled, "refine", "all", self.target)
            if ok:
                passing[mid] = candidate
            return ok

        low = next((below for below in sorted({v for v, _, _ in tried if v < value}, reverse=True)
                    if not passes(below)), None)
        smallest = min(passing)
        if low is not None:
            smallest = bisect_smallest(passes, low, smallest)
        return passing[smallest]

    def time(self, build: Any, choice: _Choice) -> dict[str, Any]:
        """The chosen setting timed on the held-out queries with the lab's protocol (its result row)."""
        row = self.session.measure_settings(self.hold_ds, build, [dict(choice.search)], k=self.k,
                                            latency_queries=self.latency_queries, recalls=[choice.held],
                                            concurrency=self.concurrency)[0]
        row["tuning_recall"] = float(choice.tuning.mean())
        self.holdout.append(row)
        return row

    # the build parameters: coordinate search ----------------------------------------------------------------
    def tune_type(self, index_type: str, deadline: float | None, max_builds: int, min_gain: float
                  ) -> tuple[Trial, str]:
        """Coordinate search over the build parameters from the spec's defaults; (best trial, why it stopped)."""
        ds = self.tune_ds
        profile = self.session.profile
        current = center_build_params(index_type, ds.n, ds.dim, profile)
        best = self.evaluate(index_type, current)
        builds = 1
        names = list(spec.get_index(index_type, profile=profile).build)
        if not names:
            return best, "no build parameters to explore"
        if best.status not in (STATUS_OK, STATUS_NO_SETTING):
            return best, "the default build could not be measured"
        tried = {Setting.of(index_type, current)}
        for name in names:
            for direction in (-1, 1):  # smaller values build faster: try them first
                moved = False
                while True:
                    grid = build_grid(index_type, name, current, ds.dim, ds.metric, profile)
                    side = [v for v in grid if (v < current[name] if direction < 0 else v > current[name])]
                    if not side:
                        break
                    candidate = {**current, name: side[-1] if direction < 0 else side[0]}
                    if Setting.of(index_type, candidate) in tried or \
                            not valid_build(index_type, candidate, ds.n, ds.dim, ds.metric, profile, advice=False):
                        break
                    if builds >= max_builds:
                        return best, f"tried {builds} builds (max_builds)"
                    if deadline is not None and time.perf_counter() > deadline:
                        return best, f"time budget spent after {builds} builds"
                    tried.add(Setting.of(index_type, candidate))
                    trial = self.evaluate(index_type, candidate)
                    builds += 1
                    # builds are timed at different moments: move only when the new median beats the best's
                    # fastest round by min_gain, so a quieter minute does not pass for a better build
                    if trial.score > best.fastest_qps * (1 + min_gain) or (not best.ok and trial.ok):
                        best = self.relabel(trial, f"better than {spec.format_params(best.setting.build_params)}")
                        current, moved = candidate, True
                        continue
                    if trial.ok:
                        self.relabel(trial, f"not faster than the best so far beyond its spread (+{min_gain:.0%} "
                                            f"over its fastest round)")
                    break
                if moved:
                    break
        return best, f"coordinate search converged after {builds} builds"


def tune(dataset: Dataset, target_recall: float = 0.95, index_types: Iterable[str] | None = None, *, k: int = 10,
         memory_budget_mb: float | None = None, max_p99_ms: float | None = None, holdout: float = 0.5,
         time_budget_s: float | None = None, max_builds: int = DEFAULT_MAX_BUILDS,
         min_gain: float = DEFAULT_MIN_GAIN, session: Session | None = None, target: Target | None = None,
         latency_queries: int = DEFAULT_LATENCY_QUERIES, repeats: int | None = None, threads: int | None = None,
         progress: bool = True, seed: int = 0, concurrency: Any = None,
         concurrency_seconds: float = DEFAULT_CONCURRENCY_SECONDS, concurrency_batch: int = 1) -> TuneResult:
    """Per index type, the setting with the highest held-out QPS whose held-out k-recall@k reaches
    ``target_recall`` (and, if given, p99 latency <= ``max_p99_ms`` and index memory <= ``memory_budget_mb``).

    ``holdout``: the fraction of the queries kept aside to verify and time the choice. ``time_budget_s``:
    seconds for the whole call, shared evenly by the index types still to tune (the build search stops when
    its share is spent; each type's default build always runs). ``target``: where to build (default: a new
    in-memory engine). See the module docstring for the search. ``concurrency=(1, 10, 20)`` adds concurrent-client
    QPS and latency of each verified setting on the held-out queries (see :func:`~milvus_lab.lab.measure`;
    default None: off); ``concurrency_batch`` is at most the number of held-out queries.
    """
    args = check_all({"target_recall": target_recall, "memory_budget_mb": memory_budget_mb, "max_p99_ms": max_p99_ms,
                      "time_budget_s": time_budget_s, "max_builds": max_builds, "min_gain": min_gain})
    target_recall, memory_budget_mb, max_p99_ms = args["target_recall"], args["memory_budget_mb"], args["max_p99_ms"]
    time_budget_s, max_builds, min_gain = args["time_budget_s"], args["max_builds"], args["min_gain"]
    check_dataset(dataset)
    latency_queries, repeats = check("latency_queries", latency_queries), check("repeats", repeats)
    progress, seed = check("progress", progress), check("seed", seed)
    index_types = check_index_types(index_types)
    check_session(session)
    check_target(target)
    started = time.perf_counter()
    k = dataset.check_k(k)
    tune_ds, hold_ds = dataset.split_queries(holdout, seed)  # a bad holdout is refused before any session exists
    clients = check_concurrency(concurrency, concurrency_seconds, concurrency_batch, nq=hold_ds.nq)
    with session_scope(session, target=target, threads=threads, repeats=repeats) as run:
        return _tune(run, dataset, tune_ds, hold_ds, index_types_or_all(index_types, dataset.metric), target_recall, k,
                     memory_budget_mb, max_p99_ms, time_budget_s, max_builds, min_gain, latency_queries, progress,
                     clients, started)


def _tune(session: Session, dataset: Dataset, tune_ds: Dataset, hold_ds: Dataset, types: list[str],
          target_recall: float, k: int, memory_budget_mb: float | None, max_p99_ms: float | None,
          time_budget_s: float | None, max_builds: int, min_gain: float, latency_queries: int, progress: bool,
          clients: Any, started: float) -> TuneResult:
    """tune()'s search once its arguments are checked and its session is open: type by type, the coordinate
    search over build parameters, each build's search value found, verified and timed (see the module doc)."""
    tune_ds.ground_truth(k)
    hold_ds.ground_truth(k)
    profile = session.profile
    best_rows: list[dict[str, Any]] = []
    stopped: dict[str, str] = {}
    error = None
    bar = Progress(len(types) * max_builds, progress, "tune")
    tuner = _Tuner(session, tune_ds, hold_ds, target_recall, k, memory_budget_mb, max_p99_ms, latency_queries, bar,
                   clients)
    try:
        with session.running():
            for pos, index_type in enumerate(types):
                reason = spec.unavailable_reason(index_type, dim=dataset.dim, metric=dataset.metric, profile=profile)
                other = spec.get_index(index_type).same_as
                if reason or not spec.get_index(index_type).recommend:
                    note = reason or f"not tuned: the same index as {other} on the CPU here; see {other}"
                    best_rows.append({"index_type": index_type, "status": STATUS_NOT_TUNED, "note": note})
                    stopped[index_type] = note
                    bar.step(max_builds)
                    continue
                deadline = None
                if time_budget_s is not None:
                    left = time_budget_s - (time.perf_counter() - started)
                    deadline = time.perf_counter() + max(0.0, left) / (len(types) - pos)
                done_before = len(tuner.trials)
                try:
                    best, why = tuner.tune_type(index_type, deadline, max_builds, min_gain)
                except ServerError as exc:
                    error = str(exc)
                    stopped[index_type] = f"server error: {exc}"
                    best_rows.append({"index_type": index_type, "status": "server error", "note": str(exc)})
                    break
                stopped[index_type] = why
                bar.step(max(0, max_builds - (len(tuner.trials) - done_before)))
                if best.ok and best.row is not None:
                    best_rows.append({**best.row, "note": why})
                else:
                    best_rows.append({"index_type": index_type, "build_params": "", "search_params": "",
                                      "status": best.status, "note": best.reason})
    finally:
        bar.close()
    return _result(tuner, best_rows, stopped, target_recall, k, dataset.metric, memory_budget_mb, max_p99_ms,
                   time.perf_counter() - started, error)


def _result(tuner: _Tuner, best_rows: list[dict[str, Any]], stopped: dict[str, str], target: float, k: int,
            metric: str, memory_budget_mb: float | None, max_p99_ms: float | None, wall_s: float,
            error: str | None) -> TuneResult:
    import pandas as pd

    frame = pd.DataFrame(best_rows)  # concurrent-client columns (when measured) follow the fixed ones
    best = frame.reindex(columns=BEST_COLUMNS + level_columns(levels_of(frame))).reset_index(drop=True)
    ok = best[(best["status"] == STATUS_OK) & best["index_type"].map(lambda name: spec.get_index(name).recommend)]
    winner, ties = None, []
    if not ok.empty:
        order = tied_with_best(ok["qps"].astype(float), ok["qps_lo"].astype(float), ok["qps_hi"].astype(float))
        winner = ok.iloc[order[0]]
        ties = [ok.iloc[i]["index_type"] for i in order]
    trials = pd.DataFrame([t.columns() for t in tuner.trials])
    points = results_frame(tuner.points)
    holdout = results_frame(tuner.holdout)
    if tuner.holdout:
        holdout["tuning_recall"] = [r["tuning_recall"] for r in tuner.holdout]
    return TuneResult(target, k, metric, best, winner, ties, trials, points, holdout, stopped, memory_budget_mb,
                      max_p99_ms, wall_s, error)
