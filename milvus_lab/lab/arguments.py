"""The lab's own arguments, declared once, the way :mod:`milvus_lab.spec` declares index parameters.

Every public lab call (``measure``, ``compare``, ``tune``, ``forecast``, ``Session``) checks its arguments
against :data:`ARGUMENTS`: one table of kinds and bounds, one validator (:func:`check`), one message format
(``<name> must be <what is allowed>; got <value>``, always a :class:`~milvus_lab.errors.ParamError`). A bound
that two calls share (``repeats``, ``latency_queries``) is written here only. (The "use the caller's session,
or make one and close it afterwards" pattern is :func:`milvus_lab.lab.measurements.session_scope`.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

from .. import spec
from ..errors import MilvusLabError, ParamError


@dataclass(frozen=True)
class Int:
    """An integer in [low, high] (``high`` None: unbounded above); bools and floats are refused."""

    low: int
    high: int | None = None
    none_ok: bool = False

    def allowed(self) -> str:
        upper = "" if self.high is None else f", at most {self.high:,}"
        return f"an int >= {self.low:,}{upper}" + (" or None" if self.none_ok else "")

    def coerce(self, value: Any) -> int | None:
        number = spec.as_int(value)
        if number is None or number < self.low or (self.high is not None and number > self.high):
            return None
        return number


@dataclass(frozen=True)
class Number:
    """A finite real number above ``low`` (at least ``low`` when not ``low_open``) and at most ``high`` (below it
    when ``high_open``)."""

    low: float = 0.0
    high: float | None = None
    low_open: bool = True
    none_ok: bool = True
    high_open: bool = False

    def allowed(self) -> str:
        upper = "" if self.high is None else f" and {'<' if self.high_open else '<='} {self.high:g}"
        return f"a number {'>' if self.low_open else '>='} {self.low:g}{upper}" + (" or None" if self.none_ok else "")

    def coerce(self, value: Any) -> float | None:
        try:
            if not isinstance(value, Real) or isinstance(value, bool) or type(value).__name__ == "bool_":
                return None
            number = float(value)
        except Exception:  # noqa: BLE001 - a hostile __float__
            return None
        if not math.isfinite(number) or (number <= self.low if self.low_open else number < self.low):
            return None
        too_high = self.high is not None and (number >= self.high if self.high_open else number > self.high)
        return None if too_high else number


@dataclass(frozen=True)
class Bool:
    """True or False (NumPy bools too); no truthy stand-ins."""

    none_ok: bool = False

    def allowed(self) -> str:
        return "True or False"

    def coerce(self, value: Any) -> bool | None:
        if value is True or value is False or type(value).__name__ == "bool_":
            return bool(value)
        return None


@dataclass(frozen=True)
class Str:
    """A str (subclasses copied to a plain str)."""

    none_ok: bool = False

    def allowed(self) -> str:
        return "a str" + (" or None" if self.none_ok else "")

    def coerce(self, value: Any) -> str | None:
        return str.__str__(value) if isinstance(value, str) else None


Kind = Int | Number | Bool | Str

#: every argument of the lab's public calls that is a plain value; one entry per name, one bound per fact
ARGUMENTS: dict[str, Kind] = {
    "k": Int(1, spec.TOP_K[1]),
    "repeats": Int(1, 10_000, none_ok=True),
    "latency_queries": Int(0, 10**6),
    "threads": Int(1, 4096, none_ok=True),
    "max_datasets": Int(1),
    "seed": Int(0),
    "max_builds": Int(1, 10_000),
    "steps": Int(3, 12),
    "min_rows": Int(100, 10**9),
    "rows": Int(1, 2**63 - 1),
    "progress": Bool(),
    "target_recall": Number(0.0, 1.0, none_ok=False),
    "holdout": Number(0.0, 1.0, none_ok=False, high_open=True),
    "min_gain": Number(0.0, low_open=False, none_ok=False),
    "memory_budget_mb": Number(),
    "max_p99_ms": Number(),
    "time_budget_s": Number(),
    "time_limit": Number(),
    "machine_memory_gb": Number(0.0, 1e9),
    "query_node_gb": Number(0.0, 1e6, none_ok=False),
}


def check(name: str, value: Any, kind: Kind | None = None) -> Any:
    """``value`` checked against ``name``'s entry in :data:`ARGUMENTS` (or ``kind``): the coerced value, or a
    ParamError naming the argument, what is allowed and what was given."""
    kind = kind or ARGUMENTS[name]
    if value is None and kind.none_ok:
        return None
    coerced = kind.coerce(value)
    if coerced is None:
        raise ParamError(f"{name} must be {kind.allowed()}; got {spec.show_value(value)}")
    return coerced


def check_all(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every ``name: value`` checked (:func:`check`), in order; the first bad one raises."""
    return {name: check(name, value) for name, value in values.items()}


# --------------------------------------------------------------------------------------------------
# Arguments whose allowed values are the spec's index types or a target: the same message format
# --------------------------------------------------------------------------------------------------
def check_index_type(value: Any, profile: str | None = None) -> spec.IndexSpec:
    """The spec of index type ``value`` on ``profile`` (default: Milvus 0.10's); the spec's error otherwise, its
    message starting with ``index_type``."""
    try:
        return spec.get_index(value, profile=profile or spec.DEFAULT_PROFILE)
    except MilvusLabError as exc:
        if "index_type" in exc.message:
            raise
        raise type(exc)(f"index_type: {exc.message}") from None


def check_index_types(value: Any, profile: str | None = None) -> list[str] | None:
    """A list of index type names (each known to the spec, duplicates dropped, the first spelling's order kept),
    or None; ParamError naming ``index_types`` otherwise."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset, range)):
        raise ParamError(f"index_types must be a list of index type names (e.g. ['HNSW', 'IVF_FLAT']) or None; "
                         f"got {spec.show_value(value)}")
    names = []
    for item in list(value):
        try:
            names.append(spec.get_index(item, profile=profile or spec.DEFAULT_PROFILE).name)
        except MilvusLabError as exc:
            raise ParamError(f"index_types: {exc}") from None
    if not names:
        raise ParamError("index_types is empty; give at least one index type name, or None for all")
    return list(dict.fromkeys(names))


def check_target(value: Any, *, required: bool = False) -> Any:
    """``value`` if it has a Target's collection verbs (or is None, unless ``required``); ParamError naming
    ``target`` otherwise."""
    allowed = ("a milvus_lab Target (an Engine, or milvus_lab.server.connect(uri))"
               + ("" if required else " or None"))
    if value is None and not required:
        return None
    for verb in ("create_collection", "has_collection", "drop_collection"):
        try:
            ok = value is not None and callable(getattr(value, verb, None))
        except Exception:  # noqa: BLE001 - a hostile __getattr__
            ok = False
        if not ok:
            raise ParamError(f"target must be {allowed}; got {spec.show_value(value)}")
    return value


def index_types_or_all(index_types: list[str] | None, metric: str) -> list[str]:
    """The checked ``index_types``, or for None every index type the lab knows for ``metric`` in the spec's order
    (the default profile's; for COSINE, the first profile that has it): the target's profile then says which of
    them it lacks, with the reason."""
    if index_types is not None:
        return index_types
    return spec.index_types_for_metric(metric, profile=spec.profile_for_metric(metric))
