"""ipywidgets forms generated from :mod:`milvus_lab.spec`, acting on any
:class:`~milvus_lab.protocol.IndexedCollection` (in memory, or on a Milvus server) through its verbs.

``app(collection)`` puts everything in one cell; the parts are :class:`IndexForm` (create / drop an index
with only allowed values), :class:`SearchForm` (search with the index's live bounds, results, latency,
recall) and :class:`CollectionPanel` (rows, partitions, segments). ``explorer(vectors, words)`` builds an
index once and lets a slider drive its search parameter. Nothing else in milvus_lab imports this.
"""

from ..engine.html import collection_html
from .app import App, app
from .explorer import Explorer, explorer
from .fields import ParamField
from .index_form import IndexForm
from .panel import CollectionPanel
from .search_form import SearchForm

__all__ = ["App", "CollectionPanel", "Explorer", "IndexForm", "ParamField", "SearchForm", "app",
           "collection_html", "explorer"]
