"""Soak test: tests/test_concurrency.py's workload for 60 s (or --seconds), then the end-state checks.

    python scripts/soak.py                 # 60 s, seed 0
    python scripts/soak.py --seconds 600 --seed 3

Two inserters, two searchers, a deleter (delete, flush, compact) and an index churner (create_index of
FLAT, IVF_FLAT, HNSW, ANNOY, RNSG; drop_index) share one collection whose small segments seal and build
in the background. Every search is checked while the others run; at the end no entity may be lost or
duplicated. Prints the counts and peak RSS; exits 1 on any error.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=30_000, help="rows each inserter may insert (default 30,000)")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from test_concurrency import run_workload

    print(f"soaking for {args.seconds:.0f} s (seed {args.seed}) ...", flush=True)
    result = run_workload(args.seconds, seed=args.seed, rows_per_inserter=args.rows)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, indent=1))
    if result["errors"]:
        print(f"FAILED: {len(result['errors'])} error(s)", file=sys.stderr)
        return 1
    print(f"passed: {result.get('inserted rows', 0):,} rows inserted, {result.get('deleted rows', 0):,} deleted, "
          f"{result.get('searches checked', 0) + result.get('exact searches checked', 0):,} searches checked, "
          f"{result.get('index changes', 0)} index changes in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
