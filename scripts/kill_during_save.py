"""Kill-during-save: SIGKILL a process that keeps saving a collection, then check what the path holds.

    python scripts/kill_during_save.py                  # 200 kills, HNSW, seed 0
    python scripts/kill_during_save.py --kills 15 --index IVF_FLAT --seed 3 --json

A child process saves a collection with several indexed segments to one path in a loop, changing it before
every save (new rows that seal and index new segments, deletes, pending deletes). Before each save it logs
the generation number and a fingerprint of what it is about to save (rows, ids, deletes, metadata and the
results of fixed queries through the indexes); after the save returns it logs that the save is done. The
parent kills it with SIGKILL at a random moment, loads the path (index files read, as the save is signed
with this run's key) and compares the loaded collection's fingerprint with the log: it must equal the last
completed save ("previous") or the one being written when the kill came ("new"), never anything else. The
next child continues from whatever was loaded. Exits 1 on any unreadable or mixed save.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIM = 16
SEGMENT_ROWS = 120
BATCH = 70
BUILD = {"IVF_FLAT": ({"nlist": 4}, {"nprobe": 2}), "HNSW": ({"M": 8, "efConstruction": 32}, {"ef": 16}),
         "ANNOY": ({"n_trees": 4}, {"search_k": -1}), "IVF_PQ": ({"nlist": 4, "m": 4}, {"nprobe": 2})}


def _fingerprint(collection, search_params) -> str:
    """A digest of everything a load must bring back: state, rows, deletes and index answers."""
    import numpy as np

    state = collection.snapshot()
    digest = hashlib.sha256()
    meta = {"name": state.name, "index": [state.index_type, dict(state.index_params)], "id_mode": state.id_mode,
            "next_auto_id": state.next_auto_id, "next_segment_id": state.next_segment_id,
            "partitions": list(state.partitions),
            "segments": [[s.segment_id, s.partition, s.sealed, s.capacity_rows, s.count, s.index is not None,
                          s.raw_reason] for s in state.segments],
            "pending": [[b.ids.tolist(), sorted(b.extent.items())] for b in state.pending_deletes]}
    digest.update(json.dumps(meta, sort_keys=True).encode())
    for s in state.segments:
        for array in (s.vectors, s.ids, s.deleted):
            digest.update(b"-" if array is None else np.ascontiguousarray(array).tobytes())
    queries = np.random.default_rng(99).normal(size=(8, DIM)).astype(np.float32)
    if collection.count():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = collection.search(queries, 5, search_params)
        digest.update(result.ids.tobytes() + result.distances.tobytes())
    return digest.hexdigest()


def _load(path: Path):
    from milvus_lab import Engine
    from milvus_lab.engine import persist

    engine = Engine(build_threshold=32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", persist.UnsignedSaveWarning)  # our own signed saves: files are read
        return engine, engine.restore_collection(persist.read_collection_state(path))


def child(path: Path, log: Path, index: str, generation: int) -> None:
    """Save in a loop until killed; ``generation`` is what ``path`` holds now (-1: nothing yet)."""
    import numpy as np

    from milvus_lab import Engine
    from milvus_lab.engine import persist

    build, search = BUILD[index]
    if generation < 0:
        engine = Engine(build_threshold=32)
        c = engine.create_collection("killed", DIM, segment_rows=SEGMENT_ROWS)
        c.create_partition("side")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c.create_index(index, build)
    else:
        engine, c = _load(path)
    with open(log, "a", encoding="utf-8") as out:
        def note(line: str) -> None:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())

        if generation < 0:  # generation 0: the first save, before any kill may come
            generation = 0
            note(f"start 0 {_fingerprint(c, search)}")
            persist.save_collection(c.snapshot(), path)
            note("done 0")
        print("ready", flush=True)
        while True:
            generation += 1
            rng = np.random.default_rng(generation)
            tag = "side" if generation % 3 == 0 else "_default"
            c.insert(rng.normal(size=(BATCH, DIM)).astype(np.float32), partition_tag=tag)
            if c.count() > 3 * BATCH:
                ids = np.concatenate([np.asarray(c.list_id_in_segment(s["name"])) for s in c.segments()])
                c.delete(rng.choice(ids, 5, replace=False).tolist())
                if generation % 2:
                    c.flush()
            if generation % 7 == 0:
                c.compact()
            assert c.wait_for_index(120)
            note(f"start {generation} {_fingerprint(c, search)}")
            persist.save_collection(c.snapshot(), path)
            note(f"done {generation}")


def _read_log(log: Path) -> tuple[dict[int, str], int]:
    started: dict[int, str] = {}
    done = -1
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "start":
            started[int(parts[1])] = parts[2]
        elif len(parts) == 2 and parts[0] == "done":
            done = int(parts[1])
    return started, done


def run(kills: int, index: str, seed: int, window: float, work: Path, verbose: bool = True) -> dict:
    """Kill the saving child ``kills`` times in the folder ``work``; count what each load brought back."""
    rng = random.Random(seed)
    path, log = work / "save", work / "log.txt"
    env = dict(os.environ, MILVUS_LAB_CONFIG_DIR=str(work / "config"), PYTHONPATH=str(ROOT),
               OMP_NUM_THREADS="1")
    os.environ["MILVUS_LAB_CONFIG_DIR"] = env["MILVUS_LAB_CONFIG_DIR"]
    counts = {"kills": 0, "previous": 0, "new": 0, "killed_mid_save": 0, "between_saves": 0, "unreadable": 0, "mixed": 0,
              "child_died": 0, "saves_completed": 0}  # saves_completed: saves whose "done" line was logged
    failures: list[str] = []
    generation = -1
    known: dict[int, str] = {}  # generation -> fingerprint of what it saved
    started_at = time.time()
    for k in range(kills):
        log.write_text("")
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(path), str(log), index, str(generation)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        if proc.stdout.readline().strip() != "ready":
            proc.wait()
            counts["child_died"] += 1
            failures.append(f"kill {k}: the child did not start: {proc.stderr.read()[-2000:]}")
            break
        time.sleep(rng.uniform(0.0, window))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        counts["kills"] += 1
        started, done = _read_log(log)
        known.update(started)
        done = max(done, generation)  # the generation the child started from is complete too
        counts["saves_completed"] += max(0, done - max(generation, 0))
        last = max(started) if started else generation
        counts["killed_mid_save"] += last > done
        try:
            engine, loaded = _load(path)
            try:
                got = _fingerprint(loaded, BUILD[index][1])
            finally:
                engine.close()
        except Exception as exc:  # noqa: BLE001 - counted and reported
            counts["unreadable"] += 1
            failures.append(f"kill {k}: {type(exc).__name__}: {exc}")
            break
        if got == known.get(done):
            counts["previous"] += 1
            generation = done
            if last == done:
                counts["between_saves"] += 1
        elif last > done and got == known[last]:
            counts["new"] += 1
            generation = last
        else:
            counts["mixed"] += 1
            failures.append(f"kill {k}: the loaded collection matches neither generation {done} nor {last}")
            break
        if verbose and (k + 1) % 25 == 0:
            print(f"  {k + 1} kills: {counts}", flush=True)
    leftovers = sorted(p.name for p in path.iterdir() if p.name != "manifest.json") if path.exists() else []
    counts["generations_committed"] = generation  # saves that reached their commit (done logged or not)
    counts["seconds"] = round(time.time() - started_at, 1)
    counts["entries_in_save_dir"] = len(leftovers)
    counts["failures"] = failures
    return counts


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.path.insert(0, str(ROOT))
        child(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--index", choices=sorted(BUILD), default="HNSW")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window", type=float, default=0.6, help="kill within this many seconds of start")
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON line")
    parser.add_argument("--workdir", type=Path, help="folder for the save, the log and the key (default: a "
                                                    "temporary folder, removed at the end)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="kill_during_save_") as work:
            counts = run(args.kills, args.index, args.seed, args.window, Path(work), verbose=not args.json)
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        counts = run(args.kills, args.index, args.seed, args.window, args.workdir, verbose=not args.json)
    if args.json:
        print(json.dumps(counts))
    else:
        print(f"kill-during-save, {args.index}, seed {args.seed}: {args.kills} kills requested")
        for key, value in counts.items():
            if key != "failures":
                print(f"  {key:22s} {value}")
        for line in counts["failures"]:
            print("  FAIL", line)
    bad = counts["unreadable"] + counts["mixed"] + counts["child_died"]
    return 1 if bad or counts["kills"] < args.kills else 0


if __name__ == "__main__":
    sys.exit(main())
