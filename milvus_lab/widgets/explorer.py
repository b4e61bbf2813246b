"""explorer(...): build an index once, then drag its search parameter and watch recall, latency and one
word's neighbours change, with the recall-vs-parameter curve drawn as it is explored.

The slider's range is the spec's range of the search parameter in context (``nprobe`` 1..nlist of the
built index, ``ef`` top_k..its upper bound, ``search_length`` its range, ``search_k`` from top_k): the
bounds come from :func:`milvus_lab.spec.bounds`, so the slider can only offer values a search accepts.
A slider move searches the built index (it is never rebuilt: ``builds`` counts the builds); recall is
:func:`milvus_lab.numerics.recall` against exact results computed once.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import ipywidgets as widgets
import numpy as np

from .. import numerics, spec
from ..errors import ParamError
from ..engine.html import table_html
from ._common import Status, WatchedBox, current_index, error_text, form_layout, profile_of, small
from .index_form import IndexForm

#: queries drawn from the vectors for the recall and latency of each slider position
DEFAULT_QUERIES = 200
#: a parameter with no upper bound in the spec (ANNOY search_k) gets a slider up to this many times its lower
#: bound times the built n_trees (the spec's "-1" default is n_trees * top_k): far enough to reach recall 1
UNBOUNDED_SPAN = 20


#: values on the slider's track: evenly spaced in log scale (a linear track over ef 10..4096 spends all but a few
#: pixels where recall no longer moves), plus the ends, the default and the powers of two people type
SLIDER_POSITIONS = 48


def slider_values(low: int, high: int, keep: Sequence[int] = ()) -> list[int]:
    """The integers a slider from ``low`` to ``high`` stops at: log-spaced (every integer where they are that
    dense), both ends, the powers of two in between and the values in ``keep`` that lie in the range."""
    if high <= low:
        return [low]
    grid = np.unique(np.rint(np.geomspace(max(low, 1), high, SLIDER_POSITIONS)).astype(np.int64)).tolist()
    twos = [2**i for i in range(int(math.log2(high)) + 1) if low <= 2**i <= high]
    return sorted({low, high, *grid, *twos, *(k for k in keep if low <= k <= high)})


class LogSlider(widgets.SelectionSlider):
    """A slider over :func:`slider_values`: ``value`` is the integer, ``min`` / ``max`` the range's ends."""

    @property
    def min(self) -> int:
        return int(self.options[0])

    @property
    def max(self) -> int:
        return int(self.options[-1])


#: the latency readout times the query batch at least LATENCY_RUNS[0] and at most LATENCY_RUNS[1] times, until
#: LATENCY_BUDGET_S seconds are spent; a batch slower than SLOW_BATCH_S is not repeated (the slider stays live)
LATENCY_RUNS = (3, 9)
LATENCY_BUDGET_S = 0.2
SLOW_BATCH_S = 0.5
#: the clock the latency readout reads (a test can replace it)
_clock = time.perf_counter


def time_batches(run: Any) -> tuple[Any, list[float]]:
    """Call ``run()`` as :data:`LATENCY_RUNS` and :data:`LATENCY_BUDGET_S` say; (its last result, seconds of
    each call)."""
    seconds: list[float] = []
    result = None
    while len(seconds) < LATENCY_RUNS[1]:
        started = _clock()
        result = run()
        seconds.append(_clock() - started)
        if seconds[0] > SLOW_BATCH_S or (len(seconds) >= LATENCY_RUNS[0] and sum(seconds) >= LATENCY_BUDGET_S):
            break
    return result, seconds


def _in_kernel() -> bool:
    """Is this code running in a Jupyter kernel (a notebook or a Voila page), where slider moves arrive as
    messages that would queue behind a slow search?"""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


#: size of the curve drawing and its margins, in pixels
SVG_SIZE = (460, 280)
SVG_MARGIN = (48, 16, 16, 40)  # left, right, top, bottom
#: a parameter range wider than this ratio is drawn on a log axis
LOG_RATIO = 20


def curve_svg(curves: Sequence[tuple[tuple, Mapping[int, tuple[float, float]]]], current_build: tuple,
              param: str | None, current: int | None, top_k: int, span: tuple[int, int]) -> str:
    """Recall against the search parameter, one line per build (the current build dark, others faint), each
    point named by its value; ``span`` is the slider's range (the x axis)."""
    width, height = SVG_SIZE
    left, right, top, bottom = SVG_MARGIN
    if param is None or not curves:
        return (f"<div style='color:#666;font-size:90%'>recall@{top_k} against the search parameter is drawn "
                f"here once an index with a search parameter is built</div>")
    low, high = max(span[0], 1), max(span[1], span[0] + 1)
    use_log = high / low >= LOG_RATIO

    def x_of(v: float) -> float:
        v = min(max(v, low), high)
        t = (math.log(v) - math.log(low)) / (math.log(high) - math.log(low)) if use_log else (v - low) / (high - low)
        return left + t * (width - left - right)

    def y_of(r: float) -> float:
        return top + (1 - r) * (height - top - bottom)

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"style='font-family:sans-serif;font-size:10px'>",
             f"<rect x='{left}' y='{top}' width='{width - left - right}' height='{height - top - bottom}' "
             f"fill='white' stroke='#999'/>"]
    for r in (0, 0.25, 0.5, 0.75, 1):
        parts.append(f"<line x1='{left}' x2='{width - right}' y1='{y_of(r):.1f}' y2='{y_of(r):.1f}' "
                     f"stroke='#eee'/><text x='{left - 4}' y='{y_of(r) + 3:.1f}' text-anchor='end'>{r:g}</text>")
    shown_ticks: list[int] = []
    for v in sorted({low, high} | {v for _, points in curves for v in points}, reverse=True):
        if not shown_ticks or x_of(shown_ticks[-1]) - x_of(v) >= 28:  # labels never overlap (the ends win)
            shown_ticks.append(v)
    for v in shown_ticks:
        parts.append(f"<text x='{x_of(v):.1f}' y='{height - bottom + 12}' text-anchor='middle'>{v:g}</text>")
    axis = f"{param} (search parameter{', log scale' if use_log else ''})"
    parts.append(f"<text x='{(left + width - right) / 2:.0f}' y='{height - 6}' text-anchor='middle'>"
                 f"{escape(axis)}</text>")
    parts.append(f"<text x='12' y='{(top + height - bottom) / 2:.0f}' text-anchor='middle' "
                 f"transform='rotate(-90 12 {(top + height - bottom) / 2:.0f})'>recall@{top_k}</text>")
    legend_y = height - bottom - 6 - 12 * (len(curves) - 1)  # bottom right: recall curves live high up
    for params, points in curves:
        mine = params == current_build
        colour, opacity = ("#1f77b4", 1.0) if mine else ("#888", 0.6)
        xs = sorted(points)
        line = " ".join(f"{x_of(v):.1f},{y_of(points[v][0]):.1f}" for v in xs)
        parts.append(f"<polyline points='{line}' fill='none' stroke='{colour}' stroke-opacity='{opacity}' "
                     f"stroke-width='{2 if mine else 1}'/>")
        for v in xs:
            recall, ms = points[v]
            parts.append(f"<circle cx='{x_of(v):.1f}' cy='{y_of(recall):.1f}' r='3' fill='{colour}' "
                         f"fill-opacity='{opacity}'><title>{escape(param)}={v}: recall {recall:.3f}, "
                         f"{ms:.3f} ms per query</title></circle>")
        if mine and current in points:
            recall = points[current][0]
            anchor = "end" if x_of(current) > width / 2 else "start"
            dx = -6 if anchor == "end" else 6
            parts.append(f"<text class='milvus-explorer-point' x='{x_of(current) + dx:.1f}' "
                         f"y='{y_of(recall) + 14:.1f}' text-anchor='{anchor}' fill='{colour}'>"
                         f"{escape(param)}={current}, recall {recall:.2f}</text>")
        label = "built with " + (spec.format_params(dict(params)) or "no parameters")
        parts.append(f"<text x='{width - right - 6}' y='{legend_y}' text-anchor='end' fill='{colour}'>"
                     f"{escape(label)}</text>")
        legend_y += 12
    parts.append("</svg>")
    return "".join(parts)


class Explorer(WatchedBox):
    """An index form (build once) above a slider for the built index's search parameter.

    Attributes a test can read: ``form`` (the :class:`IndexForm`), ``slider``, ``param`` (its name),
    ``points`` ({(index_type, build params): {value: (recall, ms per query)}}), ``last`` (what the latest
    update showed), ``builds`` (how many indexes the form has built). :meth:`update` runs one position.

    ``background`` (default: in a Jupyter kernel, yes): a slider move returns at once and a worker thread
    searches; moves that arrive while it searches are not queued: it then searches only the slider's latest
    value, and the readout says it is computing meanwhile. :meth:`wait` waits for the worker.
    """

    def __init__(self, collection: Any, vectors: np.ndarray, *, words: Sequence[str] | None = None,
                 word: str | int | None = None, top_k: int = 10, n_queries: int = DEFAULT_QUERIES,
                 index_type: str | None = None, seed: int = 0, background: bool | None = None):
        super().__init__(layout=form_layout())
        self.add_class("milvus-explorer")
        self.collection = collection
        self.profile = profile_of(collection)
        self.metric = collection.metric
        self.vectors = numerics.as_vectors(vectors, "vectors", collection.dimension)
        self.words = list(words) if words is not None else None
        self.top_k = spec.validate_top_k(top_k)
        number = spec.as_int(seed)
        if number is None or number < 0:
            raise ParamError(f"seed must be an int >= 0 (it draws the query rows); got {spec.show_value(seed)}")
        rng = np.random.default_rng(number)
        count = spec.as_int(n_queries)
        if count is None or count < 1:
            raise ParamError(f"n_queries must be an int >= 1 (at most the rows are used); got "
                             f"{spec.show_value(n_queries)}")
        rows = np.sort(rng.choice(len(self.vectors), size=min(count, len(self.vectors)), replace=False))
        self.queries = self.vectors[rows]
        self.truth, _ = numerics.exact_knn(self.vectors, self.queries, self.top_k, self.metric)
        self.points: dict[tuple, dict[int, tuple[float, float]]] = {}
        self.last: dict[str, Any] | None = None
        self.param: str | None = None
        self._key: tuple | None = None
        self._word_truth: dict[int, set[int]] = {}
        self.background = _in_kernel() if background is None else bool(background)
        self._moves = 0  # slider moves so far; the worker stops once it has searched the latest
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()

        self.form = IndexForm(collection, index_type, watch=False)
        self.form.on_index_change(self._index_changed)
        self.form.on_busy(self._busy)
        self.word = widgets.Text(value=self._default_word(word), description="word",
                                 layout=widgets.Layout(width="260px"))
        self.word.add_class("milvus-explorer-word")
        self.word.observe(lambda _c: self._guard(self.update), "value")
        self.slider = self._new_slider("", 0, 1, 0, enabled=False)
        self.slider_help = widgets.HTML()
        self.readout = Status()
        self.readout.add_class("milvus-explorer-readout")
        self.neighbours = widgets.HTML()
        self.neighbours.add_class("milvus-explorer-neighbours")
        self.plot = widgets.HTML()
        self.plot.add_class("milvus-explorer-plot")
        self.children = [
            widgets.HTML("<b style='font-size:14px'>Explorer</b> " + small(
                f"build once, then drag the search parameter: recall@{self.top_k} over "
                f"{len(self.queries)} queries (against exact search), latency, and a word's neighbours")),
            self.form, self.word, self.slider, self.slider_help, self.readout,
            widgets.HBox([self.neighbours, self.plot], layout=widgets.Layout(flex_flow="row wrap"))]
        self._index_changed()

    def _new_slider(self, name: str, low: int, high: int, value: int, *, enabled: bool = True) -> LogSlider:
        """A slider made with its range and value at once (changing the range and value of a live slider lets
        the browser clamp the value against the old range and send that back); its stops are log-spaced."""
        slider = LogSlider(options=slider_values(low, high, (value,)), value=value, description=name,
                           continuous_update=True, disabled=not enabled, readout=enabled,  # no bare "0"
                           layout=widgets.Layout(width="520px"))
        slider.add_class("milvus-explorer-slider")
        slider.observe(lambda _c: self._guard(self._moved), "value")
        old = getattr(self, "slider", None)
        if old is not None:
            self.children = tuple(slider if child is old else child for child in self.children)
            old.close()
        return slider

    def _moved(self) -> None:
        """A slider move: search now, or (in the background) hand the latest value to the worker."""
        if not self.background:
            self.update()
            return
        with self._worker_lock:
            self._moves += 1
            if self._worker is not None:  # it searches the latest value when its current search ends
                self.readout.show(f"computing {self.param}={self.slider.value}... (positions passed during "
                                  f"the running search are skipped)", "info")
                return
            self._worker = threading.Thread(target=self._work, name="milvus-explorer", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            with self._worker_lock:
                seen = self._moves
            self._guard(self.update)
            with self._worker_lock:
                if self._moves == seen:
                    self._worker = None
                    return

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the background search of the latest slider move is shown; False on timeout."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return self._worker is None

    @property
    def error_line(self) -> Status:
        return self.readout

    @property
    def builds(self) -> int:
        """Indexes built by this explorer's form (a slider move never builds)."""
        return self.form.builds

    def _default_word(self, word: str | int | None) -> str:
        if word is not None:
            return str(word)
        return self.words[0] if self.words else "0"

    def _busy(self, what: str | None) -> None:
        self.slider.disabled = what is not None or self.param is None
        if what is not None:
            self.readout.show(f"Building {what}: the slider waits for the build.", "info")

    # ---------------------------------------------------------------- the slider follows the index
    def _index_changed(self) -> None:
        index_type, params = current_index(self.collection)
        index_spec = spec.get_index(index_type, profile=self.profile)
        self._key = (index_type, tuple(sorted(params.items())))
        self.points.setdefault(self._key, {})
        if not index_spec.search:
            self.param = None
            self.slider.disabled = True
            self.slider.readout = False
            self.slider.description = ""
            self.slider_help.value = small(f"{index_type} has no search parameter: every search is exact. "
                                           f"Build an index above to get a slider.")
            self.update()
            return
        (name, param), = index_spec.search.items()
        ctx = spec.search_context(self.top_k, params)
        low, high = spec.bounds(param, ctx)
        note = ""
        if high is None:
            trees = max(params.values(), default=1)
            high = max(low + 1, UNBOUNDED_SPAN * low * trees)
            if param.cap is not None:  # no bound in Milvus, but the library's cap (stated by describe_allowed)
                high = min(high, param.cap)
            note = (f" ({name} has no upper bound; " if param.cap is None else " (") + f"the slider stops at {high:,})"
        default = spec.default_search_params(index_type, self.top_k, params, profile=self.profile)[name]
        self.param = name
        self.slider = self._new_slider(name, low, high, default if low <= default <= high else low)
        self.slider_help.value = small(f"{name}: {param.help}. Allowed here: {spec.describe_allowed(param, ctx)}"
                                       f"{note}.")
        self.update()

    # ---------------------------------------------------------------- one position
    def _word_row(self) -> int | None:
        text = self.word.value.strip()
        if self.words is not None and text in self.words:
            return self.words.index(text)
        if text.isdigit() and int(text) < len(self.vectors):
            return int(text)
        return None

    def update(self) -> dict[str, Any] | None:
        """Search the built index at the slider's value: recall, latency, the word's neighbours, the curve."""
        if self.form.busy or self._key is None:
            return None
        index_type, params = self._key[0], dict(self._key[1])
        search = {} if self.param is None else {self.param: int(self.slider.value)}
        try:
            result, seconds = time_batches(lambda: self.collection.search(self.queries, self.top_k, search))
        except Exception as exc:  # noqa: BLE001 - shown, never raised
            self.readout.show(error_text(exc, "Search"), "error")
            return None
        recall = numerics.recall(result.ids, self.truth, self.top_k, base=self.vectors, queries=self.queries,
                                 metric=self.metric)
        value = search.get(self.param, 0) if self.param else 0
        per_query = sorted(t * 1000 / len(self.queries) for t in seconds)
        ms, ms_lo, ms_hi = float(np.median(per_query)), per_query[0], per_query[-1]
        self.points[self._key][value] = (recall, ms)
        where = f"{index_type} ({spec.format_params(params)})" if params else index_type
        at = f" at {spec.format_params(search)}" if search else ""
        if self.param is not None and self.param in params:  # RNSG: search_length both built and searched
            where, at = f"{index_type} built with {spec.format_params(params)},", " searched at " + at[4:]
        param_spec = spec.get_index(index_type, profile=self.profile).search.get(self.param or "")
        if param_spec is not None and param_spec.used_at_least is not None:
            used = spec.effective_value(param_spec, search[self.param], spec.search_context(self.top_k, params))
            if used != search[self.param]:
                at += f" (searched as {self.param}={used}: {param_spec.used_help})"
        if len(per_query) > 1:
            spread = f"median of {len(per_query)} runs of {len(self.queries)} queries, {ms_lo:.3f}-{ms_hi:.3f}"
        else:
            spread = f"one run of {len(self.queries)} queries: too slow to repeat, so its spread is not known"
        before = self.last if self.last and self.last.get("key") == self._key and self.param else None
        same = ""
        if before is not None and before["search"] != search and len(per_query) > 1 and \
                before["ms_lo"] <= ms_hi and ms_lo <= before["ms_hi"]:
            same = (f"; not measurably different from {self.param}={before['search'][self.param]} "
                    f"({before['ms']:.3f} ms): the runs' ranges overlap")
        self.readout.show(f"{where}{at}: recall@{self.top_k} = {recall:.3f}, {ms:.3f} ms per query "
                          f"({spread}){same}", "ok")
        self.last = {"index_type": index_type, "params": params, "search": search, "recall": recall, "ms": ms,
                     "ms_lo": ms_lo, "ms_hi": ms_hi, "runs": len(per_query), "key": self._key,
                     "neighbours": self._show_neighbours(search)}
        self._draw()
        return self.last

    def _show_neighbours(self, search: Mapping[str, int]) -> list[str]:
        row = self._word_row()
        if row is None:
            self.neighbours.value = small(f"{self.word.value!r} is not a word (or row) of this collection")
            return []
        query = self.vectors[row:row + 1]
        hits = self.collection.search(query, self.top_k, dict(search))
        if row not in self._word_truth:  # the word's exact neighbours, once per word
            exact, _ = numerics.exact_knn(self.vectors, query, self.top_k, self.metric)
            self._word_truth[row] = set(exact[0].tolist())
        truth = self._word_truth[row]
        ids = [int(i) for i in hits.ids[0] if i >= 0]
        names = [self.words[i] if self.words else str(i) for i in ids]
        rows = [[rank, name, "yes" if i in truth else "no"] for rank, (i, name) in enumerate(zip(ids, names), 1)]
        self.neighbours.value = (f"<div><b>neighbours of {escape(self.word.value)}</b></div>"
                                 + table_html(["rank", "word" if self.words else "id", "in exact top_k"], rows))
        return names

    def _draw(self) -> None:
        """The recall-vs-parameter curve of the explored builds of this index type, as inline SVG (drawn in
        about a millisecond, so a drag is not held up by the figure)."""
        index_type = self._key[0] if self._key else ""
        curves = [(params, points) for (kind, params), points in self.points.items()
                  if kind == index_type and points and self.param is not None]
        current = int(self.slider.value) if self.param else None
        self.plot.value = curve_svg(curves, self._key[1] if self._key else (), self.param, current, self.top_k,
                                    (self.slider.min, self.slider.max))



def explorer(data: Any, words: Sequence[str] | None = None, *, vectors: np.ndarray | None = None,
             **kwargs: Any) -> Explorer:
    """A live explorer for a collection (give its ``vectors``) or for ``data`` vectors, put in a new in-memory
    collection: ``explorer(vectors, words, word="king")``. Keywords go to :class:`Explorer` (``word``,
    ``top_k``, ``n_queries``, ``index_type``, ``seed``)."""
    if hasattr(data, "describe_index"):
        if vectors is None:
            raise ValueError("explorer(collection) needs the collection's vectors (vectors=...; row i has id i) "
                             "to compute the recall against exact search")
        return Explorer(data, vectors, words=words, **kwargs)
    from ..engine import Engine

    base = numerics.as_vectors(data, "vectors")
    metric = kwargs.pop("metric", "L2")
    engine = Engine(build_threshold=1, profile=spec.profile_for_metric(metric))  # COSINE: Milvus 2.3's rules
    collection = engine.create_collection("explorer", base.shape[1], metric_type=metric)
    collection.insert(base)
    return Explorer(collection, base, words=words, **kwargs)
