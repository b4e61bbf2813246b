"""Measurements and sweeps: recall against exact ground truth, build caching, refusals, spec-derived grids."""

from __future__ import annotations

import io
import itertools
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import clustered
from helpers import numpy_recall

from milvus_lab import Engine, lab, spec
from milvus_lab.errors import InvalidParameterError
from milvus_lab.lab import measurements, sweeps

REQUIRED = ["index_type", "build_params", "search_params", "recall", "qps", "p50_ms", "p95_ms", "p99_ms",
            "build_s", "memory_mb", "nlist", "nprobe", "M", "efConstruction", "ef", "n_trees", "search_k", "m",
            "out_degree", "candidate_pool_size", "knng", "search_length", "build_search_length", "status", "note"]
FAST = {"latency_queries": 10, "repeats": 1}


@pytest.fixture(scope="module")
def ds():
    return lab.from_array(clustered(2500, 32, clusters=200, seed=11, spread=0.7), n_queries=150, name="blobs")


@pytest.fixture(scope="module")
def session():
    with lab.Session() as s:
        yield s


def test_flat_recall_is_one(ds, session):
    df = lab.measure(ds, "FLAT", session=session, **FAST)
    assert len(df) == 1
    row = df.iloc[0]
    assert row["recall"] == 1.0 and row["status"] == "ok"
    assert row["qps"] > 0 and 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert row["memory_mb"] == pytest.approx(ds.base.nbytes / 2**20)
    assert row["build_params"] == "{}" and row["search_params"] == "{}"


def test_result_columns_and_csv_round_trip(ds, session, tmp_path):
    df = lab.measure(ds, "IVF_FLAT", {"nlist": 64}, {"nprobe": [1, 4]}, session=session, **FAST)
    assert list(df.columns[:10]) == REQUIRED[:10]
    assert set(REQUIRED) <= set(df.columns)
    assert df["nlist"].tolist() == [64, 64] and df["nprobe"].tolist() == [1, 4]
    assert df["M"].isna().all()
    assert json.loads(df["search_params"].iloc[1]) == {"nprobe": 4}
    df.to_csv(tmp_path / "r.csv", index=False)
    back = pd.read_csv(tmp_path / "r.csv")
    assert back["recall"].tolist() == df["recall"].tolist()
    assert list(back.columns) == list(df.columns)


def test_ivf_recall_equals_independent_ground_truth(ds, session):
    settings = [{"nprobe": p} for p in (1, 2, 8, 64)]
    df = lab.measure(ds, "IVF_FLAT", {"nlist": 64}, settings, session=session, **FAST)
    engine = Engine(build_threshold=1)
    c = engine.create_collection("check", ds.dim, index_file_size=spec.INDEX_FILE_SIZE_MB[1])
    c.insert(ds.base)
    c.create_index("IVF_FLAT", {"nlist": 64})
    for setting, recall in zip(settings, df["recall"]):
        found = c.search(ds.queries, 10, setting).ids
        assert recall == pytest.approx(numpy_recall(found, ds.base, ds.queries, 10))
    assert list(df["recall"]) == sorted(df["recall"])
    assert df["recall"].iloc[-1] == 1.0  # nprobe = nlist is exhaustive
    assert df["recall"].iloc[0] < 0.9
    engine.close()


def test_one_collection_per_dataset_holds_the_rows_once_and_builds_replace_each_other(ds):
    with lab.Session() as session:
        a = lab.measure(ds, "IVF_SQ8", {"nlist": 32}, {"nprobe": 2}, session=session, **FAST)
        b = lab.measure(ds, "IVF_SQ8", {"nlist": 32}, {"nprobe": 16}, session=session, **FAST)
        assert len(session.builds) == 1
        assert a["build_s"].iloc[0] == b["build_s"].iloc[0]  # the live build is reused
        assert len(session.target.list_collections()) == 1
        first = session.builds[0]
        lab.measure(ds, "IVF_SQ8", {"nlist": 16}, {"nprobe": 2}, session=session, **FAST)
        assert len(session.builds) == 2 and first.collection is None  # replaced: its index was dropped
        assert len(session.target.list_collections()) == 1
        held = session.target.get_collection(session.target.list_collections()[0]).memory_bytes()
        assert held["raw_bytes"] < 1.5 * ds.base.nbytes  # the rows once, not once per build
        with pytest.raises(ValueError, match="replaced by another"):
            session.measure_setting(ds, first, {"nprobe": 2})
        # a derived dataset over the same base shares the collection
        tune, _ = ds.split_queries(0.5)
        lab.measure(tune, "IVF_SQ8", {"nlist": 16}, {"nprobe": 4}, session=session, **FAST)
        assert len(session.builds) == 2 and len(session.target.list_collections()) == 1
    assert session.target.list_collections() == []


def test_the_session_drops_only_collections_it_created(ds):
    engine = Engine(build_threshold=1)
    mine = engine.create_collection("users_own", ds.dim)
    with lab.Session(target=engine) as session:
        lab.measure(ds, "FLAT", session=session, **FAST)
        assert len(engine.list_collections()) == 2
    assert engine.list_collections() == ["users_own"] and mine.count() == 0
    engine.close()


def test_partly_raw_data_is_refused_with_the_reason(session):
    small = lab.from_array(clustered(300, 16, seed=2), n_queries=20)
    with pytest.warns(lab.LabWarning, match="not indexed"):
        df = lab.measure(small, "IVF_FLAT", {"nlist": 512}, {"nprobe": 8}, session=session, **FAST)
    row = df.iloc[0]
    assert row["status"] == "not indexed"
    assert np.isnan(row["recall"]) and np.isnan(row["qps"]) and np.isnan(row["p99_ms"])
    assert "280 of 280 rows were not indexed" in row["note"] and "fewer than IVF_FLAT needs to train" in row["note"]


def test_invalid_parameters_raise_before_building(ds):
    with lab.Session() as session:
        with pytest.raises(InvalidParameterError, match="nlist"):
            lab.measure(ds, "IVF_FLAT", {"nlist": 0}, session=session)
        with pytest.raises(InvalidParameterError, match="nprobe"):
            lab.measure(ds, "IVF_FLAT", {"nlist": 16}, {"nprobe": 17}, session=session)
        with pytest.raises(InvalidParameterError, match="m"):
            lab.measure(ds, "IVF_PQ", {"nlist": 16, "m": 5}, session=session)
        assert session.builds == [] and session.target.list_collections() == []


def test_ivf_pq_on_50d_is_refused_by_measure_and_skipped_by_compare(session):
    fifty = lab.from_array(clustered(600, 50, seed=4), n_queries=30)
    with pytest.raises(InvalidParameterError, match="no m is allowed for dimension 50"):
        lab.measure(fifty, "IVF_PQ", session=session)
    with pytest.warns(lab.LabWarning, match="IVF_PQ cannot index 50-dimensional"):
        df = lab.compare(fifty, ["FLAT", "IVF_PQ"], session=session, progress=False, latency_queries=5)
    skipped = df[df["index_type"] == "IVF_PQ"]
    assert len(skipped) == 1 and skipped["status"].iloc[0] == "skipped"
    assert "no m is allowed for dimension 50" in skipped["note"].iloc[0]
    assert "48" in skipped["note"].iloc[0]  # the nearest dimension that allows it
    assert np.isnan(skipped["recall"].iloc[0])
    assert df.attrs["notices"] == [skipped["note"].iloc[0]]  # the notice warned is also returned as data
    notice, = df.attrs["notices"]
    assert notice.index_type == "IVF_PQ" and notice.in_row  # ... as a record: about IVF_PQ, already in its row


# ------------------------------------------------------------------ grids from the spec
def test_center_builds_and_search_grids_come_from_the_spec():
    n, k = 100_000, 10
    center = sweeps.center_build_params("IVF_FLAT", n, 50)
    assert center["nlist"] in spec.sweep_values(spec.INDEXES["IVF_FLAT"].build["nlist"])
    assert center["nlist"] == 2 ** round(math.log2(4 * math.sqrt(n)))  # the doubling value nearest 4·√n
    nprobes = [s["nprobe"] for s in sweeps.search_grid("IVF_FLAT", center, n, k)]
    assert nprobes[0] == 1 and nprobes[-1] == center["nlist"]
    assert all(b == 2 * a for a, b in itertools.pairwise(nprobes))
    hnsw = sweeps.center_build_params("HNSW", n, 50)
    assert hnsw == spec.default_build_params("HNSW")
    efs = [s["ef"] for s in sweeps.search_grid("HNSW", hnsw, n, k)]
    assert efs[0] == k and efs[-1] == spec.bounds(spec.INDEXES["HNSW"].search["ef"], {"top_k": k})[1]
    annoy = sweeps.search_grid("ANNOY", {"n_trees": 16}, n, k)
    assert annoy[0]["search_k"] == 16 * k and annoy[-1]["search_k"] == 16 * n
    rnsg = sweeps.search_grid("RNSG", spec.default_build_params("RNSG"), n, k)
    assert rnsg[0]["search_length"] == k
    assert rnsg[-1]["search_length"] == spec.bounds(spec.INDEXES["RNSG"].search["search_length"])[1]
    assert sweeps.search_grid("FLAT", {}, n, k) == [{}]
    for t in ("IVF_FLAT", "HNSW", "ANNOY", "RNSG"):
        params = sweeps.center_build_params(t, n, 50)
        for s in sweeps.search_grid(t, params, n, k):
            spec.validate_search(t, s, top_k=k, build_params=params)


def test_small_data_caps_nlist():
    assert sweeps.center_build_params("IVF_SQ8", 40, 8)["nlist"] <= 40
    assert sweeps.center_build_params("IVF_SQ8", 1, 8)["nlist"] == 1


def test_thorough_plan_adds_valid_neighbour_builds(ds):
    quick = lab.default_plan(ds, ["IVF_FLAT", "HNSW", "ANNOY", "RNSG"], budget="default")
    thorough = lab.default_plan(ds, ["IVF_FLAT", "HNSW", "ANNOY", "RNSG"], budget="thorough")
    assert len(quick.builds) == 4 and len(thorough.builds) > 8
    assert [b.primary for b in thorough.builds[:4]] == [True] * 4
    assert not any(b.primary for b in thorough.builds[4:])
    for b in thorough.builds:
        index_spec, clean = spec.validate_build(b.index_type, b.build_params, dim=ds.dim, metric="L2", warn=False)
        assert not spec.recommendation_warnings(index_spec, clean)
    hnsw_m = sorted({b.build_params["M"] for b in thorough.builds if b.index_type == "HNSW"})
    assert hnsw_m == [8, 16, 32]


def test_saturation_rule():
    stop = sweeps.saturation_rule(sweeps.BUDGETS["default"])
    assert not stop([0.5])
    assert not stop([0.5, 0.8])
    assert stop([0.5, 0.991])  # high enough for the default budget
    assert stop([0.80, 0.801])  # flat: a step gaining < 0.002
    assert not stop([0.10, 0.14, 0.18])  # low but still climbing
    # GloVe IVF_SQ8 (nprobe doubling): gains .028 then .0096, shrinking by a third: ~0.005 left to gain
    assert not stop([0.9392, 0.9675])
    assert stop([0.9392, 0.9675, 0.9771])
    # a big step is never "diminishing", however fast the gains shrink
    assert not stop([0.78, 0.967, 0.987])
    assert not sweeps.saturation_rule(sweeps.BUDGETS["default"], max_recall=1.0)([0.5, 0.991])
    thorough = sweeps.saturation_rule(sweeps.BUDGETS["thorough"])
    assert not thorough([0.5, 0.991]) and thorough([0.5, 0.9991])
    assert not thorough([0.80, 0.8005]) and thorough([0.80, 0.8005, 0.8009])
    assert not thorough([0.80, 0.8005, 0.9])


def test_sweeps_on_hard_data_climb_past_low_recall():
    hard = lab.from_array(np.random.default_rng(31).normal(size=(3000, 24)).astype(np.float32), n_queries=100)
    with lab.Session() as session:
        df = lab.compare(hard, ["IVF_FLAT"], session=session, progress=False, latency_queries=5)
    assert df["recall"].iloc[0] < 0.3 and df["recall"].max() >= 0.95


def test_compare_runs_each_type_and_stops_at_saturation(ds):
    with lab.Session() as session:
        df = lab.compare(ds, ["FLAT", "IVF_FLAT", "IVF_SQ8H"], session=session, progress=False, latency_queries=5)
    assert df["index_type"].unique().tolist() == ["FLAT", "IVF_FLAT", "IVF_SQ8H"]
    assert (df["status"] == "ok").all()
    assert (df["index_type"] == "IVF_SQ8H").sum() == 1
    ivf = df[df["index_type"] == "IVF_FLAT"]
    full_grid = sweeps.search_grid("IVF_FLAT", {"nlist": int(ivf["nlist"].iloc[0])}, ds.n, 10)
    assert len(ivf) < len(full_grid)  # stopped once recall saturated
    stop = sweeps.saturation_rule(sweeps.BUDGETS["default"])
    recalls = ivf["recall"].tolist()
    assert stop(recalls) and not any(stop(recalls[:i]) for i in range(1, len(recalls)))
    assert ivf["nprobe"].tolist() == [s["nprobe"] for s in full_grid[:len(ivf)]]
    assert df["pareto"].dtype == bool and df.groupby("index_type")["pareto"].any().all()
    assert df.attrs["k"] == 10 and df.attrs["wall_s"] > 0


def test_time_limit_skips_extra_builds(ds):
    with lab.Session() as session:
        df = lab.compare(ds, ["IVF_FLAT"], budget="thorough", time_limit=1e-9, session=session, progress=False,
                         latency_queries=5)
    assert (df["status"] == "ok").any()  # the first build of each type always runs
    skipped = df[df["status"] == "skipped"]
    assert len(skipped) == 2 and skipped["note"].str.contains("time limit").all()
    ok = df[df["status"] == "ok"]
    assert len(ok) == 1 and "time limit" in ok["note"].iloc[0]


def test_tiny_data_runs_what_it_can_and_says_why_not_the_rest():
    tiny = lab.from_array(clustered(60, 16, seed=9), n_queries=10)
    with lab.Session() as session, pytest.warns(lab.LabWarning):
        df = lab.compare(tiny, session=session, progress=False, latency_queries=3)
    status = df.drop_duplicates("index_type").set_index("index_type")["status"]
    assert status["IVF_PQ"] == "skipped" and status["RNSG"] == "skipped"
    notes = df.drop_duplicates("index_type").set_index("index_type")["note"]
    assert "50 rows is fewer than IVF_PQ needs to train" in notes["IVF_PQ"] and ": 256" in notes["IVF_PQ"]
    assert "50 rows is fewer than RNSG needs to train" in notes["RNSG"] and ": 71" in notes["RNSG"]
    assert (status.drop(["IVF_PQ", "RNSG"]) == "ok").all()


def test_compare_needs_a_known_budget(ds):
    with pytest.raises(measurements.ParamError, match="budget"):
        lab.compare(ds, ["FLAT"], budget="huge", progress=False)


def test_progress_bar_reaches_its_total(ds, monkeypatch):
    bars = []
    import tqdm.auto

    real = tqdm.auto.tqdm

    sink = io.StringIO()

    def spy(*args, **kwargs):
        bar = real(*args, **kwargs, disable=False, file=sink)
        bars.append(bar)
        return bar

    monkeypatch.setattr(tqdm.auto, "tqdm", spy)
    with lab.Session() as session, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab.compare(ds, ["FLAT", "IVF_FLAT"], session=session, progress=True, latency_queries=5)
    assert len(bars) == 1 and bars[0].n == bars[0].total


# ------------------------------------------------------------------ every float index type
@pytest.mark.slow
@pytest.mark.parametrize("dim", [48])
def test_compare_all_eight_types_on_small_data(dim):
    data = lab.from_array(clustered(2000, dim, seed=21, spread=0.5), n_queries=100)
    with lab.Session() as session:
        df = lab.compare(data, session=session, progress=False, latency_queries=5)
        sq8h = df[df["index_type"] == "IVF_SQ8H"]
        sq8 = lab.measure(data, "IVF_SQ8", json.loads(sq8h["build_params"].iloc[0]),
                          json.loads(sq8h["search_params"].iloc[0]), session=session, **FAST)
    assert df["index_type"].unique().tolist() == list(spec.index_types_for_metric("L2"))
    assert (df["status"] == "ok").all(), df[df["status"] != "ok"][["index_type", "note"]]
    best = df.groupby("index_type")["recall"].max()
    assert best["FLAT"] == 1.0
    for t in ("IVF_FLAT", "IVF_SQ8", "IVF_SQ8H", "HNSW", "ANNOY", "RNSG"):
        assert best[t] >= 0.95, (t, best[t])
    assert len(sq8h) == 1 and "same index as IVF_SQ8" in sq8h["note"].iloc[0]  # measured once, with the note
    assert sq8["recall"].iloc[0] == sq8h["recall"].iloc[0]  # IVF_SQ8H is IVF_SQ8 on the CPU
    table = lab.summary(df, 0.9)
    assert table.set_index("index_type").loc["IVF_SQ8H", "rank"] == ""  # never recommended
