"""Milvus 2.x servers as a target of the lab and the forms (``pip install 'milvus-lab[server]'``).

Three lines from an embedded server to a collection on it::

    from milvus_lab import server
    info = server.embedded.start()                       # or: milvus-lab server start
    target = server.connect(info.uri, token=info.token)  # or the URI of your own server / cluster

``target`` is a :class:`~milvus_lab.protocol.Target` (spec profile ``milvus-2.3``): ``create_collection``
gives a :class:`ServerCollection` with the same verbs as the in-memory one. :func:`pymilvus2_index_code` prints the
pymilvus 2.x lines for a setting. pymilvus is imported only when a server is used. Nothing here imports the
lab: measuring the same settings in memory and on a server side by side is the lab's
(:func:`milvus_lab.lab.parity`).
"""

from . import embedded
from ..codegen import pymilvus2_index_code
from .target import (
    ServerBuildReport,
    ServerCollection,
    ServerSearchResult,
    ServerTarget,
    connect,
)

__all__ = [
    "ServerBuildReport", "ServerCollection", "ServerSearchResult", "ServerTarget", "connect", "embedded",
    "pymilvus2_index_code",
]

