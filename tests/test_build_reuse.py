"""Work a comparison does once instead of several times, without changing any result: the coarse k-means
shared by IVF builds of the same rows, IVF_SQ8H timed on the IVF_SQ8 build, RNSG's duplicate grouping and
IVF-probed k-NN graph, and the chunked adds that keep a build's temporaries small."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from conftest import clustered
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import examples

from milvus_lab import Engine, lab, numerics
from milvus_lab.backends import annoy as annoy_backend
from milvus_lab.backends import ivf, kmeans, nsg

FAST = {"latency_queries": 5, "repeats": 1}


@pytest.fixture(autouse=True)
def fresh_cache():
    kmeans.clear()
    yield
    kmeans.clear()


def centroids(index) -> np.ndarray:
    quantizer = faiss.extract_index_ivf(index.index).quantizer
    return quantizer.reconstruct_n(0, quantizer.ntotal)


# ------------------------------------------------------------------ coarse k-means
@pytest.mark.parametrize("metric", ["L2", "IP"])
@pytest.mark.parametrize("index_type", ["IVF_FLAT", "IVF_SQ8", "IVF_PQ"])
def test_reused_centroids_are_what_faiss_trains(metric, index_type):
    x = clustered(3000, 32, seed=4)
    params = {"nlist": 64, "m": 8}
    plain = ivf.new_ivf_index(index_type, params, 32, metric)
    plain.train(x)
    first = ivf.build(index_type, params, x, metric)
    second = ivf.build(index_type, params, x, metric)
    assert np.array_equal(plain.quantizer.reconstruct_n(0, 64), centroids(first))
    assert np.array_equal(centroids(first), centroids(second))
    assert first.build_info["coarse_kmeans_reused"] is False and first.build_info["reused_training_s"] == 0
    assert second.build_info["coarse_kmeans_reused"] is True
    assert second.build_info["coarse_kmeans_s"] == first.build_info["coarse_kmeans_s"] > 0
    assert second.build_info["reused_training_s"] == first.build_info["coarse_kmeans_s"]  # k-means + assignment
    plain.add(x)
    q = x[:50]
    want = plain.search(q, 10, params=faiss.SearchParametersIVF(nprobe=8))[1]
    assert np.array_equal(second.search(q, 10, {"nprobe": 8})[1], want)


def test_other_rows_or_settings_train_again():
    x = clustered(3000, 32, seed=5)
    ivf.build("IVF_FLAT", {"nlist": 64}, x, "L2")
    assert not ivf.build("IVF_FLAT", {"nlist": 32}, x, "L2").build_info["coarse_kmeans_reused"]
    assert not ivf.build("IVF_FLAT", {"nlist": 64}, x, "IP").build_info["coarse_kmeans_reused"]
    assert not ivf.build("IVF_FLAT", {"nlist": 64}, x.copy(), "L2").build_info["coarse_kmeans_reused"]
    assert not ivf.build("IVF_FLAT", {"nlist": 64}, x[:2000], "L2").build_info["coarse_kmeans_reused"]
    changed = x.copy()
    ivf.build("IVF_FLAT", {"nlist": 64}, changed, "L2")
    for row in (0, 1, 1234, 2999):  # any row changed in place: the checksum covers every byte
        changed[row, 5] += 1.0
        built = ivf.build("IVF_FLAT", {"nlist": 64}, changed, "L2")
        assert not built.build_info["coarse_kmeans_reused"], row
        plain = ivf.new_ivf_index("IVF_FLAT", {"nlist": 64}, 32, "L2")
        plain.train(changed)
        assert np.array_equal(centroids(built), plain.quantizer.reconstruct_n(0, 64))


def test_freed_rows_never_match_a_new_array():
    x = clustered(2000, 16, seed=6)
    ivf.build("IVF_FLAT", {"nlist": 32}, x, "L2")
    assert len(kmeans._cache) == 1
    del x  # the entry goes with the rows (weakref callback), it does not wait to be pushed out
    assert len(kmeans._cache) == 0
    y = clustered(2000, 16, seed=6)  # same content, maybe the same address: still a new owner
    assert not ivf.build("IVF_FLAT", {"nlist": 32}, y, "L2").build_info["coarse_kmeans_reused"]
    assert ivf.build("IVF_FLAT", {"nlist": 32}, y, "L2").build_info["coarse_kmeans_reused"]


def test_an_entry_whose_rows_died_is_never_matched_by_an_owner_at_the_same_key():
    x = clustered(500, 8, seed=17)
    kmeans._remember(("k",), x, kmeans.Trained(np.zeros((2, 8), np.float32), 1.0))
    assert kmeans._lookup(("k",), x) is not None
    other = x.copy()  # a live object that is not the owner the entry was made for
    assert kmeans._lookup(("k",), other) is None and ("k",) not in kmeans._cache


def test_cache_is_bounded():
    arrays = [clustered(600, 8, seed=s) for s in range(kmeans.CACHE_ENTRIES + 2)]
    for a in arrays:
        ivf.build("IVF_FLAT", {"nlist": 8}, a, "L2")
    assert not ivf.build("IVF_FLAT", {"nlist": 8}, arrays[0], "L2").build_info["coarse_kmeans_reused"]
    assert ivf.build("IVF_FLAT", {"nlist": 8}, arrays[-1], "L2").build_info["coarse_kmeans_reused"]


def test_engine_report_and_lab_count_the_reused_training():
    x = clustered(4000, 32, seed=7)
    engine = Engine(build_threshold=1)
    coll = engine.create_collection("c", 32)
    coll.insert(x)
    first = coll.create_index("IVF_FLAT", {"nlist": 64})
    second = coll.create_index("IVF_SQ8", {"nlist": 64})
    assert first.reused_training_s == 0 and "reused" not in first.message()
    assert second.reused_training_s == pytest.approx(first.build_info["coarse_kmeans_s"])
    assert second.reused_training_s > 0
    assert "coarse k-means and row assignment reused" in second.message()
    ds = lab.from_array(x, n_queries=50)
    with lab.Session() as session:
        a = session.build(ds, "IVF_FLAT", {"nlist": 64})
        b = session.build(ds, "IVF_SQ8", {"nlist": 64})
    assert "coarse k-means" not in a.note
    assert "coarse k-means" in b.note
    assert b.build_s >= b.report.reused_training_s > 0


# ------------------------------------------------------------------ IVF_SQ8H on the IVF_SQ8 build
def test_sq8h_is_timed_on_the_sq8_build_when_both_are_compared(monkeypatch):
    ds = lab.from_array(clustered(2000, 16, seed=8), n_queries=60)
    built = []
    real = lab.Session.build

    def spy(self, dataset, index_type, params=None):
        build = real(self, dataset, index_type, params)
        built.append((index_type, build.build_s))
        return build

    monkeypatch.setattr(lab.Session, "build", spy)
    with lab.Session() as session:
        both = lab.compare(ds, ["IVF_SQ8H", "IVF_SQ8"], session=session, progress=False, **FAST)
        assert {t for t, _ in built} == {"IVF_SQ8"}
        assert len({s for _, s in built}) == 1  # one build, returned again from the session's cache
    sq8h = both[both["index_type"] == "IVF_SQ8H"]
    assert len(sq8h) == 1 and "timed on the IVF_SQ8 build" in sq8h["note"].iloc[0]
    sq8 = both[both["index_type"] == "IVF_SQ8"]
    assert sq8h["build_s"].iloc[0] == sq8["build_s"].iloc[0]
    same = sq8[sq8["search_params"] == sq8h["search_params"].iloc[0]]
    if len(same):
        assert same["recall"].iloc[0] == sq8h["recall"].iloc[0]
    built.clear()
    with lab.Session() as session:
        alone = lab.compare(ds, ["IVF_SQ8H"], session=session, progress=False, **FAST)
    assert [t for t, _ in built] == ["IVF_SQ8H"]  # on its own it is built as what the user asked for
    assert "timed on" not in alone["note"].iloc[0] and alone["status"].iloc[0] == "ok"


# ------------------------------------------------------------------ RNSG
def exact_groups(vectors: np.ndarray) -> list[int]:
    """First-occurrence group of every row, by brute force (the reference)."""
    seen: dict[bytes, int] = {}
    out = []
    for row in vectors + np.float32(0.0):
        out.append(seen.setdefault(row.tobytes(), len(seen)))
    return out


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.lists(st.sampled_from([0.0, -0.0, 1.0, 2.5]), min_size=3, max_size=3), min_size=1, max_size=40))
def test_duplicate_groups_match_brute_force(rows):
    vectors = np.array(rows, dtype=np.float32)
    distinct, groups = nsg.group_duplicates(vectors)
    want = exact_groups(vectors)
    if groups is None:
        assert want == list(range(len(vectors))) and distinct is vectors
    else:
        assert groups.group_of.tolist() == want
        firsts = [want.index(g) for g in range(max(want) + 1)]
        assert np.array_equal(distinct, vectors[firsts])


def test_many_distinct_rows_hash_without_false_groups():
    x = np.random.default_rng(3).normal(size=(20000, 4)).astype(np.float32)
    distinct, groups = nsg.group_duplicates(x)
    assert groups is None and distinct is x
    x[19999] = x[3]
    distinct, groups = nsg.group_duplicates(x)
    assert len(distinct) == 19999 and groups.group_of[19999] == groups.group_of[3] == 3


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_ivf_probed_graph_is_a_good_knn_graph(metric):
    x = clustered(6000, 24, clusters=60, seed=9, spread=0.6)
    graph = nsg.ivf_knn_graph(x, 20, metric)
    assert graph.shape == (6000, 20) and graph.dtype == np.int64
    assert (graph != np.arange(6000)[:, None]).all()  # never a row itself
    assert (graph < 6000).all()
    valid = [row[row >= 0] for row in graph]
    assert all(len(set(r.tolist())) == len(r) for r in valid)  # no repeats
    truth = numerics.exact_knn(x, x, 21, metric)[0][:, 1:]
    recall = np.mean([len(set(g.tolist()) & set(t.tolist())) / 20 for g, t in zip(graph, truth)])
    assert recall >= 0.9, recall


def test_ivf_probed_rnsg_finds_neighbours_and_counts_reused_k_means():
    x = clustered(6000, 24, clusters=60, seed=10, spread=0.6)
    params = {"search_length": 45, "out_degree": 30, "candidate_pool_size": 100, "knng": 30}
    index = nsg.build("RNSG", params, x, "L2", builder=nsg.IVF_PROBED)
    assert index.build_info["graph_builder"] == nsg.IVF_PROBED
    assert not index.build_info["coarse_kmeans_reused"] and index.build_info["coarse_kmeans_s"] > 0
    first = ivf.build("IVF_FLAT", {"nlist": nsg.graph_cells(6000)}, x, "L2")  # the same cells
    assert first.build_info["reused_training_s"] > 0
    again = nsg.build("RNSG", params, x, "L2", builder=nsg.IVF_PROBED)
    assert again.build_info["coarse_kmeans_reused"]
    assert again.build_info["reused_training_s"] == pytest.approx(index.build_info["coarse_kmeans_s"])
    q = x[:200] + np.float32(0.01)
    found = index.search(q, 10, {"search_length": 80})[1]
    truth = numerics.exact_knn(x, q, 10, "L2")[0]
    assert numerics.recall(found, truth, 10, base=x, queries=q, metric="L2") >= 0.9


def test_graph_cells_follow_the_ivf_rule():
    assert nsg.graph_cells(200_000) == 2048 and nsg.graph_cells(100_000) == 1024
    assert nsg.graph_cells(1) == 1 and nsg.graph_cells(3) == 3


# ------------------------------------------------------------------ chunked adds give the same index
def test_chunked_ivf_pq_add_is_the_same_index(monkeypatch):
    x = clustered(3000, 32, seed=12)
    params = {"nlist": 32, "m": 4}
    whole = ivf.build("IVF_PQ", params, x, "L2")
    monkeypatch.setattr(ivf, "ADD_TABLE_BYTES", 256 * 4 * 4 * 100)  # 100 rows per call
    assert ivf.add_chunk_rows("IVF_PQ", params) == 100
    chunked = ivf.build("IVF_PQ", params, x, "L2")
    q = x[:100]
    for a, b in zip(whole.search(q, 10, {"nprobe": 8}), chunked.search(q, 10, {"nprobe": 8})):
        assert np.array_equal(a, b)


def test_chunked_annoy_add_is_the_same_forest(monkeypatch):
    x = clustered(1500, 16, seed=13)
    whole = annoy_backend.build("ANNOY", {"n_trees": 4}, x, "L2")
    monkeypatch.setattr(annoy_backend, "_ADD_CHUNK", 7)
    chunked = annoy_backend.build("ANNOY", {"n_trees": 4}, x, "L2")
    q = x[::5]
    for search_k in (-1, 200):  # the trees may be stored in another order (threads), never be other trees
        a = whole.search(q, 10, {"search_k": search_k})
        b = chunked.search(q, 10, {"search_k": search_k})
        assert np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])


def test_row_assignment_is_kept_with_the_centroids():
    x = clustered(3000, 32, seed=14)
    built = ivf.build("IVF_FLAT", {"nlist": 64}, x, "L2")
    (_, trained), = kmeans._cache.values()
    quantizer = faiss.extract_index_ivf(built.index).quantizer
    assert trained.nearest.shape == (3000, kmeans.ASSIGN_WIDTH) and trained.assign_seconds > 0
    assert np.array_equal(trained.nearest, quantizer.search(x, kmeans.ASSIGN_WIDTH)[1])
    kept = trained.nearest
    graph = nsg.ivf_knn_graph(x, 10, "L2")  # 3000 rows: 2**round(log2(219)) = 256 cells, another k-means
    assert graph.shape == (3000, 10)
    sq8 = ivf.build("IVF_SQ8", {"nlist": 64}, x, "L2")
    assert sq8.build_info["coarse_kmeans_reused"] and trained.nearest is kept
    lists = faiss.extract_index_ivf(sq8.index).invlists
    assert sum(lists.list_size(c) for c in range(64)) == 3000
    assert all(lists.list_size(c) == int((kept[:, 0] == c).sum()) for c in range(64))


def test_ivf_probed_graph_fills_rows_in_small_cells():
    # 70 neighbours from 4 probed cells of about 5 rows each: the graph must probe further, not leave gaps
    x = clustered(3000, 16, clusters=300, seed=15, spread=0.05)
    graph = nsg.ivf_knn_graph(x, 70, "L2")
    assert (graph >= 0).all() and (graph != np.arange(3000)[:, None]).all()
    assert all(len(set(row.tolist())) == 70 for row in graph)


# ------------------------------------------------------------------ dropped indexes are freed at once
@pytest.mark.parametrize("index_type,params,metric", [
    ("IVF_FLAT", {"nlist": 16}, "L2"), ("IVF_SQ8", {"nlist": 16}, "IP"), ("IVF_PQ", {"nlist": 16, "m": 4}, "L2"),
    ("HNSW", {"M": 8, "efConstruction": 32}, "L2"), ("ANNOY", {"n_trees": 2}, "IP"),
    ("RNSG", {"search_length": 30, "out_degree": 16, "candidate_pool_size": 60, "knng": 24}, "L2"),
    ("FLAT", {}, "L2"), ("IVF_FLAT", {"nlist": 8}, "HAMMING"), ("FLAT", {}, "JACCARD"),
])
def test_a_searched_index_is_freed_by_reference_counting_alone(index_type, params, metric):
    """No reference cycle keeps an index (its rows, its graph) alive after the engine lets it go: memory
    comes back when the index is dropped, not whenever the garbage collector next runs."""
    import gc
    import weakref

    from milvus_lab import backends, spec

    if spec.is_binary_metric(metric):
        x = np.random.default_rng(16).integers(0, 256, size=(800, 8), dtype=np.uint8)
        search = {"nprobe": 4} if index_type == "IVF_FLAT" else {}
    else:
        x = clustered(800, 16, seed=16)
        search = spec.default_search_params(index_type, 10, params)
    gc.collect()
    gc.disable()
    try:
        index = backends.build(index_type, params, x, metric)
        index.search(x[:20], 10, search)
        ref = weakref.ref(index)
        del index
        assert ref() is None, f"{index_type} is kept alive by a reference cycle"
    finally:
        gc.enable()
