"""The tampered-save experiment, short: a few tries per index type in one runner subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_tampered_index_files_never_reach_a_library_and_signed_ones_load_exactly(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "tamper_saves.py"), "--tries", "3", "--json",
                          "--workdir", str(tmp_path / "work"), "--seed", "5"],
                         capture_output=True, text=True, timeout=900)
    assert out.stdout.strip(), out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["failures"] == [], summary
    assert sorted(summary["types"]) == ["ANNOY", "HNSW", "IVF_FLAT", "IVF_PQ", "RNSG"]
    for index_type, row in summary["types"].items():
        assert row["signed_original"] == "read" and row["signed_original_exact"], index_type
        default = row["default"]
        assert default["rebuilt"] == 3, (index_type, default)  # never parsed: rebuilt from the vectors
        assert default["crash"] == default["foreign"] == default["hang"] == default["read"] == 0
    assert out.returncode == 0
