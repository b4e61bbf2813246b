"""SearchForm: search the collection with its current index's search parameters, bounded live by the spec.

``nprobe`` is bounded by the nlist the index was built with, ``ef`` by ``top_k``, ``search_k`` is -1 or at
least ``top_k``: the bounds are the spec's (with the collection's profile), resolved in
:func:`milvus_lab.spec.search_context`. The query is a stored row (by id, or by word when ``words`` are
given); results show as a table with the latency, distances named by the metric and, when the form has the
vectors, the recall against exact results (:mod:`milvus_lab.numerics`, the lab's rule).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import ipywidgets as widgets
import numpy as np

from .. import numerics, spec
from ..errors import ParamError
from ..engine import validation
from ..engine.html import table_html
from ._common import (Status, WatchedBox, Watcher, crossed_reasons, current_index, error_text, field_values,
                      form_layout, profile_of, small)
from .fields import ParamField, parse_int

#: a datalist longer than this makes the browser slow; other words are still accepted when typed
MAX_WORD_OPTIONS = 20000
#: relative difference above which a reported distance is shown as approximate (beside the exact one)
APPROXIMATE_RTOL = 1e-4


def _word_maps(words: Sequence[str] | Mapping[int, str] | None) -> tuple[dict[int, str], dict[str, int]]:
    """(id -> word, word -> id) of ``words`` (a list where words[i] is the word of id i, or a dict id -> word;
    None: both empty). A word given to several ids maps back to the first of them."""
    if isinstance(words, Mapping):
        id_to_word = {int(k): str(v) for k, v in words.items()}
    elif words is not None:
        id_to_word = {i: str(w) for i, w in enumerate(words)}
    else:
        id_to_word = {}
    word_to_id: dict[str, int] = {}
    for i, w in id_to_word.items():
        word_to_id.setdefault(w, i)
    return id_to_word, word_to_id


def distance_label(metric: str) -> str:
    """What the distance column holds for this metric."""
    if metric == "L2":
        return "squared L2 distance"
    if metric == "IP":
        return "inner product"
    if metric == "COSINE":
        return "cosine similarity"
    return f"{metric} distance"


class SearchForm(WatchedBox):
    """Search ``collection`` by a stored row: ``top_k``, the index's search parameters, ``query``.

    ``words`` names the rows (a list where words[i] is the word of id i, or a dict id -> word): the query
    can then be a word and results show words. ``vectors`` (row i has id i, or ``ids[i]``) gives the query
    vectors and lets the form compute exact results for the recall. Widgets: ``top_k``, ``fields``,
    ``query_by``, ``query``, ``search_button``, ``message``, ``results``; :meth:`search` returns and keeps
    ``last`` (a dict of what was shown). While an index build runs (:meth:`set_busy`), a search is refused
    with a message, so an answer always belongs to the index shown.
    """

    def __init__(self, collection: Any, *, words: Sequence[str] | Mapping[int, str] | None = None,
                 vectors: np.ndarray | None = None, ids: Sequence[int] | None = None, top_k: int = 10,
                 query: str | int | None = None, watch: bool = True, interval: float = 0.5):
        super().__init__(layout=form_layout())
        self.add_class("milvus-search-form")
        self.collection = collection
        self.profile = profile_of(collection)
        self.id_to_word, self.word_to_id = _word_maps(words)
        self.vectors, self.vector_ids = self._query_vectors(vectors, ids)
        self._row_of = ({int(i): r for r, i in enumerate(self.vector_ids)} if self.vector_ids is not None else {})
        self.errors: dict[str, str] = {}
        self.last: dict[str, Any] | None = None
        self.busy: str | None = None
        #: the refusal on screen, kept until the next search (a build ending does not wipe it)
        self.refusal: str | None = None
        self._shown_index: tuple | None = None
        self._refresh_lock = threading.RLock()
        self.index_type, self.build_params = "FLAT", {}
        self._make_widgets(top_k, query)
        self.children = self._layout()
        self._wire()
        self.refresh()
        self.watcher = Watcher(self, collection, interval) if watch else None

    # ---------------------------------------------------------------- the form's parts
    def _query_vectors(self, vectors: np.ndarray | None,
                       ids: Sequence[int] | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(vectors, ids) checked: vectors of the collection's dimension (binary for a binary metric) and one
        valid id per row, ``0..n-1`` when ``ids`` is not given; (None, None) without vectors. ParamError when
        the ids and the rows differ in number."""
        collection = self.collection
        vectors = None if vectors is None else numerics.as_vectors(
            vectors, "vectors", collection.dimension, binary=spec.is_binary_metric(collection.metric))
        vector_ids = (np.arange(len(vectors), dtype=np.int64) if ids is None and vectors is not None
                      else (None if ids is None else validation.id_list(
                          list(ids) if isinstance(ids, Sequence) else ids, "ids")))
        if vectors is not None and vector_ids is not None and len(vector_ids) != len(vectors):
            raise ParamError(f"ids has {len(vector_ids)} entries but vectors has {len(vectors)} rows; "
                             f"give one id per row")
        return vectors, vector_ids

    def _make_widgets(self, top_k: int, query: str | int | None) -> None:
        """Create every widget of the form, unconnected: the title, ``index_info``, the ``top_k`` field set to
        ``top_k``, ``fields_box`` (filled by :meth:`refresh`), the query (a word box with ``query_by`` when
        the rows have words, else a row-id box; set to ``query`` or the first word / row 0),
        ``search_button``, ``message`` and ``results``, each with its CSS class."""
        self.title = widgets.HTML("<b style='font-size:14px'>Search</b>")
        self.index_info = widgets.HTML()
        self.top_k = ParamField("", spec.TOP_K_PARAM, top_k)  # no index name: the engine's sentence for top_k
        self.fields: dict[str, ParamField] = {}
        self.fields_box = widgets.VBox()
        if self.id_to_word:
            self.query_by = widgets.ToggleButtons(options=["word", "id"], value="word",
                                                  style={"button_width": "60px"})
            self.query_by.add_class("milvus-query-by")
            options = list(self.word_to_id)[:MAX_WORD_OPTIONS]
            self.query = widgets.Combobox(options=options, ensure_option=False, placeholder="a word or a row id",
                                          layout=widgets.Layout(width="200px"))
            default = query if query is not None else options[0]
        else:
            self.query_by = None
            self.query = widgets.Text(placeholder="a row id", layout=widgets.Layout(width="200px"))
            default = query if query is not None else 0
        self.query.value = str(default)
        self.query.add_class("milvus-query")
        self.search_button = widgets.Button(description="Search", button_style="primary", icon="search")
        self.search_button.add_class("milvus-search")
        self.message = Status()
        self.message.add_class("milvus-search-message")
        self.results = widgets.HTML()
        self.results.add_class("milvus-results")

    def _layout(self) -> list[widgets.Widget]:
        """The form's rows, top to bottom: title, index info, top_k, the search fields, the query row (label,
        box, word/id toggle when there are words) with what a query is under it, Search, message, results."""
        query_row = [widgets.HTML("<b>query</b>", layout=widgets.Layout(width="160px")), self.query]
        if self.query_by is not None:
            query_row.append(self.query_by)
        query_help = ("a word (or a row id with 'id'): its stored vector is the query" if self.id_to_word
                      else "a row id: its stored vector is the query")
        return [self.title, self.index_info, self.top_k.box, self.fields_box,
                widgets.HBox(query_row, layout=widgets.Layout(align_items="center")),
                widgets.HBox([widgets.HTML(layout=widgets.Layout(width="160px")),
                              widgets.HTML(small(query_help))]),
                self.search_button, self.message, self.results]

    def _wire(self) -> None:
        """Connect the handlers: a change of top_k validates the form again, Search searches."""
        self.top_k.observe(lambda: self._guard(self.validate))
        self.search_button.on_click(lambda _b: self.search())

    # ---------------------------------------------------------------- fields for the current index
    def refresh(self) -> None:
        """Follow the collection's index: rebuild the search fields when its type or built params change
        (results of the previous index are cleared: they no longer describe what is there)."""
        with self._refresh_lock:  # a change listener (any thread) and a button handler may both get here
            self._refresh()

    def _refresh(self) -> None:
        try:
            index_type, build_params = current_index(self.collection)
        except Exception as exc:  # noqa: BLE001 - shown in the form, never raised
            self.message.show(error_text(exc, "Search"), "error")
            self.search_button.disabled = True
            return
        key = (index_type, tuple(sorted(build_params.items())))
        if key == self._shown_index:
            return
        if self._shown_index is not None:
            self.clear_results()
        self._shown_index = key
        self.index_type, self.build_params = index_type, build_params
        index_spec = spec.get_index(index_type, profile=self.profile)
        top_k = self.top_k.value if self.top_k.value is not None and self.top_k.error is None else 10
        defaults = spec.default_search_params(index_type, top_k, build_params, profile=self.profile)
        for field in self.fields.values():
            field.close()
        self.fields = {name: ParamField(index_type, param, defaults[name], spec.search_context(top_k, build_params))
                       for name, param in index_spec.search.items()}
        for field in self.fields.values():
            field.observe(lambda: self._guard(self.validate))
        self.fields_box.children = [f.box for f in self.fields.values()]
        if index_spec.is_flat:
            info = "Collection index: FLAT (exact search, no search parameters)"
        else:
            info = (f"Collection index: {index_type} ({spec.format_params(build_params)}); search parameters: "
                    f"{', '.join(index_spec.search)}")
        self.index_info.value = f"<div style='color:#1f4e79'>{escape(info)}</div>"
        self.validate()

    def context(self) -> dict[str, Any]:
        """top_k (when valid) and the built index's parameters: what search bounds are resolved in."""
        if self.top_k.check({}) is None:
            return spec.search_context(self.top_k.value, self.build_params)
        return dict(self.build_params)

    def validate(self) -> dict[str, str]:
        """Check top_k and every search field against the live bounds; enable Search only when all pass."""
        errors = {}
        ctx = self.context()
        if self.top_k.error:
            errors["top_k"] = self.top_k.error
        for name, field in self.fields.items():
            if (reason := field.check(ctx)):
                errors[name] = reason
        if "top_k" not in errors:
            # a search value refused only because of top_k (ef >= top_k): said under top_k too, where the
            # change that caused it may have been made
            crossed = crossed_reasons(self.fields, errors, self.build_params)
            if crossed:
                self.top_k.message.show(f"top_k={self.top_k.value} conflicts with a search parameter: "
                                        f"{crossed[0]}", "error")
            else:
                self.top_k.message.clear()
        self.errors = errors
        self.search_button.disabled = bool(errors)
        return errors

    def values(self) -> dict[str, Any]:
        """The search parameters as typed: ints where the text is an int, the raw text otherwise."""
        return field_values(self.fields)

    def set_busy(self, what: str | None) -> None:
        """An index build of ``what`` started (None: it ended): searches are refused meanwhile."""
        self.busy = what
        if what is not None:
            self.clear_results()
            self.message.show(f"Building {what}: Search is refused until the build ends, so an answer always "
                              f"belongs to the index shown.", "info")
        else:
            self.message.clear()
            self.refresh()
            if self.refusal is not None:
                self.message.show(self.refusal, "error")

    def clear_results(self) -> None:
        """Remove the results table and what it said (after a refused search, a drop, a new index)."""
        self.last = None
        self.results.value = ""
        self.message.clear()

    def refuse(self, reason: str) -> None:
        """Show why nothing was searched, with no older results under it."""
        self.clear_results()
        self.refusal = f"Not searched: {reason}"
        self.message.show(self.refusal, "error")

    # ---------------------------------------------------------------- the query
    def query_id(self) -> int:
        """The row id the query names; ValueError with a readable reason otherwise."""
        text = str(self.query.value).strip()
        if not text:
            raise ValueError("type " + ("a word or a row id" if self.id_to_word else "a row id") + " to search")
        if self.query_by is not None and self.query_by.value == "word":
            if text in self.word_to_id:
                return self.word_to_id[text]
            if text.lower() in self.word_to_id:
                return self.word_to_id[text.lower()]
            raise ValueError(f"the word {text!r} is not among the {len(self.word_to_id):,} words of this "
                             f"collection")
        number = parse_int(text)
        if number is None or number < 0:
            raise ValueError(f"query {text!r} is not a row id; a row id is an integer >= 0")
        return number

    def query_vector(self, qid: int) -> np.ndarray | None:
        """The stored vector of row ``qid``: from the vectors given to the form, else from the collection."""
        if self.vectors is not None:
            row = self._row_of.get(qid)
            return None if row is None else self.vectors[row]
        if not callable(getattr(self.collection, "get_entity_by_id", None)):
            raise ValueError("this collection cannot hand back stored vectors: give the form the collection's "
                             "vectors (vectors=...) to search by word or row id")
        (vector,) = self.collection.get_entity_by_id([qid])
        return vector

    # ---------------------------------------------------------------- search
    def search(self) -> dict[str, Any] | None:
        """Run the search; show the results table (or why it was refused) and return what was shown."""
        self.refusal = None
        try:
            return self._search()
        except Exception as exc:  # noqa: BLE001 - a form never raises into the notebook
            self.clear_results()
            self.message.show(error_text(exc, "Search"), "error")
            return None

    def _search(self) -> dict[str, Any] | None:
        if self.busy is not None:
            self.refuse(f"{self.busy} is being built; click Search again when the build ends (the answer "
                        f"would otherwise come from the new index, not the one shown).")
            return None
        self.refresh()
        errors = self.validate()
        if errors:
            self.refuse(next(iter(errors.values())))
            return None
        try:
            qid = self.query_id()
        except ValueError as exc:
            self.refuse(str(exc))
            return None
        try:
            vector = self.query_vector(qid)
        except ValueError as exc:
            self.refuse(str(exc))
            return None
        if vector is None:
            self.refuse(f"id {qid} does not exist in collection {self.collection.name!r}")
            return None
        top_k, params, index_type = self.top_k.value, self.values(), self.index_type
        query = np.asarray(vector)[None, :]
        try:
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                started = time.perf_counter()
                result = self.collection.search(query, top_k, params)
                latency_ms = (time.perf_counter() - started) * 1000
        except Exception as exc:  # noqa: BLE001 - shown in the form, never raised
            self.clear_results()
            self.message.show(error_text(exc, "Search"), "error")
            return None
        found = np.asarray(result.ids[0])
        keep = found >= 0
        ids, distances = found[keep], np.asarray(result.distances[0])[keep]
        recall, truth, exact_d = None, None, None
        metric = self.collection.metric
        if (self.vectors is not None and metric in spec.ALL_FLOAT_METRICS
                and len(self.vectors) == self.collection.count()):
            k = min(top_k, len(self.vectors))
            truth_rows, _ = numerics.exact_knn(self.vectors, query, k, metric)
            truth = self.vector_ids[truth_rows[0]]
            rows = np.array([self._row_of.get(int(i), -1) for i in found[:k]], dtype=np.int64)[None, :]
            if (rows[0][found[:k] >= 0] >= 0).all():
                recall = numerics.recall(rows, truth_rows, k, base=self.vectors, queries=query, metric=metric)
                exact_d = numerics.pair_distances(self.vectors, query, rows[:, keep[:k]], metric)[0]
        self.last = {"query_id": qid, "query_word": self.id_to_word.get(qid), "index_type": index_type,
                     "params": dict(params), "top_k": top_k, "ids": ids.tolist(),
                     "distances": distances.tolist(), "words": [self.id_to_word.get(int(i)) for i in ids],
                     "latency_ms": latency_ms, "recall": recall,
                     "exact_distances": None if exact_d is None else exact_d.tolist(),
                     "used": {name: used for name, f in self.fields.items() if (used := f.used_value()) is not None}}
        self._render(truth)
        return self.last

    def _render(self, truth: np.ndarray | None) -> None:
        last = self.last
        assert last is not None
        exact = set(truth.tolist()) if truth is not None else None
        metric = self.collection.metric
        approximate = last["exact_distances"] is not None and any(
            abs(d - e) > APPROXIMATE_RTOL * max(1.0, abs(e))
            for d, e in zip(last["distances"], last["exact_distances"]))
        label = distance_label(metric) + (" (approximate)" if approximate else "")
        columns = ["rank", "id", label] + (["exact"] if approximate else [])
        columns += (["word"] if self.id_to_word else []) + (["in exact top_k"] if exact is not None else [])
        rows = []
        for rank, (i, d, w) in enumerate(zip(last["ids"], last["distances"], last["words"]), 1):
            row: list[Any] = [rank, i, f"{d:.4f}"]
            if approximate:
                row.append(f"{last['exact_distances'][rank - 1]:.4f}")
            if self.id_to_word:
                row.append(w or "")
            if exact is not None:
                row.append("yes" if i in exact else "no")
            rows.append(row)
        query = f"{last['query_word']!r} (id {last['query_id']})" if last["query_word"] else f"id {last['query_id']}"
        params = spec.format_params(last["params"]) or "no search parameters"
        summary = (f"{len(rows)} hits for {query} with {last['index_type']} "
                   f"[{params}], top_k={last['top_k']}, in {last['latency_ms']:.2f} ms")
        if len(rows) < last["top_k"]:
            summary += f"; fewer hits than top_k (the collection has {self.collection.count():,} rows)"
        lines = [summary]
        if last["recall"] is not None:
            lines.append(f"recall@{last['top_k']} against exact search: {last['recall']:.2f}")
        else:
            lines.append("recall: give the form the collection's vectors (vectors=...) to compare with exact "
                         "results")
        for name, used in last["used"].items():
            lines.append(f"{name}={last['params'][name]} was searched as {name}={used} "
                         f"({self.fields[name].param.used_help}).")
        if approximate:
            lines.append(f"{last['index_type']} computes distances from compressed codes, so they are "
                         f"approximate (a word's distance to itself need not be 0); 'exact' recomputes them.")
        self.message.show("\n".join(lines), "ok")
        self.results.value = table_html(columns, rows, "milvus-results-table")
