"""Concurrent clients (lab.concurrency): known answers from simulated servers on a virtual clock, the columns,
the interleaving order, dropped and stuck clients, the argument checks, saturation, the report and the plot.

The simulated servers advance a virtual clock only while they serve, so the figures they give are exact
(no wall-clock thresholds): a single server with service time s per query answers 1/s queries per second
whatever the number of clients (it is never idle), and with N clients always waiting, each answer takes
N x s (a closed queue with no think time: Little's law, N = X x R).
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pandas as pd
import pytest
from conftest import clustered

from milvus_lab import lab
from milvus_lab.errors import ParamError
from milvus_lab.lab import concurrency as cc

S = 2.0**-10  # service time per query (a power of two: the virtual clock's sums are exact)


class QueueServer:
    """One server, one request at a time (a lock), on a virtual clock that advances by ``S`` per query served."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()
        self.calls = 0

    def clock(self) -> float:
        return self.now

    def search(self, queries: np.ndarray) -> None:
        with self.lock:
            self.now += S * len(queries)
            self.calls += 1


class RoundServer:
    """``n`` clients always queued: the server takes one request from each (a barrier) and serves them one
    after another, ``n x b x S`` on the virtual clock; every answer arrives after that cycle."""

    def __init__(self, n: int) -> None:
        self.now = 0.0
        self.n = n
        self.batch = 1
        self.barrier = threading.Barrier(n, action=self._serve)

    def _serve(self) -> None:
        self.now += self.n * self.batch * S

    def clock(self) -> float:
        return self.now

    def search(self, queries: np.ndarray) -> None:
        self.batch = len(queries)
        self.barrier.wait(timeout=60)


QUERIES = np.arange(64 * 4, dtype=np.float32).reshape(64, 4)


@pytest.mark.parametrize("n", [1, 3, 8])
@pytest.mark.parametrize("batch", [1, 4])
def test_closed_queue_gives_one_over_s_qps_and_n_times_s_latency(n, batch):
    server = RoundServer(n)
    cycles = 50
    window = cc.run_window([server.search] * n, cc.query_batches(QUERIES, batch), cycles * n * batch * S,
                           clock=server.clock)
    assert window.failures == {}
    assert window.queries == cycles * n * batch
    assert window.qps == pytest.approx(1 / S, rel=1e-12)  # the server is never idle
    assert np.allclose(window.latencies, n * batch * S, rtol=1e-12, atol=0)  # Little: R = N / X
    assert len(window.latencies) == cycles * n


def test_single_server_qps_is_exact_at_every_level_and_every_column_is_there():
    server = QueueServer()
    plan = cc.check_concurrency((5, 1, 2), seconds=0.25, batch=2, nq=len(QUERIES))
    assert plan.levels == (1, 2, 5)
    searches = [[server.search] * 5 for _ in range(3)]
    rows = cc.interleaved_clients(searches, QUERIES, plan, rounds=2, clock=server.clock)
    assert len(rows) == 3
    for row in rows:
        assert set(cc.level_columns(plan.levels)) <= set(row)
        assert row["concurrency_note"] == "" and row["concurrency_batch"] == 2
        for n in plan.levels:
            for col in ("qps", "qps_lo", "qps_hi"):
                key = cc.column("qps", n, col[4:]) if col != "qps" else cc.column("qps", n)
                assert row[key] == pytest.approx(1 / S, rel=1e-12)
            assert row[f"clients_failed_c{n}"] == 0 and row[f"calls_c{n}"] > 0
            # a call takes at least its own service; at one client exactly that
            assert row[cc.column("p50_ms", n)] >= 2 * S * 1e3 * (1 - 1e-12)
            assert row[cc.column("p50_ms", n, "lo")] <= row[cc.column("p50_ms", n, "hi")]
            assert row[cc.column("p99_ms", n, "lo")] <= row[cc.column("p99_ms", n, "hi")]
        assert row[cc.column("p99_ms", 1)] == pytest.approx(2 * S * 1e3, rel=1e-12)


def test_windows_are_interleaved_round_robin_over_settings_for_each_level():
    server = QueueServer()
    plan = cc.check_concurrency((1, 3), seconds=0.03, batch=1)
    order: list[tuple[int, int]] = []
    cc.interleaved_clients([[server.search] * 3 for _ in range(3)], QUERIES, plan, rounds=3, clock=server.clock,
                           order=order)
    expected = [(n, (r + i) % 3) for r in range(3) for n in (1, 3) for i in range(3)]
    assert order == expected


class Dropping:
    """A client whose connection drops after ``after`` calls: every later call raises."""

    def __init__(self, server: QueueServer, after: int) -> None:
        self.server, self.after, self.calls = server, after, 0

    def search(self, queries: np.ndarray) -> None:
        self.calls += 1
        if self.calls > self.after:
            raise ConnectionError("connection reset by peer")
        self.server.search(queries)


def test_a_dropped_client_is_named_in_the_row_and_the_others_keep_measuring():
    server = QueueServer()
    plan = cc.check_concurrency((1, 4), seconds=0.2, batch=1)
    dropping = Dropping(server, after=cc.WARM_UP_CALLS)  # its first timed call fails (its later warm-ups too)
    clients = [server.search, server.search, dropping.search, server.search]
    row = cc.interleaved_clients([clients], QUERIES, plan, rounds=2, clock=server.clock)[0]
    assert row["clients_failed_c1"] == 0 and row["clients_failed_c4"] == 1
    assert "at 4 clients: client 2 failed after 0 timed calls: connection reset by peer (in 2 of 2 rounds)" \
        in row["concurrency_note"]
    assert row[cc.column("qps", 4)] == pytest.approx(1 / S, rel=1e-12)  # the other three kept the server busy
    assert row["calls_c4"] > 0


def test_a_client_stuck_in_a_call_is_left_behind_and_nothing_hangs():
    server = QueueServer()
    release = threading.Event()
    stuck_after = [0]

    def stuck(queries: np.ndarray) -> None:
        stuck_after[0] += 1
        if stuck_after[0] > cc.WARM_UP_CALLS:  # its first timed call never returns (until the test ends)
            release.wait()
        server.search(queries)

    try:
        window = cc.run_window([server.search, stuck], cc.query_batches(QUERIES, 1), 0.05, clock=server.clock,
                               grace=0.2)
        assert list(window.failures) == [1]
        assert "left behind" in window.failures[1]
        assert window.qps == pytest.approx(1 / S, rel=1e-12)
    finally:
        release.set()


def test_a_client_failing_in_the_warm_up_is_reported():
    server = QueueServer()
    window = cc.run_window([server.search, Dropping(server, after=0).search], cc.query_batches(QUERIES, 1), 0.05,
                           clock=server.clock)
    assert window.failures == {1: "failed in the warm-up: connection reset by peer"}
    assert window.qps == pytest.approx(1 / S, rel=1e-12)


# --------------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, name", [
    ({"concurrency": 10}, "concurrency"),
    ({"concurrency": "1,10"}, "concurrency"),
    ({"concurrency": ()}, "concurrency"),
    ({"concurrency": (1, 1)}, "concurrency"),
    ({"concurrency": (0,)}, "concurrency"),
    ({"concurrency": (257,)}, "concurrency"),
    ({"concurrency": (1.5,)}, "concurrency"),
    ({"concurrency": (True,)}, "concurrency"),
    ({"concurrency": (2**63,)}, "concurrency"),
    ({"concurrency": (1,), "concurrency_seconds": 0}, "concurrency_seconds"),
    ({"concurrency": (1,), "concurrency_seconds": -1}, "concurrency_seconds"),
    ({"concurrency": (1,), "concurrency_seconds": math.nan}, "concurrency_seconds"),
    ({"concurrency": (1,), "concurrency_seconds": cc.MAX_CONCURRENCY_SECONDS + 1}, "concurrency_seconds"),
    ({"concurrency": (1,), "concurrency_seconds": "3"}, "concurrency_seconds"),
    ({"concurrency_seconds": 0}, "concurrency_seconds"),
    ({"concurrency": (1,), "concurrency_batch": 0}, "concurrency_batch"),
    ({"concurrency": (1,), "concurrency_batch": 41}, "concurrency_batch"),
    ({"concurrency": (1,), "concurrency_batch": 2.0}, "concurrency_batch"),
    ({"concurrency_batch": 2**31}, "concurrency_batch"),
])
@pytest.mark.parametrize("call", ["measure", "compare", "tune", "measure_settings"])
def test_bad_concurrency_arguments_are_refused_naming_them_before_anything_is_built(kwargs, name, call):
    ds = lab.from_array(clustered(300, 8, clusters=10, seed=3), n_queries=40, name="tiny")
    with lab.Session() as session:
        with pytest.raises(ParamError, match=name) as err:
            if call == "measure":
                lab.measure(ds, "FLAT", session=session, **kwargs)
            elif call == "compare":
                lab.compare(ds, ["FLAT"], session=session, progress=False, **kwargs)
            elif call == "tune":
                # the held-out half has 20 queries: a batch of 21..40 is refused there too
                lab.tune(ds, 0.9, ["FLAT"], session=session, progress=False,
                         **{**kwargs, **({"concurrency_batch": 21} if kwargs.get("concurrency_batch") == 41 else {})})
            else:
                session.measure_settings(ds, session.build(ds, "FLAT"), [{}], **kwargs)
        assert "got" in str(err.value)
        if call != "measure_settings":
            assert session.builds == []


def test_tune_refuses_a_batch_larger_than_the_held_out_queries():
    ds = lab.from_array(clustered(300, 8, clusters=10, seed=3), n_queries=40, name="tiny")
    with pytest.raises(ParamError, match="concurrency_batch must be an int >= 1, at most 20"):
        lab.tune(ds, 0.9, ["FLAT"], progress=False, concurrency=(1,), concurrency_batch=21)


# --------------------------------------------------------------------------------------------------
# Saturation, the report and the plot
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("qps, lo, hi, expected", [
    ([100, 500, 510], [95, 480, 470], [105, 520, 530], 10),  # grows to 10, flat (within the spread) after
    ([100, 500, 1000], [95, 490, 990], [105, 510, 1010], None),  # still grows beyond the spread at 20
    ([100, 101, 99], [95, 96, 94], [105, 106, 104], 1),  # flat from the start
    ([100, 90, 300], [95, 85, 290], [105, 95, 310], None),  # a dip, then growth beyond both spreads
    ([100, 500, math.nan], [95, 480, math.nan], [105, 520, math.nan], None),  # 20 unmeasured
])
def test_saturation_is_the_smallest_level_beyond_which_qps_grows_less_than_its_spread(qps, lo, hi, expected):
    assert cc.saturation(qps, lo, hi, [1, 10, 20]) == expected


def test_saturation_needs_two_levels():
    assert cc.saturation([100], [90], [110], [1]) is None


@pytest.fixture(scope="module")
def measured():
    ds = lab.from_array(clustered(2000, 16, clusters=40, seed=5), n_queries=60, name="blobs")
    return lab.measure(ds, "IVF_FLAT", {"nlist": 32}, {"nprobe": [2, 8]}, repeats=2, latency_queries=10,
                       concurrency=(1, 2, 4), concurrency_seconds=0.2, concurrency_batch=3)


def test_measure_in_memory_adds_every_column_and_keeps_the_rest(measured):
    cols = cc.level_columns((1, 2, 4))
    assert set(cols) <= set(measured.columns)
    assert measured[cols].notna().all().all()
    assert (measured[[f"clients_failed_c{n}" for n in (1, 2, 4)]] == 0).all().all()
    assert (measured["concurrency_batch"] == 3).all()
    for n in (1, 2, 4):
        assert (measured[cc.column("qps", n, "lo")] <= measured[cc.column("qps", n)]).all()
        assert (measured[cc.column("qps", n)] <= measured[cc.column("qps", n, "hi")]).all()
        assert (measured[cc.column("p50_ms", n)] <= measured[cc.column("p99_ms", n)]).all()
    assert measured["busy"].notna().all() and measured["note"].eq("").all()


def test_measure_without_concurrency_has_no_concurrency_columns():
    ds = lab.from_array(clustered(500, 8, clusters=10, seed=4), n_queries=20, name="small")
    df = lab.measure(ds, "FLAT", repeats=1, latency_queries=5)
    assert cc.levels_of(df) == []
    assert not [c for c in df.columns if c.startswith(("calls_c", "clients_failed_c", "concurrency"))]


def test_compare_and_tune_pass_concurrency_through():
    ds = lab.from_array(clustered(1500, 16, clusters=30, seed=6), n_queries=40, name="blobs")
    df = lab.compare(ds, ["FLAT"], repeats=1, latency_queries=5, progress=False, concurrency=(1, 2),
                     concurrency_seconds=0.1)
    assert set(cc.level_columns((1, 2))) <= set(df.columns)
    assert df.loc[df["status"] == "ok", "qps_c2"].notna().all()
    tuned = lab.tune(ds, 0.9, ["IVF_FLAT"], max_builds=1, repeats=1, latency_queries=5, progress=False,
                     concurrency=(1, 2), concurrency_seconds=0.1)
    assert set(cc.level_columns((1, 2))) <= set(tuned.best.columns)
    assert tuned.best["qps_c1"].notna().all()
    assert "qps_c2" in tuned.holdout.columns


def _with_known_qps(results: pd.DataFrame) -> pd.DataFrame:
    df = results.copy()
    known = {1: (100, 95, 105), 2: (500, 480, 520), 4: (510, 470, 530)}
    for n, (q, lo, hi) in known.items():
        df[cc.column("qps", n)], df[cc.column("qps", n, "lo")], df[cc.column("qps", n, "hi")] = q, lo, hi
    return df


def test_report_says_where_qps_stops_growing(measured):
    df = _with_known_qps(measured)
    table = cc.concurrency_table(df)
    assert table["saturates_at"].tolist() == [2, 2]
    text = lab.markdown_report(df, target_recall=0.0)
    assert "## Concurrent clients" in text
    assert "QPS stops growing at 2 clients" in text
    assert "3 queries per call" in text
    assert cc.SATURATION_RULE in text
    assert "## Concurrent clients" not in lab.markdown_report(measured.drop(columns=cc.level_columns((1, 2, 4))))


def test_plot_draws_qps_and_p99_per_setting(measured):
    fig = lab.plot_concurrency(_with_known_qps(measured))
    ax_q, ax_p = fig.axes[:2]
    assert len(ax_q.get_legend().get_texts()) == 2
    assert list(ax_q.get_xticks()) == [1, 2, 4]
    lines = [line for line in ax_q.get_lines() if list(line.get_xdata()) == [1, 2, 4] and line.get_linestyle() == "-"]
    assert sorted(tuple(line.get_ydata()) for line in lines) == [(100, 500, 510)] * 2
    one = lab.plot_concurrency(measured, target_recall=0.0)
    assert len(one.axes[0].get_legend().get_texts()) == 1
    with pytest.raises(ValueError, match="concurrency"):
        lab.plot_concurrency(measured.drop(columns=cc.level_columns((1, 2, 4))))


# --------------------------------------------------------------------------------------------------
# On the embedded server: one connection per client, a dropped connection
# --------------------------------------------------------------------------------------------------
@pytest.mark.server
def test_server_concurrency_has_every_column_and_survives_a_dropped_connection(milvus_server, monkeypatch):
    from pymilvus import connections

    from milvus_lab.server import connect
    from milvus_lab.server.target import ServerClient, ServerCollection

    opened: list[ServerClient] = []
    original = ServerCollection.open_client

    def open_client(self):
        client = original(self)
        opened.append(client)
        if len(opened) == 2:  # the second client's connection drops after a few searches
            search, calls = client.search, [0]

            def dropping(*args, **kwargs):
                calls[0] += 1
                if calls[0] == cc.WARM_UP_CALLS + 4:
                    connections.disconnect(client.alias)
                return search(*args, **kwargs)

            client.search = dropping
        return client

    monkeypatch.setattr(ServerCollection, "open_client", open_client)
    ds = lab.from_array(clustered(2000, 16, clusters=20, seed=8), n_queries=50, name="server-blobs")
    target = connect(milvus_server.uri, token=milvus_server.token)
    try:
        df = lab.measure(ds, "IVF_FLAT", {"nlist": 16}, {"nprobe": 4}, target=target, repeats=1, latency_queries=5,
                         concurrency=(1, 3), concurrency_seconds=1.0)
    finally:
        target.close()
    row = df.iloc[0]
    assert len({c.alias for c in opened}) == 3  # one connection per client
    assert set(cc.level_columns((1, 3))) <= set(df.columns)
    assert row["clients_failed_c3"] == 1 and row["clients_failed_c1"] == 0
    assert "at 3 clients: client 1 failed after " in row["note"] and "ServerError" not in row["note"]
    assert row["qps_c3"] > 0 and row["qps_c1"] > 0 and row["recall"] > 0.5
