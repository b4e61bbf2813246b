"""Looking up and checking against the declarations.

Lookups by name on a target (:func:`get_index`, :func:`normalize_metric`, :func:`index_types_for_metric`,
...); a parameter in context (:func:`bounds`, :func:`allowed_values`, :func:`valid_values`,
:func:`describe_allowed`); and the checks the engine runs (:func:`check_value`, :func:`validate_build`,
:func:`validate_search`, :func:`validate_top_k`, :func:`validate_dimension`,
:func:`validate_index_file_size`). A refusal is a MilvusLabError naming the parameter, the value and what is
allowed; no foreign exception escapes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from ..errors import (
    IgnoredParameterWarning,
    IllegalIndexTypeError,
    IllegalMetricError,
    InvalidParameterError,
    MilvusLabError,
    ParamError,
    RecommendationWarning,
)
from .indexes import PROFILES, get_profile
from .model import (
    ALL_METRICS,
    DEFAULT_PROFILE,
    DIMENSION,
    TOP_K,
    IndexSpec,
    IntParam,
    Profile,
    describe_bound,
    is_binary_metric,
    tightest,
)
from .values import as_ctx, as_int, name_of, param_dict, plain_str, show_value


# --------------------------------------------------------------------------------------------------
# Lookups by name on a target
# --------------------------------------------------------------------------------------------------
def get_index(index_type: Any, *, profile: Any = DEFAULT_PROFILE) -> IndexSpec:
    """The spec of an index type given as a name (any case, aliases allowed) or an IndexType member.

    A type the target lacks raises IllegalIndexTypeError("ANNOY is not available on Milvus 2.3: ...")."""
    prof = get_profile(profile)
    name = name_of(index_type)
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
    name = name_of(metric)
    if name is None or name.upper() not in ALL_METRICS:
        raise IllegalMetricError(f"unknown metric_type {show_value(metric)}; allowed: {', '.join(prof.metrics)}")
    name = name.upper()
    if name not in prof.metrics:
        raise IllegalMetricError(f"metric_type {name} is not available on {prof.title}{metric_why(prof, name)}; "
                                 f"allowed: {', '.join(prof.metrics)}")
    return name


def metric_name(metric: Any) -> str:
    """The upper-case name of a metric some profile has (COSINE: Milvus 2.3's); IllegalMetricError otherwise.
    For data that is not on a target yet (a lab dataset): the target's profile checks it when it is."""
    name = name_of(metric)
    if name is None or name.upper() not in ALL_METRICS:
        raise IllegalMetricError(f"unknown metric_type {show_value(metric)}; allowed: {', '.join(ALL_METRICS)}")
    return name.upper()


def profile_for_metric(metric: Any) -> str:
    """The default profile if it has ``metric``, else the first profile that does (COSINE: Milvus 2.3's): the
    rules of an in-memory engine made for data of that metric."""
    name = metric_name(metric)
    return next((key for key, prof in PROFILES.items() if name in prof.metrics), DEFAULT_PROFILE)


def metric_why(prof: Profile, metric: str) -> str:
    why = prof.unavailable_metrics.get(metric)
    return f": {why}" if why else ""


def index_types_for_metric(metric: Any, *, profile: Any = DEFAULT_PROFILE) -> list[str]:
    """Index types a collection with ``metric`` accepts on the target, in declaration order."""
    prof = get_profile(profile)
    name = name_of(metric)
    name = name.upper() if name is not None else None
    return [key for key, index_spec in prof.indexes.items() if name in index_spec.metrics]


def check_index_metric(spec: IndexSpec, metric: Any, *, profile: Any = DEFAULT_PROFILE) -> None:
    name = name_of(metric)
    if name is None or name.upper() not in spec.metrics:
        allowed = index_types_for_metric(metric, profile=profile)
        raise IllegalIndexTypeError(
            f"{spec.name} is not available for metric {show_value(name or metric)}; index types for "
            f"{show_value(name or metric)}: {', '.join(allowed) or 'none'}")


# --------------------------------------------------------------------------------------------------
# A parameter in context: its bounds, its allowed values, the rule in words
# --------------------------------------------------------------------------------------------------
def bounds(param: IntParam, ctx: Mapping[str, Any] | None = None) -> tuple[int | None, int | None]:
    """The effective (low, high) of a parameter in context (None: unbounded or not yet known)."""
    ctx = as_ctx(ctx)
    return tightest(param.low, ctx, max), tightest(param.high, ctx, min)


def allowed_values(param: IntParam, ctx: Mapping[str, Any] | None = None) -> list[int] | None:
    """For parameters with a finite choice set (IVF_PQ ``m``), the values allowed in context."""
    if param.choices is None:
        return None
    ctx = as_ctx(ctx)
    low, high = bounds(param, ctx)
    return [v for v in param.choices
            if (low is None or v >= low) and (high is None or v <= high)
            and (param.allowed_if is None or param.allowed_if(v, ctx) is None)]


def valid_values(param: IntParam, ctx: Mapping[str, Any]) -> list[int] | None:
    """Every value allowed in context for a param with choices or a cross-rule (None: not enumerable)."""
    values = allowed_values(param, ctx)
    if values is not None or param.allowed_if is None:
        return values
    low, high = bounds(param, ctx)
    if low is None or high is None or high - low > 2 * DIMENSION[1]:
        return None
    return [v for v in range(low, high + 1) if param.allowed_if(v, ctx) is None]


def nothing_allowed(param: IntParam, ctx: Mapping[str, Any], index_name: str = "") -> str | None:
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
    ctx = as_ctx(ctx)
    if param.choices is not None:
        nothing = nothing_allowed(param, ctx)
        if nothing:
            return nothing
        values = allowed_values(param, ctx)
        text = f"{param.name} in {{{', '.join(map(str, values))}}}"
        rules = [param.rule_help] if param.rule_help else []
        if sorted(values) != sorted(param.choices):  # narrowed by the context: say the set it was taken from
            rules.insert(0, f"{param.name} in {{{', '.join(map(str, sorted(param.choices)))}}}")
        return text + (f" (both: {'; and '.join(rules)})" if len(rules) > 1 else f" ({rules[0]})" if rules else "")
    low, high = bounds(param, ctx)
    low_s = show_value(low) if low is not None else describe_bound(param.low)
    if param.high is None:
        text = f"{param.name} >= {low_s}" if param.cap is None else f"{low_s} <= {param.name} <= {param.cap}"
    else:
        high_s = show_value(high) if high is not None else describe_bound(param.high)
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


# --------------------------------------------------------------------------------------------------
# Checks: one value, build parameters, search parameters, collection-level values
# --------------------------------------------------------------------------------------------------
def check_value(index_name: str, param: IntParam, value: Any, ctx: Mapping[str, Any] | None) -> int:
    """Validate one value; raise ``param.error`` naming the parameter, the value and what is allowed.

    Returns the value as a plain int. Never raises anything but a MilvusLabError."""
    name = plain_str(index_name)
    where = f"{name}: " if name else ""
    ctx = as_ctx(ctx)

    def refuse(text: str) -> MilvusLabError:
        return param.error(f"{where}{text}", param.code)

    number = as_int(value)
    if number is None:
        raise refuse(f"{param.name}={show_value(value)} is not an integer; "
                     + (nothing_allowed(param, ctx, name or "") or f"allowed: {describe_allowed(param, ctx)}"))
    if number in param.special:
        return number
    low, high = bounds(param, ctx)
    if (low is not None and number < low) or (high is not None and number > high) or \
            (param.cap is not None and number > param.cap):
        raise refuse(f"{param.name}={show_value(number)} is out of range; "
                     + (nothing_allowed(param, ctx, name or "") or f"allowed: {describe_allowed(param, ctx)}"))
    problem = param.allowed_if(number, ctx) if param.allowed_if is not None else None
    if problem:
        raise refuse(problem)
    if param.choices is not None and number not in param.choices:
        raise refuse(f"{param.name}={number} is not allowed; "
                     + (nothing_allowed(param, ctx, name or "") or f"allowed: {describe_allowed(param, ctx)}"))
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
    given = param_dict(params, "index params")
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
    clean = {name: number for name, value in param_dict(params, "build params").items()
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
    return {**param_dict(build_params, "build_params"), "top_k": top_k}


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
    given = param_dict(params, "search params")
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
