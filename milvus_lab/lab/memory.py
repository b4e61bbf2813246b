"""Memory: what a plan will need (estimated before anything is built), what the machine has, what we used.

The estimates are deliberately simple formulas of rows, dimension and build parameters (bytes per vector
or code, graph links, centroids), close enough to refuse a plan that cannot fit before minutes are spent.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

import psutil

from .. import spec
from ..units import KIB

#: bytes per float32 component
F32 = 4
#: bytes per row id / graph link kept by the libraries (int64 ids, int32 links)
ID_BYTES, LINK_BYTES = 8, 4


def index_bytes(index_type: str, params: Mapping[str, int], n: int, dim: int) -> int:
    """Estimated bytes an index of ``n`` rows of ``dim`` float32 holds (while built: with its temporaries)."""
    raw = n * dim * F32
    nlist = params.get("nlist", 0)
    centroids = nlist * dim * F32
    if index_type == "FLAT":
        return 0  # searches the collection's rows
    if index_type == "IVF_FLAT":
        return raw + n * ID_BYTES + centroids
    if index_type in ("IVF_SQ8", "IVF_SQ8H"):
        return n * dim + n * ID_BYTES + centroids + 2 * dim * F32
    if index_type == "IVF_PQ":
        m = params.get("m", 1)
        return n * m + n * ID_BYTES + centroids + m * spec.PQ_MIN_TRAIN_ROWS * (dim // max(1, m)) * F32  # codebooks
    if index_type == "HNSW":
        links = params.get("M", 16) * 3 * LINK_BYTES  # 2M links on layer 0, about M above
        return n * (dim * F32 + links + ID_BYTES)
    if index_type == "RNSG":
        return raw + n * params.get("out_degree", 50) * LINK_BYTES + n * params.get("knng", 70) * (LINK_BYTES + F32)
    if index_type == "ANNOY":
        return n * (dim * F32 + 16) + params.get("n_trees", 16) * n * F32
    return raw


def available_bytes() -> int | None:
    """Memory the system can still give without swapping (psutil's ``available``: MemAvailable on Linux),
    None when unknown."""
    try:
        return int(psutil.virtual_memory().available)
    except (OSError, psutil.Error):
        return None


def _vm_hwm_bytes() -> int | None:
    """VmHWM of /proc/self/status in bytes (None off Linux). psutil reports no peak RSS on Linux, and
    ru_maxrss survives exec (a child started by a larger parent reports the parent's peak), so this stays."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * KIB
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (VmHWM on Linux, the peak working set on Windows,
    ru_maxrss elsewhere)."""
    peak = _vm_hwm_bytes()
    if peak is not None:
        return peak
    if sys.platform == "win32":
        return int(psutil.Process().memory_info().peak_wset)
    import resource  # POSIX only

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * KIB


def rss_bytes() -> int:
    """Resident memory of this process now (psutil's RSS), 0 when unknown."""
    try:
        return int(psutil.Process().memory_info().rss)
    except (OSError, psutil.Error):
        return 0
