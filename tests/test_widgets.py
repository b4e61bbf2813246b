"""The widget forms without a browser: fields and bounds come from the spec, handlers act on the engine,
refused values are never clamped and leave the collection unchanged."""

from __future__ import annotations

import re
import time

import ipywidgets as widgets
import numpy as np
import pytest
from conftest import clustered
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import examples

from milvus_lab import Engine, spec
from milvus_lab.errors import BuildIndexError, InvalidParameterError, RawSegmentWarning
from milvus_lab.widgets import App, CollectionPanel, IndexForm, SearchForm, app, collection_html
from milvus_lab.spec import TOP_K_PARAM

DIM = 48
ROWS = 3000
#: small enough to build fast on ROWS rows (the spec's teaching default 1024 would too, but slower)
FAST = {"nlist": 32}


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    return clustered(ROWS, DIM, clusters=30, seed=5)


#: the shared `engine` fixture (conftest) builds an index once a segment holds this many rows
ENGINE_BUILD_THRESHOLD = 1


@pytest.fixture
def coll(engine, base):
    c = engine.create_collection("forms", DIM, index_file_size=1)
    c.insert(base)
    return c


@pytest.fixture
def form(coll):
    f = IndexForm(coll, watch=False)
    yield f
    f.close()


def click_create(form) -> None:
    """Click Create as a person does (the build runs in the background) and wait for it."""
    form.create_button.click()
    assert form.wait(120)


def spec_ctx(c, **params) -> dict:
    return {"dim": c.dimension, "metric": c.metric, **params}


def state(c) -> tuple:
    return c.index_type, c.index_params, [(s["name"], s["index_name"], s["row_count"]) for s in c.segments()]


def fast_values(index_type: str, dim: int = DIM) -> dict[str, int]:
    values = spec.default_build_params(index_type, dim)
    return {k: FAST.get(k, v) for k, v in values.items()}


# ------------------------------------------------------------------------------------------ the index form
@pytest.mark.parametrize("metric,dim", [("L2", 48), ("IP", 64), ("HAMMING", 64), ("JACCARD", 64),
                                        ("SUBSTRUCTURE", 64)])
def test_type_dropdown_offers_the_index_types_of_the_metric(engine, metric, dim):
    c = engine.create_collection(f"m_{metric}", dim, metric_type=metric)
    f = IndexForm(c, watch=False)
    assert [value for _label, value in f.type_dropdown.options] == spec.index_types_for_metric(metric)
    f.close()


@pytest.mark.parametrize("index_type", spec.INDEX_TYPES)
def test_fields_and_bounds_equal_the_spec(form, coll, index_type):
    index_spec = spec.INDEXES[index_type]
    form.select(index_type)
    assert form.index_type == index_type
    assert list(form.fields) == list(index_spec.build)
    defaults = spec.default_build_params(index_type, coll.dimension)
    ctx = spec_ctx(coll, **defaults)
    for name, param in index_spec.build.items():
        field = form.fields[name]
        assert field.param is param
        assert field.value == defaults[name], "the teaching default is filled in"
        assert param.help in field.help.value
        assert field.allowed_text == spec.describe_allowed(param, ctx)
        if param.choices is not None:
            assert isinstance(field.input, widgets.Dropdown)
            assert field.options == spec.allowed_values(param, ctx)
        else:
            # a free text box checked against the spec: no widget that clamps what a person types
            assert isinstance(field.input, widgets.Text)
            assert field.bounds == spec.bounds(param, ctx)
        if param.recommended:
            assert f"{param.recommended[0]}..{param.recommended[1]}" in field.allowed.value
    assert form.errors == {}
    assert not form.create_button.disabled


def test_ivf_pq_m_offers_only_values_valid_for_the_dimension(engine):
    for dim in (48, 64, 96, 128, 10):
        c = engine.create_collection(f"pq{dim}", dim)
        f = IndexForm(c, "IVF_PQ", watch=False)
        m = spec.INDEXES["IVF_PQ"].build["m"]
        assert f.fields["m"].options == spec.allowed_values(m, {"dim": dim})
        assert f.fields["m"].options, f"dim {dim} admits IVF_PQ"
        assert all(dim % v == 0 and dim // v in spec.PQ_SUBVECTOR_DIMS for v in f.fields["m"].options)
        f.close()


def test_ivf_pq_on_50d_says_plainly_it_cannot_index_and_refuses(engine, base):
    c = engine.create_collection("glove_like", 50)
    c.insert(clustered(500, 50))
    f = IndexForm(c, watch=False)
    label = {v: k for k, v in f.type_dropdown.options}["IVF_PQ"]
    assert "unavailable" in label
    f.select("IVF_PQ")
    reason = spec.unavailable_reason("IVF_PQ", dim=50, metric="L2")
    assert reason and f.problem.text == reason, "one sentence, from the spec"
    assert f.fields == {}, "no field offers a value that is not there"
    assert "m=8" not in f.problem.text and "{}" not in f.problem.text
    assert f.create_button.disabled
    before = state(c)
    assert f.create() is None
    assert f.message.kind == "error" and f.message.text == f"Not created: {reason}"
    assert state(c) == before
    f.close()


@pytest.mark.parametrize("typed", ["70000", "0", "-5", "65537", "abc", "12.5", "1e3", ""])
def test_out_of_range_nlist_is_refused_with_the_reason_never_clamped(form, coll, typed):
    form.select("IVF_FLAT")
    before = state(coll)
    form.fields["nlist"].input.value = typed  # as typed in the browser
    assert form.fields["nlist"].input.value == typed, "the typed value is kept, not clamped"
    value = int(typed) if typed.lstrip("-").isdigit() else typed
    with pytest.raises(InvalidParameterError) as refused:
        spec.check_value("IVF_FLAT", spec.INDEXES["IVF_FLAT"].build["nlist"], value, spec_ctx(coll))
    expected = refused.value.message
    if typed == "":
        expected = f"nlist is empty; allowed: {spec.describe_allowed(form.fields['nlist'].param, spec_ctx(coll))}"
    assert form.fields["nlist"].message.text == expected
    assert form.fields["nlist"].message.kind == "error"
    assert form.errors == {"nlist": expected}
    assert form.create_button.disabled
    assert "refused: nlist" in form.problem.text
    form.create_button.click()  # a click that gets through anyway is refused by the handler
    assert form.wait(10)
    assert form.message.kind == "error" and expected in form.message.text
    assert state(coll) == before
    form.fields["nlist"].value = 16
    assert form.errors == {} and not form.create_button.disabled


@settings(max_examples=examples(60), deadline=None)
@given(text=st.one_of(st.integers(-10, 70000).map(str), st.text(max_size=6)))
def test_the_form_accepts_exactly_what_the_spec_accepts(text):
    eng = Engine(build_threshold=1)
    c = eng.create_collection("prop", DIM)
    f = IndexForm(c, "HNSW", watch=False)
    f.fields["M"].input.value = text
    param = spec.INDEXES["HNSW"].build["M"]
    value = int(text) if re.fullmatch(r"\s*[+-]?[0-9]+\s*", text) else text
    try:
        spec.check_value("HNSW", param, value, spec_ctx(c))
        accepted = True
    except InvalidParameterError:
        accepted = False
    assert (f.errors == {}) == accepted
    assert f.create_button.disabled == (not accepted)
    assert f.fields["M"].input.value == text
    f.close()
    eng.close()


def test_rnsg_search_length_cannot_reach_candidate_pool_size(form, coll):
    form.select("RNSG")
    sl, cps = form.fields["search_length"], form.fields["candidate_pool_size"]
    cps.value = 60
    assert sl.bounds == (10, 59)
    assert sl.allowed_text == spec.describe_allowed(sl.param, spec_ctx(coll, **form.context()))
    assert "<= 59" in sl.allowed_text
    before = state(coll)
    sl.value = 60
    with pytest.raises(InvalidParameterError) as refused:
        spec.validate_build("RNSG", form.values(), dim=DIM, metric="L2", warn=False)
    assert form.errors == {"search_length": refused.value.message}
    assert "search_length < candidate_pool_size" in sl.message.text
    assert form.create_button.disabled
    assert form.create() is None and state(coll) == before
    cps.value = 61  # moving the other field lifts the bound: the rule is live in both directions
    assert form.errors == {} and not form.create_button.disabled
    assert sl.bounds == (10, 60)


def test_recommendations_warn_and_never_refuse(form, coll):
    form.select("RNSG")
    form.fields["candidate_pool_size"].value = 100
    form.fields["knng"].value = 30
    expected = spec.recommendation_warnings(spec.INDEXES["RNSG"], form.values())
    assert len(expected) == 2
    assert form.errors == {} and not form.create_button.disabled
    assert form.advice.kind == "warning"
    for text in expected:
        assert text in form.advice.text
    report = form.create()
    assert report is not None and coll.index_type == "RNSG"
    assert form.message.kind == "warning" and "recommended" in form.message.text


@pytest.mark.parametrize("index_type", spec.INDEX_TYPES)
def test_create_and_drop_buttons_build_and_drop_the_chosen_index(form, coll, index_type):
    form.select(index_type)
    values = fast_values(index_type)
    for name, value in values.items():
        form.fields[name].value = value
    click_create(form)
    assert coll.index_type == index_type
    assert coll.index_params == values
    assert form.last_report is not None and form.last_report.fully_indexed
    assert form.message.kind == "ok", form.message.text
    if index_type == "FLAT":
        assert form.message.text == (f"Created FLAT: no index, every search is exact over all {ROWS:,} rows "
                                     f"(any previous index was dropped).")
    else:
        assert f"Created {index_type}" in form.message.text and " s: " in form.message.text
    assert f"Current index: {index_type}" in form.current.text
    if index_type != "FLAT":
        assert form.progress.value == form.progress.max
        assert {s["index_name"] for s in coll.segments()} == {index_type}
        assert f"all {ROWS:,} rows indexed" in form.current.text
    form.drop_button.click()
    assert coll.index_type == "FLAT" and coll.index_params == {}
    assert {s["index_name"] for s in coll.segments()} == {"FLAT"}
    assert "Current index: FLAT" in form.current.text


def test_progress_bar_follows_the_build(form, coll, engine):
    seen = []
    form.progress.observe(lambda ch: seen.append((ch["new"], form.progress.max)), "value")
    form.select("IVF_FLAT")
    form.fields["nlist"].value = 16
    form.create()
    assert seen and seen[-1][0] == seen[-1][1]
    assert form.progress.bar_style == "success"


def test_raw_rows_are_reported_as_a_warning(engine):
    c = engine.create_collection("small", DIM)
    c.insert(clustered(200, DIM))
    f = IndexForm(c, "IVF_FLAT", watch=False)
    f.fields["nlist"].value = 1024
    assert "stay raw" in f.advice.text and f.advice.kind == "warning"
    assert not f.create_button.disabled, "advice never refuses"
    report = f.create()
    assert report is not None and not report.fully_indexed
    assert f.message.kind == "warning" and "stay raw" in f.message.text
    assert "200 raw rows are searched exactly" in f.current.text
    f.close()


def test_engine_errors_show_in_the_form_and_leave_the_collection_unchanged(form, coll, monkeypatch):
    form.select("IVF_FLAT")
    form.fields["nlist"].value = 16
    form.create()
    before = state(coll)

    def failing(*args, **kwargs):
        raise BuildIndexError("HNSW build failed on segment 1: out of memory; the previous index is unchanged")

    monkeypatch.setattr(coll, "create_index", failing)
    form.select("HNSW")
    assert form.create() is None
    assert form.message.kind == "error"
    assert "BUILD_INDEX_ERROR, code 21" in form.message.text and "out of memory" in form.message.text
    assert state(coll) == before
    assert not form.create_button.disabled, "the form is usable again after a failed build"


def test_a_dropped_collection_is_reported_not_raised(engine, coll):
    f = IndexForm(coll, watch=False)
    engine.drop_collection("forms")
    assert f.create() is None and "COLLECTION_NOT_EXISTS" in f.message.text
    assert f.drop() is False and "COLLECTION_NOT_EXISTS" in f.message.text
    f.refresh()
    assert f.current.kind == "error" and "was dropped" in f.current.text
    f.close()


def test_form_follows_an_index_created_elsewhere(coll):
    f = IndexForm(coll, watch=True, interval=0.05)
    try:
        coll.create_index("HNSW", {"M": 8, "efConstruction": 40})
        deadline = time.monotonic() + 120  # a failure bound only: the loop ends on the change
        while "HNSW" not in f.current.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "Current index: HNSW (M=8, efConstruction=40)" in f.current.text
        g = IndexForm(coll, watch=False)
        assert g.index_type == "HNSW" and g.values() == {"M": 8, "efConstruction": 40}
        g.close()
    finally:
        f.close()
    assert not f.watcher.active  # closing the form stops listening to the collection


# ------------------------------------------------------------------------------------------ the search form
@pytest.fixture
def search(coll, base):
    f = SearchForm(coll, vectors=base, watch=False)
    yield f
    f.close()


def test_flat_search_shows_a_results_table_with_latency_and_exact_recall(search, coll):
    assert search.fields == {}
    shown = search.search()
    assert shown is not None
    assert shown["ids"][0] == 0 and shown["distances"][0] == pytest.approx(0, abs=1e-4)
    assert len(shown["ids"]) == 10 and shown["recall"] == 1.0
    assert shown["latency_ms"] > 0
    assert "<table" in search.results.value and "distance" in search.results.value
    assert "ms" in search.message.text and "recall@10 against exact search: 1.00" in search.message.text


def test_top_k_bounds_come_from_the_spec(search):
    assert search.top_k.param.low == spec.TOP_K[0] and search.top_k.param.high == spec.TOP_K[1]
    assert TOP_K_PARAM.default == 10
    for bad in ("0", str(spec.TOP_K[1] + 1), "x"):
        search.top_k.input.value = bad
        assert "top_k" in search.errors and search.search_button.disabled
        assert search.search() is None and search.message.kind == "error"
    search.top_k.value = 5
    assert search.errors == {} and len(search.search()["ids"]) == 5


def test_nprobe_is_bounded_by_the_built_nlist(search, coll):
    coll.create_index("IVF_FLAT", {"nlist": 32})
    search.refresh()
    nprobe = search.fields["nprobe"]
    ctx = spec.search_context(10, coll.index_params)
    assert nprobe.bounds == spec.bounds(nprobe.param, ctx) == (1, 32)
    assert nprobe.value == spec.default_search_params("IVF_FLAT", 10, coll.index_params)["nprobe"]
    assert "nprobe <= 32" in nprobe.allowed_text
    nprobe.value = 33
    with pytest.raises(InvalidParameterError) as refused:
        spec.validate_search("IVF_FLAT", {"nprobe": 33}, top_k=10, build_params=coll.index_params)
    assert search.errors == {"nprobe": refused.value.message}
    assert search.search_button.disabled and search.search() is None
    nprobe.value = 32  # every cell: exact
    shown = search.search()
    assert shown["recall"] == 1.0 and shown["params"] == {"nprobe": 32}


def test_ef_follows_top_k(search, coll):
    coll.create_index("HNSW", {"M": 8, "efConstruction": 64})
    search.refresh()
    ef = search.fields["ef"]
    assert ef.bounds == (10, 4096)
    ef.value = 64
    search.top_k.value = 100
    assert ef.bounds == (100, 4096) and "ef" in search.errors, "ef >= top_k is live"
    assert "ef >= top_k" in ef.message.text
    ef.value = 100
    assert search.errors == {}
    assert len(search.search()["ids"]) == 100


def test_search_k_is_minus_one_or_at_least_top_k(search, coll):
    coll.create_index("ANNOY", {"n_trees": 8})
    search.refresh()
    sk = search.fields["search_k"]
    assert sk.value == -1 and search.errors == {}
    sk.value = 5
    assert "search_k" in search.errors and "search_k = -1" in sk.message.text
    sk.value = 10
    assert search.errors == {} and search.search() is not None


def test_recall_needs_the_vectors_and_uses_the_numerics_rule(coll, base):
    """One recall rule (milvus_lab.numerics): the form computes it from the vectors it is given, never from
    a set overlap with an earlier search."""
    from milvus_lab import numerics

    coll.create_index("IVF_PQ", {"nlist": 32, "m": 8})
    f = SearchForm(coll, vectors=base, watch=False, query=3)
    f.fields["nprobe"].value = 1
    shown = f.search()
    truth, _ = numerics.exact_knn(base, base[3:4], 10, "L2")
    found = np.array([shown["ids"]])
    assert shown["recall"] == numerics.recall(found, truth, 10, base=base, queries=base[3:4], metric="L2")
    blind = SearchForm(coll, watch=False, query=3)
    blind.fields["nprobe"].value = 1
    assert blind.search()["recall"] is None
    assert "give the form the collection's vectors" in blind.message.text
    f.close()
    blind.close()


def test_query_by_word(coll):
    words = [f"w{i}" for i in range(ROWS)]
    f = SearchForm(coll, words=words, watch=False, query="w7")
    shown = f.search()
    assert shown["query_id"] == 7 and shown["words"][0] == "w7"
    assert "word" in f.results.value and "w7" in f.results.value
    f.query.value = "nope"
    assert f.search() is None and "'nope' is not among" in f.message.text
    f.query_by.value = "id"
    f.query.value = "12"
    assert f.search()["query_word"] == "w12"
    f.query.value = str(ROWS + 5)
    assert f.search() is None and "does not exist" in f.message.text
    f.close()


def test_search_refusal_from_the_engine_is_shown(search, coll, monkeypatch):
    coll.create_index("IVF_FLAT", {"nlist": 32})
    search.refresh()
    coll.drop_index()  # the form has not seen the change yet: the handler follows the collection first
    assert search.search() is not None and search.last["index_type"] == "FLAT"

    def refusing(*args, **kwargs):
        raise InvalidParameterError("IVF_FLAT: nprobe=64 is out of range; allowed: 1 <= nprobe <= 32")

    monkeypatch.setattr(coll, "search", refusing)
    assert search.search() is None
    assert "ILLEGAL_ARGUMENT, code 5" in search.message.text and "nprobe=64" in search.message.text


def test_binary_collection_forms(engine):
    c = engine.create_collection("bits", 64, metric_type="JACCARD")
    c.insert(np.random.default_rng(0).integers(0, 256, (1000, 8), dtype=np.uint8))
    a = app(c, watch=False)
    assert [v for _label, v in a.index_form.type_dropdown.options] == spec.index_types_for_metric("JACCARD")
    exact = a.search_form.search()
    a.index_form.fields["nlist"].value = 8
    assert a.index_form.create() is not None and c.index_type == "IVF_FLAT"
    a.search_form.fields["nprobe"].value = 8
    shown = a.search_form.search()
    assert shown["ids"][0] == exact["ids"][0] == 0
    a.close()


# ------------------------------------------------------------------------------------------ panel and app
def test_collection_html_lists_rows_partitions_and_segments(engine):
    c = engine.create_collection("html", DIM, index_file_size=1)
    c.create_partition("p2")
    c.insert(clustered(6000, DIM))
    c.insert(clustered(300, DIM, seed=3), partition_tag="p2")
    with pytest.warns(RawSegmentWarning, match="300 rows"):
        c.create_index("IVF_FLAT", {"nlist": 512})
    c.wait_for_index()
    page = collection_html(c)
    for seg in c.segments():
        assert f">{seg['name']}<" in page
    assert "_default (6,000 rows)" in page and "p2 (300 rows)" in page
    assert "sealed" in page and "IVF_FLAT" in page and "raw" in page
    assert "6,000 of 6,300 rows indexed" in page
    engine.drop_collection("html")
    assert "was dropped" in collection_html(c)


def test_panel_refreshes_while_a_background_build_runs(engine):
    c = engine.create_collection("bg", DIM, index_file_size=1)
    c.insert(clustered(100, DIM))
    c.create_index("IVF_FLAT", {"nlist": 16})
    panel = CollectionPanel(c, watch=True, interval=0.05)
    try:
        assert panel.html.value.count("IVF_FLAT") >= 1
        c.insert(clustered(c.segment_rows + 10, DIM, seed=9))  # seals a segment: built in the background
        deadline = time.monotonic() + 120  # a failure bound only
        while time.monotonic() < deadline:
            sealed = [s for s in c.segments() if s["sealed"]]
            if all(s["index_name"] == "IVF_FLAT" for s in sealed) and panel.html.value == panel.render():
                break
            time.sleep(0.05)
        assert panel.html.value == panel.render(), "the watcher re-rendered without a refresh call"
        assert "sealed" in panel.html.value and "reached index_file_size" in panel.html.value
    finally:
        panel.close()
    assert not panel.watcher.active  # closing the form stops listening to the collection


def test_app_composes_the_three_and_keeps_them_in_step(coll, base):
    a = app(coll, vectors=base, watch=False)
    assert isinstance(a, App)
    assert isinstance(a.index_form, IndexForm) and isinstance(a.search_form, SearchForm)
    assert isinstance(a.panel, CollectionPanel)
    a.index_form.select("IVF_SQ8")
    a.index_form.fields["nlist"].value = 32
    click_create(a.index_form)
    assert list(a.search_form.fields) == ["nprobe"] and a.search_form.fields["nprobe"].bounds == (1, 32)
    assert "IVF_SQ8" in a.panel.html.value
    a.search_form.search_button.click()
    assert a.search_form.last is not None and a.search_form.last["index_type"] == "IVF_SQ8"
    a.index_form.drop_button.click()
    assert a.search_form.fields == {} and "IVF_SQ8" not in a.panel.html.value
    a.close()


def test_nothing_in_milvus_lab_imports_widgets():
    """Arrows point one way: widgets use engine and spec; no other module imports widgets."""
    from pathlib import Path

    pattern = re.compile(r"^\s*(from\s+(milvus_lab|\.+)\s+import\s+[^#\n]*\bwidgets\b"
                         r"|(from|import)\s+(milvus_lab|\.*)\.?widgets\b)", re.MULTILINE)
    root = Path(__file__).resolve().parents[1] / "milvus_lab"
    offenders = [str(p) for p in root.rglob("*.py")
                 if "widgets" not in p.relative_to(root).parts and pattern.search(p.read_text())]
    assert offenders == []
