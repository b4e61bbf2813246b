"""Hostile values at every public entry point of the lab and of the forms (issue 13, item 1; issue 11).

The lab: loaders (``from_array``, ``from_dataframe``, ``load`` / ``read_matrix`` / ``read_vecs`` on hostile
files, ``load_hdf5`` on garbage), the Dataset's methods and the arguments of ``compare`` / ``measure`` /
``tune``, each fuzzed one argument at a time (the others valid). Property: the call succeeds, or raises a
:class:`~milvus_lab.errors.MilvusLabError` whose message names the argument. No other exception escapes.

The forms: IndexForm (``select``, field values, ``create``, ``drop``), SearchForm (top_k, query, search
parameters, ``search``) and the explorer's slider. Property: no exception escapes a handler (a refusal is
shown on the form) and the collection is unchanged after a refusal.

Values: huge and negative ints, 0, -1, 2**63, 10**5000, bools, nan/inf/1.5, numpy scalars and 0-d arrays,
str, bytes, None, lists, dicts, objects whose __int__ / __index__ / __len__ / __eq__ / __hash__ / __repr__
raise. ``MILVUS_LAB_HOSTILE_EXAMPLES`` sets the examples per test (scripts/hostile_long.py runs many).

These are robustness checks (each test name says ``robust``): they pass when a call succeeds. The refusals a bad
value must get (tests that fail when it is accepted) are in test_bad_input_catalogue.py and the module's own
test file. Every hostile-value file is named test_hostile_<area>.py.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from helpers import Boom, EvilEverything, EvilIndex, EvilStrKey, examples

from milvus_lab import Engine, lab
from milvus_lab.errors import MilvusLabError
from milvus_lab.folders import CACHE_DIR_ENV
from milvus_lab.lab import measurements

#: examples per test; MILVUS_LAB_HOSTILE_EXAMPLES=2000 for a long run
EXAMPLES = int(os.environ.get("MILVUS_LAB_HOSTILE_EXAMPLES", examples(10)))
FAST = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
DIM = 8


HOSTILE: list[Any] = [
    0, -1, 1, 2, 2**31, 2**63, 2**63 - 1, -(2**63), 2**200, 10**5000, -(10**5000), True, False,
    float("nan"), float("inf"), -float("inf"), 1.5, 0.5, -0.5, 1e-300,
    np.int64(3), np.int32(-3), np.uint64(2**64 - 1), np.float32(0.5), np.float64("nan"), np.bool_(True),
    np.array(3), np.array(0.5), np.array([]), np.array([[np.nan] * DIM]), np.zeros((2, DIM)), np.zeros((0, DIM)),
    np.zeros((2, 3, DIM)), np.array(["a", "b"]), np.array([1 + 2j]),
    "", "x", "L2", "IP", "HNSW", "FLAT", "quick", "a" * 300, "\x00", "9" * 5000, b"", b"\x00", bytearray(b"x"),
    None, [], [[]], [1, 2], [[1.0] * DIM], ["FLAT"], ["NOPE"], [None], [2**70], [-1], [True], ["FLAT", EvilStrKey("HNSW")],
    {}, {"nlist": 2**70}, {"nprobe": -1}, {"ef": None}, {1: 2}, {"nprobe": [1, 2]}, {"nprobe": []},
    {"nlist": EvilIndex()}, {EvilStrKey("nlist"): 4}, (), (1,), set(), range(0), range(3), object(), complex(1, 2),
    EvilIndex(), EvilEverything(), EvilStrKey("FLAT"), EvilStrKey("L2"),
]

#: drawn by position: hypothesis hashes what sampled_from holds, and some of these refuse to be hashed
VALUES = st.one_of(st.integers(0, len(HOSTILE) - 1).map(lambda i: HOSTILE[i]), st.integers(), st.floats(), st.text(max_size=20),
                   st.binary(max_size=8), st.none(), st.booleans(),
                   st.lists(st.integers(min_value=-5, max_value=300), max_size=4))


def _names(message: str, arg: str | tuple[str, ...]) -> bool:
    names = (arg,) if isinstance(arg, str) else arg
    return any(n.lower() in message.lower() for n in names)


def check_call(fn: Callable[[], Any], arg: str | tuple[str, ...], value: Any) -> Any:
    """Call ``fn``: it succeeds, or raises a MilvusLabError naming ``arg``; anything else fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    except MilvusLabError as exc:
        assert _names(str(exc), arg), f"{type(exc).__name__} does not name {arg!r}: {exc}"
        return None
    except Exception as exc:  # noqa: BLE001 - the property under test
        raise AssertionError(f"{arg}={_safe(value)}: foreign {type(exc).__name__} escaped: {_safe(exc)}") from exc


def _safe(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001
        return f"<{type(value).__name__}>"
    return text[:120]


# --------------------------------------------------------------------------------------------------
# Fixtures: tiny data, fast timing
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def fast_timing_and_cache(tmp_path_factory):
    """Timing rounds of a millisecond (the property is about refusals, not speed); a private cache folder."""
    real = measurements.interleaved

    def quick(searches, queries, **kwargs):
        kwargs.update(repeats=1, min_seconds=0.0)
        kwargs["latency_queries"] = min(2, kwargs.get("latency_queries", 2))
        return real(searches, queries, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(measurements, "interleaved", quick)
        mp.setenv(CACHE_DIR_ENV, str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(120, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def ds(rows):
    return lab.from_array(rows, n_queries=12, name="tiny")


# --------------------------------------------------------------------------------------------------
# Loaders from memory
# --------------------------------------------------------------------------------------------------
FROM_ARRAY_ARGS = ["vectors", "queries", "n_queries", "metric", "normalize", "name", "labels", "seed"]


@pytest.mark.parametrize("arg", FROM_ARRAY_ARGS)
@FAST
@given(value=VALUES)
def test_from_array_robust_to_hostile_arguments(rows, arg, value):
    kwargs: dict[str, Any] = {"n_queries": 10}
    if arg == "vectors":
        check_call(lambda: lab.from_array(value, n_queries=None), arg, value)
        return
    if arg == "queries":
        kwargs = {}
    kwargs[arg] = value
    check_call(lambda: lab.from_array(rows[:60], **kwargs), ("query", arg) if arg == "queries" else arg, value)


@pytest.mark.parametrize("arg", ["df", "column", "columns", "queries", "n_queries", "metric", "label_column"])
@FAST
@given(value=VALUES)
def test_from_dataframe_robust_to_hostile_arguments(rows, arg, value):
    import pandas as pd

    df = pd.DataFrame(rows[:40, :4], columns=list("abcd"))
    df["word"] = [f"w{i}" for i in range(40)]
    kwargs: dict[str, Any] = {"columns": list("abcd"), "n_queries": 5}
    if arg == "df":
        check_call(lambda: lab.from_dataframe(value), ("df", "dataframe", "vectors"), value)
        return
    if arg == "queries":
        kwargs.pop("n_queries")
    if arg == "column":
        kwargs.pop("columns")
    kwargs[arg] = value
    check_call(lambda: lab.from_dataframe(df, **kwargs), ("query", arg) if arg == "queries" else arg, value)


# --------------------------------------------------------------------------------------------------
# Loaders from files
# --------------------------------------------------------------------------------------------------
def test_every_loader_robust_to_every_hostile_file(hostile_files):
    """load / read_matrix / read_vecs / load_hdf5 / from_files on every hostile file: a MilvusLabError
    naming the file, never numpy's or h5py's own exception."""
    loaders = {"load": lab.load, "read_matrix": lab.read_matrix, "from_files": lab.from_files,
               "read_vecs": lambda p: lab.read_vecs(p, "fvecs"), "load_hdf5": lab.load_hdf5}
    for path in hostile_files:
        for name, loader in loaders.items():
            check_call(lambda loader=loader, path=path: loader(path), (path.name, "path"), f"{name}({path.name})")


@pytest.mark.parametrize("arg", ["path", "queries", "groundtruth", "column", "columns", "n_queries", "metric",
                                 "normalize", "seed"])
@FAST
@given(value=VALUES)
def test_load_robust_to_hostile_arguments(tmp_path_factory, arg, value):
    tmp = tmp_path_factory.getbasetemp() / "load_args"
    tmp.mkdir(exist_ok=True)
    base = tmp / "base.npy"
    if not base.exists():
        np.save(base, np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32))
        np.save(tmp / "q.npy", np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32))
    if arg == "path":
        check_call(lambda: lab.load(value), "path", value)
        check_call(lambda: lab.read_matrix(value), "path", value)
        return
    kwargs: dict[str, Any] = {arg: value}
    if arg == "groundtruth":
        kwargs["queries"] = tmp / "q.npy"
    check_call(lambda: lab.load(base, **kwargs), arg, value)


# --------------------------------------------------------------------------------------------------
# The Dataset's methods
# --------------------------------------------------------------------------------------------------
@FAST
@given(value=VALUES)
def test_dataset_methods_robust_to_hostile_arguments(ds, value):
    check_call(lambda: ds.ground_truth(value), "k", value)
    check_call(lambda: ds.split_queries(value), "holdout", value)
    check_call(lambda: ds.split_queries(0.5, seed=value), "seed", value)
    check_call(lambda: ds.subset_queries(value), "rows", value)
    check_call(lambda: ds.subset_queries([0, 1], name=value), "name", value)
    check_call(lambda: ds.with_queries(value), ("queries", "query vectors"), value)
    check_call(lambda: ds.set_ground_truth(value), ("ground truth", "ids"), value)
    check_call(lambda: ds.rows(value), ("ids", "rows"), value)
    check_call(lambda: lab.load_glove_dataset(value, 1), "n", value)
    check_call(lambda: lab.load_glove_dataset(10, value), "n_queries", value)


# --------------------------------------------------------------------------------------------------
# compare / measure / tune
# --------------------------------------------------------------------------------------------------
COMPARE_ARGS = ["index_types", "k", "budget", "latency_queries", "time_limit", "repeats", "threads", "progress",
                "session", "target"]


@pytest.mark.parametrize("arg", COMPARE_ARGS)
@FAST
@given(value=VALUES)
def test_compare_robust_to_hostile_arguments(ds, arg, value):
    kwargs: dict[str, Any] = {"index_types": ["FLAT"], "progress": False, "repeats": 1, "latency_queries": 2}
    kwargs[arg] = value
    check_call(lambda: lab.compare(ds, **kwargs), arg, value)


@FAST
@given(value=VALUES)
def test_compare_measure_and_tune_robust_to_a_hostile_dataset(value):
    check_call(lambda: lab.compare(value, progress=False), "dataset", value)
    check_call(lambda: lab.measure(value, "FLAT"), "dataset", value)
    check_call(lambda: lab.tune(value, progress=False), "dataset", value)


MEASURE_ARGS = ["index_type", "build_params", "search_params", "k", "latency_queries", "repeats", "session",
                "target"]


@pytest.mark.parametrize("arg", MEASURE_ARGS)
@FAST
@given(value=VALUES)
def test_measure_robust_to_hostile_arguments(ds, arg, value):
    kwargs: dict[str, Any] = {"index_type": "IVF_FLAT", "build_params": {"nlist": 4}, "search_params": {"nprobe": 2},
                              "repeats": 1, "latency_queries": 2}
    kwargs[arg] = value
    if arg == "index_type":  # another valid type takes other parameters: use its defaults
        kwargs.update(build_params=None, search_params=None)
    index_type = kwargs.pop("index_type")
    check_call(lambda: lab.measure(ds, index_type, **kwargs), arg, value)


TUNE_ARGS = ["target_recall", "index_types", "k", "memory_budget_mb", "max_p99_ms", "holdout", "time_budget_s",
             "max_builds", "min_gain", "latency_queries", "repeats", "threads", "progress", "seed", "session",
             "target"]


@pytest.mark.parametrize("arg", TUNE_ARGS)
@FAST
@given(value=VALUES)
def test_tune_robust_to_hostile_arguments(ds, arg, value):
    kwargs: dict[str, Any] = {"index_types": ["FLAT"], "progress": False, "repeats": 1, "latency_queries": 2,
                              "max_builds": 1}
    kwargs[arg] = value
    check_call(lambda: lab.tune(ds, **kwargs), arg, value)


@pytest.mark.parametrize("arg", ["target", "threads", "repeats", "max_datasets"])
@FAST
@given(value=VALUES)
def test_session_robust_to_hostile_arguments(arg, value):
    def make() -> None:
        s = lab.Session(**{arg: value})
        s.close()

    check_call(make, arg, value)


@FAST
@given(value=VALUES)
def test_the_lab_helpers_robust_to_hostile_arguments(ds, value):
    check_call(lambda: lab.default_plan(ds, value), "index_types", value)
    check_call(lambda: lab.default_plan(ds, k=value), "k", value)
    check_call(lambda: lab.default_plan(ds, budget=value), "budget", value)
    check_call(lambda: lab.search_grid(value, {}, 100, 10), "index_type", value)
    check_call(lambda: lab.round_robin(value, 2), "n_settings", value)
    check_call(lambda: lab.round_robin(2, value), "repeats", value)


# --------------------------------------------------------------------------------------------------
# The forms
# --------------------------------------------------------------------------------------------------
FORM_ROWS = 200


@pytest.fixture(scope="module")
def form_engine():
    eng = Engine(build_threshold=1)
    c = eng.create_collection("hostile_forms", DIM)
    c.insert(np.random.default_rng(7).normal(size=(FORM_ROWS, DIM)).astype(np.float32))
    yield eng, c
    eng.close()


def _state(c) -> tuple:
    return c.index_type, dict(c.index_params), [(s["name"], s["index_name"], s["row_count"]) for s in c.segments()]


def no_escape(fn: Callable[[], Any], what: str, value: Any) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    except Exception as exc:  # noqa: BLE001 - the property under test
        raise AssertionError(f"{what}({_safe(value)}): {type(exc).__name__} escaped a form handler: "
                             f"{_safe(exc)}") from exc


@pytest.fixture(scope="module")
def index_form(form_engine):
    from milvus_lab.widgets import IndexForm

    _, c = form_engine
    f = IndexForm(c, "IVF_FLAT", watch=False)
    yield f
    f.close()


@FAST
@given(value=VALUES)
def test_index_form_select_robust_and_a_refusal_changes_nothing(form_engine, index_form, value):
    _, c = form_engine
    before = _state(c)
    no_escape(lambda: index_form.select(value), "select", value)
    assert _state(c) == before
    assert index_form.index_type in index_form.types


@pytest.mark.parametrize("index_type", ["IVF_FLAT", "IVF_PQ", "HNSW", "ANNOY", "RNSG"])
@FAST
@given(value=st.one_of(VALUES, st.text(alphabet="0123456789-+ e.,", max_size=12)), pick=st.integers(0, 10))
def test_index_form_field_values_robust_and_a_refusal_changes_nothing(form_engine, index_form, index_type,
                                                                          value, pick):
    _, c = form_engine
    no_escape(lambda: index_form.select(index_type), "select", index_type)
    names = list(index_form.fields)
    field = index_form.fields[names[pick % len(names)]]
    before = _state(c)

    def set_value() -> None:
        try:
            field.value = value
        except MilvusLabError as exc:  # a drop-down refuses a value it does not offer, naming the parameter
            assert field.name in str(exc)

    no_escape(set_value, f"{field.name}.value =", value)
    errors = no_escape(index_form.validate, "validate", value)
    if errors:
        assert no_escape(lambda: index_form.create(wait=True), "create", value) is None
        assert _state(c) == before, "a refused create changed the collection"
        assert "Not created" in index_form.message.value


def test_index_form_create_and_drop_handlers_robust(form_engine, index_form):
    _, c = form_engine
    no_escape(lambda: index_form.select("IVF_FLAT"), "select", "IVF_FLAT")
    index_form.fields["nlist"].value = "4"
    assert no_escape(lambda: index_form.create(wait=True), "create", None) is not None
    assert c.index_type == "IVF_FLAT"
    assert no_escape(index_form.drop, "drop", None) is True
    before = _state(c)
    assert no_escape(index_form.drop, "drop", None) is False  # nothing to drop: refused, shown
    assert _state(c) == before


@pytest.fixture(scope="module")
def search_form(form_engine):
    from milvus_lab.widgets import SearchForm

    _, c = form_engine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c.create_index("IVF_FLAT", {"nlist": 4})
    vectors = np.random.default_rng(7).normal(size=(FORM_ROWS, DIM)).astype(np.float32)
    f = SearchForm(c, words=[f"w{i}" for i in range(FORM_ROWS)], vectors=vectors, watch=False)
    yield f
    f.close()


@pytest.mark.parametrize("where", ["top_k", "query", "nprobe", "query_by"])
@FAST
@given(value=st.one_of(VALUES, st.text(alphabet="w0123456789-+ e", max_size=8)))
def test_search_form_robust_to_whatever_is_typed(form_engine, search_form, where, value):
    _, c = form_engine
    search_form.refresh()
    before = _state(c)

    def put() -> None:
        try:
            if where == "top_k":
                search_form.top_k.value = value
            elif where == "nprobe":
                search_form.fields["nprobe"].value = value
            elif where == "query_by":
                search_form.query_by.value = "id" if isinstance(value, int) else "word"
                small = isinstance(value, int) and abs(value).bit_length() < 1000  # str() refuses > 4300 digits
                search_form.query.value = value if isinstance(value, str) else (str(value) if small else "w1")
            else:
                search_form.query.value = value if isinstance(value, str) else "w1"
        except MilvusLabError:
            pass

    no_escape(put, where, value)
    shown = no_escape(search_form.search, "search", value)
    assert _state(c) == before
    if shown is None:
        assert search_form.results.value == ""  # no stale table under a refusal
    search_form.top_k.value = 10
    search_form.fields["nprobe"].value = 2
    search_form.query_by.value = "word"
    search_form.query.value = "w1"


@FAST
@given(value=st.one_of(st.integers(), st.sampled_from([0, -1, 2**31 - 1, -(2**31)])))
def test_explorer_slider_robust(form_engine, value):
    eng, _ = form_engine
    ex = _explorer(eng)
    builds = ex.builds
    try:
        ex.slider.value = max(-(2**31), min(2**31 - 1, value))  # the widget's own range (a traitlets Int)
    except Exception as exc:  # noqa: BLE001 - traitlets may refuse a value before any handler runs
        assert not isinstance(exc, Boom)
    result = no_escape(ex.update, "slider update", value)
    # the explorer still works: its slider holds one of its stops, and the update searched the built index there
    # (shown as a recall, not an error), without building it again
    assert ex.slider.value in ex.slider.options
    assert result is not None, ex.readout.text
    assert result["search"] == {"nprobe": ex.slider.value} and 0.0 <= result["recall"] <= 1.0
    assert ex.builds == builds


_EXPLORERS: dict[int, Any] = {}


def _explorer(eng):
    if id(eng) not in _EXPLORERS:
        from milvus_lab.widgets import Explorer

        c = eng.create_collection("hostile_explorer", DIM)
        vectors = np.random.default_rng(9).normal(size=(150, DIM)).astype(np.float32)
        c.insert(vectors)
        ex = Explorer(c, vectors, n_queries=10, index_type="IVF_FLAT")
        ex.form.fields["nlist"].value = "4"
        ex.form.create(wait=True)
        assert ex.param == "nprobe"
        _EXPLORERS[id(eng)] = ex
    return _EXPLORERS[id(eng)]


@FAST
@given(value=VALUES)
def test_explorer_word_box_and_constructor_robust(form_engine, value):
    eng, _ = form_engine
    ex = _explorer(eng)
    no_escape(lambda: setattr(ex.word, "value", value if isinstance(value, str) else "w1"), "word", value)
    no_escape(ex.update, "update", value)
