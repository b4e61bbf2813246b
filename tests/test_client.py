"""The pymilvus 0.2.x facade: scripts written for pymilvus run after changing the import."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from conftest import clustered

from milvus_lab import IndexType, MetricType, Milvus, ParamError, Status
from milvus_lab.errors import StatusCode


@pytest.fixture
def milvus():
    client = Milvus()
    yield client
    client.close()


def test_star_import_brings_the_four_names():
    namespace: dict = {}
    exec("from milvus_lab import *", namespace)
    assert {"Milvus", "IndexType", "MetricType", "Status"} <= set(namespace)
    assert not {"Engine", "spec"} & set(namespace)


def test_enums_match_pymilvus():
    assert [(m.name, m.value) for m in IndexType][:9] == [
        ("INVALID", 0), ("FLAT", 1), ("IVFLAT", 2), ("IVF_SQ8", 3), ("RNSG", 4), ("IVF_SQ8H", 5),
        ("IVF_PQ", 6), ("HNSW", 11), ("ANNOY", 12)]
    assert IndexType.IVF_FLAT is IndexType.IVFLAT and IndexType.IVF_SQ8_H is IndexType.IVF_SQ8H
    assert str(MetricType.L2) == "L2" and MetricType.SUPERSTRUCTURE == 7
    assert bool(Status()) and not bool(Status(5, "x")) and Status(5, "x").code == Status.ILLEGAL_ARGUMENT


def test_seed_snippet_runs_unchanged(milvus):
    status = milvus.create_collection({"collection_name": "test01", "dimension": 128, "index_file_size": 1024,
                                       "metric_type": MetricType.L2})
    assert status.OK()
    vectors = [[random.random() for _ in range(128)] for _ in range(2000)]
    status, ids = milvus.insert("test01", vectors)
    assert status.OK() and isinstance(ids, list) and len(ids) == 2000 and isinstance(ids[0], int)
    assert milvus.flush(["test01"]).OK()
    assert milvus.create_index('test01', IndexType.IVF_FLAT, {'nlist': 16384}).OK()
    status, info = milvus.get_index_info("test01")
    assert info.index_type == IndexType.IVF_FLAT and info.params == {"nlist": 16384}
    assert info.collection_name == "test01" and "IVFLAT" in repr(info)
    # 2000 rows < nlist: the segment stays raw and the stats say so (never silent)
    _, stats = milvus.get_collection_stats("test01")
    assert stats["partitions"][0]["segments"][0]["index_name"] == "FLAT"
    status, results = milvus.search("test01", 5, vectors[:3], params={"nprobe": 16})
    assert status.OK() and results.id_array[0][0] == ids[0]
    assert milvus.drop_index('test01').OK()
    assert milvus.get_index_info("test01")[1].index_type == IndexType.FLAT


def test_collection_calls_and_stats_layout(milvus):
    assert milvus.create_collection({"collection_name": "c1", "dimension": 8}).OK()
    st = milvus.create_collection({"collection_name": "c1", "dimension": 8})
    assert not st.OK()
    assert milvus.has_collection("c1") == (Status(), True)
    assert milvus.has_collection("nope")[1] is False
    _, schema = milvus.get_collection_info("c1")
    assert (schema.collection_name, schema.dimension, schema.index_file_size, schema.metric_type) == (
        "c1", 8, 1024, MetricType.L2)
    assert "CollectionSchema" in repr(schema)
    assert milvus.list_collections()[1] == ["c1"]
    assert milvus.create_partition("c1", "tag1").OK()
    assert not milvus.create_partition("c1", "tag1").OK()
    assert milvus.has_partition("c1", "tag1") == (Status(), True)
    assert milvus.has_partition("c1", "zzz")[0].OK() and milvus.has_partition("c1", "zzz")[1] is False
    _, parts = milvus.list_partitions("c1")
    assert [(p.collection_name, p.tag) for p in parts] == [("c1", "_default"), ("c1", "tag1")]
    milvus.insert("c1", np.ones((3, 8), np.float32), partition_tag="tag1")
    milvus.insert("c1", np.zeros((2, 8), np.float32))
    assert milvus.count_entities("c1") == (Status(), 5)
    _, stats = milvus.get_collection_stats("c1")
    assert stats["row_count"] == 5
    assert [p["tag"] for p in stats["partitions"]] == ["_default", "tag1"]
    seg = stats["partitions"][1]["segments"][0]
    assert set(seg) == {"name", "row_count", "index_name", "data_size"}
    assert seg["row_count"] == 3 and seg["data_size"] == 3 * 8 * 4 and seg["index_name"] == "FLAT"
    assert milvus.list_id_in_segment("c1", seg["name"])[1] == [0, 1, 2]
    assert not milvus.list_id_in_segment("c1", "12345")[0].OK()
    assert milvus.load_collection("c1").OK()
    assert milvus.drop_partition("c1", "tag1").OK()
    assert milvus.drop_collection("c1").OK()
    assert milvus.count_entities("c1")[0].code == StatusCode.COLLECTION_NOT_EXISTS


def test_search_results_shape_padding_and_printing(milvus):
    milvus.create_collection({"collection_name": "s", "dimension": 4, "metric_type": MetricType.IP})
    milvus.insert("s", [[1, 0, 0, 0], [0, 1, 0, 0]], ids=[10, 20])
    status, res = milvus.search("s", 3, [[1, 0, 0, 0], [0, 1, 0, 0]])
    assert status.OK() and len(res) == 2 and res.shape == (2, 3)
    assert res.id_array[0] == [10, 20, -1] and res.distance_array[0][2] == float("-inf")
    assert [h.id for h in res[0]] == [10, 20] and len(res[0]) == 2
    assert res[1][0].id == 20 and res[1][0].distance == pytest.approx(1.0)
    text = repr(res)
    assert "id:10" in text and "TopKQueryResult" in text


def test_delete_then_search_and_get_entity(milvus):
    milvus.create_collection({"collection_name": "d", "dimension": 16})
    data = clustered(300, 16)
    _, ids = milvus.insert("d", data.tolist())
    _, ent = milvus.get_entity_by_id("d", [ids[3], 10**9])
    assert ent[0] == pytest.approx(data[3].tolist()) and ent[1] == []
    assert milvus.delete_entity_by_id("d", [ids[3]]).OK()
    assert milvus.flush().OK()
    _, res = milvus.search("d", 1, [data[3].tolist()])
    assert res.id_array[0][0] != ids[3]
    assert milvus.compact("d").OK()
    assert milvus.count_entities("d")[1] == 299
    milvus.create_collection({"collection_name": "empty", "dimension": 16})
    assert not milvus.get_entity_by_id("empty", [1])[0].OK()


def test_binary_collection(milvus):
    assert milvus.create_collection({"collection_name": "b", "dimension": 64,
                                     "metric_type": MetricType.JACCARD}).OK()
    rng = np.random.default_rng(0)
    rows = [bytes(rng.integers(0, 256, 8, dtype=np.uint8)) for _ in range(100)]
    status, ids = milvus.insert("b", rows)
    assert status.OK()
    status, res = milvus.search("b", 3, rows[:2])
    assert status.OK() and res.id_array[0][0] == ids[0] and res.distance_array[0][0] == pytest.approx(0)
    assert milvus.get_entity_by_id("b", [ids[5]])[1][0] == rows[5]
    st = milvus.create_index("b", IndexType.HNSW, {"M": 16, "efConstruction": 40})
    assert st.code == StatusCode.ILLEGAL_INDEX_TYPE
    assert milvus.create_index("b", IndexType.IVF_FLAT, {"nlist": 4}).OK()
    st, _ = milvus.insert("b", [[1.0] * 64])
    assert not st.OK()


def test_index_examples_from_the_docs(milvus):
    milvus.create_collection({"collection_name": "docs", "dimension": 48})
    milvus.insert("docs", clustered(500, 48).tolist())
    examples = [
        (IndexType.IVF_FLAT, {"nlist": 16384}), (IndexType.IVF_SQ8, {"nlist": 16384}),
        (IndexType.IVF_SQ8H, {"nlist": 16384}), (IndexType.IVF_PQ, {"nlist": 16384, "m": 12}),
        (IndexType.RNSG, {"search_length": 45, "out_degree": 50, "candidate_pool_size": 300, "knng": 100}),
        (IndexType.HNSW, {"M": 16, "efConstruction": 500}), (IndexType.ANNOY, {"n_trees": 8}),
        (IndexType.FLAT, None),
    ]
    for index_type, params in examples:
        assert milvus.create_index("docs", index_type, params).OK(), index_type
        assert milvus.get_index_info("docs")[1].index_type == index_type


TYPE_ERRORS = [
    lambda m: m.create_collection({"collection_name": 3, "dimension": 8}),
    lambda m: m.create_collection({"collection_name": "x", "dimension": "8"}),
    lambda m: m.create_collection({"collection_name": "x", "dimension": True}),
    lambda m: m.create_collection({"collection_name": "x", "dimension": 8, "index_file_size": 1.5}),
    lambda m: m.create_collection({"collection_name": "x", "dimension": 8, "metric_type": MetricType.INVALID}),
    lambda m: m.create_collection({"collection_name": "x", "dimension": 8, "metric_type": 100}),
    lambda m: m.create_collection({"collection_name": "x"}),
    lambda m: m.has_collection(""),
    lambda m: m.has_collection(None),
    lambda m: m.count_entities(["ghost"]),
    lambda m: m.create_index("ghost", IndexType.INVALID, {}),
    lambda m: m.create_index("ghost", -1, {}),
    lambda m: m.create_index("ghost", 100, {}),
    lambda m: m.create_index("ghost", "", {}),
    lambda m: m.create_index("ghost", IndexType.IVF_FLAT, [("nlist", 4)]),
    lambda m: m.insert("ghost", []),
    lambda m: m.insert("ghost", [[1, 2], [1]]),
    lambda m: m.insert("ghost", "abc"),
    lambda m: m.insert("ghost", [[1, 2]], ids=[1, 2]),
    lambda m: m.insert("ghost", [[1, 2]], ids=[-5]),
    lambda m: m.insert("ghost", [[1, 2]], ids=[2**63]),
    lambda m: m.insert("ghost", [[1, 2]], ids=["1"]),
    lambda m: m.insert("ghost", [[1, 2]], partition_tag=5),
    lambda m: m.search("ghost", "10", [[1, 2]]),
    lambda m: m.search("ghost", True, [[1, 2]]),
    lambda m: m.search("ghost", 10, [[1, 2]], params="nprobe=1"),
    lambda m: m.search("ghost", 10, []),
    lambda m: m.delete_entity_by_id("ghost", []),
    lambda m: m.get_entity_by_id("ghost", None),
    lambda m: m.list_id_in_segment("ghost", 3),
    lambda m: m.search_in_segment("ghost", ["a"], [[1, 2]], 3),
    lambda m: m.has_partition("ghost", 3),
]


@pytest.mark.parametrize("call", TYPE_ERRORS)
def test_wrong_types_raise_param_error_before_existence_checks(milvus, call):
    with pytest.raises(ParamError):
        call(milvus)


def test_rule_violations_return_status(milvus):
    milvus.create_collection({"collection_name": "r", "dimension": 8})
    milvus.insert("r", np.ones((10, 8)).tolist())
    cases = {
        StatusCode.COLLECTION_NOT_EXISTS: milvus.search("ghost", 3, [[0.0] * 8])[0],
        StatusCode.ILLEGAL_TOPK: milvus.search("r", 0, [[0.0] * 8])[0],
        StatusCode.ILLEGAL_DIMENSION: milvus.insert("r", [[0.0] * 9])[0],
        StatusCode.ILLEGAL_ROWRECORD: milvus.insert("r", [[float("nan")] * 8])[0],
        StatusCode.ILLEGAL_COLLECTION_NAME: milvus.create_collection({"collection_name": "1x", "dimension": 8}),
        StatusCode.ILLEGAL_NLIST: milvus.create_index("r", IndexType.IVF_FLAT, {"nlist": 0}),
        StatusCode.ILLEGAL_VECTOR_ID: milvus.insert("r", [[0.0] * 8], ids=[1])[0],
    }
    for code, status in cases.items():
        assert status.code == code, (code, status)
        assert status.message
    assert milvus.count_entities("r")[1] == 10


def test_async_and_callback(milvus):
    milvus.create_collection({"collection_name": "a", "dimension": 4})
    seen = []
    future = milvus.insert("a", [[1, 2, 3, 4]], _async=True, _callback=lambda st, ids: seen.append(ids))
    status, ids = future.result()
    assert status.OK() and future.done() and seen == [ids]
    assert milvus.flush(["a"], _async=True).result().OK()
    assert milvus.create_index("a", IndexType.HNSW, {"M": 8, "efConstruction": 20}, _async=True).result().OK()
    status, res = milvus.search("a", 1, [[1, 2, 3, 4]], params={"ef": 10}, _async=True).result()
    assert res.id_array == [[ids[0]]]
    assert milvus.compact("a", _async=True).result().OK()


def test_search_in_segment(milvus):
    milvus.create_collection({"collection_name": "seg", "dimension": 64, "index_file_size": 1})
    data = clustered(5000, 64)
    milvus.insert("seg", data)
    _, stats = milvus.get_collection_stats("seg")
    names = [s["name"] for s in stats["partitions"][0]["segments"]]
    assert names == ["1", "2"]
    status, res = milvus.search_in_segment("seg", [2], data[4096:4100], 1)
    assert status.OK() and [row[0].id for row in res] == [4096, 4097, 4098, 4099]
    status, res = milvus.search_in_segment("seg", ["1"], data[4096:4097], 1)
    assert res[0][0].id < 4096
    assert not milvus.search_in_segment("seg", [99], data[:1], 1)[0].OK()


def test_many_threads_on_one_client(milvus):
    errors = []

    def work(i):
        try:
            assert milvus.create_collection({"collection_name": f"t{i}", "dimension": 8}).OK()
            status, _ = milvus.insert(f"t{i}", np.random.random((50, 8)).tolist())
            assert status.OK()
            assert milvus.search(f"t{i}", 3, np.random.random((2, 8)).tolist())[0].OK()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(milvus.list_collections()[1]) == sorted(f"t{i}" for i in range(10))


def test_constructor_refuses_a_server():
    with pytest.raises(ParamError, match="in memory"):
        Milvus(host="localhost", port="19530")
