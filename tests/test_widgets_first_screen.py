"""The app's first screen shows one idea at a time (issue 19): its default index covers every segment (no
raw-segment advice before anything is clicked, no first search half answered by a raw segment), the lesson
about raw segments is one typed value away, IVF_PQ's m states both of its rules, and the app notebook's
intro does not tell a Voila page how to start Voila."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import clustered

from milvus_lab import Engine, spec
from milvus_lab.widgets import app

ROOT = Path(__file__).resolve().parents[1]
DIM = 48


def _two_segment_collection():
    """The app notebook's layout: 4,000 rows in _default and 1,000 in a second partition, every segment built."""
    engine = Engine(build_threshold=1)
    collection = engine.create_collection("first_screen", dimension=DIM, index_file_size=1, metric_type="L2")
    collection.create_partition("rare")
    base = clustered(5000, DIM, seed=9)
    collection.insert(base[:4000])
    collection.insert(base[4000:], partition_tag="rare")
    return collection, base


def test_the_default_index_covers_every_segment_and_the_raw_lesson_is_one_value_away():
    collection, base = _two_segment_collection()
    a = app(collection, vectors=base, watch=False)
    try:
        form = a.index_form
        assert form.index_type == "IVF_FLAT"
        assert form.advice.text == "", f"the first screen already advises: {form.advice.text}"
        nlist = form.values()["nlist"]
        default = spec.default_build_params("IVF_FLAT", DIM)["nlist"]
        assert nlist <= 1000 < default  # lowered from the spec's default so the 1,000-row segment trains
        assert form.create() is not None, form.message.text
        segments = [s for p in collection.stats()["partitions"] for s in p["segments"] if s["row_count"]]
        assert len(segments) == 2 and all(s["index_name"] == "IVF_FLAT" for s in segments), segments
        form.fields["nlist"].value = default  # the spec's default: the raw-segment lesson, when asked for
        assert "stay raw" in form.advice.text
    finally:
        a.close()


def test_ivf_pq_m_states_both_of_its_rules():
    collection, base = _two_segment_collection()
    a = app(collection, vectors=base, watch=False)
    try:
        a.index_form.select("IVF_PQ")
        m = a.index_form.fields["m"]
        text = m.allowed_text
        milvus_set = sorted(spec.INDEXES["IVF_PQ"].build["m"].choices)
        assert "{" + ", ".join(map(str, milvus_set)) + "}" in text  # m must be one of Milvus's values ...
        assert "dim / m in {" in text  # ... and split the dimension into an allowed sub-vector size
        assert 6 not in m.input.options and DIM // 6 in spec.PQ_SUBVECTOR_DIMS  # 6 passes only the second rule
        assert list(m.input.options) == spec.allowed_values(spec.INDEXES["IVF_PQ"].build["m"], {"dim": DIM})
    finally:
        a.close()


def test_the_app_notebook_intro_does_not_explain_how_to_start_voila():
    cells = json.loads((ROOT / "notebooks" / "app.ipynb").read_text())["cells"]
    intro = "".join(cells[0]["source"])
    assert "voila" not in intro.lower() and "Choose an index type" in intro
