"""Memory: drop_index and drop_collection release index memory, and create/drop cycles do not grow the process.

Measured in a fresh interpreter per case: the process RSS (psutil, or /proc/self/statm) and the engine's
own ``memory_bytes``. glibc keeps freed blocks in its heap, so the engine calls ``malloc_trim(0)`` after
drop_index / drop_collection: the ``raw_*`` figures (no trim by the test) check that; the others are taken
after the test's own ``malloc_trim(0)``: what remains then is really held, not just cached by the allocator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = textwrap.dedent("""
    import ctypes, gc, json, os, sys, warnings, weakref
    import numpy as np
    from milvus_lab import Engine
    warnings.simplefilter("ignore")
    try:
        import psutil
        _proc = psutil.Process()
        def _rss():
            return _proc.memory_info().rss
    except ImportError:
        _page = os.sysconf("SC_PAGE_SIZE")
        def _rss():
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * _page
    try:
        _trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        _trim = None
    def rss(trim=True):
        gc.collect()
        if trim and _trim is not None:
            _trim(0)
        return _rss()
    def indexes(c):
        return [weakref.ref(s.index) for s in c.snapshot().segments if s.index is not None]
    PLANS = {
        "IVF_FLAT": {"nlist": 64}, "IVF_SQ8": {"nlist": 64}, "IVF_PQ": {"nlist": 64, "m": 16},
        "HNSW": {"M": 16, "efConstruction": 40}, "ANNOY": {"n_trees": 8},
        "RNSG": {"search_length": 30, "out_degree": 16, "candidate_pool_size": 60, "knng": 24},
    }
""")

RELEASE = PRELUDE + textwrap.dedent("""
    index_type, rows, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    engine = Engine(build_threshold=1000)
    c = engine.create_collection("m", dim)
    data = np.random.default_rng(0).normal(size=(rows, dim)).astype(np.float32)
    c.insert(data)
    del data
    # one build and drop first: libraries keep one-time pools (OpenBLAS buffers, OpenMP threads) for good
    c.create_index(index_type, PLANS[index_type])
    c.drop_index()
    out = {"before": rss()}
    c.create_index(index_type, PLANS[index_type])
    out["built"] = rss()
    out["index_bytes"] = c.memory_bytes()["index_bytes"]
    refs = indexes(c)
    c.drop_index()
    out["raw_after_drop_index"] = rss(trim=False)
    out["after_drop_index"] = rss()
    out["index_bytes_after_drop"] = c.memory_bytes()["index_bytes"]
    out["alive_after_drop_index"] = sum(r() is not None for r in refs)
    c.create_index(index_type, PLANS[index_type])
    refs = indexes(c)
    out["rebuilt"] = rss()
    del c
    engine.drop_collection("m")
    out["raw_after_drop_collection"] = rss(trim=False)
    out["alive_after_drop_collection"] = sum(r() is not None for r in refs)
    out["after_drop_collection"] = rss()
    engine.close()
    print(json.dumps(out))
""")

CYCLES = PRELUDE + textwrap.dedent("""
    cycles, types = int(sys.argv[1]), sys.argv[2].split(",")
    engine = Engine(build_threshold=500)
    data = np.random.default_rng(1).normal(size=(2000, 32)).astype(np.float32)
    queries = data[:20]
    search = {"IVF_FLAT": {"nprobe": 8}, "IVF_SQ8": {"nprobe": 8}, "IVF_PQ": {"nprobe": 8}, "HNSW": {"ef": 32},
              "ANNOY": {"search_k": -1}, "RNSG": {"search_length": 30}}
    samples, raw = [], []
    annoy_files = lambda: len([f for f in os.listdir(__import__("tempfile").gettempdir())
                               if f.startswith("milvus_lab_annoy_")])
    for i in range(cycles):
        index_type = types[i % len(types)]
        c = engine.create_collection("cycle", 32, segment_rows=500)  # four segments, each indexed
        c.insert(data)
        c.create_index(index_type, PLANS[index_type])
        c.search(queries, 10, search[index_type])
        c.drop_index()
        c.create_index(index_type, PLANS[index_type])
        engine.drop_collection("cycle")
        del c
        samples.append(rss())
        raw.append(rss(trim=False))
    engine.close()
    print(json.dumps({"samples": samples, "raw": raw, "annoy_files_left": annoy_files()}))
""")


def child(code: str, *args: str, tmp: Path | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if tmp is not None:
        env["TMPDIR"] = str(tmp)  # a private temp dir: annoy's index files are counted there
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


MB = 2**20


@pytest.mark.slow
@pytest.mark.parametrize("index_type,rows,dim", [("HNSW", 15000, 64), ("IVF_FLAT", 60000, 64),
                                                 ("IVF_SQ8", 60000, 64), ("ANNOY", 30000, 64)])
def test_drop_index_and_drop_collection_release_index_memory(index_type, rows, dim):
    m = child(RELEASE, index_type, rows, dim)
    grew = m["built"] - m["before"]
    assert m["index_bytes"] > 0
    assert m["index_bytes_after_drop"] == 0
    assert m["alive_after_drop_index"] == 0, "drop_index left built indexes reachable"
    assert m["alive_after_drop_collection"] == 0, "drop_collection left built indexes reachable"
    # the RSS the index took is given back (within 25 % of it, and 3 MB of noise)
    assert m["after_drop_index"] - m["before"] <= 0.25 * max(grew, 0) + 3 * MB, m
    assert m["after_drop_collection"] <= m["before"] + 3 * MB, m
    # the engine hands the memory back by itself (malloc_trim after the drop), not only when the test trims
    assert m["raw_after_drop_index"] - m["before"] <= 0.25 * max(grew, 0) + 3 * MB, m
    assert m["raw_after_drop_collection"] <= m["before"] + 3 * MB, m
    if index_type in ("HNSW", "IVF_FLAT"):  # the index is measurable in RSS, and memory_bytes is of its size
        assert grew >= 0.5 * m["index_bytes"], m


@pytest.mark.slow
def test_fifty_create_drop_cycles_do_not_grow_the_process(tmp_path):
    m = child(CYCLES, 50, "IVF_FLAT,HNSW,ANNOY,IVF_SQ8,RNSG", tmp=tmp_path)
    samples = m["raw"]  # as the process is, without a trim by the test: the engine trims after each drop
    settled = samples[9]  # after every type has been through twice (allocator pools warmed up)
    growth = max(samples[10:]) - settled
    assert growth <= max(8 * MB, 0.05 * settled), [round(s / MB, 1) for s in samples]
    assert m["annoy_files_left"] == 0, "annoy's private index files were not removed"


@pytest.mark.slow
def test_hnsw_memory_bytes_accounts_for_the_fixed_cost_per_index():
    code = PRELUDE + textwrap.dedent("""
        engine = Engine(build_threshold=32)
        c = engine.create_collection("small", 8, segment_rows=100)
        c.insert(np.random.default_rng(0).normal(size=(10000, 8)).astype(np.float32))
        before = rss()
        c.create_index("HNSW", PLANS["HNSW"])
        print(json.dumps({"grew": rss() - before, "index_bytes": c.memory_bytes()["index_bytes"]}))
    """)
    m = child(code)
    assert m["index_bytes"] >= 0.5 * m["grew"], f"100 HNSW segments: RSS +{m['grew'] / MB:.0f} MB, " \
                                                f"memory_bytes {m['index_bytes'] / MB:.1f} MB"


def test_hnsw_and_annoy_on_many_tiny_segments_warn_with_the_cost():
    import warnings

    import numpy as np

    from milvus_lab import Engine
    from milvus_lab.errors import RecommendationWarning

    engine = Engine(build_threshold=32)
    try:
        c = engine.create_collection("tiny", 8, segment_rows=100)
        c.insert(np.random.default_rng(0).normal(size=(2000, 8)).astype(np.float32))
        for index_type, params in [("HNSW", {"M": 16, "efConstruction": 40}), ("ANNOY", {"n_trees": 8})]:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                report = c.create_index(index_type, params)
            notes = [str(w.message) for w in caught if issubclass(w.category, RecommendationWarning)]
            assert report.index_bytes > 2 * 2000 * 8 * 4
            assert any(f"{index_type} on 20 segments" in n and "of overhead" in n for n in notes), notes
        with warnings.catch_warnings(record=True) as caught:  # IVF has no per-segment fixed cost: no warning
            warnings.simplefilter("always")
            c.create_index("IVF_FLAT", {"nlist": 4})
        assert not [w for w in caught if "segments of about" in str(w.message)]
        big = engine.create_collection("few", 8, segment_rows=1000)
        big.insert(np.random.default_rng(1).normal(size=(2000, 8)).astype(np.float32))
        with warnings.catch_warnings(record=True) as caught:  # two segments: no warning
            warnings.simplefilter("always")
            big.create_index("HNSW", {"M": 16, "efConstruction": 40})
        assert not [w for w in caught if "segments of about" in str(w.message)]
    finally:
        engine.close()
