"""Concurrent clients: QPS and latency when N clients send queries at the same time.

Batch QPS (every query in one call) says what an index can do; a deployment serves many clients that each
send one query (or a small batch) and wait for the answer. Here, for each concurrency level N and each
search setting, N client threads each send a query, wait for the answer and send the next one at once (a
closed loop with no think time) for a fixed time after a warm-up:

* in memory the clients share the collection (one process, as a multi-threaded service would); on a
  server target each client has its own pymilvus connection (``open_client()``), as real clients have;
* the time per setting and level, ``seconds``, is split into ``rounds`` windows; the windows run
  round-robin: every round times each level, and within it every setting, the first setting rotating from
  round to round (:func:`~milvus_lab.lab.timing.round_robin`), so a slow minute hits all settings alike;
* before each window every client sends ``WARM_UP_CALLS`` untimed calls (connections, caches, threads);
* ``qps_c{N}`` is the median over the rounds of (queries answered in the window) / (window length, from
  the start to the last answer), ``p50_ms_c{N}`` / ``p99_ms_c{N}`` the percentiles of every call's
  latency pooled over the rounds; the spread columns ``*_lo`` / ``*_hi`` are the lowest and the highest
  per-round value (QPS, p50 and p99 of that round alone), as for the batch columns;
* a client whose call raises (a dropped connection) stops; the others finish the window, the row's note
  names the client, the call and the reason, and ``clients_failed_c{N}`` counts the clients that failed.
  A client still inside a call ``JOIN_GRACE_SECONDS`` after its window closed is left behind and counted
  as failed, so nothing hangs.

:func:`saturation` reads where QPS stops growing; :func:`plot_concurrency` draws QPS and p99 against N.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import spec
from ..errors import ParamError
from . import rules
from .timing import round_robin

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

#: seconds of load per setting and concurrency level (split over the rounds)
DEFAULT_SECONDS = 3.0
#: the most seconds per setting and level one call may ask for
MAX_SECONDS = 600.0
#: the most clients at one level
MAX_CLIENTS = 256
#: untimed calls each client sends before each window
WARM_UP_CALLS = 2
#: seconds a client may still be inside a call after its window closed before it is left behind as failed
JOIN_GRACE_SECONDS = 60.0

_LEVEL = re.compile(r"^qps_c(\d+)$")
#: the measured columns of one level, in order (``{n}``: the level); the spread columns follow each value
COLUMN_STEMS = ("qps", "p50_ms", "p99_ms")


@dataclass(frozen=True)
class ConcurrencyPlan:
    """Checked concurrency arguments: the levels (increasing), seconds per setting and level, queries per call."""

    levels: tuple[int, ...]
    seconds: float = DEFAULT_SECONDS
    batch: int = 1


def check_concurrency(concurrency: Any, seconds: Any = DEFAULT_SECONDS, batch: Any = 1, nq: int | None = None
                      ) -> ConcurrencyPlan | None:
    """The concurrency arguments of ``measure``, ``compare``, ``tune`` (and ``Session.measure_settings``)
    checked together: ``concurrency`` None (off) or a tuple (or list) of distinct ints in [1, 256];
    ``concurrency_seconds`` a number in (0, 600]; ``concurrency_batch`` an int in [1, nq] (``nq``: the queries
    that will be timed). Returns None when concurrency is off (the other two are still checked), else the
    plan with the levels sorted. Raises ParamError naming the argument, the value and what is allowed."""
    if isinstance(concurrency, ConcurrencyPlan):
        concurrency, seconds, batch = concurrency.levels, concurrency.seconds, concurrency.batch
    seconds = rules.check_number("concurrency_seconds", seconds, none_ok=False, low=0.0, high=MAX_SECONDS)
    high = None if nq is None else int(nq)
    batch = rules.check_int("concurrency_batch", batch, 1, high)
    if concurrency is None:
        return None
    if not isinstance(concurrency, (tuple, list)):
        raise ParamError(f"concurrency must be None or a tuple of distinct ints in [1, {MAX_CLIENTS}] (client "
                         f"threads per level, e.g. (1, 10, 20)); got {spec.show_value(concurrency)}")
    if not concurrency:
        raise ParamError(f"concurrency must list at least one level in [1, {MAX_CLIENTS}] (e.g. (1, 10, 20)), or be "
                         f"None for no concurrent-client timing; got {spec.show_value(concurrency)}")
    levels = []
    for value in concurrency:
        level = spec.as_int(value)
        if level is None or not 1 <= level <= MAX_CLIENTS:
            raise ParamError(f"concurrency must be a tuple of distinct ints in [1, {MAX_CLIENTS}] (client threads per "
                             f"level); got {spec.show_value(value)} in {spec.show_value(concurrency)}")
        levels.append(level)
    if len(set(levels)) != len(levels):
        raise ParamError(f"concurrency must list distinct levels; got {spec.show_value(concurrency)}")
    return ConcurrencyPlan(tuple(sorted(levels)), seconds, batch)


# --------------------------------------------------------------------------------------------------
# One window: N clients, one setting
# --------------------------------------------------------------------------------------------------
@dataclass
class Window:
    """What one window measured: queries answered, its length, every call's latency, and failed clients."""

    queries: int
    seconds: float
    latencies: np.ndarray
    failures: dict[int, str]

    @property
    def qps(self) -> float:
        return self.queries / self.seconds if self.seconds > 0 and self.queries else float("nan")


def _reason(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]


def run_window(calls: Sequence[Callable[[np.ndarray], Any]], batches: Sequence[np.ndarray], seconds: float, *,
               clock: Callable[[], float] = time.perf_counter, warm_up: int = WARM_UP_CALLS,
               grace: float = JOIN_GRACE_SECONDS) -> Window:
    """``len(calls)`` client threads (client c calls ``calls[c]``), each sending ``batches`` in turn from its
    own offset: ``warm_up`` untimed calls, then calls back to back until ``seconds`` passed on ``clock``.

    A call's latency is from the previous answer (or the window's start) to its answer: a client sends its next
    query as soon as it has the last one. The window runs from the common start to the last answer."""
    n = len(calls)
    nb = len(batches)
    latencies: list[list[float]] = [[] for _ in range(n)]
    answered = [0] * n
    last_end: list[float | None] = [None] * n
    failures: dict[int, str] = {}
    warmed = [False] * n
    start: list[float] = []
    gate = threading.Barrier(n + 1, action=lambda: start.append(clock()))

    def client(c: int) -> None:
        k = c * nb // n
        try:
            for _ in range(warm_up):
                calls[c](batches[k % nb])
                k += 1
        except Exception as exc:  # noqa: BLE001 - a client's failure is reported in its row, never raised
            failures[c] = f"failed in the warm-up: {_reason(exc)}"
        warmed[c] = True
        try:
            gate.wait(timeout=grace)
        except threading.BrokenBarrierError:  # another client is stuck in its warm-up: no window
            return
        if c in failures:
            return
        t = start[0]
        deadline = t + seconds
        while True:
            batch = batches[k % nb]
            k += 1
            try:
                calls[c](batch)
            except Exception as exc:  # noqa: BLE001
                failures[c] = f"failed after {answered[c]:,} timed calls: {_reason(exc)}"
                return
            now = clock()
            latencies[c].append(now - t)
            answered[c] += len(batch)
            last_end[c] = t = now
            if now >= deadline:
                return

    threads = [threading.Thread(target=client, args=(c,), daemon=True, name=f"milvus_lab client {c}")
               for c in range(n)]
    for thread in threads:
        thread.start()
    try:
        gate.wait(timeout=grace)
    except threading.BrokenBarrierError:
        pass
    waited = time.monotonic() + seconds + grace
    for c, thread in enumerate(threads):
        thread.join(max(0.0, waited - time.monotonic()))
        if thread.is_alive():
            failures.setdefault(c, f"still inside a call {grace:g} s after the window closed (left behind)" if warmed[c]
                                else f"did not finish its warm-up within {grace:g} s (left behind)")
    if not start:
        return Window(0, float("nan"), np.empty(0), failures)
    # a client left behind inside a call still delivered its earlier answers in the window: they count
    counts = list(answered)
    ends = [e for e in list(last_end) if e is not None]
    pooled = np.asarray([x for c in range(n) for x in list(latencies[c])[:counts[c]]], dtype=float)
    return Window(sum(counts), (max(ends) - start[0]) if ends else float("nan"), pooled,
                  dict(sorted(failures.items())))


# --------------------------------------------------------------------------------------------------
# Every setting at every level, interleaved
# --------------------------------------------------------------------------------------------------
def query_batches(queries: np.ndarray, batch: int) -> list[np.ndarray]:
    """The queries cut into calls of ``batch`` rows (wrapping round at the end), one per query offset."""
    nq = len(queries)
    if nq == 0:
        raise ParamError("no queries to send")
    doubled = np.concatenate([queries, queries[:batch]])
    return [doubled[i:i + batch] for i in range(0, nq, batch)] if batch > 1 else [queries[i:i + 1] for i in range(nq)]


def column(stem: str, n: int, spread: str = "") -> str:
    """The column of ``stem`` (qps, p50_ms, p99_ms) at ``n`` clients: ``qps_c10``, ``qps_c10_lo``, ..."""
    return f"{stem}_c{n}" + (f"_{spread}" if spread else "")


def level_columns(levels: Sequence[int]) -> list[str]:
    """Every column a concurrency run adds, level by level."""
    out = []
    for n in levels:
        for stem in COLUMN_STEMS:
            out += [column(stem, n), column(stem, n, "lo"), column(stem, n, "hi")]
        out += [f"calls_c{n}", f"clients_failed_c{n}"]
    return out


def interleaved_clients(searches: Sequence[Sequence[Callable[[np.ndarray], Any]]], queries: np.ndarray,
                        plan: ConcurrencyPlan, *, rounds: int, clock: Callable[[], float] = time.perf_counter,
                        order: list[tuple[int, int]] | None = None, warm_up: int = WARM_UP_CALLS,
                        grace: float = JOIN_GRACE_SECONDS) -> list[dict[str, Any]]:
    """Time every setting at every level of ``plan``; ``searches[i][c]`` is client c's search for setting i
    (at least ``max(plan.levels)`` clients). Each (setting, level) gets ``rounds`` windows of
    ``plan.seconds / rounds``; ``order`` (a list) receives the (level, setting) of every window in turn.

    Returns per setting the columns of :func:`level_columns` and ``concurrency_note`` (failed clients)."""
    rounds = rules.check_int("rounds", rounds, 1, 10_000)
    top = max(plan.levels)
    for i, clients in enumerate(searches):
        if len(clients) < top:
            raise ParamError(f"setting {i} has {len(clients)} clients; the plan needs {top}")
    batches = query_batches(queries, plan.batch)
    windows: dict[tuple[int, int], list[Window]] = {}
    for round_order in round_robin(len(searches), rounds):
        for n in plan.levels:
            for i in round_order:
                if order is not None:
                    order.append((n, i))
                windows.setdefault((i, n), []).append(
                    run_window(searches[i][:n], batches, plan.seconds / rounds, clock=clock, warm_up=warm_up,
                               grace=grace))
    return [_columns([windows[(i, n)] for n in plan.levels], plan) for i in range(len(searches))]


def _columns(per_level: list[list[Window]], plan: ConcurrencyPlan) -> dict[str, Any]:
    row: dict[str, Any] = {"concurrency_batch": plan.batch}
    notes = []
    for n, windows in zip(plan.levels, per_level):
        qps = np.array([w.qps for w in windows], dtype=float)
        good = qps[np.isfinite(qps)]
        row[column("qps", n)] = float(np.median(good)) if len(good) else float("nan")
        row[column("qps", n, "lo")] = float(good.min()) if len(good) else float("nan")
        row[column("qps", n, "hi")] = float(good.max()) if len(good) else float("nan")
        pooled = np.concatenate([w.latencies for w in windows]) * 1e3
        for stem, q in (("p50_ms", 50), ("p99_ms", 99)):
            per_round = [float(np.percentile(w.latencies * 1e3, q)) for w in windows if len(w.latencies)]
            row[column(stem, n)] = float(np.percentile(pooled, q)) if len(pooled) else float("nan")
            row[column(stem, n, "lo")] = min(per_round, default=float("nan"))
            row[column(stem, n, "hi")] = max(per_round, default=float("nan"))
        row[f"calls_c{n}"] = int(len(pooled))
        failed: dict[int, list[str]] = {}
        for w in windows:
            for c, why in w.failures.items():
                failed.setdefault(c, []).append(why)
        row[f"clients_failed_c{n}"] = len(failed)
        for c, whys in failed.items():
            notes.append(f"at {n} clients: client {c} {whys[0]}"
                         + (f" (in {len(whys)} of {len(windows)} rounds)" if len(windows) > 1 else ""))
        if failed:
            notes.append(f"QPS and latency at {n} clients count only the answers the clients received")
    row["concurrency_note"] = "; ".join(notes)
    return row


@contextmanager
def client_searches(collection: Any, k: int, settings: Sequence[dict[str, int]], clients: int
                    ) -> Iterator[list[list[Callable[[np.ndarray], Any]]]]:
    """``[setting][client]`` search callables on ``collection``: on a server target (a collection with
    ``open_client()``) each client gets its own connection, closed on exit; in memory they share it."""
    opener = getattr(collection, "open_client", None)
    opened: list[Any] = []
    try:
        if callable(opener):
            for _ in range(clients):
                opened.append(opener())
            handles = opened
        else:
            handles = [collection] * clients
        yield [[_bind(h, k, dict(s) or None) for h in handles] for s in settings]
    finally:
        for handle in opened:
            close = getattr(handle, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # noqa: BLE001 - a dropped client's connection may already be gone
                    pass


def _bind(handle: Any, k: int, params: dict[str, int] | None) -> Callable[[np.ndarray], Any]:
    def search(queries: np.ndarray) -> Any:
        return handle.search(queries, k, params)

    return search


# --------------------------------------------------------------------------------------------------
# Reading the results
# --------------------------------------------------------------------------------------------------
def levels_of(results: pd.DataFrame) -> list[int]:
    """The concurrency levels measured in ``results`` (from its ``qps_c{N}`` columns), increasing."""
    return sorted(int(m.group(1)) for c in results.columns if (m := _LEVEL.match(str(c))))


def saturation(qps: Sequence[float], lo: Sequence[float], hi: Sequence[float], levels: Sequence[int]
               ) -> int | None:
    """The concurrency at which QPS stops growing: the smallest level N such that no higher level's slowest
    round beats N's fastest round (beyond N, QPS grows less than its spread). None when QPS still grew beyond
    the spread at the highest level, or fewer than two levels were measured."""
    points = [(n, a, b) for n, q, a, b in zip(levels, qps, lo, hi) if q == q and a == a and b == b]
    for j in range(len(points) - 1):
        if all(later[1] <= points[j][2] for later in points[j + 1:]):
            return points[j][0]
    return None


def concurrency_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per measured setting with concurrency columns: batch QPS, QPS and p99 per level, and
    ``saturates_at`` (:func:`saturation`; empty when QPS still grew at the highest level)."""
    import pandas as pd

    levels = levels_of(results)
    rows = []
    if not levels:
        return pd.DataFrame(columns=["index_type", "build_params", "search_params", "saturates_at"])
    measured = results[results[[column("qps", n) for n in levels]].notna().any(axis=1)]
    for _, r in measured.iterrows():
        row = {"index_type": r["index_type"], "build_params": r["build_params"], "search_params": r["search_params"],
               "recall": r.get("recall"), "qps": r.get("qps")}
        for n in levels:
            row[column("qps", n)] = r[column("qps", n)]
            row[column("p99_ms", n)] = r.get(column("p99_ms", n))
        row["saturates_at"] = saturation([r[column("qps", n)] for n in levels],
                                         [r[column("qps", n, "lo")] for n in levels],
                                         [r[column("qps", n, "hi")] for n in levels], levels)
        rows.append(row)
    return pd.DataFrame(rows)


def _label(index_type: str, build_params: Any, search_params: Any) -> str:
    parts = [index_type]
    for text in (build_params, search_params):
        params = json.loads(text) if isinstance(text, str) and text else {}
        if params:
            parts.append(spec.format_params(params))
    return " ".join(parts)


def saturation_sentences(results: pd.DataFrame, chosen: pd.DataFrame | None = None) -> list[str]:
    """One sentence per setting (those in ``chosen``'s index_type / build_params / search_params, when given)
    saying at which concurrency its QPS stops growing, with QPS and p99 at each level."""
    table = concurrency_table(results)
    if table.empty:
        return []
    if chosen is not None:
        keys = {(r["index_type"], r["build_params"], r["search_params"]) for _, r in chosen.iterrows()}
        table = table[[(r["index_type"], r["build_params"], r["search_params"]) in keys for _, r in table.iterrows()]]
    levels = levels_of(results)
    out = []
    for _, r in table.iterrows():
        figures = ", ".join(f"{r[column('qps', n)]:,.0f} QPS / p99 {r[column('p99_ms', n)]:.2f} ms at {n}"
                            for n in levels if r[column("qps", n)] == r[column("qps", n)])
        at = r["saturates_at"]
        where = (f"QPS stops growing at {int(at)} client{'s' if at != 1 else ''}" if at == at and at is not None
                 else f"QPS still grows at {levels[-1]} clients")
        out.append(f"{_label(r['index_type'], r['build_params'], r['search_params'])}: {where} ({figures}; batch "
                   f"{r['qps']:,.0f} QPS).")
    return out


SATURATION_RULE = ("QPS stops growing at the smallest number of clients beyond which no level's slowest round "
                   "beats that level's fastest round (growth smaller than the spread of the repetitions).")


def concurrency_section(results: pd.DataFrame, chosen: pd.DataFrame | None = None) -> list[str]:
    """The report's lines on concurrent clients (none when the run did not measure them): the rule, then
    :func:`saturation_sentences` for the ``chosen`` settings (the report's fastest per type; all when None)."""
    sentences = saturation_sentences(results, chosen)
    if not sentences:
        return []
    batch = results["concurrency_batch"].dropna() if "concurrency_batch" in results else []
    per_call = int(batch.iloc[0]) if len(batch) else 1
    return ["## Concurrent clients", "",
            f"N client threads each send {'one query' if per_call == 1 else f'{per_call} queries'} per call and "
            f"the next as soon as the answer arrives (one connection per client on a server). {SATURATION_RULE}",
            "", *[f"- {s}" for s in sentences], ""]


def plot_concurrency(results: pd.DataFrame, *, target_recall: float | None = None, index_types: Any = None
                     ) -> Figure:
    """QPS (left) and p99 latency (right) against the number of concurrent clients, one line per setting
    (bars: the range over the rounds; dotted line: the setting's batch QPS). ``target_recall``: only each
    index type's fastest setting at that recall (the report's choice); ``index_types``: only these types."""
    from ..figures import NotebookFigure
    from .plots import type_style
    from .report import summary, warnings_of

    levels = levels_of(results)
    if not levels:
        raise ValueError("no concurrency columns to plot: measure with concurrency=(1, 10, 20) first")
    table = concurrency_table(results)
    if target_recall is not None:
        target_recall = rules.check_number("target_recall", target_recall, none_ok=False, high=1.0,
                                           low_open=False)
        chosen = summary(results, target_recall)
        keys = {(r["index_type"], r["build_params"], r["search_params"]) for _, r in chosen.iterrows()}
        table = table[[(r["index_type"], r["build_params"], r["search_params"]) in keys for _, r in table.iterrows()]]
    wanted = rules.check_index_types(index_types)
    if wanted is not None:
        table = table[table["index_type"].isin(wanted)]
    if table.empty:
        raise ValueError("no measured setting with concurrency columns matches the selection")
    fig = NotebookFigure(figsize=(12, 5), layout="constrained")
    ax_q, ax_p = fig.subplots(1, 2)
    lookup = results.set_index(["index_type", "build_params", "search_params"], drop=False)
    for _, r in table.iterrows():
        source = lookup.loc[(r["index_type"], r["build_params"], r["search_params"])]
        source = source.iloc[0] if getattr(source, "ndim", 1) > 1 else source
        style = type_style(r["index_type"])
        label = _label(r["index_type"], r["build_params"], r["search_params"])
        for ax, stem in ((ax_q, "qps"), (ax_p, "p99_ms")):
            y = np.array([source[column(stem, n)] for n in levels], dtype=float)
            lo = np.array([source[column(stem, n, "lo")] for n in levels], dtype=float)
            hi = np.array([source[column(stem, n, "hi")] for n in levels], dtype=float)
            ax.errorbar(levels, y, yerr=np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)]),
                        color=style["color"], marker=style["marker"], capsize=3, label=label)
        if r["qps"] == r["qps"]:
            ax_q.axhline(r["qps"], color=style["color"], linestyle=":", linewidth=1)
        at = r["saturates_at"]
        if at == at and at is not None:
            ax_q.annotate("stops growing", (at, source[column("qps", int(at))]), xytext=(4, -12),
                          textcoords="offset points", fontsize="x-small", color=style["color"])
    batch = results["concurrency_batch"].dropna() if "concurrency_batch" in results else []
    per_call = "one query per call"
    if len(batch) and int(batch.iloc[0]) > 1:
        per_call = f"{int(batch.iloc[0])} queries per call"
    ax_q.set_ylabel("Queries per second (higher is better)")
    ax_q.set_title(f"Throughput vs concurrent clients ({per_call})\ndotted: batch QPS (all queries in one call)")
    ax_p.set_ylabel("p99 latency per call (ms, log scale; lower is better)")
    ax_p.set_yscale("log")
    ax_p.set_title("p99 latency vs concurrent clients")
    for ax in (ax_q, ax_p):
        ax.set_xlabel("concurrent clients")
        ax.set_xticks(levels)
        ax.grid(True, alpha=0.3)
    ax_q.legend(title="setting (bars: range over the rounds)", fontsize="x-small")
    notes = [SATURATION_RULE, *warnings_of(results)]
    fig.text(0.01, 0.0, "\n".join(notes), fontsize="x-small", color="dimgray", va="top")
    return fig
