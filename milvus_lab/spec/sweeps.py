"""Teaching defaults and sweeps: :func:`default_build_params` / :func:`default_search_params` (the declared
defaults, moved only where a rule of this dimension, top_k or built index forces it), :func:`effective_value`
(the value the library really searches with), and :func:`sweep_range` / :func:`sweep_values` (where a sweep
of a parameter starts and stops, and a default grid inside its bounds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidParameterError, ParamError
from .indexes import get_profile
from .model import DEFAULT_PROFILE, IntParam, tightest
from .validate import (
    allowed_values,
    bounds,
    check_value,
    get_index,
    nothing_allowed,
    search_context,
    valid_values,
    validate_dimension,
    validate_top_k,
)
from .values import as_ctx, as_int, show_value


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
            allowed = valid_values(param, ctx)
            if allowed == []:
                raise InvalidParameterError(f"{spec.name}: " + (nothing_allowed(param, ctx, spec.name)
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
    floor = tightest(param.used_at_least, as_ctx(ctx), max)
    return number if floor is None else max(number, floor)


def sweep_range(param: IntParam, ctx: Mapping[str, Any] | None = None) -> tuple[int | None, int | None]:
    """Where a sweep of ``param`` starts and stops in context (``sweep_start`` / ``sweep_stop``; None:
    the bounds). ANNOY search_k starts at n_trees * top_k and stops at n_trees * rows (ctx ``rows``)."""
    ctx = as_ctx(ctx)
    start = tightest(param.sweep_start, ctx, max)
    stop = tightest(param.sweep_stop, ctx, min)
    if stop is not None and param.cap is not None:
        stop = min(stop, param.cap)
    if start is not None and stop is not None:
        stop = max(stop, start)
    return start, stop


def sweep_values(param: IntParam, ctx: Mapping[str, Any] | None = None, *, start: int | None = None,
                 stop: int | None = None, points: int = 8) -> list[int]:
    """A default grid for a parameter inside its bounds: doubling ("log2") or evenly spaced ("linear")."""
    ctx = as_ctx(ctx)
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
