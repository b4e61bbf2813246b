"""Plain-HTML views of a collection and of search hits, for the panel and for ``_repr_html_``.

:func:`collection_html` uses only the collection's public methods, the standard library and
``milvus_lab.errors``, so the engine can serve it as ``Collection._repr_html_`` without importing widgets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from ..errors import MilvusLabError
from ..spec import format_params
from ..units import KIB

_TABLE = "border-collapse:collapse;font-size:12px;margin:4px 0"
_CELL = "border:1px solid #ddd;padding:2px 6px;text-align:left"
_HEAD = _CELL + ";background:#f0f3f7"


def format_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < KIB or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= KIB
    return f"{n} B"


def index_text(index_type: str, params: Mapping[str, Any]) -> str:
    """'IVF_PQ (nlist=64, m=8)' or 'FLAT (no index: exact search)'."""
    if index_type == "FLAT":
        return "FLAT (no index: exact search)"
    return f"{index_type} ({format_params(params)})"


def coverage_text(index_type: str, indexed_rows: int, total_rows: int) -> str:
    """How much of a collection its index covers, in words (raw rows are searched exactly)."""
    if index_type == "FLAT":
        return "every search is exact"
    if indexed_rows == total_rows:
        return f"all {total_rows:,} rows indexed"
    return (f"{indexed_rows:,} of {total_rows:,} rows indexed; {total_rows - indexed_rows:,} raw rows are "
            f"searched exactly")


#: what the segment states mean, shown under a segment table (a newcomer meets "sealed" here first); HTML
SEGMENT_STATES = ("A segment is a block of rows. <b>open</b>: it still receives inserts and is searched exactly. "
                  "<b>sealed</b>: it reached index_file_size (or was flushed into an index build) and takes no "
                  "more rows; a sealed segment is indexed with the collection's index type. <b>raw</b>: no index "
                  "on it (yet); its rows are searched exactly.")


def table_html(columns: Sequence[str], rows: Sequence[Sequence[Any]], css_class: str = "") -> str:
    head = "".join(f"<th style='{_HEAD}'>{escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td style='{_CELL}'>{escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    cls = f" class='{escape(css_class)}'" if css_class else ""
    return f"<table{cls} style='{_TABLE}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def collection_html(collection: Any) -> str:
    """A summary of a collection: schema, rows per partition, index, and every segment (sealed or open,
    indexed or raw and why, index memory), plus a line while background builds are pending."""
    try:
        segments = collection.segments()
        partitions = collection.list_partitions()
        memory = collection.memory_bytes()
        rows_total = collection.count()
        index_type, params = collection.index_type, collection.index_params
        pending = not collection.wait_for_index(timeout=0)
    except MilvusLabError as exc:  # a dropped collection (CollectionNotFoundError) still renders
        return (f"<div class='milvus-collection'><b>Collection {escape(str(collection.name))}</b>: "
                f"{escape(str(exc))}</div>")
    indexed = sum(s["row_count"] for s in segments if s["index_name"] != "FLAT")
    per_partition = {tag: 0 for tag in partitions}
    for s in segments:
        per_partition[s["partition"]] = per_partition.get(s["partition"], 0) + s["row_count"]
    segment_rows = getattr(collection, "segment_rows", None)
    size = f"index_file_size {collection.index_file_size} MB"
    if segment_rows:
        size += f" ({segment_rows:,} rows per segment)"
    coverage = coverage_text(index_type, indexed, rows_total)
    summary = [
        ("rows", f"{rows_total:,}"),
        ("partitions", ", ".join(f"{tag} ({n:,} rows)" for tag, n in per_partition.items())),
        ("index", index_text(index_type, params)),
        ("indexed", coverage),
        ("memory", f"raw {format_bytes(memory['raw_bytes'])}, index {format_bytes(memory['index_bytes'])}"),
    ]
    head = (f"<div style='font-weight:bold;margin-bottom:2px'>Collection {escape(collection.name)}: "
            f"{collection.dimension}-d, {escape(str(collection.metric))}, {escape(size)}</div>")
    info = "".join(f"<tr><th style='{_HEAD}'>{escape(k)}</th><td style='{_CELL}'>{escape(v)}</td></tr>"
                   for k, v in summary)
    seg_rows = [(s["partition"], s["name"], f"{s['row_count']:,}", f"{s['deleted_rows']:,}",
                 "sealed" if s["sealed"] else "open", s["index_name"] if s["index_name"] != "FLAT" else "raw",
                 format_bytes(s["index_memory_bytes"]) if s["index_memory_bytes"] else "-",
                 s["raw_reason"] or "")
                for s in segments]
    seg_table = (table_html(["partition", "segment", "rows", "deleted", "state", "index", "index memory",
                             "note"], seg_rows, "milvus-segments") if seg_rows
                 else "<div style='color:#666'>no segments yet: insert vectors to create one</div>")
    if seg_rows:
        seg_table += f"<div style='color:#666;font-size:11px'>{SEGMENT_STATES}</div>"
    busy = ("<div class='milvus-building' style='color:#8a5a00'>background index build running...</div>"
            if pending else "")
    return (f"<div class='milvus-collection'>{head}<table style='{_TABLE}'>{info}</table>"
            f"<div style='margin-top:4px'><b>segments</b></div>{seg_table}{busy}</div>")
