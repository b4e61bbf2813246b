"""Every index type, parameter, range, cross-rule, search parameter and metric, declared once.

The engine validates with :func:`validate_build` / :func:`validate_search`; the widget forms read
:func:`bounds` and :func:`allowed_values`; the lab's sweeps read ``default``, ``sweep`` and
:func:`sweep_range`; the docs render :func:`parameter_table`. No other module states a range.

A bound is either a number or a :class:`Ref` to a value known only in context: ``top_k`` of a search,
the ``nlist`` the index was built with, another build parameter (RNSG ``search_length`` <
``candidate_pool_size``), or the collection's dimension. Rules explain themselves: ``IntParam.rule_help``
is generated from the Refs and cross-rules, ``IndexSpec.min_rows_help`` from the training requirement.

Each target has a :class:`Profile` (``PROFILES``): Milvus 0.10 as milvus_lab reproduces it in memory
(the default), and Milvus 2.3 as a server enforces it. Every function takes ``profile=`` (keyword).
No function here lets a foreign exception escape: hostile values (huge ints, numpy scalars, objects whose
``__int__`` raises, ...) are refused with a ParamError / InvalidParameterError naming the parameter.
"""

from __future__ import annotations

import functools
import math
import operator
import warnings
from dataclasses import dataclass, field, replace
from numbers import Integral
from types import MappingProxyType
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import (
    IgnoredParameterWarning,
    IllegalDimensionError,
    IllegalIndexTypeError,
    IllegalMetricError,
    IllegalTopKError,
    InvalidParameterError,
    MilvusLabError,
    ParamError,
    RecommendationWarning,
    StatusCode,
)

# --------------------------------------------------------------------------------------------------
# Metrics and collection-level limits
# --------------------------------------------------------------------------------------------------
#: Milvus 0.10's float metrics
FLOAT_METRICS = ("L2", "IP")
BINARY_METRICS = ("HAMMING", "JACCARD", "TANIMOTO", "SUBSTRUCTURE", "SUPERSTRUCTURE")
#: metrics computed as another one on unit-length rows, as Milvus 2.3 computes COSINE: the inner product of
#: the normalised vectors (a zero vector stays zero); the in-memory engine under the milvus-2.3 profile does the same
NORMALISED_METRICS: Mapping[str, str] = MappingProxyType({"COSINE": "IP"})
#: every float metric some profile has (COSINE: Milvus 2.3 only, see PROFILES)
ALL_FLOAT_METRICS = FLOAT_METRICS + tuple(NORMALISED_METRICS)
ALL_METRICS = ALL_FLOAT_METRICS + BINARY_METRICS
#: metrics whose best hit has the largest score (results descend); all others ascend.
DESCENDING_METRICS = frozenset({"IP", "COSINE"})

DIMENSION = (1, 32768)
#: binary vectors are stored as bytes: a binary dimension is a multiple of the bits in a byte
BINARY_DIMENSION_MULTIPLE = 8
INDEX_FILE_SIZE_MB = (1, 4096)
DEFAULT_INDEX_FILE_SIZE_MB = 1024
TOP_K = (1, 16384)
NAME_MAX_LENGTH = 255
#: rows a segment needs before any index is built on it (Milvus 0.10's build_index_threshold)
DEFAULT_BUILD_THRESHOLD = 4096
#: the largest value of the C integer types the libraries keep our numbers in (IntParam.cap, IndexSpec.max_rows)
C_INT_MAX = 2**31 - 1  # int / int32_t: annoy's search_k and item ids, faiss NSG's node ids
C_UINT_MAX = 2**32 - 1  # unsigned int: hnswlib's internal node ids (tableint)
INT64_MAX = 2**63 - 1  # int64_t: faiss idx_t, Milvus ids
#: int64 ids, non-negative (-1 pads missing hits)
ID_RANGE = (0, INT64_MAX)
#: the profile of the in-memory engine, and the profile of a Milvus 2.x server target
DEFAULT_PROFILE = "milvus-0.10"
SERVER_PROFILE = "milvus-2.3"
#: a Milvus 2.3 server indexes no segment below this many rows (its minSegmentNumRowsToEnableIndex default)
SERVER_MIN_INDEX_ROWS = 1024
#: a Milvus 2.3 server answers at most this many query vectors per search request (quotaAndLimits.limits.nq)
SERVER_MAX_NQ = 16384


def is_binary_metric(metric: Any) -> bool:
    return _name_of(metric) in BINARY_METRICS


def library_metric(metric: str) -> str:
    """The metric the libraries compute for ``metric`` (IP for COSINE, on rows normalised first)."""
    return NORMALISED_METRICS.get(metric, metric)


# --------------------------------------------------------------------------------------------------
# Hostile-value helpers: never let a foreign exception out of the spec
# --------------------------------------------------------------------------------------------------
def as_int(value: Any) -> int | None:
    """``value`` as a plain int when it is an integer (numpy integer scalars included, bools not), else None.

    Never raises: an object whose ``__index__`` raises, a float, a 0-d array or a string gives None."""
    if type(value) is int:
        return value
    try:
        if isinstance(value, bool) or not isinstance(value, Integral):
            return None
        number = operator.index(value)
        return int.__add__(number, 0) if isinstance(number, int) else None
    except Exception:  # a hostile __index__ / __class__: not an integer we can use
        return None


def plain_str(value: Any) -> str | None:
    """A str (a subclass copied to a plain str, so its methods cannot interfere), else None; never raises."""
    try:
        return str.__str__(value) if isinstance(value, str) else None
    except Exception:
        return None


def _name_of(value: Any) -> str | None:
    """The name of an enum member (IndexType.HNSW, MetricType.L2) or a str itself; None otherwise."""
    text = plain_str(value)
    if text is not None:
        return text
    try:
        return plain_str(getattr(value, "name", None))
    except Exception:
        return None


def show_value(value: Any, limit: int = 80) -> str:
    """A short, safe repr for messages: never raises, never prints a 10,000-digit integer."""
    number = value if type(value) is int else None
    if number is not None:
        if number.bit_length() <= 256:
            return str(number)
        return f"{'-' if number < 0 else ''}<an integer of {number.bit_length()} bits>"
    try:
        text = repr(value)
        text = text if type(text) is str else f"<{type(value).__name__} object>"
    except Exception:
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _count(number: int) -> str:
    """1,024 for a count; a safe short form for absurd ones."""
    return f"{number:,}" if number.bit_length() <= 256 else show_value(number)


def _as_ctx(ctx: Any) -> dict[str, Any]:
    if type(ctx) is dict:  # the hot path: lookups are by str key, other keys are never read
        return ctx
    if ctx is None:
        return {}
    try:
        items = list(ctx.items())
    except Exception:
        raise ParamError(f"a parameter context must be a dict; got {show_value(ctx)}") from None
    return {key: value for k, value in items if (key := plain_str(k)) is not None}


def _param_dict(params: Any, what: str) -> dict[str, Any]:
    """``params`` as a plain dict with str keys; ParamError if it is not a mapping, and
    InvalidParameterError naming the key when a parameter name is not a str."""
    if params is None:
        return {}
    if type(params) is dict and all(type(k) is str for k in params):  # the hot path
        return params
    if not isinstance(params, Mapping):
        raise ParamError(f"{what} must be a dict; got {type(params).__name__}")
    try:
        items = list(params.items())
    except Exception as exc:
        raise ParamError(f"{what} could not be read as a dict ({type(exc).__name__})") from None
    out: dict[str, Any] = {}
    for key, value in items:
        name = plain_str(key)
        if name is None:
            raise InvalidParameterError(f"{what}: parameter names must be str; got {show_value(key)}")
        out[name] = value
    return out


# --------------------------------------------------------------------------------------------------
# Declarative parameter model
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ref:
    """A bound known only in context, e.g. ``Ref("top_k")`` or ``Ref("candidate_pool_size", -1)``.

    ``factor`` multiplies (``Ref("top_k", factor="n_trees")`` is n_trees * top_k); ``note`` says what the
    name refers to in words ("of the built index") and appears in the generated rule text."""

    name: str
    offset: int = 0
    factor: str = ""
    note: str = ""

    def resolve(self, ctx: Mapping[str, Any]) -> int | None:
        value = as_int(ctx.get(self.name))
        if value is None:
            return None
        if self.factor:
            times = as_int(ctx.get(self.factor))
            if times is None:
                return None
            value *= times
        return value + self.offset

    def describe(self) -> str:
        text = f"{self.factor} * {self.name}" if self.factor else self.name
        if self.offset:
            text += f" {'+' if self.offset > 0 else '-'} {abs(self.offset)}"
        return text

    def rule(self, param: str, side: str) -> str:
        """The rule this Ref states as a bound: 'search_length < candidate_pool_size', 'ef >= top_k'."""
        ref = f"{self.factor} * {self.name}" if self.factor else self.name
        if side == "high":
            op, off = ("<", self.offset + 1) if self.offset == -1 else ("<=", self.offset)
        else:
            op, off = (">", self.offset - 1) if self.offset == 1 else (">=", self.offset)
        if off:
            ref += f" {'+' if off > 0 else '-'} {abs(off)}"
        return f"{param} {op} {ref}" + (f" {self.note}" if self.note else "")


@dataclass(frozen=True)
class CrossRule:
    """A rule on a value given its context (IVF_PQ ``m`` against the dimension): ``check(value, ctx)``
    returns why the value is refused (None: allowed); ``help`` states the rule in words."""

    help: str
    check: Callable[[int, Mapping[str, Any]], str | None]

    def __call__(self, value: int, ctx: Mapping[str, Any]) -> str | None:
        return self.check(value, ctx)


def _bound_items(bound: Any) -> tuple:
    if bound is None:
        return ()
    if type(bound) is tuple:
        return tuple(item for item in bound if item is not None)
    return (bound,)


@dataclass(frozen=True)
class IntParam:
    """An integer parameter: ``low``/``high`` are each an int, a Ref, or a tuple of them (the tightest
    one that resolves applies). ``choices`` restricts to a set; ``special`` values are allowed besides
    the range (ANNOY ``search_k=-1``); ``allowed_if`` is a cross-rule on the value given the context.
    A refusal raises ``error`` with status ``code``."""

    name: str
    low: Any
    high: Any
    default: int
    help: str
    choices: tuple[int, ...] | None = None
    special: tuple[int, ...] = ()
    special_help: str = ""
    recommended: tuple[int, int] | None = None
    #: advice that is not a range (shown as "recommended", never enforced)
    advice_help: str = ""
    allowed_if: CrossRule | None = None
    code: StatusCode = StatusCode.ILLEGAL_ARGUMENT
    error: type[MilvusLabError] = InvalidParameterError
    #: how a default sweep walks the parameter: "log2" doubles, "linear" steps
    sweep: str = "log2"
    #: where a sweep starts and stops (int or Ref, resolved by :func:`sweep_range`; None: the bounds)
    sweep_start: Any = None
    sweep_stop: Any = None
    #: the library searches with at least this (int or Ref): faiss NSG uses max(search_length, top_k)
    used_at_least: Any = None
    #: the largest value the library behind the parameter can hold, where the reference sets no upper bound
    #: (ANNOY search_k: annoy keeps it in a C int). :func:`check_value` refuses a larger value and
    #: :func:`describe_allowed` states the cap with ``cap_help``; :func:`bounds` stays the reference's range
    #: (sweeps and sliders choose their own span below the cap)
    cap: int | None = None
    cap_help: str = ""

    @property
    def used_help(self) -> str:
        """How the value given becomes the value used, in words ('' when it is used as given)."""
        floor = _describe_bound(self.used_at_least) if self.used_at_least is not None else ""
        return f"searched with max({self.name}, {floor})" if floor else ""

    @property
    def rule_help(self) -> str:
        """The rules beyond plain numbers, in words, generated from the Refs and the cross-rule."""
        parts = [item.rule(self.name, side) for side, bound in (("low", self.low), ("high", self.high))
                 for item in _bound_items(bound) if isinstance(item, Ref)]
        if self.allowed_if is not None:
            parts.append(self.allowed_if.help)
        text = " and ".join(parts)
        if self.special and text:
            text = " or ".join([f"{self.name} = {s}" for s in self.special] + [text])
        return text


@dataclass(frozen=True)
class MinRows:
    """Fewest rows a segment needs to train an index: the max of parameter values and numbers, plus ``more``."""

    of: tuple[str | int, ...] = ()
    more: int = 0
    why: str = "to train"
    distinct: bool = False

    def __call__(self, params: Mapping[str, Any]) -> int:
        values = [1]
        for item in self.of:
            value = as_int(params.get(item)) if isinstance(item, str) else item
            if value is None:
                raise InvalidParameterError(f"{item} must be an integer build parameter to count the rows a "
                                            f"segment needs; got {show_value(params.get(item))}")
            values.append(value)
        return max(values) + self.more

    @property
    def help(self) -> str:
        if not self.of:
            return ""
        names = [str(item) for item in self.of]
        need = names[0] if len(names) == 1 else f"max({', '.join(names)})"
        if self.more:
            need += f" + {self.more}"
        return f"a segment needs at least {need}{' distinct' if self.distinct else ''} rows {self.why}"


@dataclass(frozen=True)
class IndexSpec:
    name: str
    backend: str
    metrics: tuple[str, ...]
    build: Mapping[str, IntParam]
    search: Mapping[str, IntParam]
    description: str
    #: fewest rows a segment needs to train this index with these params (beyond the build threshold)
    min_rows: MinRows = field(default_factory=MinRows)
    #: advice that is not a rule: returns warning sentences for valid params
    advice: Callable[[Mapping[str, int]], list[str]] = lambda params: []
    notes: str = ""
    #: notes that apply only to some metrics (shown by :meth:`notes_for`)
    metric_notes: Mapping[str, str] = field(default_factory=dict)
    #: False: measured by the lab but never recommended (IVF_SQ8H is IVF_SQ8 here)
    recommend: bool = True
    #: the index type this one is identical to on this target (IVF_SQ8H -> "IVF_SQ8")
    same_as: str | None = None
    #: most rows one segment's index can hold, where the library numbers rows in a C integer narrower than
    #: Milvus's int64 (None: no such limit); a larger segment stays raw with ``max_rows_help`` as the reason
    max_rows: int | None = None
    max_rows_help: str = ""

    @property
    def is_flat(self) -> bool:
        return self.name == "FLAT"

    def too_many_rows(self, rows: int) -> str | None:
        """Why a segment of ``rows`` rows is more than this index can number (None: it is not)."""
        if self.max_rows is None or rows <= self.max_rows:
            return None
        return (f"{_count(rows)} rows is more than {self.name} can hold in one segment (at most "
                f"{_count(self.max_rows)}: {self.max_rows_help}); a smaller segment_rows splits the data")

    @property
    def min_rows_help(self) -> str:
        return self.min_rows.help

    def notes_for(self, metric: Any) -> str:
        """The notes that apply to a collection of ``metric``: the general ones and that metric's."""
        return " ".join(text for text in (self.notes, self.metric_notes.get(_name_of(metric) or "", "")) if text)


def _tightest(bound: Any, ctx: Mapping[str, Any], pick: Callable[[Iterable[int]], int]) -> int | None:
    values = []
    for item in _bound_items(bound):
        value = item.resolve(ctx) if isinstance(item, Ref) else int(item)
        if value is not None:
            values.append(value)
    return pick(values) if values else None


def _describe_bound(bound: Any) -> str:
    parts = [item.describe() if isinstance(item, Ref) else str(item) for item in _bound_items(bound)]
    return parts[0] if len(parts) == 1 else "min(" + ", ".join(parts) + ")"


# --------------------------------------------------------------------------------------------------
# IVF_PQ: m against the dimension (the reference's section 2)
# --------------------------------------------------------------------------------------------------
PQ_M_CHOICES = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)
PQ_SUBVECTOR_DIMS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 28, 32)
PQ_MIN_TRAIN_ROWS = 256  # 8-bit codes: 256 centroids per sub-quantizer


def pq_allowed_m(dim: Any) -> list[int]:
    """The ``m`` values IVF_PQ (Milvus 0.10) accepts for vectors of dimension ``dim`` (empty: none)."""
    number = as_int(dim)
    if number is None:
        raise ParamError(f"dimension must be an int; got {show_value(dim)}")
    return [m for m in PQ_M_CHOICES if number % m == 0 and number // m in PQ_SUBVECTOR_DIMS]


def _pq_m_rule(m: int, ctx: Mapping[str, Any]) -> str | None:
    dim = as_int(ctx.get("dim"))
    if dim is None:
        return None
    allowed = pq_allowed_m(dim)
    if m in allowed:
        return None
    if dim % m:
        reason = f"m={m} does not divide dimension {show_value(dim)}"
    elif m not in PQ_M_CHOICES:
        reason = f"m={m} is not one of the m values IVF_PQ offers"
    else:
        reason = (f"m={m} gives sub-vectors of {show_value(dim // m)} dimensions; allowed sub-vector sizes: "
                  f"{', '.join(map(str, PQ_SUBVECTOR_DIMS))}")
    if not allowed:
        return f"{reason}; no m is allowed for dimension {show_value(dim)}, so IVF_PQ cannot index this data"
    return f"{reason}; allowed m for dim {show_value(dim)}: {', '.join(map(str, allowed))}"


PQ_M_RULE = CrossRule("dim % m == 0 and dim / m in {" + ", ".join(map(str, PQ_SUBVECTOR_DIMS)) + "}", _pq_m_rule)


@functools.lru_cache(maxsize=256)
def _divisors_text(dim: int) -> str:
    divisors = [d for d in range(1, min(dim, DIMENSION[1]) + 1) if dim % d == 0] if dim > 0 else []
    return ", ".join(map(str, divisors[:24])) + (", ..." if len(divisors) > 24 else "")


def _divides_dim_rule(m: int, ctx: Mapping[str, Any]) -> str | None:
    dim = as_int(ctx.get("dim"))
    if dim is None or m <= 0 or dim % m == 0:
        return None
    shown = show_value(dim)
    return f"m={m} does not divide dimension {shown}; allowed m for dim {shown}: {_divisors_text(dim)}"


#: Milvus 2.x IVF_PQ: any m that divides the dimension (nbits left at the server's 8)
PQ_M_DIVIDES_RULE = CrossRule("dim % m == 0", _divides_dim_rule)


def _binary_dimension_rule(dim: int, ctx: Mapping[str, Any]) -> str | None:
    metric = plain_str(ctx.get("metric"))
    if metric in BINARY_METRICS and dim % BINARY_DIMENSION_MULTIPLE:
        return (f"dimension={dim} is not a multiple of {BINARY_DIMENSION_MULTIPLE}; binary metric {metric} "
                f"stores bits in bytes, so dimension must be a multiple of {BINARY_DIMENSION_MULTIPLE}")
    return None


# --------------------------------------------------------------------------------------------------
# Collection-level parameters (forms and the engine check them like the others)
# --------------------------------------------------------------------------------------------------
#: ``top_k`` as a parameter, so forms and sweeps show and check it like the others
TOP_K_PARAM = IntParam("top_k", TOP_K[0], TOP_K[1], 10, "results per query (nearest first)",
                       code=StatusCode.ILLEGAL_TOPK, error=IllegalTopKError)
DIMENSION_PARAM = IntParam(
    "dimension", DIMENSION[0], DIMENSION[1], 128, "numbers per vector (bits for binary metrics)",
    allowed_if=CrossRule(f"a multiple of {BINARY_DIMENSION_MULTIPLE} for binary metrics", _binary_dimension_rule),
    code=StatusCode.ILLEGAL_DIMENSION, error=IllegalDimensionError)
INDEX_FILE_SIZE_PARAM = IntParam("index_file_size", INDEX_FILE_SIZE_MB[0], INDEX_FILE_SIZE_MB[1],
                                 DEFAULT_INDEX_FILE_SIZE_MB, "segment size in MB at which a segment seals "
                                 "and is indexed")


# --------------------------------------------------------------------------------------------------
# The index types of Milvus 0.10 (the reference's sections 2 and 3)
# --------------------------------------------------------------------------------------------------
NLIST = (1, 65536)


def _nlist(default: int = 1024) -> IntParam:
    return IntParam("nlist", NLIST[0], NLIST[1], default, "number of IVF cells (k-means centroids)",
                    code=StatusCode.ILLEGAL_NLIST)


_NPROBE = IntParam("nprobe", 1, Ref("nlist", note="of the built index"), 16,
                   "IVF cells visited per query (more: higher recall, slower)")
_IVF_MIN_ROWS = MinRows(("nlist",), why="to train the k-means cells")


def _rnsg_advice(params: Mapping[str, int]) -> list[str]:
    out = []
    if "knng" in params and "out_degree" in params and params["knng"] != params["out_degree"] + 20:
        out.append(f"RNSG: the docs recommend knng = out_degree + 20 (= {params['out_degree'] + 20}); "
                   f"got knng={params['knng']}")
    return out


INDEXES: dict[str, IndexSpec] = {
    "FLAT": IndexSpec(
        name="FLAT", backend="faiss", metrics=FLOAT_METRICS + BINARY_METRICS, build={}, search={},
        description="exact (brute-force) search; the default of every collection",
    ),
    "IVF_FLAT": IndexSpec(
        name="IVF_FLAT", backend="faiss", metrics=FLOAT_METRICS + ("HAMMING", "JACCARD", "TANIMOTO"),
        build={"nlist": _nlist()}, search={"nprobe": _NPROBE},
        description="inverted file: k-means cells, full vectors stored per cell",
        min_rows=_IVF_MIN_ROWS,
        metric_notes={m: f"On {m} the cells are chosen by Hamming distance and candidates re-ranked exactly."
                      for m in ("JACCARD", "TANIMOTO")},
    ),
    "IVF_SQ8": IndexSpec(
        name="IVF_SQ8", backend="faiss", metrics=FLOAT_METRICS,
        build={"nlist": _nlist()}, search={"nprobe": _NPROBE},
        description="inverted file with 8-bit scalar quantization (4x smaller than IVF_FLAT)",
        min_rows=_IVF_MIN_ROWS,
    ),
    "IVF_SQ8H": IndexSpec(
        name="IVF_SQ8H", backend="faiss", metrics=FLOAT_METRICS,
        build={"nlist": _nlist()}, search={"nprobe": _NPROBE},
        description="Milvus: IVF_SQ8 with GPU/CPU hybrid search; here IVF_SQ8 on the CPU, same results",
        min_rows=_IVF_MIN_ROWS,
        notes="Milvus runs the coarse quantizer on a GPU; milvus_lab has no GPU and builds IVF_SQ8.",
        recommend=False, same_as="IVF_SQ8",
    ),
    "IVF_PQ": IndexSpec(
        name="IVF_PQ", backend="faiss", metrics=FLOAT_METRICS,
        build={"nlist": _nlist(),
               "m": IntParam("m", PQ_M_CHOICES[0], PQ_M_CHOICES[-1], 8,
                             "sub-quantizers: each vector is stored in m bytes",
                             choices=PQ_M_CHOICES, allowed_if=PQ_M_RULE)},
        search={"nprobe": _NPROBE},
        description="inverted file with product quantization: m bytes per vector, 8 bits per code",
        min_rows=MinRows(("nlist", PQ_MIN_TRAIN_ROWS)),
    ),
    "RNSG": IndexSpec(
        name="RNSG", backend="faiss", metrics=FLOAT_METRICS,
        build={
            "search_length": IntParam("search_length", 10, (300, Ref("candidate_pool_size", -1)), 45,
                                      "candidate list while building the graph",
                                      recommended=(40, 80), sweep="linear"),
            "out_degree": IntParam("out_degree", 5, 300, 50, "maximum edges per node", sweep="linear"),
            "candidate_pool_size": IntParam("candidate_pool_size", 50, 1000, 300,
                                            "candidates considered when pruning edges",
                                            recommended=(200, 500), sweep="linear"),
            "knng": IntParam("knng", 5, 300, 70, "neighbours in the initial k-NN graph",
                             sweep="linear", advice_help="knng = out_degree + 20"),
        },
        search={"search_length": IntParam("search_length", 10, 300, 50,
                                          "candidate list while searching (more: higher recall, slower)",
                                          sweep="linear", sweep_start=Ref("top_k"),
                                          used_at_least=Ref("top_k"))},
        description="navigating spreading-out graph (faiss NSG), one search list per query",
        min_rows=MinRows(("knng", "search_length"), more=1, why="to build the k-NN graph", distinct=True),
        advice=_rnsg_advice,
        max_rows=C_INT_MAX, max_rows_help="faiss NSG numbers the graph's nodes with a C int",
    ),
    "HNSW": IndexSpec(
        name="HNSW", backend="hnswlib", metrics=FLOAT_METRICS,
        build={"M": IntParam("M", 4, 64, 16, "graph degree (edges per node per layer)"),
               "efConstruction": IntParam("efConstruction", 8, 512, 200, "candidate list while building")},
        search={"ef": IntParam("ef", Ref("top_k"), 4096, 64,
                               "candidate list while searching (more: higher recall, slower)")},
        description="hierarchical navigable small-world graph (hnswlib)",
        max_rows=C_UINT_MAX, max_rows_help="hnswlib numbers the graph's nodes with an unsigned C int",
    ),
    "ANNOY": IndexSpec(
        name="ANNOY", backend="annoy", metrics=FLOAT_METRICS,
        build={"n_trees": IntParam("n_trees", 1, 1024, 16, "random-projection trees (more: higher recall, "
                                   "more memory)")},
        search={"search_k": IntParam("search_k", Ref("top_k"), None, -1,
                                     "tree nodes inspected per query (more: higher recall, slower)",
                                     special=(-1,), special_help="-1 means n_trees * top_k",
                                     sweep_start=Ref("top_k", factor="n_trees"),
                                     sweep_stop=Ref("rows", factor="n_trees"),
                                     cap=C_INT_MAX, cap_help="annoy keeps search_k in a C int")},
        description="forest of random-projection trees (annoy)",
        max_rows=C_INT_MAX, max_rows_help="annoy numbers its items with a C int",
    ),
}

INDEX_TYPES: tuple[str, ...] = tuple(INDEXES)
#: aliases accepted wherever an index type name is
INDEX_ALIASES = {"IVFLAT": "IVF_FLAT", "IVF_SQ8_H": "IVF_SQ8H", "NSG": "RNSG"}


# --------------------------------------------------------------------------------------------------
# Milvus 2.3 (a server target): measured on milvus 2.3.5-lite and the pymilvus 2.3 docs (issue 10)
# --------------------------------------------------------------------------------------------------
def _milvus23_indexes() -> dict[str, IndexSpec]:
    binary = ("HAMMING", "JACCARD")
    floats = ALL_FLOAT_METRICS  # Milvus 2.3 has COSINE on every float index type
    nlist = _nlist()
    return {
        "FLAT": replace(INDEXES["FLAT"], metrics=floats + binary),
        "IVF_FLAT": replace(INDEXES["IVF_FLAT"], metrics=floats + binary, metric_notes={},
                            build={"nlist": nlist}),
        "IVF_SQ8": replace(INDEXES["IVF_SQ8"], metrics=floats, build={"nlist": nlist}),
        "IVF_PQ": replace(
            INDEXES["IVF_PQ"], metrics=floats,
            build={"nlist": nlist,
                   "m": IntParam("m", 1, (DIMENSION[1], Ref("dim")), 8,
                                 "sub-quantizers: each vector is stored in m bytes", allowed_if=PQ_M_DIVIDES_RULE)},
            description="inverted file with product quantization: m codes of 8 bits per vector"),
        "HNSW": replace(
            INDEXES["HNSW"], metrics=floats,
            build={"M": IntParam("M", 2, 2048, 16, "graph degree (edges per node per layer); M=1 never "
                                 "finishes building on the server, so it is refused"),
                   "efConstruction": IntParam("efConstruction", 1, C_INT_MAX, 200,
                                              "candidate list while building")},
            search={"ef": IntParam("ef", Ref("top_k"), 32768, 64,
                                   "candidate list while searching (more: higher recall, slower)")}),
    }


_UNAVAILABLE_23 = {
    "IVF_SQ8H": "a GPU index of Milvus 0.10 that Milvus 2.x removed (the server answers 'invalid index type'); "
                "use IVF_SQ8, which it was on the CPU",
    "RNSG": "Milvus 2.x removed NSG (the server answers 'invalid index type'); HNSW is its graph index",
    "ANNOY": "Milvus 2.x removed ANNOY (the server answers 'invalid index type'); use HNSW or IVF_FLAT",
}


@dataclass(frozen=True)
class Profile:
    """The rules of one target: its index types, the ones it lacks (with why) and its collection limits."""

    name: str
    title: str
    indexes: Mapping[str, IndexSpec]
    unavailable: Mapping[str, str]
    metrics: tuple[str, ...]
    top_k: IntParam
    dimension: IntParam
    index_file_size: IntParam
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: the server's name prefix for binary index types (Milvus 2.x: BIN_FLAT, BIN_IVF_FLAT)
    binary_prefix: str = ""
    #: metrics the target lacks, with why (shown wherever one is refused)
    unavailable_metrics: Mapping[str, str] = field(default_factory=dict)


PROFILES: dict[str, Profile] = {
    DEFAULT_PROFILE: Profile(
        name=DEFAULT_PROFILE, title="Milvus 0.10 (milvus_lab in memory)", indexes=INDEXES, unavailable={},
        metrics=FLOAT_METRICS + BINARY_METRICS, top_k=TOP_K_PARAM, dimension=DIMENSION_PARAM,
        index_file_size=INDEX_FILE_SIZE_PARAM, aliases=INDEX_ALIASES,
        unavailable_metrics={"COSINE": "Milvus 0.10 has no COSINE (Milvus 2.3 added it); normalise the vectors to unit "
                                       "length and use IP, which then ranks and scores as COSINE"}),
    SERVER_PROFILE: Profile(
        name=SERVER_PROFILE, title="Milvus 2.3", indexes=_milvus23_indexes(), unavailable=_UNAVAILABLE_23,
        metrics=ALL_FLOAT_METRICS + ("HAMMING", "JACCARD"), top_k=TOP_K_PARAM, dimension=DIMENSION_PARAM,
        index_file_size=INDEX_FILE_SIZE_PARAM,
        aliases={**INDEX_ALIASES, "BIN_FLAT": "FLAT", "BIN_IVF_FLAT": "IVF_FLAT"}, binary_prefix="BIN_"),
}


def get_profile(profile: Any = DEFAULT_PROFILE) -> Profile:
    """The Profile named ``profile`` (a Profile passes through); InvalidParameterError if there is none."""
    if isinstance(profile, Profile):
        return profile
    name = plain_str(profile)
    if name is None or name not in PROFILES:
        raise InvalidParameterError(f"profile={show_value(profile)} is unknown; allowed: {', '.join(PROFILES)}")
    return PROFILES[name]


# --------------------------------------------------------------------------------------------------
# Lookup helpers
# --------------------------------------------------------------------------------------------------
def get_index(index_type: Any, *, profile: Any = DEFAULT_PROFILE) -> IndexSpec:
    """The spec of an index type given as a name (any case, aliases allowed) or an IndexType member.

    A type the target lacks raises IllegalIndexTypeError("ANNOY is not available on Milvus 2.3: ...")."""
    prof = get_profile(profile)
    name = _name_of(index_type)
    if not name:
        raise ParamError(f"index_type must be one of {', '.join(prof.indexes)}; got {show_value(index_type)}")
    key = name.upper()
    key = prof.aliases.get(key, key)
    if key in prof.unavailable:
        raise IllegalIndexTypeError(f"{key} is not available on {prof.title}: {prof.unavailable[key]}")
    if key not in prof.indexes:
        raise IllegalIndexTypeError(
            f"unknown index type {show_value(index_type)}; allowed: {', '.join(prof.indexes)}")
    return prof.indexes[key]


def native_index_name(index_type: Any, metric: Any, *, profile: Any = DEFAULT_PROFILE) -> str:
    """The index type's name as the target spells it (Milvus 2.3: BIN_IVF_FLAT on a binary metric)."""
    prof = get_profile(profile)
    index_spec = get_index(index_type, profile=prof)
    if prof.binary_prefix and is_binary_metric(normalize_metric(metric, profile=prof)):
        return prof.binary_prefix + index_spec.name
    return index_spec.name


def normalize_metric(metric: Any, *, profile: Any = DEFAULT_PROFILE) -> str:
    """A metric name (any case) or MetricType member as its upper-case name, if the target has it."""
    prof = get_profile(profile)
    name = _name_of(metric)
    if name is None or name.upper() not in ALL_METRICS:
        raise IllegalMetricError(f"unknown metric_type {show_value(metric)}; allowed: {', '.join(prof.metrics)}")
    name = name.upper()
    if name not in prof.metrics:
        raise IllegalMetricError(f"metric_type {name} is not available on {prof.title}{_metric_why(prof, name)}; "
                                 f"allowed: {', '.join(prof.metrics)}")
    return name


def metric_name(metric: Any) -> str:
    """The upper-case name of a metric some profile has (COSINE: Milvus 2.3's); IllegalMetricError otherwise.
    For data that is not on a target yet (a lab dataset): the target's profile checks it when it is."""
    name = _name_of(metric)
    if name is None or name.upper() not in ALL_METRICS:
        raise IllegalMetricError(f"unknown metric_type {show_value(metric)}; allowed: {', '.join(ALL_METRICS)}")
    return name.upper()


def profile_for_metric(metric: Any) -> str:
    """The default profile if it has ``metric``, else the first profile that does (COSINE: Milvus 2.3's): the
    rules of an in-memory engine made for data of that metric."""
    name = metric_name(metric)
    return next((key for key, prof in PROFILES.items() if name in prof.metrics), DEFAULT_PROFILE)


def _metric_why(prof: Profile, metric: str) -> str:
    why = prof.unavailable_metrics.get(metric)
    return f": {why}" if why else ""


def index_types_for_metric(metric: Any, *, profile: Any = DEFAULT_PROFILE) -> list[str]:
    """Index types a collection with ``metric`` accepts on the target, in declaration order."""
    prof = get_profile(profile)
    name = _name_of(metric)
    name = name.upper() if name is not None else None
    return [key for key, index_spec in prof.indexes.items() if name in index_spec.metrics]


def check_index_metric(spec: IndexSpec, metric: Any, *, profile: Any = DEFAULT_PROFILE) -> None:
    name = _name_of(metric)
    if name is None or name.upper() not in spec.metrics:
        allowed = index_types_for_metric(metric, profile=profile)
        raise IllegalIndexTypeError(
            f"{spec.name} is not available for metric {show_value(name or metric)}; index types for "
            f"{show_value(name or metric)}: {', '.join(allowed) or 'none'}")


def bounds(param: IntParam, ctx: Mapping[str, Any] | None = None) -> tuple[int | None, int | None]:
    """The effective (low, high) of a parameter in context (None: unbounded or not yet known)."""
    ctx = _as_ctx(ctx)
    return _tightest(param.low, ctx, max), _tightest(param.high, ctx, min)


def allowed_values(param: IntParam, ctx: Mapping[str, Any] | None = None) -> list[int] | None:
    """For parameters with a finite choice set (IVF_PQ ``m``), the values allowed in context."""
    if param.choices is None:
        return None
    ctx = _as_ctx(ctx)
    low, high = bounds(param, ctx)
    return [v for v in param.choices
            if (low is None or v >= low) and (high is None or v <= high)
            and (param.allowed_if is None or param.allowed_if(v, ctx) is None)]


def _nothing_allowed(param: IntParam, ctx: Mapping[str, Any], index_name: str = "") -> str | None:
    """'no m is allowed for dimension 50, so IVF_PQ cannot index this data' when the choice set is empty."""
    values = allowed_values(param, ctx)
    if values is None or values:
        return None
    dim = as_int(ctx.get("dim"))
    where = f" for dimension {show_value(dim)}" if dim is not None else " here"
    text = f"no {param.name} is allowed{where}"
    return text + (f", so {index_name} cannot index this data" if index_name else f" ({param.rule_help})")


def describe_allowed(param: IntParam, ctx: Mapping[str, Any] | None = None) -> str:
    """What is allowed, in words, resolved in context where possible: '1 <= nlist <= 65536'."""
    ctx = _as_ctx(ctx)
    if param.choices is not None:
        nothing = _nothing_allowed(param, ctx)
        if nothing:
            return nothing
        values = allowed_values(param, ctx)
        text = f"{param.name} in {{{', '.join(map(str, values))}}}"
        rules = [param.rule_help] if param.rule_help else []
        if sorted(values) != sorted(param.choices):  # narrowed by the context: say the set it was taken from
            rules.insert(0, f"{param.name} in {{{', '.join(map(str, sorted(param.choices)))}}}")
        return text + (f" (both: {'; and '.join(rules)})" if len(rules) > 1 else f" ({rules[0]})" if rules else "")
    low, high = bounds(param, ctx)
    low_s = show_value(low) if low is not None else _describe_bound(param.low)
    if param.high is None:
        text = f"{param.name} >= {low_s}" if param.cap is None else f"{low_s} <= {param.name} <= {param.cap}"
    else:
        high_s = show_value(high) if high is not None else _describe_bound(param.high)
        text = f"{low_s} <= {param.name} <= {high_s}"
        if low is not None and high is not None and low > high:
            text = f"no value ({param.name} must satisfy {low_s} <= {param.name} <= {high_s})"
    notes = []
    if param.special:
        text = " or ".join([f"{param.name} = {s}" for s in param.special] + [text])
        notes.append(param.special_help)
    else:
        notes.append(param.rule_help)
    if param.cap is not None:
        notes.append(param.cap_help)
    notes = [note for note in notes if note]
    return text + (f" ({'; '.join(notes)})" if notes else "")


def check_value(index_name: str, param: IntParam, value: Any, ctx: Mapping[str, Any] | None) -> int:
    """Validate one value; raise ``param.error`` naming the parameter, the value and what is allowed.

    Returns the value as a plain int. Never raises anything but a MilvusLabError."""
    name = plain_str(index_name)
    where = f"{name}: " if name else ""
    ctx = _as_ctx(ctx)

    def refuse(text: str) -> MilvusLabError:
        return param.error(f"{where}{text}", param.code)

    number = as_int(value)
    if number is None:
        raise refuse(f"{param.name}={show_value(value)} is not an integer; "
                     + (_nothing_allowed(param, ctx, name or "") or f"allowed: {describe_allowed(param, ctx)}"))
    if number in param.special:
        return number
    low, high = bounds(param, ctx)
    if (low is not None and number < low) or (high is not None and number > high) or \
            (param.cap is not None and number > param.cap):
        raise refuse(f"{param.name}={show_value(number)} is out of range; "
                     + (_nothing_allowed(param, ctx, name or "") or f"allowed: {describe_allowed(param, ctx)}"))
    problem = param.allowed_if(number, ctx) if param.allowed_if is not None else None
    if problem:
        raise refuse(problem)
    if param.choices is not None and number not in param.choices:
        raise refuse(f"{param.name}={number} is not allowed; "
                     + (_nothing_allowed(param, ctx, name or "") or f"allowed: {describe_allowed(param, ctx)}"))
    return number


def _check_names(index_name: str, declared: Mapping[str, IntParam], params: Mapping[str, Any],
                 what: str) -> None:
    unknown = sorted(set(params) - set(declared))
    missing = [name for name in declared if name not in params]
    allowed = ", ".join(declared) if declared else "none"
    if unknown:
        raise InvalidParameterError(
            f"{index_name}: unknown {what} parameter(s) {', '.join(show_value(u) for u in unknown)}; "
            f"{index_name} takes: {allowed}")
    if missing:
        raise InvalidParameterError(
            f"{index_name}: missing {what} parameter(s) {', '.join(missing)}; {index_name} takes: {allowed} "
            f"(all are required)")


def validate_build(index_type: Any, params: Mapping[str, Any] | None, *, dim: Any, metric: Any,
                   warn: bool = True, profile: Any = DEFAULT_PROFILE) -> tuple[IndexSpec, dict[str, int]]:
    """Check build parameters of ``index_type`` for a collection of ``dim`` and ``metric`` on the target.

    Returns the spec and a clean dict of ints. FLAT ignores any parameters (as Milvus did) and warns.
    Values inside the allowed range but outside the documented recommendation give a RecommendationWarning.
    """
    prof = get_profile(profile)
    spec = get_index(index_type, profile=prof)
    metric = normalize_metric(metric, profile=prof)
    dim = validate_dimension(dim, metric, profile=prof)
    check_index_metric(spec, metric, profile=prof)
    given = _param_dict(params, "index params")
    if spec.is_flat:
        if given and warn:
            shown = ", ".join(f"{k!r}: {show_value(v)}" for k, v in given.items())
            warnings.warn(f"FLAT takes no parameters; ignoring {{{shown}}}", IgnoredParameterWarning, stacklevel=3)
        return spec, {}
    _check_names(spec.name, spec.build, given, "build")
    ctx: dict[str, Any] = {"dim": dim, "metric": metric}
    for name, value in given.items():  # type checks first so Ref bounds resolve to ints
        number = as_int(value)
        if number is None:
            check_value(spec.name, spec.build[name], value, ctx)
        ctx[name] = number
    own = {"dim": dim, "metric": metric}
    for name, param in spec.build.items():  # each value in its own range before the rules between them, so
        check_value(spec.name, param, given[name], own)  # candidate_pool_size=-2**31 is blamed, not search_length
    clean = {name: check_value(spec.name, param, given[name], ctx) for name, param in spec.build.items()}
    if warn:
        for text in recommendation_warnings(spec, clean):
            warnings.warn(text, RecommendationWarning, stacklevel=3)
    return spec, clean


def recommendation_warnings(spec: IndexSpec, params: Mapping[str, Any]) -> list[str]:
    """Sentences for valid values outside the documented advice (recommended ranges, knng = out_degree + 20)."""
    clean = {name: number for name, value in _param_dict(params, "build params").items()
             if (number := as_int(value)) is not None}
    out = []
    for name, param in spec.build.items():
        if param.recommended and name in clean:
            lo, hi = param.recommended
            if not lo <= clean[name] <= hi:
                out.append(f"{spec.name}: {name}={show_value(clean[name])} is allowed but outside the "
                           f"recommended range [{lo}, {hi}]")
    return out + spec.advice(clean)


def validate_top_k(top_k: Any, *, profile: Any = DEFAULT_PROFILE) -> int:
    """top_k as an int: ParamError if it is not an int (pymilvus does), IllegalTopKError if out of range."""
    if type(top_k) is int and TOP_K[0] <= top_k <= TOP_K[1] and (profile is DEFAULT_PROFILE
                                                                 or profile is PROFILES[DEFAULT_PROFILE]):
        return top_k  # the hot path
    param = get_profile(profile).top_k
    if as_int(top_k) is None:
        raise ParamError(f"top_k must be an int; got {show_value(top_k)} ({type(top_k).__name__}); "
                         f"allowed: {describe_allowed(param)}")
    return check_value("", param, top_k, {})


def search_context(top_k: Any, build_params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The context search parameters are checked in: top_k and the built index's parameters."""
    return {**_param_dict(build_params, "build_params"), "top_k": top_k}


def validate_search(index_type: Any, params: Mapping[str, Any] | None, *, top_k: Any,
                    build_params: Mapping[str, Any] | None, profile: Any = DEFAULT_PROFILE) -> dict[str, int]:
    """Check search parameters against the collection's index type and its built parameters.

    FLAT ignores search parameters (returns {}); any other index requires its own and refuses others'.
    """
    prof = get_profile(profile)
    spec = get_index(index_type, profile=prof)
    top_k = validate_top_k(top_k, profile=prof)
    if params is not None and not isinstance(params, Mapping):
        raise ParamError(f"search params must be a dict or None; got {type(params).__name__}")
    given = _param_dict(params, "search params")
    if spec.is_flat:
        return {}
    unknown = sorted(set(given) - set(spec.search))
    if unknown:
        raise InvalidParameterError(
            f"{', '.join(show_value(u) for u in unknown)} is not a search parameter of the collection's index "
            f"{spec.name}; {spec.name} takes: {', '.join(spec.search)}")
    ctx = search_context(top_k, build_params)
    missing = [name for name in spec.search if name not in given]
    if missing:
        raise InvalidParameterError(
            f"{spec.name}: missing search parameter {', '.join(missing)}; e.g. params="
            f"{ {n: p.default for n, p in spec.search.items()} }; allowed: "
            + "; ".join(describe_allowed(p, ctx) for p in spec.search.values()))
    return {name: check_value(spec.name, param, given[name], ctx) for name, param in spec.search.items()}


def validate_dimension(dimension: Any, metric: Any, *, profile: Any = DEFAULT_PROFILE) -> int:
    """dimension as an int: ParamError if not an int, IllegalDimensionError if out of range (or not a
    multiple of 8 for a binary metric)."""
    prof = get_profile(profile)
    if as_int(dimension) is None:
        raise ParamError(f"dimension must be an int; got {show_value(dimension)}; "
                         f"allowed: {describe_allowed(prof.dimension)}")
    return check_value("", prof.dimension, dimension, {"metric": normalize_metric(metric, profile=prof)})


def validate_index_file_size(size: Any, *, profile: Any = DEFAULT_PROFILE) -> int:
    """index_file_size (MB) as an int: ParamError if not an int, InvalidParameterError if out of range."""
    prof = get_profile(profile)
    if as_int(size) is None:
        raise ParamError(f"index_file_size must be an int (MB); got {show_value(size)}; "
                         f"allowed: {describe_allowed(prof.index_file_size)}")
    return check_value("", prof.index_file_size, size, {})


# --------------------------------------------------------------------------------------------------
# Will this index work here, and will this segment be indexed?
# --------------------------------------------------------------------------------------------------
def _valid_values(param: IntParam, ctx: Mapping[str, Any]) -> list[int] | None:
    """Every value allowed in context for a param with choices or a cross-rule (None: not enumerable)."""
    values = allowed_values(param, ctx)
    if values is not None or param.allowed_if is None:
        return values
    low, high = bounds(param, ctx)
    if low is None or high is None or high - low > 2 * DIMENSION[1]:
        return None
    return [v for v in range(low, high + 1) if param.allowed_if(v, ctx) is None]


def unavailable_reason(index_type: Any, *, dim: Any, metric: Any, profile: Any = DEFAULT_PROFILE,
                       rows: Any = None) -> str | None:
    """None when ``index_type`` can be used on the target for data of this dim and metric (and ``rows``,
    if given, with its default parameters); otherwise one sentence saying why not."""
    prof = get_profile(profile)
    name = _name_of(index_type)
    key = prof.aliases.get(name.upper(), name.upper()) if name else None
    if key in prof.unavailable:
        return f"{key} is not available on {prof.title}: {prof.unavailable[key]}"
    index_spec = get_index(index_type, profile=prof)
    metric_name = _name_of(metric)
    if metric_name is not None and metric_name.upper() in ALL_METRICS and metric_name.upper() not in prof.metrics:
        return f"metric {metric_name.upper()} is not available on {prof.title}{_metric_why(prof, metric_name.upper())}"
    metric = normalize_metric(metric, profile=prof)
    dim = validate_dimension(dim, metric, profile=prof)
    if metric not in index_spec.metrics:
        others = ", ".join(index_types_for_metric(metric, profile=prof))
        return (f"{index_spec.name} does not support metric {metric} on {prof.title}; index types for "
                f"{metric}: {others}")
    for pname, param in index_spec.build.items():
        if _valid_values(param, {"dim": dim, "metric": metric}) != []:
            continue
        nearest = [d for d in (_nearest_dim(param, dim, metric, -1), _nearest_dim(param, dim, metric, 1))
                   if d is not None]
        return (f"{index_spec.name} cannot index {dim}-dimensional vectors: no {pname} is allowed for dimension "
                f"{dim} ({param.rule_help})"
                + (f"; dimensions {' or '.join(map(str, nearest))} would allow it" if nearest else ""))
    if rows is not None:
        count = as_int(rows)
        if count is None or count < 0:
            raise ParamError(f"rows must be a non-negative int; got {show_value(rows)}")
        defaults = default_build_params(index_spec.name, dim, profile=prof)
        need = index_spec.min_rows(defaults)
        if count < need:
            return (f"{index_spec.name} needs at least {_count(need)} rows to train with its default parameters "
                    f"({index_spec.min_rows_help}); the data has {_count(count)}")
    return None


def _nearest_dim(param: IntParam, dim: int, metric: str, step: int) -> int | None:
    d = dim + step
    while DIMENSION[0] <= d <= min(DIMENSION[1], 2 * dim):
        if _valid_values(param, {"dim": d, "metric": metric}):
            return d
        d += step
    return None


def segment_raw_reason(index_type: Any, params: Mapping[str, Any] | None, rows: Any, *, build_threshold: Any,
                       profile: Any = DEFAULT_PROFILE) -> str | None:
    """Will a segment of ``rows`` rows be indexed with these build params? None: yes (and always for FLAT);
    otherwise why it stays raw (below the build threshold, too few rows to train, or more rows than the
    library can number: ``IndexSpec.max_rows``)."""
    index_spec = get_index(index_type, profile=profile)
    count, threshold = as_int(rows), as_int(build_threshold)
    if count is None or count < 0:
        raise ParamError(f"rows must be a non-negative int; got {show_value(rows)}")
    if threshold is None or threshold < 0:
        raise ParamError(f"build_threshold must be a non-negative int; got {show_value(build_threshold)}")
    if index_spec.is_flat:
        return None
    if count < threshold:
        return f"{_count(count)} rows is below the build threshold of {_count(threshold)} rows"
    need = index_spec.min_rows(_param_dict(params, "build params"))
    if count < need:
        return (f"{_count(count)} rows is fewer than {index_spec.name} needs to train "
                f"({index_spec.min_rows_help}: {_count(need)})")
    return index_spec.too_many_rows(count)


# --------------------------------------------------------------------------------------------------
# Teaching defaults, sweeps and the docs table
# --------------------------------------------------------------------------------------------------
def format_params(params: Mapping[str, Any] | None) -> str:
    """{'nlist': 1024, 'nprobe': 16} -> 'nlist=1024, nprobe=16' ('' for none): the one parameter formatter."""
    return ", ".join(f"{name}={show_value(value)}" for name, value in _param_dict(params, "params").items())


def default_build_params(index_type: Any, dim: Any = None, *, profile: Any = DEFAULT_PROFILE) -> dict[str, int]:
    """Teaching defaults, adjusted only where a rule forces it (IVF_PQ ``m`` nearest allowed for ``dim``).

    Raises InvalidParameterError when no value is valid (IVF_PQ on a dimension that admits no ``m``)."""
    prof = get_profile(profile)
    spec = get_index(index_type, profile=prof)
    if dim is not None:
        dim = validate_dimension(dim, "L2", profile=prof)
    out = {}
    for name, param in spec.build.items():
        value = param.default
        ctx = {"dim": dim}
        if dim is not None and (param.choices is not None or param.allowed_if is not None):
            allowed = _valid_values(param, ctx)
            if allowed == []:
                raise InvalidParameterError(f"{spec.name}: " + (_nothing_allowed(param, ctx, spec.name)
                                                                  or f"no {name} is allowed for dimension {dim}"))
            if allowed and value not in allowed:
                value = min(allowed, key=lambda v: (abs(math.log(v / param.default)), v))
        out[name] = value
    return out


def default_search_params(index_type: Any, top_k: Any = 10, build_params: Mapping[str, Any] | None = None, *,
                          profile: Any = DEFAULT_PROFILE) -> dict[str, int]:
    """Teaching defaults for search parameters, moved inside the bounds of this top_k and built index."""
    prof = get_profile(profile)
    spec = get_index(index_type, profile=prof)
    ctx = search_context(validate_top_k(top_k, profile=prof), build_params)
    out = {}
    for name, param in spec.search.items():
        value = param.default
        if value not in param.special:
            low, high = bounds(param, ctx)
            if low is not None:
                value = max(value, low)
            if high is not None:
                value = min(value, high)
        out[name] = value
    return out


def effective_value(param: IntParam, value: Any, ctx: Mapping[str, Any] | None = None) -> int:
    """The value the library really uses for ``value`` (checked first): RNSG search_length below top_k is
    searched with top_k, as faiss NSG does. Backends use this so that forms can say so."""
    number = check_value("", param, value, ctx)
    if param.used_at_least is None or number in param.special:
        return number
    floor = _tightest(param.used_at_least, _as_ctx(ctx), max)
    return number if floor is None else max(number, floor)


def sweep_range(param: IntParam, ctx: Mapping[str, Any] | None = None) -> tuple[int | None, int | None]:
    """Where a sweep of ``param`` starts and stops in context (``sweep_start`` / ``sweep_stop``; None:
    the bounds). ANNOY search_k starts at n_trees * top_k and stops at n_trees * rows (ctx ``rows``)."""
    ctx = _as_ctx(ctx)
    start = _tightest(param.sweep_start, ctx, max)
    stop = _tightest(param.sweep_stop, ctx, min)
    if stop is not None and param.cap is not None:
        stop = min(stop, param.cap)
    if start is not None and stop is not None:
        stop = max(stop, start)
    return start, stop


def sweep_values(param: IntParam, ctx: Mapping[str, Any] | None = None, *, start: int | None = None,
                 stop: int | None = None, points: int = 8) -> list[int]:
    """A default grid for a parameter inside its bounds: doubling ("log2") or evenly spaced ("linear")."""
    ctx = _as_ctx(ctx)
    for what, given in (("start", start), ("stop", stop), ("points", points)):
        if given is not None and as_int(given) is None:
            raise ParamError(f"sweep {what} must be an int; got {show_value(given)}")
    start, stop, points = (None if v is None else as_int(v) for v in (start, stop, points))
    points = max(1, min(points or 8, 64))
    values = allowed_values(param, ctx)
    if values is not None:
        return values
    low, high = bounds(param, ctx)
    lo = max(low if low is not None else 1, start if start is not None else (low or 1), 1)
    hi = stop if stop is not None else high
    if hi is None:
        hi = lo * 2 ** (points - 1)
    if high is not None:
        hi = min(hi, high)
    if param.cap is not None:
        hi = min(hi, param.cap)
    if hi < lo:
        return []
    if param.sweep == "log2":
        out, v = [], lo
        while v < hi:
            out.append(v)
            v *= 2
        out.append(hi)
    else:
        step = max(1, (hi - lo) // max(1, points - 1))
        out = list(range(lo, hi, step)) + [hi]
    return sorted(set(out))


def parameter_table(*, profile: Any = DEFAULT_PROFILE) -> list[dict[str, str]]:
    """One row per parameter: index type, stage, parameter, allowed, recommended, default, help."""
    rows = []
    for spec in get_profile(profile).indexes.values():
        if spec.is_flat:
            rows.append({"index_type": "FLAT", "stage": "-", "parameter": "(none)", "allowed": "-",
                         "recommended": "-", "default": "-", "help": spec.description})
        for stage, params in (("build", spec.build), ("search", spec.search)):
            for name, param in params.items():
                rows.append({
                    "index_type": spec.name, "stage": stage, "parameter": name,
                    "allowed": describe_allowed(param),
                    "recommended": (f"[{param.recommended[0]}, {param.recommended[1]}]" if param.recommended
                                    else param.advice_help),
                    "default": str(param.default), "help": param.help,
                })
    return rows


def parameter_table_markdown(*, profile: Any = DEFAULT_PROFILE) -> str:
    rows = parameter_table(profile=profile)
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r[c].replace("|", "\\|") for c in cols) + " |" for r in rows]
    return "\n".join(lines)
