"""Published memory formulas, and how many machines or query nodes a memory figure needs.

Written once here so the forecast can print them beside what it measured (and say where the two disagree),
and a server target can fill an index-memory column with a labelled *estimate* where the server reports none.

* **The Milvus sizing tool** (milvus.io/tools/sizing, the 2.5/2.6 pages; its source is the milvus.io website
  repository): raw data ``rows·d·4`` bytes; index memory FLAT = raw, IVF_FLAT = raw + ``nlist·4d``,
  IVF_SQ8 = raw/4 + ``nlist·4d``, HNSW = ``(1 + 2M/d)·raw``; **loading memory** = (index memory + 2 segments)
  x 1.15; query nodes from a table of memory bands (:func:`sizing_tool_nodes`). It has no IVF_PQ: for IVF_PQ
  the tool's 1.x version is used (``m`` bytes per row, ``nlist·4d`` centroids and ``256·4d`` codebooks).
* **faiss's per-vector costs** ("Faiss indexes" wiki) for the types the tool never had: RNSG (faiss NSG) keeps
  the vectors and ``out_degree`` 4-byte links. ANNOY has no published formula.
* **Milvus 2.3's load rule**: a query node refuses to load once its predicted memory passes
  :data:`QUERY_NODE_MEMORY_THRESHOLD` of its total (``queryCoord.overloadedMemoryThresholdPercentage: 90``,
  read by the query node's segment loader), so a node of G GB holds at most 0.9·G GB of loaded segments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .. import spec
from ..units import GIB, MIB

F32 = 4

#: Milvus 2.x refuses to load more once a query node's predicted memory passes this share of its total
QUERY_NODE_MEMORY_THRESHOLD = 0.90
#: the sizing tool's loading memory: (index memory + LOADING_SEGMENTS segments) x LOADING_EXPANSION
LOADING_SEGMENTS = 2
LOADING_EXPANSION = 1.15
#: the sizing tool's default segment size (MB)
DEFAULT_SEGMENT_MB = 1024
#: default query-node size for the cluster advice (GB); the forecast takes ``query_node_gb=``
DEFAULT_QUERY_NODE_GB = 16.0
#: the sizing tool's query-node table: (loading memory below this many GB, GB per node); nodes = ceil(m / size)
SIZING_TOOL_NODE_BANDS = ((8, 8), (16, 16), (96, 16), (512, 32), (2048, 64), (math.inf, 128))


@dataclass(frozen=True)
class Estimate:
    """A formula's figure: bytes, and the formula with its source and the numbers put in."""

    bytes: int
    formula: str

    @property
    def mb(self) -> float:
        return self.bytes / MIB


def raw_bytes(rows: int, dim: int) -> int:
    """``rows`` float32 vectors of ``dim``: the raw data a collection holds (the tool's "raw data size")."""
    return int(rows) * int(dim) * F32


def index_estimate(index_type: str, params: Mapping[str, int], rows: int, dim: int) -> Estimate | None:
    """The published formula's index memory for ``rows`` vectors of ``dim`` with these build parameters (None
    for an index type no formula is published for: ANNOY)."""
    name = spec.get_index(index_type).name
    n, d = int(rows), int(dim)
    raw = raw_bytes(n, d)
    nlist = int(params.get("nlist", 0))
    centroids = nlist * d * F32
    tool = "Milvus sizing tool"
    if name == "FLAT":
        return Estimate(raw, f"{tool}: raw = rows x dim x 4 = {n:,} x {d} x 4")
    if name == "IVF_FLAT":
        return Estimate(raw + centroids, f"{tool}: raw + nlist x 4·dim = {n:,} x {4 * d} + {nlist:,} x {4 * d}")
    if name in ("IVF_SQ8", "IVF_SQ8H"):
        return Estimate(raw // 4 + centroids,
                        f"{tool}: raw / 4 + nlist x 4·dim = {n:,} x {4 * d} / 4 + {nlist:,} x {4 * d}")
    if name == "HNSW":
        links = int(params.get("M", 16))
        return Estimate(round(raw * (1 + 2 * links / d)),
                        f"{tool}: (1 + 2·M / dim) x raw = (1 + {2 * links} / {d}) x {n:,} x {4 * d}")
    if name == "IVF_PQ":
        m = int(params.get("m", 1))
        books = spec.PQ_MIN_TRAIN_ROWS * d * F32
        return Estimate(n * m + centroids + books,
                        f"{tool} 1.x: rows x m + nlist x 4·dim + 256 x 4·dim = {n:,} x {m} + {nlist:,} x {4 * d} + "
                        f"256 x {4 * d}")
    if name == "RNSG":
        degree = int(params.get("out_degree", 50))
        return Estimate(n * (d * F32 + degree * F32),
                        f"faiss NSG: rows x (4·dim + 4·out_degree) = {n:,} x ({4 * d} + {4 * degree})")
    return None  # ANNOY: annoy documents no formula, and Milvus 2.x has no ANNOY


def loading_bytes(index_bytes: float, segment_mb: float = DEFAULT_SEGMENT_MB) -> float:
    """The sizing tool's loading memory for an index of ``index_bytes``: (index + 2 segments) x 1.15."""
    return (index_bytes + LOADING_SEGMENTS * segment_mb * MIB) * LOADING_EXPANSION


def query_nodes(loading: float, node_gb: float) -> int:
    """Query nodes of ``node_gb`` GB that hold ``loading`` bytes under Milvus's load threshold (90 %)."""
    return max(1, math.ceil(loading / (node_gb * GIB * QUERY_NODE_MEMORY_THRESHOLD)))


def sizing_tool_nodes(loading: float) -> tuple[int, int]:
    """(nodes, GB per node) the sizing tool's table recommends for ``loading`` bytes of loading memory."""
    gb = loading / GIB
    for below, size in SIZING_TOOL_NODE_BANDS:
        if gb < below:
            return max(1, math.ceil(gb / size)), size
    raise AssertionError("the last band is unbounded")  # pragma: no cover
