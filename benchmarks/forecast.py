"""Issue 17's acceptance: a forecast from a random sample, checked against the real thing at full size.

GloVe (default): 1,000 random words are the queries; the other 399,000 words are "production"; a random
100,000 of them are the sample. ``lab.forecast`` on the sample predicts, for each index type, the setting that
keeps recall 0.95 at 399,000 rows and what it costs; then each forecast setting is built on all 399,000 words
and measured with the same protocol, and (unless ``--skip-tune``) ``lab.tune`` runs on all 399,000 words, the
thing a person would otherwise run, for its wall time.

``clustered``: the same from a 50,000-row sample to 200,000 rows of 768-d clustered embeddings
(``benchmarks/scale.py``'s data).

Acceptance: the forecast setting reaches recall >= target - 0.01 at full size; forecast recall within 0.02 of
measured; memory within 15 %; build time and QPS within a factor 1.5; the forecast faster than tune().

    python benchmarks/forecast.py                      # GloVe 100k -> 399k, IVF_FLAT IVF_SQ8 HNSW ANNOY
    python benchmarks/forecast.py clustered            # 768-d 50k -> 200k
    python benchmarks/forecast.py --skip-tune          # without the (long) tune() run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from milvus_lab import lab  # noqa: E402
from milvus_lab.lab import Setting  # noqa: E402
from milvus_lab.units import MIB  # noqa: E402

TYPES = ["IVF_FLAT", "IVF_SQ8", "HNSW", "ANNOY"]


def glove(nq: int, sample: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    from milvus_lab.datasets import GLOVE_ROWS, load_glove

    vectors, _ = load_glove(GLOVE_ROWS)
    order = np.random.default_rng(seed).permutation(len(vectors))
    queries, full = vectors[order[:nq]], vectors[np.sort(order[nq:])]
    pick = np.sort(np.random.default_rng(seed + 1).permutation(len(full))[:sample])
    return full, full[pick], queries, "glove"


def clustered(n: int, dim: int, nq: int, sample: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(1000, dim)).astype(np.float32)
    full = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 20_000):
        rows = min(20_000, n - start)
        full[start:start + rows] = centers[rng.integers(0, 1000, rows)] + rng.normal(scale=0.35, size=(rows, dim))
    queries = (centers[rng.integers(0, 1000, nq)] + rng.normal(scale=0.35, size=(nq, dim))).astype(np.float32)
    pick = np.sort(np.random.default_rng(seed + 1).permutation(n)[:sample])
    return full, full[pick], queries, f"clustered-{dim}d"


def ratio(a: float, b: float) -> float:
    return max(a, b) / min(a, b) if a > 0 and b > 0 else float("inf")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", choices=["glove", "clustered"], default="glove")
    parser.add_argument("--sample", type=int, default=None, help="sample rows (glove 100000, clustered 50000)")
    parser.add_argument("--n", type=int, default=200_000, help="clustered: full rows")
    parser.add_argument("--dim", type=int, default=768, help="clustered: dimension")
    parser.add_argument("--nq", type=int, default=1000)
    parser.add_argument("--types", default=",".join(TYPES))
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--skip-tune", action="store_true")
    parser.add_argument("--only-tune", action="store_true", help="time tune() on the full data only (the forecast's "
                        "wall time is compared in a separate run)")
    args = parser.parse_args()
    types = args.types.split(",")
    if args.data == "glove":
        full, sample, queries, name = glove(args.nq, args.sample or 100_000, 0)
    else:
        full, sample, queries, name = clustered(args.n, args.dim, args.nq, args.sample or 50_000, 0)
    sample_ds = lab.from_array(sample, queries, name=f"{name}-sample")
    full_ds = lab.from_array(full, queries, name=f"{name}-full")
    print(f"{name}: sample {len(sample):,}, full {len(full):,} x {full.shape[1]}, {len(queries):,} queries; "
          f"target recall {args.target}")

    if args.only_tune:
        started = time.perf_counter()
        tuned = lab.tune(full_ds, args.target, types, progress=True)
        print(tuned.summary())
        print(f"tune() on all {len(full):,} rows: {time.perf_counter() - started:,.0f} s")
        return 0
    started = time.perf_counter()
    fc = lab.forecast(sample_ds, len(full), types, target_recall=args.target)
    forecast_wall = time.perf_counter() - started
    print(fc.summary())
    print(f"forecast wall {forecast_wall:,.0f} s")

    checks: list[bool] = []
    lines = [f"{'type':<9} {'setting':<34} {'recall fc [lo, hi]':>24} {'meas':>6} {'memory fc/meas MB':>20} "
             f"{'build fc/meas s':>18} {'QPS fc/meas':>18} {'p99 fc/meas ms':>16}"]
    with lab.Session() as session, session.running():
        for _, row in fc.table.iterrows():
            if row["status"] != "ok":
                lines.append(f"{row['index_type']:<9} {row['note']}")
                continue
            setting = Setting.from_columns(row["index_type"], row["build_params"], row["search_params"])
            build = session.build(full_ds, setting.index_type, setting.build_params)
            measured = session.measure_settings(full_ds, build, [setting.search_params], k=fc.k)[0]
            mem = build.memory_bytes / MIB
            ok = [measured["recall"] >= args.target - 0.01, abs(row["recall"] - measured["recall"]) <= 0.02,
                  abs(row["memory_mb"] / mem - 1) <= 0.15, ratio(row["build_s"], build.build_s) <= 1.5,
                  ratio(row["qps"], measured["qps"]) <= 1.5]
            checks += ok
            covered = row["recall_lo"] <= measured["recall"] <= row["recall_hi"]
            lines.append(
                f"{setting.index_type:<9} {setting.label().split(' ', 1)[1]:<34} "
                f"{row['recall']:.3f} [{row['recall_lo']:.3f}, {row['recall_hi']:.3f}] {measured['recall']:6.3f} "
                f"{row['memory_mb']:9,.1f}/{mem:<9,.1f} {row['build_s']:8.1f}/{build.build_s:<8.1f} "
                f"{row['qps']:8,.0f}/{measured['qps']:<8,.0f} [{row['qps_lo']:,.0f}, {row['qps_hi']:,.0f}] "
                f"{row['p99_ms']:6.3f}/{measured['p99_ms']:<7.3f} "
                f"{'ok' if all(ok) else 'MISSED ' + ','.join(n for n, g in zip(['recall>=t-0.01', 'recall+-0.02', 'memory15%', 'build1.5x', 'qps1.5x'], ok) if not g)}"  # noqa: E501
                f"{'' if covered else ' (measured recall outside the interval)'}"
                f"{' BUSY' if measured.get('busy') else ''}")
    print("\n".join(lines))
    if fc.busy_warning:
        print(fc.busy_warning)
    if not args.skip_tune:
        started = time.perf_counter()
        tuned = lab.tune(full_ds, args.target, types, progress=True)
        tune_wall = time.perf_counter() - started
        print(tuned.summary())
        print(f"tune() on all {len(full):,} rows: {tune_wall:,.0f} s; forecast: {forecast_wall:,.0f} s "
              f"({forecast_wall / tune_wall:.2f} of tune's time)")
        checks.append(forecast_wall < tune_wall)
    print("all acceptance checks passed" if all(checks) else f"{checks.count(False)} check(s) missed")
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
