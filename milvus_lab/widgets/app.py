"""app(collection): the panel, the index form and the search form in one widget, for a single cell."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import ipywidgets as widgets
import numpy as np

from ._common import WatchedBox, Watcher
from .index_form import IndexForm
from .panel import CollectionPanel
from .search_form import SearchForm


class App(WatchedBox):
    """The three views of one collection, kept in step: creating or dropping an index in ``index_form``
    updates ``search_form``'s parameters and ``panel``; while it builds, the panel says so and searches are
    refused; one watcher follows changes made elsewhere. ``collection`` is any
    :class:`~milvus_lab.protocol.IndexedCollection` (in memory, or on a Milvus server)."""

    def __init__(self, collection: Any, *, words: Sequence[str] | Mapping[int, str] | None = None,
                 vectors: np.ndarray | None = None, ids: Sequence[int] | None = None,
                 index_type: str | None = None, query: str | int | None = None, watch: bool = True,
                 interval: float = 0.5):
        super().__init__()
        self.add_class("milvus-app")
        self.collection = collection
        self.panel = CollectionPanel(collection, watch=False)
        self.index_form = IndexForm(collection, index_type, watch=False)
        self.search_form = SearchForm(collection, words=words, vectors=vectors, ids=ids, query=query,
                                      watch=False)
        self.index_form.on_index_change(self.refresh)
        self.index_form.on_busy(self.panel.building)
        self.index_form.on_busy(self.search_form.set_busy)
        title = widgets.HTML(f"<h3 style='margin:4px'>milvus_lab: collection {escape(collection.name)}</h3>")
        left = widgets.VBox([self.index_form, self.search_form], layout=widgets.Layout(flex="1 1 560px"))
        right = widgets.VBox([self.panel], layout=widgets.Layout(flex="1 1 480px"))
        self.children = [title, widgets.HBox([left, right], layout=widgets.Layout(flex_flow="row wrap",
                                                                                  align_items="flex-start"))]
        self.watcher = Watcher(self, collection, interval) if watch else None

    def refresh(self) -> None:
        """Re-read the collection into all three views."""
        self.panel.refresh()
        self.index_form.refresh()
        self.search_form.refresh()


def app(collection: Any, **kwargs: Any) -> App:
    """Everything for one collection in one cell: ``display(app(c))`` or just ``app(c)`` as the last line.

    Keyword arguments go to :class:`App`: ``words`` (query by word), ``vectors`` (exact results for
    recall), ``index_type`` (the form's first choice), ``query``, ``watch``."""
    return App(collection, **kwargs)
