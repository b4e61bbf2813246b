"""Issue 11 in the forms, without a browser: busy states (a double-click builds once, a search during a
build is refused), stale results cleared, messages that say what is there, labelled distances, a panel
that explains itself, forms on a collection with the server's rules, and the live explorer."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import clustered
from helpers import ProtocolCollection

from milvus_lab import Engine, numerics, spec
from milvus_lab.protocol import IndexInfo
from milvus_lab.widgets import app, explorer
from milvus_lab.widgets.panel import STATE_HELP

DIM = 48
ROWS = 3000


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    return clustered(ROWS, DIM, clusters=30, seed=5)


@pytest.fixture
def coll(base):
    engine = Engine(build_threshold=1)
    c = engine.create_collection("lesson", DIM, index_file_size=1)
    c.insert(base)
    yield c
    engine.close()


class SlowBuilds:
    """Wraps a collection's create_index: counts the builds and holds each until ``release`` is set."""

    def __init__(self, collection, monkeypatch):
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()
        real = collection.create_index

        def create_index(index_type, params=None, *, progress=None):
            self.calls += 1
            self.started.set()
            assert self.release.wait(30), "the test never released the build"
            return real(index_type, params, progress=progress)

        monkeypatch.setattr(collection, "create_index", create_index)


def choose(form, index_type, **values):
    form.select(index_type)
    for name, value in values.items():
        form.fields[name].value = value


# ------------------------------------------------------------------------------------------ busy states
def test_a_double_click_on_create_builds_once_and_the_form_is_read_only_meanwhile(coll, base, monkeypatch):
    slow = SlowBuilds(coll, monkeypatch)
    a = app(coll, vectors=base, watch=False)
    form = a.index_form
    choose(form, "IVF_FLAT", nlist=32)
    form.create_button.click()
    form.create_button.click()  # the second click of a double-click
    assert slow.started.wait(10)
    assert form.busy and form.create_button.disabled and form.drop_button.disabled
    assert form.type_dropdown.disabled and all(f.input.disabled for f in form.fields.values())
    assert "is ignored" in form.message.text
    form.create()  # a programmatic create while busy is ignored too
    slow.release.set()
    assert form.wait(60)
    assert slow.calls == 1 and form.builds == 1
    assert coll.describe_index() == IndexInfo("IVF_FLAT", {"nlist": 32})
    assert not form.busy and not form.create_button.disabled
    assert not any(f.input.disabled for f in form.fields.values())
    a.close()


def test_a_search_during_a_build_is_refused_with_a_message_and_no_old_results(coll, base, monkeypatch):
    a = app(coll, vectors=base, watch=False)
    assert a.search_form.search() is not None and a.search_form.results.value
    slow = SlowBuilds(coll, monkeypatch)
    choose(a.index_form, "HNSW", M=8, efConstruction=32)
    a.index_form.create_button.click()
    assert slow.started.wait(10)
    assert a.search_form.results.value == "", "the old table is gone as soon as the build starts"
    a.search_form.search_button.click()
    assert a.search_form.last is None and a.search_form.results.value == ""
    assert a.search_form.message.kind == "error"
    assert "being built" in a.search_form.message.text and "Search again when the build ends" in \
        a.search_form.message.text
    assert "Building HNSW" in a.panel.html.value and "segments are shown when the build ends" in a.panel.html.value
    assert "open" not in a.panel.html.value, "no stale segment state during the build"
    slow.release.set()
    assert a.index_form.wait(60)
    shown = a.search_form.search()
    assert shown is not None and shown["index_type"] == "HNSW"
    assert "Building" not in a.panel.html.value
    a.close()


def test_the_elapsed_line_moves_during_a_one_segment_build(coll, monkeypatch):
    slow = SlowBuilds(coll, monkeypatch)
    a = app(coll, watch=False)
    choose(a.index_form, "IVF_FLAT", nlist=32)
    a.index_form.create_button.click()
    assert slow.started.wait(10)
    seen = set()
    deadline = time.monotonic() + 120  # a failure bound only: the loop ends as soon as the line has moved
    while time.monotonic() < deadline and len({s for s in seen if "building..." in s}) < 2:
        seen.add(a.index_form.elapsed.value)
        time.sleep(0.1)
    slow.release.set()
    assert a.index_form.wait(60)
    assert len({s for s in seen if "building..." in s}) >= 2, seen
    assert a.index_form.elapsed.value == ""
    a.close()


# ------------------------------------------------------------------------------------------ stale results
def test_old_results_are_cleared_under_a_refusal_after_drop_and_after_a_new_index(coll, base):
    words = [f"w{i}" for i in range(ROWS)]
    a = app(coll, vectors=base, words=words, query="w1", watch=False)
    s = a.search_form

    def searched() -> None:
        s.query.value = "w1"
        assert s.search() is not None and "<table" in s.results.value

    searched()
    s.query.value = "notaword"
    assert s.search() is None and "'notaword' is not among" in s.message.text
    assert s.results.value == "" and s.last is None
    searched()
    choose(a.index_form, "IVF_FLAT", nlist=32)
    assert a.index_form.create() is not None
    assert s.results.value == "" and s.last is None, "results of FLAT do not describe the new IVF_FLAT"
    searched()
    choose(a.index_form, "IVF_SQ8", nlist=16)
    assert a.index_form.create() is not None
    assert s.results.value == ""
    searched()
    assert a.index_form.drop()
    assert s.results.value == "" and s.last is None
    a.close()


# ------------------------------------------------------------------------------------------ messages
def test_top_k_is_refused_with_the_engines_sentence_and_an_empty_box_says_so(coll):
    from milvus_lab.errors import IllegalTopKError

    a = app(coll, watch=False)
    s = a.search_form
    s.top_k.value = "0"
    with pytest.raises(IllegalTopKError) as refused:  # status code ILLEGAL_TOPK, as the engine raises
        coll.search(np.zeros((1, DIM), np.float32), 0)
    assert s.errors == {"top_k": refused.value.message}
    s.top_k.value = ""
    assert s.errors["top_k"].startswith("top_k is empty; allowed: 1 <= top_k <= ")
    s.top_k.value = "5"
    assert s.errors == {}
    a.close()


def test_a_refused_candidate_pool_size_does_not_blame_a_valid_search_length(coll):
    a = app(coll, watch=False)
    choose(a.index_form, "RNSG", candidate_pool_size=40, search_length=45)
    errors = a.index_form.validate()
    assert list(errors) == ["candidate_pool_size"]
    assert a.index_form.fields["search_length"].message.text == ""
    a.index_form.fields["candidate_pool_size"].value = 300
    assert a.index_form.validate() == {}
    a.index_form.fields["candidate_pool_size"].value = 60  # a valid pool: now the cross-rule applies
    a.index_form.fields["search_length"].value = 60
    assert list(a.index_form.validate()) == ["search_length"]
    a.close()


def test_rnsg_search_length_below_top_k_says_the_value_used(coll, base):
    """Never raised silently: the field and the result say which search_length is used, and why (the spec's
    effective_value and used_help)."""
    coll.create_index("RNSG", spec.default_build_params("RNSG"))
    a = app(coll, vectors=base, watch=False)
    s = a.search_form
    s.top_k.value = 100
    s.fields["search_length"].value = 10
    param = spec.INDEXES["RNSG"].search["search_length"]
    used = spec.effective_value(param, 10, spec.search_context(100, coll.describe_index().params))
    assert used == 100 and s.errors == {}
    field = s.fields["search_length"]
    assert field.message.kind == "warning"
    assert field.message.text == f"search_length=10 is searched as search_length=100 ({param.used_help})"
    shown = s.search()
    assert shown["used"] == {"search_length": 100}
    assert f"search_length=10 was searched as search_length=100 ({param.used_help})." in s.message.text
    s.fields["search_length"].value = 150
    assert field.message.text == "" and s.search()["used"] == {}
    a.close()


def test_notes_about_other_metrics_are_not_shown(coll):
    a = app(coll, watch=False)
    a.index_form.select("IVF_FLAT")
    assert "JACCARD" not in a.index_form.description.value
    engine = Engine()
    bits = engine.create_collection("bits", 64, metric_type="JACCARD")
    bits.insert(np.random.default_rng(0).integers(0, 256, (300, 8), dtype=np.uint8))
    b = app(bits, watch=False)
    b.index_form.select("IVF_FLAT")
    assert "JACCARD" in b.index_form.description.value
    a.close()
    b.close()


def test_help_lines_wrap_as_whole_lines():
    """The range sits beside the input or on its own line below it, never squeezed one word per line."""
    engine = Engine()
    c = engine.create_collection("help", DIM)
    a = app(c, watch=False)
    a.index_form.select("RNSG")
    field = a.index_form.fields["knng"]
    assert field.box.children[0].layout.flex_flow == "row wrap"
    assert field.allowed.layout.min_width == "280px"
    assert "white-space:nowrap" in field.allowed.value and "knng = out_degree + 20" in field.allowed.value
    a.close()


@pytest.mark.parametrize("metric, label", [("L2", "squared L2 distance"), ("IP", "inner product")])
def test_distances_are_labelled_by_the_metric(base, metric, label):
    engine = Engine(build_threshold=1)
    c = engine.create_collection("dist", DIM, metric_type=metric)
    c.insert(base)
    a = app(c, vectors=base, watch=False)
    a.search_form.search()
    assert f">{label}<" in a.search_form.results.value
    assert "(approximate)" not in a.search_form.results.value
    a.close()


def test_pq_distances_are_marked_approximate_with_the_exact_value_beside(coll, base):
    coll.create_index("IVF_PQ", {"nlist": 32, "m": 8})
    a = app(coll, vectors=base, watch=False, query=5)
    shown = a.search_form.search()
    assert "squared L2 distance (approximate)" in a.search_form.results.value
    assert ">exact<" in a.search_form.results.value
    assert "approximate" in a.search_form.message.text
    assert shown["ids"][0] == 5 and shown["exact_distances"][0] == 0.0 and shown["distances"][0] != 0.0
    a.close()


def test_the_panel_explains_segment_states_and_raw_reasons_from_the_spec(base):
    engine = Engine()  # the default build threshold (4,096 rows): a 3,000-row segment stays raw
    c = engine.create_collection("panel", DIM, index_file_size=1)
    c.insert(base)
    c.flush()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c.create_index("IVF_FLAT", {"nlist": 32})
    a = app(c, watch=False)
    page = a.panel.html.value
    assert STATE_HELP in page
    reason = spec.segment_raw_reason("IVF_FLAT", {"nlist": 32}, ROWS, build_threshold=c.build_threshold)
    assert reason and reason in page
    a.close()


# ------------------------------------------------------------------------------------------ server rules
def test_forms_on_a_server_collection_show_the_servers_types_and_ranges(coll, base):
    # only the protocol's verbs, with the Milvus 2.3 profile (an in-memory collection underneath, so builds that
    # both accept run)
    server = ProtocolCollection(coll, profile=spec.SERVER_PROFILE)
    a = app(server, vectors=base, watch=False)
    prof = spec.PROFILES[spec.SERVER_PROFILE]
    offered = [v for _label, v in a.index_form.type_dropdown.options]
    for missing, why in prof.unavailable.items():
        assert missing in offered
        a.index_form.select(missing)
        assert why in a.index_form.problem.text and a.index_form.create_button.disabled
    a.index_form.select("HNSW")
    m = a.index_form.fields["M"]
    assert m.bounds == spec.bounds(prof.indexes["HNSW"].build["M"], {"dim": DIM})
    assert m.bounds != spec.bounds(spec.INDEXES["HNSW"].build["M"], {"dim": DIM})
    assert "Milvus 2.3" in a.panel.html.value
    choose(a.index_form, "IVF_FLAT", nlist=32)
    assert a.index_form.create() is not None
    nprobe = a.search_form.fields["nprobe"]
    assert nprobe.bounds == (1, 32)
    nprobe.value = 33
    assert "nprobe" in a.search_form.errors
    nprobe.value = 32
    assert a.search_form.search()["recall"] == 1.0
    a.close()


# ------------------------------------------------------------------------------------------ explorer
@pytest.mark.slow
def test_the_explorer_builds_once_and_the_slider_drives_the_search_on_glove():
    from milvus_lab.datasets import load_glove

    vectors, words = load_glove(20_000)
    ex = explorer(vectors, words, word="king", n_queries=100, index_type="IVF_FLAT")
    ex.form.fields["nlist"].value = 128
    assert ex.form.create() is not None and ex.builds == 1
    nprobe = spec.INDEXES["IVF_FLAT"].search["nprobe"]
    assert (ex.slider.min, ex.slider.max) == spec.bounds(nprobe, spec.search_context(10, {"nlist": 128}))
    assert ex.param == "nprobe"
    recalls = []
    for value in (1, 4, 16, 64, 128):
        ex.slider.value = value  # as a drag does: the observer runs the search before the assignment returns
        assert ex.last["search"] == {"nprobe": value}
        recalls.append(ex.last["recall"])
    assert ex.builds == 1, "moving the slider never rebuilds"
    assert recalls == sorted(recalls) and recalls[-1] == 1.0
    truth, _ = numerics.exact_knn(ex.vectors, ex.queries, 10, "L2")
    found = ex.collection.search(ex.queries, 10, {"nprobe": 4}).ids
    assert ex.points[("IVF_FLAT", (("nlist", 128),))][4][0] == pytest.approx(
        numerics.recall(found, truth, 10, base=ex.vectors, queries=ex.queries, metric="L2"))
    assert set(ex.points[("IVF_FLAT", (("nlist", 128),))]) >= {1, 4, 16, 64, 128}
    assert "queen" in ex.last["neighbours"] or "prince" in ex.last["neighbours"]
    assert ex.plot.value.startswith("<svg") and "nprobe=128, recall 1.00" in ex.plot.value
    assert ex.plot.value.count("<circle") == len(ex.points[("IVF_FLAT", (("nlist", 128),))])
    ex.form.select("HNSW")
    ex.form.fields["M"].value = 8
    ex.form.fields["efConstruction"].value = 40
    assert ex.form.create() is not None and ex.builds == 2
    ef = spec.INDEXES["HNSW"].search["ef"]
    assert ex.param == "ef" and (ex.slider.min, ex.slider.max) == spec.bounds(ef, spec.search_context(10, {}))
    ex.close()
