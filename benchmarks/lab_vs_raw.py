"""The lab's numbers against the raw library, measured in the same run on the same data.

For each setting, ``milvus_lab.lab.measure`` reports recall and QPS through the engine; the same index is
then built with faiss / hnswlib / annoy directly and measured with the lab's own timing and recall
functions (same queries, same ground truth). Each setting is the build compare() makes and the spec's
default search parameters. Builds that are deterministic (FLAT, IVF_* : faiss k-means
has a fixed seed) must give exactly the same recall; QPS should agree within 10%. HNSW and ANNOY builds
use several threads, so their graphs / trees differ run to run and recall may differ slightly.

Rounds alternate lab and raw measurements (the lab's interleaved protocol); the medians are compared.
Run it on an otherwise idle machine: other processes make QPS noisy.

    python benchmarks/lab_vs_raw.py                 # 100k GloVe words, 1000 queries, k=10
    python benchmarks/lab_vs_raw.py --n 20000 --types IVF_FLAT,HNSW
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from milvus_lab import lab, spec
from milvus_lab.lab import timing
from milvus_lab.lab.sweeps import center_build_params

K = 10


def raw_search(index_type: str, build: dict[str, int], search: dict[str, int], base: np.ndarray
               ) -> Callable[[np.ndarray], np.ndarray]:
    """Build ``index_type`` with the library itself and return a search(queries) -> ids function."""
    import annoy
    import faiss
    import hnswlib

    d = base.shape[1]
    if index_type == "FLAT":  # faiss's brute-force call (the one the adapter makes)
        return lambda q: faiss.knn(q, base, K, faiss.METRIC_L2)[1]
    if index_type.startswith("IVF"):
        storage = {"IVF_FLAT": "Flat", "IVF_SQ8": "SQ8", "IVF_SQ8H": "SQ8", "IVF_PQ": f"PQ{build.get('m')}x8"}
        index = faiss.index_factory(d, f"IVF{build['nlist']},{storage[index_type]}", faiss.METRIC_L2)
        index.train(base)
        index.add(base)
        params = faiss.SearchParametersIVF(nprobe=search["nprobe"])
        return lambda q: index.search(q, K, params=params)[1]
    if index_type == "HNSW":
        index = hnswlib.Index(space="l2", dim=d)
        index.init_index(max_elements=len(base), M=build["M"], ef_construction=build["efConstruction"],
                         random_seed=100)
        index.add_items(base, np.arange(len(base)))
        index.set_ef(search["ef"])
        return lambda q: index.knn_query(q, k=K)[0]
    if index_type == "RNSG":
        index = faiss.IndexNSGFlat(d, build["out_degree"], faiss.METRIC_L2)
        index.GK, index.build_type = build["knng"], 0
        index.nsg.L, index.nsg.C = build["search_length"], build["candidate_pool_size"]
        index.add(base)
        index.nsg.search_L = search["search_length"]
        return lambda q: index.search(q, K)[1]
    if index_type == "ANNOY":
        from concurrent.futures import ThreadPoolExecutor

        forest = annoy.AnnoyIndex(d, "euclidean")
        forest.set_seed(42)
        for i, row in enumerate(base.tolist()):
            forest.add_item(i, row)
        forest.build(build["n_trees"], n_jobs=-1)
        pool = ThreadPoolExecutor(os.cpu_count() or 1)
        search_k = search["search_k"]  # -1: annoy inspects n_trees * k nodes, as the adapter passes it

        def one(rows: list[list[float]]) -> list[list[int]]:
            return [forest.get_nns_by_vector(r, K, search_k=search_k) for r in rows]

        def batch(q: np.ndarray) -> np.ndarray:  # like the adapter: one call per query, split over threads
            rows = q.tolist()
            step = -(-len(rows) // (os.cpu_count() or 1))
            parts = pool.map(one, [rows[i:i + step] for i in range(0, len(rows), step)])
            return np.array([ids for part in parts for ids in part])

        return batch
    raise ValueError(index_type)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--nq", type=int, default=1000)
    parser.add_argument("--types", default="FLAT,IVF_FLAT,IVF_SQ8,HNSW,ANNOY")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import faiss

    ds = lab.load_glove_dataset(args.n, args.nq)
    ds.ground_truth(K)
    print(f"{ds!r}; k={K}; {os.cpu_count()} CPUs, faiss threads {faiss.omp_get_max_threads()}, load average "
          f"{os.getloadavg()[0]:.1f}")
    types = [spec.get_index(t).name for t in args.types.split(",")]
    width = max(len(spec.format_params(center_build_params(t, ds.n, ds.dim))) for t in types)
    header = (f"{'index':<9} {'build params':<{width}} {'search':<18} {'recall lab':>10} {'recall raw':>10} "
              f"{'equal':>5} {'QPS lab':>9} {'QPS raw':>9} {'lab/raw':>7}")
    rows, failures = [], []
    with lab.Session() as session, session.running():
        for index_type in types:
            build = center_build_params(index_type, ds.n, ds.dim)  # what compare() builds
            search = spec.default_search_params(index_type, K, build)  # the spec's teaching default
            raw = raw_search(index_type, build, search, ds.base)
            raw_recall = lab.recall_at_k(raw(ds.queries), ds, K)
            lab_build = session.build(ds, index_type, build)
            lab_recall = lab.recall_at_k(session.search_fn(lab_build, K, search)(ds.queries).ids, ds, K)
            lab_t, raw_t = timing.interleaved([session.search_fn(lab_build, K, search), raw], ds.queries,
                                              repeats=args.rounds, latency_queries=0)
            lab_qps, raw_qps = lab_t["qps"], raw_t["qps"]
            equal = lab_recall == raw_recall
            ratio = lab_qps / raw_qps
            rows.append(f"{index_type:<9} {spec.format_params(build):<{width}} "
                        f"{spec.format_params(search):<18} {lab_recall:>10.4f} {raw_recall:>10.4f} "
                        f"{'yes' if equal else 'no':>5} {lab_qps:>9,.0f} {raw_qps:>9,.0f} {ratio:>7.3f}")
            deterministic = index_type == "FLAT" or index_type.startswith("IVF")
            if deterministic and not equal:
                failures.append(f"{index_type}: recall differs ({lab_recall} vs {raw_recall})")
            if abs(ratio - 1) > 0.1:
                failures.append(f"{index_type}: lab QPS is {ratio:.2f} x raw (not within 10%)")
            print(rows[-1] if len(rows) > 1 else header + "\n" + "-" * len(header) + "\n" + rows[-1], flush=True)
    print("\n" + ("all checks passed: recall equal where the build is deterministic, QPS within 10%" if not failures
                  else "FAILED: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - started:.0f} s)")
    sys.exit(code)
