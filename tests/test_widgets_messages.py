"""Where the forms say things (issue 19, the classroom): a refused search stays on screen until the next
search (the build that caused it ending does not wipe it), and a value refused because of another field is
also said under the field the person changed."""

from __future__ import annotations

import pytest
from conftest import clustered

from milvus_lab import Engine, spec
from milvus_lab.widgets import app


@pytest.fixture
def small_app():
    engine = Engine(build_threshold=1)
    collection = engine.create_collection("messages", dimension=16)
    base = clustered(2000, 16, seed=3)
    collection.insert(base)
    a = app(collection, vectors=base, watch=False)
    yield a, collection
    a.close()


def test_a_refusal_during_a_build_stays_until_the_next_search(small_app):
    a, collection = small_app
    collection.create_index("HNSW", {"M": 8, "efConstruction": 32})
    form = a.search_form
    form.set_busy("HNSW")  # what the index form reports while it builds
    assert form.search() is None
    refusal = form.message.text
    assert refusal.startswith("Not searched: HNSW is being built") and form.message.kind == "error"
    form.set_busy(None)  # the build ends: the refusal is still what the person reads
    a.refresh()
    assert form.message.text == refusal and form.message.kind == "error"
    shown = form.search()  # the next action replaces it
    assert shown is not None and "Not searched" not in form.message.text


def test_top_k_that_makes_ef_invalid_says_so_under_top_k(small_app):
    a, collection = small_app
    collection.create_index("HNSW", {"M": 8, "efConstruction": 32})
    a.refresh()
    form = a.search_form
    ef = form.fields["ef"].value
    form.top_k.value = ef + 36
    assert "ef" in form.errors and "top_k" not in form.errors  # the rule: ef >= top_k; top_k itself is fine
    assert f"top_k={ef + 36}" in form.top_k.message.text and f"ef={ef} is out of range" in form.top_k.message.text
    form.top_k.value = ef
    assert form.errors == {} and form.top_k.message.text == ""


def test_a_pool_that_makes_search_length_invalid_says_so_under_the_pool(small_app):
    a, _ = small_app
    form = a.index_form
    form.select("RNSG")
    pool = form.fields["candidate_pool_size"]
    low = spec.bounds(spec.INDEXES["RNSG"].build["candidate_pool_size"])[0]
    form.fields["search_length"].value = low
    pool.value = low  # search_length must stay below candidate_pool_size
    assert "search_length" in form.errors and "candidate_pool_size" not in form.errors
    assert f"candidate_pool_size={low} conflicts" in pool.message.text
    assert f"search_length={low} is out of range" in pool.message.text
    pool.value = low + 10
    assert form.errors == {} and pool.message.text == ""
