"""milvus_lab: Milvus 0.10's index model in memory, to learn, compare and tune vector indexes.

``from milvus_lab import Milvus, IndexType, MetricType, Status`` gives the pymilvus 0.2.x call style;
``Engine`` / ``Collection`` are the Pythonic core, which raises typed exceptions (``milvus_lab.errors``).
"""

from .client import IndexType, MetricType, Milvus, Status
from .engine import Collection as Collection
from .engine import Engine as Engine
from .engine import IndexReport as IndexReport
from .engine import SearchResult as SearchResult
from .errors import MilvusLabError as MilvusLabError
from .errors import ParamError as ParamError

__version__ = "0.1.0"
#: ``from milvus_lab import *`` brings the four pymilvus names, as the reference asks
__all__ = ["Milvus", "IndexType", "MetricType", "Status"]
