"""The default run does not warn about itself (issue 19): 1,000 held-out GloVe queries raise no "Uncertain
recall" caveat, the lab's build threshold of 1 row is explained next to Milvus's default, and a "Small data"
note says only what the table beside it shows."""

from __future__ import annotations

import numpy as np
import pytest

from milvus_lab import lab, spec
from milvus_lab.lab.report import small_sample_warnings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def glove_run():
    """IVF_FLAT and HNSW on 20,000 GloVe words with the CLI's default 1,000 queries: low-recall settings
    (nprobe=1) are measured too, whose per-query recall varies most."""
    dataset = lab.load_glove_dataset(20_000, 1000)
    with lab.Session(repeats=2) as session:
        results = lab.compare(dataset, ["IVF_FLAT", "HNSW"], budget="quick", session=session, latency_queries=5,
                              progress=False)
    return results


def test_the_default_query_count_raises_no_uncertain_recall(glove_run):
    ok = glove_run[glove_run["status"] == "ok"]
    assert (ok["recall"] < 0.9).any(), "the run measured no low-recall setting: nothing to check"
    report = lab.markdown_report(glove_run, 0.95)
    assert "Uncertain recall" not in report and "Few queries" not in report
    assert "small measurement" not in lab.winner_table(glove_run, 0.95)


def test_the_labs_build_threshold_is_explained(glove_run):
    report = lab.markdown_report(glove_run, 0.95)
    [target] = [line for line in report.splitlines() if "Target:" in line]
    assert "build threshold 1 rows" in target
    assert f"Milvus's default is {spec.DEFAULT_BUILD_THRESHOLD:,} rows" in target
    assert "the lab builds every segment" in target


def test_a_small_data_note_is_true_of_the_table_beside_it(tmp_path):
    """On 3,000 rows IVF_FLAT's fastest setting at the target sits below 0.99 while its largest nprobe reaches
    it: the note may claim only what every type's measured maximum shows."""
    dataset = lab.load_glove_dataset(3000, 300)
    with lab.Session(repeats=2) as session:
        results = lab.compare(dataset, ["FLAT", "IVF_FLAT"], budget="quick", session=session, latency_queries=5,
                              progress=False)
    ok = results[results["status"] == "ok"]
    best = ok.groupby("index_type")["recall"].max()
    [note] = [w for w in small_sample_warnings(results) if w.startswith("Small data")]
    assert "near exact" not in note
    claims_all_reach = "reaches recall >= 0.99 at its largest setting" in note
    assert claims_all_reach == bool((best >= 0.99).all())
    table = lab.summary(results, 0.95)
    assert np.isfinite(table["recall"]).all()
