"""The README's demo command walks the create_index / drop_index story and exits 0."""

from __future__ import annotations

import re

from milvus_lab.cli import main


def test_demo_walks_the_story_on_glove(capsys):
    assert main(["demo", "--n", "20000", "--queries", "200", "--nlist", "128", "--nprobe", "8"]) == 0
    out = capsys.readouterr().out
    assert "insert 20,000 vectors: Status(code=0" in out
    assert "index_type=<IndexType: IVFLAT>, params={'nlist': 128}" in out
    assert "segments: 1 (20,000 rows, IVF_FLAT)" in out
    recall = float(re.search(r"recall@10 against FLAT = ([0-9.]+)", out).group(1))
    assert 0.5 < recall <= 1.0
    king = next(line for line in out.splitlines() if line.strip().startswith("king ->"))
    assert "queen" in king or "prince" in king
    assert "index now FLAT" in out


def test_demo_refuses_unknown_words(capsys):
    assert main(["demo", "--n", "1000", "--words", "king,zzzzqqq"]) == 2
    assert "zzzzqqq" in capsys.readouterr().err


def test_compare_is_a_subcommand(capsys):
    import pytest
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--help"])
    assert exit_.value.code == 0
    assert "--data" in capsys.readouterr().out
