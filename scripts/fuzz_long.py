"""The long model-based fuzz run: tests/test_stateful.py's state machine under the "long" profile.

    python scripts/fuzz_long.py                      # 10,000 sequences of up to 50 steps, one process
    python scripts/fuzz_long.py --workers 2          # split the sequences over 2 processes
    python scripts/fuzz_long.py --examples 500       # a shorter run

Each sequence drives a fresh Engine through random calls (valid and invalid) and compares it with the
NumPy model after every step. Prints the number of sequences, the time taken and how often each call and
outcome occurred; exits 1 with hypothesis's shrunk failing sequence if one fails.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_one(examples: int, steps: int) -> int:
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    os.environ["MILVUS_LAB_FUZZ_PROFILE"] = "long"
    import test_stateful as machine
    from hypothesis import settings
    from hypothesis.stateful import run_state_machine_as_test

    chosen = settings(settings.get_profile("long"), max_examples=examples, stateful_step_count=steps)
    started = time.perf_counter()
    status = 0
    done = threading.Event()

    def progress() -> None:  # a line a minute on stderr, so a long run shows it is alive
        while not done.wait(60):
            print(f"  ... {machine.STATS.get('sequences', 0):,} sequences after "
                  f"{(time.perf_counter() - started) / 60:.1f} min", file=sys.stderr, flush=True)

    threading.Thread(target=progress, daemon=True).start()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly, still printing the figures
    try:
        run_state_machine_as_test(machine.EngineMachine, settings=chosen)
    except KeyboardInterrupt:
        print("interrupted: the figures below are for the sequences run so far", file=sys.stderr)
        status = 2
    except BaseException:  # noqa: BLE001 - hypothesis attached the shrunk falsifying sequence to the traceback
        traceback.print_exc()
        status = 1
    done.set()
    print(json.dumps({"sequences": machine.STATS.get("sequences", 0), "seconds": time.perf_counter() - started,
                      "failed": status == 1, "interrupted": status == 2, "stats": machine.STATS}))
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000, help="sequences in total (default 10,000)")
    parser.add_argument("--steps", type=int, default=50, help="most steps per sequence (default 50)")
    parser.add_argument("--workers", type=int, default=1, help="processes to split the sequences over")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker or args.workers == 1:
        if not args.worker:
            print(f"fuzzing {args.examples:,} sequences of up to {args.steps} steps ...", flush=True)
        return run_one(args.examples, args.steps) if args.worker else _report([_capture(args, args.examples)])
    share = [args.examples // args.workers + (i < args.examples % args.workers) for i in range(args.workers)]
    print(f"fuzzing {args.examples:,} sequences of up to {args.steps} steps in {args.workers} processes ...",
          flush=True)
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", "--examples", str(n), "--steps",
                               str(args.steps)], stdout=subprocess.PIPE, text=True) for n in share]
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        results.append(_parse(out, proc.returncode))
    return _report(results, time.perf_counter() - started)


def _capture(args: argparse.Namespace, examples: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", "--examples", str(examples), "--steps",
                           str(args.steps)], stdout=subprocess.PIPE, text=True, check=False)
    return _parse(proc.stdout, proc.returncode)


def _parse(out: str, code: int) -> dict:
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        print(out)
        return {"sequences": 0, "seconds": 0.0, "failed": True, "stats": {}, "code": code}
    result = json.loads(lines[-1])
    result["code"] = code
    return result


def _report(results: list[dict], wall: float | None = None) -> int:
    sequences = sum(r["sequences"] for r in results)
    seconds = wall if wall is not None else sum(r["seconds"] for r in results)
    stats: dict[str, int] = {}
    for r in results:
        for key, value in r["stats"].items():
            stats[key] = stats.get(key, 0) + value
    failed = any(r["failed"] or r["code"] == 1 for r in results)
    interrupted = any(r.get("interrupted") for r in results)
    print(f"{'FAILED' if failed else 'interrupted' if interrupted else 'passed'}: {sequences:,} sequences in {seconds / 60:.1f} min "
          f"({'one' if len(results) == 1 else len(results)} process{'es' if len(results) > 1 else ''})")
    for key in sorted(stats):
        if key != "sequences":
            print(f"  {stats[key]:>8,}  {key}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
