"""Tampered index files against backends.load: 1-16 random bytes of a saved index changed, then load and
search in a child process, many times per index type.

Each outcome is one of: ``refused`` (BuildIndexError), ``ok`` (loaded, and the search returned positions
in range), ``bad-ids`` (a position out of range), ``foreign:<type>`` (another exception escaped),
``crash:<signal>`` (the child died) or ``hang`` (no answer within the timeout). The children loop over
many files; when one dies, the file it was on is recorded and a new child carries on with the next.

    python scripts/tamper_backends.py                      # 150 tries per type
    python scripts/tamper_backends.py --tries 20 --json    # what tests/test_backends_tamper.py runs
    python scripts/tamper_backends.py --unchecked          # baseline: the libraries alone
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

N, DIM, BITS, NQ, K = 1500, 16, 64, 20, 10
#: address space of a child (bytes); an allocation beyond it is an outcome "memory" (a size not checked)
MEMORY_LIMIT = 3 * 2**30
#: seconds one load + search may take before the child counts as hung
JOB_TIMEOUT = 30.0
#: name -> (index type, metric, build params, search params)
CASES: dict[str, tuple[str, str, dict[str, int], dict[str, int]]] = {
    "FLAT": ("FLAT", "L2", {}, {}),
    "IVF_FLAT": ("IVF_FLAT", "L2", {"nlist": 16}, {"nprobe": 4}),
    "IVF_SQ8": ("IVF_SQ8", "IP", {"nlist": 16}, {"nprobe": 4}),
    "IVF_PQ": ("IVF_PQ", "L2", {"nlist": 16, "m": 4}, {"nprobe": 4}),
    "RNSG": ("RNSG", "L2", {"search_length": 30, "out_degree": 16, "candidate_pool_size": 100, "knng": 20},
             {"search_length": 40}),
    "HNSW": ("HNSW", "L2", {"M": 8, "efConstruction": 40}, {"ef": 20}),
    "HNSW_IP": ("HNSW", "IP", {"M": 8, "efConstruction": 40}, {"ef": 20}),
    "ANNOY": ("ANNOY", "L2", {"n_trees": 4}, {"search_k": -1}),
    "ANNOY_IP": ("ANNOY", "IP", {"n_trees": 4}, {"search_k": -1}),
    "BIN_FLAT": ("FLAT", "JACCARD", {}, {}),
    "BIN_IVF_FLAT": ("IVF_FLAT", "HAMMING", {"nlist": 16}, {"nprobe": 4}),
}


#: outcomes that are failures of the checks
BAD = ("crash", "hang", "foreign", "bad-ids", "memory")


def _save_originals(folder: Path, names: list[str]) -> dict[str, Path]:
    from milvus_lab import backends

    rng = np.random.default_rng(0)
    floats = rng.standard_normal((N, DIM)).astype(np.float32)
    codes = rng.integers(0, 256, (N, BITS // 8), dtype=np.uint8)
    out = {}
    for name in names:
        index_type, metric, params, _ = CASES[name]
        data = codes if metric in ("JACCARD", "HAMMING") else floats
        path = folder / f"{name}.index"
        backends.build(index_type, params, data, metric).save(path)
        out[name] = path
    return out


def _tampered(original: Path, target: Path, rng: np.random.Generator) -> None:
    data = bytearray(original.read_bytes())
    for _ in range(int(rng.integers(1, 17))):
        at = int(rng.integers(0, len(data)))
        data[at] = (data[at] + int(rng.integers(1, 256))) % 256  # always a different byte
    target.write_bytes(bytes(data))


def _skip_checks() -> None:
    """The baseline: the libraries read the files with no structure check of ours first."""
    import importlib

    for name in ("flat", "ivf", "nsg", "binary", "hnsw", "annoy"):
        module = importlib.import_module(f"milvus_lab.backends.{name}")
        module.check_file = lambda *args, **kwargs: N


def child(manifest: Path, start: int, unchecked: bool = False) -> None:
    """Load and search every tampered file from ``start`` on, printing BEGIN/END lines."""
    from milvus_lab import backends
    from milvus_lab.errors import BuildIndexError

    if unchecked:
        _skip_checks()

    # a tampered size must not take the shared machine's memory: past this, allocations fail (and count)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    jobs = json.loads(manifest.read_text())
    rng = np.random.default_rng(1)
    floats = rng.standard_normal((NQ, DIM)).astype(np.float32)
    codes = rng.integers(0, 256, (NQ, BITS // 8), dtype=np.uint8)
    for i in range(start, len(jobs)):
        name, path = jobs[i]
        index_type, metric, params, search = CASES[name]
        print(f"BEGIN {i}", flush=True)
        dim = BITS if metric in ("JACCARD", "HAMMING") else DIM
        try:
            index = backends.load(index_type, params, metric, dim, Path(path))
            _, ids = index.search(codes if dim == BITS else floats, K, search)
            outcome = "ok" if ((ids >= -1) & (ids < index.ntotal)).all() and index.ntotal == N else "bad-ids"
        except BuildIndexError as exc:
            outcome = "memory" if isinstance(exc.__cause__, MemoryError) else "refused"
        except Exception as exc:  # the experiment counts what escapes
            outcome = f"foreign:{type(exc).__name__}:{str(exc)[:80]}"
        print(f"END {i} {outcome}", flush=True)


def run(names: list[str], tries: int, seed: int, unchecked: bool = False) -> dict[str, Counter]:
    """Tamper ``tries`` copies of each case's saved file and classify every load + search."""
    results: dict[str, Counter] = {name: Counter() for name in names}
    with tempfile.TemporaryDirectory(prefix="milvus_lab_tamper_") as tmp:
        folder = Path(tmp)
        originals = _save_originals(folder, names)
        rng = np.random.default_rng(seed)
        jobs = []
        for name in names:
            for t in range(tries):
                target = folder / f"{name}.{t}.index"
                _tampered(originals[name], target, rng)
                groups = Path(str(originals[name]) + ".groups.npy")
                if groups.exists():
                    Path(str(target) + ".groups.npy").write_bytes(groups.read_bytes())
                jobs.append((name, str(target)))
        manifest = folder / "jobs.json"
        manifest.write_text(json.dumps(jobs))
        start = 0
        while start < len(jobs):
            start = _run_child(manifest, start, jobs, results, unchecked)
    return results


def _run_child(manifest: Path, start: int, jobs: list, results: dict[str, Counter], unchecked: bool) -> int:
    """One child from ``start``; returns where the next child starts."""
    command = [sys.executable, __file__, "--child", str(manifest), str(start)] + (["--unchecked"] if unchecked else [])
    proc = subprocess.Popen(command,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    current, done, timed_out = None, start, False
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while True:
            if not selector.select(timeout=JOB_TIMEOUT):
                proc.kill()
                timed_out = True
                break
            line = proc.stdout.readline()
            if not line:
                break
            parts = line.split(" ", 2)
            if parts[0] == "BEGIN":
                current = int(parts[1])
            elif parts[0] == "END":
                results[jobs[int(parts[1])][0]][parts[2].strip()] += 1
                done, current = int(parts[1]) + 1, None
    code = proc.wait()
    if current is not None:
        if timed_out:
            outcome = "hang"
        elif code < 0:
            outcome = f"crash:{signal.Signals(-code).name}"
        else:
            outcome = f"crash:exit {code}"
        results[jobs[current][0]][outcome] += 1
        return current + 1
    if done < len(jobs):
        raise RuntimeError(f"tamper child exited with {code} before job {done}")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=int(os.environ.get("MILVUS_LAB_TAMPER_TRIES", 150)))
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--types", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    parser.add_argument("--unchecked", action="store_true",
                        help="baseline: skip milvus_lab's structure checks (the libraries parse the files as they are)")
    parser.add_argument("--child", nargs=2, metavar=("MANIFEST", "START"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), int(args.child[1]), args.unchecked)
        return
    started = time.perf_counter()
    results = run(args.types, args.tries, args.seed, args.unchecked)
    if args.json:
        print(json.dumps({name: dict(counts) for name, counts in results.items()}))
        return
    print(f"{args.tries} tampered files per type (1-16 random bytes changed), seed {args.seed}, "
          f"{'WITHOUT' if args.unchecked else 'with'} structure checks, "
          f"{time.perf_counter() - started:.0f} s")
    for name, counts in results.items():
        bad = sum(v for k, v in counts.items() if k.split(":")[0] in BAD)
        print(f"{name:<13} refused {counts['refused']:>4}  ok {counts['ok']:>4}  bad {bad:>3}  "
              + "  ".join(f"{k}={v}" for k, v in counts.items() if k not in ("refused", "ok")))


if __name__ == "__main__":
    main()
