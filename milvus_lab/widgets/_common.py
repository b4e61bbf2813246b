"""Pieces shared by the forms: a status line that keeps its plain text, error formatting, the frame a form is
drawn in, what the forms read of their parameter fields (the values as typed, the values refused only in
context), the few protocol reads the forms make (profile, current index, why a segment stays raw, a cheap
signature), a watcher that listens to the collection."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from html import escape
from typing import Any

import ipywidgets as widgets
import traitlets

from .. import spec
from ..engine.html import index_text as index_text  # the forms' text for an index, one home
from ..errors import MilvusLabError
from ..protocol import ChangeSignalling

COLOURS = {"error": "#b00020", "warning": "#8a5a00", "ok": "#1b5e20", "info": "#333333", "": "#333333"}
BACKGROUNDS = {"error": "#fdecea", "warning": "#fff8e1", "ok": "#e8f5e9", "info": "#f5f5f5", "": "transparent"}


class Status(widgets.HTML):
    """An HTML line that also keeps what it says as plain ``text`` and its ``kind`` (error/warning/ok/info)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.text = ""
        self.kind = ""

    def show(self, text: str, kind: str = "info", *, extra_html: str = "") -> None:
        """Replace the line; an empty ``text`` clears it."""
        self.text, self.kind = text, (kind if text else "")
        if not text and not extra_html:
            self.value = ""
            return
        lines = "<br>".join(escape(line) for line in text.split("\n"))
        self.value = (f"<div style='color:{COLOURS[self.kind]};background:{BACKGROUNDS[self.kind]};"
                      f"padding:2px 6px;border-radius:3px;white-space:normal;line-height:1.4'>"
                      f"{lines}{extra_html}</div>")

    def clear(self) -> None:
        self.show("")


def error_text(exc: BaseException, action: str) -> str:
    """One readable sentence for a refused call: what was refused, why, and the Milvus status code."""
    if isinstance(exc, MilvusLabError):
        return f"{action} refused ({exc.code.name}, code {int(exc.code)}): {exc.message}"
    return f"{action} failed with an unexpected {type(exc).__name__}: {exc}"


def small(text: str, colour: str = "#666") -> str:
    return f"<span style='color:{colour};font-size:90%'>{escape(text)}</span>"


def form_layout() -> widgets.Layout:
    """The frame a form is drawn in (a thin border, padding, a margin); a new Layout on each call, so changing
    one form's layout never changes another's."""
    return widgets.Layout(border="1px solid #ccd", padding="6px", margin="4px")


def field_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """{name: value} of a form's parameter fields as typed: the int where the field holds an int, the raw
    text (or chosen option) otherwise, so a refused value is passed on as the person wrote it."""
    return {name: (f.value if f.value is not None else f.raw) for name, f in fields.items()}


def crossed_reasons(fields: Mapping[str, Any], errors: Mapping[str, str], own_context: Mapping[str, Any],
                    *, besides: str | None = None) -> list[str]:
    """The reasons in ``errors`` (field name -> reason) of fields whose value passes its own range in
    ``own_context``: values refused only because of another value (RNSG search_length < candidate_pool_size,
    HNSW ef < top_k), in the order of ``errors``, the field ``besides`` left out."""
    return [reason for name, reason in errors.items()
            if name != besides and fields[name].own_error(own_context) is None]


def profile_of(collection: Any) -> str:
    """The spec profile whose rules apply to ``collection`` (``IndexedCollection.profile``)."""
    return collection.profile


def current_index(collection: Any) -> tuple[str, dict[str, int]]:
    """(index type, build parameters) of the collection now, through ``describe_index()``."""
    info = collection.describe_index()
    return info.index_type, dict(info.params)


def raw_segment_reason(collection: Any, index_type: str, params: Mapping[str, Any], rows: int) -> str | None:
    """Why a segment of ``rows`` rows of ``collection`` stays raw under ``index_type`` built with ``params``
    (None: it is indexed): :func:`milvus_lab.spec.segment_raw_reason` with the collection's profile and build
    threshold (0 for a collection that has none, such as a server's)."""
    return spec.segment_raw_reason(index_type, params, rows, build_threshold=getattr(collection, "build_threshold", 0),
                                   profile=profile_of(collection))


def collection_signature(collection: Any) -> str:
    """What the forms show of a collection, cheap enough to poll: the index and the stats (rows, segments)."""
    index_type, params = current_index(collection)
    return repr((index_type, sorted(params.items()), collection.stats()))


class CollectionVersion(traitlets.HasTraits):
    """The collection's change version as a trait, so a form ``observe``s it like any widget value."""

    version = traitlets.Int(0)


class Watcher:
    """Calls ``owner.refresh()`` when the collection changes.

    A collection with a change signal (``protocol.ChangeSignalling``: both collections of this package) is
    listened to: its ``on_change`` hook sets :attr:`signal` ``.version``, whose observer refreshes the owner on
    the thread that made the change (the engine's indexer thread for a background build); no thread runs and
    nothing is read while the collection is idle. Any other collection is polled every ``interval`` seconds
    by a daemon thread (:attr:`thread`) comparing :func:`collection_signature`.

    It holds the owner weakly and stops on :meth:`stop` or when the owner is gone (the poller also when the
    collection is dropped), so a forgotten form never keeps a thread or a listener busy forever."""

    def __init__(self, owner: Any, collection: Any, interval: float = 0.5):
        self._owner = weakref.ref(owner)
        self._collection = collection
        self._interval = interval
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.signal: CollectionVersion | None = None
        self._unsubscribe: Any = None
        if isinstance(collection, ChangeSignalling):
            self.signal = CollectionVersion(version=collection.version)
            self.signal.observe(self._on_version, "version")
            self._unsubscribe = collection.on_change(self._on_change)
            return
        try:
            self._last: str | None = collection_signature(collection)
        except MilvusLabError:
            self._last = None
        self.thread = threading.Thread(target=self._run, name="milvus_lab-widget-watcher", daemon=True)
        self.thread.start()

    @property
    def active(self) -> bool:
        """True while it listens to the collection or its polling thread runs."""
        if self.thread is not None:
            return self.thread.is_alive()
        return self._unsubscribe is not None and not self._stop.is_set()

    def _on_change(self, version: int) -> None:
        if self._stop.is_set() or self.signal is None:
            return
        self.signal.version = version

    def _on_version(self, _change: Any) -> None:
        owner = self._owner()
        if owner is None or self._stop.is_set():
            self.stop()
            return
        try:
            owner.refresh()
        except Exception:  # noqa: BLE001, S110 - a refresh never raises into the call that changed the collection
            pass

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            owner = self._owner()
            if owner is None:
                return
            try:
                signature = collection_signature(self._collection)
            except MilvusLabError:  # dropped: refresh once to say so, then stop
                owner.refresh()
                return
            except Exception:  # noqa: BLE001, S112 - a race with a writer: look again at the next tick
                continue
            if signature != self._last:
                self._last = signature
                try:
                    owner.refresh()
                except Exception:  # noqa: BLE001, S110 - a refresh never kills the watcher
                    pass
            del owner

    def stop(self) -> None:
        """Stop listening (or polling); idempotent."""
        self._stop.set()
        if self._unsubscribe is not None:
            self._unsubscribe()


def close_tree(widget: Any) -> None:
    """Close a widget and every widget below it (ipywidgets' close() leaves children open)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()


class WatchedBox(widgets.VBox):
    """A form or panel that may own a Watcher thread: closing it stops the thread and closes the children.
    :meth:`_guard` runs a handler so that an exception is shown on ``error_line``, never raised."""

    watcher: Watcher | None = None

    @property
    def error_line(self) -> Status:
        """Where an unexpected error of a handler is shown (the form's message line)."""
        return self.message

    def _guard(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - a handler or observer never raises into the notebook
            self.error_line.show(error_text(exc, f"The {type(self).__name__}"), "error")
            return None

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        for child in self.children:
            close_tree(child)
        super().close()
