"""How steady is this machine? The same search, the lab's calibration kernel and a memory-bound gather,
timed over and over while nothing else runs.

Builds one hnswlib index on GloVe (default 100k words, M=16, efConstruction=100), then for ``--seconds``
times, in turn: the same 1,000-query batch at ef=40 (2 threads), the lab's calibration kernel (best of 3,
as :class:`milvus_lab.lab.timing.Monitor` takes it) and a random gather over 64 MB (best of 3). Prints each
one's min / median / max and their correlation. On a quiet physical machine the ratios stay near 1; when
the raw library itself varies by more than 10 %, no measurement protocol can promise that two runs agree
within 10 % (issue 12's reproducibility check).

    python benchmarks/machine_noise.py              # 90 s
    python benchmarks/machine_noise.py --seconds 30
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import hnswlib
import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from milvus_lab.datasets import load_glove
from milvus_lab.lab import timing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=90.0)
    args = parser.parse_args()
    vectors, _ = load_glove(args.n + 1000)
    base, queries = np.ascontiguousarray(vectors[:args.n]), np.ascontiguousarray(vectors[args.n:args.n + 1000])
    index = hnswlib.Index(space="l2", dim=base.shape[1])
    index.init_index(max_elements=args.n, M=16, ef_construction=100, random_seed=1)
    index.add_items(base, num_threads=2)
    index.set_ef(40)
    big = np.random.default_rng(0).random(16_000_000).astype(np.float32)  # 64 MB
    picks = np.random.default_rng(1).integers(0, len(big), 2_000_000)

    def gather() -> float:
        started = time.perf_counter()
        big[picks].sum()
        return time.perf_counter() - started

    rows = []
    stop = time.time() + args.seconds
    while time.time() < stop:
        started = time.perf_counter()
        index.knn_query(queries, k=10, num_threads=2)
        search = time.perf_counter() - started
        with threadpool_limits(limits=1):
            kernel = min(timing.calibration_kernel(2) for _ in range(3))
        rows.append((search, kernel, min(gather() for _ in range(3))))
    table = np.array(rows)
    print(f"{len(table)} samples in {args.seconds:g} s")
    for i, name in enumerate(["hnswlib batch", "calibration kernel", "64 MB gather"]):
        col = table[:, i] * 1e3
        print(f"{name:<19} min {col.min():7.1f} ms  median {np.median(col):7.1f} ms  max {col.max():7.1f} ms  "
              f"max/min {col.max() / col.min():.2f}  median/min {np.median(col) / col.min():.2f}")
    print(f"correlation with the batch: kernel {np.corrcoef(table[:, 0], table[:, 1])[0, 1]:.2f}, "
          f"gather {np.corrcoef(table[:, 0], table[:, 2])[0, 1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
