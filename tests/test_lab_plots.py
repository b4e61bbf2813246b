"""Every lab plot returns a matplotlib Figure with labelled axes, a title and a legend; saving writes files."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
from conftest import clustered
from matplotlib.figure import Figure

from milvus_lab import lab
from milvus_lab.lab.figure_check import assert_clean_layout
from milvus_lab.lab.measurements import param_column, results_frame
from milvus_lab.lab.plots import format_mb, format_seconds


def row(index_type, build, search, recall, qps, p99, build_s=1.0, memory=10.0, status="ok"):
    out = {"index_type": index_type, "build_params": lab.setting.params_json(build),
           "search_params": lab.setting.params_json(search), "recall": recall, "qps": qps,
           "p50_ms": p99 / 3, "p95_ms": p99 / 1.5, "p99_ms": p99, "build_s": build_s, "memory_mb": memory,
           "status": status, "note": "", "k": 10, "nq": 100, "n": 5000, "dim": 16, "metric": "L2",
           "dataset": "hand-made"}
    for name, value in build.items():
        out[param_column(index_type, "build", name)] = value
    for name, value in search.items():
        out[name] = value
    return out


@pytest.fixture(scope="module")
def results():
    rows = [row("FLAT", {}, {}, 1.0, 900.0, 2.0, 0.0, 0.3)]
    for nlist in (32, 64):
        for nprobe, (r, q) in zip((1, 2, 4, 8), ((0.6, 9000), (0.8, 7000), (0.93, 4000), (0.99, 2000))):
            rows.append(row("IVF_FLAT", {"nlist": nlist}, {"nprobe": nprobe}, r - nlist / 1000, q + nlist, 1000 / q))
    for ef, (r, q) in zip((10, 20, 40), ((0.85, 12000), (0.95, 8000), (0.995, 5000))):
        rows.append(row("HNSW", {"M": 16, "efConstruction": 200}, {"ef": ef}, r, q, 900 / q, 3.0, 12.0))
    rnsg = {"search_length": 45, "out_degree": 50, "candidate_pool_size": 300, "knng": 70}
    for sl, (r, q) in zip((10, 20, 40), ((0.9, 6000), (0.96, 4000), (0.99, 2500))):
        rows.append(row("RNSG", rnsg, {"search_length": sl}, r, q, 900 / q, 2.0, 5.0))
    rows.append({**row("IVF_PQ", {}, {}, float("nan"), float("nan"), float("nan"), status="skipped"),
                 "note": "IVF_PQ cannot index 50-dimensional vectors: no m is allowed for dimension 50"})
    return results_frame(rows)


def check_axes(fig):
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert axes
    for ax in axes:
        if ax.get_xlabel() or ax.get_ylabel():
            assert ax.get_ylabel(), "every axis has a y label"
    assert any(ax.get_xlabel() for ax in axes)
    assert any(ax.get_title() for ax in axes)


def test_recall_qps_plot(results):
    fig = lab.plot_recall_qps(results)
    check_axes(fig)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Recall (10-recall@10)"
    assert "Queries per second" in ax.get_ylabel() and ax.get_yscale() == "log"
    assert "hand-made" in ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["FLAT", "IVF_FLAT", "HNSW", "RNSG"]  # skipped rows are not drawn
    ivf_line = next(line for line in ax.get_lines() if line.get_label() == "IVF_FLAT")
    assert list(ivf_line.get_xdata()) == sorted(ivf_line.get_xdata())  # the frontier, by recall


def test_recall_latency_plot(results):
    fig = lab.plot_recall_latency(results, percentile="p95")
    check_axes(fig)
    assert "p95" in fig.axes[0].get_ylabel()
    with pytest.raises(ValueError, match="percentile"):
        lab.plot_recall_latency(results, percentile="p42")


def test_build_memory_plot(results):
    fig = lab.plot_build_memory(results)
    check_axes(fig)
    ylabels = [ax.get_ylabel() for ax in fig.axes]
    assert ylabels == ["Build time (s)", "Index memory (MB)"]
    ticks = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert ticks == ["FLAT", "IVF_FLAT\nnlist=32", "IVF_FLAT\nnlist=64", "HNSW\nM=16\nefConstruction=200",
                     "RNSG\nbuild search_length=45\nout_degree=50\ncandidate_pool_size=300\nknng=70"]


def test_parameter_plot_has_two_panels_sharing_x_not_twin_axes(results):
    fig = lab.plot_parameter(results, "IVF_FLAT")
    check_axes(fig)
    recall_ax, qps_ax = fig.axes
    assert qps_ax.get_xlabel() == "nprobe (search parameter of IVF_FLAT)"
    assert qps_ax.get_xscale() == "log" and recall_ax.get_xscale() == "log"
    assert recall_ax.get_shared_x_axes().joined(recall_ax, qps_ax)
    # stacked, not overlaid: the QPS panel lies below the recall panel
    assert qps_ax.get_position().y1 <= recall_ax.get_position().y0
    assert len(recall_ax.get_lines()) == 2 and len(qps_ax.get_lines()) == 2  # one line per build
    assert recall_ax.get_ylabel().startswith("Recall") and qps_ax.get_ylabel().startswith("Queries per second")
    assert [t.get_text() for t in recall_ax.get_legend().get_texts()] == ["nlist=32", "nlist=64"]
    assert {"nprobe=1", "nprobe=8"} <= {t.get_text() for t in recall_ax.texts}
    with pytest.raises(ValueError, match="no measured rows for ANNOY"):
        lab.plot_parameter(results, "ANNOY")
    with pytest.raises(ValueError, match="no measured rows for IVF_PQ .IVF_PQ cannot index 50-dimensional"):
        lab.plot_parameter(results, "IVF_PQ")
    with pytest.raises(ValueError, match="FLAT has no search parameter"):
        lab.plot_parameter(results, "FLAT")


@pytest.mark.slow
def test_plot_all_and_save(results, tmp_path):
    figs = lab.plot_all(results)
    assert set(figs) == {"recall_qps", "recall_p99", "build_memory", "param_IVF_FLAT", "param_HNSW", "param_RNSG"}
    written = lab.save_plots(results, tmp_path / "plots", formats=["png"], dpi=40)
    assert sorted(p.name for p in written) == sorted(f"{name}.png" for name in figs)
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_figure_one_call(results, tmp_path):
    fig = lab.plot_recall_qps(results)
    assert lab.save_figure(fig, tmp_path / "a") == [tmp_path / "a.png", tmp_path / "a.svg"]
    assert lab.save_figure(fig, tmp_path / "b.svg") == [tmp_path / "b.svg"]
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "b.svg").read_text()


def test_nothing_to_plot_is_a_clear_error(results):
    with pytest.raises(ValueError, match="no measured rows"):
        lab.plot_recall_qps(results[results["status"] != "ok"])


def test_plots_of_a_real_comparison():
    ds = lab.from_array(clustered(1500, 16, seed=8), n_queries=50, name="blobs")
    with lab.Session() as session:
        df = lab.compare(ds, ["FLAT", "IVF_FLAT"], session=session, progress=False, latency_queries=5)
    for fig in lab.plot_all(df).values():
        check_axes(fig)


def test_rnsg_parameter_plot_names_the_build_and_the_search_search_length(results):
    fig = lab.plot_parameter(results, "RNSG")
    recall_ax, qps_ax = fig.axes
    assert qps_ax.get_xlabel() == "search_length (search parameter of RNSG)"
    [legend] = [t.get_text().replace("\n", " ") for t in recall_ax.get_legend().get_texts()]  # wrapped to fit
    assert legend.startswith("build search_length=45, out_degree=50")
    assert "search_length=10" in {t.get_text() for t in recall_ax.texts}


def test_points_carry_their_parameter_values(results):
    texts = {t.get_text() for t in lab.plot_recall_qps(results).axes[0].texts}
    assert {"ef=10", "ef=40"} <= texts  # one build: the search parameter
    assert any(t.startswith("nlist=") and t.endswith(", nprobe=8") for t in texts)  # several builds: both
    assert "build search_length=45, out_degree=50, candidate_pool_size=300, knng=70, search_length=10" not in texts
    assert "search_length=10" in texts


def test_memory_and_time_bars_are_readable():
    assert format_mb(72 / 1024) == "72 KiB" and format_mb(7.23e-05) == "76 B" and format_mb(12.34) == "12.3 MB"
    assert format_seconds(4.65e-05) == "46 µs" and format_seconds(0.0032) == "3.2 ms"
    assert format_seconds(2.5) == "2.5 s" and format_seconds(0.0) == "0 s"
    df = results_frame([row("FLAT", {}, {}, 1.0, 900.0, 2.0, 4.65e-05, 0.572), row("HNSW", {"M": 16}, {"ef": 10},
                                                                                     0.9, 9000.0, 0.2, 3.0, 12.0)])
    fig = lab.plot_build_memory(df)
    labels = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "586 KiB" in labels and "12 MB" in labels and "46 µs" in labels and "3 s" in labels
    assert not any("e-0" in t for t in labels)


def test_the_figure_says_why_an_index_type_is_missing(results):
    for fig in (lab.plot_recall_qps(results), lab.plot_build_memory(results)):
        notes = " ".join(t.get_text() for t in fig.texts)
        assert "Not shown: IVF_PQ cannot index 50-dimensional vectors: no m is allowed for dimension 50" in notes
    assert lab.plots.missing_reasons(results) == {
        "IVF_PQ": "IVF_PQ cannot index 50-dimensional vectors: no m is allowed for dimension 50"}
    notes = " ".join(t.get_text() for t in lab.plot_parameter(results, "HNSW").texts)
    assert "IVF_PQ" not in notes  # a type's own plot names only its own absence


def test_every_plot_is_laid_out_without_overlaps(results):
    for fig in lab.plot_all(results).values():
        assert_clean_layout(fig)  # no text on text, no legend on data, nothing past the edge
    notes = " ".join(t.get_text() for t in lab.plot_recall_qps(results).texts)
    assert "Faded points are the type's other settings" in notes
