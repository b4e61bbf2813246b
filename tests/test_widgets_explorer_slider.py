"""The explorer's slider spends its track where recall moves (issue 19): its stops are log-spaced over the
spec's range, so ef 10..4096 or ANNOY's search_k can be set near their low end with a click, and every stop
is a value a search accepts."""

from __future__ import annotations

import pytest
from conftest import clustered

from milvus_lab import Engine, spec
from milvus_lab.widgets import explorer


@pytest.mark.parametrize("index_type, build", [("HNSW", {"M": 8, "efConstruction": 32}), ("ANNOY", {"n_trees": 8})])
def test_stops_are_log_spaced_valid_and_searchable(index_type, build):
    engine = Engine(build_threshold=1)
    collection = engine.create_collection("slider", dimension=16)
    base = clustered(2000, 16, seed=6)
    collection.insert(base)
    ex = explorer(collection, vectors=base, n_queries=20, index_type=index_type)
    try:
        for name, value in build.items():
            ex.form.fields[name].value = value
        assert ex.form.create() is not None, ex.form.message.text
        (name, param), = spec.INDEXES[index_type].search.items()
        stops = list(ex.slider.options)
        low, high = stops[0], stops[-1]
        assert ex.param == name and low == spec.bounds(param, spec.search_context(10, build))[0]
        assert stops == sorted(set(stops)) and high >= 100 * low / 10
        # log-spaced: as many stops in the first decade as a linear track would give it in a tenth of a pixel
        first_decade = [v for v in stops if v <= 10 * low]
        assert len(first_decade) >= len(stops) / 3, stops
        assert stops[1] <= 2 * low  # one click from the left end is still near it
        for value in stops[:: max(1, len(stops) // 8)]:
            spec.check_value(index_type, param, value, spec.search_context(10, build))
            ex.slider.value = value
            assert ex.last["search"] == {name: value}
    finally:
        ex.close()


def test_rnsg_readout_tells_the_built_value_from_the_searched_one():
    engine = Engine(build_threshold=1)
    collection = engine.create_collection("rnsg_readout", dimension=16)
    base = clustered(1500, 16, seed=7)
    collection.insert(base)
    ex = explorer(collection, vectors=base, n_queries=20, index_type="RNSG")
    try:
        assert ex.form.create() is not None, ex.form.message.text
        built = ex.form.values()["search_length"]
        searched = next(v for v in ex.slider.options if v != built)
        ex.slider.value = searched
        text = ex.readout.text
        built_part, searched_part = text.split(", searched at ", 1)
        assert built_part.startswith("RNSG built with ") and f"search_length={built}" in built_part
        assert searched_part.startswith(f"search_length={searched}:")
        assert f"search_length={built}) at search_length" not in text
    finally:
        ex.close()


def test_no_bare_value_on_the_slider_before_an_index_exists():
    engine = Engine(build_threshold=1)
    collection = engine.create_collection("no_index", dimension=16)
    base = clustered(500, 16, seed=7)
    collection.insert(base)
    ex = explorer(collection, vectors=base, n_queries=10, index_type="IVF_FLAT")
    try:
        assert ex.param is None and ex.slider.disabled and ex.slider.readout is False
        ex.form.fields["nlist"].value = 8
        assert ex.form.create() is not None
        assert ex.param == "nprobe" and not ex.slider.disabled and ex.slider.readout is True
    finally:
        ex.close()
