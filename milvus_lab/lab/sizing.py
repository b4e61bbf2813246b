"""Published memory formulas, and how many machines or query nodes a memory figure needs.

These are the formulas people read on sizing pages, written once here so the forecast can print them beside
what it measured (and say where the two disagree), and a server target can fill an index-memory column with a
labelled *estimate* where the server reports none:

* **index bytes**: faiss's per-vector costs (its wiki's "Guidelines to choose an index": a flat vector is
  ``4·d`` bytes, an IVF list entry adds an 8-byte id, SQ8 keeps ``d`` bytes, PQ keeps ``m`` bytes, HNSW adds
  ``2·M`` 4-byte links) plus the coarse centroids (``nlist·d`` floats) and PQ codebooks (``256·d`` floats);
  RNSG (faiss NSG) keeps the vectors and ``out_degree`` 4-byte links. ANNOY has no published formula.
* **raw data**: ``rows·d·4`` bytes, the "raw file size" of the Milvus sizing tool.
* **loading memory** on a Milvus 2.x query node: the index plus the segment loader's headroom, and the
  query node's memory threshold (:data:`QUERY_NODE_MEMORY_THRESHOLD`) above which Milvus refuses to load.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .. import spec
from ..units import MIB

F32 = 4
ID_BYTES = 8
LINK_BYTES = 4
#: Milvus 2.x refuses to load more once a query node's memory would pass this share of its total
#: (``queryNode``/``queryCoord.overloadedMemoryThresholdPercentage: 90`` in milvus.yaml)
QUERY_NODE_MEMORY_THRESHOLD = 0.90
#: memory the Milvus segment loader reserves beyond an index's size while it loads it (the index is read into
#: a buffer and then deserialised, so a loading segment briefly needs about twice its index)
LOADING_FACTOR = 2.0
#: default query-node size for the cluster advice (GB); the forecast takes ``query_node_gb=``
DEFAULT_QUERY_NODE_GB = 16.0


@dataclass(frozen=True)
class Estimate:
    """A formula's figure: bytes, and the formula in words with the numbers put in."""

    bytes: int
    formula: str

    @property
    def mb(self) -> float:
        return self.bytes / MIB


def raw_bytes(rows: int, dim: int) -> int:
    """``rows`` float32 vectors of ``dim``: the raw data a collection holds."""
    return int(rows) * int(dim) * F32


def index_estimate(index_type: str, params: Mapping[str, int], rows: int, dim: int) -> Estimate | None:
    """The published formula's index size for ``rows`` vectors of ``dim`` with these build parameters (None for
    an index type no formula is published for)."""
    name = spec.get_index(index_type).name
    n, d = int(rows), int(dim)
    nlist = int(params.get("nlist", 0))
    centroids = nlist * d * F32
    if name == "FLAT":
        return Estimate(n * d * F32, f"rows x dim x 4 = {n:,} x {d} x 4")
    if name == "IVF_FLAT":
        return Estimate(n * (d * F32 + ID_BYTES) + centroids,
                        f"rows x (4·dim + 8) + nlist x dim x 4 = {n:,} x {4 * d + 8} + {nlist:,} x {d} x 4")
    if name in ("IVF_SQ8", "IVF_SQ8H"):
        return Estimate(n * (d + ID_BYTES) + centroids,
                        f"rows x (dim + 8) + nlist x dim x 4 = {n:,} x {d + 8} + {nlist:,} x {d} x 4")
    if name == "IVF_PQ":
        m = int(params.get("m", 1))
        books = spec.PQ_MIN_TRAIN_ROWS * d * F32
        return Estimate(n * (m + ID_BYTES) + centroids + books,
                        f"rows x (m + 8) + nlist x dim x 4 + 256 x dim x 4 = {n:,} x {m + 8} + {nlist:,} x {d} x 4 "
                        f"+ 256 x {d} x 4")
    if name == "HNSW":
        links = int(params.get("M", 16))
        return Estimate(n * (d * F32 + 2 * links * LINK_BYTES),
                        f"rows x (4·dim + 2·M·4) = {n:,} x ({4 * d} + {8 * links})")
    if name == "RNSG":
        degree = int(params.get("out_degree", 50))
        return Estimate(n * (d * F32 + degree * LINK_BYTES),
                        f"rows x (4·dim + out_degree·4) = {n:,} x ({4 * d} + {4 * degree})")
    return None  # ANNOY: no published formula (annoy documents none; Milvus 2.x has no ANNOY)


def loading_estimate(index_type: str, params: Mapping[str, int], rows: int, dim: int) -> Estimate | None:
    """Memory a Milvus 2.x query node needs while it loads the index (see :data:`LOADING_FACTOR`)."""
    index = index_estimate(index_type, params, rows, dim)
    if index is None:
        return None
    return Estimate(int(index.bytes * LOADING_FACTOR), f"{LOADING_FACTOR:g} x index ({index.mb:,.0f} MB)")


def query_nodes(loading_bytes: float, node_gb: float) -> int:
    """Query nodes of ``node_gb`` GB that hold ``loading_bytes`` below Milvus's load threshold."""
    usable = node_gb * 1024 * MIB * QUERY_NODE_MEMORY_THRESHOLD
    return max(1, math.ceil(loading_bytes / usable))
