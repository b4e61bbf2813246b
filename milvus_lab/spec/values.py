"""Values as the caller gave them, read without trusting them: the spec's coercions and its safe text.

``as_int``, ``plain_str``, ``name_of``, ``show_value`` and ``show_count`` never raise: whatever they get (a
huge int, a NumPy scalar, a str subclass, an object whose ``__index__``, ``__class__`` or ``__repr__``
raises) gives a plain value, None, or a short safe text. ``as_ctx``, ``param_dict`` and ``format_params``
raise only ParamError / InvalidParameterError, saying what was wrong.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from numbers import Integral
from typing import Any

from ..errors import InvalidParameterError, ParamError


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


def name_of(value: Any) -> str | None:
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


def show_count(number: int) -> str:
    """1,024 for a count; a safe short form for absurd ones."""
    return f"{number:,}" if number.bit_length() <= 256 else show_value(number)


def as_ctx(ctx: Any) -> dict[str, Any]:
    if type(ctx) is dict:  # the hot path: lookups are by str key, other keys are never read
        return ctx
    if ctx is None:
        return {}
    try:
        items = list(ctx.items())
    except Exception:
        raise ParamError(f"a parameter context must be a dict; got {show_value(ctx)}") from None
    return {key: value for k, value in items if (key := plain_str(k)) is not None}


def param_dict(params: Any, what: str) -> dict[str, Any]:
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


def format_params(params: Mapping[str, Any] | None) -> str:
    """{'nlist': 1024, 'nprobe': 16} -> 'nlist=1024, nprobe=16' ('' for none): the one parameter formatter."""
    return ", ".join(f"{name}={show_value(value)}" for name, value in param_dict(params, "params").items())
