"""CollectionPanel: rows, partitions and segments of a collection, refreshed while background builds run."""

from __future__ import annotations

import ipywidgets as widgets

from ..engine import Collection
from ._common import WatchedBox, Watcher
from ..engine.html import collection_html


class CollectionPanel(WatchedBox):
    """A live summary of ``collection``: rows per partition, the index, and every segment (sealed or open,
    indexed or raw and why, index memory). A watcher thread re-renders it when anything changes, e.g.
    while the engine indexes sealed segments in the background; :meth:`refresh` re-renders now."""

    def __init__(self, collection: Collection, *, watch: bool = True, interval: float = 0.5):
        super().__init__(layout=widgets.Layout(border="1px solid #ccd", padding="6px", margin="4px"))
        self.add_class("milvus-panel")
        self.collection = collection
        self.html = widgets.HTML()
        self.html.add_class("milvus-panel-html")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh",
                                             layout=widgets.Layout(width="100px"))
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.children = [widgets.HTML("<b style='font-size:14px'>Collection</b>"), self.html,
                         self.refresh_button]
        self.refresh()
        self.watcher = Watcher(self, collection, interval) if watch else None

    def refresh(self) -> None:
        """Render the collection as it is now (a dropped collection says so)."""
        self.html.value = collection_html(self.collection)
