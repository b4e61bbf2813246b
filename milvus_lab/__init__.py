"""milvus_lab: Milvus 0.10's index model in memory, to learn, compare and tune vector indexes.

``from milvus_lab import Milvus, IndexType, MetricType, Status`` gives the pymilvus 0.2.x call style;
``Engine`` / ``Collection`` are the Pythonic core, which raises typed exceptions (``milvus_lab.errors``).
"""

import os

# faiss runs OpenMP teams inside every call and the engine calls it from several threads at once: idle
# OpenMP threads must sleep, not spin, or concurrent calls (and any busy machine) slow down many times
# over (measured: IVF training 0.04 s passive vs 1.5 s spinning on a loaded 2-core host). It must be set
# before faiss loads its OpenMP runtime, so it is the first thing the package does; a user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .client import IndexType, MetricType, Milvus, Status  # noqa: E402
from .engine import Collection as Collection  # noqa: E402
from .engine import Engine as Engine  # noqa: E402
from .engine import IndexReport as IndexReport  # noqa: E402
from .engine import SearchResult as SearchResult  # noqa: E402
from .errors import MilvusLabError as MilvusLabError  # noqa: E402
from .errors import ParamError as ParamError  # noqa: E402

__version__ = "0.1.0"
#: ``from milvus_lab import *`` brings the four pymilvus names, as the reference asks
__all__ = ["Milvus", "IndexType", "MetricType", "Status"]
