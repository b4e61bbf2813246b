"""tune(): the fastest setting per index type that meets the recall target, checked on fresh queries."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import clustered

from milvus_lab import Engine, lab, spec
from milvus_lab.errors import ParamError

TARGET = 0.9
FAST = {"progress": False, "latency_queries": 5}


def numpy_recall(found: np.ndarray, base: np.ndarray, queries: np.ndarray, k: int) -> float:
    d = ((queries[:, None, :].astype(np.float64) - base[None, :, :]) ** 2).sum(-1)
    truth = np.argsort(d, axis=1)[:, :k]
    return float(np.mean([len(set(f[:k]) & set(t)) / k for f, t in zip(found.tolist(), truth.tolist())]))


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
    ds, _ = data
    return lab.tune(ds, TARGET, ["IVF_FLAT", "IVF_SQ8", "HNSW"], session=session, **FAST)


def test_each_type_meets_the_target_on_held_out_queries(tuned):
    best = tuned.best
    assert best["index_type"].tolist() == ["IVF_FLAT", "IVF_SQ8", "HNSW"]
    assert (best["status"] == "ok").all(), best[["index_type", "note"]]
    assert (best["recall"] >= TARGET).all() and (best["tuning_recall"] >= TARGET).all()
    assert len(tuned.holdout) >= 3 and (tuned.holdout["nq"] == 150).all()


def test_choice_meets_the_target_on_fresh_queries(data, tuned):
    ds, fresh = data
    engine = Engine(build_threshold=1)
    for i, row in tuned.best.iterrows():
        c = engine.create_collection(f"fresh{i}", ds.dim, index_file_size=spec.INDEX_FILE_SIZE_MB[1])
        c.insert(ds.base)
        c.create_index(row["index_type"], json.loads(row["build_params"]))
        found = c.search(fresh, 10, json.loads(row["search_params"])).ids
        assert numpy_recall(found, ds.base, fresh, 10) >= TARGET, row["index_type"]
    engine.close()


def test_choice_is_the_fastest_setting_that_meets_the_target(tuned):
    frontier = tuned.frontier
    for _, best in tuned.best.iterrows():
        mine = frontier[(frontier["index_type"] == best["index_type"]) & frontier["meets_target"]]
        assert not mine.empty
        # tune checks candidates fastest first; the chosen one is the first that held on held-out queries
        faster = mine[mine["qps"] > mine[(mine["build_params"] == best["build_params"])
                                         & (mine["search_params"] == best["search_params"])]["qps"].max()]
        checked = tuned.holdout[tuned.holdout["index_type"] == best["index_type"]]
        for _, f in faster.iterrows():
            held = checked[(checked["search_params"] == f["search_params"])]
            assert not held.empty and held["recall"].iloc[0] < TARGET
    assert tuned.winner["qps"] == tuned.best["qps"].max()


def test_sweeps_stop_one_step_after_the_target(tuned):
    for t, group in tuned.frontier[tuned.frontier["status"] == "ok"].groupby("index_type"):
        recalls = group["recall"].tolist()
        first = next(i for i, r in enumerate(recalls) if r >= TARGET)
        assert len(recalls) <= first + 2, t


def test_code_lines_and_summary(tuned):
    code = tuned.code()
    assert code.startswith(f"collection.create_index({tuned.winner['index_type']!r}, ")
    assert "collection.search(queries, 10, " in code
    text = repr(tuned)
    assert "winner:" in text and "recall >= 0.9" in text
    assert "create_index('IVF_SQ8'" in tuned.code("IVF_SQ8")
    html = tuned._repr_html_()
    assert "<table" in html and "winner:" in html


def test_memory_budget_rules_out_bigger_indexes(data, session, tuned):
    ds, _ = data
    flat_mb = tuned.best.set_index("index_type").loc["IVF_FLAT", "memory_mb"]
    sq8_mb = tuned.best.set_index("index_type").loc["IVF_SQ8", "memory_mb"]
    assert sq8_mb < flat_mb
    budget = (sq8_mb + flat_mb) / 2
    with pytest.warns(lab.LabWarning, match="over the memory budget"):
        res = lab.tune(ds, TARGET, ["IVF_FLAT", "IVF_SQ8"], memory_budget_mb=budget, session=session, **FAST)
    best = res.best.set_index("index_type")
    assert best.loc["IVF_FLAT", "status"] != "ok"
    assert "over the memory budget" in best.loc["IVF_FLAT", "note"]
    assert best.loc["IVF_SQ8", "status"] == "ok" and best.loc["IVF_SQ8", "memory_mb"] <= budget
    assert res.winner["index_type"] == "IVF_SQ8"


def test_latency_limit_and_unreachable_targets(data, session):
    ds, _ = data
    res = lab.tune(ds, TARGET, ["IVF_FLAT"], max_p99_ms=1e-6, session=session, **FAST)
    assert res.winner is None
    assert "p99" in res.best["note"].iloc[0]
    with pytest.raises(ValueError, match="no setting met the target"):
        res.code()
    pq = lab.tune(ds, 0.999, ["IVF_PQ"], session=session, **FAST)
    assert pq.winner is None and "tops out at recall" in pq.best["note"].iloc[0]


def test_arguments_are_checked(data):
    ds, _ = data
    with pytest.raises(ParamError, match="target_recall"):
        lab.tune(ds, 1.5, ["FLAT"], **FAST)
    with pytest.raises(ParamError, match="memory_budget_mb"):
        lab.tune(ds, 0.9, ["FLAT"], memory_budget_mb=-1, **FAST)
    with pytest.raises(ParamError, match="holdout"):
        lab.tune(ds, 0.9, ["FLAT"], holdout=1.0, **FAST)
