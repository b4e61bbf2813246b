"""ipywidgets forms generated from :mod:`milvus_lab.spec`, acting on a :class:`~milvus_lab.Collection`.

``app(collection)`` puts everything in one cell; the parts are :class:`IndexForm` (create / drop an index
with only allowed values), :class:`SearchForm` (search with the index's live bounds, results, latency,
recall) and :class:`CollectionPanel` (rows, partitions, segments). Nothing else in milvus_lab imports this.
"""

from .app import App, app
from .fields import ParamField
from ..engine.html import collection_html
from .index_form import IndexForm
from .panel import CollectionPanel
from .search_form import SearchForm

__all__ = ["App", "CollectionPanel", "IndexForm", "ParamField", "SearchForm", "app", "collection_html"]
