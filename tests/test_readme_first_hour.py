"""What the README tells a newcomer in the first hour is what the code does: how many notebooks
`milvus-lab notebooks` copies and where, where `compare` writes, how many rows `--data` holds out, where the
exact neighbours are cached, and that the plot it shows can be saved from a script."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from conftest import clustered

from milvus_lab import cli, lab
from milvus_lab.folders import CACHE_DIR_ENV
from milvus_lab.lab import cli as lab_cli
from milvus_lab.lab.datasets import DEFAULT_QUERIES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PROSE = " ".join(README.split())  # the text with its line breaks as spaces


def test_the_notebooks_line_says_what_is_copied_and_where(tmp_path):
    [line] = [ln for ln in README.splitlines() if ln.startswith("milvus-lab notebooks")]
    copied, _ = cli.copy_notebooks(tmp_path)
    shipped = sorted(p.name for p in cli.notebook_source().glob("*.ipynb"))
    assert "every notebook" in line and sorted(copied) == shipped  # not "the four tutorials": app.ipynb too
    assert "app.ipynb" in line and "app.ipynb" in copied and f"./{cli.DEFAULT_NOTEBOOK_DIR}" in line
    assert not re.search(r"\b(two|three|four|five|six|seven|\d) (tutorials|notebooks)\b", line), line


def test_compare_says_where_it_writes_and_how_many_rows_it_holds_out():
    assert f"`{lab_cli.DEFAULT_OUT}/` (in the folder you run it from)" in PROSE
    assert f"min({DEFAULT_QUERIES}, rows/10)" in PROSE
    for rows in (5_000, 20_000):  # the rule the README states, checked on data
        assert lab.from_array(clustered(rows, 4, seed=1)).nq == min(DEFAULT_QUERIES, rows // 10)


def test_the_exact_neighbour_cache_is_where_the_readme_says(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    glove = lab.load_glove_dataset(2000, 50)
    glove.ground_truth(5)
    [cached] = list((tmp_path / "cache").rglob("*.npy"))
    folder = cached.parent.relative_to(tmp_path / "cache")
    assert f"`{folder}/` under the lab's cache folder" in PROSE
    assert f"rm -rf ~/.cache/milvus_lab/{folder}" in PROSE


def test_the_readme_saves_the_plot_it_shows(tmp_path):
    assert 'fig = lab.plot_recall_qps(results)' in README and 'fig.savefig("recall_qps.png"' in README
    dataset = lab.from_array(clustered(600, 8, seed=2), n_queries=30)
    results = lab.compare(dataset, ["FLAT"], latency_queries=3, progress=False)
    fig = lab.plot_recall_qps(results)
    fig.savefig(tmp_path / "recall_qps.png", dpi=150, bbox_inches="tight")
    assert (tmp_path / "recall_qps.png").stat().st_size > 1000
    assert np.isfinite(results["recall"]).all()
