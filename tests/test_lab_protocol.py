"""The measurement protocol and the lab on another Target: interleaving, spread, ties, busy machine, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from conftest import clustered
from helpers import ProtocolCollection

from milvus_lab import Engine, lab, protocol
from milvus_lab.errors import ServerError
from milvus_lab.lab import timing

FAST = {"progress": False, "latency_queries": 4}


@pytest.fixture(scope="module")
def ds():
    return lab.from_array(clustered(1500, 16, clusters=60, seed=5, spread=0.6), n_queries=40, name="blobs")


# ------------------------------------------------------------------ interleaving and spread
def test_settings_are_timed_round_robin_after_a_warm_up():
    calls: list[tuple[int, int]] = []
    searches = [lambda q, i=i: calls.append((i, len(q))) for i in range(3)]
    order: list[int] = []
    clock = itertools.count(0.0, 0.01).__next__  # every reading 10 ms later: each round is one call
    out = timing.interleaved(searches, np.zeros((5, 2), np.float32), repeats=4, latency_queries=0,
                             min_seconds=0.005, clock=clock, order=order)
    assert order == [0, 1, 2, 1, 2, 0, 2, 0, 1, 0, 1, 2]  # every setting each round, the start rotating
    assert timing.round_robin(3, 2) == [[0, 1, 2], [1, 2, 0]]
    warm = calls[:6]
    assert [c[0] for c in warm] == [0, 0, 1, 1, 2, 2] and warm[0][1] == 1  # one query, then the batch
    assert all(r["repeats"] == 4 and r["qps_lo"] <= r["qps"] <= r["qps_hi"] for r in out)


def test_median_and_range_come_from_the_rounds():
    batch_seconds = iter([0.1, 0.1, 0.2, 0.5, 0.1, 0.1])  # warm-up, then five rounds; round 3 hit by a neighbour
    now = [0.0]

    def search(q):
        if len(q) == 10:
            now[0] += next(batch_seconds)

    out = timing.interleaved([search], np.zeros((10, 2), np.float32), repeats=5, latency_queries=0,
                             min_seconds=0.0, clock=lambda: now[0])[0]
    assert out["qps"] == pytest.approx(100) and out["qps_lo"] == pytest.approx(20)
    assert out["qps_hi"] == pytest.approx(100) and out["repeats"] == 5


def test_measure_gives_spread_columns_and_threads(ds):
    with lab.Session(repeats=3) as session:
        df = lab.measure(ds, "IVF_FLAT", {"nlist": 32}, {"nprobe": [1, 4, 32]}, session=session, latency_queries=6)
    for col in ("qps_lo", "qps_hi", "p50_lo", "p50_hi", "p99_lo", "p99_hi", "recall_lo", "recall_hi"):
        assert df[col].notna().all(), col
    assert (df["qps_lo"] <= df["qps"]).all() and (df["qps"] <= df["qps_hi"]).all()
    assert (df["p50_lo"] <= df["p50_hi"]).all() and (df["recall_lo"] <= df["recall"]).all()
    assert (df["recall"] <= df["recall_hi"]).all()
    assert (df["repeats"] == 3).all() and (df["threads"] >= 1).all() and (df["latency_calls"] >= 6).all()
    assert df.attrs["threads"] == df["threads"].iloc[0] and "hnswlib_threads" in df.attrs
    assert df["busy"].dtype == "boolean" and df["other_cpu"].notna().all()


# ------------------------------------------------------------------ ties
def _table(qps, lo, hi, types=("HNSW", "IVF_FLAT", "IVF_SQ8")) -> pd.DataFrame:
    rows = []
    for t, q, a, b in zip(types, qps, lo, hi):
        rows.append({"index_type": t, "build_params": "{}", "search_params": "{}", "recall": 0.97, "qps": q,
                     "qps_lo": a, "qps_hi": b, "status": "ok", "note": "", "busy": False, "k": 10})
    return lab.measurements.results_frame(rows)


def test_a_winner_needs_to_beat_the_others_beyond_the_spread():
    clear = lab.summary(_table([2000, 1500, 1000], [1900, 1400, 900], [2100, 1600, 1100]), 0.95)
    assert clear["rank"].tolist() == ["winner", "", ""]
    assert clear.attrs["verdict"].startswith("Winner: HNSW")
    tie = lab.summary(_table([2000, 1900, 1000], [1700, 1800, 900], [2300, 2000, 1100]), 0.95)
    assert tie["rank"].tolist() == ["tie", "tie", ""]
    assert tie.attrs["verdict"].startswith("Tie at recall >= 0.95: HNSW") and "IVF_FLAT" in tie.attrs["verdict"]
    text = lab.winner_table(_table([2000, 1900, 1000], [1700, 1800, 900], [2300, 2000, 1100]))
    assert "no winner is named" in text and "Winner:" not in text
    assert lab.tied_with_best([5, 9, 7], [4, 8, 6], [6, 10, 8.5]) == [1, 2]


def test_ivf_sq8h_never_wins_even_when_fastest():
    table = lab.summary(_table([5000, 1000], [4900, 900], [5100, 1100], types=("IVF_SQ8H", "IVF_SQ8")), 0.95)
    ranks = dict(zip(table["index_type"], table["rank"]))
    assert ranks == {"IVF_SQ8H": "", "IVF_SQ8": "winner"}
    assert "same index as IVF_SQ8" in table.set_index("index_type").loc["IVF_SQ8H", "note"]


# ------------------------------------------------------------------ busy machine
def test_a_noisy_calibration_flags_the_timings_busy_everywhere(ds, tmp_path):
    slow = itertools.count(1)
    monitor = timing.Monitor(kernel=lambda threads: 0.01 * next(slow))  # each calibration slower than the last
    with lab.Session(monitor=monitor, repeats=2) as session:
        df = lab.compare(ds, ["FLAT", "IVF_FLAT"], session=session, **FAST)
    assert df.loc[df["status"] == "ok", "busy"].all() and (df["drift"].dropna() >= timing.BUSY_DRIFT).all()
    warning = "WARNING: busy machine"
    assert warning in lab.winner_table(df)
    assert warning in lab.markdown_report(df)
    fig = lab.plot_recall_qps(df)
    assert any(warning in t.get_text() for t in fig.texts)


def test_a_quiet_calibration_raises_no_warning(ds, monkeypatch):
    monkeypatch.setattr(timing, "_cpu_seconds", lambda: None)  # no CPU times: fall back to the load average
    monkeypatch.setattr(timing.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monitor = timing.Monitor(kernel=lambda threads: 0.01)
    with lab.Session(monitor=monitor, repeats=2) as session:
        df = lab.compare(ds, ["FLAT"], session=session, **FAST)
    assert not df["busy"].fillna(False).any()
    assert "busy machine" not in lab.winner_table(df)


def test_other_processes_cpu_share_comes_from_the_cpu_times(monkeypatch):
    cpu = iter([(1.0, 10.0), (7.0, 20.0)])  # 6 busy of 10 CPU seconds
    own = iter([0.0, 1.0])  # of which 1 was ours
    monkeypatch.setattr(timing, "_cpu_seconds", lambda: next(cpu))
    monkeypatch.setattr(timing, "_own_cpu_seconds", lambda: next(own))
    monitor = timing.Monitor(kernel=lambda threads: 0.01)
    with monitor.watch() as load:
        pass
    assert load["other_cpu"] == pytest.approx(0.5) and load["busy"]


# ------------------------------------------------------------------ another Target
class FakeCollection(ProtocolCollection):
    """Only the protocol verbs over an engine collection, with its target's profile; its target counts the
    builds and can make one fail as a server that went away."""

    def __init__(self, inner, owner: FakeTarget):
        super().__init__(inner, profile=owner.profile)
        self._owner = owner

    def create_index(self, index_type, params=None):
        self._owner.builds += 1
        if self._owner.fail_at == self._owner.builds:
            raise ServerError(f"{self._owner.uri}: create_index failed: server went away")
        return super().create_index(index_type, params)


class FakeTarget:
    def __init__(self, profile: str = "milvus-2.3", fail_at: int | None = None):
        self.engine = Engine(build_threshold=1)
        self.profile, self.fail_at, self.builds = profile, fail_at, 0
        self.uri = "fake://127.0.0.1:19530"
        self.created: list[str] = []

    def describe(self):
        return f"fake server at {self.uri}"

    def create_collection(self, collection_name, dimension, *, metric_type="L2"):
        self.created.append(collection_name)
        return FakeCollection(self.engine.create_collection(collection_name, dimension, metric_type=metric_type),
                              self)

    def drop_collection(self, collection_name):
        self.engine.drop_collection(collection_name)

    def has_collection(self, collection_name):
        return self.engine.has_collection(collection_name)

    def list_collections(self):
        return self.engine.list_collections()


def test_the_protocol_only_collection_has_every_verb_and_attribute_of_the_protocol_and_nothing_else():
    engine = Engine()
    wrapped = ProtocolCollection(engine.create_collection("only", 4), profile="milvus-2.3")
    members = {name for name in vars(protocol.IndexedCollection) if not name.startswith("_")}
    members |= set(protocol.IndexedCollection.__annotations__)
    assert {name for name in dir(wrapped) if not name.startswith("_")} == members
    assert isinstance(wrapped, protocol.IndexedCollection) and not isinstance(wrapped, protocol.ChangeSignalling)
    assert wrapped.profile == "milvus-2.3" and ProtocolCollection(wrapped).profile == "milvus-2.3"
    engine.close()


def test_the_lab_runs_unchanged_on_another_target_with_its_profile(ds):
    target = FakeTarget()
    assert isinstance(target, protocol.Target)
    assert isinstance(FakeCollection(target.engine.create_collection("x", 4), target), protocol.IndexedCollection)
    target.engine.drop_collection("x")
    df = lab.compare(ds, target=target, **FAST)
    rows = df.drop_duplicates("index_type").set_index("index_type")
    for missing in ("IVF_SQ8H", "RNSG", "ANNOY"):
        assert rows.loc[missing, "status"] == "skipped"
        assert rows.loc[missing, "note"].startswith(f"{missing} is not available on Milvus 2.3")
    for present in ("FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW"):
        assert rows.loc[present, "status"] == "ok", rows.loc[present, "note"]
    assert (df.loc[df["status"] == "ok", "target"] == "milvus-2.3").all()
    assert df.attrs["target"] == "fake server at fake://127.0.0.1:19530"
    assert target.engine.list_collections() == []  # the lab dropped what it created
    res = lab.tune(ds, 0.9, ["IVF_FLAT", "ANNOY"], target=target, max_builds=2, **FAST)
    assert res.best.set_index("index_type").loc["ANNOY", "status"] == "not tuned"
    assert "index_params.add_index" in res.code(target="pymilvus-2")
    assert target.engine.list_collections() == []


def test_a_server_error_mid_sweep_keeps_the_rows_measured_so_far(ds):
    target = FakeTarget(fail_at=3)
    user = target.engine.create_collection("not_ours", ds.dim)
    with pytest.warns(lab.LabWarning, match="server went away"):
        df = lab.compare(ds, ["FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW"], target=target, **FAST)
    assert df["status"].iloc[-1] == "server error" and "create_index failed" in df["note"].iloc[-1]
    assert set(df.loc[df["status"] == "ok", "index_type"]) == {"FLAT", "IVF_FLAT"}
    assert "HNSW" not in set(df["index_type"])
    assert df.attrs["error"].endswith("server went away")
    assert target.engine.list_collections() == ["not_ours"] and user.count() == 0


# ------------------------------------------------------------------ memory
def test_a_plan_that_cannot_fit_is_refused_up_front_with_the_estimate(ds, monkeypatch):
    from milvus_lab.lab import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 10_000)  # 10 kB free
    target = FakeTarget(profile="milvus-0.10")
    with pytest.raises(lab.LabMemoryError, match=r"needs about .* MB more .* largest index, HNSW M=16.* only 0 MB are free"):
        lab.compare(ds, ["FLAT", "HNSW"], target=target, **FAST)
    assert target.builds == 0 and target.engine.list_collections() == []


def test_a_memory_mapped_base_is_released_once_in_the_collection(tmp_path):
    np.save(tmp_path / "b.npy", clustered(3000, 32, seed=8))
    np.save(tmp_path / "q.npy", clustered(20, 32, seed=9))
    ds = lab.load(tmp_path / "b.npy", queries=tmp_path / "q.npy")
    assert ds.release_pages()  # a file-backed base: its pages can be dropped and re-read
    assert not lab.from_array(clustered(100, 8, seed=1), n_queries=5).release_pages()  # an in-memory array
    with lab.Session() as session:
        df = lab.measure(ds, "FLAT", session=session, latency_queries=2)
    assert df["recall"].iloc[0] == 1.0


def test_recall_on_a_memory_mapped_base_reads_rows_from_the_file_and_agrees(tmp_path):
    rows = clustered(2000, 24, seed=12)
    rows[1500] = rows[3]  # a duplicate: returning either copy is right (the tie rule)
    np.save(tmp_path / "b.npy", rows)
    queries = rows[[3, 10, 20]] + 0.001
    np.save(tmp_path / "q.npy", queries)
    mapped = lab.load(tmp_path / "b.npy", queries=tmp_path / "q.npy")
    plain = lab.from_array(rows, queries)
    assert mapped.file_backed and not plain.file_backed
    np.testing.assert_array_equal(mapped.rows([0, 1999, 1500]), rows[[0, 1999, 1500]])
    truth = plain.ground_truth(5).copy()
    found = truth.copy()
    found[0, 4] = 1500 if 1500 not in truth[0] else 3  # the other copy of a true neighbour ties it
    found[1, 4] = 1999  # a wrong row
    found[2, 3] = -1  # a missing hit
    mapped.release_pages()
    expected = lab.recall_per_query(found, plain, 5)
    np.testing.assert_array_equal(lab.recall_per_query(found, mapped, 5), expected)
    assert expected[1:].tolist() == [0.8, 0.8]
