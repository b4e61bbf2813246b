"""The lab's datasets: loaders, round trips, the query split, exact ground truth, clear errors."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import clustered

from milvus_lab import lab, numerics
from milvus_lab.errors import IllegalDimensionError, IllegalRecordError, MilvusLabError, ParamError
from milvus_lab.folders import CACHE_DIR_ENV
from milvus_lab.lab import datasets as lab_datasets


def exact_ids_f64(base: np.ndarray, queries: np.ndarray, k: int, metric: str = "L2") -> np.ndarray:
    """Exact neighbours in float64 NumPy, independent of faiss."""
    b, q = base.astype(np.float64), queries.astype(np.float64)
    if metric == "IP":
        scores = -(q @ b.T)
    else:
        scores = ((q[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return np.argsort(scores, axis=1, kind="stable")[:, :k]


@pytest.fixture(scope="module")
def gauss():
    return np.random.default_rng(3).normal(size=(1200, 24)).astype(np.float32)


# ------------------------------------------------------------------ arrays and the split
def test_from_array_holds_out_queries_from_the_base(gauss):
    ds = lab.from_array(gauss, n_queries=100, seed=1)
    assert (ds.n, ds.nq, ds.dim) == (1100, 100, 24)
    assert ds.base.dtype == np.float32 and ds.base.flags["C_CONTIGUOUS"]
    rows = {r.tobytes() for r in gauss}
    base_rows = {r.tobytes() for r in ds.base}
    query_rows = {r.tobytes() for r in ds.queries}
    assert not base_rows & query_rows
    assert base_rows | query_rows == rows
    again = lab.from_array(gauss, n_queries=100, seed=1)
    np.testing.assert_array_equal(again.queries, ds.queries)


def test_default_and_fractional_query_counts(gauss):
    assert lab.from_array(gauss).nq == 120  # min(1000, n / 10)
    assert lab.from_array(gauss, n_queries=0.25).nq == 300
    with pytest.raises(ParamError, match="n_queries"):
        lab.from_array(gauss, n_queries=1200)


def test_explicit_queries_are_kept(gauss):
    ds = lab.from_array(gauss[:1000], gauss[1000:], metric="IP")
    assert (ds.n, ds.nq, ds.metric) == (1000, 200, "IP")
    np.testing.assert_array_equal(ds.queries, gauss[1000:])


@pytest.mark.parametrize("bad, match", [
    (np.zeros(10, np.float32), "2-D"),
    (np.zeros((2, 3, 4), np.float32), "2-D"),
    (np.zeros((0, 8), np.float32), "empty"),
    (np.array([[1.0, 2.0], [3.0]], dtype=object), "different lengths|dtype object"),
    (np.array([["a", "b"]]), "real numbers"),
])
def test_bad_arrays_are_refused(bad, match):
    with pytest.raises(IllegalRecordError, match=match):
        lab.from_array(bad, n_queries=1)


def test_nan_and_inf_are_refused_naming_the_row(gauss):
    bad = gauss.copy()
    bad[7, 3] = np.nan
    with pytest.raises(IllegalRecordError, match="NaN or inf.*row 7"):
        lab.from_array(bad)
    q = gauss[:5].copy()
    q[2, 0] = np.inf
    with pytest.raises(IllegalRecordError, match="query vectors.*row 2"):
        lab.from_array(gauss, q)


def test_dimension_mismatch_is_refused(gauss):
    with pytest.raises(IllegalDimensionError, match="query vectors have 23 columns but 24 are expected"):
        lab.from_array(gauss, gauss[:10, :23])


def test_normalize_gives_unit_rows(gauss):
    ds = lab.from_array(gauss, n_queries=10, normalize=True, metric="IP")
    np.testing.assert_allclose(np.linalg.norm(ds.base, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ds.queries, axis=1), 1.0, rtol=1e-5)


def test_binary_metrics_are_refused(gauss):
    with pytest.raises(ParamError, match="L2, IP"):
        lab.from_array(gauss, metric="HAMMING")


# ------------------------------------------------------------------ ground truth
@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_ground_truth_matches_brute_force(gauss, metric):
    ds = lab.from_array(gauss, n_queries=60, metric=metric)
    np.testing.assert_array_equal(ds.ground_truth(10), exact_ids_f64(ds.base, ds.queries, 10, metric))


def test_ground_truth_is_computed_once_and_sliced(gauss, monkeypatch):
    ds = lab.from_array(gauss, n_queries=30)
    calls = []
    real = numerics.exact_knn
    monkeypatch.setattr(numerics, "exact_knn", lambda *a: calls.append(a[2]) or real(*a))
    top20 = ds.ground_truth(20).copy()
    np.testing.assert_array_equal(ds.ground_truth(5), top20[:, :5])
    ds.ground_truth(20)
    assert calls == [20]
    ds.ground_truth(25)  # a larger k recomputes once
    assert calls == [20, 25]


def test_k_is_checked(gauss):
    ds = lab.from_array(gauss[:50], gauss[50:55])
    with pytest.raises(ParamError, match="k must be"):
        ds.ground_truth(51)
    with pytest.raises(ParamError, match="k must be"):
        ds.ground_truth(0)


def test_split_queries_shares_base_and_carries_ground_truth(gauss):
    ds = lab.from_array(gauss, n_queries=100)
    gt = ds.ground_truth(10)
    tune, hold = ds.split_queries(0.3, seed=2)
    assert (tune.nq, hold.nq) == (70, 30)
    assert tune.base is ds.base and tune.fingerprint == hold.fingerprint == ds.fingerprint
    both = np.concatenate([tune.queries, hold.queries])
    assert {r.tobytes() for r in both} == {r.tobytes() for r in ds.queries}
    rows = [int(np.flatnonzero((ds.queries == q).all(1))[0]) for q in hold.queries]
    np.testing.assert_array_equal(hold.ground_truth(10), gt[rows])
    np.testing.assert_array_equal(hold.ground_truth(10), exact_ids_f64(ds.base, hold.queries, 10))


# ------------------------------------------------------------------ recall with ties
def test_recall_counts_duplicates_of_a_true_neighbour():
    base = clustered(400, 8, seed=5)
    base[200] = base[100]  # an exact duplicate: rows 100 and 200 tie for every query
    ds = lab.from_array(base, base[100:101] + 0.001)
    first = int(ds.ground_truth(1)[0, 0])
    assert first in (100, 200)
    assert lab.recall_at_k([[300 - first]], ds, 1) == 1.0  # the other copy is just as near
    assert lab.recall_at_k([[5]], ds, 1) == 0.0
    truth = ds.ground_truth(5)[0].copy()
    far = int(np.argmax(((base - ds.queries[0]) ** 2).sum(1)))
    wrong = truth.copy()
    wrong[-1] = far
    assert lab.recall_at_k(wrong[None, :], ds, 5) == pytest.approx(0.8)
    assert lab.recall_at_k(np.full((1, 5), -1), ds, 5) == 0.0


# ------------------------------------------------------------------ DataFrames
def test_dataframe_vector_column_and_numeric_columns(gauss):
    df = pd.DataFrame({"id": np.arange(300), "emb": list(gauss[:300])})
    ds = lab.from_dataframe(df, column="emb", n_queries=30)
    assert (ds.n, ds.nq, ds.dim) == (270, 30, 24)
    wide = pd.DataFrame(gauss[:300], columns=[f"f{i}" for i in range(24)])
    auto = lab.from_dataframe(wide, n_queries=30)
    np.testing.assert_array_equal(auto.base, ds.base)
    picked = lab.from_dataframe(wide, columns=["f0", "f1", "f2"], n_queries=30)
    assert picked.dim == 3


def test_dataframe_errors(gauss):
    ragged = pd.DataFrame({"emb": [gauss[0], gauss[1][:5]]})
    with pytest.raises(IllegalRecordError, match="different lengths"):
        lab.from_dataframe(ragged, column="emb", n_queries=1)
    with pytest.raises(ParamError, match="no column 'nope'"):
        lab.from_dataframe(pd.DataFrame({"a": [1.0, 2.0]}), column="nope")
    mixed = pd.DataFrame({"emb": list(gauss[:4]), "x": [1.0, 2, 3, 4]})  # one vector column: unambiguous
    assert lab.from_dataframe(mixed, n_queries=1).dim == gauss.shape[1]
    two = pd.DataFrame({"emb": list(gauss[:4]), "other": list(gauss[4:8])})
    with pytest.raises(ParamError, match=r"say which data.*column='name'.*columns=\[...\]"):
        lab.from_dataframe(two)
    with pytest.raises(ParamError, match="DataFrame"):
        lab.from_dataframe(gauss)


def test_dataframe_labels_follow_the_split(gauss):
    df = pd.DataFrame({"word": [f"w{i}" for i in range(100)], "emb": list(gauss[:100])})
    ds = lab.from_dataframe(df, column="emb", n_queries=10, label_column="word")
    assert len(ds.labels) == 90 and len(ds.query_labels) == 10
    i = 3
    assert np.array_equal(ds.base[i], gauss[int(ds.labels[i][1:])])


# ------------------------------------------------------------------ files
@pytest.mark.parametrize("suffix, data", [
    (".fvecs", np.random.default_rng(0).normal(size=(37, 13)).astype(np.float32)),
    (".ivecs", np.random.default_rng(1).integers(-5, 10**6, size=(20, 7)).astype(np.int32)),
    (".bvecs", np.random.default_rng(2).integers(0, 256, size=(15, 16)).astype(np.uint8)),
])
def test_vecs_files_round_trip(tmp_path, suffix, data):
    path = lab.write_vecs(tmp_path / f"x{suffix}", data)
    back = lab.read_vecs(path)
    assert back.dtype == data.dtype and back.shape == data.shape
    np.testing.assert_array_equal(back, data)


def test_truncated_or_missing_vecs_files_are_refused(tmp_path, gauss):
    path = lab.write_fvecs(tmp_path / "x.fvecs", gauss[:10])
    raw = path.read_bytes()
    (tmp_path / "cut.fvecs").write_bytes(raw[:-3])
    with pytest.raises(IllegalRecordError, match="truncated"):
        lab.read_fvecs(tmp_path / "cut.fvecs")
    (tmp_path / "junk.fvecs").write_bytes(b"\xff\xff\xff\xff" + raw[4:])
    with pytest.raises(IllegalRecordError, match="dimension -1"):
        lab.read_fvecs(tmp_path / "junk.fvecs")
    with pytest.raises(FileNotFoundError):
        lab.read_fvecs(tmp_path / "absent.fvecs")
    with pytest.raises(ParamError, match="unsupported file type"):
        lab.load(tmp_path / "x.txt")


def test_from_files_with_ground_truth(tmp_path, gauss):
    base, queries = gauss[:1000], gauss[1000:1040]
    gt = exact_ids_f64(base, queries, 10)
    lab.write_fvecs(tmp_path / "base.fvecs", base)
    lab.write_fvecs(tmp_path / "query.fvecs", queries)
    lab.write_ivecs(tmp_path / "gt.ivecs", gt.astype(np.int32))
    ds = lab.from_files(tmp_path / "base.fvecs", tmp_path / "query.fvecs", tmp_path / "gt.ivecs")
    np.testing.assert_array_equal(ds.base, base)
    np.testing.assert_array_equal(ds.ground_truth(10), gt)
    np.save(tmp_path / "base.npy", base)
    from_npy = lab.load(tmp_path / "base.npy", n_queries=40)
    assert (from_npy.n, from_npy.nq) == (960, 40)


def test_bvecs_load_as_float_vectors(tmp_path):
    codes = np.random.default_rng(4).integers(0, 256, size=(300, 16)).astype(np.uint8)
    lab.write_bvecs(tmp_path / "b.bvecs", codes)
    ds = lab.load(tmp_path / "b.bvecs", n_queries=20)
    assert ds.base.dtype == np.float32 and ds.dim == 16 and ds.n == 280


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_hdf5_round_trip(tmp_path, gauss, metric):
    ds = lab.from_array(gauss, n_queries=40, metric=metric)
    path = ds.save_hdf5(tmp_path / "d.hdf5", k=20)
    with h5py.File(path) as f:
        assert set(f) == {"train", "test", "neighbors", "distances"}
        assert f["neighbors"].shape == (40, 20)
    back = lab.load_hdf5(path)
    assert back.metric == metric
    np.testing.assert_array_equal(back.base, ds.base)
    np.testing.assert_array_equal(back.queries, ds.queries)
    np.testing.assert_array_equal(back.ground_truth(20), ds.ground_truth(20))
    assert back._gt_ids is not None  # read from the file, not recomputed


def test_hdf5_angular_means_ip_on_unit_rows(tmp_path, gauss):
    path = tmp_path / "a.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "angular"
        f.create_dataset("train", data=gauss[:500] * 3)
        f.create_dataset("test", data=gauss[500:510])
    ds = lab.load(path)
    assert ds.metric == "IP"
    np.testing.assert_allclose(np.linalg.norm(ds.base, axis=1), 1.0, rtol=1e-5)


def test_bad_hdf5_files_are_refused(tmp_path):
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(IllegalRecordError, match="cannot read"):
        lab.load_hdf5(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("vectors", data=np.zeros((3, 2)))
    with pytest.raises(IllegalRecordError, match="not an ann-benchmarks file"):
        lab.load(tmp_path / "other.h5")
    with h5py.File(tmp_path / "ham.h5", "w") as f:
        f.attrs["distance"] = "hamming"
        f.create_dataset("train", data=np.zeros((3, 2)))
        f.create_dataset("test", data=np.zeros((1, 2)))
    with pytest.raises(ParamError, match="hamming"):
        lab.load(tmp_path / "ham.h5")


def test_csv_and_parquet_tables(tmp_path, gauss):
    wide = pd.DataFrame(gauss[:200], columns=[f"f{i}" for i in range(24)])
    wide.to_csv(tmp_path / "w.csv", index=False)
    ds = lab.load(tmp_path / "w.csv", n_queries=20)
    assert (ds.n, ds.dim) == (180, 24)
    text = pd.DataFrame({"emb": [str(list(map(float, v))) for v in gauss[:50]]})
    text.to_csv(tmp_path / "t.csv", index=False)
    ds2 = lab.load(tmp_path / "t.csv", column="emb", n_queries=5)
    assert ds2.dim == 24
    pd.DataFrame({"emb": list(gauss[:60])}).to_parquet(tmp_path / "v.parquet")
    assert lab.load(tmp_path / "v.parquet", column="emb", n_queries=6).n == 54


def test_glove_dataset():
    ds = lab.load_glove_dataset(3000, 100, seed=1)
    assert (ds.n, ds.nq, ds.dim) == (3000, 100, 50)
    assert len(ds.labels) == 3000 and len(ds.query_labels) == 100
    assert not set(ds.labels) & set(ds.query_labels)
    assert ds.name == "glove-3k"
    with pytest.raises(ParamError, match="exceeds"):
        lab.load_glove_dataset(400_000, 1000)


# ------------------------------------------------------------------ refusals of damaged files (conftest's hostile_files)
@pytest.fixture(scope="module")
def tiny_rows() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(120, 8)).astype(np.float32)


def test_a_text_file_named_npy_gets_no_pickle_advice(hostile_files):
    path = next(p for p in hostile_files if p.name == "text.npy")
    with pytest.raises(MilvusLabError) as refused:
        lab.load(path)
    text = str(refused.value)
    assert "not a NumPy .npy file" in text and "allow_pickle" not in text and "pickle" not in text.lower()


def test_an_object_npy_is_refused_without_loading_pickles(hostile_files):
    path = next(p for p in hostile_files if p.name == "object.npy")
    with pytest.raises(MilvusLabError) as refused:
        lab.read_matrix(path)
    text = str(refused.value)
    assert "pickled objects are never loaded" in text and "allow_pickle" not in text


def test_a_missing_file_or_a_folder_is_refused_naming_it(hostile_files):
    for name in ("missing.npy", "folder.npy", "folder.fvecs", "folder.hdf5"):
        path = next(p for p in hostile_files if p.name == name)
        with pytest.raises(MilvusLabError) as refused:
            lab.load(path)
        assert name in str(refused.value)
        assert isinstance(refused.value, OSError)  # still a FileNotFoundError / OSError for older callers


def test_dataset_repr_speaks_plainly(tiny_rows):
    d = lab.from_array(tiny_rows, n_queries=10)
    assert "exact neighbours: not computed yet" in repr(d) and "ground truth cached" not in repr(d)
    d.ground_truth(5)
    assert "exact neighbours: computed for k <= 5" in repr(d)


def test_exact_neighbours_are_cached_on_disk_and_a_bad_cache_file_is_rewritten(tiny_rows, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    d = lab.from_array(tiny_rows, n_queries=10)
    first = d.ground_truth(7, cache=True)
    files = list(tmp_path.rglob("*.npy"))
    assert len(files) == 1
    again = lab.from_array(tiny_rows, n_queries=10)
    calls = []
    real = lab_datasets.numerics.exact_knn
    monkeypatch.setattr(lab_datasets.numerics, "exact_knn", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert np.array_equal(again.ground_truth(7, cache=True), first) and not calls  # read, not recomputed
    assert np.array_equal(again.ground_truth(3, cache=True), first[:, :3]) and not calls
    for bad in (b"junk", None):
        if bad is None:
            np.save(files[0], np.full_like(first, 10**6))  # ids out of range
        else:
            files[0].write_bytes(bad)
        fresh = lab.from_array(tiny_rows, n_queries=10)
        assert np.array_equal(fresh.ground_truth(7, cache=True), first) and calls  # recomputed
        calls.clear()
        assert np.array_equal(np.load(files[0], allow_pickle=False), first)  # and rewritten
    other = lab.from_array(tiny_rows, n_queries=10, metric="IP")
    other.ground_truth(7, cache=True)
    assert len(list(tmp_path.rglob("*.npy"))) == 2  # keyed by the metric too
