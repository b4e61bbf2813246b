"""The forms on a real Milvus 2.3 server collection (issue 10.3): the server's index types and ranges, create,
search and drop through the protocol. Marked ``server`` (the session's embedded server, conftest.py)."""

from __future__ import annotations

import pytest
from conftest import clustered

from milvus_lab import spec
from milvus_lab.widgets import app

pytestmark = pytest.mark.server

DIM = 48


@pytest.fixture(scope="module")
def server_collection(milvus_server):
    from milvus_lab.server import connect

    target = connect(milvus_server.uri, token=milvus_server.token)
    collection = target.create_collection(target.unique_name("forms"), DIM, metric_type="L2")
    base = clustered(2000, DIM, seed=11)
    collection.insert(base)
    yield collection, base
    target.close()


def test_the_app_on_a_server_collection_uses_the_servers_rules(server_collection):
    collection, base = server_collection
    server = spec.PROFILES[spec.SERVER_PROFILE]
    a = app(collection, vectors=base, watch=False)
    form = a.index_form
    for missing, why in server.unavailable.items():  # listed, with the reason, never buildable
        form.select(missing)
        assert why in form.problem.text and form.create_button.disabled
    form.select("HNSW")
    form.fields["M"].value = 100  # beyond Milvus 0.10's range, inside Milvus 2.3's
    form.fields["efConstruction"].value = 64
    assert form.validate() == {}
    assert form.create() is not None, form.message.text
    assert collection.describe_index().index_type == "HNSW"
    ef = a.search_form.fields["ef"]
    assert ef.bounds == spec.bounds(server.indexes["HNSW"].search["ef"], spec.search_context(10, {}))
    ef.value = 5  # below top_k: the server would fail at search time; the form refuses first
    assert "ef" in a.search_form.errors
    ef.value = 64
    shown = a.search_form.search()
    assert shown is not None and shown["ids"][0] == 0 and shown["recall"] is not None
    assert "Milvus 2.3" in a.panel.html.value and "HNSW" in a.panel.html.value
    assert form.drop() and collection.describe_index().index_type == "FLAT"
    assert a.search_form.fields == {} and a.search_form.results.value == ""
    a.close()


def test_the_explorer_on_a_server_collection(server_collection):
    from milvus_lab.widgets import explorer

    collection, base = server_collection
    ex = explorer(collection, vectors=base, n_queries=50, index_type="IVF_FLAT")
    ex.form.fields["nlist"].value = 32
    assert ex.form.create() is not None, ex.form.message.text
    nprobe = spec.PROFILES[spec.SERVER_PROFILE].indexes["IVF_FLAT"].search["nprobe"]
    assert (ex.slider.min, ex.slider.max) == spec.bounds(nprobe, spec.search_context(10, {"nlist": 32}))
    ex.slider.value = 32
    assert ex.last["search"] == {"nprobe": 32} and ex.last["recall"] == 1.0
    ex.slider.value = 1
    assert ex.last["search"] == {"nprobe": 1} and ex.last["recall"] <= 1.0 and ex.builds == 1
    assert set(ex.points[("IVF_FLAT", (("nlist", 32),))]) >= {1, 32}
    assert collection.drop_index() is None
    ex.close()
