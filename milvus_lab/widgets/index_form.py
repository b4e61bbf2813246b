"""IndexForm: choose an index type and its build parameters, then create or drop the collection's index.

Everything the form offers comes from :mod:`milvus_lab.spec`: the index types of the collection's metric,
one field per build parameter with the spec's range and teaching default, the cross-rules in context
(IVF_PQ ``m`` for this dimension, RNSG ``search_length`` < ``candidate_pool_size``), and the advice
shown as a warning. Create is disabled while a value is refused, and the handler checks again anyway.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from html import escape
from typing import Any

import ipywidgets as widgets

from .. import spec
from ..engine import Collection, IndexReport
from ..errors import MilvusLabError, RawSegmentWarning
from ._common import Status, WatchedBox, Watcher, error_text, small
from .fields import ParamField
from ..engine.html import index_text


def unavailable_reason(index_type: str, dim: int, metric: str = "L2") -> str | None:
    """Why ``index_type`` can build no index for ``dim``-d vectors (IVF_PQ with no valid ``m``), or None."""
    index_spec = spec.INDEXES[index_type]
    for name, param in index_spec.build.items():
        if param.choices is None or spec.allowed_values(param, {"dim": dim, "metric": metric}):
            continue
        rule = f" ({param.rule_help})" if param.rule_help else ""
        nearest = next((d for d in range(dim - 1, 0, -1)
                        if spec.allowed_values(param, {"dim": d, "metric": metric})), None)
        hint = f", e.g. a {nearest}-d projection" if nearest else ""
        return (f"{index_type} cannot index {dim}-dimensional vectors: no value of {name} is allowed for "
                f"dimension {dim}{rule}. Choose another index type, or use vectors of a dimension that "
                f"admits one{hint}.")
    return None


class IndexForm(WatchedBox):
    """Create or drop the index of ``collection``; only values the spec allows can be submitted.

    Widgets: ``type_dropdown``, ``fields`` (name -> :class:`ParamField`), ``create_button``,
    ``drop_button``, ``progress``, ``current`` (the collection's index), ``advice`` (recommendations),
    ``message`` (the result or the refusal). Handlers: :meth:`create`, :meth:`drop`, :meth:`refresh`.
    """

    def __init__(self, collection: Collection, index_type: str | None = None, *, watch: bool = True,
                 interval: float = 0.5):
        super().__init__(layout=widgets.Layout(border="1px solid #ccd", padding="6px", margin="4px"))
        self.add_class("milvus-index-form")
        self.collection = collection
        self.dim = collection.dimension
        self.metric = collection.metric
        self.fields: dict[str, ParamField] = {}
        self.last_report: IndexReport | None = None
        self.busy = False
        self.errors: dict[str, str] = {}
        self._listeners: list[Callable[[], None]] = []

        types = spec.index_types_for_metric(self.metric)
        self.unavailable = {t: r for t in types if (r := unavailable_reason(t, self.dim, self.metric))}
        options = [(t if t not in self.unavailable else f"{t} (not for dim {self.dim})", t) for t in types]
        self.title = widgets.HTML(f"<b style='font-size:14px'>Index</b> "
                                  f"{small(f'for {self.dim}-d {self.metric} vectors')}")
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
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="build",
                                            layout=widgets.Layout(width="260px", visibility="hidden"))
        self.progress.add_class("milvus-progress")
        self.message = Status()
        self.message.add_class("milvus-index-message")
        self.children = [self.title, self.current, self.type_dropdown, self.description, self.fields_box,
                         self.advice, self.problem,
                         widgets.HBox([self.create_button, self.drop_button, self.progress],
                                      layout=widgets.Layout(align_items="center")),
                         self.message]
        self.create_button.on_click(lambda _b: self.create())
        self.drop_button.on_click(lambda _b: self.drop())

        first = next((t for t in types if t != "FLAT"), types[0])
        start = index_type or (collection.index_type if collection.index_type != "FLAT" else first)
        refused = ""
        try:
            start = spec.get_index(start).name
            spec.check_index_metric(spec.INDEXES[start], self.metric)
        except MilvusLabError as exc:
            start, refused = first, error_text(exc, f"Index type {index_type!r}")
        initial = collection.index_params if start == collection.index_type else None
        self.type_dropdown.value = start
        self._select(start, initial)
        if refused:
            self.message.show(refused, "error")
        self.type_dropdown.observe(lambda change: self._guard(self._select, change["new"]), "value")
        self.refresh()
        self.watcher = Watcher(self, collection, interval) if watch else None

    # ---------------------------------------------------------------- building the fields
    @property
    def index_type(self) -> str:
        """The index type chosen in the form (not necessarily the collection's)."""
        return self.type_dropdown.value

    @property
    def index_spec(self) -> spec.IndexSpec:
        """The spec entry of the index type chosen in the form."""
        return spec.INDEXES[self.index_type]

    def _select(self, index_type: str, values: dict[str, int] | None = None) -> None:
        """Show the fields of ``index_type`` filled with ``values`` or the spec's teaching defaults."""
        index_spec = spec.INDEXES[index_type]
        if values is None:
            values = (spec.default_build_params(index_type, self.dim) if index_type not in self.unavailable
                      else {name: p.default for name, p in index_spec.build.items()})
        for field in self.fields.values():
            field.close()
        base_ctx = {"dim": self.dim, "metric": self.metric}
        self.fields = {name: ParamField(index_type, param, values.get(name), base_ctx)
                       for name, param in index_spec.build.items()}
        for field in self.fields.values():
            field.observe(lambda: self._guard(self.validate))
        text = escape(index_spec.description)
        if index_spec.notes:
            text += "<br>" + small(index_spec.notes)
        if index_spec.is_flat:
            text += "<br>" + small("FLAT has no parameters: creating it drops any index (exact search).")
        self.description.value = f"<div style='margin:2px 0 4px 0'>{text}</div>"
        self.fields_box.children = [f.box for f in self.fields.values()]
        self.message.clear()
        self.validate()

    def select(self, index_type: str) -> None:
        """Choose an index type as a person would with the dropdown (aliases allowed)."""
        self.type_dropdown.value = spec.get_index(index_type).name

    # ---------------------------------------------------------------- validation
    def context(self) -> dict[str, Any]:
        """The context cross-rules are checked in: dimension, metric, and every field that holds an int."""
        ctx: dict[str, Any] = {"dim": self.dim, "metric": self.metric}
        for name, field in self.fields.items():
            if field.value is not None:
                ctx[name] = field.value
        return ctx

    def validate(self) -> dict[str, str]:
        """Check every field in context, show the reasons, enable Create only when all pass.

        Returns {parameter: reason} for refused values ('' key: a form-level reason)."""
        ctx = self.context()
        errors = {name: reason for name, field in self.fields.items() if (reason := field.check(ctx))}
        if self.index_type in self.unavailable:
            errors[""] = self.unavailable[self.index_type]
        elif not errors:
            try:
                spec.validate_build(self.index_type, self.values(), dim=self.dim, metric=self.metric, warn=False)
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
        return {name: (f.value if f.value is not None else f.raw) for name, f in self.fields.items()}

    def _show_advice(self) -> None:
        params = self.values()
        notes = spec.recommendation_warnings(self.index_spec, params)
        if not self.index_spec.is_flat:
            need, why = self.index_spec.min_rows(params), self.index_spec.min_rows_help
            threshold = self.collection.build_threshold
            if isinstance(threshold, int) and threshold > need:
                need, why = threshold, "segments below the engine's build threshold are not indexed"
            try:
                segments = [s for s in self.collection.segments() if s["row_count"]]
            except MilvusLabError:  # a dropped collection: refresh() says so
                segments = []
            small_segments = [s for s in segments if s["row_count"] < need]
            if small_segments:
                rows = sum(s["row_count"] for s in small_segments)
                notes.append(f"{len(small_segments)} of {len(segments)} segment(s) ({rows:,} rows) have fewer than "
                             f"{need:,} rows ({why}); they will stay raw and be searched exactly")
        self.advice.show("\n".join(f"Advice: {n}" for n in notes), "warning")

    # ---------------------------------------------------------------- actions
    def create(self) -> IndexReport | None:
        """Create the chosen index (blocks while it builds); show the report or why it was refused."""
        try:
            return self._create()
        except Exception as exc:  # noqa: BLE001 - a form never raises into the notebook
            self._finish_busy()
            self.message.show(error_text(exc, "Create index"), "error")
            return None

    def _create(self) -> IndexReport | None:
        errors = self.validate()
        if errors:
            reasons = [r for r in errors.values()]
            self.message.show(f"Not created: {reasons[0]}" + (f" (and {len(reasons) - 1} more)"
                                                                if len(reasons) > 1 else ""), "error")
            return None
        index_type, params = self.index_type, self.values()
        self.busy = True
        self.create_button.disabled = self.drop_button.disabled = self.type_dropdown.disabled = True
        self.progress.value, self.progress.max, self.progress.bar_style = 0, 1, "info"
        self.progress.layout.visibility = "visible"
        self.message.show(f"Building {index_text(index_type, params)}...", "info")
        started = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                report = self.collection.create_index(index_type, params, progress=self._on_progress)
        except Exception as exc:  # noqa: BLE001 - shown in the form, never raised
            self.progress.bar_style = "danger"
            self.message.show(error_text(exc, f"Create index {index_type}") + " The collection is unchanged.",
                              "error")
            return None
        finally:
            self._finish_busy()
        seconds = report.build_seconds or (time.perf_counter() - started)
        self.last_report = report
        self.progress.value = self.progress.max
        self.progress.bar_style = "success" if report.fully_indexed else "warning"
        others = [str(w.message) for w in caught if not issubclass(w.category, RawSegmentWarning)]
        text = f"Created {index_text(index_type, report.params)} in {seconds:.2f} s: {report.message()}"
        self.message.show("\n".join([text] + [f"Advice: {o}" for o in others]),
                          "ok" if report.fully_indexed and not others else "warning")
        self._changed()
        return report

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = done
        self.progress.description = f"{done}/{total} seg"

    def _finish_busy(self) -> None:
        self.busy = False
        self.drop_button.disabled = self.type_dropdown.disabled = False
        self.validate()

    def drop(self) -> bool:
        """Drop the collection's index (it searches exactly again); False when refused or nothing to drop."""
        try:
            before = self.collection.index_type
            self.collection.drop_index()
            if before == "FLAT":
                self.message.show("The collection has no index (FLAT, exact search): nothing to drop.", "info")
                return False
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
            c = self.collection
            segments = c.segments()
            index_type, params = c.index_type, c.index_params
        except Exception as exc:  # noqa: BLE001 - shown in the form, never raised
            self.current.show(f"Collection {self.collection.name!r} is not available: {exc}", "error")
            self.create_button.disabled = self.drop_button.disabled = True
            return
        rows = sum(s["row_count"] for s in segments)
        indexed = sum(s["row_count"] for s in segments if s["index_name"] != "FLAT")
        text = f"Current index: {index_text(index_type, params)}"
        if index_type != "FLAT":
            text += f"; {indexed:,} of {rows:,} rows indexed"
            if indexed < rows:
                text += f", {rows - indexed:,} raw rows searched exactly"
        self.current.show(text, "info")
        self.drop_button.disabled = self.busy

    def _guard(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - an observer never raises into the notebook
            self.message.show(error_text(exc, "The form"), "error")
            return None
