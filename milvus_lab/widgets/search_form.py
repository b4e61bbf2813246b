"""SearchForm: search the collection with its current index's search parameters, bounded live by the spec.

``nprobe`` is bounded by the nlist the index was built with, ``ef`` by ``top_k``, ``search_k`` is -1 or at
least ``top_k``: the bounds are the spec's, resolved in :func:`milvus_lab.spec.search_context`. The query
is a stored row (by id, or by word when ``words`` are given); results show as a table with the latency and,
when exact results are known, the recall against FLAT.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

import ipywidgets as widgets
import numpy as np

from .. import spec
from ..engine import Collection
from ._common import Status, WatchedBox, Watcher, error_text, small
from .fields import TOP_K_PARAM, ParamField, parse_int
from ..engine.html import format_params, table_html

#: a datalist longer than this makes the browser slow; other words are still accepted when typed
MAX_WORD_OPTIONS = 20000


def exact_neighbours(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, top_k: int, metric: str
                     ) -> np.ndarray:
    """Ids of the exact top_k of one query over ``vectors`` (squared L2 ascending, IP descending)."""
    if metric == "IP":
        key = -(vectors @ query)
    elif metric == "L2":
        diff = vectors - query
        key = np.einsum("ij,ij->i", diff, diff)
    else:
        raise ValueError(f"exact neighbours from vectors are computed for L2 and IP only, not {metric}")
    k = min(top_k, len(key))
    part = np.argpartition(key, k - 1)[:k]
    return ids[part[np.argsort(key[part], kind="stable")]]


class SearchForm(WatchedBox):
    """Search ``collection`` by a stored row: ``top_k``, the index's search parameters, ``query``.

    ``words`` names the rows (a list where words[i] is the word of id i, or a dict id -> word): the query
    can then be a word and results show words. ``vectors`` (row i has id i, or ``ids[i]``) lets the form
    compute exact results for the recall against FLAT; without it, an earlier FLAT search of the same
    query serves. Widgets: ``top_k``, ``fields``, ``query_by``, ``query``, ``search_button``,
    ``message``, ``results``; :meth:`search` returns and keeps ``last`` (a dict of what was shown).
    """

    def __init__(self, collection: Collection, *, words: Sequence[str] | Mapping[int, str] | None = None,
                 vectors: np.ndarray | None = None, ids: Sequence[int] | None = None, top_k: int = 10,
                 query: str | int | None = None, watch: bool = True, interval: float = 0.5):
        super().__init__(layout=widgets.Layout(border="1px solid #ccd", padding="6px", margin="4px"))
        self.add_class("milvus-search-form")
        self.collection = collection
        if isinstance(words, Mapping):
            self.id_to_word = {int(k): str(v) for k, v in words.items()}
        elif words is not None:
            self.id_to_word = {i: str(w) for i, w in enumerate(words)}
        else:
            self.id_to_word = {}
        self.word_to_id: dict[str, int] = {}
        for i, w in self.id_to_word.items():
            self.word_to_id.setdefault(w, i)
        self.vectors = None if vectors is None else np.ascontiguousarray(vectors, dtype=np.float32)
        self.vector_ids = (np.arange(len(self.vectors), dtype=np.int64) if ids is None and self.vectors is not None
                           else (None if ids is None else np.asarray(ids, dtype=np.int64)))
        if self.vectors is not None and self.vector_ids is not None and len(self.vector_ids) != len(self.vectors):
            raise ValueError(f"ids has {len(self.vector_ids)} entries but vectors has {len(self.vectors)} rows; "
                             f"give one id per row")
        self.errors: dict[str, str] = {}
        self.last: dict[str, Any] | None = None
        self._flat_cache: dict[tuple, np.ndarray] = {}
        self._shown_index: tuple | None = None
        self._refresh_lock = threading.RLock()

        self.title = widgets.HTML("<b style='font-size:14px'>Search</b>")
        self.index_info = widgets.HTML()
        self.top_k = ParamField("", TOP_K_PARAM, top_k)
        self.top_k.observe(lambda: self._guard(self.validate))
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
        query_row = [widgets.HTML("<b>query</b>", layout=widgets.Layout(width="160px")), self.query]
        if self.query_by is not None:
            query_row.append(self.query_by)
        query_help = ("a word (or a row id with 'id'): its stored vector is the query" if self.id_to_word
                      else "a row id: its stored vector is the query")
        self.search_button = widgets.Button(description="Search", button_style="primary", icon="search")
        self.search_button.add_class("milvus-search")
        self.message = Status()
        self.message.add_class("milvus-search-message")
        self.results = widgets.HTML()
        self.results.add_class("milvus-results")
        self.children = [self.title, self.index_info, self.top_k.box, self.fields_box,
                         widgets.HBox(query_row, layout=widgets.Layout(align_items="center")),
                         widgets.HBox([widgets.HTML(layout=widgets.Layout(width="160px")),
                                       widgets.HTML(small(query_help))]),
                         self.search_button, self.message, self.results]
        self.search_button.on_click(lambda _b: self.search())
        self.refresh()
        self.watcher = Watcher(self, collection, interval) if watch else None

    # ---------------------------------------------------------------- fields for the current index
    def refresh(self) -> None:
        """Follow the collection's index: rebuild the search fields when its type or built params change."""
        with self._refresh_lock:  # the watcher thread and a button handler may both get here
            self._refresh()

    def _refresh(self) -> None:
        try:
            index_type, build_params = self.collection.index_type, self.collection.index_params
        except Exception as exc:  # noqa: BLE001 - shown in the form, never raised
            self.message.show(error_text(exc, "Search"), "error")
            self.search_button.disabled = True
            return
        key = (index_type, tuple(sorted(build_params.items())))
        if key == self._shown_index:
            return
        self._shown_index = key
        self.index_type, self.build_params = index_type, build_params
        index_spec = spec.INDEXES[index_type]
        top_k = self.top_k.value if self.top_k.value is not None and self.top_k.error is None else 10
        defaults = spec.default_search_params(index_type, top_k, build_params)
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
            info = (f"Collection index: {index_type} ({format_params(build_params)}); search parameters: "
                    f"{', '.join(index_spec.search)}")
        self.index_info.value = f"<div style='color:#1f4e79'>{escape(info)}</div>"
        self.validate()

    def context(self) -> dict[str, Any]:
        """top_k (when valid) and the built index's parameters: what search bounds are resolved in."""
        if self.top_k.value is not None and self.top_k.check({}) is None:
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
        self.errors = errors
        self.search_button.disabled = bool(errors)
        return errors

    def values(self) -> dict[str, Any]:
        return {name: (f.value if f.value is not None else f.raw) for name, f in self.fields.items()}

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

    # ---------------------------------------------------------------- search
    def search(self) -> dict[str, Any] | None:
        """Run the search; show the results table (or why it was refused) and return what was shown."""
        try:
            return self._search()
        except Exception as exc:  # noqa: BLE001 - a form never raises into the notebook
            self.message.show(error_text(exc, "Search"), "error")
            return None

    def _search(self) -> dict[str, Any] | None:
        self.refresh()
        errors = self.validate()
        if errors:
            self.message.show(f"Not searched: {next(iter(errors.values()))}", "error")
            return None
        try:
            qid = self.query_id()
        except ValueError as exc:
            self.message.show(f"Not searched: {exc}", "error")
            return None
        (vector,) = self.collection.get_entity_by_id([qid])
        if vector is None:
            self.message.show(f"Not searched: id {qid} does not exist in collection "
                              f"{self.collection.name!r}", "error")
            return None
        top_k, params, index_type = self.top_k.value, self.values(), self.index_type
        try:
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                started = time.perf_counter()
                result = self.collection.search(vector[None, :], top_k, params)
                latency_ms = (time.perf_counter() - started) * 1000
        except Exception as exc:  # noqa: BLE001 - shown in the form, never raised
            self.message.show(error_text(exc, "Search"), "error")
            return None
        found = result.ids[0]
        keep = found >= 0
        ids, distances = found[keep], result.distances[0][keep]
        truth, truth_source = self._exact(qid, vector, top_k, index_type, ids)
        recall = None
        if truth is not None and len(truth):
            recall = len(set(ids.tolist()) & set(truth.tolist())) / len(truth)
        self.last = {"query_id": qid, "query_word": self.id_to_word.get(qid), "index_type": index_type,
                     "params": dict(params), "top_k": top_k, "ids": ids.tolist(),
                     "distances": distances.tolist(), "words": [self.id_to_word.get(int(i)) for i in ids],
                     "latency_ms": latency_ms, "recall": recall, "recall_source": truth_source}
        self._render(truth)
        return self.last

    def _exact(self, qid: int, vector: np.ndarray, top_k: int, index_type: str, found: np.ndarray
               ) -> tuple[np.ndarray | None, str]:
        """Exact ids for this query, when known: from ``vectors``, or a FLAT search seen before."""
        count = self.collection.count()
        key = (qid, top_k, count)
        if index_type == "FLAT":
            self._flat_cache[key] = found.copy()
            return found, "this search is exact (FLAT)"
        if (self.vectors is not None and self.vector_ids is not None and len(self.vectors) == count
                and self.collection.metric in spec.FLOAT_METRICS):
            truth = exact_neighbours(self.vectors, self.vector_ids, np.asarray(vector, np.float32), top_k,
                                     self.collection.metric)
            return truth, "exact neighbours computed from the vectors given to the form"
        if key in self._flat_cache:
            return self._flat_cache[key], "an earlier FLAT search of this query"
        hint = (", or give the form the collection's vectors" if self.collection.metric in spec.FLOAT_METRICS
                else "")
        return None, f"unknown: search this query once without an index (FLAT){hint}, to compare with exact results"

    def _render(self, truth: np.ndarray | None) -> None:
        last = self.last
        assert last is not None
        exact = set(truth.tolist()) if truth is not None else None
        columns = ["rank", "id", "distance"] + (["word"] if self.id_to_word else [])
        if exact is not None:
            columns.append("in exact top_k")
        rows = []
        for rank, (i, d, w) in enumerate(zip(last["ids"], last["distances"], last["words"]), 1):
            row: list[Any] = [rank, i, f"{d:.4f}"]
            if self.id_to_word:
                row.append(w or "")
            if exact is not None:
                row.append("yes" if i in exact else "no")
            rows.append(row)
        query = f"{last['query_word']!r} (id {last['query_id']})" if last["query_word"] else f"id {last['query_id']}"
        params = format_params(last["params"]) or "no search parameters"
        summary = (f"{len(rows)} hits for {query} with {last['index_type']} "
                   f"[{params}], top_k={last['top_k']}, in {last['latency_ms']:.2f} ms")
        if len(rows) < last["top_k"]:
            summary += f"; fewer hits than top_k (the collection has {self.collection.count():,} rows)"
        if last["recall"] is not None:
            recall = f"recall@{last['top_k']} against FLAT: {last['recall']:.2f} ({last['recall_source']})"
        else:
            recall = f"recall against FLAT {last['recall_source']}"
        self.message.show(summary + "\n" + recall, "ok")
        self.results.value = table_html(columns, rows, "milvus-results-table")

    def _guard(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - shown in the form, never raised
            self.message.show(error_text(exc, "The form"), "error")
            return None
