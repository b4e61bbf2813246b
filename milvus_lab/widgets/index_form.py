"""IndexForm: choose an index type and its build parameters, then create or drop the collection's index.

Everything the form offers comes from :mod:`milvus_lab.spec` with the collection's profile (Milvus 0.10 in
memory, Milvus 2.3 on a server): the index types of the collection's metric, why a type cannot be used for
this data (:func:`milvus_lab.spec.unavailable_reason`), one field per build parameter with the spec's range
and teaching default, the cross-rules in context, and the advice shown as a warning. Create is disabled
while a value is refused, and the handler checks again anyway.

A click on Create builds in a background thread: the form is busy (buttons disabled, fields read-only, an
elapsed-time line that moves) and a second click is ignored, so a double-click builds once.
"""

from __future__ import annotations

import inspect
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from html import escape
from typing import Any

import ipywidgets as widgets

from .. import spec
from ..engine.html import coverage_text
from ..errors import MilvusLabError, RawSegmentWarning
from ._common import (Status, WatchedBox, Watcher, crossed_reasons, current_index, error_text, field_values,
                      form_layout, index_text, profile_of, raw_segment_reason, small)
from .fields import ParamField
from .panel import segment_rows

#: seconds between two updates of the elapsed-time line during a build
TICK = 0.5


class IndexForm(WatchedBox):
    """Create or drop the index of ``collection``; only values the spec allows can be submitted.

    Widgets: ``type_dropdown``, ``fields`` (name -> :class:`ParamField`), ``create_button``,
    ``drop_button``, ``progress``, ``elapsed``, ``current`` (the collection's index), ``advice``
    (recommendations), ``problem`` (why Create is disabled), ``message`` (the result or the refusal).
    Handlers: :meth:`create` (``wait=False`` builds in the background, as a click does), :meth:`drop`,
    :meth:`refresh`, :meth:`wait`.
    """

    def __init__(self, collection: Any, index_type: str | None = None, *, watch: bool = True,
                 interval: float = 0.5):
        super().__init__(layout=form_layout())
        self.add_class("milvus-index-form")
        self.collection = collection
        self.profile = profile_of(collection)
        self.dim = collection.dimension
        self.metric = collection.metric
        self.fields: dict[str, ParamField] = {}
        self.last_report: Any = None
        self.busy = False
        self.builds = 0
        self.errors: dict[str, str] = {}
        self._listeners: list[Callable[[], None]] = []
        self._busy_listeners: list[Callable[[str | None], None]] = []
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.types, self.unavailable = self._offered_types()
        self._make_widgets()
        self.children = self._layout()
        self._show_first_type(index_type)
        self._wire()
        self.refresh()
        self.watcher = Watcher(self, collection, interval) if watch else None

    # ---------------------------------------------------------------- the form's parts
    def _offered_types(self) -> tuple[list[str], dict[str, str]]:
        """(types, unavailable): every index type of the collection's metric under its profile, then the types
        the target lacks (listed so the form can say why they are missing); ``unavailable`` maps each type
        that cannot be used for this data or target to why."""
        types = list(spec.index_types_for_metric(self.metric, profile=self.profile))
        unavailable = {t: r for t in types
                       if (r := spec.unavailable_reason(t, dim=self.dim, metric=self.metric,
                                                        profile=self.profile))}
        for t, reason in spec.PROFILES[self.profile].unavailable.items():
            if t not in types:
                types.append(t)
                unavailable[t] = reason
        return types, unavailable

    def _make_widgets(self) -> None:
        """Create every widget of the form, empty and unconnected: the title, ``current``, ``type_dropdown``
        (an unavailable type says so in its label), ``description``, ``fields_box``, ``advice``, ``problem``,
        the two buttons, ``progress`` (hidden), ``elapsed`` and ``message``, each with its CSS class."""
        options = [(t if t not in self.unavailable else f"{t} (unavailable: see why)", t) for t in self.types]
        title = spec.PROFILES[self.profile].title
        self.title = widgets.HTML(f"<b style='font-size:14px'>Index</b> "
                                  f"{small(f'for {self.dim}-d {self.metric} vectors, rules of {title}')}")
        self.current = Status()
        self.current.add_class("milvus-current-index")
        self.type_dropdown = widgets.Dropdown(options=options, description="index type",
                                              layout=widgets.Layout(width="330px"))
        self.type_dropdown.add_class("milvus-index-type")
        self.description = widgets.HTML()
        self.fields_box = widgets.VBox()
        self.advice = Status()
        self.advice.add_class("milvus-advice")
        self.problem = Status()
        self.problem.add_class("milvus-problem")
        self.create_button = widgets.Button(description="Create index", button_style="primary", icon="cogs")
        self.create_button.add_class("milvus-create")
        self.drop_button = widgets.Button(description="Drop index", button_style="warning", icon="trash")
        self.drop_button.add_class("milvus-drop")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="segments",
                                            layout=widgets.Layout(width="260px", visibility="hidden"))
        self.progress.add_class("milvus-progress")
        self.elapsed = widgets.HTML()
        self.elapsed.add_class("milvus-elapsed")
        self.message = Status()
        self.message.add_class("milvus-index-message")

    def _layout(self) -> list[widgets.Widget]:
        """The form's rows, top to bottom: title, current index, type, description, fields, advice, problem,
        one wrapping row of the buttons with the progress and the elapsed time, the message."""
        return [self.title, self.current, self.type_dropdown, self.description, self.fields_box,
                self.advice, self.problem,
                widgets.HBox([self.create_button, self.drop_button, self.progress, self.elapsed],
                             layout=widgets.Layout(align_items="center", flex_flow="row wrap")),
                self.message]

    def _show_first_type(self, index_type: str | None) -> None:
        """Choose the type the form opens on and show its fields: ``index_type`` when given, else the
        collection's index unless it is FLAT, else the first usable type other than FLAT (the first listed
        when there is none). A given type unknown here or refused for the metric is replaced by that first
        usable type, and the refusal is shown on ``message``. The collection's own type opens with its built
        parameters, any other with fitting defaults (:meth:`_fitting_defaults`)."""
        types = self.types
        first = next((t for t in types if t != "FLAT" and t not in self.unavailable), types[0])
        now_type, now_params = current_index(self.collection)
        start = index_type or (now_type if now_type != "FLAT" else first)
        refused = ""
        try:
            start = spec.get_index(start, profile=self.profile).name
            spec.check_index_metric(spec.get_index(start, profile=self.profile), self.metric)
        except MilvusLabError as exc:
            start, refused = first, error_text(exc, f"Index type {index_type!r}")
        initial = now_params if start == now_type else None
        self.type_dropdown.value = start
        self._select(start, initial)
        if refused:
            self.message.show(refused, "error")

    def _wire(self) -> None:
        """Connect the handlers: Create builds in the background (as :meth:`create` with ``wait=False``), Drop
        drops, a new type in the dropdown shows its fields. Called once the first type is shown, so opening
        the form selects it once."""
        self.create_button.on_click(lambda _b: self.create(wait=False))
        self.drop_button.on_click(lambda _b: self.drop())
        self.type_dropdown.observe(lambda change: self._guard(self._select, change["new"]), "value")

    # ---------------------------------------------------------------- building the fields
    @property
    def index_type(self) -> str:
        """The index type chosen in the form (not necessarily the collection's)."""
        return self.type_dropdown.value

    @property
    def index_spec(self) -> spec.IndexSpec:
        """The spec entry of the index type chosen in the form (on a type the target lacks: the default
        profile's, for its description)."""
        try:
            return spec.get_index(self.index_type, profile=self.profile)
        except MilvusLabError:
            return spec.get_index(self.index_type)

    def _select(self, index_type: str, values: dict[str, int] | None = None) -> None:
        """Show the fields of ``index_type`` filled with ``values`` or the spec's teaching defaults; a type
        that cannot be used here shows no fields, only why."""
        for field in self.fields.values():
            field.close()
        self.fields = {}
        index_spec = self.index_spec
        if index_type not in self.unavailable:
            if values is None:
                values = self._fitting_defaults(index_type)
            self.fields = {name: ParamField(index_type, param, values.get(name), self._own_context())
                           for name, param in index_spec.build.items()}
            for name, field in self.fields.items():
                field.observe(lambda name=name: self._guard(self.validate, name))
        text = escape(index_spec.description)
        notes = index_spec.notes_for(self.metric)  # only what applies to this metric (no JACCARD note on L2)
        if notes:
            text += "<br>" + small(notes)
        if index_spec.is_flat:
            text += "<br>" + small("FLAT has no parameters: creating it drops any index (exact search).")
        self.description.value = f"<div style='margin:2px 0 4px 0'>{text}</div>"
        self.fields_box.children = [f.box for f in self.fields.values()]
        self.message.clear()
        self.validate()

    def _fitting_defaults(self, index_type: str) -> dict[str, int]:
        """The spec's teaching defaults, with ``nlist`` halved until every segment of the collection can be
        trained, so the first screen shows one idea (an index on all the rows), not raw-segment advice; a
        segment below the build threshold stays raw whatever nlist is, and then the default is kept."""
        values = spec.default_build_params(index_type, self.dim, profile=self.profile)
        if "nlist" not in values:
            return values
        segments = self._filled_segments()
        if not segments:
            return values
        low = spec.bounds(self.index_spec.build["nlist"])[0] or 1

        def raw(nlist: int) -> bool:
            return any(self._raw_segments(index_type, {**values, "nlist": nlist}, segments))

        nlist = values["nlist"]
        while raw(nlist) and nlist // 2 >= low:
            nlist //= 2
        return {**values, "nlist": nlist} if not raw(nlist) else values

    def _filled_segments(self) -> list[dict[str, Any]]:
        """The collection's segments that hold rows (:func:`segment_rows`); none when the collection cannot be
        read (a dropped collection: :meth:`refresh` says so)."""
        try:
            return [s for s in segment_rows(self.collection) if s["row_count"]]
        except Exception:  # noqa: BLE001 - a dropped collection: refresh() says so
            return []

    def _raw_segments(self, index_type: str, params: dict[str, Any],
                      segments: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], str]]:
        """(segment, why) for each of ``segments`` that stays raw under ``index_type`` built with ``params``,
        in order, one at a time (``any`` stops at the first)."""
        for segment in segments:
            if reason := raw_segment_reason(self.collection, index_type, params, segment["row_count"]):
                yield segment, reason

    def select(self, index_type: str) -> None:
        """Choose an index type as a person would with the dropdown (aliases allowed); an unknown type is
        refused on the form (the choice stays as it was), never raised."""
        text = index_type.upper() if isinstance(index_type, str) and type(index_type) is str else None
        name = spec.INDEX_ALIASES.get(text, text) if text is not None else None
        if name not in self.types:  # a type this target lacks is still listed (the form says why)
            try:
                name = spec.get_index(index_type).name
            except MilvusLabError as exc:
                self.message.show(error_text(exc, f"Index type {spec.show_value(index_type)}"), "error")
                return
        if name not in self.types:
            self.message.show(f"Index type {name} is not offered for {self.metric} vectors here; choose one of "
                              f"{', '.join(self.types)}.", "error")
            return
        self.type_dropdown.value = name

    # ---------------------------------------------------------------- validation
    def _own_context(self) -> dict[str, Any]:
        """The context a field's own range is checked in: the dimension and the metric (a new dict each call)."""
        return {"dim": self.dim, "metric": self.metric}

    def context(self) -> dict[str, Any]:
        """The context cross-rules are checked in: dimension, metric, and every field whose value passes its
        own range (a refused candidate_pool_size=40 must not make a valid search_length=45 look wrong)."""
        base = self._own_context()
        ctx = dict(base)
        for name, field in self.fields.items():
            if field.value is not None and field.own_error(base) is None:
                ctx[name] = field.value
        return ctx

    def validate(self, changed: str | None = None) -> dict[str, str]:
        """Check every field in context, show the reasons, enable Create only when all pass. A value refused
        only because of another field (RNSG search_length < candidate_pool_size) is also said under the
        field ``changed`` by the person, when that one is fine on its own: the change is where they look.

        Returns {parameter: reason} for refused values ('' key: a form-level reason)."""
        errors: dict[str, str] = {}
        if self.index_type in self.unavailable:
            errors[""] = self.unavailable[self.index_type]
        else:
            ctx = self.context()
            errors = {name: reason for name, field in self.fields.items() if (reason := field.check(ctx))}
            crossed = crossed_reasons(self.fields, errors, self._own_context(), besides=changed)
            if changed in self.fields and changed not in errors and crossed:
                self.fields[changed].message.show(f"{changed}={self.fields[changed].value} conflicts with "
                                                  f"another parameter: {crossed[0]}", "error")
            if not errors:
                try:
                    spec.validate_build(self.index_type, self.values(), dim=self.dim, metric=self.metric,
                                        warn=False, profile=self.profile)
                except MilvusLabError as exc:
                    errors[""] = exc.message
        if errors:
            refused = ", ".join(name for name in errors if name)
            self.problem.show(errors.get("", f"Create is disabled until every value is allowed (refused: "
                                         f"{refused})."), "error")
            self.advice.clear()
        else:
            self.problem.clear()
            self._show_advice()
        self.create_button.disabled = bool(errors) or self.busy
        self.errors = errors
        return errors

    @property
    def valid(self) -> bool:
        return not self.validate()

    def values(self) -> dict[str, Any]:
        """The build parameters as typed: ints where the text is an int, the raw text otherwise."""
        return field_values(self.fields)

    def _show_advice(self) -> None:
        params = self.values()
        notes = spec.recommendation_warnings(self.index_spec, params)
        if not self.index_spec.is_flat:
            segments = self._filled_segments()
            raw = list(self._raw_segments(self.index_type, params, segments))
            if raw:
                rows = sum(s["row_count"] for s, _ in raw)
                notes.append(f"{len(raw)} of {len(segments)} segment(s) ({rows:,} rows) will stay raw and be "
                             f"searched exactly: {raw[0][1]}")
        self.advice.show("\n".join(f"Advice: {n}" for n in notes), "warning")

    # ---------------------------------------------------------------- busy state
    def on_busy(self, callback: Callable[[str | None], None]) -> None:
        """Call ``callback(what)`` when a build starts ('HNSW (M=16, ...)') and ``callback(None)`` when it ends."""
        self._busy_listeners.append(callback)

    def _set_busy(self, what: str | None) -> None:
        self.busy = what is not None
        for button in (self.create_button, self.drop_button):
            button.disabled = self.busy
        self.type_dropdown.disabled = self.busy
        for field in self.fields.values():
            field.set_enabled(not self.busy)
        for callback in self._busy_listeners:
            self._guard(callback, what)
        if not self.busy:
            self.validate()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a background build started by a click is over; False on timeout."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # ---------------------------------------------------------------- actions
    def create(self, *, wait: bool = True) -> Any:
        """Create the chosen index and show the report or why it was refused.

        ``wait=True`` blocks and returns the report (None when refused). ``wait=False`` (a click) builds in
        a background thread and returns None at once; while it builds, another create is ignored."""
        with self._lock:
            if self.busy:
                self.message.show("A build is already running: this click is ignored (the index is built once).",
                                  "info")
                return None
            errors = self.validate()
            if errors:
                reasons = list(dict.fromkeys(errors.values()))
                self.message.show(f"Not created: {reasons[0]}" + (f" (and {len(reasons) - 1} more)"
                                                                  if len(reasons) > 1 else ""), "error")
                return None
            index_type, params = self.index_type, self.values()
            self._set_busy(index_text(index_type, params))
        if wait:
            return self._build(index_type, params)
        self._thread = threading.Thread(target=self._build, args=(index_type, params),
                                        name="milvus_lab-index-build", daemon=True)
        self._thread.start()
        return None

    def _build(self, index_type: str, params: dict[str, Any]) -> Any:
        """Run one create_index while the form is busy; always leaves the form idle."""
        self.builds += 1
        started = time.monotonic()
        self.progress.value, self.progress.max, self.progress.bar_style = 0, 1, "info"
        self.progress.description = "segments"
        self.progress.layout.visibility = "hidden" if index_type == "FLAT" else "visible"
        self.message.show(f"Building {index_text(index_type, params)}...", "info")
        done = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(started, done), daemon=True)
        ticker.start()
        try:
            kwargs = {}
            if "progress" in inspect.signature(self.collection.create_index).parameters:
                kwargs["progress"] = self._on_progress
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                report = self.collection.create_index(index_type, params, **kwargs)
        except Exception as exc:  # noqa: BLE001 - shown in the form, never raised
            done.set()
            self.progress.bar_style = "danger"
            self.elapsed.value = ""
            self.message.show(error_text(exc, f"Create index {index_type}") + " The collection is unchanged.",
                              "error")
            self._set_busy(None)
            return None
        done.set()
        ticker.join()
        seconds = time.monotonic() - started
        self.last_report = report
        self.progress.value = self.progress.max
        self.progress.bar_style = "success" if report.fully_indexed else "warning"
        self.elapsed.value = ""
        others = [str(w.message) for w in caught if not issubclass(w.category, RawSegmentWarning)]
        if index_type == "FLAT":
            text = (f"Created FLAT: no index, every search is exact over all {self.collection.count():,} rows "
                    f"(any previous index was dropped).")
        else:
            text = f"Created {index_text(index_type, report.params)} in {seconds:.2f} s: {report.message()}"
        self.message.show("\n".join([text] + [f"Advice: {o}" for o in others]),
                          "ok" if report.fully_indexed and not others else "warning")
        self._set_busy(None)
        self._changed()
        return report

    def _tick(self, started: float, done: threading.Event) -> None:
        """Move the elapsed-time line while the build runs (one segment gives no other progress)."""
        while not done.wait(TICK):
            self.elapsed.value = small(f"building... {time.monotonic() - started:.1f} s")

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = done
        self.progress.description = f"{done}/{total} seg"

    def drop(self) -> bool:
        """Drop the collection's index (it searches exactly again); False when refused or nothing to drop."""
        if self.busy:
            self.message.show("A build is running: Drop is refused until it ends.", "error")
            return False
        try:
            before, _ = current_index(self.collection)
            if before == "FLAT":
                self.message.show("The collection has no index (FLAT, exact search): nothing to drop.", "info")
                return False
            self.collection.drop_index()
        except Exception as exc:  # noqa: BLE001 - shown in the form, never raised
            self.message.show(error_text(exc, "Drop index"), "error")
            return False
        self.progress.layout.visibility = "hidden"
        self.message.show(f"Dropped the {before} index: searches are exact (FLAT) again.", "ok")
        self._changed()
        return True

    # ---------------------------------------------------------------- state shown
    def on_index_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after this form creates or drops an index."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        self.refresh()
        for callback in self._listeners:
            self._guard(callback)

    def refresh(self) -> None:
        """Show the collection's current index and how much of the data it covers."""
        try:
            index_type, params = current_index(self.collection)
            segments = segment_rows(self.collection)
        except Exception as exc:  # noqa: BLE001 - shown in the form, never raised
            self.current.show(f"Collection {self.collection.name!r} is not available: {exc}", "error")
            self.create_button.disabled = self.drop_button.disabled = True
            return
        rows = sum(s["row_count"] for s in segments)
        indexed = sum(s["row_count"] for s in segments if s["index_name"] != "FLAT")
        text = f"Current index: {index_text(index_type, params)}"
        if index_type != "FLAT":
            text += f"; {coverage_text(index_type, indexed, rows)}"
        self.current.show(text, "info")
        self.drop_button.disabled = self.busy
