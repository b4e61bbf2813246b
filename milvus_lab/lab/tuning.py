"""Auto-tuning: per index type, the fastest setting that reaches a recall target on held-out queries.

The queries are split in two. The sweep runs on the tuning half and, per build, stops one step after
the target is first reached (search parameters are swept in increasing-recall order, so that first step
is that build's fastest setting at the target). Candidates are then re-measured on the held-out half,
fastest first; the first whose held-out recall (measured, not guessed) meets the target, and the
optional p99 latency and memory limits, is the type's answer. The overall winner has the highest
held-out QPS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from numbers import Real
from typing import TYPE_CHECKING, Any

from ..errors import ParamError
from .datasets import Dataset
from .measurements import DEFAULT_LATENCY_QUERIES, STATUS_OK, Session, default_session, results_frame
from .metrics import pareto_frontier
from .sweeps import default_plan, get_budget, run_plan, saturation_rule

if TYPE_CHECKING:
    import pandas as pd

BEST_COLUMNS = ["index_type", "build_params", "search_params", "recall", "qps", "p50_ms", "p95_ms", "p99_ms",
                "build_s", "memory_mb", "tuning_recall", "status", "note"]


def _code_lines(index_type: str, build_params: dict[str, int], search_params: dict[str, int], k: int) -> str:
    search = f", {search_params!r}" if search_params else ""
    return (f"collection.create_index({index_type!r}, {build_params!r})\n"
            f"collection.search(queries, {k}{search})\n"
            f"# pymilvus 0.2.x: milvus.create_index(name, IndexType.{index_type}, {build_params!r}); "
            f"milvus.search(name, {k}, queries, params={search_params!r})")


@dataclass
class TuneResult:
    """What :func:`tune` found: the best setting per index type, the winner, and everything it searched.

    ``best``: one row per index type (held-out recall / QPS / latency, or why none qualified);
    ``winner``: the best row with the highest held-out QPS (None if no type met the constraints);
    ``frontier``: every setting measured on the tuning queries, with ``pareto`` and ``meets_target``;
    ``holdout``: the held-out re-measurements.
    """

    target_recall: float
    k: int
    best: pd.DataFrame
    winner: pd.Series | None
    frontier: pd.DataFrame
    holdout: pd.DataFrame
    memory_budget_mb: float | None = None
    max_p99_ms: float | None = None
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def code(self, index_type: str | None = None) -> str:
        """The create_index / search lines for the winner (or for ``index_type``'s best setting)."""
        row = self.winner if index_type is None else self._best_row(index_type)
        if row is None:
            raise ValueError("no setting met the target" + (f" for {index_type}" if index_type else ""))
        return _code_lines(row["index_type"], json.loads(row["build_params"]), json.loads(row["search_params"]),
                           self.k)

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
                lines.append(f"  {row['index_type']:<9} {row['build_params']} {row['search_params']}: recall "
                             f"{row['recall']:.3f}, {row['qps']:,.0f} QPS, p99 {row['p99_ms']:.2f} ms, "
                             f"{row['memory_mb']:,.1f} MB")
            else:
                lines.append(f"  {row['index_type']:<9} {row['note']}")
        if self.winner is not None:
            lines.append(f"winner: {self.winner['index_type']} {self.winner['build_params']} "
                         f"{self.winner['search_params']}")
        else:
            lines.append("winner: none (no index type met every constraint)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        from html import escape

        head, *_ = self.summary().splitlines()
        winner = ("<p><b>winner:</b> none (no index type met every constraint)</p>" if self.winner is None else
                  f"<p><b>winner:</b> {escape(self.winner['index_type'])} {escape(self.winner['build_params'])} "
                  f"{escape(self.winner['search_params'])}</p><pre>{escape(self.code())}</pre>")
        table = self.best.to_html(index=False, na_rep="", float_format=lambda v: f"{v:,.4g}")
        return f"<p>{escape(head)}</p>{table}{winner}"


def _check_fraction(name: str, value: Any, low_open: bool = True) -> float:
    if not isinstance(value, Real) or isinstance(value, bool) or not (0 < float(value) <= 1):
        raise ParamError(f"{name} must be a number in (0, 1]; got {value!r}")
    return float(value)


def _check_positive(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if not isinstance(value, Real) or isinstance(value, bool) or not float(value) > 0:
        raise ParamError(f"{name} must be a positive number or None; got {value!r}")
    return float(value)


def tune(dataset: Dataset, target_recall: float = 0.95, index_types: Iterable[str] | None = None, *, k: int = 10,
         memory_budget_mb: float | None = None, max_p99_ms: float | None = None, holdout: float = 0.5,
         budget: str = "default", session: Session | None = None,
         latency_queries: int = DEFAULT_LATENCY_QUERIES, progress: bool = True, seed: int = 0) -> TuneResult:
    """Per index type, the setting with the highest QPS whose k-recall@k on held-out queries is at least
    ``target_recall`` (and, if given, p99 latency <= ``max_p99_ms`` and index memory <= ``memory_budget_mb``).

    ``holdout`` is the fraction of the dataset's queries kept aside to verify the choice; the sweep uses
    the rest. Builds are shared with :func:`compare` through the session.
    """
    target = _check_fraction("target_recall", target_recall)
    memory_budget_mb = _check_positive("memory_budget_mb", memory_budget_mb)
    max_p99_ms = _check_positive("max_p99_ms", max_p99_ms)
    budget_obj = get_budget(budget)
    session = session or default_session()
    started = time.perf_counter()
    k = dataset._check_k(k)
    tune_ds, hold_ds = dataset.split_queries(holdout, seed)
    plan = default_plan(dataset, index_types, k=k, budget=budget_obj)
    saturated = saturation_rule(budget_obj, max_recall=1.0)  # only a plateau stops before the target

    def stop(recalls: list[float]) -> bool:
        reached = [i for i, r in enumerate(recalls) if r >= target]
        return (bool(reached) and len(recalls) - 1 >= reached[0] + 1) or saturated(recalls)

    def accept(build: Any) -> str | None:
        if memory_budget_mb is not None and build.memory_bytes / 2**20 > memory_budget_mb:
            return (f"{build.index_type} index needs {build.memory_bytes / 2**20:,.1f} MB, over the memory budget "
                    f"of {memory_budget_mb:,.1f} MB")
        return None

    rows = run_plan(session, tune_ds, plan, k=k, stop=stop, latency_queries=latency_queries, progress=progress,
                    accept_build=accept, desc="tune")
    frontier = results_frame(rows)
    frontier["pareto"] = pareto_frontier(frontier)
    frontier["meets_target"] = (frontier["status"] == STATUS_OK) & (frontier["recall"] >= target)
    if max_p99_ms is not None:
        frontier["meets_target"] &= frontier["p99_ms"] <= max_p99_ms

    best_rows, hold_rows = [], []
    for index_type in dict.fromkeys(frontier["index_type"]):
        mine = frontier[frontier["index_type"] == index_type]
        measured = mine[mine["status"] == STATUS_OK]
        candidates = mine[mine["meets_target"]].sort_values("qps", ascending=False)
        chosen = None
        for _, cand in candidates.iterrows():
            build = session.build(dataset, index_type, json.loads(cand["build_params"]))
            row = session.measure_setting(hold_ds, build, json.loads(cand["search_params"]), k=k,
                                          latency_queries=latency_queries)
            row["tuning_recall"] = cand["recall"]
            hold_rows.append(row)
            if row["recall"] >= target and (max_p99_ms is None or row["p99_ms"] <= max_p99_ms):
                chosen = row
                break
        if chosen is not None:
            best_rows.append(chosen)
            continue
        note = _why_none(mine, measured, candidates, target, max_p99_ms)
        best_rows.append({"index_type": index_type, "build_params": "", "search_params": "",
                          "status": "no setting", "note": note})
    import pandas as pd

    best = pd.DataFrame(best_rows).reindex(columns=BEST_COLUMNS)
    ok = best[best["status"] == STATUS_OK]
    winner = None if ok.empty else ok.loc[ok["qps"].astype(float).idxmax()]
    holdout_df = results_frame(hold_rows)
    if hold_rows:
        holdout_df["tuning_recall"] = [r["tuning_recall"] for r in hold_rows]
    return TuneResult(target, k, best.reset_index(drop=True), winner, frontier, holdout_df, memory_budget_mb,
                      max_p99_ms, time.perf_counter() - started)


def _why_none(mine: pd.DataFrame, measured: pd.DataFrame, candidates: pd.DataFrame, target: float,
              max_p99_ms: float | None) -> str:
    if measured.empty:
        notes = [n for n in mine["note"] if n]
        return notes[0] if notes else "not measured"
    if not candidates.empty:
        return (f"{len(candidates)} setting(s) met the target on the tuning queries but none on the held-out "
                f"queries")
    top = measured.loc[measured["recall"].idxmax()]
    text = f"tops out at recall {top['recall']:.3f} ({top['build_params']} {top['search_params']}) below {target:g}"
    if max_p99_ms is not None:
        at_target = measured[measured["recall"] >= target]
        if not at_target.empty:
            text = (f"reaches recall {target:g} only above p99 {max_p99_ms:g} ms (best p99 at target: "
                    f"{at_target['p99_ms'].min():.2f} ms)")
    return text
