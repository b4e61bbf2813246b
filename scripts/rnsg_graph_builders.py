"""RNSG build time and recall@10 with the exact k-NN graph, faiss NN-descent and an IVF-probed graph, on GloVe.

    python scripts/rnsg_graph_builders.py --n 100000                        # all builders, 100k GloVe
    python scripts/rnsg_graph_builders.py --n 20000 50000                   # several sizes (the threshold)
    python scripts/rnsg_graph_builders.py --n 100000 --builders "IVF-probed k-NN"

Prints one line per (n, builder): build seconds, recall@10 (numerics.recall, L2) at the spec's default
build parameters and search_length, and the faiss thread count. The machine's load is printed too: on
a shared machine the times are as measured, not idle-machine figures.
"""

from __future__ import annotations

import argparse
import os
import time

import faiss
import numpy as np

from milvus_lab import numerics, spec
from milvus_lab.backends import nsg
from milvus_lab.datasets import load_glove

K = 10


def build(vectors: np.ndarray, params: dict[str, int], builder: str) -> tuple[object, float]:
    start = time.perf_counter()
    index = nsg.build("RNSG", params, vectors, "L2", builder=builder)
    return index, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[100_000])
    parser.add_argument("--nq", type=int, default=1000)
    parser.add_argument("--search-length", type=int, default=None)
    parser.add_argument("--builders", nargs="+", default=[nsg.EXACT_KNN, nsg.NN_DESCENT, nsg.IVF_PROBED],
                        choices=[nsg.EXACT_KNN, nsg.NN_DESCENT, nsg.IVF_PROBED])
    args = parser.parse_args()
    params = spec.default_build_params("RNSG")
    search = spec.default_search_params("RNSG")
    if args.search_length:
        search = {"search_length": args.search_length}
    vectors, _ = load_glove(max(args.n) + args.nq)
    queries = np.ascontiguousarray(vectors[-args.nq:])
    print(f"GloVe, {args.nq} queries, k={K}, build {params}, search {search}, faiss threads "
          f"{faiss.omp_get_max_threads()}, load average {os.getloadavg()[0]:.2f}")
    for n in args.n:
        base = np.ascontiguousarray(vectors[:n])
        truth, _ = numerics.exact_knn(base, queries, K, "L2")
        for builder in args.builders:
            index, seconds = build(base, params, builder)
            _, found = index.search(queries, K, search)
            recall = numerics.recall(found, truth, K, base=base, queries=queries, metric="L2")
            print(f"n={n:>7,}  {builder:<15}  build {seconds:7.1f} s  recall@10 {recall:.4f}  "
                  f"(recorded: {index.build_info['graph_builder']}; load {os.getloadavg()[0]:.2f})", flush=True)


if __name__ == "__main__":
    main()
