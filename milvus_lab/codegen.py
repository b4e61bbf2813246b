"""The pymilvus 2.x lines for a setting tuned in the lab: copy them into the code that talks to your server."""

from __future__ import annotations

from typing import Any, Mapping

from . import spec
from .errors import InvalidParameterError, ParamError


def _literal(params: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{name!r}: {int(value)}" for name, value in params.items()) + "}"


def _check_without_dim(index_spec: spec.IndexSpec, params: Mapping[str, Any] | None, metric: str) -> dict[str, int]:
    """Build parameters checked with every rule that does not need the data's dimension."""
    if index_spec.is_flat:
        return {}
    if params is not None and not isinstance(params, Mapping):
        raise ParamError(f"build params must be a dict; got {type(params).__name__}")
    build = dict(params or {})
    unknown = sorted(set(build) - set(index_spec.build), key=str)
    if unknown:
        raise InvalidParameterError(f"{index_spec.name}: unknown build parameter(s) {', '.join(map(repr, unknown))}; "
                                    f"{index_spec.name} takes: {', '.join(index_spec.build)}")
    missing = [name for name in index_spec.build if name not in build]
    if missing:
        raise InvalidParameterError(f"{index_spec.name}: missing build parameter(s) {', '.join(missing)}; "
                                    f"{index_spec.name} takes: {', '.join(index_spec.build)} (all are required)")
    ctx: dict[str, Any] = {"metric": metric}
    for name, param in index_spec.build.items():
        ctx[name] = build[name] = spec.check_value(index_spec.name, param, build[name], ctx)
    return build


def pymilvus2_index_code(index_type: str, build_params: Mapping[str, Any] | None,
                         search_params: Mapping[str, Any] | None, metric: str = "L2", *, k: int = 10,
                         collection_name: str = "my_collection", field_name: str = "vector",
                         uri: str = "http://127.0.0.1:19530", dim: int | None = None) -> str:
    """The pymilvus 2.x (``MilvusClient``) lines that build ``index_type`` with ``build_params`` and search
    with ``search_params``, checked first with the spec's ``milvus-2.3`` profile (a setting the server would
    refuse or misread raises here, not on the server); ``dim`` also checks the rules that need the dimension
    (IVF_PQ ``m`` divides it). Tested against Milvus 2.3.5 with pymilvus 2.3.8."""
    profile = spec.SERVER_PROFILE
    metric = spec.normalize_metric(metric, profile=profile)
    index_spec = spec.get_index(index_type, profile=profile)
    if dim is not None:
        _, build = spec.validate_build(index_spec.name, build_params, dim=dim, metric=metric, profile=profile,
                                       warn=False)
    else:
        build = _check_without_dim(index_spec, build_params, metric)
    k = spec.validate_top_k(k, profile=profile)
    search = spec.validate_search(index_spec.name, search_params, top_k=k, build_params=build, profile=profile)
    native = spec.native_index_name(index_spec.name, metric, profile=profile)
    return "\n".join([
        "from pymilvus import MilvusClient",
        "",
        f"client = MilvusClient(uri={uri!r})  # token='user:password' if your server has authorization on",
        "index_params = client.prepare_index_params()",
        f"index_params.add_index(field_name={field_name!r}, index_type={native!r}, metric_type={metric!r},",
        f"                       params={_literal(build)})",
        f"client.create_index({collection_name!r}, index_params)",
        f"client.load_collection({collection_name!r})",
        f"results = client.search({collection_name!r}, data=queries, limit={k}, anns_field={field_name!r},",
        f"                        search_params={{'metric_type': {metric!r}, 'params': {_literal(search)}}})",
    ])
