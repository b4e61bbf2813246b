"""A long notebook session in one process: create and drop many indexes of every type, and track the RSS.

Each step builds an index on a collection of several segments, searches it, then drops the index (every
third step drops the whole collection and makes a new one). Prints the RSS at the start (after a first
warm-up build of every type), its peak and its end, in MB, as JSON. ``--no-trim`` switches off the engine's
``malloc_trim`` (what the process did before the memory fix) to compare.

    python scripts/memory_session.py --indexes 200
    python scripts/memory_session.py --indexes 200 --no-trim
    python scripts/memory_session.py --indexes 20 --types HNSW --rows 40000 --segment-rows 10000
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np

from milvus_lab import Engine
from milvus_lab.engine import segment

PLANS = {
    "IVF_FLAT": ({"nlist": 64}, {"nprobe": 8}),
    "IVF_SQ8": ({"nlist": 64}, {"nprobe": 8}),
    "IVF_PQ": ({"nlist": 64, "m": 16}, {"nprobe": 8}),
    "HNSW": ({"M": 16, "efConstruction": 40}, {"ef": 32}),
    "ANNOY": ({"n_trees": 8}, {"search_k": -1}),
    "RNSG": ({"search_length": 30, "out_degree": 16, "candidate_pool_size": 60, "knng": 24}, {"search_length": 30}),
}


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def session(indexes: int, rows: int, dim: int, segment_rows: int, trim: bool, types: list[str] | None = None
            ) -> dict:
    if not trim:
        segment._MALLOC_TRIM = None  # the process as it was before the fix: glibc keeps freed memory
    warnings.simplefilter("ignore")
    data = np.random.default_rng(0).normal(size=(rows, dim)).astype(np.float32)
    queries = data[:20]
    engine = Engine(build_threshold=min(segment_rows, 500), segment_rows=segment_rows)
    types = list(types or PLANS)

    def fresh():
        c = engine.create_collection("session", dim)
        c.insert(data)
        return c

    c = fresh()
    for t in types:  # warm-up: libraries keep one-time pools (BLAS buffers, OpenMP threads)
        c.create_index(t, PLANS[t][0])
        c.drop_index()
    start = peak = rss_bytes()
    curve = []
    began = time.perf_counter()
    for i in range(indexes):
        t = types[i % len(types)]
        c.create_index(t, PLANS[t][0])
        c.search(queries, 10, PLANS[t][1])
        peak = max(peak, rss_bytes())
        if i % 3 == 2:
            engine.drop_collection("session")
            c = fresh()
        else:
            c.drop_index()
        now = rss_bytes()
        peak = max(peak, now)
        curve.append(round(now / 2**20, 1))
    engine.drop_collection("session")
    end = rss_bytes()
    engine.close()
    return {"indexes": indexes, "types": types, "trim": trim, "rows": rows, "dim": dim, "segments": -(-rows // segment_rows),
            "start_mb": round(start / 2**20, 1), "peak_mb": round(peak / 2**20, 1), "end_mb": round(end / 2**20, 1),
            "seconds": round(time.perf_counter() - began, 1), "curve_mb": curve[:: max(1, indexes // 20)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--indexes", type=int, default=200)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--segment-rows", type=int, default=5000)
    parser.add_argument("--types", default=",".join(PLANS), help="index types, comma-separated (default: all)")
    parser.add_argument("--no-trim", action="store_true", help="switch off malloc_trim (before the fix)")
    args = parser.parse_args()
    types = args.types.split(",")
    unknown = sorted(set(types) - set(PLANS))
    if unknown:
        parser.error(f"unknown index types {unknown}; choose from {', '.join(PLANS)}")
    print(json.dumps(session(args.indexes, args.rows, args.dim, args.segment_rows, not args.no_trim, types)))


if __name__ == "__main__":
    main()
