"""Every parameter of every index type, boundaries generated from the spec, checked through the facade."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milvus_lab import IndexType, MetricType, Milvus, spec
from milvus_lab.errors import InvalidParameterError, StatusCode

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
@settings(max_examples=200)
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
