"""Every index type, parameter, range, cross-rule, search parameter and metric, declared once.

The engine validates with :func:`validate_build` / :func:`validate_search`; the widget forms read
:func:`bounds` and :func:`allowed_values`; the lab's sweeps read ``default``, ``sweep`` and
:func:`sweep_range`; the docs render :func:`parameter_table`. No module outside this package states a range.

Each target has a :class:`Profile` (``PROFILES``): Milvus 0.10 as milvus_lab reproduces it in memory
(the default), and Milvus 2.3 as a server enforces it. Every function takes ``profile=`` (keyword).
No function here lets a foreign exception escape: hostile values (huge ints, numpy scalars, objects whose
``__int__`` raises, ...) are refused with a ParamError / InvalidParameterError naming the parameter.

The package's files, each importing only the ones above it:

- ``values.py``: reading what the caller gave without trusting it (``as_int``, ``plain_str``, ``show_value``,
  ``format_params``, the context and parameter dicts);
- ``model.py``: the metrics and collection-level limits, and the declaration types (``Ref``, ``CrossRule``,
  ``IntParam``, ``MinRows``, ``IndexSpec``, ``Profile``) with their bound arithmetic;
- ``indexes.py``: the declarations: IVF_PQ's rules, ``TOP_K_PARAM`` / ``DIMENSION_PARAM`` /
  ``INDEX_FILE_SIZE_PARAM``, ``INDEXES``, the Milvus 2.3 index types, ``PROFILES`` and ``get_profile``;
- ``validate.py``: lookups by name on a target (``get_index``, ``normalize_metric``, ...), a parameter's bounds
  and allowed values in context, and the checks (``check_value``, ``validate_build``, ``validate_search``, ...);
- ``sweeps.py``: teaching defaults (``default_build_params``, ``default_search_params``), ``effective_value``,
  ``sweep_range`` and ``sweep_values``;
- ``explain.py``: ``unavailable_reason`` and ``segment_raw_reason``, one sentence each;
- ``docs.py``: ``parameter_table`` and ``parameter_table_markdown``.

Every public name of these files that callers use is re-exported here (``__all__``), so
``from milvus_lab.spec import X`` and ``spec.X`` reach it whichever file declares it.
"""

from __future__ import annotations

from .docs import parameter_table, parameter_table_markdown
from .explain import segment_raw_reason, unavailable_reason
from .indexes import (
    DIMENSION_PARAM,
    INDEX_ALIASES,
    INDEX_FILE_SIZE_PARAM,
    INDEX_TYPES,
    INDEXES,
    NLIST,
    PQ_M_CHOICES,
    PQ_M_DIVIDES_RULE,
    PQ_M_RULE,
    PQ_MIN_TRAIN_ROWS,
    PQ_SUBVECTOR_DIMS,
    PROFILES,
    TOP_K_PARAM,
    get_profile,
    pq_allowed_m,
)
from .model import (
    ALL_FLOAT_METRICS,
    ALL_METRICS,
    BINARY_DIMENSION_MULTIPLE,
    BINARY_METRICS,
    C_INT_MAX,
    C_UINT_MAX,
    DEFAULT_BUILD_THRESHOLD,
    DEFAULT_INDEX_FILE_SIZE_MB,
    DEFAULT_PROFILE,
    DESCENDING_METRICS,
    DIMENSION,
    FLOAT_METRICS,
    ID_RANGE,
    INDEX_FILE_SIZE_MB,
    INT64_MAX,
    NAME_MAX_LENGTH,
    NORMALISED_METRICS,
    SERVER_MAX_NQ,
    SERVER_MIN_INDEX_ROWS,
    SERVER_PROFILE,
    TOP_K,
    CrossRule,
    IndexSpec,
    IntParam,
    MinRows,
    Profile,
    Ref,
    is_binary_metric,
    library_metric,
)
from .sweeps import (
    default_build_params,
    default_search_params,
    effective_value,
    sweep_range,
    sweep_values,
)
from .validate import (
    allowed_values,
    bounds,
    check_index_metric,
    check_value,
    describe_allowed,
    get_index,
    index_types_for_metric,
    metric_name,
    native_index_name,
    normalize_metric,
    profile_for_metric,
    recommendation_warnings,
    search_context,
    validate_build,
    validate_dimension,
    validate_index_file_size,
    validate_search,
    validate_top_k,
)
from .values import as_int, format_params, plain_str, show_value

__all__ = [
    # values.py
    "as_int", "plain_str", "show_value", "format_params",
    # model.py
    "FLOAT_METRICS", "BINARY_METRICS", "NORMALISED_METRICS", "ALL_FLOAT_METRICS", "ALL_METRICS",
    "DESCENDING_METRICS", "DIMENSION", "BINARY_DIMENSION_MULTIPLE", "INDEX_FILE_SIZE_MB",
    "DEFAULT_INDEX_FILE_SIZE_MB", "TOP_K", "NAME_MAX_LENGTH", "DEFAULT_BUILD_THRESHOLD", "C_INT_MAX",
    "C_UINT_MAX", "INT64_MAX", "ID_RANGE", "DEFAULT_PROFILE", "SERVER_PROFILE", "SERVER_MIN_INDEX_ROWS",
    "SERVER_MAX_NQ", "is_binary_metric", "library_metric",
    "Ref", "CrossRule", "IntParam", "MinRows", "IndexSpec", "Profile",
    # indexes.py
    "PQ_M_CHOICES", "PQ_SUBVECTOR_DIMS", "PQ_MIN_TRAIN_ROWS", "pq_allowed_m", "PQ_M_RULE", "PQ_M_DIVIDES_RULE",
    "TOP_K_PARAM", "DIMENSION_PARAM", "INDEX_FILE_SIZE_PARAM", "NLIST", "INDEXES", "INDEX_TYPES",
    "INDEX_ALIASES", "PROFILES", "get_profile",
    # validate.py
    "get_index", "native_index_name", "normalize_metric", "metric_name", "profile_for_metric",
    "index_types_for_metric", "check_index_metric", "bounds", "allowed_values", "describe_allowed",
    "check_value", "validate_build", "recommendation_warnings", "validate_top_k", "search_context",
    "validate_search", "validate_dimension", "validate_index_file_size",
    # sweeps.py
    "default_build_params", "default_search_params", "effective_value", "sweep_range", "sweep_values",
    # explain.py
    "unavailable_reason", "segment_raw_reason",
    # docs.py
    "parameter_table", "parameter_table_markdown",
]
