"""tune(): the fastest setting per index type that meets the recall target, checked on fresh queries."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import clustered
from helpers import numpy_recall

from milvus_lab import Engine, lab, spec
from milvus_lab.errors import IllegalIndexTypeError, ParamError
from milvus_lab.lab.tuning import smallest_passing

TARGET = 0.9
FAST = {"progress": False, "latency_queries": 5}


@pytest.fixture(scope="module")
def data():
    """One distribution: 4000 base rows + 300 queries for tune(), and 300 fresh queries it never sees."""
    rows = clustered(4600, 32, clusters=200, seed=31, spread=1.5)
    return lab.from_array(rows[:4300], n_queries=300, name="blobs"), rows[4300:]


@pytest.fixture(scope="module")
def session():
    with lab.Session() as s:
        yield s


@pytest.fixture(scope="module")
def tuned(data, session):
    """One tune() of three types (tens of seconds on 2 cores): the tests that read it are marked slow."""
    ds, _ = data
    return lab.tune(ds, TARGET, ["IVF_FLAT", "IVF_SQ8", "HNSW"], session=session, **FAST)


@pytest.mark.slow
def test_each_type_meets_the_target_on_held_out_queries(tuned):
    best = tuned.best
    assert best["index_type"].tolist() == ["IVF_FLAT", "IVF_SQ8", "HNSW"]
    assert (best["status"] == "ok").all(), best[["index_type", "note"]]
    assert ((best["recall"] + best["tuning_recall"]) / 2 >= TARGET).all()  # over all queries (equal halves)
    assert (best["recall_hi"] >= TARGET).all() and (best["recall_lo"] <= best["recall"]).all()
    assert len(tuned.holdout) >= 3 and (tuned.holdout["nq"] == 150).all()


@pytest.mark.slow
def test_choice_meets_the_target_on_fresh_queries(data, tuned):
    ds, fresh = data
    engine = Engine(build_threshold=1)
    for i, row in tuned.best.iterrows():
        c = engine.create_collection(f"fresh{i}", ds.dim, index_file_size=spec.INDEX_FILE_SIZE_MB[1])
        c.insert(ds.base)
        c.create_index(row["index_type"], json.loads(row["build_params"]))
        found = c.search(fresh, 10, json.loads(row["search_params"])).ids
        assert numpy_recall(found, ds.base, fresh, 10) >= TARGET - 0.02, row["index_type"]
    engine.close()


@pytest.mark.slow
def test_every_point_is_kept_and_the_search_value_is_the_smallest_passing_one(tuned):
    points, trials = tuned.points, tuned.trials
    assert set(points["phase"]) >= {"bracket", "verify"}
    for _, best in tuned.best.iterrows():
        mine = points[(points["index_type"] == best["index_type"]) & (points["build_params"] == best["build_params"])
                      & (points["queries"] == "tuning")]
        mine = mine[mine["required"] == mine["required"].max()]  # the last search (raised once if verify failed)
        required = mine["required"].iloc[0]
        name = next(iter(json.loads(best["search_params"])))
        chosen = json.loads(best["search_params"])[name]
        below = mine[mine[name] < chosen]
        assert required >= TARGET and (below["recall"] < required).all()  # every smaller value tried missed it
        probed = points[(points["index_type"] == best["index_type"]) & (points["build_params"] == best["build_params"])
                        & points["phase"].isin(["bracket", "bisect", "refine"])]
        if len(below):
            gap = chosen - probed[probed[name] < chosen][name].max()
            assert gap <= max(1, int(0.02 * chosen))  # bisected down to neighbours, not a grid step
        assert best["index_type"] in tuned.stopped and tuned.stopped[best["index_type"]]
    assert {"index_type", "build_params", "search_params", "status", "reason", "qps"} <= set(trials.columns)
    assert len(trials) >= len(tuned.best)
    assert tuned.winner["qps"] == tuned.best["qps"].max()
    assert tuned.winner["index_type"] in tuned.ties


@pytest.mark.slow
def test_build_parameters_are_explored_from_the_spec_defaults(tuned):
    hnsw = tuned.trials[tuned.trials["index_type"] == "HNSW"]
    first = json.loads(hnsw["build_params"].iloc[0])
    assert first == spec.default_build_params("HNSW")
    assert len(hnsw) > 1  # coordinate search tried neighbours of the default
    ivf = tuned.trials[tuned.trials["index_type"] == "IVF_FLAT"]
    assert len({json.loads(p)["nlist"] for p in ivf["build_params"]}) > 1


def test_time_budget_and_max_builds_bound_the_search(data, session):
    ds, _ = data
    res = lab.tune(ds, TARGET, ["HNSW"], session=session, max_builds=1, **FAST)
    assert len(res.trials) == 1 and "max_builds" in res.stopped["HNSW"]
    res = lab.tune(ds, TARGET, ["IVF_FLAT"], session=session, time_budget_s=1e-6, **FAST)
    assert len(res.trials) == 1 and "time budget" in res.stopped["IVF_FLAT"]
    assert res.best["status"].iloc[0] == "ok"  # the default build always runs


def test_ivf_sq8h_is_not_tuned_and_never_wins(data, session):
    ds, _ = data
    res = lab.tune(ds, TARGET, ["IVF_SQ8H"], session=session, **FAST)
    assert res.best["status"].iloc[0] == "not tuned" and "same index as IVF_SQ8" in res.best["note"].iloc[0]
    assert res.winner is None


def test_bisection_finds_the_smallest_passing_value_on_a_monotone_curve():
    def curve(v: int) -> float:
        return 1 - 1 / (1 + v / 37)  # reaches 0.9 first at v = 333

    calls = []

    def recall(v: int) -> float:
        calls.append(v)
        return curve(v)

    grid = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    value, points = smallest_passing(recall, grid, 0.9, tolerance=0)
    assert value == 333 and curve(333) >= 0.9 > curve(332)
    assert [p[2] for p in points][:10] == ["bracket"] * 10 and points[-1][2] == "bisect"
    assert len(calls) == len(set(calls)) <= 10 + 9  # each value once; log2(256) bisection steps
    assert smallest_passing(recall, grid, 2.0)[0] is None  # unreachable
    assert smallest_passing(recall, [512, 1024], 0.9)[0] == 512  # the first value already passes


def test_code_for_a_type_milvus_2_lacks_names_the_reason(data, session):
    ds, _ = data
    res = lab.tune(ds, TARGET, ["ANNOY"], session=session, max_builds=1, **FAST)
    assert "create_index('ANNOY'" in res.code()
    with pytest.raises(IllegalIndexTypeError, match="ANNOY is not available on Milvus 2.3"):
        res.code(target="pymilvus-2")


@pytest.mark.slow
def test_code_lines_and_summary(tuned):
    code = tuned.code()
    assert code.startswith(f"collection.create_index({tuned.winner['index_type']!r}, ")
    assert "collection.search(queries, 10, " in code
    text = repr(tuned)
    assert ("winner:" in text or "tie:" in text) and "recall >= 0.9" in text
    assert "create_index('IVF_SQ8'" in tuned.code("IVF_SQ8")
    html = tuned._repr_html_()
    assert "<table" in html and ("winner:" in html or "tie:" in html)
    two = tuned.code(target="pymilvus-2")
    assert "client.prepare_index_params()" in two and "index_params.add_index(field_name='vector'" in two
    assert f"index_type={tuned.winner['index_type']!r}" in two and "search_params=" in two
    with pytest.raises(ParamError, match="target"):
        tuned.code(target="pymilvus-9")


@pytest.mark.slow
def test_memory_budget_rules_out_bigger_indexes(data, session, tuned):
    ds, _ = data
    flat_mb = tuned.best.set_index("index_type").loc["IVF_FLAT", "memory_mb"]
    sq8_mb = tuned.best.set_index("index_type").loc["IVF_SQ8", "memory_mb"]
    assert sq8_mb < flat_mb
    budget = (sq8_mb + flat_mb) / 2
    res = lab.tune(ds, TARGET, ["IVF_FLAT", "IVF_SQ8"], memory_budget_mb=budget, session=session, max_builds=2,
                   **FAST)
    best = res.best.set_index("index_type")
    assert best.loc["IVF_FLAT", "status"] != "ok"
    assert "over the memory budget" in best.loc["IVF_FLAT", "note"]
    assert best.loc["IVF_SQ8", "status"] == "ok" and best.loc["IVF_SQ8", "memory_mb"] <= budget
    assert res.winner["index_type"] == "IVF_SQ8"


@pytest.mark.slow
def test_latency_limit_and_unreachable_targets(data, session):
    ds, _ = data
    res = lab.tune(ds, TARGET, ["IVF_FLAT"], max_p99_ms=1e-6, session=session, max_builds=2, **FAST)
    assert res.winner is None
    assert "p99" in res.best["note"].iloc[0]
    with pytest.raises(ValueError, match="no setting met the target"):
        res.code()
    pq = lab.tune(ds, 0.999, ["IVF_PQ"], session=session, max_builds=2, **FAST)
    assert pq.winner is None and "tops out at recall" in pq.best["note"].iloc[0]


def test_arguments_are_checked(data):
    ds, _ = data
    with pytest.raises(ParamError, match="target_recall"):
        lab.tune(ds, 1.5, ["FLAT"], **FAST)
    with pytest.raises(ParamError, match="memory_budget_mb"):
        lab.tune(ds, 0.9, ["FLAT"], memory_budget_mb=-1, **FAST)
    with pytest.raises(ParamError, match="holdout"):
        lab.tune(ds, 0.9, ["FLAT"], holdout=1.0, **FAST)


def test_refine_finds_the_smallest_value_passing_on_all_queries_below_the_tuning_halfs_answer():
    """The tuning half needs 38 (recall v/40) but all queries pass from 36 (held-out recall 1 from 30 on,
    pooled (v/40 + 1) / 2): tune must step below 38 through the values the tuning half missed (37, 36 pass on
    all queries, 32 fails) and bisect 32..36 to 36, as a grid on all queries would."""
    from milvus_lab.lab.sweeps import Progress
    from milvus_lab.lab.setting import Setting
    from milvus_lab.lab.tuning import _Choice, _Tuner

    rows = clustered(400, 8, seed=3)
    tune_ds, hold_ds = lab.from_array(rows, n_queries=40).split_queries(0.5, 0)
    curves = {id(tune_ds): lambda v: min(1.0, v / 40), id(hold_ds): lambda v: min(1.0, v / 30)}

    class FakeSession:
        thread_info: dict = {}
        profile = spec.DEFAULT_PROFILE

        def recall_of(self, ds, build, search, k):
            return np.full(ds.nq, curves[id(ds)](search["nprobe"]))

    tuner = _Tuner(FakeSession(), tune_ds, hold_ds, 0.95, 10, None, None, 0, Progress(1, False, "t"))
    tuning = curves[id(tune_ds)]
    value, tried = smallest_passing(tuning, [1, 2, 4, 8, 16, 32, 64], 0.95)
    assert value == 38
    chosen = tuner.refine(Setting.of("IVF_FLAT", {"nlist": 64}), None,
                          _Choice({"nprobe": value}, np.full(20, tuning(38)), np.full(20, 1.0)), tried)
    assert chosen.search == {"nprobe": 36}
    assert (chosen.tuning.mean() + chosen.held.mean()) / 2 >= 0.95
    refine = [p for p in tuner.points if p["phase"] == "refine"]
    assert 32 in [p["nprobe"] for p in refine]  # checked on all queries: (0.8 + 1.0) / 2 = 0.9 misses
