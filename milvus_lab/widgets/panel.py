"""CollectionPanel: rows, partitions and segments of a collection, refreshed while builds run.

It reads the collection through the protocol (``describe_index()``, ``stats()``) and asks the spec why a
segment is raw (:func:`milvus_lab.spec.segment_raw_reason`), so it works on a server collection too.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

import ipywidgets as widgets

from .. import spec
from ..engine.html import SEGMENT_STATES, coverage_text, table_html
from ._common import WatchedBox, Watcher, current_index, form_layout, index_text, profile_of, raw_segment_reason

STATE_HELP = SEGMENT_STATES


def segment_rows(collection: Any) -> list[dict[str, Any]]:
    """One dict per segment: partition, name, row_count, index_name, and ``sealed`` / ``raw_reason`` when the
    collection tells them (the in-memory engine's ``segments()``, whose reasons are the spec's plus the
    engine's own states: open, build failed, untrainable; a server's ``stats()`` tells neither)."""
    stats = collection.stats()
    detail = {}
    if callable(getattr(collection, "segments", None)):
        detail = {(s["partition"], s["name"]): s for s in collection.segments()}
    out = []
    for part in stats.get("partitions", []):
        for seg in part.get("segments", []):
            extra = detail.get((part["tag"], seg["name"]), {})
            out.append({"partition": part["tag"], "name": seg["name"], "row_count": seg["row_count"],
                        "index_name": seg.get("index_name", "FLAT"), "sealed": extra.get("sealed"),
                        "raw_reason": extra.get("raw_reason")})
    return out


def raw_reason(collection: Any, index_type: str, params: dict[str, int], seg: dict[str, Any]) -> str:
    """Why a segment has no index of the collection's type ('' when it has one or the collection is FLAT)."""
    if index_type == "FLAT" or seg["index_name"] != "FLAT":
        return ""
    if seg["raw_reason"]:
        return seg["raw_reason"]
    return raw_segment_reason(collection, index_type, params, seg["row_count"]) or "not indexed yet"


class CollectionPanel(WatchedBox):
    """A live summary of ``collection``: rows per partition, the index, and every segment (sealed or open,
    indexed or raw and why). It re-renders when the collection signals a change (``on_change``), e.g. when
    the engine's indexer thread finishes a segment in the background; :meth:`refresh` re-renders now. While a
    form builds an index, :meth:`building` shows that instead of the segments' old state."""

    def __init__(self, collection: Any, *, watch: bool = True, interval: float = 0.5):
        super().__init__(layout=form_layout())
        self.add_class("milvus-panel")
        self.collection = collection
        self.build: tuple[str, float] | None = None
        self.html = widgets.HTML()
        self.html.add_class("milvus-panel-html")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh",
                                             layout=widgets.Layout(width="100px"))
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.children = [widgets.HTML("<b style='font-size:14px'>Collection</b>"), self.html,
                         self.refresh_button]
        self.refresh()
        self.watcher = Watcher(self, collection, interval) if watch else None

    def building(self, what: str | None) -> None:
        """Say that ``what`` (e.g. 'HNSW (M=16, efConstruction=200)') is being built; None: the build ended."""
        self.build = (what, time.monotonic()) if what else None
        self.refresh()

    def refresh(self) -> None:
        """Render the collection as it is now (a dropped or unreachable collection says so)."""
        self.html.value = self.render()

    def render(self) -> str:
        c = self.collection
        try:
            index_type, params = current_index(c)
            segments = segment_rows(c)
            rows_total = c.count()
        except Exception as exc:  # noqa: BLE001 - a dropped collection / unreachable server still renders
            return (f"<div class='milvus-collection'><b>Collection {escape(str(c.name))}</b>: "
                    f"{escape(str(exc))}</div>")
        indexed = sum(s["row_count"] for s in segments if s["index_name"] != "FLAT")
        coverage = coverage_text(index_type, indexed, rows_total)
        title = spec.PROFILES[profile_of(c)].title
        head = (f"<div style='font-weight:bold;margin-bottom:2px'>Collection {escape(c.name)}: {c.dimension}-d, "
                f"{escape(str(c.metric))}, {escape(title)}</div>")
        info = table_html(["rows", "index", "indexed"], [[f"{rows_total:,}", index_text(index_type, params),
                                                          coverage]])
        if self.build is not None:
            what, started = self.build
            body = (f"<div class='milvus-building' style='color:#8a5a00;margin-top:4px'>Building {escape(what)} "
                    f"({time.monotonic() - started:.0f} s so far): the segments are shown when the build "
                    f"ends; searches are refused until then.</div>")
            return f"<div class='milvus-collection'>{head}{info}{body}</div>"
        seg_rows = []
        for s in segments:
            state = "" if s["sealed"] is None else ("sealed" if s["sealed"] else "open")
            seg_rows.append([s["partition"], s["name"], f"{s['row_count']:,}", state,
                             s["index_name"] if s["index_name"] != "FLAT" else "raw",
                             raw_reason(c, index_type, params, s)])
        if seg_rows:
            body = (table_html(["partition", "segment", "rows", "state", "index", "why raw"], seg_rows,
                               "milvus-segments")
                    + f"<div style='color:#666;font-size:90%;margin-top:2px'>{STATE_HELP}</div>")
        else:
            body = "<div style='color:#666'>no segments yet: insert vectors to create one</div>"
        title = "<div style='margin-top:4px'><b>segments</b></div>"
        return f"<div class='milvus-collection'>{head}{info}{title}{body}</div>"
