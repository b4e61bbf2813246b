"""RNSG is faiss's NSG, parameter for parameter: the engine's recall at every search_length is within 0.02 of
an IndexNSGFlat built here by hand from an exact k-NN graph (faiss.knn, the row itself dropped by id) with
R = out_degree, GK = knng, L = the build's search_length, C = candidate_pool_size (the mapping of Milvus 0.10's
knowhere NSG), both built on one thread (NSG's link step is reproducible only there). A build that mapped
the parameters otherwise is caught: the same oracle with L = C = candidate_pool_size is shown to differ.

The report says so when a build's recall falls as its search parameter grows beyond the recall intervals.
"""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from milvus_lab import lab, spec
from milvus_lab.datasets import load_glove
from milvus_lab.lab import Session
from milvus_lab.lab.measurements import results_frame
from milvus_lab.lab.setting import params_json
from milvus_lab.lab.metrics import recall_per_query
from milvus_lab.lab.report import markdown_report, non_monotone_warnings, warnings_of
from milvus_lab.lab.timing import fixed_threads

SEARCH_LENGTHS = (10, 20, 40, 80, 160, 300)
TOLERANCE = 0.02
K = 10


def blobs(n: int, nq: int, dim: int, *, centres: int = 50, scale: float = 4.0, seed: int = 0
          ) -> tuple[np.ndarray, np.ndarray]:
    """Base rows and queries drawn the same way: Gaussian centres times ``scale``, unit noise."""
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centres, dim)) * scale

    def draw(m: int) -> np.ndarray:
        return (middle[rng.integers(0, centres, m)] + rng.standard_normal((m, dim))).astype(np.float32)

    return draw(n), draw(nq)


def faiss_nsg_recalls(dataset, params: dict[str, int], *, build_l: int | None = None,
                      build_c: int | None = None) -> list[float]:
    """Recall of faiss's own IndexNSGFlat on an exact k-NN graph, at each search length (one thread)."""
    base = dataset.base
    _, knn = faiss.knn(base, base, params["knng"] + 1)
    rows = np.arange(len(base))[:, None]
    not_self = np.argsort(knn == rows, axis=1, kind="stable")[:, :params["knng"]]
    graph = np.ascontiguousarray(np.take_along_axis(knn, not_self, axis=1))
    assert not (graph == rows).any()
    with fixed_threads(1):
        index = faiss.IndexNSGFlat(base.shape[1], params["out_degree"])
        index.GK = params["knng"]
        index.nsg.L = params["search_length"] if build_l is None else build_l
        index.nsg.C = params["candidate_pool_size"] if build_c is None else build_c
        index.build(base, graph)
        out = []
        for search_length in SEARCH_LENGTHS:
            index.nsg.search_L = search_length
            out.append(float(recall_per_query(index.search(dataset.queries, K)[1], dataset, K).mean()))
    return out


def engine_recalls(dataset, params: dict[str, int]) -> tuple[list[float], Session, object]:
    """Recall of the engine's RNSG (a lab session on the in-memory engine, one thread) at each search length."""
    session = Session(threads=1)
    with session.running():
        build = session.build(dataset, "RNSG", params)
        assert build.ok, build.note
        assert build.report.build_info["graph_builder"] == "exact k-NN"
        out = [float(session.recall_of(dataset, build, {"search_length": s}, K).mean()) for s in SEARCH_LENGTHS]
    return out, session, build


def assert_faithful(dataset, params: dict[str, int]) -> tuple[list[float], Session, object]:
    ours, session, build = engine_recalls(dataset, params)
    theirs = faiss_nsg_recalls(dataset, params)
    gaps = [abs(a - b) for a, b in zip(ours, theirs)]
    assert max(gaps) <= TOLERANCE, f"engine {ours} vs faiss NSG {theirs} at search_length {SEARCH_LENGTHS}"
    return ours, session, build


def test_rnsg_matches_faiss_nsg_on_small_clustered_data_and_a_wrong_mapping_would_show():
    base, queries = blobs(4000, 200, 32)
    dataset = lab.from_array(base, queries=queries, name="blobs-4k")
    params = spec.default_build_params("RNSG")
    ours, session, _ = assert_faithful(dataset, params)
    session.close()
    assert min(ours) < 0.9  # the data is hard enough at small search lengths for a difference to show
    # the oracle tells mappings apart: L = C = candidate_pool_size gives another curve
    other = faiss_nsg_recalls(dataset, params, build_l=params["candidate_pool_size"])
    assert max(abs(a - b) for a, b in zip(ours, other)) > 5 * TOLERANCE


@pytest.mark.slow
def test_rnsg_matches_faiss_nsg_on_20k_clustered_data_and_the_report_says_recall_falls():
    base, queries = blobs(20_000, 1000, 128)
    dataset = lab.from_array(base, queries=queries, name="blobs-20k")
    params = spec.default_build_params("RNSG")
    ours, session, build = assert_faithful(dataset, params)
    try:
        with session.running():
            rows = session.measure_settings(dataset, build, [{"search_length": s} for s in SEARCH_LENGTHS], k=K,
                                            latency_queries=10, repeats=1)
    finally:
        session.close()
    frame = results_frame(rows)
    assert list(frame["recall"].round(6)) == [round(r, 6) for r in ours]
    falls = [i for i in range(1, len(ours)) if frame["recall_hi"].iloc[i] < frame["recall_lo"].iloc[:i].max()]
    sentences = non_monotone_warnings(frame)
    assert bool(falls) == bool(sentences)  # measured on this data: recall does fall (NSG's own behaviour)
    assert sentences and sentences[0].startswith("Recall falls as search_length grows: RNSG")
    assert sentences[0] in warnings_of(frame) and sentences[0] in markdown_report(frame)


@pytest.mark.slow
def test_rnsg_matches_faiss_nsg_on_glove_20k():
    vectors, _ = load_glove(21_000)
    dataset = lab.from_array(np.ascontiguousarray(vectors[:20_000]), queries=np.ascontiguousarray(vectors[20_000:]),
                             name="glove-20k")
    _, session, _ = assert_faithful(dataset, spec.default_build_params("RNSG"))
    session.close()


# ------------------------------------------------------------------ the report's non-monotone sentence
def _row(search_length: int, recall: float, half_width: float, *, index_type: str = "RNSG") -> dict:
    return {"index_type": index_type, "build_params": params_json({"out_degree": 50}),
            "search_params": params_json({"search_length": search_length}), "recall": recall,
            "recall_lo": recall - half_width, "recall_hi": recall + half_width, "qps": 1000.0, "qps_lo": 990.0,
            "qps_hi": 1010.0, "p99_ms": 1.0, "build_s": 1.0, "memory_mb": 1.0, "status": "ok", "note": "", "k": 10,
            "nq": 1000, "n": 20_000, "dim": 128, "metric": "L2", "dataset": "d", "repeats": 3}


def test_the_report_names_a_fall_beyond_the_intervals_with_both_points():
    frame = results_frame([_row(10, 0.47, 0.03), _row(20, 0.25, 0.03), _row(40, 0.36, 0.03), _row(80, 0.64, 0.03)])
    (sentence,) = non_monotone_warnings(frame)
    assert sentence.startswith("Recall falls as search_length grows: RNSG out_degree=50")
    assert "0.470 (0.440-0.500) at search_length=10 but 0.250 (0.220-0.280) at search_length=20" in sentence
    assert sentence in warnings_of(frame)


def test_the_report_is_silent_on_a_fall_within_the_intervals_or_without_them():
    within = results_frame([_row(10, 0.50, 0.03), _row(20, 0.47, 0.03), _row(40, 0.80, 0.03)])
    assert non_monotone_warnings(within) == []
    rising = results_frame([_row(10, 0.50, 0.01), _row(20, 0.70, 0.01), _row(40, 0.90, 0.01)])
    assert non_monotone_warnings(rising) == []
    no_intervals = results_frame([_row(10, 0.9, 0.0), _row(20, 0.1, 0.0)]).assign(recall_lo=np.nan,
                                                                                   recall_hi=np.nan)
    assert non_monotone_warnings(no_intervals) == []
    # settings of different builds are never compared with each other
    other = _row(20, 0.10, 0.01)
    other["build_params"] = params_json({"out_degree": 10})
    assert non_monotone_warnings(results_frame([_row(10, 0.90, 0.01), other])) == []
