"""The teaching views: each view's numbers are checked against the library it opens up, and each plot is a
labelled matplotlib Figure that renders."""

from __future__ import annotations

import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import faiss
import numpy as np
import pandas as pd
import pytest
from conftest import clustered
from matplotlib.figure import Figure

from milvus_lab import spec, views
from milvus_lab.errors import (
    BuildIndexError,
    IllegalDimensionError,
    IllegalRecordError,
    IllegalTopKError,
    InvalidParameterError,
    ParamError,
    StatusCode,
)
from milvus_lab.views._common import build_ivf
from milvus_lab.views.quantization import CODE_BYTES

N, DIM = 2000, 16


@pytest.fixture(scope="module")
def data():
    """2000 base vectors and 40 queries drawn from the same 50 clusters (16-d)."""
    x = clustered(N + 40, DIM, seed=3)
    return x[:N], x[N:]


def assert_figure(fig):
    """A Figure (not pyplot state) with a title, labelled axes, that renders to PNG."""
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes] + [fig._suptitle.get_text() if fig._suptitle else ""]
    assert any(titles)
    assert fig.axes
    for ax in fig.axes:
        assert ax.get_ylabel(), "every axis has a y label"
    for ax in fig.axes:  # a twin axis shares its x label with its sibling
        assert any(s.get_xlabel() for s in ax.get_shared_x_axes().get_siblings(ax)), "every axis has an x label"
    fig.savefig(io.BytesIO(), format="png", dpi=50)


# --------------------------------------------------------------------------------------------------
# IVF
# --------------------------------------------------------------------------------------------------
def test_ivf_probe_cells_candidates_and_result(data):
    base, queries = data
    faiss.cvar.indexIVF_stats.reset()
    probe = views.ivf_probe(base, queries[0], nlist=32, nprobe=4, k=10)
    assert faiss.cvar.indexIVF_stats.ndis == probe.n_candidates  # faiss scanned exactly the probed cells

    assert len(probe.probed) == 4 and len(set(probe.probed.tolist())) == 4
    assert probe.centroids.shape == (32, DIM)
    centroid_d = ((probe.centroids - probe.query) ** 2).sum(1)
    assert probe.probed.tolist() == np.argsort(centroid_d)[:4].tolist()  # the nprobe closest, closest first
    np.testing.assert_allclose(probe.probe_distances, np.sort(centroid_d)[:4], rtol=1e-4)
    assert np.all(np.diff(probe.probe_distances) >= 0)

    own = ((base[:, None, :] - probe.centroids[None]) ** 2).sum(-1).argmin(1)
    assert (probe.assignment == own).mean() > 0.999  # each vector lives in its nearest centroid's cell
    assert probe.cell_sizes.sum() == N
    assert probe.n_candidates == probe.cell_sizes[probe.probed].sum()
    assert np.isin(probe.assignment[probe.candidates], probe.probed).all()
    assert np.isin(probe.result_ids, probe.candidates).all()  # answers come from the scanned cells

    # a true neighbour is found exactly when its cell was probed (IVF_FLAT ranks candidates exactly)
    assert probe.true_found.tolist() == probe.true_probed.tolist()
    assert probe.recall == pytest.approx(probe.true_probed.mean())
    cells = probe.cells()
    assert cells["probe_rank"].tolist() == [1, 2, 3, 4]
    assert cells["size"].sum() == probe.n_candidates
    assert cells["true_neighbours"].sum() == probe.true_probed.sum()
    assert "nprobe=4" in probe.summary()


def test_ivf_probe_every_cell_is_exact(data):
    base, queries = data
    probe = views.ivf_probe(base, queries[1], nlist=16, nprobe=16, k=5)
    assert probe.n_candidates == N
    assert probe.recall == 1.0
    assert probe.true_probed.all()


def test_ivf_probe_inner_product(data):
    base, queries = data
    probe = views.ivf_probe(base, queries[2], nlist=16, nprobe=3, k=5, metric="IP")
    assert probe.probed.tolist() == np.argsort(-(probe.centroids @ probe.query))[:3].tolist()
    assert np.all(np.diff(probe.result_distances) <= 0)  # IP: best (largest) first


def test_ivf_recall_curve_grows_with_nprobe(data):
    base, queries = data
    curve = views.ivf_recall_curve(base, queries, nlist=32, k=10)
    assert curve["nprobe"].tolist() == [1, 2, 4, 8, 16, 32]  # the spec's default sweep, up to nlist
    assert np.all(np.diff(curve["recall"]) >= -1e-9)  # more cells scanned: never a worse top-k
    assert curve["recall"].iloc[-1] == 1.0
    assert np.all(np.diff(curve["candidates_scanned"]) > 0)
    assert curve["candidates_scanned"].iloc[-1] == N
    assert curve["recall"].iloc[0] < 1.0
    assert set(curve.columns) >= {"nprobe", "recall", "candidates_scanned", "scanned_fraction", "nlist", "k"}


def test_ivf_refuses_with_the_spec_message(data):
    base, queries = data
    with pytest.raises(InvalidParameterError) as err:
        views.ivf_probe(base, queries[0], nlist=32, nprobe=64)
    with pytest.raises(InvalidParameterError) as expected:
        spec.validate_search("IVF_FLAT", {"nprobe": 64}, top_k=10, build_params={"nlist": 32})
    assert str(err.value) == str(expected.value) and "32" in str(err.value)
    with pytest.raises(InvalidParameterError) as err:
        views.ivf_probe(base, queries[0], nlist=0, nprobe=1)
    assert err.value.code == StatusCode.ILLEGAL_NLIST
    with pytest.raises(BuildIndexError, match="at least nlist rows"):
        views.ivf_probe(base[:100], queries[0], nlist=128, nprobe=1)
    with pytest.raises(ParamError):
        views.ivf_recall_curve(base, queries, nlist=8, nprobes=[])
    with pytest.raises(IllegalDimensionError):
        views.ivf_probe(base, queries[0, :8], nlist=8, nprobe=1)
    bad = base.copy()
    bad[5, 3] = np.nan
    with pytest.raises(IllegalRecordError, match="row 5"):
        views.ivf_probe(bad, queries[0], nlist=8, nprobe=1)
    with pytest.raises(IllegalTopKError):
        views.ivf_probe(base[:20], queries[0], nlist=2, nprobe=1, k=50)
    with pytest.raises(ParamError, match="L2, IP"):
        views.ivf_probe(base, queries[0], nlist=8, nprobe=1, metric="HAMMING")


def test_ivf_plots(data):
    base, queries = data
    probe = views.ivf_probe(base, queries[0], nlist=32, nprobe=3)
    assert_figure(views.plot_ivf_probe(probe, labels=[f"w{i}" for i in range(N)]))
    assert_figure(views.plot_ivf_recall_curve(views.ivf_recall_curve(base, queries[:10], nlist=16, nprobes=[1, 4])))


# --------------------------------------------------------------------------------------------------
# HNSW
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def traces(data):
    base, queries = data
    return [views.hnsw_trace(base, q, M=8, efConstruction=40, ef=16, k=10) for q in queries[:4]]


def test_hnsw_replay_agrees_with_faiss(traces):
    for trace in traces:
        assert trace.result_ids.tolist() == trace.faiss_ids.tolist()
        np.testing.assert_allclose(trace.result_distances, trace.faiss_distances, rtol=1e-4, atol=1e-5)
        # faiss counts every distance but the entry point's
        assert trace.distance_evaluations == trace.faiss_ndis + 1
        assert trace.distance_evaluations < N  # far fewer than brute force


def test_hnsw_path_descends_the_layers_along_edges(traces):
    for trace in traces:
        path, graph = trace.path, trace.graph
        layers, nodes = path["layer"].to_numpy(), path["node"].to_numpy()
        assert nodes[0] == graph.entry_point and layers[0] == graph.max_level
        assert np.all(np.diff(layers) <= 0)  # never climbs
        assert layers[-1] == 0
        assert nodes[-1] == trace.result_ids[0] == trace.faiss_ids[0]  # the path ends at the answer
        for i in range(1, len(path)):
            if nodes[i] == nodes[i - 1]:
                assert layers[i] == layers[i - 1] - 1  # dropping one layer at the same node
            else:
                assert layers[i] == layers[i - 1]
                assert nodes[i] in graph.neighbours(nodes[i - 1], layers[i])  # a hop follows an edge
        upper = path[path["layer"] > 0]
        for _, steps in upper.groupby("layer"):
            assert np.all(np.diff(steps["distance"]) < 0)  # greedy: every upper-layer hop gets closer
        assert trace.hops == int((nodes[1:] != nodes[:-1]).sum())
        table = trace.layers()
        assert table["hops"].sum() == trace.hops
        assert table["distance_evaluations"].sum() == trace.distance_evaluations
        assert trace.expanded > 0
        d = ((trace.vectors[nodes] - trace.query) ** 2).sum(1)
        np.testing.assert_allclose(path["distance"], d, rtol=1e-4, atol=1e-5)


def test_hnsw_finds_the_true_nearest_on_easy_data(data):
    base, queries = data
    for q in queries[5:8]:
        trace = views.hnsw_trace(base, q, M=16, efConstruction=100, ef=64, k=10)
        assert trace.path["node"].iloc[-1] == trace.true_ids[0]
        assert trace.recall >= 0.9


def test_hnsw_levels_are_geometric(traces):
    graph = traces[0].graph
    per_layer = graph.nodes_per_layer()
    assert per_layer[0] == N
    assert np.all(np.diff(per_layer) < 0)
    # each layer keeps about 1 in M of the layer below (M=8): binomial tolerance of 5 sigma
    for layer in (1, 2):
        p = 8.0 ** -layer
        assert abs(per_layer[layer] - N * p) < 5 * np.sqrt(N * p * (1 - p)) + 1
    assert len(per_layer) == graph.max_level + 1
    assert traces[0].layers()["nodes"].tolist() == per_layer[::-1].tolist()


def test_hnsw_build_is_repeatable(data, traces):
    base, queries = data
    again = views.hnsw_trace(base, queries[0], M=8, efConstruction=40, ef=16, k=10)
    assert again.path.equals(traces[0].path)


def test_hnsw_inner_product(data):
    base, queries = data
    norm = base / np.linalg.norm(base, axis=1, keepdims=True)
    trace = views.hnsw_trace(norm, queries[0] / np.linalg.norm(queries[0]), M=8, efConstruction=40, ef=32,
                             k=5, metric="IP")
    assert trace.result_ids.tolist() == trace.faiss_ids.tolist()
    assert np.all(np.diff(trace.result_distances) <= 0)
    assert trace.path["node"].iloc[-1] == trace.result_ids[0]


def test_hnsw_refuses_with_the_spec_message(data):
    base, queries = data
    with pytest.raises(InvalidParameterError, match="ef >= top_k"):
        views.hnsw_trace(base, queries[0], M=8, efConstruction=40, ef=5, k=10)
    with pytest.raises(InvalidParameterError, match="4 <= M <= 64"):
        views.hnsw_trace(base, queries[0], M=3, efConstruction=40, ef=16)
    with pytest.raises(InvalidParameterError, match="efConstruction"):
        views.hnsw_trace(base, queries[0], M=8, efConstruction=4, ef=16)


def test_hnsw_plot(traces):
    fig = views.plot_hnsw_trace(traces[0], labels=[f"w{i}" for i in range(N)])
    assert_figure(fig)
    assert "hops" in fig.axes[1].get_title()


# --------------------------------------------------------------------------------------------------
# Quantization
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def errors(data):
    base, _ = data
    return pd.concat([views.quantization_error(base, "IVF_FLAT", {"nlist": 16}),
                      views.quantization_error(base, "IVF_SQ8", {"nlist": 16}),
                      views.quantization_error(base, "IVF_PQ", {"nlist": 16, "m": 4})], ignore_index=True)


def test_quantization_error_sq8_much_smaller_than_pq(errors):
    by = {t: g for t, g in errors.groupby("index_type")}
    assert all(len(g) == N for g in by.values())
    assert (errors["error"] >= 0).all()
    assert by["IVF_FLAT"]["error"].max() < 1e-4  # raw storage: nothing lost
    sq8, pq = by["IVF_SQ8"]["relative_error"], by["IVF_PQ"]["relative_error"]
    assert 0 < sq8.median() < pq.median() / 5
    assert by["IVF_FLAT"]["bytes_per_vector"].iloc[0] == 4 * DIM
    assert by["IVF_SQ8"]["bytes_per_vector"].iloc[0] == DIM
    assert by["IVF_PQ"]["bytes_per_vector"].iloc[0] == 4
    assert (errors["raw_bytes_per_vector"] == 4 * DIM).all()
    summary = views.quantization_summary(errors).set_index("index_type")
    assert summary.loc["IVF_SQ8", "compression"] == 4 and summary.loc["IVF_PQ", "compression"] == 16
    assert summary.loc["IVF_PQ", "params"] == "nlist=16, m=4"


def test_bytes_per_vector_match_faiss_codes(data):
    base, _ = data
    for index_type, params in (("IVF_FLAT", {"nlist": 4}), ("IVF_SQ8", {"nlist": 4}), ("IVF_PQ", {"nlist": 4, "m": 8})):
        index = build_ivf(index_type, params, base[:600], "L2")
        assert index.code_size == CODE_BYTES[index_type](DIM, params)


def test_quantization_refuses_pq_on_50d_with_the_spec_message():
    x50 = clustered(600, 50, seed=1)
    with pytest.raises(InvalidParameterError, match="no m is allowed for dimension 50"):
        views.quantization_error(x50, "IVF_PQ", {"nlist": 8, "m": 10})
    with pytest.raises(InvalidParameterError, match="no m is allowed for dimension 50"):
        views.quantization_error(x50, "IVF_PQ")
    x48 = views.pca_project(x50, 48)
    assert x48.shape == (600, 48) and x48.dtype == np.float32
    out = views.quantization_error(x48, "IVF_PQ", {"nlist": 8, "m": 8})
    assert out["bytes_per_vector"].iloc[0] == 8
    with pytest.raises(BuildIndexError, match="256"):
        views.quantization_error(x48[:200], "IVF_PQ", {"nlist": 8, "m": 8})
    with pytest.raises(InvalidParameterError, match="IVF_SQ8"):
        views.quantization_error(x48, "HNSW", {"M": 8, "efConstruction": 40})


def test_quantization_plot(errors):
    fig = views.plot_quantization_error(errors)
    assert_figure(fig)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]  # one legend under the axes
    assert any("16 B/vector" in t for t in legend) and any("4 B/vector" in t for t in legend)


# --------------------------------------------------------------------------------------------------
# ANNOY
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def annoy_curve(data):
    base, queries = data
    return views.annoy_search_k_curve(base, queries, n_trees=8, search_ks=[-1, 10, 40, 160, 640, 2560, 10240],
                                      k=10)


def test_annoy_recall_grows_with_search_k(annoy_curve):
    curve = annoy_curve[annoy_curve["search_k"] != -1]
    assert np.all(np.diff(curve["recall"]) >= -0.01)  # a longer walk only adds candidates
    assert np.all(np.diff(curve["candidates"]) >= 0)
    assert curve["recall"].iloc[-1] >= 0.9
    assert curve["recall"].iloc[0] < curve["recall"].iloc[-1]
    assert (curve["candidates"] <= N).all()
    default = annoy_curve[annoy_curve["search_k"] == -1].iloc[0]
    assert default["search_k_used"] == 8 * 10
    assert (annoy_curve["latency_ms"] > 0).all()


def test_annoy_default_sweep_and_refusals(data):
    base, queries = data
    curve = views.annoy_search_k_curve(base[:500], queries[:5], n_trees=2, k=5)
    assert curve["search_k"].iloc[0] == -1
    assert curve["search_k"].iloc[1:].tolist() == [5 * 2**i for i in range(10)]
    with pytest.raises(InvalidParameterError, match="search_k"):
        views.annoy_search_k_curve(base, queries, n_trees=8, search_ks=[5], k=10)
    with pytest.raises(InvalidParameterError, match="n_trees"):
        views.annoy_search_k_curve(base, queries, n_trees=0)


def test_annoy_plot(annoy_curve):
    assert_figure(views.plot_annoy_search_k_curve(annoy_curve))


# --------------------------------------------------------------------------------------------------
# Architecture
# --------------------------------------------------------------------------------------------------
def test_nothing_outside_views_imports_them():
    root = Path(views.__file__).parent.parent
    pattern = re.compile(r"^\s*(from|import)\s+(\.+|milvus_lab\.)?\S*\bviews\b", re.MULTILINE)
    for path in root.rglob("*.py"):
        if "views" not in path.relative_to(root).parts:
            assert not pattern.search(path.read_text()), f"{path} imports the teaching views"


def test_figures_render_as_png_in_a_notebook():
    from milvus_lab.figures import NotebookFigure
    fig = NotebookFigure()
    fig.add_subplot().plot([0, 1], [1, 0])
    assert fig._repr_png_().startswith(b"\x89PNG")


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_curves_are_stacked_panels_with_points_named_by_their_parameter(data, annoy_curve):
    """No twin axes (two y scales on one x axis make curves cross at meaningless points): two panels that
    share x, and every point says which setting gave it."""
    base, queries = data[0], data[1]
    fig = views.plot_ivf_recall_curve(views.ivf_recall_curve(base, queries[:10], nlist=16, nprobes=[1, 4, 16]))
    assert len(fig.axes) == 2 and fig.axes[0].get_shared_x_axes().joined(fig.axes[0], fig.axes[1])
    assert {"nprobe=1", "nprobe=4", "nprobe=16"} <= set(_texts(fig))
    fig = views.plot_annoy_search_k_curve(annoy_curve)
    assert len(fig.axes) == 2
    assert any(t.startswith("search_k=") for t in _texts(fig))


def test_view_recall_is_the_numerics_recall(data):
    from milvus_lab import numerics

    base, queries = data[0], data[1]
    curve = views.ivf_recall_curve(base, queries[:20], nlist=16, nprobes=[2])
    probe = views.ivf_probe(base, queries[0], nlist=16, nprobe=2)
    truth, _ = numerics.exact_knn(base, queries[:1], 10, "L2")
    assert probe.recall == numerics.recall(probe.result_ids[None, :], truth, 10, base=base, queries=queries[:1],
                                           metric="L2")
    assert 0 < curve["recall"].iloc[0] <= 1
