"""The report's caveats: a tiny run (few queries, small data) never names a winner without saying how
little it measures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import clustered

from milvus_lab import lab
from milvus_lab.lab.measurements import results_frame
from milvus_lab.lab.setting import params_json
from milvus_lab.lab.report import markdown_report, small_sample_warnings, summary, winner_table
from milvus_lab.lab.cli import compare_main


def row(index_type, recall, lo, hi, qps, *, n, nq, status="ok", note=""):
    return {"index_type": index_type, "build_params": params_json({}), "search_params": params_json({}),
            "recall": recall, "recall_lo": lo, "recall_hi": hi, "qps": qps, "qps_lo": qps * 0.99,
            "qps_hi": qps * 1.01, "p99_ms": 1.0, "build_s": 0.1, "memory_mb": 1.0, "status": status, "note": note,
            "k": 10, "nq": nq, "n": n, "dim": 8, "metric": "L2", "dataset": "d", "repeats": 5}


def test_a_large_run_has_no_small_sample_warning():
    df = results_frame([row("FLAT", 1.0, 0.997, 1.0, 100.0, n=100_000, nq=1000),
                        row("HNSW", 0.97, 0.962, 0.977, 900.0, n=100_000, nq=1000)])
    assert small_sample_warnings(df) == []
    assert "small measurement" not in summary(df).attrs["verdict"]


def test_few_queries_and_small_data_are_stated_with_the_recall_interval():
    df = results_frame([row("FLAT", 1.0, 0.65, 1.0, 100.0, n=50, nq=5),
                        row("HNSW", 1.0, 0.65, 1.0, 900.0, n=50, nq=5)])
    text = small_sample_warnings(df)
    assert text[0].startswith("Few queries: recall is measured on only 5 queries")
    assert "between 0.650 and 1.000" in text[0]
    assert text[1].startswith("Small data: only 50 base vectors, so every index type measured reaches recall >= "
                              "0.99 at its largest setting")
    table = winner_table(df)
    assert "Winner: HNSW" in table and "(on a small measurement: see the warnings)" in table
    assert "Few queries" in table and "Small data" in table
    report = markdown_report(df)
    assert "> **Few queries" in report and "> **Small data" in report


@pytest.mark.slow
def test_a_50_row_file_warns_in_the_cli_and_the_report(tmp_path, capsys):
    np.save(tmp_path / "tiny.npy", clustered(50, 8, seed=4))
    out = tmp_path / "out"
    code = compare_main(["--data", str(tmp_path / "tiny.npy"), "--index-types", "FLAT,IVF_FLAT", "--out", str(out),
                         "--no-progress", "--latency-queries", "3", "--formats", "png"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Few queries: recall is measured on only 5 queries" in printed
    assert "Small data: only 45 base vectors" in printed
    report = (out / "report.md").read_text()
    assert "Few queries: recall is measured on only 5 queries" in report and "Small data" in report
    assert pd.read_csv(out / "results.csv")["nq"].eq(5).all()
    assert lab.report.FEW_QUERIES == 100


def test_a_wide_interval_near_the_target_asks_for_a_count_that_narrows_it():
    df = results_frame([row("FLAT", 1.0, 0.997, 1.0, 100.0, n=100_000, nq=1000),
                        row("IVF_PQ", 0.93, 0.905, 0.955, 900.0, n=100_000, nq=1000)])  # spans 0.050...
    df.loc[1, "recall_hi"] = 0.9564  # ... 0.0514: just over WIDE_RECALL, on a setting near the 0.95 target
    (text,) = small_sample_warnings(df)
    assert text.startswith("Uncertain recall: measured on 1,000 queries") and "only" not in text
    assert "a recall near the target, 0.930, lies between 0.905 and 0.956" in text
    assert "about 1,100 narrow every interval to 0.05" in text  # 1000 x (0.0514 / 0.05)^2 = 1057 -> 1,100
    assert "> **Uncertain recall" in markdown_report(df)


def test_a_wide_interval_far_below_the_target_is_no_warning():
    """The default run (1,000 queries) measures low-recall settings whose intervals are wide by nature (recall
    near 0.5 varies most from query to query); they change no choice at the target, so they warn of nothing."""
    df = results_frame([row("FLAT", 1.0, 0.997, 1.0, 100.0, n=100_000, nq=1000),
                        row("IVF_PQ", 0.39, 0.365, 0.4164, 900.0, n=100_000, nq=1000)])
    assert small_sample_warnings(df) == [] and small_sample_warnings(df, target_recall=0.42) != []
    assert "Uncertain recall" not in markdown_report(df) and "small measurement" not in winner_table(df)


def test_result_html_escapes_every_text_and_keeps_the_order_head_table_notes_code():
    from milvus_lab.lab.report import result_html, stopped_early

    html = result_html("a <b> & c", pd.DataFrame({"x": [1.23456789]}), "", "tie: <x>", code="if a < b: pass")
    assert html.startswith("<p>a &lt;b&gt; &amp; c</p><table")
    assert "1.235" in html and "<p><b>tie: &lt;x&gt;</b></p><pre>if a &lt; b: pass</pre>" in html
    assert html.count("<p><b>") == 1  # the empty line gives no paragraph
    assert stopped_early(None) == stopped_early("") == [] and stopped_early("boom") == ["stopped early: boom"]
