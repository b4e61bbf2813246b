"""The long profile of the hostile-value suites: every tests/test_*hostile*.py with many hypothesis examples.

    python scripts/hostile_long.py                   # 500 examples per hypothesis test, every hostile suite
    python scripts/hostile_long.py --examples 2000   # a longer run
    python scripts/hostile_long.py --only lab_forms  # the suites whose file name contains 'lab_forms'

The CI run uses a small MILVUS_LAB_HOSTILE_EXAMPLES (the suites' default); this sets it high and runs
each suite in its own pytest process, with MILVUS_LAB_CACHE_DIR pointed at a temporary folder. Prints,
per suite, the tests passed / failed, the examples asked per test and the seconds taken; exits 1 if any
suite failed (pytest's report shows the shrunk failing value).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def suites(only: str | None) -> list[Path]:
    found = sorted((ROOT / "tests").glob("test_*hostile*.py"))
    return [p for p in found if only is None or only in p.name]


def run_suite(path: Path, examples: int, cache: str) -> tuple[int, int, float, int]:
    env = {**os.environ, "MILVUS_LAB_HOSTILE_EXAMPLES": str(examples), "MILVUS_LAB_CACHE_DIR": cache}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", str(path), "-q", "-p", "no:cacheprovider",
                           "--tb=short"], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    tail = proc.stdout.strip().splitlines()[-1:] or [""]
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", tail[0])) else 0
    failed = int(m.group(1)) if (m := re.search(r"(\d+) failed", tail[0])) else 0
    if proc.returncode not in (0, 5):
        failed = failed or 1
        sys.stdout.write(proc.stdout[-6000:] + proc.stderr[-2000:])
    return passed, failed, seconds, proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500, help="hypothesis examples per test (default: 500)")
    parser.add_argument("--only", default=None, help="run only the suites whose file name contains this")
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error("--examples must be >= 1")
    chosen = suites(args.only)
    if not chosen:
        parser.error(f"no tests/test_*hostile*.py matches {args.only!r}")
    total_passed = total_failed = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="milvus_lab_hostile_cache_") as cache:
        for path in chosen:
            passed, failed, seconds, code = run_suite(path, args.examples, cache)
            total_passed += passed
            total_failed += failed
            print(f"{path.name:<32} {passed:>4} passed {failed:>3} failed  {args.examples} examples/test  "
                  f"{seconds:7.1f} s  (pytest exit {code})", flush=True)
    print(f"all hostile suites: {total_passed} passed, {total_failed} failed, {args.examples} examples per "
          f"hypothesis test, {time.perf_counter() - started:.1f} s")
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
