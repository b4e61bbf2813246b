"""The engine's RNSG against faiss's own NSG, side by side, on clustered data and on GloVe.

For each data set the engine builds RNSG at the spec's default build (through a lab session on the
in-memory engine) and faiss's ``IndexNSGFlat`` is built by hand from an exact k-NN graph (blocked
``faiss.knn``, each row itself dropped by id) with the same parameters: R = out_degree, GK = knng,
L = the build's search_length, C = candidate_pool_size (Milvus 0.10's knowhere NSG uses them the same
way). Recall (k-recall@k, the lab's rule, same queries and ground truth) is printed at each search_length,
with the difference. Builds run on ``--threads`` threads (default 1: NSG's link step is reproducible only
on one thread; on more, both builds vary a little from run to run).

``--sensitivity`` adds faiss NSG built with L = C = candidate_pool_size: on clustered data the curve moves
by tenths with the build's L, which is why a comparison must use the same mapping on both sides.

    python benchmarks/rnsg_fidelity.py                       # 20k x 128 clustered and 20k GloVe, 1000 queries
    python benchmarks/rnsg_fidelity.py --datasets glove --n 50000 --threads 2 --sensitivity

Build seconds are as measured on this machine at its current load (printed): noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from milvus_lab import lab, spec  # noqa: E402
from milvus_lab.datasets import load_glove  # noqa: E402
from milvus_lab.lab import Session  # noqa: E402
from milvus_lab.lab.metrics import recall_per_query  # noqa: E402
from milvus_lab.lab.timing import fixed_threads  # noqa: E402

K = 10
SEARCH_LENGTHS = (10, 20, 40, 80, 160, 300)
#: query rows per faiss.knn call when building the exact graph (memory: block x n distances at most)
GRAPH_BLOCK = 4096


def clustered(n: int, nq: int, dim: int = 128, centres: int = 50, scale: float = 4.0, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian centres times ``scale`` with unit noise; queries drawn the same way."""
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centres, dim)) * scale

    def draw(m: int) -> np.ndarray:
        return (middle[rng.integers(0, centres, m)] + rng.standard_normal((m, dim))).astype(np.float32)

    return draw(n), draw(nq)


def exact_graph(base: np.ndarray, knng: int) -> np.ndarray:
    """Each row's ``knng`` nearest other rows (L2), a block of rows at a time."""
    graph = np.empty((len(base), knng), np.int64)
    for start in range(0, len(base), GRAPH_BLOCK):
        rows = np.arange(start, min(start + GRAPH_BLOCK, len(base)))
        _, found = faiss.knn(base[rows], base, knng + 1)
        not_self = np.argsort(found == rows[:, None], axis=1, kind="stable")[:, :knng]
        graph[rows] = np.take_along_axis(found, not_self, axis=1)
    return graph


def faiss_nsg(dataset: lab.Dataset, params: dict[str, int], build_l: int, build_c: int) -> tuple[list[float], float]:
    """Recalls of faiss's IndexNSGFlat at each search length, and its build seconds (graph included)."""
    started = time.perf_counter()
    index = faiss.IndexNSGFlat(dataset.dim, params["out_degree"])
    index.GK, index.nsg.L, index.nsg.C = params["knng"], build_l, build_c
    index.build(dataset.base, exact_graph(dataset.base, params["knng"]))
    seconds = time.perf_counter() - started
    recalls = []
    for search_length in SEARCH_LENGTHS:
        index.nsg.search_L = search_length
        recalls.append(float(recall_per_query(index.search(dataset.queries, K)[1], dataset, K).mean()))
    return recalls, seconds


def engine_rnsg(dataset: lab.Dataset, params: dict[str, int], threads: int) -> tuple[list[float], float, str]:
    """Recalls of the engine's RNSG at each search length, build seconds, the graph builder it chose."""
    session = Session(threads=threads)
    try:
        with session.running():
            build = session.build(dataset, "RNSG", params)
            if not build.ok:
                raise SystemExit(f"RNSG build failed: {build.note}")
            recalls = [float(session.recall_of(dataset, build, {"search_length": s}, K).mean())
                       for s in SEARCH_LENGTHS]
        return recalls, build.build_s, build.report.build_info.get("graph_builder", "?")
    finally:
        session.close()


def compare(dataset: lab.Dataset, threads: int, sensitivity: bool) -> None:
    params = spec.default_build_params("RNSG")
    ours, our_s, builder = engine_rnsg(dataset, params, threads)
    with fixed_threads(threads):
        theirs, their_s = faiss_nsg(dataset, params, params["search_length"], params["candidate_pool_size"])
        other = faiss_nsg(dataset, params, params["candidate_pool_size"], params["candidate_pool_size"])[0] \
            if sensitivity else None
    print(f"\n{dataset.name}: {dataset.n:,} x {dataset.dim}, {dataset.nq:,} queries, k={K}, build {params}, "
          f"{threads} thread(s), engine graph: {builder}")
    header = f"{'search_length':>13} {'engine':>8} {'faiss NSG':>10} {'diff':>7}"
    if other is not None:
        header += f" {'faiss L=C=' + str(params['candidate_pool_size']):>14}"
    print(header)
    print("-" * len(header))
    for i, search_length in enumerate(SEARCH_LENGTHS):
        line = f"{search_length:>13} {ours[i]:>8.3f} {theirs[i]:>10.3f} {ours[i] - theirs[i]:>+7.3f}"
        if other is not None:
            line += f" {other[i]:>14.3f}"
        print(line)
    falls = [SEARCH_LENGTHS[i] for i in range(1, len(ours)) if ours[i] < max(ours[:i]) - 0.02]
    print(f"largest |diff| {max(abs(a - b) for a, b in zip(ours, theirs)):.3f}; build {our_s:.1f} s engine, "
          f"{their_s:.1f} s faiss (ratio {our_s / their_s:.2f}; load average {os.getloadavg()[0]:.2f})"
          + (f"; recall falls at search_length {falls} (NSG's own curve)" if falls else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["clustered", "glove"], choices=["clustered", "glove"])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--nq", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the clustered data")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sensitivity", action="store_true", help="also faiss NSG with L = C = candidate_pool_size")
    args = parser.parse_args()
    print(f"faiss {faiss.__version__}, {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}")
    for name in args.datasets:
        if name == "clustered":
            base, queries = clustered(args.n, args.nq, seed=args.seed)
            title = f"clustered (50 centres x 4, unit noise, seed {args.seed})"
        else:
            vectors, _ = load_glove(args.n + args.nq)
            base, queries = vectors[:args.n], vectors[args.n:]
            title = "GloVe (queries: the next words)"
        dataset = lab.from_array(np.ascontiguousarray(base), queries=np.ascontiguousarray(queries), name=title)
        compare(dataset, args.threads, args.sensitivity)


if __name__ == "__main__":
    main()
