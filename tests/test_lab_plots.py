"""Every lab plot returns a matplotlib Figure with labelled axes, a title and a legend; saving writes files."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
from conftest import clustered
from matplotlib.figure import Figure

from milvus_lab import lab
from milvus_lab.lab.measurements import results_frame


def row(index_type, build, search, recall, qps, p99, build_s=1.0, memory=10.0, status="ok"):
    out = {"index_type": index_type, "build_params": lab.measurements.format_params(build),
           "search_params": lab.measurements.format_params(search), "recall": recall, "qps": qps,
           "p50_ms": p99 / 3, "p95_ms": p99 / 1.5, "p99_ms": p99, "build_s": build_s, "memory_mb": memory,
           "status": status, "note": "", "k": 10, "nq": 100, "n": 5000, "dim": 16, "metric": "L2",
           "dataset": "hand-made"}
    for name, value in {**build, **search}.items():
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
    rows.append({**row("IVF_PQ", {}, {}, float("nan"), float("nan"), float("nan"), status="skipped"),
                 "note": "IVF_PQ skipped: no m is allowed for dimension 50"})
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
    assert labels == ["FLAT", "IVF_FLAT", "HNSW"]  # skipped rows are not drawn
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
    assert ticks == ["FLAT", "IVF_FLAT\nnlist=32", "IVF_FLAT\nnlist=64", "HNSW\nM=16\nefConstruction=200"]


def test_parameter_plot(results):
    fig = lab.plot_parameter(results, "IVF_FLAT")
    check_axes(fig)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "nprobe (search parameter of IVF_FLAT)"
    assert ax.get_xscale() == "log"
    assert len(ax.get_lines()) == 2  # one recall line per build
    assert fig.axes[1].get_ylabel().startswith("Queries per second")
    with pytest.raises(ValueError, match="no measured rows for ANNOY"):
        lab.plot_parameter(results, "ANNOY")
    with pytest.raises(ValueError, match="FLAT has no search parameter"):
        lab.plot_parameter(results, "FLAT")


def test_plot_all_and_save(results, tmp_path):
    figs = lab.plot_all(results)
    assert set(figs) == {"recall_qps", "recall_p99", "build_memory", "param_IVF_FLAT", "param_HNSW"}
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
