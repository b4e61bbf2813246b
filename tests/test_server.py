"""The Milvus 2.x server target on a real embedded Milvus 2.3.5 server (tests marked ``server``), plus the parts
that need no server (the pymilvus 2.x code lines, the CLI without a server).

The session fixture ``milvus_server`` (conftest.py) starts one server (authorization on, root's password random and
kept in the test's config folder, so ``connect(uri)`` needs no token); tests that kill a
server start their own in a temporary folder. Data is small (a few thousand rows) except the 20k GloVe parity.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
import warnings

import numpy as np
import pytest
from conftest import clustered

from milvus_lab import lab, numerics, spec
from milvus_lab.errors import (
    AlreadyExistsError,
    IllegalIndexTypeError,
    IllegalMetricError,
    InvalidParameterError,
    ServerError,
)
from milvus_lab.protocol import IndexedCollection, Target
from milvus_lab.lab import parity, plot_parity
from milvus_lab.server import embedded, pymilvus2_index_code
from milvus_lab.server.cli import NOT_RUNNING, server_main
from milvus_lab.lab.parity import parity_markdown
from milvus_lab.server.target import ServerCollection



# --------------------------------------------------------------------------------------------------
# No server needed
# --------------------------------------------------------------------------------------------------
def test_code_lines_name_the_server_types_and_params():
    code = pymilvus2_index_code("IVF_FLAT", {"nlist": 1024}, {"nprobe": 16}, "L2", k=10)
    assert "client.prepare_index_params()" in code
    assert "index_type='IVF_FLAT', metric_type='L2'" in code
    assert "params={'nlist': 1024}" in code
    assert "'params': {'nprobe': 16}" in code and "limit=10" in code
    compile(code, "<code>", "exec")
    binary = pymilvus2_index_code("IVF_FLAT", {"nlist": 64}, {"nprobe": 8}, "HAMMING")
    assert "index_type='BIN_IVF_FLAT', metric_type='HAMMING'" in binary
    assert "index_type='BIN_FLAT'" in pymilvus2_index_code("FLAT", {}, {}, "JACCARD")
    hnsw = pymilvus2_index_code("HNSW", {"M": 2048, "efConstruction": 1}, {"ef": 32768}, "IP")
    assert "{'M': 2048, 'efConstruction': 1}" in hnsw  # the server's ranges, not 0.10's


@pytest.mark.parametrize("args, error, words", [
    (("ANNOY", {"n_trees": 8}, {"search_k": -1}), IllegalIndexTypeError, "not available on Milvus 2.3"),
    (("RNSG", {}, {}), IllegalIndexTypeError, "not available on Milvus 2.3"),
    (("IVF_SQ8H", {"nlist": 64}, {"nprobe": 8}), IllegalIndexTypeError, "not available on Milvus 2.3"),
    (("IVF_FLAT", {"nlist": 64}, {"nprobe": 65}), InvalidParameterError, "nprobe"),
    (("HNSW", {"M": 1, "efConstruction": 64}, {"ef": 64}), InvalidParameterError, "M=1"),
    (("HNSW", {"M": 16, "efConstruction": 64}, {"ef": 5}), InvalidParameterError, "ef"),
    (("IVF_FLAT", {"nlist": 64}, {"nprobe": 8}, "TANIMOTO"), IllegalMetricError, "TANIMOTO"),
    (("IVF_FLAT", {"nlist": 64, "m": 4}, {"nprobe": 8}), InvalidParameterError, "'m'"),
])
def test_code_lines_refuse_what_the_server_would_refuse_or_misread(args, error, words):
    with pytest.raises(error, match=words):
        pymilvus2_index_code(*args)


def test_code_lines_check_the_dimension_when_given():
    with pytest.raises(InvalidParameterError, match="m"):
        pymilvus2_index_code("IVF_PQ", {"nlist": 64, "m": 7}, {"nprobe": 8}, dim=50)
    assert "'m': 5" in pymilvus2_index_code("IVF_PQ", {"nlist": 64, "m": 5}, {"nprobe": 8}, dim=50)


def test_default_folder_follows_the_cache_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path))
    assert embedded.default_folder() == tmp_path / "server"
    monkeypatch.delenv(embedded.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if os.name == "posix" and os.uname().sysname == "Linux":
        assert embedded.default_folder() == tmp_path / "xdg" / "milvus_lab" / "server"


def test_status_and_stop_without_a_server(tmp_path, capsys):
    assert server_main(["status", "--folder", str(tmp_path)]) == NOT_RUNNING
    assert "no Milvus server is running" in capsys.readouterr().out
    assert server_main(["stop", "--folder", str(tmp_path)]) == 0
    # a stale state file naming a process that is not this folder's server is ignored, nothing is killed
    (tmp_path / embedded.STATE_FILE).write_text(
        f'{{"folder": "{tmp_path}", "pid": {os.getpid()}, "launcher_pid": {os.getpid()}, "port": 1, '
        f'"version": "2.3.5"}}')
    assert embedded.read_state(tmp_path) is None
    assert server_main(["status", "--folder", str(tmp_path)]) == NOT_RUNNING
    assert embedded.stop(tmp_path) is None  # and this process (pytest) is still alive to say so


# --------------------------------------------------------------------------------------------------
# Helpers for the server tests
# --------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def float_data():
    base = clustered(3000, 16, clusters=30, seed=3)
    queries = clustered(40, 16, clusters=30, seed=4)
    return base, queries


# --------------------------------------------------------------------------------------------------
# Connecting
# --------------------------------------------------------------------------------------------------
@pytest.mark.server
def test_connect_describes_the_server_and_is_a_target(target, milvus_server):
    assert isinstance(target, Target)
    assert target.profile == spec.SERVER_PROFILE == "milvus-2.3"
    assert target.describe() == f"Milvus v2.3.5 at http://127.0.0.1:{milvus_server.port}"


@pytest.mark.server
def test_unreachable_server_names_the_uri_and_the_step(monkeypatch):
    import pymilvus

    from milvus_lab.server import connect

    uri = f"http://127.0.0.1:{_free_port()}"
    timeouts = []
    real_connect = pymilvus.connections.connect

    def counted_connect(*args, **kwargs):
        timeouts.append(kwargs.get("timeout"))
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(pymilvus.connections, "connect", counted_connect)
    with pytest.raises(ServerError) as err:
        connect(uri, timeout=2)
    assert uri in str(err.value) and ": connect failed:" in str(err.value)  # the first step, no later one
    assert timeouts == [2]  # one attempt, given up after the caller's timeout rather than retried


@pytest.mark.server
@pytest.mark.parametrize("uri", ["http://127.0.0.1:notaport", "", None])
def test_wrong_uri_is_a_server_error(uri):
    from milvus_lab.server import connect

    with pytest.raises(ServerError, match="URI|connect"):
        connect(uri, timeout=2)


@pytest.mark.server
@pytest.mark.parametrize("token", ["root:wrong", embedded.DEFAULT_TOKEN])
def test_authentication_failure_names_the_uri_and_the_step(milvus_server, token):
    from milvus_lab.server import connect

    with pytest.raises(ServerError) as err:
        connect(milvus_server.uri, token=token, timeout=5)
    text = str(err.value)
    assert milvus_server.uri in text and "connect" in text
    assert "authentication failed" in text or "UNAUTHENTICATED" in text


# --------------------------------------------------------------------------------------------------
# Every supported index type builds and searches
# --------------------------------------------------------------------------------------------------
FLOAT_SETTINGS = [
    ("FLAT", {}, {}, 1.0),
    ("IVF_FLAT", {"nlist": 32}, {"nprobe": 8}, 0.85),
    ("IVF_SQ8", {"nlist": 32}, {"nprobe": 8}, 0.8),
    ("IVF_PQ", {"nlist": 32, "m": 8}, {"nprobe": 8}, 0.4),
    ("HNSW", {"M": 16, "efConstruction": 100}, {"ef": 100}, 0.9),
]


@pytest.mark.server
def test_each_float_index_type_builds_and_searches(target, float_data):
    base, queries = float_data
    collection = target.create_collection(target.unique_name("t_float"), 16, metric_type="L2")
    assert isinstance(collection, IndexedCollection)
    ids = collection.insert(base)
    assert ids.tolist() == list(range(len(base))) and collection.count() == len(base)
    truth, truth_d = numerics.exact_knn(base, queries, 10, "L2")
    for index_type, build, search, floor in FLOAT_SETTINGS:
        report = collection.create_index(index_type, build)
        assert report.fully_indexed and report.indexed_rows == len(base), report.message()
        assert report.build_seconds >= report.load_seconds > 0
        assert collection.describe_index().index_type == index_type
        assert dict(collection.describe_index().params) == build
        result = collection.search(queries, 10, search)
        assert result.ids.shape == result.distances.shape == (len(queries), 10)
        assert result.ids.dtype == np.int64
        recall = numerics.recall(result.ids, truth, 10, base=base, queries=queries, metric="L2")
        assert recall >= floor, (index_type, recall)
        if index_type in ("FLAT", "IVF_FLAT", "HNSW"):  # exact distances: squared L2, like milvus_lab's
            exact = numerics.pair_distances(base, queries, result.ids, "L2")
            np.testing.assert_allclose(result.distances, exact, rtol=1e-4, atol=1e-4)
        assert np.all(np.diff(result.distances, axis=1) >= -1e-5)
    nearest = collection.search(queries, 10, {"ef": 100}).distances[:, 0]
    assert np.mean(np.isclose(nearest, truth_d[:, 0], rtol=1e-3, atol=1e-3)) >= 0.95
    stats = collection.stats()
    assert stats["row_count"] == len(base)
    segments = stats["partitions"][0]["segments"]
    assert sum(s["row_count"] for s in segments) == len(base) and {s["index_name"] for s in segments} == {"HNSW"}
    collection.drop_index()
    assert collection.describe_index().index_type == "FLAT"
    np.testing.assert_array_equal(collection.search(queries, 10).ids[:, 0], truth[:, 0])


@pytest.mark.server
def test_inner_product_results_descend(target, float_data):
    base, queries = float_data
    collection = target.create_collection(target.unique_name("t_ip"), 16, metric_type="IP")
    collection.insert(base)
    collection.create_index("HNSW", {"M": 8, "efConstruction": 64})
    result = collection.search(queries, 5, {"ef": 64})
    np.testing.assert_allclose(result.distances, numerics.pair_distances(base, queries, result.ids, "IP"), rtol=1e-4,
                               atol=1e-4)
    assert np.all(np.diff(result.distances, axis=1) <= 1e-5)


@pytest.mark.server
@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_binary_flat_and_ivf_flat_build_and_search(target, metric):
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, size=(2000, 8), dtype=np.uint8)
    queries = base[:10]
    collection = target.create_collection(target.unique_name("t_bin"), 64, metric_type=metric)
    collection.insert(base)
    truth, _ = numerics.exact_knn(base, queries, 5, metric)
    for index_type, build, search in (("FLAT", {}, {}), ("IVF_FLAT", {"nlist": 16}, {"nprobe": 16})):
        report = collection.create_index(index_type, build)
        assert report.server_index_type == "BIN_" + index_type
        result = collection.search(queries, 5, search)
        assert numerics.recall(result.ids, truth, 5, base=base, queries=queries, metric=metric) == 1.0
        np.testing.assert_allclose(result.distances, numerics.pair_distances(base, queries, result.ids, metric),
                                   atol=1e-5)


@pytest.mark.server
def test_fewer_hits_than_top_k_are_padded_like_the_engine(target):
    collection = target.create_collection(target.unique_name("t_pad"), 4)
    collection.insert(np.eye(4, dtype=np.float32) * 3, ids=[10, 20, 30, 40])
    result = collection.search(np.zeros((2, 4), dtype=np.float32), 6)
    assert all(set(row[:4]) == {10, 20, 30, 40} for row in result.ids.tolist())
    assert (result.ids[:, 4:] == -1).all() and np.isinf(result.distances[:, 4:]).all()
    assert (result.distances[:, 4:] > 0).all()
    np.testing.assert_allclose(result.distances[:, :4], 9.0)  # squared L2
    with pytest.raises(InvalidParameterError, match="already"):
        collection.insert(np.ones((1, 4), dtype=np.float32), ids=[20])
    with pytest.raises(InvalidParameterError):
        collection.insert(np.ones((1, 4), dtype=np.float32))  # this collection uses the caller's ids


@pytest.mark.server
def test_rows_inserted_after_the_load_are_found(target, float_data):
    base, _ = float_data
    collection = target.create_collection(target.unique_name("t_fresh"), 16)
    collection.insert(base[:2000])
    collection.create_index("IVF_FLAT", {"nlist": 16})
    far = np.full((1, 16), 50.0, dtype=np.float32)
    new_ids = collection.insert(far)
    assert collection.count() == 2001
    assert collection.search(far, 1, {"nprobe": 16}).ids[0, 0] == new_ids[0]


@pytest.mark.server
def test_small_segments_the_server_does_not_index_are_reported_raw(target, float_data):
    base, _ = float_data
    collection = target.create_collection(target.unique_name("t_small"), 16)
    collection.insert(base[:500])
    report = collection.create_index("IVF_FLAT", {"nlist": 16})
    assert not report.fully_indexed and report.raw_rows == 500 and report.indexed_rows == 0
    assert "minSegmentNumRowsToEnableIndex" in report.message()


# --------------------------------------------------------------------------------------------------
# Refused before anything is sent
# --------------------------------------------------------------------------------------------------
@pytest.mark.server
def test_refused_types_and_values_are_refused_with_the_reason(target, float_data):
    base, queries = float_data
    collection = target.create_collection(target.unique_name("t_refuse"), 16)
    collection.insert(base[:2000])
    collection.create_index("IVF_FLAT", {"nlist": 16})
    for index_type, params in (("ANNOY", {"n_trees": 8}), ("RNSG", {"search_length": 45, "out_degree": 50,
                                                                    "candidate_pool_size": 300, "knng": 100}),
                               ("IVF_SQ8H", {"nlist": 16})):
        with pytest.raises(IllegalIndexTypeError, match=f"{index_type} is not available on Milvus 2.3: .+"):
            collection.create_index(index_type, params)
    with pytest.raises(InvalidParameterError, match="M=1"):
        collection.create_index("HNSW", {"M": 1, "efConstruction": 64})
    with pytest.raises(InvalidParameterError, match="nprobe=17.*nlist"):
        collection.search(queries, 10, {"nprobe": 17})
    with pytest.raises(InvalidParameterError, match="m=5 does not divide|m=5"):
        collection.create_index("IVF_PQ", {"nlist": 16, "m": 5})
    # nothing reached the server: the IVF_FLAT index is still there and answers
    assert collection.describe_index().index_type == "IVF_FLAT"
    assert collection.search(queries, 10, {"nprobe": 16}).ids.shape == (len(queries), 10)
    collection.create_index("HNSW", {"M": 8, "efConstruction": 32})
    with pytest.raises(InvalidParameterError, match="ef=5"):
        collection.search(queries, 10, {"ef": 5})
    with pytest.raises(IllegalMetricError, match="TANIMOTO"):
        target.create_collection(target.unique_name("t_tanimoto"), 64, metric_type="TANIMOTO")


@pytest.mark.server
def test_a_build_that_does_not_finish_in_time_is_a_server_error(milvus_server, float_data):
    from milvus_lab.server import connect

    base, queries = float_data
    with connect(milvus_server.uri, token=milvus_server.token, build_timeout=0.0) as impatient:
        collection = impatient.create_collection(impatient.unique_name("t_timeout"), 16)
        collection.insert(base)
        with pytest.raises(ServerError) as err:
            collection.create_index("HNSW", {"M": 16, "efConstruction": 200})
        text = str(err.value)
        assert milvus_server.uri in text and "wait for the HNSW build" in text and "did not finish" in text
        assert collection.describe_index().index_type == "FLAT"
    assert not impatient.created


# --------------------------------------------------------------------------------------------------
# Collections the lab did not create are never touched
# --------------------------------------------------------------------------------------------------
@pytest.mark.server
def test_a_collection_the_target_did_not_create_survives(milvus_server, float_data):
    import pymilvus

    from milvus_lab.server import connect

    base, _ = float_data
    alias = f"foreign_{uuid.uuid4().hex[:6]}"
    pymilvus.connections.connect(alias, uri=milvus_server.uri, token=milvus_server.token)
    name = f"foreign_{uuid.uuid4().hex[:8]}"
    schema = pymilvus.CollectionSchema([
        pymilvus.FieldSchema("pk", pymilvus.DataType.INT64, is_primary=True, auto_id=False),
        pymilvus.FieldSchema("v", pymilvus.DataType.FLOAT_VECTOR, dim=16)])
    foreign = pymilvus.Collection(name, schema, using=alias)
    try:
        foreign.insert([list(range(100)), base[:100]])
        foreign.flush()
        target = connect(milvus_server.uri, token=milvus_server.token)
        assert name in target.list_collections() and target.has_collection(name)
        with pytest.raises(AlreadyExistsError, match="does not touch"):
            target.create_collection(name, 16)
        with pytest.raises(ServerError, match="did not create"):
            target.drop_collection(name)
        with pytest.raises(ServerError, match="not created by this target"):
            target.get_collection(name)
        dataset = lab.from_array(base[:2000], base[2000:2050], name="small")
        df = parity(dataset, target, [("IVF_FLAT", {"nlist": 16}, {"nprobe": 4})], latency_queries=5, repeats=1)
        assert df["status_server"].tolist() == ["ok"]
        mine = target.create_collection(target.unique_name("t_mine"), 16)
        assert target.created == [mine.name]
        assert target.close() == []
        assert pymilvus.utility.has_collection(name, using=alias)
        assert not pymilvus.utility.has_collection(mine.name, using=alias)
        assert foreign.num_entities == 100
        assert not [c for c in pymilvus.utility.list_collections(using=alias) if c.startswith("milvus_lab")]
    finally:
        pymilvus.utility.drop_collection(name, using=alias)
        pymilvus.connections.disconnect(alias)


# --------------------------------------------------------------------------------------------------
# The pymilvus 2.x lines work on the server
# --------------------------------------------------------------------------------------------------
@pytest.mark.server
def test_the_code_lines_run_against_the_server(target, milvus_server, float_data):
    import pymilvus

    base, queries = float_data
    collection = target.create_collection(target.unique_name("t_code"), 16)
    collection.insert(base)
    code = pymilvus2_index_code("HNSW", {"M": 12, "efConstruction": 48}, {"ef": 40}, "L2",
                                collection_name=collection.name, uri=milvus_server.uri)
    code = code.replace(f"MilvusClient(uri={milvus_server.uri!r})",
                        f"MilvusClient(uri={milvus_server.uri!r}, token={milvus_server.token!r})")
    namespace = {"queries": queries[:3].tolist()}
    exec(compile(code, "<pymilvus2_index_code>", "exec"), namespace)
    assert len(namespace["results"]) == 3 and len(namespace["results"][0]) == 10
    index = pymilvus.Collection(collection.name, using=target.alias).indexes[0].params
    assert index["index_type"] == "HNSW" and index["metric_type"] == "L2"
    params = index.get("params", index)
    assert int(params["M"]) == 12 and int(params["efConstruction"]) == 48


# --------------------------------------------------------------------------------------------------
# Parity on 20k GloVe
# --------------------------------------------------------------------------------------------------
@pytest.mark.server
@pytest.mark.slow
def test_parity_on_glove_recall_equal_within_a_hundredth(target):
    dataset = lab.load_glove_dataset(20_000, 200)
    settings = [("IVF_FLAT", {"nlist": 256}, {"nprobe": 32}), ("IVF_SQ8", {"nlist": 256}, {"nprobe": 32}),
                ("HNSW", {"M": 16, "efConstruction": 100}, {"ef": 64})]
    df = parity(dataset, target, settings, latency_queries=20, repeats=1)
    assert df["index_type"].tolist() == ["IVF_FLAT", "IVF_SQ8", "HNSW"]
    assert (df["status_memory"] == "ok").all() and (df["status_server"] == "ok").all()
    assert (df["recall_diff"].abs() <= 0.01).all(), df[["index_type", "recall_memory", "recall_server"]]
    assert (df["recall_server"] > 0.8).all()
    for col in ("build_s_memory", "build_s_server", "qps_memory", "qps_server", "p50_ms_server"):
        assert (df[col] > 0).all(), col
    assert df.attrs["server"] == target.describe() and "error" not in df.attrs
    table = parity_markdown(df)
    assert "recall_memory" in table and "IVF_SQ8" in table
    fig = plot_parity(df)
    assert len(fig.axes) == 3 and fig._repr_png_()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------------------------------
# The CLI and a server dying mid-sweep (a server of their own, not the session's)
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def own_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own_server")
    yield folder
    embedded.stop(folder)


@pytest.mark.server
def test_cli_starts_reports_and_stops_the_server_by_pid(own_folder, capsys):
    assert server_main(["start", "--folder", str(own_folder)]) == 0
    out = capsys.readouterr().out
    info = embedded.read_state(own_folder)
    assert info is not None and f"pid {info.pid}" in out and info.uri in out
    assert info.uri.startswith("http://127.0.0.1:")
    assert server_main(["status", "--folder", str(own_folder)]) == 0
    assert "running" in capsys.readouterr().out
    assert server_main(["start", "--folder", str(own_folder)]) == 0  # already running: the same server
    assert "already running" in capsys.readouterr().out and embedded.read_state(own_folder).pid == info.pid
    from milvus_lab.server import connect

    with connect(info.uri) as t:
        assert t.describe().startswith("Milvus v2.3.5")
    assert server_main(["stop", "--folder", str(own_folder)]) == 0
    assert f"stopped Milvus (pid {info.pid})" in capsys.readouterr().out
    assert not embedded._alive(info.pid) and not embedded._alive(info.launcher_pid)
    assert server_main(["status", "--folder", str(own_folder)]) == NOT_RUNNING


@pytest.fixture
def fresh_server(tmp_path):
    """A server of this test's own (it will be killed), stopped by pid at the end whatever happened."""
    info = embedded.start(tmp_path)
    yield info
    embedded.stop(tmp_path)


def _kill_on_second_build(monkeypatch, pid: int) -> list[int]:
    """Make the second create_index on a server collection find its server killed (SIGKILL, by pid); the list
    returned gets one entry per create_index call."""
    calls: list[int] = []
    original = ServerCollection.create_index

    def create_index(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(pid, signal.SIGKILL)
            for _ in range(1200):  # a failure bound only (a minute): SIGKILL ends the process at once
                if not embedded._alive(pid):
                    break
                time.sleep(0.05)
            else:
                pytest.fail(f"the server (pid {pid}) is still alive after SIGKILL")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ServerCollection, "create_index", create_index)
    return calls


@pytest.mark.server
def test_killing_the_server_mid_parity_keeps_the_rows_so_far(fresh_server, monkeypatch):
    from milvus_lab.server import connect

    info = fresh_server
    target = connect(info.uri, timeout=5)
    base = clustered(2000, 16, seed=6)
    dataset = lab.from_array(base, clustered(30, 16, seed=7), name="kill")
    builds = _kill_on_second_build(monkeypatch, info.pid)
    settings = [("IVF_FLAT", {"nlist": 16}, {"nprobe": 4}), ("HNSW", {"M": 8, "efConstruction": 32}, {"ef": 16}),
                ("IVF_SQ8", {"nlist": 16}, {"nprobe": 4})]
    with pytest.warns(lab.LabWarning, match="parity stopped"):
        df = parity(dataset, target, settings, latency_queries=5, repeats=1)
    assert len(builds) == 2  # it stopped at the dead server: the third setting was never sent to it
    assert df["index_type"].tolist() == ["IVF_FLAT", "HNSW"]
    assert df.loc[0, "status_server"] == "ok" and df.loc[0, "recall_server"] > 0.5
    assert df.loc[1, "status_server"] == "server error" and df.loc[1, "status_memory"] == "ok"
    error = df.attrs["error"]
    assert info.uri in error and "failed" in error and "server unavailable" in error
    assert info.uri in df.loc[1, "note"]
    # the collection it created could not be dropped (the server is gone): it says so instead of hanging
    with pytest.raises(ServerError) as err:
        target.list_collections()
    assert info.uri in str(err.value) and "list collections failed" in str(err.value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target.close()


@pytest.mark.server
def test_killing_the_server_mid_compare_keeps_the_rows_so_far(fresh_server, monkeypatch):
    from milvus_lab.server import connect

    info = fresh_server
    target = connect(info.uri, timeout=5)
    dataset = lab.from_array(clustered(2000, 16, seed=8), clustered(30, 16, seed=9), name="kill-compare")
    _kill_on_second_build(monkeypatch, info.pid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = lab.compare(dataset, ["IVF_FLAT", "HNSW"], target=target, budget="quick", latency_queries=5,
                         repeats=1, progress=False)
    assert "error" in df.attrs and info.uri in df.attrs["error"]
    measured = df[df["status"] == "ok"]
    assert len(measured) >= 1 and set(measured["index_type"]) == {"IVF_FLAT"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target.close()
