"""The data scientist's first hour at real size (issue 12.5 acceptance): a full compare on 200k x 768.

Writes synthetic clustered float32 embeddings (default 200,000 x 768, 586 MB, like product embeddings) and
1,000 queries from the same clusters to ``.npy`` files, loads them the way a user would
(``lab.load(base.npy, queries=queries.npy)``), runs the full ``compare`` (every index type, default
budget) and prints the wall time and the peak resident memory (VmHWM from /proc/self/status) against the
size of the data.

Acceptance: peak RSS <= 3 x the data size and wall time <= 6 min on 2 cores.

    python benchmarks/scale.py                     # the acceptance run (idle machine)
    python benchmarks/scale.py --n 20000 --dim 256  # a short run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from milvus_lab import lab
from milvus_lab.lab import memory, timing


def write_clustered(path: Path, n: int, dim: int, centers: np.ndarray, seed: int, chunk: int = 20_000) -> None:
    """n rows around random centers, written chunk by chunk into a .npy (never the whole array in memory)."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        which = rng.integers(0, len(centers), rows)
        out[start:start + rows] = centers[which] + rng.normal(scale=0.35, size=(rows, dim)).astype(np.float32)
    out.flush()
    del out


def written(path: Path, n: int, dim: int) -> bool:
    """Does ``path`` already hold an n x dim float32 .npy (from an earlier run with the same sizes)?"""
    try:
        held = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    return held.shape == (n, dim) and held.dtype == np.float32


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--nq", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--types", default=None, help="comma-separated index types (default: all)")
    parser.add_argument("--folder", default=None, help="where to write the .npy files (default: a temp folder)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep .npy files of the same sizes already in --folder (same seeds: same data)")
    args = parser.parse_args()
    folder = Path(args.folder or tempfile.mkdtemp(prefix="milvus_lab_scale_"))
    folder.mkdir(parents=True, exist_ok=True)
    centers = np.random.default_rng(0).normal(size=(args.clusters, args.dim)).astype(np.float32)
    for name, rows, seed in (("base.npy", args.n, 1), ("queries.npy", args.nq, 2)):
        if not (args.reuse and written(folder / name, rows, args.dim)):
            write_clustered(folder / name, rows, args.dim, centers, seed)
    del centers
    data_bytes = args.n * args.dim * 4
    baseline = memory.rss_bytes()
    started = time.perf_counter()
    ds = lab.load(folder / "base.npy", queries=folder / "queries.npy")
    types = None if args.types is None else args.types.split(",")
    results = lab.compare(ds, types, progress=True)
    wall = time.perf_counter() - started
    peak = memory.peak_rss_bytes()
    print(lab.winner_table(results))
    print(f"\ndata {args.n:,} x {args.dim} float32 = {data_bytes / 2**20:,.0f} MB; cores {timing.available_cores()}; "
          f"RSS before loading {baseline / 2**20:,.0f} MB")
    builds = results.drop_duplicates(["index_type", "build_params"])
    for _, r in builds.iterrows():
        print(f"  {r['index_type']:<9} {r['build_params']:<40} build {r['build_s']:7.1f} s  {r['status']}")
    ratio = peak / data_bytes
    print(f"ACCEPTANCE peak RSS {peak / 2**20:,.0f} MB = {ratio:.2f} x the data (<= 3.0); wall {wall:.0f} s "
          f"= {wall / 60:.1f} min (<= 6 min)")
    ok = ratio <= 3.0 and wall <= 360
    print("all acceptance checks passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
