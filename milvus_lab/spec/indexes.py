"""The declarations, each made once: IVF_PQ's rules on ``m``, the collection-level parameters (top_k,
dimension, index_file_size), every index type of Milvus 0.10 as milvus_lab reproduces it in memory
(:data:`INDEXES`), the Milvus 2.3 versions a server enforces, and the target profiles (:data:`PROFILES`,
:func:`get_profile`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..errors import IllegalDimensionError, IllegalTopKError, InvalidParameterError, ParamError, StatusCode
from .model import (
    ALL_FLOAT_METRICS,
    BINARY_DIMENSION_MULTIPLE,
    BINARY_METRICS,
    C_INT_MAX,
    C_UINT_MAX,
    DEFAULT_INDEX_FILE_SIZE_MB,
    DEFAULT_PROFILE,
    DIMENSION,
    FLOAT_METRICS,
    INDEX_FILE_SIZE_MB,
    SERVER_PROFILE,
    TOP_K,
    CrossRule,
    IndexSpec,
    IntParam,
    MinRows,
    Profile,
    Ref,
)
from .values import as_int, plain_str, show_value


# --------------------------------------------------------------------------------------------------
# IVF_PQ: m against the dimension (the reference's section 2)
# --------------------------------------------------------------------------------------------------
PQ_M_CHOICES = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)
PQ_SUBVECTOR_DIMS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 28, 32)
PQ_MIN_TRAIN_ROWS = 256  # 8-bit codes: 256 centroids per sub-quantizer


def pq_allowed_m(dim: Any) -> list[int]:
    """The ``m`` values IVF_PQ (Milvus 0.10) accepts for vectors of dimension ``dim`` (empty: none)."""
    number = as_int(dim)
    if number is None:
        raise ParamError(f"dimension must be an int; got {show_value(dim)}")
    return [m for m in PQ_M_CHOICES if number % m == 0 and number // m in PQ_SUBVECTOR_DIMS]


def _pq_m_rule(m: int, ctx: Mapping[str, Any]) -> str | None:
    dim = as_int(ctx.get("dim"))
    if dim is None:
        return None
    allowed = pq_allowed_m(dim)
    if m in allowed:
        return None
    if dim % m:
        reason = f"m={m} does not divide dimension {show_value(dim)}"
    elif m not in PQ_M_CHOICES:
        reason = f"m={m} is not one of the m values IVF_PQ offers"
    else:
        reason = (f"m={m} gives sub-vectors of {show_value(dim // m)} dimensions; allowed sub-vector sizes: "
                  f"{', '.join(map(str, PQ_SUBVECTOR_DIMS))}")
    if not allowed:
        return f"{reason}; no m is allowed for dimension {show_value(dim)}, so IVF_PQ cannot index this data"
    return f"{reason}; allowed m for dim {show_value(dim)}: {', '.join(map(str, allowed))}"


PQ_M_RULE = CrossRule("dim % m == 0 and dim / m in {" + ", ".join(map(str, PQ_SUBVECTOR_DIMS)) + "}", _pq_m_rule)


@functools.lru_cache(maxsize=256)
def _divisors_text(dim: int) -> str:
    divisors = [d for d in range(1, min(dim, DIMENSION[1]) + 1) if dim % d == 0] if dim > 0 else []
    return ", ".join(map(str, divisors[:24])) + (", ..." if len(divisors) > 24 else "")


def _divides_dim_rule(m: int, ctx: Mapping[str, Any]) -> str | None:
    dim = as_int(ctx.get("dim"))
    if dim is None or m <= 0 or dim % m == 0:
        return None
    shown = show_value(dim)
    return f"m={m} does not divide dimension {shown}; allowed m for dim {shown}: {_divisors_text(dim)}"


#: Milvus 2.x IVF_PQ: any m that divides the dimension (nbits left at the server's 8)
PQ_M_DIVIDES_RULE = CrossRule("dim % m == 0", _divides_dim_rule)


def _binary_dimension_rule(dim: int, ctx: Mapping[str, Any]) -> str | None:
    metric = plain_str(ctx.get("metric"))
    if metric in BINARY_METRICS and dim % BINARY_DIMENSION_MULTIPLE:
        return (f"dimension={dim} is not a multiple of {BINARY_DIMENSION_MULTIPLE}; binary metric {metric} "
                f"stores bits in bytes, so dimension must be a multiple of {BINARY_DIMENSION_MULTIPLE}")
    return None


# --------------------------------------------------------------------------------------------------
# Collection-level parameters (forms and the engine check them like the others)
# --------------------------------------------------------------------------------------------------
#: ``top_k`` as a parameter, so forms and sweeps show and check it like the others
TOP_K_PARAM = IntParam("top_k", TOP_K[0], TOP_K[1], 10, "results per query (nearest first)",
                       code=StatusCode.ILLEGAL_TOPK, error=IllegalTopKError)
DIMENSION_PARAM = IntParam(
    "dimension", DIMENSION[0], DIMENSION[1], 128, "numbers per vector (bits for binary metrics)",
    allowed_if=CrossRule(f"a multiple of {BINARY_DIMENSION_MULTIPLE} for binary metrics", _binary_dimension_rule),
    code=StatusCode.ILLEGAL_DIMENSION, error=IllegalDimensionError)
INDEX_FILE_SIZE_PARAM = IntParam("index_file_size", INDEX_FILE_SIZE_MB[0], INDEX_FILE_SIZE_MB[1],
                                 DEFAULT_INDEX_FILE_SIZE_MB, "segment size in MB at which a segment seals "
                                 "and is indexed")


# --------------------------------------------------------------------------------------------------
# The index types of Milvus 0.10 (the reference's sections 2 and 3)
# --------------------------------------------------------------------------------------------------
NLIST = (1, 65536)


def _nlist(default: int = 1024) -> IntParam:
    return IntParam("nlist", NLIST[0], NLIST[1], default, "number of IVF cells (k-means centroids)",
                    code=StatusCode.ILLEGAL_NLIST)


_NPROBE = IntParam("nprobe", 1, Ref("nlist", note="of the built index"), 16,
                   "IVF cells visited per query (more: higher recall, slower)")
_IVF_MIN_ROWS = MinRows(("nlist",), why="to train the k-means cells")


def _rnsg_advice(params: Mapping[str, int]) -> list[str]:
    out = []
    if "knng" in params and "out_degree" in params and params["knng"] != params["out_degree"] + 20:
        out.append(f"RNSG: the docs recommend knng = out_degree + 20 (= {params['out_degree'] + 20}); "
                   f"got knng={params['knng']}")
    return out


INDEXES: dict[str, IndexSpec] = {
    "FLAT": IndexSpec(
        name="FLAT", backend="faiss", metrics=FLOAT_METRICS + BINARY_METRICS, build={}, search={},
        description="exact (brute-force) search; the default of every collection",
    ),
    "IVF_FLAT": IndexSpec(
        name="IVF_FLAT", backend="faiss", metrics=FLOAT_METRICS + ("HAMMING", "JACCARD", "TANIMOTO"),
        build={"nlist": _nlist()}, search={"nprobe": _NPROBE},
        description="inverted file: k-means cells, full vectors stored per cell",
        min_rows=_IVF_MIN_ROWS,
        metric_notes={m: f"On {m} the cells are chosen by Hamming distance and candidates re-ranked exactly."
                      for m in ("JACCARD", "TANIMOTO")},
    ),
    "IVF_SQ8": IndexSpec(
        name="IVF_SQ8", backend="faiss", metrics=FLOAT_METRICS,
        build={"nlist": _nlist()}, search={"nprobe": _NPROBE},
        description="inverted file with 8-bit scalar quantization (4x smaller than IVF_FLAT)",
        min_rows=_IVF_MIN_ROWS,
    ),
    "IVF_SQ8H": IndexSpec(
        name="IVF_SQ8H", backend="faiss", metrics=FLOAT_METRICS,
        build={"nlist": _nlist()}, search={"nprobe": _NPROBE},
        description="Milvus: IVF_SQ8 with GPU/CPU hybrid search; here IVF_SQ8 on the CPU, same results",
        min_rows=_IVF_MIN_ROWS,
        notes="Milvus runs the coarse quantizer on a GPU; milvus_lab has no GPU and builds IVF_SQ8.",
        recommend=False, same_as="IVF_SQ8",
    ),
    "IVF_PQ": IndexSpec(
        name="IVF_PQ", backend="faiss", metrics=FLOAT_METRICS,
        build={"nlist": _nlist(),
               "m": IntParam("m", PQ_M_CHOICES[0], PQ_M_CHOICES[-1], 8,
                             "sub-quantizers: each vector is stored in m bytes",
                             choices=PQ_M_CHOICES, allowed_if=PQ_M_RULE)},
        search={"nprobe": _NPROBE},
        description="inverted file with product quantization: m bytes per vector, 8 bits per code",
        min_rows=MinRows(("nlist", PQ_MIN_TRAIN_ROWS)),
    ),
    "RNSG": IndexSpec(
        name="RNSG", backend="faiss", metrics=FLOAT_METRICS,
        build={
            "search_length": IntParam("search_length", 10, (300, Ref("candidate_pool_size", -1)), 45,
                                      "candidate list while building the graph",
                                      recommended=(40, 80), sweep="linear"),
            "out_degree": IntParam("out_degree", 5, 300, 50, "maximum edges per node", sweep="linear"),
            "candidate_pool_size": IntParam("candidate_pool_size", 50, 1000, 300,
                                            "candidates considered when pruning edges",
                                            recommended=(200, 500), sweep="linear"),
            "knng": IntParam("knng", 5, 300, 70, "neighbours in the initial k-NN graph",
                             sweep="linear", advice_help="knng = out_degree + 20"),
        },
        search={"search_length": IntParam("search_length", 10, 300, 50,
                                          "candidate list while searching (more: higher recall, slower)",
                                          sweep="linear", sweep_start=Ref("top_k"),
                                          used_at_least=Ref("top_k"))},
        description="navigating spreading-out graph (faiss NSG), one search list per query",
        min_rows=MinRows(("knng", "search_length"), more=1, why="to build the k-NN graph", distinct=True),
        advice=_rnsg_advice,
        max_rows=C_INT_MAX, max_rows_help="faiss NSG numbers the graph's nodes with a C int",
    ),
    "HNSW": IndexSpec(
        name="HNSW", backend="hnswlib", metrics=FLOAT_METRICS,
        build={"M": IntParam("M", 4, 64, 16, "graph degree (edges per node per layer)"),
               "efConstruction": IntParam("efConstruction", 8, 512, 200, "candidate list while building")},
        search={"ef": IntParam("ef", Ref("top_k"), 4096, 64,
                               "candidate list while searching (more: higher recall, slower)")},
        description="hierarchical navigable small-world graph (hnswlib)",
        max_rows=C_UINT_MAX, max_rows_help="hnswlib numbers the graph's nodes with an unsigned C int",
    ),
    "ANNOY": IndexSpec(
        name="ANNOY", backend="annoy", metrics=FLOAT_METRICS,
        build={"n_trees": IntParam("n_trees", 1, 1024, 16, "random-projection trees (more: higher recall, "
                                   "more memory)")},
        search={"search_k": IntParam("search_k", Ref("top_k"), None, -1,
                                     "tree nodes inspected per query (more: higher recall, slower)",
                                     special=(-1,), special_help="-1 means n_trees * top_k",
                                     sweep_start=Ref("top_k", factor="n_trees"),
                                     sweep_stop=Ref("rows", factor="n_trees"),
                                     cap=C_INT_MAX, cap_help="annoy keeps search_k in a C int")},
        description="forest of random-projection trees (annoy)",
        max_rows=C_INT_MAX, max_rows_help="annoy numbers its items with a C int",
    ),
}

INDEX_TYPES: tuple[str, ...] = tuple(INDEXES)
#: aliases accepted wherever an index type name is
INDEX_ALIASES = {"IVFLAT": "IVF_FLAT", "IVF_SQ8_H": "IVF_SQ8H", "NSG": "RNSG"}


# --------------------------------------------------------------------------------------------------
# Milvus 2.3 (a server target): measured on milvus 2.3.5-lite and the pymilvus 2.3 docs (issue 10)
# --------------------------------------------------------------------------------------------------
def _milvus23_indexes() -> dict[str, IndexSpec]:
    binary = ("HAMMING", "JACCARD")
    floats = ALL_FLOAT_METRICS  # Milvus 2.3 has COSINE on every float index type
    nlist = _nlist()
    return {
        "FLAT": replace(INDEXES["FLAT"], metrics=floats + binary),
        "IVF_FLAT": replace(INDEXES["IVF_FLAT"], metrics=floats + binary, metric_notes={},
                            build={"nlist": nlist}),
        "IVF_SQ8": replace(INDEXES["IVF_SQ8"], metrics=floats, build={"nlist": nlist}),
        "IVF_PQ": replace(
            INDEXES["IVF_PQ"], metrics=floats,
            build={"nlist": nlist,
                   "m": IntParam("m", 1, (DIMENSION[1], Ref("dim")), 8,
                                 "sub-quantizers: each vector is stored in m bytes", allowed_if=PQ_M_DIVIDES_RULE)},
            description="inverted file with product quantization: m codes of 8 bits per vector"),
        "HNSW": replace(
            INDEXES["HNSW"], metrics=floats,
            build={"M": IntParam("M", 2, 2048, 16, "graph degree (edges per node per layer); M=1 never "
                                 "finishes building on the server, so it is refused"),
                   "efConstruction": IntParam("efConstruction", 1, C_INT_MAX, 200,
                                              "candidate list while building")},
            search={"ef": IntParam("ef", Ref("top_k"), 32768, 64,
                                   "candidate list while searching (more: higher recall, slower)")}),
    }


_UNAVAILABLE_23 = {
    "IVF_SQ8H": "a GPU index of Milvus 0.10 that Milvus 2.x removed (the server answers 'invalid index type'); "
                "use IVF_SQ8, which it was on the CPU",
    "RNSG": "Milvus 2.x removed NSG (the server answers 'invalid index type'); HNSW is its graph index",
    "ANNOY": "Milvus 2.x removed ANNOY (the server answers 'invalid index type'); use HNSW or IVF_FLAT",
}


# --------------------------------------------------------------------------------------------------
# The target profiles
# --------------------------------------------------------------------------------------------------
PROFILES: dict[str, Profile] = {
    DEFAULT_PROFILE: Profile(
        name=DEFAULT_PROFILE, title="Milvus 0.10 (milvus_lab in memory)", indexes=INDEXES, unavailable={},
        metrics=FLOAT_METRICS + BINARY_METRICS, top_k=TOP_K_PARAM, dimension=DIMENSION_PARAM,
        index_file_size=INDEX_FILE_SIZE_PARAM, aliases=INDEX_ALIASES,
        unavailable_metrics={"COSINE": "Milvus 0.10 has no COSINE (Milvus 2.3 added it); normalise the vectors to unit "
                                       "length and use IP, which then ranks and scores as COSINE"}),
    SERVER_PROFILE: Profile(
        name=SERVER_PROFILE, title="Milvus 2.3", indexes=_milvus23_indexes(), unavailable=_UNAVAILABLE_23,
        metrics=ALL_FLOAT_METRICS + ("HAMMING", "JACCARD"), top_k=TOP_K_PARAM, dimension=DIMENSION_PARAM,
        index_file_size=INDEX_FILE_SIZE_PARAM,
        aliases={**INDEX_ALIASES, "BIN_FLAT": "FLAT", "BIN_IVF_FLAT": "IVF_FLAT"}, binary_prefix="BIN_"),
}


def get_profile(profile: Any = DEFAULT_PROFILE) -> Profile:
    """The Profile named ``profile`` (a Profile passes through); InvalidParameterError if there is none."""
    if isinstance(profile, Profile):
        return profile
    name = plain_str(profile)
    if name is None or name not in PROFILES:
        raise InvalidParameterError(f"profile={show_value(profile)} is unknown; allowed: {', '.join(PROFILES)}")
    return PROFILES[name]
