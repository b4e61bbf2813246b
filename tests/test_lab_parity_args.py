"""parity() without a server: every argument, and every setting under both sides' rules, is refused before an
engine, a session or a measurement is made; an in-memory engine under Milvus 2.3's rules stands in for the server
(same table, both sides' recall equal on the same setting); a server error mid-run keeps the rows so far and
closes both sides quietly."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from milvus_lab import Engine, lab
from milvus_lab.errors import IllegalIndexTypeError, InvalidParameterError, ParamError, ServerError
from milvus_lab.lab.measurements import STATUS_SERVER_ERROR, LabWarning
from milvus_lab.lab.setting import params_json

PARITY = sys.modules["milvus_lab.lab.parity"]  # the module (milvus_lab.lab.parity is also the function's name)

#: the table's columns, in order, for a run whose settings all measured (as parity has always returned them)
COLUMNS = ["index_type", "build_params", "search_params", "recall_memory", "recall_server", "recall_diff",
           "build_s_memory", "build_s_server", "qps_memory", "qps_server", "p50_ms_memory", "p50_ms_server",
           "p99_ms_memory", "p99_ms_server", "status_memory", "status_server", "note"]
ATTRS = {"dataset", "n", "nq", "k", "server", "memory", "seconds"}


def _clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(20, 16)) * 4
    return (centres[rng.integers(0, 20, n)] + rng.normal(size=(n, 16))).astype(np.float32)


@pytest.fixture(scope="module")
def dataset():
    return lab.from_array(_clustered(2000, 1), _clustered(30, 2), name="parity-args")


@pytest.fixture
def server():
    """An in-memory engine under the server's rules, standing in for a Milvus 2.3 server."""
    engine = Engine(build_threshold=1, profile="milvus-2.3")
    yield engine
    engine.close()


@pytest.fixture
def nothing_built(monkeypatch):
    """parity may check, but not make an engine or a session, nor measure anything."""
    def refuse(*args, **kwargs):
        raise AssertionError("parity made an engine, a session or a measurement before refusing an argument")

    for name in ("Engine", "session_scope", "measure"):
        monkeypatch.setattr(PARITY, name, refuse)
    monkeypatch.setattr("milvus_lab.lab.measurements.Session", refuse)


class _VerbsOnly:
    """Has a Target's collection verbs but cannot describe itself."""

    def create_collection(self, *args, **kwargs): ...

    def has_collection(self, *args, **kwargs): ...

    def drop_collection(self, *args, **kwargs): ...


FLAT = [("FLAT", {}, None)]

BAD = [
    # (arguments changed, error class, message start)
    ({"dataset": "base.npy"}, ParamError, "dataset must be a lab Dataset"),
    ({"dataset": np.zeros((10, 4))}, ParamError, "dataset must be a lab Dataset"),
    ({"target": None}, ParamError, r"target must be a milvus_lab Target .*; got None"),
    ({"target": object()}, ParamError, "target must be a milvus_lab Target"),
    ({"target": "http://127.0.0.1:19530"}, ParamError, "target must be a milvus_lab Target"),
    ({"target": _VerbsOnly()}, ParamError, "target must be a milvus_lab Target"),
    ({"k": 0}, ParamError, "k must be an int"),
    ({"k": 2.5}, ParamError, "k must be an int"),
    ({"k": 10**6}, ParamError, "k must be an int"),
    ({"latency_queries": -1}, ParamError, "latency_queries must be an int"),
    ({"latency_queries": True}, ParamError, "latency_queries must be an int"),
    ({"repeats": 0}, ParamError, "repeats must be an int"),
    ({"repeats": "3"}, ParamError, "repeats must be an int"),
    ({"progress": "yes"}, ParamError, "progress must be True or False"),
    ({"progress": 1}, ParamError, "progress must be True or False"),
    ({"settings": "HNSW"}, ParamError, "settings must be a list"),
    ({"settings": 5}, ParamError, "settings must be a list"),
    ({"settings": {"index_type": "HNSW"}}, ParamError, "settings must be a list"),
    ({"settings": [("HNSW",)]}, InvalidParameterError, "a parity setting is"),
    ({"settings": [{"build_params": {"nlist": 16}}]}, InvalidParameterError, "a parity setting is"),
    ({"settings": FLAT + [5]}, InvalidParameterError, "a parity setting is"),
    # index types: the error measure() raises for them (the spec's), naming index_type
    ({"settings": [("NOPE", {}, None)]}, IllegalIndexTypeError, "index_type: unknown index type 'NOPE'"),
    ({"settings": [(5, {}, None)]}, ParamError, "index_type must be one of"),
    ({"settings": FLAT + [(None, {}, None)]}, ParamError, "index_type must be one of"),
    # a type only the in-memory side has is refused by the server's rules, before memory measures it
    ({"settings": [("ANNOY", {"n_trees": 8}, {"search_k": -1})]}, IllegalIndexTypeError,
     "index_type: ANNOY is not available on Milvus 2.3"),
    ({"settings": [("RNSG", {"search_length": 45, "out_degree": 40, "candidate_pool_size": 300, "knng": 50},
                    None)]}, IllegalIndexTypeError, "index_type: RNSG is not available on Milvus 2.3"),
    ({"settings": [("IVF_FLAT", 5, None)]}, ParamError, "build_params: index params must be a dict"),
    ({"settings": [("IVF_FLAT", None, None)]}, InvalidParameterError, "build_params: IVF_FLAT: missing"),
    ({"settings": [("IVF_FLAT", {"nlist": 0}, None)]}, InvalidParameterError, "build_params: IVF_FLAT: nlist=0"),
    ({"settings": [("IVF_FLAT", {"nlist": 16.0}, None)]}, InvalidParameterError, "build_params: IVF_FLAT: nlist"),
    ({"settings": [("HNSW", {"M": 1, "efConstruction": 32}, {"ef": 16})]}, InvalidParameterError,
     "build_params: HNSW: M=1"),
    ({"settings": [("IVF_FLAT", {"nlist": 16}, {"nprobe": 32})]}, InvalidParameterError,
     r"search_params: IVF_FLAT: nprobe=32 .*nprobe <= nlist"),
    ({"settings": [("HNSW", {"M": 8, "efConstruction": 32}, {"ef": 5})]}, InvalidParameterError,
     r"search_params: HNSW: ef=5 .*ef >= top_k"),
    ({"settings": [("IVF_FLAT", {"nlist": 16}, {"nprobe": []})]}, ParamError, "search_params is empty"),
    ({"settings": [("IVF_FLAT", {"nlist": 16}, 5)]}, ParamError, "search_params must be a dict"),
    # the last setting is bad: nothing of the first is measured either
    ({"settings": [("IVF_FLAT", {"nlist": 16}, {"nprobe": 4}), ("IVF_SQ8", {"nlist": 16}, {"nprobe": 99})]},
     InvalidParameterError, "search_params: IVF_SQ8: nprobe=99"),
]


@pytest.mark.parametrize("change, error, message", BAD, ids=[f"{i}-{next(iter(c))}" for i, (c, _, _) in enumerate(BAD)])
def test_a_bad_argument_is_refused_naming_it_before_anything_is_built(dataset, server, nothing_built, change, error,
                                                                      message):
    args = {"dataset": dataset, "target": server, "settings": FLAT, "k": 10, "latency_queries": 5, "repeats": 1,
            "progress": False, **change}
    with pytest.raises(error, match=f"^{message}") as caught:
        PARITY.parity(args.pop("dataset"), args.pop("target"), **args)
    assert type(caught.value) is error
    assert server.list_collections() == []


def test_target_is_required(dataset, nothing_built):
    with pytest.raises(ParamError, match="^target must be") as caught:
        lab.parity(dataset, None)
    assert "or None" not in str(caught.value)


def test_an_in_memory_engine_under_the_servers_rules_gives_the_same_table_and_the_same_recall(dataset, server):
    settings = [("IVF_FLAT", {"nlist": 16}, {"nprobe": [2, 8]}),
                {"index_type": "ivf_sq8", "build_params": {"nlist": np.int64(16)}, "search_params": {"nprobe": 4}},
                ("FLAT", {"nlist": 16}), ("IVF_PQ", {"nlist": 16, "m": 4}, [{"nprobe": 4}])]
    df = lab.parity(dataset, server, settings, latency_queries=5, repeats=1)
    assert list(df.columns) == COLUMNS
    assert df[["index_type", "build_params", "search_params"]].values.tolist() == [
        ["IVF_FLAT", '{"nlist": 16}', '{"nprobe": 2}'], ["IVF_FLAT", '{"nlist": 16}', '{"nprobe": 8}'],
        ["IVF_SQ8", '{"nlist": 16}', '{"nprobe": 4}'], ["FLAT", "{}", "{}"],
        ["IVF_PQ", '{"nlist": 16, "m": 4}', '{"nprobe": 4}']]
    assert (df["status_memory"] == "ok").all() and (df["status_server"] == "ok").all()
    # the same seeded training and the same search on both sides: the same recall, exactly
    assert (df["recall_diff"] == 0).all(), df[["index_type", "recall_memory", "recall_server"]]
    assert (df["recall_memory"] > 0.5).all() and df["recall_memory"].iloc[1] >= df["recall_memory"].iloc[0]
    for col in ("build_s_memory", "build_s_server", "qps_memory", "qps_server", "p50_ms_server", "p99_ms_server"):
        assert (df[col] > 0).all(), col
    assert set(df.attrs) == ATTRS
    assert df.attrs["server"] == server.describe() and df.attrs["memory"] == "milvus_lab in memory"
    assert (df.attrs["dataset"], df.attrs["n"], df.attrs["nq"], df.attrs["k"]) == ("parity-args", 2000, 30, 10)
    assert server.list_collections() == []  # the collection the lab made on the target is dropped
    assert "recall_memory" in PARITY.parity_markdown(df)


def test_a_cosine_dataset_is_measured_in_memory_under_the_servers_rules(server):
    dataset = lab.from_array(_clustered(2000, 3), _clustered(20, 4), metric="COSINE", name="cosine")
    df = lab.parity(dataset, server, [("IVF_FLAT", {"nlist": 16}, {"nprobe": 4})], latency_queries=5, repeats=1)
    assert list(df.columns) == COLUMNS
    assert df.attrs["memory"] == "milvus_lab in memory (Milvus 2.3 rules)"
    assert df["recall_diff"].tolist() == [0.0]


def test_the_default_settings_are_every_type_both_sides_have(dataset, server):
    df = lab.parity(dataset, server, latency_queries=2, repeats=1)
    assert df["index_type"].tolist() == PARITY.common_index_types(dataset)
    assert [tuple(r) for r in df[["index_type", "build_params", "search_params"]].values] == [
        (t, params_json(b), params_json(s)) for t, b, s in PARITY.default_settings(dataset)]


def test_empty_settings_give_an_empty_table(dataset, server):
    df = lab.parity(dataset, server, [], latency_queries=2, repeats=1)
    assert len(df) == 0 and list(df.columns) == ["index_type"] and set(df.attrs) == ATTRS


def test_progress_names_each_build(dataset, server, capsys):
    lab.parity(dataset, server, [("IVF_FLAT", {"nlist": 16}, {"nprobe": [2, 8]}), ("FLAT", {}, None)],
               latency_queries=2, repeats=1, progress=True)
    assert capsys.readouterr().out.splitlines() == ["[1/2] IVF_FLAT nlist=16", "[2/2] FLAT -"]


def test_a_server_error_keeps_the_rows_so_far_and_closes_both_sides_quietly(dataset, server, monkeypatch):
    engines: list[Engine] = []
    closed: list[Engine] = []

    class RecordedEngine(Engine):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            engines.append(self)

        def close(self):
            closed.append(self)
            super().close()

    measure = PARITY.measure

    def failing_on_the_server(dataset, index_type, *args, session, **kwargs):
        if session.target is server and index_type == "HNSW":
            raise ServerError("search failed on http://example:19530: server unavailable")
        return measure(dataset, index_type, *args, session=session, **kwargs)

    def dead(name):
        raise ServerError("drop collection failed: server unavailable")

    monkeypatch.setattr(PARITY, "Engine", RecordedEngine)
    monkeypatch.setattr(PARITY, "measure", failing_on_the_server)
    monkeypatch.setattr(server, "drop_collection", dead)
    settings = [("IVF_FLAT", {"nlist": 16}, {"nprobe": [2, 8]}), ("HNSW", {"M": 8, "efConstruction": 32}, {"ef": 16}),
                ("IVF_SQ8", {"nlist": 16}, {"nprobe": 4})]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = lab.parity(dataset, server, settings, latency_queries=2, repeats=1)
    # the only warning is parity's own: the server side's failed drop is silenced (the error says what happened)
    assert [(w.category, str(w.message)) for w in caught] == [
        (LabWarning, "parity stopped: search failed on http://example:19530: server unavailable; the 2 row(s) "
                     "measured before are kept")]
    assert df["index_type"].tolist() == ["IVF_FLAT", "IVF_FLAT", "HNSW"]
    assert df["status_server"].tolist() == ["ok", "ok", STATUS_SERVER_ERROR]
    assert df.loc[2, "status_memory"] == "ok" and np.isnan(df.loc[2, "recall_server"])
    assert df.loc[2, "note"] == df.attrs["error"] == "search failed on http://example:19530: server unavailable"
    assert list(df.columns) == COLUMNS
    assert len(engines) == 1 and closed == engines  # the in-memory side's own engine, closed
    assert engines[0].list_collections() == []
