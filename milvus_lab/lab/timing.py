"""The measurement protocol: fixed threads, interleaved repetitions, and a check of how busy the machine is.

A timing taken once on a shared machine says more about the neighbours than about the index. So:

* the thread counts are fixed for a whole run and recorded (faiss OpenMP, BLAS via threadpoolctl;
  hnswlib uses one thread per core, which is recorded too);
* the settings of a build are timed **round-robin**: every setting once, then every setting again, for
  ``repeats`` rounds after a warm-up, the starting setting rotating each round, so that a slow minute
  hits every setting alike instead of one; a round repeats the batch until it took ``MIN_ROUND_SECONDS``,
  and a slow setting's round searches a prefix of the queries lasting about ``MAX_ROUND_SECONDS``;
* each setting reports the **median** QPS of its rounds with the spread (``qps_lo`` / ``qps_hi``: the
  lowest and highest round), and latency percentiles pooled over its single-query calls with the spread of
  the per-round medians and p99s;
* a :class:`Monitor` times a small calibration kernel before and after each group of timings and reads how
  much CPU other processes used meanwhile (psutil's CPU times; the load average if it cannot say). A group is flagged
  ``busy`` when other processes took at least a quarter of the machine or the kernel ran twice as slow as
  its best;
* with ``concurrency=(1, 10, 20)``, N client threads per level send queries back to back for a fixed time per
  setting, interleaved the same way and watched by the same monitor (see :mod:`milvus_lab.lab.concurrency`).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import psutil

from .. import spec
from ..errors import ParamError
from .arguments import ARGUMENTS, Int, Number, check
from .setting import Setting

if TYPE_CHECKING:
    import pandas as pd

#: timed rounds per setting after the warm-up (the median and spread are over these)
DEFAULT_REPEATS = 5
#: a round of one setting repeats the batch until it took at least this long (s), so tiny batches are timed well
MIN_ROUND_SECONDS = 0.05
#: ... and a slow setting's round searches only as many of the queries as take about this long (s)
MAX_ROUND_SECONDS = 0.1
#: ... but never fewer than this many queries
MIN_ROUND_QUERIES = 200
#: queries of the warm-up batch that sizes the rounds
WARM_UP_QUERIES = 100
#: single-query calls per setting for the latency percentiles (spread over the rounds)
DEFAULT_LATENCY_QUERIES = 100
#: matrix products per thread of the calibration kernel (about 15 ms on an idle core: long enough not to be noise)
CALIBRATION_STEPS = 48
#: other processes' share of the machine's CPU time above which a group of timings is flagged busy
BUSY_OTHER_CPU = 0.25
#: calibration kernel slowdown (vs the fastest seen in the run) above which a group is flagged busy. On an
#: idle 2-core VM the kernel's best-of-3 varied up to 1.7-1.9x between calls (host scheduling, 0.8 % steal),
#: so a lower bar cried wolf on quiet runs; another process keeping a core busy shows in ``BUSY_OTHER_CPU``
BUSY_DRIFT = 2.0

TIMING_COLUMNS = ["qps_lo", "qps_hi", "p50_lo", "p50_hi", "p99_lo", "p99_hi", "repeats", "threads", "busy",
                  "other_cpu", "drift"]


# --------------------------------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------------------------------
def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextmanager
def fixed_threads(threads: int | None) -> Iterator[dict[str, Any]]:
    """Fix faiss OpenMP and BLAS thread counts for a run (None: one per available core); yields what was set."""
    import faiss
    from threadpoolctl import threadpool_limits

    n = available_cores() if threads is None else check("threads", threads)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield {"threads": n, "faiss_omp_threads": n, "blas_threads": n,
                   "hnswlib_threads": f"one per core ({os.cpu_count()})", "cores": available_cores()}
    finally:
        faiss.omp_set_num_threads(before)


# --------------------------------------------------------------------------------------------------
# How busy is the machine?
# --------------------------------------------------------------------------------------------------
def _cpu_seconds() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of all CPUs since boot (:func:`psutil.cpu_times`; None when it cannot say).
    Idle includes iowait; guest time is already inside user time on Linux, so it is not counted twice."""
    try:
        times = psutil.cpu_times()._asdict()
    except (OSError, psutil.Error):
        return None
    total = sum(v for k, v in times.items() if k not in ("guest", "guest_nice"))
    return total - times.get("idle", 0.0) - times.get("iowait", 0.0), total


def _own_cpu_seconds() -> float | None:
    """User + system CPU seconds of this process, all its threads (None when psutil cannot say)."""
    try:
        times = psutil.Process().cpu_times()
    except (OSError, psutil.Error):
        return None
    return times.user + times.system


def calibration_kernel(threads: int) -> float:
    """Seconds of a fixed CPU workload split over ``threads`` Python threads (NumPy releases the GIL)."""
    a = np.random.default_rng(0).standard_normal((192, 192)).astype(np.float32)

    def work() -> None:
        x = a
        for _ in range(CALIBRATION_STEPS):
            x = np.tanh(x @ a)

    started = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(max(1, threads) - 1)]
    for w in workers:
        w.start()
    work()
    for w in workers:
        w.join()
    return time.perf_counter() - started


@dataclass
class Snapshot:
    wall: float
    cpu: tuple[float, float] | None
    own: float | None
    calibration: float


@dataclass
class Monitor:
    """Calibration timings and other processes' CPU use around groups of measurements."""

    threads: int = 1
    kernel: Callable[[int], float] = calibration_kernel
    best_calibration: float = float("inf")
    groups: list[dict[str, Any]] = field(default_factory=list)

    def calibrate(self) -> float:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            times = sorted(self.kernel(self.threads) for _ in range(3))
        seconds = times[0]  # noise only ever slows a run down: the fastest of three is the steadiest
        self.best_calibration = min(self.best_calibration, seconds)
        return seconds

    def snapshot(self) -> Snapshot:
        return Snapshot(time.perf_counter(), _cpu_seconds(), _own_cpu_seconds(), self.calibrate())

    def group(self, start: Snapshot, end: Snapshot) -> dict[str, Any]:
        """How busy the machine was between two snapshots: other processes' CPU share, kernel drift."""
        other = float("nan")
        if start.cpu and end.cpu and start.own is not None and end.own is not None:
            total = end.cpu[1] - start.cpu[1]
            if total > 0:
                other = max(0.0, (end.cpu[0] - start.cpu[0] - (end.own - start.own)) / total)
        else:  # no CPU times: the load average (psutil emulates it on Windows)
            other = max(0.0, psutil.getloadavg()[0] - self.threads) / max(1, os.cpu_count() or 1)
        drift = max(start.calibration, end.calibration) / self.best_calibration
        busy = bool((other == other and other >= BUSY_OTHER_CPU) or drift >= BUSY_DRIFT)
        out = {"busy": busy, "other_cpu": other, "drift": drift}
        self.groups.append(out)
        return out

    @contextmanager
    def watch(self) -> Iterator[dict[str, Any]]:
        """Snapshot before and after the block; the yielded dict is filled with :meth:`group`'s answer."""
        out: dict[str, Any] = {}
        start = self.snapshot()
        yield out
        out.update(self.group(start, self.snapshot()))

    def summary(self) -> dict[str, Any]:
        busy = [g for g in self.groups if g["busy"]]
        others = [g["other_cpu"] for g in self.groups if g["other_cpu"] == g["other_cpu"]]
        return {"busy_groups": len(busy), "groups": len(self.groups),
                "max_other_cpu": max(others) if others else float("nan"),
                "max_drift": max((g["drift"] for g in self.groups), default=float("nan"))}


def busy_warning(busy_groups: int, groups: int, max_other_cpu: float, max_drift: float) -> str:
    """The sentence the table, the report and the plots carry when timings were taken on a busy machine."""
    parts = []
    if max_other_cpu == max_other_cpu and max_other_cpu >= BUSY_OTHER_CPU:
        parts.append(f"other processes used up to {max_other_cpu:.0%} of the CPUs")
    if max_drift >= BUSY_DRIFT:
        parts.append(f"a calibration kernel ran up to {max_drift:.1f}x slower than its best")
    why = " and ".join(parts) or "the machine was busy"
    return (f"WARNING: busy machine: {why} during {busy_groups} of {groups} timing group(s); QPS and latency "
            f"are unreliable (recall is not affected). Re-run on an idle machine.")


# --------------------------------------------------------------------------------------------------
# Interleaved timing
# --------------------------------------------------------------------------------------------------
def round_robin(n_settings: int, repeats: int) -> list[list[int]]:
    """The order settings are timed in: ``repeats`` rounds of every setting, each round starting one later."""
    n_settings = check("n_settings", n_settings, Int(0, 10**6))
    repeats = check("repeats", repeats, Int(1, ARGUMENTS["repeats"].high))
    return [[(r + i) % n_settings for i in range(n_settings)] for r in range(repeats)] if n_settings else []


def time_round(search: Callable[[np.ndarray], Any], queries: np.ndarray, min_seconds: float = MIN_ROUND_SECONDS,
               clock: Callable[[], float] = time.perf_counter) -> float:
    """QPS of ``search(queries)``, the batch repeated until ``min_seconds`` passed."""
    calls, started = 0, clock()
    while True:
        search(queries)
        calls += 1
        elapsed = clock() - started
        if elapsed >= min_seconds:
            return calls * len(queries) / elapsed


def time_singles(search: Callable[[np.ndarray], Any], queries: np.ndarray,
                 clock: Callable[[], float] = time.perf_counter) -> np.ndarray:
    """Seconds of one-query calls ``search(queries[i:i+1])``."""
    out = np.empty(len(queries))
    for i in range(len(queries)):
        started = clock()
        search(queries[i:i + 1])
        out[i] = clock() - started
    return out


def interleaved(searches: Sequence[Callable[[np.ndarray], Any]], queries: np.ndarray, *,
                repeats: int = DEFAULT_REPEATS, latency_queries: int = DEFAULT_LATENCY_QUERIES,
                min_seconds: float = MIN_ROUND_SECONDS, clock: Callable[[], float] = time.perf_counter,
                order: list[int] | None = None) -> list[dict[str, Any]]:
    """Time each search callable on ``queries``, round-robin over ``repeats`` rounds after one warm-up each.

    Returns per callable: ``qps`` (median of the rounds), ``qps_lo`` / ``qps_hi`` (lowest and highest
    round), ``p50_ms`` / ``p95_ms`` / ``p99_ms`` over all its single-query calls, ``p50_lo`` / ``p50_hi`` and
    ``p99_lo`` / ``p99_hi`` (spread of the per-round percentiles), ``repeats`` and ``latency_calls``.
    ``order`` (a list) receives the sequence of callables timed, for inspection.
    """
    repeats = max(1, int(repeats))
    batches = []
    for s in searches:  # warm-up: thread pools, caches, lazily built structures; it also sizes the rounds
        s(queries[:1])
        probe = queries[:WARM_UP_QUERIES]
        started = clock()
        s(probe)
        took = (clock() - started) * len(queries) / len(probe)  # the whole batch, estimated
        # a slow setting's round uses a prefix of the queries, about MAX_ROUND_SECONDS long (at least MIN_ROUND_QUERIES)
        rows = len(queries) if took <= MAX_ROUND_SECONDS else \
            max(min(MIN_ROUND_QUERIES, len(queries)), int(len(queries) * MAX_ROUND_SECONDS / took))
        batches.append(queries[:rows])
    per_round = max(1, -(-min(latency_queries, len(queries)) // repeats)) if latency_queries > 0 else 0
    qps: list[list[float]] = [[] for _ in searches]
    single: list[list[np.ndarray]] = [[] for _ in searches]
    for r, round_order in enumerate(round_robin(len(searches), repeats)):
        start = (r * per_round) % max(1, len(queries))
        lat_queries = np.concatenate([queries, queries])[start:start + per_round] if per_round else queries[:0]
        for i in round_order:
            if order is not None:
                order.append(i)
            qps[i].append(time_round(searches[i], batches[i], min_seconds, clock))
            if per_round:
                single[i].append(time_singles(searches[i], lat_queries, clock))
    out = []
    for i in range(len(searches)):
        q = np.asarray(qps[i])
        row: dict[str, Any] = {"qps": float(np.median(q)), "qps_lo": float(q.min()), "qps_hi": float(q.max()),
                               "repeats": repeats}
        if single[i]:
            pooled = np.concatenate(single[i]) * 1e3
            p50, p95, p99 = np.percentile(pooled, [50, 95, 99])
            rounds50 = [np.percentile(s * 1e3, 50) for s in single[i]]
            rounds99 = [np.percentile(s * 1e3, 99) for s in single[i]]
            row.update(p50_ms=float(p50), p95_ms=float(p95), p99_ms=float(p99), latency_calls=len(pooled),
                       p50_lo=float(min(rounds50)), p50_hi=float(max(rounds50)),
                       p99_lo=float(min(rounds99)), p99_hi=float(max(rounds99)))
        out.append(row)
    return out

# --------------------------------------------------------------------------------------------------
# Concurrent clients (described in :mod:`milvus_lab.lab.concurrency`, which plots them)
# --------------------------------------------------------------------------------------------------
#: seconds of load per setting and concurrency level (split over the rounds)
DEFAULT_CONCURRENCY_SECONDS = 3.0
#: the most seconds per setting and level one call may ask for
MAX_CONCURRENCY_SECONDS = 600.0
#: the most clients at one level
MAX_CLIENTS = 256
#: untimed calls each client sends before each window
WARM_UP_CALLS = 2
#: seconds a client may still be inside a call after its window closed before it is left behind as failed
JOIN_GRACE_SECONDS = 60.0

_LEVEL = re.compile(r"^qps_c(\d+)$")
#: the measured columns of one level, in order (``{n}``: the level); the spread columns follow each value
CLIENT_COLUMN_STEMS = ("qps", "p50_ms", "p99_ms")


@dataclass(frozen=True)
class ConcurrencyPlan:
    """Checked concurrency arguments: the levels (increasing), seconds per setting and level, queries per call."""

    levels: tuple[int, ...]
    seconds: float = DEFAULT_CONCURRENCY_SECONDS
    batch: int = 1


def check_concurrency(concurrency: Any, seconds: Any = DEFAULT_CONCURRENCY_SECONDS, batch: Any = 1,
                      nq: int | None = None) -> ConcurrencyPlan | None:
    """The concurrency arguments of ``measure``, ``compare``, ``tune`` (and ``Session.measure_settings``)
    checked together: ``concurrency`` None (off) or a tuple (or list) of distinct ints in [1, 256];
    ``concurrency_seconds`` a number in (0, 600]; ``concurrency_batch`` an int in [1, nq] (``nq``: the queries
    that will be timed). Returns None when concurrency is off (the other two are still checked), else the
    plan with the levels sorted. Raises ParamError naming the argument, the value and what is allowed."""
    if isinstance(concurrency, ConcurrencyPlan):
        concurrency, seconds, batch = concurrency.levels, concurrency.seconds, concurrency.batch
    seconds = check("concurrency_seconds", seconds, Number(0.0, MAX_CONCURRENCY_SECONDS, none_ok=False))
    high = None if nq is None else int(nq)
    batch = check("concurrency_batch", batch, Int(1, high))
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
    sizes: list[list[int]] = [[] for _ in range(n)]  # queries of each answered call (appended after its latency)
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
                failures[c] = f"failed after {len(sizes[c]):,} timed calls: {_reason(exc)}"
                return
            now = clock()
            latencies[c].append(now - t)
            sizes[c].append(len(batch))
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
    calls = [len(sizes[c]) for c in range(n)]
    ends = [e for e in list(last_end) if e is not None]
    pooled = np.asarray([x for c in range(n) for x in latencies[c][:calls[c]]], dtype=float)
    return Window(sum(sum(sizes[c][:calls[c]]) for c in range(n)), (max(ends) - start[0]) if ends else float("nan"),
                  pooled, dict(sorted(failures.items())))


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
        for stem in CLIENT_COLUMN_STEMS:
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
    rounds = check("rounds", rounds, Int(1, ARGUMENTS["repeats"].high))  # rounds are repeats of each level
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


def setting_label(index_type: str, build_params: Any, search_params: Any) -> str:
    """``HNSW M=16, efConstruction=200; ef=64``: :meth:`Setting.label` of a result row's JSON columns."""
    return Setting.from_columns(index_type, build_params, search_params).label()


def rows_chosen(table: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``table`` whose setting (index type, build and search parameters) is one of ``chosen``'s."""
    keys = {setting_of(r) for _, r in chosen.iterrows()}
    return table[[setting_of(r) in keys for _, r in table.iterrows()]]


def setting_of(row: Any) -> Setting:
    """The :class:`Setting` of a result row (its ``index_type``, ``build_params`` and ``search_params`` columns)."""
    return Setting.from_columns(row["index_type"], row["build_params"], row["search_params"])


def saturation_sentences(results: pd.DataFrame, chosen: pd.DataFrame | None = None) -> list[str]:
    """One sentence per setting (those in ``chosen``'s index_type / build_params / search_params, when given)
    saying at which concurrency its QPS stops growing, with QPS and p99 at each level."""
    table = concurrency_table(results)
    if table.empty:
        return []
    if chosen is not None:
        table = rows_chosen(table, chosen)
    levels = levels_of(results)
    out = []
    for _, r in table.iterrows():
        figures = ", ".join(f"{r[column('qps', n)]:,.0f} QPS / p99 {r[column('p99_ms', n)]:.2f} ms at {n}"
                            for n in levels if r[column("qps", n)] == r[column("qps", n)])
        at = r["saturates_at"]
        where = (f"QPS stops growing at {int(at)} client{'s' if at != 1 else ''}" if at == at and at is not None
                 else f"QPS still grows at {levels[-1]} clients")
        label = setting_label(r["index_type"], r["build_params"], r["search_params"])
        batch = f"; batch {r['qps']:,.0f} QPS" if r["qps"] == r["qps"] and r["qps"] is not None else ""
        out.append(f"{label}: {where} ({figures}{batch}).")
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
