"""What the lab asks the spec, in one place: the target's profile, unavailable types, raw reasons, formatting.

Every answer comes from :mod:`milvus_lab.spec`; these functions only pass the target's profile along, so
the sweeps, the tuner and the report never restate a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import spec


def profile_of(target: Any) -> str:
    """The spec profile whose rules apply on ``target`` (a protocol.Target or a collection)."""
    return getattr(target, "profile", None) or spec.DEFAULT_PROFILE


def profile_title(profile: str) -> str:
    return spec.get_profile(profile).title


def get_index(index_type: Any, profile: str | None = None) -> spec.IndexSpec:
    return spec.get_index(index_type, profile=profile or spec.DEFAULT_PROFILE)


def index_types(metric: str) -> list[str]:
    """Every index type the lab knows for ``metric`` (the default profile's), in the spec's order."""
    return spec.index_types_for_metric(metric)


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
