"""Every figure the lab and the teaching views draw, on realistic data (a small comparison on GloVe words with
a busy-machine warning and a skipped type, the views on the words themselves), has no overlapping text, no
legend over plotted data and no text past the figure's edge. The checker itself is tested on figures built
to have each defect (it must find them) and to have none."""

from __future__ import annotations

import dataclasses
import json

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from milvus_lab import lab, views
from milvus_lab.datasets import load_glove
from milvus_lab.errors import ParamError
from milvus_lab.figures import NotebookFigure, add_notes, legend_outside, place_labels
from milvus_lab.lab import concurrency as cc
from milvus_lab.lab.figure_check import (
    LEGEND_OVER_DATA,
    OUTSIDE_FIGURE,
    TEXT_OVERLAP,
    assert_clean_layout,
    layout_problems,
)
from milvus_lab.lab.plots import recall_fall
from milvus_lab.lab.timing import busy_warning

WORDS = 5000


# --------------------------------------------------------------------------------------------------
# The checker finds each defect, and nothing on a clean figure
# --------------------------------------------------------------------------------------------------
def kinds(fig: Figure) -> list[str]:
    return [p.kind for p in layout_problems(fig)]


def test_checker_finds_overlapping_text():
    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])
    ax.annotate("first label", (0.5, 0.5))
    ax.annotate("second label", (0.5, 0.5), xytext=(3, 2), textcoords="offset points")
    problems = layout_problems(fig)
    assert [p.kind for p in problems] == [TEXT_OVERLAP]
    assert "'first label' overlaps 'second label'" in str(problems[0])


def test_checker_finds_a_note_over_the_axis_label_and_past_the_edge():
    fig = Figure(figsize=(4, 3), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("the x label")
    fig.text(0.3, 0.03, "a note written where the x label is", va="center")
    fig.text(0.5, -0.05, "a note under the figure", va="top")
    found = layout_problems(fig)
    assert any(p.kind == TEXT_OVERLAP and "the x label" in p.detail for p in found)
    assert any(p.kind == OUTSIDE_FIGURE and "under the figure" in p.detail for p in found)


def test_checker_finds_a_legend_over_points_and_over_a_line():
    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    ax.scatter([0.05, 0.5], [0.95, 0.5], label="dots")
    ax.legend(loc="upper left")
    assert kinds(fig) == [LEGEND_OVER_DATA]
    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    ax.plot([0, 1], [1, 1.001], label="line")  # it crosses the legend, no vertex under it
    ax.plot([0, 1], [0, 1.001], "o", label="points")
    ax.set_xlim(-0.1, 1.1)
    ax.legend(loc="upper center")
    problems = layout_problems(fig)
    assert [p.kind for p in problems] == [LEGEND_OVER_DATA] and "segment(s)" in problems[0].detail


def test_checker_passes_a_clean_figure_and_a_legend_outside():
    fig = Figure(figsize=(6, 3), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [0, 1, 4], marker="o", label="curve")
    ax.annotate("end", (2, 4), xytext=(-20, -12), textcoords="offset points")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("a title")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    assert layout_problems(fig) == []
    assert_clean_layout(fig)


def test_checker_refuses_what_is_not_a_figure():
    with pytest.raises(ParamError, match="fig must be a matplotlib Figure; got str"):
        layout_problems("figure")
    with pytest.raises(ParamError, match="tolerance must be a number of pixels in .0, 100.; got -1"):
        layout_problems(Figure(), tolerance=-1)


# --------------------------------------------------------------------------------------------------
# Every lab plot, on a real comparison with a crowded note area
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def comparison() -> pd.DataFrame:
    """A comparison of six types on 4,000 GloVe words (most points at high recall), IVF_PQ skipped (no m for
    50-d), the busy-machine warning forced on so every kind of note is drawn."""
    ds = lab.load_glove_dataset(n=4000, n_queries=200)
    with lab.Session() as session:
        df = lab.compare(ds, ["FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "RNSG", "ANNOY"], budget="default",
                         session=session, progress=False, latency_queries=20)
    df["busy"] = True
    df.attrs["busy_warning"] = busy_warning(12, 14, 0.92, 3.1)
    return df


@pytest.fixture(scope="module")
def lab_figures(comparison) -> dict[str, Figure]:
    return lab.plot_all(comparison)


@pytest.mark.slow
def test_the_comparison_exercises_every_note(comparison):
    assert lab.plots.missing_reasons(comparison).keys() == {"IVF_PQ"}
    warned = lab.report.warnings_of(comparison)
    assert any(w.startswith("WARNING: busy machine") for w in warned) and len(warned) >= 2
    assert (comparison["recall"] > 0.9).sum() >= 12  # crowded where the labels matter


@pytest.mark.slow
@pytest.mark.parametrize("name", ["recall_qps", "recall_p99", "build_memory", "param_IVF_FLAT", "param_IVF_SQ8",
                                  "param_HNSW", "param_RNSG", "param_ANNOY"])
def test_lab_figure_layout(lab_figures, name):
    assert sorted(lab_figures) == sorted(["recall_qps", "recall_p99", "build_memory", "param_IVF_FLAT",
                                          "param_IVF_SQ8", "param_HNSW", "param_RNSG", "param_ANNOY"])
    assert_clean_layout(lab_figures[name])


@pytest.mark.slow
@pytest.mark.parametrize("plot", [lab.plot_recall_qps, lab.plot_recall_latency])
def test_frontier_plots_say_what_faded_points_and_bars_are(comparison, plot):
    fig = plot(comparison)
    notes = " ".join(t.get_text() for t in fig.texts)
    assert "faded points" in notes.lower() and "bars" in notes.lower()
    assert "Not shown: IVF_PQ cannot index 50-dimensional vectors" in notes
    assert "WARNING: busy machine" in notes
    assert all(t.get_window_extent().y1 <= min(ax.get_tightbbox().y0 for ax in fig.axes) + 1 for t in fig.texts)


# --------------------------------------------------------------------------------------------------
# Every teaching view, on GloVe words as the tutorials draw them
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def glove():
    vectors, words = load_glove(WORDS)
    return vectors, words


@pytest.mark.slow
def test_ivf_probe_layout(glove):
    vectors, words = glove
    probe = views.ivf_probe(vectors, vectors[words.index("king")], nlist=128, nprobe=4)
    assert_clean_layout(views.plot_ivf_probe(probe, labels=words))


@pytest.mark.slow
def test_ivf_recall_curve_layout(glove):
    vectors, _ = glove
    assert_clean_layout(views.plot_ivf_recall_curve(views.ivf_recall_curve(vectors[200:], vectors[:200], nlist=128)))


@pytest.mark.slow
def test_hnsw_trace_layout(glove):
    vectors, words = glove
    trace = views.hnsw_trace(vectors, vectors[words.index("paris")], M=16, efConstruction=200, ef=64)
    assert_clean_layout(views.plot_hnsw_trace(trace, labels=words))


@pytest.mark.slow
def test_quantization_layout(glove):
    vectors, _ = glove
    errors = pd.concat([views.quantization_error(vectors, "IVF_FLAT", {"nlist": 128}),
                        views.quantization_error(vectors, "IVF_SQ8", {"nlist": 128})])
    assert_clean_layout(views.plot_quantization_error(errors))
    vectors48 = views.pca_project(vectors, 48)
    errors48 = pd.concat([views.quantization_error(vectors48, "IVF_SQ8", {"nlist": 128}),
                          views.quantization_error(vectors48, "IVF_PQ", {"nlist": 128, "m": 8})])
    assert_clean_layout(views.plot_quantization_error(errors48))


@pytest.mark.slow
def test_annoy_search_k_layout(glove):
    vectors, _ = glove
    curve = views.annoy_search_k_curve(vectors[200:], vectors[:200], n_trees=16)
    assert_clean_layout(views.plot_annoy_search_k_curve(curve))


def test_the_views_data_is_the_tutorials(glove):
    vectors, words = glove
    assert vectors.shape == (WORDS, 50) and np.isfinite(vectors).all() and {"king", "paris"} <= set(words)


# --------------------------------------------------------------------------------------------------
# The layout helpers the plots use
# --------------------------------------------------------------------------------------------------
def test_labels_on_a_dense_cluster_never_overlap_and_the_rest_are_counted():
    fig = NotebookFigure(figsize=(5, 3.5), layout="constrained")
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    xs, ys = 0.99 + 0.01 * rng.random(40), 1000 + 500 * rng.random(40)
    ax.plot(xs, ys, "o", markersize=3, label="points")
    ax.set_xlim(0.9, 1.0)
    legend_outside(ax)
    left_out = place_labels(ax, xs, ys, [f"setting={i}" for i in range(40)])
    drawn = [t for t in ax.texts if t.get_text()]
    assert 0 < left_out < 40 and len(drawn) == 40 - left_out  # crowded: some placed, the rest counted
    assert_clean_layout(fig)
    with pytest.raises(ParamError, match="xs, ys and labels must have one entry per point; got 2, 2 and 1"):
        place_labels(ax, [1, 2], [1, 2], ["a"])
    with pytest.raises(ParamError, match="ax must be a matplotlib Axes; got NotebookFigure"):
        place_labels(fig, [1], [1], ["a"])


def test_notes_sit_under_the_axes_and_a_second_call_replaces_them():
    fig = NotebookFigure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("x label")
    add_notes(fig, [("a long note " * 30, "firebrick"), ("a second note", "0.3")])
    grown = fig.get_size_inches()[1]
    assert grown > 4
    assert_clean_layout(fig)
    add_notes(fig, [("only this note", "0.3")])
    assert [t.get_text() for t in fig.texts] == ["only this note"] and 4 < fig.get_size_inches()[1] < grown
    assert_clean_layout(fig)
    with pytest.raises(ParamError, match="notes must be a list of .text, colour. pairs"):
        add_notes(fig, "a note")


def test_a_plot_drawn_into_the_users_axes_keeps_its_notes_clear():
    df = lab.measurements.results_frame([
        {"index_type": "HNSW", "build_params": '{"M": 16}', "search_params": f'{{"ef": {ef}}}', "recall": r,
         "qps": q, "p99_ms": 1.0, "status": "ok", "note": "", "k": 10, "nq": 50, "n": 2000, "dim": 8}
        for ef, r, q in ((10, 0.8, 9000.0), (20, 0.9, 6000.0), (40, 0.97, 3000.0))])
    fig = Figure(figsize=(6, 4))
    lab.plot_recall_qps(df, ax=fig.add_subplot())
    assert any("Few queries" in t.get_text() for t in fig.texts)
    assert_clean_layout(fig)


def _rnsg_rows(recalls, lo_hi=None):
    rows = []
    for sl, r in zip((10, 40, 80, 160), recalls):
        row = {"index_type": "RNSG", "build_params": '{"search_length": 45}', "search_params":
               f'{{"search_length": {sl}}}', "search_length": sl, "recall": r, "qps": 1e5 / sl, "p99_ms": sl / 100,
               "status": "ok", "note": "", "k": 10, "nq": 1000, "n": 20000, "dim": 50}
        if lo_hi is not None:
            row.update(recall_lo=r - lo_hi, recall_hi=r + lo_hi)
        rows.append(row)
    return lab.measurements.results_frame(rows)


def test_the_parameter_plot_says_where_recall_falls_as_the_parameter_grows():
    falling = _rnsg_rows([0.90, 0.97, 0.95, 0.94], lo_hi=0.005)
    assert recall_fall(falling, "search_length", "search_length") == (
        "recall falls as search_length grows, from 0.970 at search_length=40 to 0.940 at search_length=160: a "
        "larger search_length is not always better here (beyond both measurements' 95% intervals).")
    noisy = _rnsg_rows([0.90, 0.97, 0.965, 0.968], lo_hi=0.01)
    assert "may be noise" in recall_fall(noisy, "search_length", "search_length")
    assert recall_fall(_rnsg_rows([0.90, 0.97, 0.98, 0.98]), "search_length", "search_length") == ""
    fig = lab.plot_parameter(falling, "RNSG")
    notes = " ".join(t.get_text().replace("\n", " ") for t in fig.texts)
    assert "RNSG build search_length=45: recall falls as search_length grows, from 0.970" in notes
    assert_clean_layout(fig)
    rising = " ".join(t.get_text() for t in lab.plot_parameter(_rnsg_rows([0.9, 0.97, 0.98, 0.99]), "RNSG").texts)
    assert "falls" not in rising


# --------------------------------------------------------------------------------------------------
# Concurrent clients, parity with a server, the forecast
# --------------------------------------------------------------------------------------------------
CONCURRENCY_SETTINGS = [("FLAT", {}, {}, 1.0, 900.0, 4), ("IVF_FLAT", {"nlist": 128}, {"nprobe": 8}, 0.93, 9000.0, 2),
                        ("IVF_FLAT", {"nlist": 128}, {"nprobe": 32}, 0.99, 6800.0, 2),
                        ("HNSW", {"M": 16, "efConstruction": 200}, {"ef": 32}, 0.95, 12000.0, 2),
                        ("HNSW", {"M": 16, "efConstruction": 200}, {"ef": 64}, 0.98, 7000.0, 2)]


def _concurrency_frame(settings: list[tuple] = CONCURRENCY_SETTINGS) -> pd.DataFrame:
    """Settings (type, build, search, recall, QPS of one client, clients where QPS stops growing) measured at
    1..16 clients as the lab records them: QPS grows to that level and stays flat within a 5% spread, p99
    grows with the queue beyond; batch QPS above every concurrent level; a busy machine. By default five
    settings on a 2-core machine: four stop growing at 2 clients, two of them 3% apart in QPS."""
    levels = (1, 2, 4, 8, 16)
    rows = []
    for index_type, build, search, recall, one_client, saturates in settings:
        row = {"index_type": index_type, "build_params": json.dumps(build), "search_params": json.dumps(search),
               **build, **search, "recall": recall, "qps": 2.6 * one_client, "p50_ms": 1e3 / one_client,
               "p99_ms": 1.5e3 / one_client, "status": "ok", "note": "", "k": 10, "nq": 1000, "n": 20000,
               "dim": 50, "busy": True, "concurrency_batch": 1}
        for n in levels:
            qps, p99 = one_client * min(n, saturates), 1.5e3 / one_client * max(1.0, n / saturates)
            for stem, value, lo, hi in (("qps", qps, 0.95, 1.05), ("p99_ms", p99, 0.9, 1.2),
                                        ("p50_ms", p99 / 2, 0.45, 0.6)):
                row[cc.column(stem, n)], row[cc.column(stem, n, "lo")] = value, value * lo
                row[cc.column(stem, n, "hi")] = value * hi
            row[f"calls_c{n}"], row[f"clients_failed_c{n}"] = 1000, 0
        rows.append(row)
    df = lab.measurements.results_frame(rows)
    df.attrs["busy_warning"] = busy_warning(5, 5, 0.92, 3.1)
    return df


def test_concurrency_layout():
    df = _concurrency_frame()
    assert cc.concurrency_table(df)["saturates_at"].tolist() == [4, 2, 2, 2, 2]
    fig = lab.plot_concurrency(df)
    assert_clean_layout(fig)
    notes = " ".join(t.get_text().replace("\n", " ") for t in fig.texts)
    assert cc.SATURATION_RULE in notes and "WARNING: busy machine" in notes
    rings = [line for line in fig.axes[0].get_lines() if line.get_markerfacecolor() == "none"]
    assert sorted((float(line.get_xdata()[0]), float(line.get_ydata()[0])) for line in rings) == [
        (2.0, 13600.0), (2.0, 14000.0), (2.0, 18000.0), (2.0, 24000.0), (4.0, 3600.0)]
    assert 1 <= sum(t.get_text() == "stops growing" for t in fig.axes[0].texts) <= 5
    assert_clean_layout(lab.plot_concurrency(df, target_recall=0.95))


def test_concurrency_layout_of_a_whole_sweep():
    """compare() with concurrency times every setting of every sweep: 36 lines, one legend entry each."""
    sweep = [(index_type, {"nlist": 128}, {"nprobe": i + 1}, 0.9, 800.0 + 400.0 * i, 2 + 2 * (i % 2))
             for i, index_type in enumerate(["IVF_FLAT", "IVF_SQ8", "IVF_PQ"] * 12)]
    fig = lab.plot_concurrency(_concurrency_frame(sweep))
    assert len(fig.axes[0].get_legend().get_texts()) == 36
    assert_clean_layout(fig)


def _parity_frame(settings: list[tuple], error: str = "") -> pd.DataFrame:
    """A frame with parity()'s columns and attrs: per setting (type, build, search, recall in memory / on the server,
    build seconds, batch QPS); a NaN server recall is a row the server failed on (``error``), as parity() leaves it."""
    rows = []
    for index_type, build, search, recall_m, recall_s, build_m, build_s, qps_m, qps_s in settings:
        failed = recall_s != recall_s
        rows.append({"index_type": index_type, "build_params": json.dumps(build), "search_params": json.dumps(search),
                     "recall_memory": recall_m, "recall_server": recall_s, "recall_diff": recall_s - recall_m,
                     "build_s_memory": build_m, "build_s_server": build_s, "qps_memory": qps_m, "qps_server": qps_s,
                     "p50_ms_memory": 1e3 / qps_m, "p50_ms_server": 1e3 / qps_s, "p99_ms_memory": 2e3 / qps_m,
                     "p99_ms_server": 2e3 / qps_s, "status_memory": "ok",
                     "status_server": "server error" if failed else "ok", "note": error if failed else ""})
    df = pd.DataFrame(rows)
    df.attrs.update(dataset="glove-50d", n=20000, nq=200, k=10, server="Milvus 2.3.5 at http://127.0.0.1:19530",
                    memory="milvus_lab in memory", seconds=42.0, **({"error": error} if error else {}))
    return df


NAN = float("nan")
PARITY_GLOVE = [("IVF_FLAT", {"nlist": 256}, {"nprobe": 32}, 0.962, 0.961, 0.41, 2.3, 5200.0, 1900.0),
                ("IVF_SQ8", {"nlist": 256}, {"nprobe": 32}, 0.951, 0.949, 0.52, 2.1, 7400.0, 2300.0),
                ("HNSW", {"M": 16, "efConstruction": 100}, {"ef": 64}, 0.987, 0.985, 3.4, 5.8, 9100.0, 2600.0)]
PARITY_EVERY_TYPE = [("FLAT", {}, {}, 1.0, 1.0, 0.01, 1.2, 800.0, 700.0),
                     ("IVF_FLAT", {"nlist": 1024}, {"nprobe": 8}, 0.81, 0.81, 0.9, 3.1, 12000.0, 2500.0),
                     ("IVF_FLAT", {"nlist": 1024}, {"nprobe": 64}, 0.985, 0.984, 0.9, 3.1, 2500.0, 1500.0),
                     ("IVF_SQ8", {"nlist": 1024}, {"nprobe": 16}, 0.88, 0.879, 1.0, 3.3, 9000.0, 2400.0),
                     ("IVF_PQ", {"nlist": 1024, "m": 10, "nbits": 8}, {"nprobe": 16}, 0.52, 0.51, 4.2, 7.5, 8000.0,
                      2300.0),
                     ("HNSW", {"M": 16, "efConstruction": 200}, {"ef": 64}, 0.987, 0.985, 3.4, 5.8, 9100.0, 2600.0),
                     ("HNSW", {"M": 16, "efConstruction": 200}, {"ef": 128}, 0.995, 0.995, 3.4, 5.8, 6000.0, 2400.0)]
SERVER_DIED = ("Milvus server at http://127.0.0.1:19530 failed while building the index (create_index): "
               "StatusCode.UNAVAILABLE failed to connect to all addresses; last error: UNKNOWN: "
               "ipv4:127.0.0.1:19530: Failed to connect to remote host: Connection refused")


@pytest.mark.parametrize("settings, error", [
    (PARITY_GLOVE, ""),  # the server test's three settings: one decade of build time, QPS within a decade
    (PARITY_EVERY_TYPE, ""),  # every type both targets have, two search settings for two of them
    (PARITY_GLOVE[:1] + [PARITY_GLOVE[2][:4] + (NAN, 3.4, NAN, 9100.0, NAN)], SERVER_DIED),  # stopped mid-way
], ids=["glove", "every_type", "server_died"])
def test_parity_layout(settings, error):
    from milvus_lab.lab import plot_parity

    df = _parity_frame(settings, error)
    fig = plot_parity(df)
    assert_clean_layout(fig)
    assert len(fig.axes) == 3
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == [cc.setting_label(r.index_type, r.build_params, r.search_params) for r in df.itertuples()]
    for ax, name in zip(fig.axes, ("recall", "build_s", "qps")):  # one bar per side and setting, its value
        widths = [patch.get_width() for patch in ax.patches]
        expected = df[f"{name}_memory"].tolist() + df[f"{name}_server"].tolist()
        np.testing.assert_array_equal(widths, expected)
    notes = " ".join(t.get_text().replace("\n", " ") for t in fig.texts)
    assert ("Parity stopped: " + SERVER_DIED in notes) == bool(error)
    assert ("No server bars for HNSW M=16, efConstruction=100; ef=64" in notes) == bool(error)


@pytest.fixture(scope="module")
def forecast():
    """A forecast from 8,000 x 16 clustered rows to 64,000 for six index types and RNSG (whose need, at this
    size, can come out beyond its range: then it is not drawn and a note says why)."""
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 4, (20, 16))
    base = (centres[rng.integers(0, 20, 8_000)] + rng.normal(0, 1, (8_000, 16))).astype(np.float32)
    queries = (centres[rng.integers(0, 20, 200)] + rng.normal(0, 1, (200, 16))).astype(np.float32)
    dataset = lab.from_array(base, queries, name="clusters")
    return lab.forecast(dataset, 64_000, ["FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "ANNOY", "RNSG"],
                        target_recall=0.9, progress=False, repeats=2, latency_queries=5)


@pytest.mark.slow
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_forecast_layout(forecast, busy):
    warning = busy_warning(28, 28, 0.9, 3.9) if busy else ""
    fc = dataclasses.replace(forecast, busy_warning=warning)
    fig = fc.plot()
    assert_clean_layout(fig)
    drawn = [name for name in fc.table["index_type"] if (name, "memory_mb") in fc.fits]
    assert len(drawn) >= 5
    assert [t.get_text() for t in fig.axes[5].get_legend().get_texts()] == drawn
    strip = [t for t in fig.texts if t.get_text() != fig.get_suptitle()]
    notes = [t.get_text().replace("\n", " ") for t in strip]
    assert notes[0].startswith("Dots: measured at 1,000, 2,000, 4,000, 8,000 rows.")
    assert [n for n in notes if n.startswith("Not shown: ")] == [
        n for n in notes if any(n.startswith(f"Not shown: {name} (") for name in fc.table["index_type"]
                                if name not in drawn)]
    assert sum(n.startswith("Not shown: ") for n in notes) == len(fc.table) - len(drawn)
    assert (warning in notes) == busy
    bottom = min(ax.get_tightbbox().y0 for ax in fig.axes)
    assert all(t.get_window_extent().y1 <= bottom + 1 for t in strip)  # in the strip under every panel
