"""Every index type, parameter, range, cross-rule, search parameter and metric, declared once.

The engine validates with :func:`validate_build` / :func:`validate_search`; the widget forms read
:func:`bounds` and :func:`allowed_values`; the lab's sweeps read ``default`` and ``sweep``; the docs
render :func:`parameter_table`. No other module states a range.

A bound is either a number or a :class:`Ref` to a value known only in context: ``top_k`` of a search,
the ``nlist`` the index was built with, another build parameter (RNSG ``search_length`` <
``candidate_pool_size``), or the collection's dimension.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any, Callable, Iterable, Mapping

from .errors import (
    IllegalDimensionError,
    IllegalIndexTypeError,
    IllegalMetricError,
    IllegalTopKError,
    InvalidParameterError,
    ParamError,
    RecommendationWarning,
    StatusCode,
)

# --------------------------------------------------------------------------------------------------
# Metrics and collection-level limits
# --------------------------------------------------------------------------------------------------
FLOAT_METRICS = ("L2", "IP")
BINARY_METRICS = ("HAMMING", "JACCARD", "TANIMOTO", "SUBSTRUCTURE", "SUPERSTRUCTURE")
ALL_METRICS = FLOAT_METRICS + BINARY_METRICS
#: metrics whose best hit has the largest score (results descend); all others ascend.
DESCENDING_METRICS = frozenset({"IP"})

DIMENSION = (1, 32768)
BINARY_DIMENSION_MULTIPLE = 8
INDEX_FILE_SIZE_MB = (1, 4096)
DEFAULT_INDEX_FILE_SIZE_MB = 1024
TOP_K = (1, 16384)
NAME_MAX_LENGTH = 255
#: rows a segment needs before any index is built on it (Milvus 0.10's build_index_threshold)
DEFAULT_BUILD_THRESHOLD = 4096
#: int64 ids, non-negative (-1 pads missing hits)
ID_RANGE = (0, 2**63 - 1)


def is_binary_metric(metric: str) -> bool:
    return metric in BINARY_METRICS


# --------------------------------------------------------------------------------------------------
# Declarative parameter model
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ref:
    """A bound known only in context, e.g. ``Ref("top_k")`` or ``Ref("candidate_pool_size", -1)``."""

    name: str
    offset: int = 0

    def resolve(self, ctx: Mapping[str, Any]) -> int | None:
        value = ctx.get(self.name)
        return None if value is None else int(value) + self.offset

    def describe(self) -> str:
        if self.offset == 0:
            return self.name
        return f"{self.name} {'+' if self.offset > 0 else '-'} {abs(self.offset)}"


Bound = "int | Ref"


@dataclass(frozen=True)
class IntParam:
    """An integer parameter: ``low``/``high`` are each an int, a Ref, or a tuple of them (the tightest
    one that resolves applies). ``choices`` restricts to a set; ``special`` values are allowed besides
    the range (ANNOY ``search_k=-1``); ``allowed_if`` is a cross-rule on the value given the context."""

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
    allowed_if: Callable[[int, Mapping[str, Any]], str | None] | None = None
    rule_help: str = ""
    code: StatusCode = StatusCode.ILLEGAL_ARGUMENT
    #: how a default sweep walks the parameter: "log2" doubles, "linear" steps
    sweep: str = "log2"


@dataclass(frozen=True)
class IndexSpec:
    name: str
    backend: str
    metrics: tuple[str, ...]
    build: Mapping[str, IntParam]
    search: Mapping[str, IntParam]
    description: str
    #: fewest rows a segment needs to train this index with these params (beyond the build threshold)
    min_rows: Callable[[Mapping[str, int]], int] = lambda params: 1
    min_rows_help: str = ""
    #: advice that is not a rule: returns warning sentences for valid params
    advice: Callable[[Mapping[str, int]], list[str]] = lambda params: []
    notes: str = ""
    binary_metrics: tuple[str, ...] = field(default=())

    @property
    def is_flat(self) -> bool:
        return self.name == "FLAT"


def _tightest(bound: Any, ctx: Mapping[str, Any], pick: Callable[[Iterable[int]], int]) -> int | None:
    items = bound if isinstance(bound, tuple) else (bound,)
    values = []
    for item in items:
        if item is None:
            continue
        value = item.resolve(ctx) if isinstance(item, Ref) else int(item)
        if value is not None:
            values.append(value)
    return pick(values) if values else None


def _describe_bound(bound: Any) -> str:
    items = bound if isinstance(bound, tuple) else (bound,)
    parts = [item.describe() if isinstance(item, Ref) else str(item) for item in items if item is not None]
    return parts[0] if len(parts) == 1 else "min(" + ", ".join(parts) + ")"


# --------------------------------------------------------------------------------------------------
# IVF_PQ: m against the dimension (the reference's section 2)
# --------------------------------------------------------------------------------------------------
PQ_M_CHOICES = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)
PQ_SUBVECTOR_DIMS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 28, 32)
PQ_MIN_TRAIN_ROWS = 256  # 8-bit codes: 256 centroids per sub-quantizer


def pq_allowed_m(dim: int) -> list[int]:
    """The ``m`` values IVF_PQ accepts for vectors of dimension ``dim`` (empty: no IVF_PQ at all)."""
    return [m for m in PQ_M_CHOICES if dim % m == 0 and dim // m in PQ_SUBVECTOR_DIMS]


def _pq_m_rule(m: int, ctx: Mapping[str, Any]) -> str | None:
    dim = ctx.get("dim")
    if dim is None:
        return None
    allowed = pq_allowed_m(dim)
    if m in allowed:
        return None
    if dim % m:
        reason = f"m={m} does not divide dimension {dim}"
    else:
        reason = (f"m={m} gives sub-vectors of {dim // m} dimensions; allowed sub-vector sizes: "
                  f"{', '.join(map(str, PQ_SUBVECTOR_DIMS))}")
    if not allowed:
        return f"{reason}; no m is allowed for dimension {dim}, so IVF_PQ cannot index this data"
    return f"{reason}; allowed m for dim {dim}: {', '.join(map(str, allowed))}"


# --------------------------------------------------------------------------------------------------
# The index types (the reference's sections 2 and 3)
# --------------------------------------------------------------------------------------------------
def _nlist(default: int = 1024) -> IntParam:
    return IntParam("nlist", 1, 65536, default, "number of IVF cells (k-means centroids)",
                    code=StatusCode.ILLEGAL_NLIST)


_NPROBE = IntParam("nprobe", 1, Ref("nlist"), 16, "IVF cells visited per query (more: higher recall, slower)",
                   rule_help="nprobe <= nlist of the built index")

_IVF_MIN_ROWS_HELP = "a segment needs at least nlist rows to train the k-means cells"


def _rnsg_advice(params: Mapping[str, int]) -> list[str]:
    out = []
    if "knng" in params and "out_degree" in params and params["knng"] != params["out_degree"] + 20:
        out.append(f"RNSG: the docs recommend knng = out_degree + 20 (= {params['out_degree'] + 20}); "
                   f"got knng={params['knng']}")
    return out


INDEXES: dict[str, IndexSpec] = {
    "FLAT": IndexSpec(
        name="FLAT", backend="faiss", metrics=ALL_METRICS, build={}, search={},
        description="exact (brute-force) search; the default of every collection",
    ),
    "IVF_FLAT": IndexSpec(
        name="IVF_FLAT", backend="faiss", metrics=FLOAT_METRICS + ("HAMMING", "JACCARD", "TANIMOTO"),
        build={"nlist": _nlist()}, search={"nprobe": _NPROBE},
        description="inverted file: k-means cells, full vectors stored per cell",
        min_rows=lambda p: p["nlist"], min_rows_help=_IVF_MIN_ROWS_HELP,
        notes="On JACCARD/TANIMOTO the cells are chosen by Hamming distance and candidates re-ranked exactly.",
    ),
    "IVF_SQ8": IndexSpec(
        name="IVF_SQ8", backend="faiss", metrics=FLOAT_METRICS,
        build={"nlist": _nlist()}, search={"nprobe": _NPROBE},
        description="inverted file with 8-bit scalar quantization (4x smaller than IVF_FLAT)",
        min_rows=lambda p: p["nlist"], min_rows_help=_IVF_MIN_ROWS_HELP,
    ),
    "IVF_SQ8H": IndexSpec(
        name="IVF_SQ8H", backend="faiss", metrics=FLOAT_METRICS,
        build={"nlist": _nlist()}, search={"nprobe": _NPROBE},
        description="Milvus: IVF_SQ8 with GPU/CPU hybrid search; here IVF_SQ8 on the CPU, same results",
        min_rows=lambda p: p["nlist"], min_rows_help=_IVF_MIN_ROWS_HELP,
        notes="Milvus runs the coarse quantizer on a GPU; milvus_lab has no GPU and builds IVF_SQ8.",
    ),
    "IVF_PQ": IndexSpec(
        name="IVF_PQ", backend="faiss", metrics=FLOAT_METRICS,
        build={"nlist": _nlist(),
               "m": IntParam("m", 1, 96, 8, "sub-quantizers: each vector is stored in m bytes",
                             choices=PQ_M_CHOICES, allowed_if=_pq_m_rule,
                             rule_help="dim % m == 0 and dim / m in {"
                             + ", ".join(map(str, PQ_SUBVECTOR_DIMS)) + "}")},
        search={"nprobe": _NPROBE},
        description="inverted file with product quantization: m bytes per vector, 8 bits per code",
        min_rows=lambda p: max(p["nlist"], PQ_MIN_TRAIN_ROWS),
        min_rows_help=f"a segment needs at least max(nlist, {PQ_MIN_TRAIN_ROWS}) rows to train",
    ),
    "RNSG": IndexSpec(
        name="RNSG", backend="faiss", metrics=FLOAT_METRICS,
        build={
            "search_length": IntParam("search_length", 10, (300, Ref("candidate_pool_size", -1)), 45,
                                      "candidate list while building the graph",
                                      recommended=(40, 80), sweep="linear",
                                      rule_help="search_length < candidate_pool_size"),
            "out_degree": IntParam("out_degree", 5, 300, 50, "maximum edges per node", sweep="linear"),
            "candidate_pool_size": IntParam("candidate_pool_size", 50, 1000, 300,
                                            "candidates considered when pruning edges",
                                            recommended=(200, 500), sweep="linear"),
            "knng": IntParam("knng", 5, 300, 70, "neighbours in the initial k-NN graph",
                             sweep="linear", advice_help="knng = out_degree + 20"),
        },
        search={"search_length": IntParam("search_length", 10, 300, 50,
                                          "candidate list while searching (more: higher recall, slower)",
                                          sweep="linear")},
        description="navigating spreading-out graph (faiss NSG), one search list per query",
        min_rows=lambda p: max(p["knng"], p["search_length"]) + 1,
        min_rows_help="a segment needs more distinct rows than knng and the build search_length",
        advice=_rnsg_advice,
    ),
    "HNSW": IndexSpec(
        name="HNSW", backend="hnswlib", metrics=FLOAT_METRICS,
        build={"M": IntParam("M", 4, 64, 16, "graph degree (edges per node per layer)"),
               "efConstruction": IntParam("efConstruction", 8, 512, 200, "candidate list while building")},
        search={"ef": IntParam("ef", Ref("top_k"), 4096, 64,
                               "candidate list while searching (more: higher recall, slower)",
                               rule_help="ef >= top_k")},
        description="hierarchical navigable small-world graph (hnswlib)",
    ),
    "ANNOY": IndexSpec(
        name="ANNOY", backend="annoy", metrics=FLOAT_METRICS,
        build={"n_trees": IntParam("n_trees", 1, 1024, 16, "random-projection trees (more: higher recall, "
                                   "more memory)")},
        search={"search_k": IntParam("search_k", Ref("top_k"), None, -1,
                                     "tree nodes inspected per query (more: higher recall, slower)",
                                     special=(-1,), special_help="-1 means n_trees * top_k",
                                     rule_help="search_k = -1 or search_k >= top_k")},
        description="forest of random-projection trees (annoy)",
    ),
}

INDEX_TYPES: tuple[str, ...] = tuple(INDEXES)
#: aliases accepted wherever an index type name is
INDEX_ALIASES = {"IVFLAT": "IVF_FLAT", "IVF_SQ8_H": "IVF_SQ8H", "NSG": "RNSG"}


# --------------------------------------------------------------------------------------------------
# Lookup helpers
# --------------------------------------------------------------------------------------------------
def get_index(index_type: Any) -> IndexSpec:
    """The spec of an index type given as a name (any case, aliases allowed) or an IndexType member."""
    name = getattr(index_type, "name", index_type)
    if not isinstance(name, str) or not name:
        raise ParamError(f"index_type must be one of {', '.join(INDEX_TYPES)}; got {index_type!r}")
    key = INDEX_ALIASES.get(name.upper(), name.upper())
    if key not in INDEXES:
        raise IllegalIndexTypeError(
            f"unknown index type {index_type!r}; allowed: {', '.join(INDEX_TYPES)}")
    return INDEXES[key]


def normalize_metric(metric: Any) -> str:
    name = getattr(metric, "name", metric)
    if not isinstance(name, str) or name.upper() not in ALL_METRICS:
        raise IllegalMetricError(f"unknown metric_type {metric!r}; allowed: {', '.join(ALL_METRICS)}")
    return name.upper()


def index_types_for_metric(metric: str) -> list[str]:
    """Index types a collection with ``metric`` accepts, in declaration order."""
    return [name for name, spec in INDEXES.items() if metric in spec.metrics]


def check_index_metric(spec: IndexSpec, metric: str) -> None:
    if metric not in spec.metrics:
        allowed = index_types_for_metric(metric)
        raise IllegalIndexTypeError(
            f"{spec.name} is not available for metric {metric}; index types for {metric}: "
            f"{', '.join(allowed)}")


def bounds(param: IntParam, ctx: Mapping[str, Any] | None = None) -> tuple[int | None, int | None]:
    """The effective (low, high) of a parameter in context (None: unbounded or not yet known)."""
    ctx = ctx or {}
    return _tightest(param.low, ctx, max), _tightest(param.high, ctx, min)


def allowed_values(param: IntParam, ctx: Mapping[str, Any] | None = None) -> list[int] | None:
    """For parameters with a finite choice set (IVF_PQ ``m``), the values allowed in context."""
    if param.choices is None:
        return None
    ctx = ctx or {}
    low, high = bounds(param, ctx)
    return [v for v in param.choices
            if (low is None or v >= low) and (high is None or v <= high)
            and (param.allowed_if is None or param.allowed_if(v, ctx) is None)]


def describe_allowed(param: IntParam, ctx: Mapping[str, Any] | None = None) -> str:
    """What is allowed, in words, resolved in context where possible: '1 <= nlist <= 65536'."""
    ctx = ctx or {}
    if param.choices is not None:
        values = allowed_values(param, ctx)
        text = f"{param.name} in {{{', '.join(map(str, values))}}}"
        if param.rule_help:
            text += f" ({param.rule_help})"
        return text
    low, high = bounds(param, ctx)
    low_s = str(low) if low is not None else _describe_bound(param.low)
    if param.high is None:
        text = f"{param.name} >= {low_s}"
    else:
        high_s = str(high) if high is not None else _describe_bound(param.high)
        text = f"{low_s} <= {param.name} <= {high_s}"
        if low is not None and high is not None and low > high:
            text = f"no value ({param.name} must satisfy {low_s} <= {param.name} <= {high_s})"
    if param.special:
        text = " or ".join([f"{param.name} = {s}" for s in param.special] + [text])
        if param.special_help:
            text += f" ({param.special_help})"
    elif param.rule_help:
        text += f" ({param.rule_help})"
    return text


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_value(index_name: str, param: IntParam, value: Any, ctx: Mapping[str, Any]) -> int:
    """Validate one value; raise InvalidParameterError naming the parameter, the value and what is allowed."""
    where = f"{index_name}: " if index_name else ""
    if not _is_int(value):
        raise InvalidParameterError(
            f"{where}{param.name}={value!r} is not an integer; allowed: {describe_allowed(param, ctx)}",
            param.code)
    value = int(value)
    if value in param.special:
        return value
    low, high = bounds(param, ctx)
    inside = (low is None or value >= low) and (high is None or value <= high)
    if param.choices is not None and value not in param.choices:
        problem = param.allowed_if(value, ctx) if param.allowed_if is not None else None
        if problem:
            raise InvalidParameterError(f"{where}{problem}", param.code)
        raise InvalidParameterError(
            f"{where}{param.name}={value} is not allowed; allowed: {describe_allowed(param, ctx)}", param.code)
    if not inside:
        raise InvalidParameterError(
            f"{where}{param.name}={value} is out of range; allowed: {describe_allowed(param, ctx)}",
            param.code)
    if param.allowed_if is not None:
        problem = param.allowed_if(value, ctx)
        if problem:
            raise InvalidParameterError(f"{where}{problem}", param.code)
    return value


def _check_names(index_name: str, declared: Mapping[str, IntParam], params: Mapping[str, Any],
                 what: str) -> None:
    unknown = sorted(set(params) - set(declared), key=str)
    missing = [name for name in declared if name not in params]
    allowed = ", ".join(declared) if declared else "none"
    if unknown:
        raise InvalidParameterError(
            f"{index_name}: unknown {what} parameter(s) {', '.join(map(repr, unknown))}; "
            f"{index_name} takes: {allowed}")
    if missing:
        raise InvalidParameterError(
            f"{index_name}: missing {what} parameter(s) {', '.join(missing)}; {index_name} takes: {allowed} "
            f"(all are required)")


def validate_build(index_type: Any, params: Mapping[str, Any] | None, *, dim: int, metric: str,
                   warn: bool = True) -> tuple[IndexSpec, dict[str, int]]:
    """Check build parameters of ``index_type`` for a collection of ``dim`` and ``metric``.

    Returns the spec and a clean dict of ints. FLAT ignores any parameters (as Milvus did) and warns.
    Values inside the allowed range but outside the documented recommendation give a RecommendationWarning.
    """
    spec = get_index(index_type)
    check_index_metric(spec, metric)
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ParamError(f"index params must be a dict; got {type(params).__name__}")
    if spec.is_flat:
        if params and warn:
            from .errors import IgnoredParameterWarning
            warnings.warn(f"FLAT takes no parameters; ignoring {dict(params)!r}", IgnoredParameterWarning,
                          stacklevel=3)
        return spec, {}
    _check_names(spec.name, spec.build, params, "build")
    ctx: dict[str, Any] = {"dim": dim, "metric": metric}
    for name, value in params.items():  # type checks first so Ref bounds resolve to ints
        if not _is_int(value):
            check_value(spec.name, spec.build[name], value, ctx)
        ctx[name] = int(value)
    clean = {name: check_value(spec.name, spec.build[name], params[name], ctx) for name in spec.build}
    if warn:
        for text in recommendation_warnings(spec, clean):
            warnings.warn(text, RecommendationWarning, stacklevel=3)
    return spec, clean


def recommendation_warnings(spec: IndexSpec, params: Mapping[str, int]) -> list[str]:
    out = []
    for name, param in spec.build.items():
        if param.recommended and name in params:
            lo, hi = param.recommended
            if not lo <= params[name] <= hi:
                out.append(f"{spec.name}: {name}={params[name]} is allowed but outside the recommended "
                           f"range [{lo}, {hi}]")
    return out + spec.advice(params)


#: ``top_k`` as a parameter, so forms and sweeps show and check it like the others
TOP_K_PARAM = IntParam("top_k", TOP_K[0], TOP_K[1], 10, "results per query (nearest first)")


def validate_top_k(top_k: Any) -> int:
    if type(top_k) is int and TOP_K[0] <= top_k <= TOP_K[1]:
        return top_k  # the hot path
    if not _is_int(top_k):
        raise ParamError(f"top_k must be an int; got {top_k!r} ({type(top_k).__name__})")
    if not TOP_K[0] <= int(top_k) <= TOP_K[1]:
        raise IllegalTopKError(f"top_k={top_k} is out of range; allowed: {TOP_K[0]} <= top_k <= {TOP_K[1]}")
    return int(top_k)


def search_context(top_k: int, build_params: Mapping[str, int]) -> dict[str, int]:
    """The context search parameters are checked in: top_k and the built index's parameters."""
    return {**build_params, "top_k": top_k}


def validate_search(index_type: Any, params: Mapping[str, Any] | None, *, top_k: int,
                    build_params: Mapping[str, int]) -> dict[str, int]:
    """Check search parameters against the collection's index type and its built parameters.

    FLAT ignores search parameters (returns {}); any other index requires its own and refuses others'.
    """
    spec = get_index(index_type)
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ParamError(f"search params must be a dict or None; got {type(params).__name__}")
    if spec.is_flat:
        return {}
    unknown = sorted(set(params) - set(spec.search), key=str)
    if unknown:
        raise InvalidParameterError(
            f"{', '.join(map(repr, unknown))} is not a search parameter of the collection's index "
            f"{spec.name}; {spec.name} takes: {', '.join(spec.search)}")
    missing = [name for name in spec.search if name not in params]
    if missing:
        raise InvalidParameterError(
            f"{spec.name}: missing search parameter {', '.join(missing)}; e.g. params="
            f"{ {n: p.default for n, p in spec.search.items()} }; allowed: "
            + "; ".join(describe_allowed(p, search_context(top_k, build_params)) for p in spec.search.values()))
    ctx = search_context(top_k, build_params)
    return {name: check_value(spec.name, param, params[name], ctx) for name, param in spec.search.items()}


def validate_dimension(dimension: Any, metric: str) -> int:
    if not _is_int(dimension):
        raise ParamError(f"dimension must be an int; got {dimension!r}")
    dim = int(dimension)
    if not DIMENSION[0] <= dim <= DIMENSION[1]:
        raise IllegalDimensionError(
            f"dimension={dim} is out of range; allowed: {DIMENSION[0]} <= dimension <= {DIMENSION[1]}")
    if is_binary_metric(metric) and dim % BINARY_DIMENSION_MULTIPLE:
        raise IllegalDimensionError(
            f"dimension={dim} is not a multiple of {BINARY_DIMENSION_MULTIPLE}; binary metric {metric} "
            f"stores bits in bytes, so dimension must be a multiple of {BINARY_DIMENSION_MULTIPLE}")
    return dim


def validate_index_file_size(size: Any) -> int:
    if not _is_int(size):
        raise ParamError(f"index_file_size must be an int (MB); got {size!r}")
    if not INDEX_FILE_SIZE_MB[0] <= int(size) <= INDEX_FILE_SIZE_MB[1]:
        raise InvalidParameterError(
            f"index_file_size={size} is out of range; allowed: {INDEX_FILE_SIZE_MB[0]} <= index_file_size "
            f"<= {INDEX_FILE_SIZE_MB[1]} (MB)")
    return int(size)


# --------------------------------------------------------------------------------------------------
# Teaching defaults, sweeps and the docs table
# --------------------------------------------------------------------------------------------------
def default_build_params(index_type: Any, dim: int | None = None) -> dict[str, int]:
    """Teaching defaults, adjusted only where a rule forces it (IVF_PQ ``m`` nearest allowed for ``dim``).

    Raises InvalidParameterError when no value is valid (IVF_PQ on a dimension that admits no ``m``)."""
    spec = get_index(index_type)
    out = {}
    for name, param in spec.build.items():
        value = param.default
        if param.choices is not None and dim is not None:
            allowed = allowed_values(param, {"dim": dim})
            if not allowed:
                raise InvalidParameterError(f"{spec.name}: " + (param.allowed_if(value, {"dim": dim}) or
                                                                  f"no {name} is allowed for dimension {dim}"))
            value = min(allowed, key=lambda v: (abs(math.log(v / param.default)), v))
        out[name] = value
    return out


def default_search_params(index_type: Any, top_k: int = 10, build_params: Mapping[str, int] | None = None
                          ) -> dict[str, int]:
    """Teaching defaults for search parameters, moved inside the bounds of this top_k and built index."""
    spec = get_index(index_type)
    ctx = search_context(top_k, build_params or {})
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


def sweep_values(param: IntParam, ctx: Mapping[str, Any] | None = None, *, start: int | None = None,
                 stop: int | None = None, points: int = 8) -> list[int]:
    """A default grid for a parameter inside its bounds: doubling ("log2") or evenly spaced ("linear")."""
    ctx = ctx or {}
    values = allowed_values(param, ctx)
    if values is not None:
        return values
    low, high = bounds(param, ctx)
    lo = max(low if low is not None else 1, start if start is not None else (low or 1))
    hi = stop if stop is not None else high
    if hi is None:
        hi = lo * 2 ** (points - 1)
    if high is not None:
        hi = min(hi, high)
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


def parameter_table() -> list[dict[str, str]]:
    """One row per parameter: index type, stage, parameter, allowed, recommended, default, help."""
    rows = []
    for spec in INDEXES.values():
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


def parameter_table_markdown() -> str:
    rows = parameter_table()
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r[c].replace("|", "\\|") for c in cols) + " |" for r in rows]
    return "\n".join(lines)
