"""Every parameter of every index type, boundaries generated from the spec, checked through the facade."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import EvilIndex, EvilIntSubclass, examples

from milvus_lab import IndexType, MetricType, Milvus, spec
from milvus_lab.engine import validation
from milvus_lab.errors import (
    IllegalDimensionError,
    IllegalIndexTypeError,
    IllegalMetricError,
    IllegalTopKError,
    InvalidParameterError,
    MilvusLabError,
    ParamError,
    StatusCode,
)

DIM = 48  # admits IVF_PQ (m in 2, 3, 4, 8, 12, 16, 24, 48)


@pytest.fixture(scope="module")
def client():
    milvus = Milvus()
    for metric in ("L2", "IP"):
        milvus.create_collection({"collection_name": f"c_{metric}", "dimension": DIM,
                                  "metric_type": MetricType[metric]})
        rows = np.random.default_rng(0).random((20, DIM), dtype=np.float32)
        milvus.insert(f"c_{metric}", rows)
    yield milvus
    milvus.close()


def _valid_params(index: str, dim: int = DIM) -> dict[str, int]:
    return spec.default_build_params(index, dim)


BUILD_CASES = [(name, pname) for name, s in spec.INDEXES.items() for pname in s.build]


def _boundary_cases(index: str, pname: str, dim: int = DIM):
    """(value, accepted) pairs at and just outside each bound, derived from the spec in context."""
    param = spec.INDEXES[index].build[pname]
    base = _valid_params(index, dim)
    if param.choices is not None:
        allowed = spec.allowed_values(param, {"dim": dim})
        rejected = sorted({v + d for v in allowed for d in (-1, 1)} - set(allowed))
        return [(v, True) for v in allowed] + [(v, False) for v in rejected]
    ctx = {"dim": dim, **base}
    low, high = spec.bounds(param, ctx)
    return [(low, True), (high, True), (low - 1, False), (high + 1, False)]


@pytest.mark.parametrize("index,pname", BUILD_CASES)
def test_build_boundaries_accepted_and_first_outside_rejected(client, index, pname):
    param = spec.INDEXES[index].build[pname]
    for value, accepted in _boundary_cases(index, pname):
        params = _valid_params(index)
        if index == "RNSG" and pname == "candidate_pool_size":
            params["search_length"] = spec.bounds(spec.INDEXES[index].build["search_length"])[0]
        params[pname] = value
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            status = client.create_index("c_L2", IndexType[index], params)
        if accepted:
            assert status.OK(), (index, pname, value, status)
            _, info = client.get_index_info("c_L2")
            assert info.params == params and info.index_type == IndexType[index]
        else:
            assert status.code == param.code, (index, pname, value, status)
            assert pname in status.message and str(value) in status.message


@pytest.mark.parametrize("index", [n for n, s in spec.INDEXES.items() if s.build])
def test_missing_unknown_bool_and_float_params_are_refused(client, index):
    good = _valid_params(index)
    first = next(iter(good))
    cases = [
        {k: v for k, v in good.items() if k != first},       # missing
        {**good, "bogus": 1},                                   # unknown
        {**good, first: True},                                  # bool
        {**good, first: float(good[first]) + 0.5},              # non-integer
        {**good, first: str(good[first])},                      # string
    ]
    client.create_index("c_L2", IndexType.FLAT)
    for params in cases:
        status = client.create_index("c_L2", IndexType[index], params)
        assert not status.OK(), params
        assert status.code in (StatusCode.ILLEGAL_ARGUMENT, StatusCode.ILLEGAL_NLIST)
        assert client.get_index_info("c_L2")[1].index_type == IndexType.FLAT  # unchanged


SEARCH_CASES = [(name, pname) for name, s in spec.INDEXES.items() for pname in s.search]


@pytest.mark.parametrize("index,pname", SEARCH_CASES)
@pytest.mark.parametrize("top_k", [1, 10])
def test_search_boundaries(client, index, pname, top_k):
    build = _valid_params(index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert client.create_index("c_IP", IndexType[index], build).OK()
    param = spec.INDEXES[index].search[pname]
    ctx = spec.search_context(top_k, build)
    low, high = spec.bounds(param, ctx)
    cases = [(low, True), (low - 1, low - 1 in param.special)]
    if high is not None:
        cases += [(high, True), (high + 1, False)]
    cases += [(s, True) for s in param.special]
    q = np.zeros((1, DIM), np.float32)
    for value, accepted in cases:
        status, result = client.search("c_IP", top_k, q, params={pname: value})
        assert status.OK() is accepted, (index, pname, value, status)
        if not accepted:
            assert status.code == StatusCode.ILLEGAL_ARGUMENT and str(value) in status.message


@pytest.mark.parametrize("dim", [8, 16, 32, 48, 50, 64, 96, 100, 128, 256, 768])
def test_ivf_pq_m_against_dimension(dim):
    allowed = spec.pq_allowed_m(dim)
    for m in spec.PQ_M_CHOICES:
        ok = dim % m == 0 and dim // m in spec.PQ_SUBVECTOR_DIMS
        if ok:
            assert m in allowed
            spec.validate_build("IVF_PQ", {"nlist": 16, "m": m}, dim=dim, metric="L2")
        else:
            with pytest.raises(InvalidParameterError) as err:
                spec.validate_build("IVF_PQ", {"nlist": 16, "m": m}, dim=dim, metric="L2")
            assert f"m={m}" in str(err.value) and str(dim) in str(err.value)
            if allowed:
                assert ", ".join(map(str, allowed)) in str(err.value)
            else:
                assert "IVF_PQ cannot index this data" in str(err.value)
    assert allowed == sorted(allowed)


def test_ivf_pq_message_for_128_and_50():
    with pytest.raises(InvalidParameterError, match=r"m=5 does not divide dimension 128; allowed m for dim "
                                                    r"128: 4, 8, 16, 32, 64"):
        spec.validate_build("IVF_PQ", {"nlist": 16, "m": 5}, dim=128, metric="L2")
    assert spec.pq_allowed_m(50) == []
    with pytest.raises(InvalidParameterError, match="no m is allowed for dimension 50"):
        spec.default_build_params("IVF_PQ", 50)


@given(st.integers(10, 1000), st.integers(50, 1000))
def test_rnsg_search_length_below_candidate_pool(search_length, pool):
    params = {"search_length": search_length, "out_degree": 50, "candidate_pool_size": pool, "knng": 70}
    valid = search_length <= 300 and search_length < pool
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if valid:
            spec.validate_build("RNSG", params, dim=8, metric="L2")
        else:
            with pytest.raises(InvalidParameterError, match="search_length"):
                spec.validate_build("RNSG", params, dim=8, metric="L2")


@given(st.integers(1, 16384), st.integers(-5, 5000))
def test_hnsw_ef_at_least_top_k(top_k, ef):
    valid = top_k <= ef <= 4096
    if valid:
        assert spec.validate_search("HNSW", {"ef": ef}, top_k=top_k, build_params={}) == {"ef": ef}
    else:
        with pytest.raises(InvalidParameterError, match=f"ef={ef}"):
            spec.validate_search("HNSW", {"ef": ef}, top_k=top_k, build_params={})


@given(st.integers(1, 16384), st.integers(-3, 40000))
@settings(max_examples=examples(200), deadline=None)
def test_annoy_search_k_minus_one_or_at_least_top_k(top_k, search_k):
    valid = search_k == -1 or search_k >= top_k
    if valid:
        spec.validate_search("ANNOY", {"search_k": search_k}, top_k=top_k, build_params={})
    else:
        with pytest.raises(InvalidParameterError, match="search_k"):
            spec.validate_search("ANNOY", {"search_k": search_k}, top_k=top_k, build_params={})


@given(st.integers(1, 65536), st.integers(-2, 70000))
def test_nprobe_at_most_built_nlist(nlist, nprobe):
    valid = 1 <= nprobe <= nlist
    if valid:
        spec.validate_search("IVF_FLAT", {"nprobe": nprobe}, top_k=10, build_params={"nlist": nlist})
    else:
        with pytest.raises(InvalidParameterError) as err:
            spec.validate_search("IVF_FLAT", {"nprobe": nprobe}, top_k=10, build_params={"nlist": nlist})
        assert f"nprobe={nprobe}" in str(err.value)
        if nprobe > nlist:
            assert f"nprobe <= {nlist}" in str(err.value) and "built index" in str(err.value)


def test_recommendation_warns_but_accepts():
    with pytest.warns(UserWarning, match="recommended"):
        spec.validate_build("RNSG", {"search_length": 20, "out_degree": 50, "candidate_pool_size": 300,
                                     "knng": 70}, dim=8, metric="L2")
    with pytest.warns(UserWarning, match="knng = out_degree"):
        spec.validate_build("RNSG", {"search_length": 45, "out_degree": 50, "candidate_pool_size": 300,
                                     "knng": 100}, dim=8, metric="L2")


def test_metrics_per_index_type():
    for metric in spec.BINARY_METRICS:
        allowed = spec.index_types_for_metric(metric)
        assert allowed == (["FLAT", "IVF_FLAT"] if metric in ("HAMMING", "JACCARD", "TANIMOTO") else ["FLAT"])
    assert spec.index_types_for_metric("L2") == list(spec.INDEXES)
    with pytest.raises(Exception) as err:
        spec.validate_build("HNSW", {"M": 16, "efConstruction": 100}, dim=16, metric="HAMMING")
    assert err.value.code == StatusCode.ILLEGAL_INDEX_TYPE and "HNSW" in str(err.value)


def test_defaults_are_valid_for_every_type():
    for name in spec.INDEXES:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _, clean = spec.validate_build(name, spec.default_build_params(name, DIM), dim=DIM, metric="L2")
        for top_k in (1, 10, 100):
            spec.validate_search(name, spec.default_search_params(name, top_k, clean), top_k=top_k,
                                 build_params=clean)


def test_sweep_values_stay_inside_bounds():
    for name, s in spec.INDEXES.items():
        build = spec.default_build_params(name, DIM)
        for param in s.search.values():
            ctx = spec.search_context(10, build)
            values = spec.sweep_values(param, ctx, stop=4096)
            assert values
            for v in values:
                spec.check_value(name, param, v, ctx)


def test_parameter_table_covers_every_parameter():
    rows = spec.parameter_table()
    names = {(r["index_type"], r["stage"], r["parameter"]) for r in rows}
    for name, s in spec.INDEXES.items():
        for stage, params in (("build", s.build), ("search", s.search)):
            for p in params:
                assert (name, stage, p) in names


# ------------------------------------------------------------------------------------------ profiles
SERVER = spec.SERVER_PROFILE


def test_profiles_are_declared():
    assert spec.DEFAULT_PROFILE == "milvus-0.10" and SERVER == "milvus-2.3"
    assert set(spec.PROFILES) == {spec.DEFAULT_PROFILE, SERVER}
    default, server = spec.PROFILES[spec.DEFAULT_PROFILE], spec.PROFILES[SERVER]
    assert default.indexes is spec.INDEXES and default.unavailable == {}
    assert default.title.startswith("Milvus 0.10") and server.title == "Milvus 2.3"
    assert list(server.indexes) == ["FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW"]
    assert set(server.unavailable) == {"IVF_SQ8H", "RNSG", "ANNOY"}
    for prof in (default, server):
        assert prof.top_k is spec.TOP_K_PARAM and prof.dimension is spec.DIMENSION_PARAM
        assert prof.index_file_size is spec.INDEX_FILE_SIZE_PARAM


@pytest.mark.parametrize("index_type", ["ANNOY", "RNSG", "IVF_SQ8H", "NSG", "ivf_sq8_h"])
def test_server_profile_refuses_what_milvus_23_lacks_with_the_reason(index_type):
    key = spec.INDEX_ALIASES.get(index_type.upper(), index_type.upper())
    reason = spec.PROFILES[SERVER].unavailable[key]
    with pytest.raises(IllegalIndexTypeError) as err:
        spec.get_index(index_type, profile=SERVER)
    assert str(err.value) == f"{key} is not available on Milvus 2.3: {reason}"
    assert err.value.code == StatusCode.ILLEGAL_INDEX_TYPE
    with pytest.raises(IllegalIndexTypeError, match="not available on Milvus 2.3"):
        spec.validate_build(index_type, {}, dim=48, metric="L2", profile=SERVER)
    assert spec.unavailable_reason(index_type, dim=48, metric="L2", profile=SERVER) == str(err.value)
    assert spec.get_index(index_type).name == key  # still there in memory


def test_server_profile_ranges():
    def build(index_type, params, dim=48, metric="L2"):
        return spec.validate_build(index_type, params, dim=dim, metric=metric, profile=SERVER)[1]

    assert build("IVF_FLAT", {"nlist": 65536}) == {"nlist": 65536}
    with pytest.raises(InvalidParameterError, match="nlist=65537"):
        build("IVF_FLAT", {"nlist": 65537})
    assert build("HNSW", {"M": 2048, "efConstruction": 2**31 - 1}) == {"M": 2048, "efConstruction": 2**31 - 1}
    assert build("HNSW", {"M": 2, "efConstruction": 1}) == {"M": 2, "efConstruction": 1}
    with pytest.raises(InvalidParameterError, match=r"M=1 is out of range; allowed: 2 <= M <= 2048"):
        build("HNSW", {"M": 1, "efConstruction": 100})
    with pytest.raises(InvalidParameterError, match="M=1"):  # in memory too (4..64)
        spec.validate_build("HNSW", {"M": 1, "efConstruction": 100}, dim=48, metric="L2")
    assert build("IVF_PQ", {"nlist": 16, "m": 25}, dim=50) == {"nlist": 16, "m": 25}  # divides: enough on 2.3
    with pytest.raises(InvalidParameterError, match="m=7 does not divide dimension 50; allowed m for dim 50: "
                                                    "1, 2, 5, 10, 25, 50"):
        build("IVF_PQ", {"nlist": 16, "m": 7}, dim=50)
    assert build("IVF_FLAT", {"nlist": 16}, dim=64, metric="JACCARD") == {"nlist": 16}
    with pytest.raises(IllegalMetricError, match="TANIMOTO is not available on Milvus 2.3"):
        build("FLAT", {}, dim=64, metric="TANIMOTO")
    assert spec.native_index_name("IVF_FLAT", "HAMMING", profile=SERVER) == "BIN_IVF_FLAT"
    assert spec.native_index_name("FLAT", "JACCARD", profile=SERVER) == "BIN_FLAT"
    assert spec.native_index_name("IVF_FLAT", "L2", profile=SERVER) == "IVF_FLAT"
    assert spec.get_index("BIN_IVF_FLAT", profile=SERVER).name == "IVF_FLAT"
    assert spec.index_types_for_metric("HAMMING", profile=SERVER) == ["FLAT", "IVF_FLAT"]


def test_server_profile_search_rules():
    def search(index_type, params, top_k=10, build=None):
        return spec.validate_search(index_type, params, top_k=top_k, build_params=build or {}, profile=SERVER)

    assert search("IVF_FLAT", {"nprobe": 64}, build={"nlist": 64}) == {"nprobe": 64}
    with pytest.raises(InvalidParameterError, match=r"nprobe=65 is out of range; allowed: 1 <= nprobe <= 64 "
                                                    r"\(nprobe <= nlist of the built index\)"):
        search("IVF_FLAT", {"nprobe": 65}, build={"nlist": 64})
    assert search("HNSW", {"ef": 32768}) == {"ef": 32768}
    with pytest.raises(InvalidParameterError, match=r"ef=9 is out of range; allowed: 10 <= ef <= 32768 "
                                                    r"\(ef >= top_k\)"):
        search("HNSW", {"ef": 9})
    with pytest.raises(InvalidParameterError, match="ef=32769"):
        search("HNSW", {"ef": 32769})


# ------------------------------------------------------------------------------------------ reasons
def test_unavailable_reason():
    reason = spec.unavailable_reason("IVF_PQ", dim=50, metric="L2")
    assert reason == ("IVF_PQ cannot index 50-dimensional vectors: no m is allowed for dimension 50 (dim % m == 0 "
                      "and dim / m in {1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 28, 32}); dimensions 48 or 56 would "
                      "allow it")
    assert spec.unavailable_reason("IVF_PQ", dim=48, metric="L2") is None
    assert spec.unavailable_reason("IVF_PQ", dim=50, metric="L2", profile=SERVER) is None  # m=1, 2, 5, ...
    assert spec.default_build_params("IVF_PQ", 50, profile=SERVER) == {"nlist": 1024, "m": 10}
    assert spec.unavailable_reason("HNSW", dim=64, metric="HAMMING") == (
        "HNSW does not support metric HAMMING on Milvus 0.10 (milvus_lab in memory); index types for HAMMING: "
        "FLAT, IVF_FLAT")
    assert spec.unavailable_reason("FLAT", dim=64, metric="TANIMOTO", profile=SERVER) == (
        "metric TANIMOTO is not available on Milvus 2.3")
    assert spec.unavailable_reason("IVF_FLAT", dim=48, metric="L2", rows=1024) is None
    assert spec.unavailable_reason("IVF_FLAT", dim=48, metric="L2", rows=1023) == (
        "IVF_FLAT needs at least 1,024 rows to train with its default parameters (a segment needs at least nlist "
        "rows to train the k-means cells); the data has 1,023")
    assert "IVF_PQ needs at least 1,024 rows" in spec.unavailable_reason("IVF_PQ", dim=48, metric="L2", rows=300)
    for index_type in spec.INDEXES:
        assert spec.unavailable_reason(index_type, dim=48, metric="IP", rows=10**6) is None
    with pytest.raises(IllegalIndexTypeError):
        spec.unavailable_reason("IVF_FOO", dim=48, metric="L2")


def test_segment_raw_reason():
    def raw(index_type, params, rows, threshold=4096, **kw):
        return spec.segment_raw_reason(index_type, params, rows, build_threshold=threshold, **kw)

    assert raw("FLAT", {}, 1) is None
    assert raw("IVF_FLAT", {"nlist": 1024}, 5000) is None
    assert raw("IVF_FLAT", {"nlist": 1024}, 500) == "500 rows is below the build threshold of 4,096 rows"
    assert raw("IVF_FLAT", {"nlist": 2048}, 2000, 0) == (
        "2,000 rows is fewer than IVF_FLAT needs to train (a segment needs at least nlist rows to train the "
        "k-means cells: 2,048)")
    assert "max(nlist, 256)" in raw("IVF_PQ", {"nlist": 16, "m": 8}, 255, 0)
    assert raw("IVF_PQ", {"nlist": 16, "m": 8}, 256, 0) is None
    rnsg = spec.default_build_params("RNSG")
    need = max(rnsg["knng"], rnsg["search_length"]) + 1
    assert raw("RNSG", rnsg, need, 0) is None
    assert "distinct rows" in raw("RNSG", rnsg, need - 1, 0)
    assert raw("HNSW", {"M": 16, "efConstruction": 200}, 1, 0) is None
    assert raw("HNSW", {"M": 16, "efConstruction": 200}, 1, 2, profile=SERVER) is not None
    with pytest.raises(IllegalIndexTypeError, match="not available on Milvus 2.3"):
        raw("ANNOY", {"n_trees": 8}, 10, profile=SERVER)


# ------------------------------------------------------------------------------------------ generated help
def test_rule_help_is_generated_from_the_bounds():
    ivf, pq, rnsg, hnsw, annoy = (spec.INDEXES[n] for n in ("IVF_FLAT", "IVF_PQ", "RNSG", "HNSW", "ANNOY"))
    assert rnsg.build["search_length"].rule_help == "search_length < candidate_pool_size"
    assert hnsw.search["ef"].rule_help == "ef >= top_k"
    assert ivf.search["nprobe"].rule_help == "nprobe <= nlist of the built index"
    assert annoy.search["search_k"].rule_help == "search_k = -1 or search_k >= top_k"
    assert pq.build["m"].rule_help == "dim % m == 0 and dim / m in {" + ", ".join(
        map(str, spec.PQ_SUBVECTOR_DIMS)) + "}"
    assert hnsw.build["M"].rule_help == "" and ivf.build["nlist"].rule_help == ""
    server_m = spec.PROFILES[SERVER].indexes["IVF_PQ"].build["m"]
    assert server_m.rule_help == "m <= dim and dim % m == 0"
    # every Ref renders as a rule, whatever its side and offset
    assert spec.Ref("x", 1).rule("p", "low") == "p > x"
    assert spec.Ref("x", 2).rule("p", "low") == "p >= x + 2"
    assert spec.Ref("x", -2).rule("p", "high") == "p <= x - 2"
    assert spec.Ref("top_k", factor="n_trees").rule("p", "low") == "p >= n_trees * top_k"
    assert isinstance(vars(spec.IndexSpec)["min_rows_help"], property)  # generated from MinRows
    assert ivf.min_rows_help == "a segment needs at least nlist rows to train the k-means cells"
    assert pq.min_rows_help == f"a segment needs at least max(nlist, {spec.PQ_MIN_TRAIN_ROWS}) rows to train"


def test_ivf_pq_messages_never_list_an_empty_set_or_blame_twice():
    for m in (0, 1, 2, 5, 7, 10, 25, 50, 96, 97, "x", 2.0):
        with pytest.raises(InvalidParameterError) as err:
            spec.validate_build("IVF_PQ", {"nlist": 16, "m": m}, dim=50, metric="L2")
        text = str(err.value)
        assert "{}" not in text, text
        assert "no m is allowed for dimension 50, so IVF_PQ cannot index this data" in text, text
        assert text.count(f"m={m!r}" if isinstance(m, str) else f"m={m}") == 1, text
    text = str(pytest.raises(InvalidParameterError, spec.validate_build, "IVF_PQ", {"nlist": 16, "m": 5},
                             dim=5, metric="L2").value)
    assert "{}" not in text and "no m is allowed for dimension 5" in text
    assert spec.describe_allowed(spec.INDEXES["IVF_PQ"].build["m"], {"dim": 50}).startswith(
        "no m is allowed for dimension 50")


# ------------------------------------------------------------------------------------------ collection params
def test_top_k_dimension_index_file_size_are_int_params_with_their_codes():
    with pytest.raises(IllegalTopKError) as err:
        spec.check_value("", spec.TOP_K_PARAM, 0, {})
    assert err.value.code == StatusCode.ILLEGAL_TOPK and "top_k=0" in str(err.value)
    assert isinstance(err.value, InvalidParameterError)  # forms catch InvalidParameterError
    with pytest.raises(IllegalTopKError) as err:
        spec.validate_top_k(0)
    assert err.value.code == StatusCode.ILLEGAL_TOPK
    with pytest.raises(IllegalDimensionError) as err:
        spec.check_value("", spec.DIMENSION_PARAM, 0, {"metric": "L2"})
    assert err.value.code == StatusCode.ILLEGAL_DIMENSION and "dimension=0" in str(err.value)
    with pytest.raises(IllegalDimensionError, match="not a multiple of 8"):
        spec.validate_dimension(12, "HAMMING")
    assert spec.validate_dimension(12, "L2") == 12
    with pytest.raises(InvalidParameterError) as err:
        spec.validate_index_file_size(0)
    assert err.value.code == StatusCode.ILLEGAL_ARGUMENT and "index_file_size=0" in str(err.value)
    # pymilvus raises ParamError for a value that is not an int
    for call in (lambda v: spec.validate_top_k(v), lambda v: spec.validate_dimension(v, "L2"),
                 lambda v: spec.validate_index_file_size(v)):
        for bad in ("10", 10.0, True, None, np.array(10)):
            with pytest.raises(ParamError):
                call(bad)
        assert call(np.int64(16)) == 16 and type(call(np.int64(16))) is int


def test_format_params_sweep_range_and_recommend():
    assert spec.format_params({"nlist": 1024, "nprobe": 16}) == "nlist=1024, nprobe=16"
    assert spec.format_params({}) == spec.format_params(None) == ""
    annoy = spec.INDEXES["ANNOY"].search["search_k"]
    assert spec.sweep_range(annoy, {"top_k": 10, "n_trees": 8, "rows": 1000}) == (80, 8000)
    assert spec.sweep_range(annoy, {"top_k": 10, "n_trees": 8, "rows": 2}) == (80, 80)
    assert spec.sweep_range(spec.INDEXES["RNSG"].search["search_length"], {"top_k": 20}) == (20, None)
    assert spec.sweep_range(spec.INDEXES["HNSW"].search["ef"], {"top_k": 20}) == (None, None)
    assert [n for n, s in spec.INDEXES.items() if not s.recommend] == ["IVF_SQ8H"]
    assert spec.INDEXES["IVF_SQ8H"].same_as == "IVF_SQ8"
    assert all(s.same_as is None for n, s in spec.INDEXES.items() if n != "IVF_SQ8H")


def test_effective_value_and_notes_for_metric():
    param = spec.INDEXES["RNSG"].search["search_length"]
    assert param.used_help == "searched with max(search_length, top_k)"
    assert spec.effective_value(param, 10, {"top_k": 50}) == 50
    assert spec.effective_value(param, 120, {"top_k": 50}) == 120
    assert spec.INDEXES["HNSW"].search["ef"].used_help == ""
    with pytest.raises(InvalidParameterError, match="search_length=9"):
        spec.effective_value(param, 9, {"top_k": 5})
    ivf = spec.INDEXES["IVF_FLAT"]
    assert ivf.notes_for("L2") == "" and "JACCARD" in ivf.notes_for("JACCARD")
    assert "Hamming" in ivf.notes_for("TANIMOTO") and "JACCARD" not in ivf.notes_for("TANIMOTO")
    assert spec.INDEXES["IVF_SQ8H"].notes_for("L2") == spec.INDEXES["IVF_SQ8H"].notes


def test_huge_values_are_refused_with_a_short_message():
    """A refusal, unlike the robustness checks of test_hostile_spec.py: it fails when the value is accepted."""
    with pytest.raises(MilvusLabError, match="(?i)top_k") as refused:
        spec.validate_top_k(10**5000)
    assert len(str(refused.value)) < 300 and "bits" in str(refused.value)
    with pytest.raises(MilvusLabError, match="(?i)ids") as refused:
        validation.id_list([10**5000])
    assert len(str(refused.value)) < 300
    reason = spec.segment_raw_reason("IVF_FLAT", {"nlist": 16}, 5, build_threshold=10**5000)
    assert "build threshold" in reason and len(reason) < 300
    assert spec.as_int(np.int64(16)) == 16 and type(spec.as_int(np.int64(16))) is int
    assert spec.as_int(EvilIntSubclass(3)) == 3 and type(spec.as_int(EvilIntSubclass(3))) is int
    for not_an_int in (True, 16.0, np.array(16), "16", EvilIndex(), math.nan):
        assert spec.as_int(not_an_int) is None
