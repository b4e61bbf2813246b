"""milvus_lab against the raw libraries it wraps, in one run, on GloVe.

For FLAT, IVF_FLAT, HNSW and ANNOY: the same data, index and parameters built through milvus_lab and
through faiss / hnswlib / annoy directly; prints batch QPS ratio (nq=1000), single-query latency
difference and recall@10 difference against exact ground truth, and FLAT memory against the raw bytes.

    python benchmarks/overhead.py            # 100k GloVe vectors, 1000 queries
    python benchmarks/overhead.py --n 20000  # quicker
"""

from __future__ import annotations

import argparse
import statistics
import time

import annoy
import faiss
import hnswlib
import numpy as np

from milvus_lab import Engine, numerics
from milvus_lab.backends.base import SEED
from milvus_lab.datasets import load_glove

K = 10


def best_qps(search, queries: np.ndarray, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        search(queries)
        times.append(time.perf_counter() - t)
    return len(queries) / min(times)


def single_latency_us(search, queries: np.ndarray, count: int) -> float:
    """Median latency of one-query calls, in microseconds (interleaving is done by the caller)."""
    samples = []
    for q in queries[:count]:
        one = q[None, :]
        t = time.perf_counter_ns()
        search(one)
        samples.append((time.perf_counter_ns() - t) / 1000)
    return statistics.median(samples)


def recall(found: np.ndarray, truth: np.ndarray, base: np.ndarray, queries: np.ndarray) -> float:
    return numerics.recall(found, truth, K, base=base, queries=queries, metric="L2")


def raw_indexes(base: np.ndarray, nlist: int, nprobe: int, m: int, ef_c: int, ef: int, trees: int):
    """(name, params, search params, search function) built with each library directly."""
    d = base.shape[1]
    flat = faiss.IndexFlatL2(d)
    flat.add(base)

    quantizer = faiss.IndexFlatL2(d)
    ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_L2)
    ivf.cp.seed = SEED  # the same k-means seed as the adapter, so recall is comparable
    ivf.train(base)
    ivf.add(base)
    ivf_params = faiss.SearchParametersIVF(nprobe=nprobe)

    hnsw = hnswlib.Index(space="l2", dim=d)
    hnsw.init_index(max_elements=len(base), M=m, ef_construction=ef_c, random_seed=SEED)
    hnsw.add_items(base, np.arange(len(base)))
    hnsw.set_ef(ef)

    forest = annoy.AnnoyIndex(d, "euclidean")
    forest.set_seed(SEED)  # the same forest as the adapter builds, so recall is comparable
    for i, v in enumerate(base):
        forest.add_item(i, v)
    forest.build(trees, n_jobs=-1)

    def annoy_search(q: np.ndarray) -> np.ndarray:
        return np.array([forest.get_nns_by_vector(v, K, search_k=-1) for v in q])

    return [
        ("FLAT", {}, {}, lambda q: flat.search(q, K)[1]),
        ("IVF_FLAT", {"nlist": nlist}, {"nprobe": nprobe}, lambda q: ivf.search(q, K, params=ivf_params)[1]),
        ("HNSW", {"M": m, "efConstruction": ef_c}, {"ef": ef}, lambda q: hnsw.knn_query(q, k=K)[0]),
        ("ANNOY", {"n_trees": trees}, {"search_k": -1}, annoy_search),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--nq", type=int, default=1000)
    parser.add_argument("--single", type=int, default=300, help="single-query calls per side")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    vectors, _ = load_glove(args.n + args.nq)
    base, queries = np.ascontiguousarray(vectors[: args.n]), np.ascontiguousarray(vectors[args.n:])
    truth = numerics.exact_knn(base, queries, K, "L2")[0]
    print(f"GloVe {args.n:,} x {base.shape[1]}, {len(queries):,} queries, k={K}, faiss threads "
          f"{faiss.omp_get_max_threads()}")

    engine = Engine()
    raws = raw_indexes(base, nlist=1024, nprobe=16, m=16, ef_c=200, ef=64, trees=16)
    rows = []
    for name, build, search, raw_search in raws:
        c = engine.create_collection(f"c_{name.lower()}", base.shape[1])
        c.insert(base)
        c.flush()
        if name == "FLAT":
            mem = c.memory_bytes()["total_bytes"]
            print(f"FLAT collection memory: {mem / 2**20:.1f} MiB = {mem / base.nbytes:.3f} x raw vector bytes "
                  f"({base.nbytes / 2**20:.1f} MiB)")
        t = time.perf_counter()
        c.create_index(name, build)
        build_s = time.perf_counter() - t

        def lab_search(q, c=c, search=search):
            return c.search(q, K, search or None).ids

        lab_search(queries[:10]), raw_search(queries[:10])  # warm up
        qps_raw = best_qps(raw_search, queries, args.repeats)
        qps_lab = best_qps(lab_search, queries, args.repeats)
        lat_raw = single_latency_us(raw_search, queries, args.single)
        lat_lab = single_latency_us(lab_search, queries, args.single)
        lat_raw = min(lat_raw, single_latency_us(raw_search, queries, args.single))
        lat_lab = min(lat_lab, single_latency_us(lab_search, queries, args.single))
        r_raw = recall(raw_search(queries), truth, base, queries)
        r_lab = recall(lab_search(queries), truth, base, queries)
        rows.append((name, build_s, qps_raw, qps_lab, lat_raw, lat_lab, r_raw, r_lab))

    header = (f"{'index':<9} {'build s':>8} {'QPS raw':>10} {'QPS lab':>10} {'ratio':>6} {'1q raw us':>10} "
              f"{'1q lab us':>10} {'diff us':>8} {'recall raw':>10} {'recall lab':>10} {'diff':>7}")
    print(header)
    print("-" * len(header))
    for name, build_s, qr, ql, lr, ll, rr, rl in rows:
        print(f"{name:<9} {build_s:>8.2f} {qr:>10,.0f} {ql:>10,.0f} {ql / qr:>6.3f} {lr:>10.1f} {ll:>10.1f} "
              f"{ll - lr:>8.1f} {rr:>10.4f} {rl:>10.4f} {rl - rr:>+7.4f}")
    engine.close()


if __name__ == "__main__":
    main()
