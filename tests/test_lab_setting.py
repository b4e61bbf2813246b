"""A setting is a typed value: equal and hashed alike whatever order or integer kind its parameters came in,
JSON only in a table column, and nothing but integers accepted as parameter values."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from milvus_lab.errors import ParamError
from milvus_lab.lab.arguments import Number, check
from milvus_lab.lab.setting import Setting


def test_the_order_parameters_come_in_does_not_make_another_setting():
    a = Setting.of("RNSG", {"knng": 50, "out_degree": 40, "search_length": 45, "candidate_pool_size": 300})
    b = Setting.of("RNSG", {"search_length": 45, "out_degree": 40, "candidate_pool_size": 300, "knng": 50})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    # kept in the spec's declared order, so the JSON column is the same text either way
    assert a.columns()["build_params"] == b.columns()["build_params"] == json.dumps(
        {"search_length": 45, "out_degree": 40, "candidate_pool_size": 300, "knng": 50})


def test_numpy_integers_are_the_same_setting_as_python_integers():
    a = Setting.of("HNSW", {"M": np.int32(16), "efConstruction": np.uint16(200)}, {"ef": np.int64(64)})
    b = Setting.of("HNSW", {"M": 16, "efConstruction": 200}, {"ef": 64})
    assert a == b and hash(a) == hash(b)
    assert all(type(v) is int for _, v in a.build + a.search)


@pytest.mark.parametrize("value", [True, 16.0, "16", None, np.float32(16), [16]])
def test_a_value_that_is_not_an_integer_is_refused_naming_the_parameter(value):
    with pytest.raises(ParamError, match=r"build parameter M of HNSW must be an int; got"):
        Setting.of("HNSW", {"M": value, "efConstruction": 200})
    with pytest.raises(ParamError, match=r"search parameter ef of HNSW must be an int; got"):
        Setting.of("HNSW", {"M": 16}).with_search({"ef": value})


@given(build=st.dictionaries(st.sampled_from(["nlist", "m", "extra", "zzz"]), st.integers(-2**63, 2**63 - 1)),
       search=st.dictionaries(st.sampled_from(["nprobe", "other"]), st.integers(-2**63, 2**63 - 1)))
def test_columns_round_trip_to_the_same_setting(build, search):
    setting = Setting.of("IVF_PQ", build, search)
    cols = setting.columns()
    assert Setting.from_columns(cols["index_type"], cols["build_params"], cols["search_params"]) == setting
    assert setting.build_params == build and setting.search_params == search
    # declared names first (nlist, m), then any others sorted
    declared = [n for n in ("nlist", "m") if n in build]
    assert [n for n, _ in setting.build][:len(declared)] == declared


def test_label_names_type_build_and_search():
    assert Setting.of("IVF_FLAT", {"nlist": 1024}, {"nprobe": 16}).label() == "IVF_FLAT nlist=1024; nprobe=16"
    assert Setting.of("FLAT").label() == "FLAT"


@pytest.mark.parametrize("value", [1.0, 1, 2.5])
def test_an_open_upper_bound_refuses_the_bound_itself(value):
    with pytest.raises(ParamError, match=r"holdout must be a number > 0 and < 1; got"):
        check("holdout", value)
    assert check("share", 0.999, Number(0.0, 1.0, none_ok=False, high_open=True)) == 0.999
    assert check("share", 1.0, Number(0.0, 1.0, none_ok=False)) == 1.0
