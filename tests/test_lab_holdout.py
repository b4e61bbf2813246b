"""Holding queries out of one .npy file (`milvus-lab compare --data emb.npy`) makes no second copy of the base:
the base stays mapped from the file (copy-on-write, only the rows moved in place of the queries are private),
the split is still the random draw, and releasing the file's pages keeps the moved rows."""

from __future__ import annotations

import numpy as np
import pytest

from milvus_lab import lab
from milvus_lab.lab.datasets import DEFAULT_QUERIES, from_array


def _rows(a: np.ndarray) -> list[bytes]:
    return sorted(bytes(r) for r in np.ascontiguousarray(a))


@pytest.fixture
def emb(tmp_path):
    rows = np.random.default_rng(5).normal(size=(3000, 24)).astype(np.float32)
    rows[:, 0] = np.arange(len(rows))  # each row names its position in the file
    path = tmp_path / "emb.npy"
    np.save(path, rows)
    return path, rows


def test_one_file_holds_out_queries_without_copying_the_base(emb):
    path, rows = emb
    ds = lab.load(path, n_queries=300, seed=3)
    assert ds.file_backed, "the base was copied into memory instead of staying mapped from the file"
    assert (ds.n, ds.nq) == (2700, 300)
    # a partition of the file's rows: no query in the base, nothing lost or duplicated
    assert _rows(np.concatenate([np.asarray(ds.base), ds.queries])) == _rows(rows)
    base_ids, query_ids = set(ds.base[:, 0].astype(int)), set(ds.queries[:, 0].astype(int))
    assert not base_ids & query_ids
    # the same random draw as an in-memory array with the same seed
    in_memory = from_array(rows.copy(), n_queries=300, seed=3)
    assert np.array_equal(in_memory.queries, ds.queries)
    assert query_ids & set(range(2700)), "queries came only from the end of the file: not a random draw"
    # every base row reads back right, from the file or from the moved rows, before and after the release
    expected = rows[ds.base[:, 0].astype(int)]
    assert np.array_equal(ds.rows(np.arange(ds.n)), expected)
    assert ds.release_pages()
    assert np.array_equal(np.asarray(ds.base), expected)
    assert np.array_equal(ds.rows(np.arange(ds.n)), expected)
    # exact neighbours agree with an in-memory copy of the same base (ids are positions in the base)
    copy = lab.from_array(expected, ds.queries)
    assert np.array_equal(ds.ground_truth(5), copy.ground_truth(5))


def test_the_default_count_is_min_1000_or_a_tenth(emb):
    path, _ = emb
    assert lab.load(path).nq == min(DEFAULT_QUERIES, 3000 // 10)


def test_the_file_is_never_written(emb):
    path, rows = emb
    ds = lab.load(path, n_queries=500, seed=1)
    ds.base[0, 1] = 123.0  # even a write through the dataset stays private to this process
    assert np.array_equal(np.load(path), rows)
