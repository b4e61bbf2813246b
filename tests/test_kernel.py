"""The notebook kernel: faiss, hnswlib and annoy in one process must not crash, and threads are controllable.

Each check runs in a fresh interpreter (a segfault or an abort from clashing OpenMP runtimes kills only
the child and shows as a negative return code), and once in a real Jupyter kernel through nbclient.
See docs/threads.md for the thread settings these tests pin down.
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

#: every test here starts a child interpreter or a Jupyter kernel
pytestmark = pytest.mark.slow

#: builds every index type through milvus_lab and through the raw libraries, all at once in threads
WORKLOAD = textwrap.dedent("""
    import importlib, json, sys, threading, warnings
    for name in sys.argv[1].split(","):
        importlib.import_module(name)
    import numpy as np
    import threadpoolctl
    import annoy, faiss, hnswlib
    from milvus_lab import Engine

    rng = np.random.default_rng(0)
    data = rng.normal(size=(3000, 16)).astype(np.float32)
    queries = rng.normal(size=(50, 16)).astype(np.float32)
    errors = []

    def guard(fn):
        def run():
            try:
                fn()
            except BaseException as exc:
                errors.append(repr(exc))
        return run

    @guard
    def raw_faiss():
        index = faiss.index_factory(16, "IVF32,Flat")
        index.train(data)
        index.add(data)
        index.search(queries, 10)

    @guard
    def raw_hnswlib():
        index = hnswlib.Index("l2", 16)
        index.init_index(len(data), M=16, ef_construction=100)
        index.add_items(data)
        index.knn_query(queries, 10)

    @guard
    def raw_annoy():
        index = annoy.AnnoyIndex(16, "euclidean")
        for i, row in enumerate(data[:1000]):
            index.add_item(i, row.tolist())
        index.build(8, n_jobs=-1)
        index.get_nns_by_vector(queries[0].tolist(), 10)

    engine = Engine(build_threshold=256)
    PLANS = {
        "IVF_FLAT": ({"nlist": 32}, {"nprobe": 8}), "IVF_SQ8": ({"nlist": 32}, {"nprobe": 8}),
        "IVF_SQ8H": ({"nlist": 32}, {"nprobe": 8}), "IVF_PQ": ({"nlist": 32, "m": 8}, {"nprobe": 8}),
        "RNSG": ({"search_length": 40, "out_degree": 20, "candidate_pool_size": 100, "knng": 40},
                 {"search_length": 40}),
        "HNSW": ({"M": 16, "efConstruction": 64}, {"ef": 32}), "ANNOY": ({"n_trees": 8}, {"search_k": -1}),
    }

    def lab(index_type):
        @guard
        def run():
            build, search = PLANS[index_type]
            c = engine.create_collection(index_type.lower(), 16)
            c.insert(data)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = c.create_index(index_type, build)
            assert report.fully_indexed, report
            searchers = [threading.Thread(target=guard(lambda: c.search(queries, 10, search))) for _ in range(3)]
            for t in searchers:
                t.start()
            for t in searchers:
                t.join()
        return run

    threads = [threading.Thread(target=f) for f in (raw_faiss, raw_hnswlib, raw_annoy)]
    threads += [threading.Thread(target=lab(name)) for name in PLANS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.close()
    openmp = sorted({lib["filepath"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "openmp"})
    print(json.dumps({"errors": errors, "openmp": openmp}))
""")


def run_child(code: str, *args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=ROOT, check=False)


@pytest.mark.parametrize("order", ["faiss,hnswlib,annoy", "annoy,hnswlib,faiss", "hnswlib,annoy,faiss"])
def test_all_three_libraries_build_and_search_in_one_process(order):
    proc = run_child(WORKLOAD, order)
    assert proc.returncode == 0, (f"the child process died (return code {proc.returncode}; negative = killed "
                                  f"by that signal, e.g. -11 a segfault, -6 an abort)\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["errors"] == []
    # one OpenMP runtime only (faiss's bundled libgomp): two different ones in a process is the classic crash
    assert len(result["openmp"]) <= 1, f"several OpenMP runtimes loaded: {result['openmp']} (see docs/threads.md)"


THREADS = textwrap.dedent("""
    import json, os
    from milvus_lab import Engine  # first: it sets OMP_WAIT_POLICY before faiss loads OpenMP
    import faiss, hnswlib, threadpoolctl
    import numpy as np

    out = {"cpus": os.cpu_count(), "faiss_default": faiss.omp_get_max_threads(),
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        out["faiss_under_threadpoolctl"] = faiss.omp_get_max_threads()
    out["faiss_after_threadpoolctl"] = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    out["faiss_after_omp_set_num_threads"] = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(out["faiss_default"])

    engine = Engine(build_threshold=8)
    c = engine.create_collection("h", 4)
    c.insert(np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32))
    c.create_index("HNSW", {"M": 8, "efConstruction": 16})
    index = c._partitions["_default"][0].index.index
    out["hnswlib_default"] = index.num_threads
    index.set_num_threads(1)
    out["hnswlib_after_set_num_threads"] = index.num_threads
    engine.close()
    print(json.dumps(out))
""")


def test_thread_counts_are_controllable_and_defaults_are_as_documented():
    out = json.loads(run_child(THREADS).stdout.strip().splitlines()[-1])
    cpus = out["cpus"]
    assert out["omp_wait_policy"] == "PASSIVE"  # idle OpenMP threads sleep instead of spinning
    assert out["faiss_default"] == cpus  # OpenMP's default: one thread per CPU
    assert out["faiss_under_threadpoolctl"] == 1
    assert out["faiss_after_threadpoolctl"] == cpus  # the limit is lifted on leaving the block
    assert out["faiss_after_omp_set_num_threads"] == 1
    assert out["hnswlib_default"] == cpus  # hnswlib: all hardware threads
    assert out["hnswlib_after_set_num_threads"] == 1


def test_a_users_omp_wait_policy_wins():
    proc = run_child("import os, milvus_lab; print(os.environ['OMP_WAIT_POLICY'])", env={"OMP_WAIT_POLICY": "ACTIVE"})
    assert proc.stdout.strip() == "ACTIVE", proc.stderr


def test_omp_num_threads_environment_variable_limits_faiss():
    proc = run_child("import faiss; print(faiss.omp_get_max_threads())", env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"


NOTEBOOK_CELLS = [
    "import annoy, hnswlib, faiss  # the order that once crashed kernels with two OpenMP runtimes",
    textwrap.dedent("""
        import warnings
        import numpy as np
        from milvus_lab import Milvus, IndexType, MetricType
        milvus = Milvus()
        rng = np.random.default_rng(0)
        data = rng.normal(size=(1000, 16)).astype(np.float32)
        plans = {IndexType.IVF_FLAT: ({'nlist': 16}, {'nprobe': 4}), IndexType.IVF_PQ: ({'nlist': 16, 'm': 4}, {'nprobe': 4}),
                 IndexType.RNSG: ({'search_length': 40, 'out_degree': 20, 'candidate_pool_size': 100, 'knng': 40}, {'search_length': 40}),
                 IndexType.HNSW: ({'M': 16, 'efConstruction': 64}, {'ef': 32}), IndexType.ANNOY: ({'n_trees': 8}, {'search_k': -1})}
        for index_type, (build, search) in plans.items():
            name = f'k{int(index_type)}'
            assert milvus.create_collection({'collection_name': name, 'dimension': 16}).OK()
            assert milvus.insert(name, data)[0].OK()
            milvus.engine.set_build_threshold(256)
            assert milvus.create_index(name, index_type, build).OK()
            status, res = milvus.search(name, 5, data[:10], params=search)
            assert status.OK() and len(res) == 10
        print('kernel ok')
    """),
]


def test_a_real_jupyter_kernel_survives_all_three_libraries():
    import ipykernel  # noqa: F401 - the test extra installs it: missing, the test fails instead of skipping
    import nbclient
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS])
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    outputs = [o.get("text", "") for cell in nb.cells for o in cell.get("outputs", [])]
    assert any("kernel ok" in text for text in outputs), outputs
