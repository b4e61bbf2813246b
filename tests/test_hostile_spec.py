"""Hostile values never crash the spec or the engine's argument checks (issue 13, validator part).

Every public checker of milvus_lab.spec and milvus_lab.engine.validation is called with absurd values in
one argument at a time (the others valid): huge and negative ints, 0, -1, 2**63, bools, nan/inf/1.5,
numpy scalars and 0-d arrays, str, bytes, None, lists, dicts, objects whose __int__ / __index__ / __len__ /
__eq__ / __hash__ / __repr__ / __bool__ raise, str subclasses with hostile methods, mappings with
non-str keys or whose items() raises. The property: the call succeeds, or raises a MilvusLabError whose
message names the argument. No other exception type ever escapes.

These are robustness checks (each test name says ``robust``): they pass when a call succeeds. The refusals a bad
value must get (tests that fail when it is accepted) are in test_bad_input_catalogue.py and the module's own
test file. Every hostile-value file is named test_hostile_<area>.py.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from helpers import (
    EvilEverything,
    EvilIndex,
    EvilIntSubclass,
    EvilMapping,
    EvilStr,
    EvilStrKey,
    NameIsNotStr,
    UnhashableKeys,
    examples,
)

from milvus_lab import spec
from milvus_lab.engine import validation
from milvus_lab.errors import MilvusLabError

#: examples per test; MILVUS_LAB_HOSTILE_EXAMPLES=5000 for a long run
EXAMPLES = int(os.environ.get("MILVUS_LAB_HOSTILE_EXAMPLES", examples(120)))
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _hostile_objects() -> list[Any]:
    return [UnhashableKeys(), EvilIndex(), EvilIntSubclass(7), EvilEverything(), EvilStr("nlist"), EvilStr("IVF_FLAT"),
            EvilStr("L2"), NameIsNotStr(), object(), EvilMapping(nlist=16), {1: 2}, {None: 1}, {(1, 2): 3},
            {"nlist": EvilIndex()}, {"nlist": EvilEverything()}, {EvilStrKey("nlist"): 16}, {EvilStrKey("bogus"): 16}, EvilStrKey("HNSW"), [1, 2], (3,), {3},
            frozenset(), b"\x00\x01", bytearray(b"ab"), "", "x", "16", "1e3", " 16", None, Ellipsis, type,
            np.array(5), np.array(5.0), np.array("x"), np.array([1, 2]), np.zeros((0, 3)), np.float32(16.0),
            np.bool_(True), np.int64(16), np.uint64(2**64 - 1), np.int8(-1), 1 + 2j, float("nan"), float("inf"),
            -float("inf"), 1.5, 16.0, -0.0, True, False]


INTS = [0, -1, 1, 2, 7, 8, 16, 48, 50, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, -2**63, 2**1000, -2**1000]
#: an int too long for str() (Python refuses > 4300 digits): built lazily, hypothesis would repr a constant
huge = st.integers(0, 0).map(lambda _: 10**5000)

_OBJECTS = _hostile_objects()
#: drawn by position: hypothesis hashes what sampled_from holds, and some of these refuse to be hashed
objects = st.integers(0, len(_OBJECTS) - 1).map(lambda i: _OBJECTS[i])

hostile = st.one_of(
    st.sampled_from(INTS),
    huge,
    st.integers(),
    objects,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-2**63, 2**63 - 1).map(np.int64),
    st.integers(0, 2**64 - 1).map(np.uint64),
    st.integers(-5, 70000).map(np.array),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.none(),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=2),
)

PROFILES = list(spec.PROFILES)
ALL_TYPES = sorted({name for p in spec.PROFILES.values() for name in (*p.indexes, *p.unavailable)})


def _refused_or_ok(call: Callable[[], Any], *names: str) -> Any:
    """Run ``call``: success, or a MilvusLabError whose message names one of ``names``."""
    try:
        return call()
    except MilvusLabError as exc:
        message = str(exc)
        assert isinstance(message, str) and message
        if names:
            assert any(n.lower() in message.lower() for n in names), (names, message)
        return exc
    # any other exception escapes and fails the test with its own traceback


def _valid_build(index_type: str, profile: str, dim: int = 48) -> dict[str, int]:
    return spec.default_build_params(index_type, dim, profile=profile)


# ----------------------------------------------------------------------------------------- check_value
PARAMS = [(p, name, param) for p, prof in spec.PROFILES.items() for name, s in prof.indexes.items()
          for param in (*s.build.values(), *s.search.values())] + [
    (p, "", param) for p, prof in spec.PROFILES.items() for param in (prof.top_k, prof.dimension,
                                                                       prof.index_file_size)]


@FAST
@given(st.sampled_from(PARAMS), hostile, st.sampled_from([None, {}, {"dim": 50}, {"dim": 48}, {"dim": 0},
                                                          {"dim": -8}, {"top_k": 10, "nlist": 0, "n_trees": 3},
                                                          {"dim": EvilIndex(), "top_k": EvilEverything()},
                                                          {"candidate_pool_size": 2**1000, "nlist": -2**1000},
                                                          {"metric": EvilStr("HAMMING"), "dim": 9}]))
def test_check_value_robust_to_hostile_values(case, value, ctx):
    _profile, index_name, param = case
    result = _refused_or_ok(lambda: spec.check_value(index_name, param, value, ctx), param.name)
    if not isinstance(result, MilvusLabError):
        assert type(result) is int
    result = _refused_or_ok(lambda: spec.effective_value(param, value, ctx), param.name)
    if not isinstance(result, MilvusLabError):
        assert type(result) is int


@FAST
@given(st.sampled_from(PARAMS), st.one_of(objects, huge))
def test_describe_allowed_and_bounds_robust_to_any_context(case, junk):
    _profile, _index, param = case
    ctx = {name: junk for name in ("dim", "top_k", "nlist", "n_trees", "candidate_pool_size", "metric", "rows")}
    _refused_or_ok(lambda: (spec.describe_allowed(param, ctx), spec.bounds(param, ctx),
                            spec.allowed_values(param, ctx), spec.sweep_range(param, ctx)))
    _refused_or_ok(lambda: spec.sweep_values(param, ctx, start=junk), "sweep")


# ----------------------------------------------------------------------------------------- validate_build
@FAST
@given(st.sampled_from(PROFILES), st.sampled_from(ALL_TYPES), st.data())
def test_validate_build_robust_to_one_hostile_argument(profile, index_type, data):
    if index_type in spec.PROFILES[profile].unavailable:
        _refused_or_ok(lambda: spec.validate_build(index_type, {}, dim=48, metric="L2", profile=profile),
                       "not available")
        return
    good = _valid_build(index_type, profile)
    bad = data.draw(hostile, label="bad")
    where = data.draw(st.sampled_from(["value", "params", "dim", "metric", "index_type", "profile", "key"]))
    kwargs: dict[str, Any] = {"dim": 48, "metric": "L2", "profile": profile, "warn": False}
    params: Any = dict(good)
    name = where
    if where == "value" and good:
        pname = data.draw(st.sampled_from(sorted(good)))
        params[pname], name = bad, pname
    elif where == "params":
        params, name = bad, "params"
    elif where == "key":
        params = {**good, bad if _hashable(bad) else "x": 1}
        name = "param"
    elif where in ("dim", "metric", "profile"):
        kwargs[where] = bad
        name = {"dim": "dimension", "metric": "metric", "profile": "profile"}[where]
    elif where == "index_type":
        index_type, name = bad, "index"
    # a valid but unusual dim (1, 7) may refuse a default parameter instead (IVF_PQ m for dim 1), and a
    # hostile params dict may hold a parameter's name ({"nlist": ...}): then the message names that parameter
    _refused_or_ok(lambda: spec.validate_build(index_type, params, **kwargs), name, "param",
                   *(good if where in ("dim", "params") else ()))


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("m", [0, -1, -8, 2**63, 2**1000, 97, 100, 5])
@pytest.mark.parametrize("dim", [1, 5, 8, 48, 50, 53, 96, 128, 32768])
def test_ivf_pq_m_and_dim_robust_never_divide_by_zero(profile, m, dim):
    """The class of the ZeroDivisionError once raised from the spec: any m, any dim, any profile."""
    result = _refused_or_ok(lambda: spec.validate_build("IVF_PQ", {"nlist": 16, "m": m}, dim=dim, metric="L2",
                                                        profile=profile), "m=", "m ")
    if isinstance(result, MilvusLabError):
        assert "{}" not in str(result) and "m in {}" not in str(result)
    m_param = spec.get_index("IVF_PQ", profile=profile).build["m"]
    for zero_dim in (0, -48):
        _refused_or_ok(lambda d=zero_dim: spec.validate_build("IVF_PQ", {"nlist": 16, "m": m}, dim=d, metric="L2",
                                                              profile=profile), "dimension")
        _refused_or_ok(lambda d=zero_dim: spec.default_build_params("IVF_PQ", d, profile=profile), "dimension")
        _refused_or_ok(lambda d=zero_dim: spec.check_value("IVF_PQ", m_param, m, {"dim": d}), "m")


# ----------------------------------------------------------------------------------------- validate_search
@FAST
@given(st.sampled_from(PROFILES), st.data())
def test_validate_search_robust_to_one_hostile_argument(profile, data):
    index_type = data.draw(st.sampled_from(list(spec.PROFILES[profile].indexes)))
    build = _valid_build(index_type, profile)
    good = spec.default_search_params(index_type, 10, build, profile=profile)
    bad = data.draw(hostile, label="bad")
    where = data.draw(st.sampled_from(["value", "params", "top_k", "build_params", "build_value"]))
    kwargs: dict[str, Any] = {"top_k": 10, "build_params": build, "profile": profile}
    params: Any = dict(good)
    name = where
    if where == "value" and good:
        pname = next(iter(good))
        params[pname], name = bad, pname
    elif where == "params":
        name = "params"
        params = bad
    elif where == "top_k":
        kwargs["top_k"] = bad
    elif where == "build_params":
        kwargs["build_params"], name = bad, "build_params"
    elif where == "build_value" and build:
        kwargs["build_params"] = {**build, next(iter(build)): bad}
        name = next(iter(good), "param")
    _refused_or_ok(lambda: spec.validate_search(index_type, params, **kwargs), name, "param")


# ----------------------------------------------------------------------------------------- collection-level
@FAST
@given(hostile, st.sampled_from(PROFILES))
def test_top_k_dimension_index_file_size_robust_to_hostile_values(value, profile):
    for call, name in ((lambda: spec.validate_top_k(value, profile=profile), "top_k"),
                       (lambda: spec.validate_dimension(value, "L2", profile=profile), "dimension"),
                       (lambda: spec.validate_dimension(value, "HAMMING", profile=profile), "dimension"),
                       (lambda: spec.validate_dimension(48, value, profile=profile), "metric"),
                       (lambda: spec.validate_index_file_size(value, profile=profile), "index_file_size")):
        result = _refused_or_ok(call, name)
        if not isinstance(result, MilvusLabError):
            assert type(result) is int


@FAST
@given(hostile, st.sampled_from(PROFILES))
def test_lookups_robust_to_hostile_values(value, profile):
    _refused_or_ok(lambda: spec.get_index(value, profile=profile), "index")
    _refused_or_ok(lambda: spec.get_index("HNSW", profile=value), "profile")
    _refused_or_ok(lambda: spec.normalize_metric(value, profile=profile), "metric")
    _refused_or_ok(lambda: spec.index_types_for_metric(value, profile=profile), "metric")
    _refused_or_ok(lambda: spec.native_index_name("IVF_FLAT", value, profile=profile), "metric")
    _refused_or_ok(lambda: spec.is_binary_metric(value))
    _refused_or_ok(lambda: spec.INDEXES["IVF_FLAT"].notes_for(value))
    _refused_or_ok(lambda: spec.format_params(value), "params")
    _refused_or_ok(lambda: spec.format_params({"nlist": value}), "params")
    _refused_or_ok(lambda: spec.pq_allowed_m(value), "dimension")
    _refused_or_ok(lambda: spec.as_int(value))
    assert isinstance(spec.show_value(value), str)


@FAST
@given(st.sampled_from(PROFILES), st.sampled_from(ALL_TYPES), st.data())
def test_unavailable_and_raw_reasons_robust_to_hostile_values(profile, index_type, data):
    bad = data.draw(hostile, label="bad")
    where = data.draw(st.sampled_from(["dim", "metric", "rows", "index_type"]))
    kwargs: dict[str, Any] = {"dim": 48, "metric": "L2", "rows": 5000, "profile": profile}
    it = index_type
    if where == "index_type":
        it = bad
    else:
        kwargs[where] = bad
    name = {"dim": "dimension", "metric": "metric", "rows": "rows", "index_type": "index"}[where]
    result = _refused_or_ok(lambda: spec.unavailable_reason(it, **kwargs), name)
    assert result is None or isinstance(result, (str, MilvusLabError))

    where = data.draw(st.sampled_from(["params", "value", "rows", "build_threshold"]))
    args: dict[str, Any] = {"params": {"nlist": 16, "m": 8, "knng": 30, "search_length": 40, "M": 8,
                                       "efConstruction": 40, "n_trees": 4, "out_degree": 20,
                                       "candidate_pool_size": 100},
                            "rows": 5000, "build_threshold": 4096}
    if where == "value":
        args["params"] = {k: bad for k in args["params"]}
    else:
        args[where] = bad
    name = {"params": "param", "value": "", "rows": "rows", "build_threshold": "build_threshold"}[where]
    if index_type in spec.PROFILES[profile].unavailable:
        return
    result = _refused_or_ok(lambda: spec.segment_raw_reason(index_type, args["params"], args["rows"],
                                                            build_threshold=args["build_threshold"],
                                                            profile=profile), *([name] if name else []))
    assert result is None or isinstance(result, (str, MilvusLabError))


@FAST
@given(st.sampled_from(PROFILES), st.sampled_from(ALL_TYPES), hostile)
def test_default_params_robust_to_hostile_values(profile, index_type, bad):
    _refused_or_ok(lambda: spec.default_build_params(index_type, bad, profile=profile), "dimension", "available")
    _refused_or_ok(lambda: spec.default_search_params(index_type, bad, profile=profile), "top_k", "available")
    _refused_or_ok(lambda: spec.default_search_params(index_type, 10, bad, profile=profile), "build_params",
                   "available")
    _refused_or_ok(lambda: spec.default_search_params(index_type, 10, {"nlist": bad, "n_trees": bad},
                                                      profile=profile), "available")


# ----------------------------------------------------------------------------------------- engine/validation
@FAST
@given(hostile)
def test_engine_argument_checks_robust_to_hostile_values(value):
    _refused_or_ok(lambda: validation.collection_name(value), "collection_name")
    _refused_or_ok(lambda: validation.partition_tag(value), "partition_tag")
    _refused_or_ok(lambda: validation.id_list(value), "ids")
    _refused_or_ok(lambda: validation.id_list([1, value, 3]), "ids")
    _refused_or_ok(lambda: validation.float_vectors(value, 4), "records")
    _refused_or_ok(lambda: validation.float_vectors([[1.0, 2.0, 3.0, value]], 4), "records")
    _refused_or_ok(lambda: validation.float_vectors([value, value], 4), "records")
    _refused_or_ok(lambda: validation.binary_vectors(value, 16), "records")
    _refused_or_ok(lambda: validation.binary_vectors([b"ab", value], 16), "records")
