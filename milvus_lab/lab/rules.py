"""What the lab asks the spec, in one place: the target's profile, unavailable types, raw reasons, formatting.

Every answer comes from :mod:`milvus_lab.spec`; these functions only pass the target's profile along, so
the sweeps, the tuner and the report never restate a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import spec
from .arguments import ARGUMENTS, Bool, Int, Number, Str, check


def profile_of(target: Any) -> str:
    """The spec profile whose rules apply on ``target`` (a protocol.Target or a collection)."""
    return getattr(target, "profile", None) or spec.DEFAULT_PROFILE


def get_index(index_type: Any, profile: str | None = None) -> spec.IndexSpec:
    from ..errors import MilvusLabError

    try:
        return spec.get_index(index_type, profile=profile or spec.DEFAULT_PROFILE)
    except MilvusLabError as exc:
        if "index_type" in exc.message:
            raise
        raise type(exc)(f"index_type: {exc.message}") from None


def index_types(metric: str) -> list[str]:
    """Every index type the lab knows for ``metric`` (the default profile's, or for COSINE Milvus 2.3's: the
    first profile that has the metric), in the spec's order; the target's profile then says which it lacks."""
    return spec.index_types_for_metric(metric, profile=spec.profile_for_metric(metric))


def unavailable_reason(index_type: str, *, dim: int, metric: str, profile: str, rows: int | None = None
                       ) -> str | None:
    """None when ``index_type`` can index this data on the profile's target, else one sentence why not."""
    return spec.unavailable_reason(index_type, dim=dim, metric=metric, profile=profile, rows=rows)


def raw_reason(index_type: str, params: Mapping[str, int], rows: int, *, profile: str,
               build_threshold: int = 1) -> str | None:
    """Why a segment of ``rows`` rows would stay raw with these parameters (None: it will be indexed)."""
    return spec.segment_raw_reason(index_type, params, rows, build_threshold=build_threshold, profile=profile)


def format_params(params: Mapping[str, Any]) -> str:
    """``nlist=1024, nprobe=16`` (the spec's one formatter); no parameters read ``-``."""
    return spec.format_params(params) if params else "-"


def same_as(index_type: str) -> str | None:
    """The index type this one is on the CPU here (IVF_SQ8H -> IVF_SQ8), else None."""
    return spec.get_index(index_type).same_as


def recommended(index_type: str) -> bool:
    """False for index types the lab measures but never recommends (IVF_SQ8H: a GPU index in Milvus)."""
    return spec.get_index(index_type).recommend


# --------------------------------------------------------------------------------------------------
# Argument checks of the lab's entry points, for arguments not in the table of :mod:`.arguments` (their
# bounds depend on the call): the same validator and message format
# --------------------------------------------------------------------------------------------------
__all__ = ["ARGUMENTS"]  # the lab's argument table, re-exported for the modules that check through rules


def check_int(name: str, value: Any, low: int, high: int | None = None, *, none_ok: bool = False) -> int | None:
    """``value`` as an int in [low, high]; ParamError naming ``name`` otherwise (:func:`.arguments.check`)."""
    return check(name, value, Int(low, high, none_ok))


def check_number(name: str, value: Any, *, none_ok: bool = True, low: float = 0.0, high: float | None = None,
                 low_open: bool = True) -> float | None:
    """``value`` as a finite float > low (>= when not ``low_open``) and <= high; ParamError naming ``name``."""
    return check(name, value, Number(low, high, low_open, none_ok))


def check_bool(name: str, value: Any) -> bool:
    return check(name, value, Bool())


def check_str(name: str, value: Any, *, none_ok: bool = False) -> str | None:
    return check(name, value, Str(none_ok))


def check_index_types(value: Any, profile: str | None = None) -> list[str] | None:
    """A list of index type names (each known to the spec), or None; ParamError naming ``index_types``."""
    from ..errors import MilvusLabError, ParamError

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


def check_target(value: Any) -> Any:
    from ..errors import ParamError

    if value is None:
        return None
    for verb in ("create_collection", "has_collection", "drop_collection"):
        try:
            ok = callable(getattr(value, verb, None))
        except Exception:  # noqa: BLE001 - a hostile __getattr__
            ok = False
        if not ok:
            raise ParamError(f"target must be a milvus_lab Target (an Engine, or milvus_lab.server.connect(uri)) "
                             f"or None; got {spec.show_value(value)}")
    return value
