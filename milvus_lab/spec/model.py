"""The spec's vocabulary: the metrics and collection-level limits, and the types every declaration is made
of (:class:`Ref`, :class:`CrossRule`, :class:`IntParam`, :class:`MinRows`, :class:`IndexSpec`,
:class:`Profile`), with the bound arithmetic they share (:func:`tightest`, :func:`describe_bound`).

A bound is either a number or a :class:`Ref` to a value known only in context: ``top_k`` of a search,
the ``nlist`` the index was built with, another build parameter (RNSG ``search_length`` <
``candidate_pool_size``), or the collection's dimension. Rules explain themselves: ``IntParam.rule_help``
is generated from the Refs and cross-rules, ``IndexSpec.min_rows_help`` from the training requirement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import InvalidParameterError, MilvusLabError, StatusCode
from .values import as_int, name_of, show_count, show_value


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
    return name_of(metric) in BINARY_METRICS


def library_metric(metric: str) -> str:
    """The metric the libraries compute for ``metric`` (IP for COSINE, on rows normalised first)."""
    return NORMALISED_METRICS.get(metric, metric)


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
        floor = describe_bound(self.used_at_least) if self.used_at_least is not None else ""
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
        return (f"{show_count(rows)} rows is more than {self.name} can hold in one segment (at most "
                f"{show_count(self.max_rows)}: {self.max_rows_help}); a smaller segment_rows splits the data")

    @property
    def min_rows_help(self) -> str:
        return self.min_rows.help

    def notes_for(self, metric: Any) -> str:
        """The notes that apply to a collection of ``metric``: the general ones and that metric's."""
        return " ".join(text for text in (self.notes, self.metric_notes.get(name_of(metric) or "", "")) if text)


def tightest(bound: Any, ctx: Mapping[str, Any], pick: Callable[[Iterable[int]], int]) -> int | None:
    values = []
    for item in _bound_items(bound):
        value = item.resolve(ctx) if isinstance(item, Ref) else int(item)
        if value is not None:
            values.append(value)
    return pick(values) if values else None


def describe_bound(bound: Any) -> str:
    parts = [item.describe() if isinstance(item, Ref) else str(item) for item in _bound_items(bound)]
    return parts[0] if len(parts) == 1 else "min(" + ", ".join(parts) + ")"


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
