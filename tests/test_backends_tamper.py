"""Damaged index files are refused with BuildIndexError before a library parses them.

The random experiment runs scripts/tamper_backends.py (load + search in child processes, so a crash is a
failing outcome, not a dead pytest): 20 tries per index type in CI, more with MILVUS_LAB_TAMPER_TRIES.
The targeted tests forge the damage each check exists for.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from milvus_lab import backends
from milvus_lab.errors import BuildIndexError

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "tamper_backends.py"
TRIES = int(os.environ.get("MILVUS_LAB_TAMPER_TRIES", "20"))
BAD = ("crash", "hang", "foreign", "bad-ids", "memory")


@pytest.mark.slow
def test_tampered_files_are_refused_or_load_safely():
    done = subprocess.run([sys.executable, str(SCRIPT), "--tries", str(TRIES), "--json"], capture_output=True,
                          text=True, timeout=600, check=True)
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts, "no index type was tried"
    bad = {name: {k: v for k, v in c.items() if k.split(":")[0] in BAD} for name, c in counts.items()}
    assert not any(bad.values()), bad
    for name, outcome in counts.items():
        assert sum(outcome.values()) == TRIES, name
    assert sum(c.get("refused", 0) for c in counts.values()) > 0


# --------------------------------------------------------------------------------------------------
# Forged damage, one per check
# --------------------------------------------------------------------------------------------------
DIM = 8


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((600, DIM)).astype(np.float32)


def _saved(tmp_path: Path, index_type: str, params: dict, vectors: np.ndarray, metric: str = "L2") -> Path:
    path = tmp_path / f"{index_type}.index"
    backends.build(index_type, params, vectors, metric).save(path)
    backends.load(index_type, params, metric, DIM, path)  # the untouched file loads
    return path


def _refused(path: Path, index_type: str, params: dict, match: str, metric: str = "L2") -> None:
    with pytest.raises(BuildIndexError, match=match):
        backends.load(index_type, params, metric, DIM, path)


def test_hnsw_link_to_a_node_without_that_level_is_refused(tmp_path, vectors):
    params = {"M": 4, "efConstruction": 20}
    path = _saved(tmp_path, "HNSW", params, vectors)
    data = bytearray(path.read_bytes())
    header = struct.unpack_from("<6QiI3QdQ", data, 0)
    count, per_element, max_m = header[2], header[3], header[8]
    offset = 96 + count * per_element
    levels = []
    for row in range(count):
        (size,) = struct.unpack_from("<I", data, offset)
        levels.append((row, offset + 4, size))
        offset += 4 + size
    row, at, _ = next(item for item in levels if item[2])
    low = next(r for r, _, size in levels if size == 0)  # a node that lives on level 0 only
    struct.pack_into("<II", data, at, 1, low)  # this node's level-1 list now links to it
    path.write_bytes(bytes(data))
    _refused(path, "HNSW", params, "does not reach that level")
    assert max_m == 4


def test_hnsw_sizes_must_add_up(tmp_path, vectors):
    params = {"M": 4, "efConstruction": 20}
    path = _saved(tmp_path, "HNSW", params, vectors)
    path.write_bytes(path.read_bytes() + b"\0")
    _refused(path, "HNSW", params, "after the last HNSW link list")
    data = bytearray(path.read_bytes()[:-1])
    struct.pack_into("<Q", data, 16, 10**12)  # cur_element_count
    path.write_bytes(bytes(data))
    _refused(path, "HNSW", params, "out of range")


def test_annoy_child_out_of_range_is_refused(tmp_path, vectors):
    params = {"n_trees": 2}
    path = _saved(tmp_path, "ANNOY", params, vectors)
    node = 16 + 4 * DIM
    data = bytearray(path.read_bytes())
    nodes = len(data) // node
    struct.pack_into("<i", data, (nodes - 1) * node + 8, nodes + 5)  # the last root's first child
    path.write_bytes(bytes(data))
    _refused(path, "ANNOY", params, "not built before it|outside the index")
    path.write_bytes(bytes(data[:-3]))
    _refused(path, "ANNOY", params, "whole number of annoy nodes")


def test_nsg_row_with_too_many_links_is_refused(tmp_path, vectors):
    params = {"search_length": 30, "out_degree": 8, "candidate_pool_size": 50, "knng": 12}
    path = _saved(tmp_path, "RNSG", params, vectors)
    data = bytearray(path.read_bytes())
    graph = 4 + 33 + 21 + 25  # fourcc, index header, NSG build params, NSG state
    ints = np.frombuffer(bytes(data[graph:graph + 4 * 600 * 9]), dtype="<i4")
    first_end = int(np.flatnonzero(ints == -1)[0])
    struct.pack_into("<i", data, graph + 4 * first_end, 0)  # row 0 runs on into row 1
    path.write_bytes(bytes(data))
    _refused(path, "RNSG", params, "NSG")


def test_ivf_list_size_asking_for_gigabytes_is_refused(tmp_path, vectors):
    params = {"nlist": 4}
    path = _saved(tmp_path, "IVF_FLAT", params, vectors)
    data = bytearray(path.read_bytes())
    at = data.index(b"full") + 4 + 8  # past the tag and the vector's length: the first list size
    struct.pack_into("<Q", data, at, 2**31)
    path.write_bytes(bytes(data))
    _refused(path, "IVF_FLAT", params, "IVF cells hold")


def test_ivf_repeated_row_id_is_refused(tmp_path, vectors):
    params = {"nlist": 4}
    path = _saved(tmp_path, "IVF_FLAT", params, vectors)
    data = bytearray(path.read_bytes())
    last_id = len(data) - 8
    struct.pack_into("<q", data, last_id, struct.unpack_from("<q", data, last_id - 8)[0])
    path.write_bytes(bytes(data))
    _refused(path, "IVF_FLAT", params, "exactly once")


def test_wrong_dimension_or_metric_is_refused(tmp_path, vectors):
    path = _saved(tmp_path, "FLAT", {}, vectors)
    with pytest.raises(BuildIndexError, match="dim"):
        backends.load("FLAT", {}, "L2", DIM * 2, path)
    _refused(path, "FLAT", {}, "metric", metric="IP")
