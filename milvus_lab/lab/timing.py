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
  much CPU other processes used meanwhile (``/proc/stat``; elsewhere the load average). A group is flagged
  ``busy`` when other processes took at least a quarter of the machine or the kernel ran twice as slow as
  its best.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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

    from . import rules

    n = available_cores() if threads is None else rules.check_int("threads", threads, 1, 4096)
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
def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot from /proc/stat (None off Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def _own_jiffies() -> int | None:
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime of all threads
    except (OSError, ValueError, IndexError):
        return None


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
    jiffies: tuple[int, int] | None
    own: int | None
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
        return Snapshot(time.perf_counter(), _cpu_jiffies(), _own_jiffies(), self.calibrate())

    def group(self, start: Snapshot, end: Snapshot) -> dict[str, Any]:
        """How busy the machine was between two snapshots: other processes' CPU share, kernel drift."""
        other = float("nan")
        if start.jiffies and end.jiffies and start.own is not None and end.own is not None:
            total = end.jiffies[1] - start.jiffies[1]
            if total > 0:
                other = max(0.0, (end.jiffies[0] - start.jiffies[0] - (end.own - start.own)) / total)
        elif hasattr(os, "getloadavg"):
            other = max(0.0, os.getloadavg()[0] - self.threads) / max(1, os.cpu_count() or 1)
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
    from . import rules

    n_settings = rules.check_int("n_settings", n_settings, 0, 10**6)
    repeats = rules.check_int("repeats", repeats, 1, 10**6)
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
