"""tune() against an exhaustive grid over build AND search parameters (issue 12 acceptance).

For each index type (default IVF_FLAT and HNSW) on GloVe (default 100k words, 1000 queries, k=10):

1. ``lab.tune(target_recall)`` in a fresh session: its pick and its wall time (timed like the grid:
   ``--repeats`` rounds per setting, no single-query latency calls);
2. the grid: every build on the spec's grid (IVF_FLAT nlist 256..4096; HNSW M 4..64 x efConstruction
   32..512), each searched at every value of the spec's sweep of its search parameter, every setting timed
   with the lab's protocol; its pick is the fastest setting with recall >= target over all queries; its
   wall time;
3. both picks rebuilt side by side and timed in the same interleaved rounds; recall over all queries.

Acceptance: tune's QPS >= 0.95 x the grid's, tune's wall time <= 1/5 of the grid's.

    python benchmarks/tune_vs_grid.py                      # the acceptance run (idle machine, ~15-25 min)
    python benchmarks/tune_vs_grid.py --n 20000 --quick    # a short run
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from milvus_lab import Engine, lab, spec
from milvus_lab.lab import memory, timing
from milvus_lab.lab.sweeps import center_build_params, search_grid, valid_build

K = 10
GRIDS = {
    "IVF_FLAT": {"nlist": [256, 512, 1024, 2048, 4096]},
    "IVF_SQ8": {"nlist": [256, 512, 1024, 2048, 4096]},
    "HNSW": {"M": [4, 8, 16, 32, 64], "efConstruction": [32, 64, 128, 256, 512]},
    "ANNOY": {"n_trees": [4, 8, 16, 32, 64, 128]},
}
QUICK = {"IVF_FLAT": {"nlist": [128, 256, 512, 1024]}, "IVF_SQ8": {"nlist": [128, 256, 512, 1024]},
         "HNSW": {"M": [8, 16, 32], "efConstruction": [64, 128, 256]}, "ANNOY": {"n_trees": [8, 16, 32]}}


def grid_builds(index_type: str, ds: lab.Dataset, quick: bool) -> list[dict[str, int]]:
    grid = (QUICK if quick else GRIDS)[index_type]
    names = list(grid)
    out = []
    for combo in itertools.product(*grid.values()):
        params = {**center_build_params(index_type, ds.n, ds.dim), **dict(zip(names, combo))}
        if valid_build(index_type, params, ds.n, ds.dim, ds.metric, advice=False):
            out.append(params)
    return out


def run_grid(index_type: str, ds: lab.Dataset, target: float, quick: bool, repeats: int) -> tuple[dict, float, int]:
    """Every (build, search) setting timed; the fastest at recall >= target over all queries."""
    started = time.perf_counter()
    best, settings = None, 0
    with lab.Session(repeats=repeats) as session, session.running():
        for params in grid_builds(index_type, ds, quick):
            build = session.build(ds, index_type, params)
            if not build.ok:
                continue
            searches = search_grid(index_type, params, ds.n, K)
            rows = session.measure_settings(ds, build, searches, k=K, latency_queries=0)
            settings += len(rows)
            for row in rows:
                if row["recall"] >= target and (best is None or row["qps"] > best["qps"]):
                    best = row
    return best, time.perf_counter() - started, settings


def side_by_side(index_type: str, ds: lab.Dataset, picks: list[tuple[dict, dict]], rounds: int) -> list[dict]:
    """Build each pick in its own collection and time them in the same interleaved rounds."""
    engine = Engine(build_threshold=1)
    sessions = [lab.Session(target=engine) for _ in picks]
    try:
        searches, recalls = [], []
        with sessions[0].running():
            for session, (build_params, search_params) in zip(sessions, picks):
                build = session.build(ds, index_type, build_params)
                fn = session.search_fn(build, K, search_params)
                searches.append(fn)
                recalls.append(lab.recall_at_k(fn(ds.queries).ids, ds, K))
            timed = timing.interleaved(searches, ds.queries, repeats=rounds, latency_queries=0)
    finally:
        for session in sessions:
            session.close()
        engine.close()
    return [{**t, "recall": r} for t, r in zip(timed, recalls)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--nq", type=int, default=1000)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--types", default="IVF_FLAT,HNSW")
    parser.add_argument("--quick", action="store_true", help="a smaller grid (for a short run)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per setting in the grid")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds of the side-by-side timing")
    args = parser.parse_args()
    ds = lab.load_glove_dataset(args.n, args.nq)
    ds.ground_truth(K)
    print(f"{ds!r}; target recall {args.target}, k={K}; cores {timing.available_cores()}")
    failures, lines = [], []
    for index_type in [spec.get_index(t).name for t in args.types.split(",")]:
        started = time.perf_counter()
        # both sides measure alike: the same timed rounds per setting, no single-query latency calls
        tuned = lab.tune(ds, args.target, [index_type], progress=False, repeats=args.repeats, latency_queries=0)
        tune_wall = time.perf_counter() - started
        pick = tuned.best.iloc[0]
        if pick["status"] != "ok":
            failures.append(f"{index_type}: tune found no setting ({pick['note']})")
            continue
        grid_best, grid_wall, settings = run_grid(index_type, ds, args.target, args.quick, args.repeats)
        if grid_best is None:
            failures.append(f"{index_type}: the grid found no setting at recall {args.target}")
            continue
        picks = [(json.loads(pick["build_params"]), json.loads(pick["search_params"])),
                 (json.loads(grid_best["build_params"]), json.loads(grid_best["search_params"]))]
        tuned_t, grid_t = side_by_side(index_type, ds, picks, args.rounds)
        qps_ratio = tuned_t["qps"] / grid_t["qps"]
        wall_ratio = tune_wall / grid_wall
        lines.append(f"{index_type}: tune {spec.format_params(picks[0][0])}; {spec.format_params(picks[0][1])} "
                     f"recall {tuned_t['recall']:.3f} QPS {tuned_t['qps']:,.0f} ({tuned_t['qps_lo']:,.0f}-"
                     f"{tuned_t['qps_hi']:,.0f}) in {tune_wall:.0f} s ({len(tuned.trials)} builds)\n"
                     f"{'':<{len(index_type) + 2}}grid {spec.format_params(picks[1][0])}; "
                     f"{spec.format_params(picks[1][1])} recall {grid_t['recall']:.3f} QPS {grid_t['qps']:,.0f} "
                     f"({grid_t['qps_lo']:,.0f}-{grid_t['qps_hi']:,.0f}) in {grid_wall:.0f} s ({settings} settings)\n"
                     f"{'':<{len(index_type) + 2}}ACCEPTANCE QPS tune/grid = {qps_ratio:.3f} (>= 0.95), "
                     f"wall tune/grid = {wall_ratio:.3f} (<= 0.20)")
        print(lines[-1], flush=True)
        if qps_ratio < 0.95:
            failures.append(f"{index_type}: tune's QPS is {qps_ratio:.2f} x the grid's")
        if wall_ratio > 0.2:
            failures.append(f"{index_type}: tune took {wall_ratio:.2f} x the grid's wall time")
    print(f"peak RSS {memory.peak_rss_bytes() / 2**20:,.0f} MB")
    print("all acceptance checks passed" if not failures else "FAILED: " + "; ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - started:.0f} s)")
    sys.exit(code)
