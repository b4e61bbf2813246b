"""Explanations in one sentence: why an index type cannot be used on a target for this data
(:func:`unavailable_reason`), and why a segment stays raw instead of being indexed (:func:`segment_raw_reason`).
Each returns None when there is nothing to explain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ParamError
from .indexes import get_profile
from .model import ALL_METRICS, DEFAULT_PROFILE, DIMENSION, IntParam
from .sweeps import default_build_params
from .validate import (
    get_index,
    index_types_for_metric,
    metric_why,
    normalize_metric,
    valid_values,
    validate_dimension,
)
from .values import as_int, name_of, param_dict, show_count, show_value


def unavailable_reason(index_type: Any, *, dim: Any, metric: Any, profile: Any = DEFAULT_PROFILE,
                       rows: Any = None) -> str | None:
    """None when ``index_type`` can be used on the target for data of this dim and metric (and ``rows``,
    if given, with its default parameters); otherwise one sentence saying why not."""
    prof = get_profile(profile)
    name = name_of(index_type)
    key = prof.aliases.get(name.upper(), name.upper()) if name else None
    if key in prof.unavailable:
        return f"{key} is not available on {prof.title}: {prof.unavailable[key]}"
    index_spec = get_index(index_type, profile=prof)
    metric_name = name_of(metric)
    if metric_name is not None and metric_name.upper() in ALL_METRICS and metric_name.upper() not in prof.metrics:
        return f"metric {metric_name.upper()} is not available on {prof.title}{metric_why(prof, metric_name.upper())}"
    metric = normalize_metric(metric, profile=prof)
    dim = validate_dimension(dim, metric, profile=prof)
    if metric not in index_spec.metrics:
        others = ", ".join(index_types_for_metric(metric, profile=prof))
        return (f"{index_spec.name} does not support metric {metric} on {prof.title}; index types for "
                f"{metric}: {others}")
    for pname, param in index_spec.build.items():
        if valid_values(param, {"dim": dim, "metric": metric}) != []:
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
            return (f"{index_spec.name} needs at least {show_count(need)} rows to train with its default parameters "
                    f"({index_spec.min_rows_help}); the data has {show_count(count)}")
    return None


def _nearest_dim(param: IntParam, dim: int, metric: str, step: int) -> int | None:
    d = dim + step
    while DIMENSION[0] <= d <= min(DIMENSION[1], 2 * dim):
        if valid_values(param, {"dim": d, "metric": metric}):
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
        return f"{show_count(count)} rows is below the build threshold of {show_count(threshold)} rows"
    need = index_spec.min_rows(param_dict(params, "build params"))
    if count < need:
        return (f"{show_count(count)} rows is fewer than {index_spec.name} needs to train "
                f"({index_spec.min_rows_help}: {show_count(need)})")
    return index_spec.too_many_rows(count)
