"""Tampered saves, tried as an attacker would: change bytes of an index file, recompute the manifest's sums.

    python scripts/tamper_saves.py                          # 150 tries per index type, default settings
    python scripts/tamper_saves.py --tries 20 --trust       # also load every tampered save with trust=True
    python scripts/tamper_saves.py --tries 3 --json --workdir /tmp/t   # the CI version

For each index type (IVF_FLAT, HNSW, ANNOY, RNSG, IVF_PQ) a collection with two indexed segments and a raw one
is saved (signed with this run's key). Each try copies the save, changes 1 to 16 bytes of one index file
(half the time within its first 512 bytes, where sizes and counts live), recomputes that file's sha256 and
size and the manifest's checksum (the signature cannot be recomputed without the key: it is dropped or left
stale), then loads the copy and searches it in a separate process (forked per try from a runner that has
imported milvus_lab but never run a library call). Outcomes: ``rebuilt`` (loaded with UnsignedSaveWarning:
index files not read, indexes rebuilt from the vectors), ``read`` (index files parsed), ``refused`` (a
milvus_lab exception), ``foreign`` (any other exception), ``crash`` (killed by a signal), ``hang`` (no answer
in --timeout s). With default settings a tampered save must give 0 crash, 0 foreign, 0 read; the untampered
signed save must load with its files read and search exactly as before saving. Exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIM = 16
TYPES = {
    "IVF_FLAT": ({"nlist": 8}, {"nprobe": 3}),
    "HNSW": ({"M": 8, "efConstruction": 40}, {"ef": 30}),
    "ANNOY": ({"n_trees": 4}, {"search_k": -1}),
    "RNSG": ({"search_length": 20, "out_degree": 10, "candidate_pool_size": 60, "knng": 20}, {"search_length": 30}),
    "IVF_PQ": ({"nlist": 8, "m": 4}, {"nprobe": 3}),
}
OUTCOMES = ("rebuilt", "read", "refused", "foreign", "crash", "hang")


def _queries():
    import numpy as np
    return np.random.default_rng(7).normal(size=(10, DIM)).astype(np.float32)


def _answer_digest(result) -> str:
    return hashlib.sha256(result.ids.tobytes() + result.distances.tobytes()).hexdigest()


# ------------------------------------------------------------------------------------------------------
# the runner: imports milvus_lab once, forks one child per try, reports how each child ended
# ------------------------------------------------------------------------------------------------------
def _try_load(path: str, index_type: str, trust: bool) -> dict:
    """In the forked child: load and search; describe the outcome (never raises)."""
    from milvus_lab import Engine
    from milvus_lab.engine import persist
    from milvus_lab.errors import MilvusLabError

    engine = Engine(build_threshold=32)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            collection = engine.restore_collection(persist.read_collection_state(path, trust=trust))
            result = collection.search(_queries(), 5, TYPES[index_type][1])
        rebuilt = any(issubclass(w.category, persist.UnsignedSaveWarning) for w in caught)
        return {"outcome": "rebuilt" if rebuilt else "read", "answer": _answer_digest(result)}
    except MilvusLabError as exc:
        return {"outcome": "refused", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    except BaseException as exc:  # noqa: BLE001 - exactly what this experiment counts
        return {"outcome": "foreign", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}


def runner(timeout: float) -> None:
    sys.path.insert(0, str(ROOT))
    import milvus_lab  # noqa: F401  (imported before forking: children start warm)
    from milvus_lab.engine import persist  # noqa: F401

    for line in sys.stdin:
        task = json.loads(line)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: one load + search, then exit without cleanup
            os.close(read_end)
            try:
                report = _try_load(task["path"], task["index_type"], task["trust"])
                os.write(write_end, json.dumps(report).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.005)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = None
        with os.fdopen(read_end, "rb") as fh:
            raw = fh.read()
        if status is None:
            report = {"outcome": "hang"}
        elif os.WIFSIGNALED(status):
            report = {"outcome": "crash", "signal": signal.Signals(os.WTERMSIG(status)).name}
        else:
            report = json.loads(raw) if raw else {"outcome": "crash", "exit": os.WEXITSTATUS(status)}
        print(json.dumps(report), flush=True)


# ------------------------------------------------------------------------------------------------------
# the experiment
# ------------------------------------------------------------------------------------------------------
def _make_saves(work: Path) -> dict[str, tuple[Path, str]]:
    """One signed save per index type and the digest of its answers before saving."""
    import numpy as np

    from milvus_lab import Engine
    from milvus_lab.engine import persist

    saves = {}
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, DIM))
    data = (centres[rng.integers(0, 12, 650)] + 0.2 * rng.normal(size=(650, DIM))).astype(np.float32)
    for index_type, (build, search) in TYPES.items():
        engine = Engine(build_threshold=32)
        try:
            c = engine.create_collection(index_type.lower(), DIM, segment_rows=300)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                c.create_index(index_type, build)
                c.insert(data)
                assert c.wait_for_index(120)
                answer = _answer_digest(c.search(_queries(), 5, search))
            indexed = [s["index_name"] for s in c.segments()]
            assert indexed == [index_type, index_type, "FLAT"], indexed
            saves[index_type] = (persist.save_collection(c.snapshot(), work / f"orig-{index_type}"), answer)
        finally:
            engine.close()
    return saves


def _tamper(original: Path, copy: Path, rng: random.Random) -> str:
    """Copy the save, change 1-16 bytes of one index file, recompute the sums; returns what was done."""
    shutil.copytree(original, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    rel = rng.choice(sorted(name for name in manifest["files"] if name.endswith(".index")))
    data = bytearray((copy / rel).read_bytes())
    n = rng.randint(1, 16)
    span = min(len(data), 512) if rng.random() < 0.5 else len(data)
    for pos in rng.sample(range(span), min(n, span)):
        data[pos] = (data[pos] + rng.randint(1, 255)) % 256
    (copy / rel).write_bytes(bytes(data))
    manifest["files"][rel] = {"sha256": hashlib.sha256(bytes(data)).hexdigest(), "bytes": len(data)}
    manifest.pop("checksum")
    stale = manifest.pop("signature")
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    manifest["checksum"] = {"sha256": hashlib.sha256(body).hexdigest()}
    if rng.random() < 0.5:
        manifest["signature"] = stale  # left as it was: no longer matches
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return f"{n} byte(s) of {rel}"


def run(tries: int, types: list[str], seed: int, trust_too: bool, timeout: float, work: Path,
        verbose: bool = True) -> dict:
    os.environ["MILVUS_LAB_CONFIG_DIR"] = str(work / "config")
    sys.path.insert(0, str(ROOT))
    saves = _make_saves(work)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, __file__, "--runner", str(timeout)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)

    def ask(path: Path, index_type: str, trust: bool) -> dict:
        proc.stdin.write(json.dumps({"path": str(path), "index_type": index_type, "trust": trust}) + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    rng = random.Random(seed)
    summary: dict = {"tries_per_type": tries, "seed": seed, "types": {}}
    started = time.time()
    try:
        for index_type in types:
            original, answer = saves[index_type]
            signed = ask(original, index_type, False)
            row: dict = {"signed_original": signed["outcome"],
                         "signed_original_exact": signed.get("answer") == answer}
            modes = {"default": False, "trust": True} if trust_too else {"default": False}
            for mode in modes:
                row[mode] = dict.fromkeys(OUTCOMES, 0)
                row[mode]["rebuilt_exact"] = 0
                row[mode]["read_answers_changed"] = 0
                row[mode]["examples"] = []
            for i in range(tries):
                copy = work / f"try-{index_type}-{i}"
                what = _tamper(original, copy, rng)
                for mode, trust in modes.items():
                    report = ask(copy, index_type, trust)
                    counts = row[mode]
                    counts[report["outcome"]] += 1
                    if report["outcome"] == "rebuilt" and report.get("answer") == answer:
                        counts["rebuilt_exact"] += 1
                    if report["outcome"] == "read" and report.get("answer") != answer:
                        counts["read_answers_changed"] += 1  # a damaged index that parsed: silent damage
                    if report["outcome"] in ("foreign", "crash", "hang") and len(counts["examples"]) < 5:
                        counts["examples"].append(f"{what}: {report}")
                shutil.rmtree(copy)
            summary["types"][index_type] = row
            if verbose:
                print(f"  {index_type}: {json.dumps(row)}", flush=True)
    finally:
        proc.stdin.close()
        proc.wait()
    summary["seconds"] = round(time.time() - started, 1)
    return summary


def _failures(summary: dict) -> list[str]:
    bad = []
    for index_type, row in summary["types"].items():
        if row["signed_original"] != "read" or not row["signed_original_exact"]:
            bad.append(f"{index_type}: the signed original gave {row['signed_original']}, "
                       f"exact={row['signed_original_exact']}")
        default = row["default"]
        if default["crash"] or default["foreign"] or default["hang"] or default["read"]:
            bad.append(f"{index_type}: default settings gave {default}")
    return bad


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--runner":
        runner(float(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=150, help="tampered saves per index type")
    parser.add_argument("--types", nargs="+", choices=sorted(TYPES), default=list(TYPES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trust", action="store_true", help="also load every tampered save with trust=True "
                                                             "(measures the index-file structure checks)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one load + search may take")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    parser.add_argument("--workdir", type=Path, help="folder for the saves and the key (default: temporary)")
    args = parser.parse_args()
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="tamper_saves_") as work:
            summary = run(args.tries, args.types, args.seed, args.trust, args.timeout, Path(work), not args.json)
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        summary = run(args.tries, args.types, args.seed, args.trust, args.timeout, args.workdir, not args.json)
    summary["failures"] = _failures(summary)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"tampered saves: {args.tries} tries per type, seed {args.seed}, {summary['seconds']} s")
        for index_type, row in summary["types"].items():
            print(f"{index_type}: signed original {row['signed_original']}, exact: {row['signed_original_exact']}")
            for mode in ("default", "trust"):
                if mode in row:
                    counts = {k: v for k, v in row[mode].items() if k != "examples"}
                    print(f"  {mode:8s} {counts}")
                    for example in row[mode]["examples"]:
                        print(f"           e.g. {example}")
        for line in summary["failures"]:
            print("FAIL", line)
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
