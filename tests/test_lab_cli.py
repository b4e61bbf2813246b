"""``milvus-lab compare`` (lab.cli.compare_main): files written, winner table printed, clear errors."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import clustered

from milvus_lab.cli import main as cli_main
from milvus_lab.lab.sweeps import Notice
from milvus_lab.lab.cli import command_line, compare_main, compare_parser, run_folder, unsaid_notices

FAST = ["--no-progress", "--latency-queries", "3", "--formats", "png"]


@pytest.mark.slow
def test_compare_on_a_file_writes_csv_plots_and_report(tmp_path, capsys):
    np.save(tmp_path / "vectors.npy", clustered(1500, 16, seed=3))
    out = tmp_path / "out"
    code = compare_main(["--data", str(tmp_path / "vectors.npy"), "--nq", "60", "--index-types",
                         "FLAT,IVF_FLAT,IVF_SQ8", "--out", str(out), *FAST])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Fastest setting per index type at recall >= 0.95" in printed
    assert "Winner:" in printed or "Tie at recall >= 0.95" in printed
    results = pd.read_csv(out / "results.csv")
    assert set(results["index_type"]) == {"FLAT", "IVF_FLAT", "IVF_SQ8"}
    assert (results["nq"] == 60).all() and (results["n"] == 1440).all()
    for name in ("recall_qps", "recall_p99", "build_memory", "param_IVF_FLAT", "param_IVF_SQ8"):
        assert (out / f"{name}.png").stat().st_size > 0
    report = (out / "report.md").read_text()
    assert report.startswith("# Index comparison on vectors")
    assert "10-recall@10" in report and "![recall_qps](recall_qps.png)" in report
    assert "collection.create_index(" in report or "no winner is named" in report


def test_compare_on_glove_states_why_ivf_pq_is_skipped_once(tmp_path, capsys):
    out = tmp_path / "glove"
    # with the progress bar: the skip is not written in the middle of the bar, only in the table after it
    code = compare_main(["--n", "3000", "--nq", "50", "--index-types", "FLAT,IVF_PQ", "--out", str(out),
                         "--latency-queries", "3", "--formats", "png"])
    assert code == 0
    captured = capsys.readouterr()
    assert "IVF_PQ     IVF_PQ cannot index 50-dimensional vectors: no m is allowed for dimension 50" in captured.out
    assert (captured.out + captured.err).count("no m is allowed for dimension 50") == 1
    report = (out / "report.md").read_text()
    assert "glove-3k" in report and report.count("no m is allowed for dimension 50") == 1
    assert "- IVF_PQ cannot index 50-dimensional vectors: no m is allowed for dimension 50" in report
    assert "skipped: IVF_PQ" not in report
    results = pd.read_csv(out / "results.csv")
    assert results.set_index("index_type").loc["IVF_PQ", "status"] == "skipped"


@pytest.mark.parametrize("args, message", [
    (["--data", "/nonexistent/x.fvecs"], "no such file"),
    (["--data", "README.md"], "unsupported file type"),
    (["--n", "3000", "--nq", "50", "--index-types", "FLAT,BOGUS"], "'BOGUS'"),
    # slow: the client retries a closed port for about half a minute before it gives up
    pytest.param(["--n", "3000", "--nq", "50", "--milvus-uri", "http://127.0.0.1:1"], "127.0.0.1:1",
                 marks=pytest.mark.slow),
])
def test_errors_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert compare_main([*args, "--out", str(tmp_path / "o"), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith("milvus-lab compare: error:") and message in err


def test_truncated_file_is_reported(tmp_path, capsys):
    (tmp_path / "cut.fvecs").write_bytes(np.array([4], "<i4").tobytes() + b"\0" * 10)
    assert compare_main(["--data", str(tmp_path / "cut.fvecs"), "--out", str(tmp_path / "o"), *FAST]) == 2
    assert "truncated" in capsys.readouterr().err


def test_compare_help_is_plain_text_and_shows_every_default():
    parser = compare_parser()
    text = parser.format_help()
    assert "``" not in text
    formatter = parser._get_formatter()
    for action in parser._actions:
        if action.dest == "help":
            continue
        shown = formatter._expand_help(action)
        assert "``" not in shown
        assert "default" in shown, f"{action.option_strings} says nothing of its default: {shown!r}"
        assert "default: None" not in shown, action.option_strings
    assert "(default: 10)" in " ".join(text.split()) and "(default: png,svg)" in text


def test_each_run_gets_a_new_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = run_folder(None, "glove-3k")
    second = run_folder(None, "glove-3k")
    assert first.parent == second.parent == Path("lab_output") and first != second
    assert first.name.endswith("-glove-3k") and second.name.startswith(first.name)
    fresh = tmp_path / "fresh"
    assert run_folder(fresh, "x") == fresh  # a new folder given with --out is used as it is
    (fresh / "param_HNSW.png").write_bytes(b"old")
    inner = run_folder(fresh, "a b/c")
    assert inner.parent == fresh and inner.name.endswith("-a_b_c") and not any(inner.iterdir())


@pytest.mark.slow
def test_a_second_run_into_the_same_out_never_mixes_files(tmp_path, capsys):
    np.save(tmp_path / "v.npy", clustered(400, 8, seed=1))
    out = tmp_path / "out"
    args = ["--data", str(tmp_path / "v.npy"), "--nq", "20", "--index-types", "FLAT", "--out", str(out), *FAST]
    assert compare_main(args) == 0
    (out / "param_HNSW.png").write_bytes(b"from an earlier run")
    capsys.readouterr()
    assert compare_main(args) == 0
    printed = capsys.readouterr().out
    [second] = [p for p in out.iterdir() if p.is_dir()]
    assert str(second) in printed and (second / "results.csv").exists() and (second / "report.md").exists()
    assert not (second / "param_HNSW.png").exists()


def test_report_names_the_command_as_typed(tmp_path):
    np.save(tmp_path / "my vectors.npy", clustered(400, 8, seed=2))
    out = tmp_path / "out dir"
    args = ["--data", str(tmp_path / "my vectors.npy"), "--nq", "20", "--index-types", "FLAT", "--out", str(out),
            *FAST]
    assert cli_main(["compare", *args]) == 0
    expected = "milvus-lab compare " + " ".join(shlex.quote(a) for a in args)
    assert f"Command: `{expected}`" in (out / "report.md").read_text()
    # a caller that passes parsed arguments only gets them back from the namespace
    parsed = compare_parser().parse_args(["--data", "a b.npy", "--k", "5", "--no-progress"])
    assert command_line(parsed) == "milvus-lab compare --data 'a b.npy' --k 5 --no-progress"


@pytest.mark.parametrize("argv", [
    [],
    ["--data", "a b.npy", "--k", "5", "--no-progress"],
    ["--data", "x.csv", "--columns", "a,b", "--concurrency", "1,10,20", "--time-limit", "2.5", "--normalize",
     "--metric", "IP", "--index-types", "FLAT,HNSW", "--seed", "3"],
])
def test_the_command_rebuilt_from_parsed_arguments_parses_back_to_the_same_arguments(argv):
    """The oracle is the parser itself: the rebuilt command, split as a shell would, parses to the same values
    (lists and tuples such as --columns and --concurrency written back comma-separated)."""
    parsed = compare_parser().parse_args(argv)
    words = shlex.split(command_line(parsed))
    assert words[:2] == ["milvus-lab", "compare"]
    assert vars(compare_parser().parse_args(words[2:])) == vars(parsed)
    assert len(words) - 2 <= len(argv)  # options left at their default are not written


def test_a_vector_column_beside_scalar_columns_is_used_without_asking(tmp_path, capsys):
    """A parquet file of `id` and `emb` (one vector per row) is unambiguous: the vectors are `emb`."""
    rows = clustered(300, 8, seed=4)
    pd.DataFrame({"id": np.arange(300), "emb": list(rows), "word": [f"w{i}" for i in range(300)]}).to_parquet(
        tmp_path / "emb.parquet")
    out = tmp_path / "out"
    assert compare_main(["--data", str(tmp_path / "emb.parquet"), "--nq", "20", "--index-types", "FLAT",
                         "--out", str(out), *FAST]) == 0, capsys.readouterr().err
    results = pd.read_csv(out / "results.csv")
    assert (results["dim"] == 8).all() and (results["n"] == 280).all()


def test_messages_name_the_cli_options_not_python_keywords(tmp_path, capsys):
    rows = clustered(50, 4, seed=5)
    pd.DataFrame({"a": list(rows), "b": list(rows)}).to_parquet(tmp_path / "two.parquet")
    assert compare_main(["--data", str(tmp_path / "two.parquet"), "--out", str(tmp_path / "o"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "--column NAME" in err and "--columns A,B,..." in err and "2 columns hold vectors (a, b)" in err
    assert "column=" not in err and "columns=[" not in err
    assert compare_main(["--data", str(tmp_path / "two.parquet"), "--columns", "a", "--out", str(tmp_path / "o"),
                         *FAST]) == 2
    assert "column(s) ['a'] are not numeric" in capsys.readouterr().err
    np.save(tmp_path / "few.npy", rows[:10])
    assert compare_main(["--data", str(tmp_path / "few.npy"), "--nq", "10", "--out", str(tmp_path / "o"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "--nq 10 must be in [1, 9]" in err and "n_queries" not in err


def test_a_folder_given_as_data_is_called_a_folder(tmp_path, capsys):
    (tmp_path / "some_folder").mkdir()
    assert compare_main(["--data", str(tmp_path / "some_folder"), "--out", str(tmp_path / "o"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "is a folder, not a data file" in err and "unsupported file type" not in err


def test_an_array_of_text_is_told_its_dtype_first(tmp_path, capsys):
    np.save(tmp_path / "words.npy", np.array(["king", "queen", "paris"] * 10))
    assert compare_main(["--data", str(tmp_path / "words.npy"), "--out", str(tmp_path / "o"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "must hold real numbers; got dtype <U5" in err and "2-D" not in err


def test_help_says_what_each_budget_measures_and_shows_no_empty_defaults(capsys):
    from milvus_lab.cli import parser
    from milvus_lab.lab.sweeps import BUDGETS

    top = parser()
    [sub] = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in sub.choices.items():
        text = " ".join(command.format_help().split())
        assert "(default: False)" not in text and "(default: default)" not in text, name
        assert not re.search(r"default\)? \(default: ", text), (name, text)
    text = " ".join(sub.choices["compare"].format_help().split())
    for name, budget in BUDGETS.items():
        assert f"{name}" in text and f"until recall {budget.max_recall:g}" in text
    assert ".ivecs" in text.split("--data DATA", 2)[-1].split("--queries")[0]


def test_no_progress_frames_when_stderr_is_not_a_terminal(tmp_path, capsys):
    np.save(tmp_path / "v.npy", clustered(400, 8, seed=1))
    args = ["--data", str(tmp_path / "v.npy"), "--nq", "20", "--index-types", "FLAT,IVF_FLAT", "--out",
            str(tmp_path / "o"), "--latency-queries", "3", "--formats", "png"]  # no --no-progress
    assert compare_main(args) == 0
    assert "\r" not in capsys.readouterr().err


def test_the_closing_lines_print_peak_memory_against_the_data(tmp_path, capsys):
    np.save(tmp_path / "v.npy", clustered(2000, 32, seed=2))
    assert compare_main(["--data", str(tmp_path / "v.npy"), "--nq", "100", "--index-types", "FLAT", "--out",
                         str(tmp_path / "o"), *FAST]) == 0
    [line] = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Peak memory:")]
    peak, ratio, data = re.fullmatch(r"Peak memory: ([\d,]+) MiB, ([\d.]+) x the ([\d,]+) MiB of base vectors",
                                     line).groups()
    assert int(data.replace(",", "")) == round(1900 * 32 * 4 / 2**20)
    assert float(ratio) == pytest.approx(int(peak.replace(",", "")) / (1900 * 32 * 4 / 2**20), rel=0.01)


def test_only_the_notices_no_row_says_are_shown_after_a_compare():
    skip = "IVF_PQ cannot index 50-dimensional vectors: no m is allowed for dimension 50"
    server = "HNSW: server at http://h:1 went away; the 2 row(s) measured so far are kept"
    results = pd.DataFrame({"index_type": ["IVF_PQ", "HNSW"], "note": [skip, "server at http://h:1 went away"]})
    results.attrs["notices"] = [Notice(skip, "IVF_PQ", in_row=True), Notice(server, "HNSW")]
    assert unsaid_notices(results) == [server]
    assert unsaid_notices(results.copy()) == [server]  # pandas deep-copies attrs: the fields survive
    assert unsaid_notices(pd.DataFrame({"note": [None]})) == []  # a frame without notices shows none
    # the decision is the record's, not a match of texts: a notice a row happens to quote is still shown
    results.attrs["notices"] = [Notice(skip, "IVF_PQ", in_row=False)]
    assert unsaid_notices(results) == [skip]


# --------------------------------------------------------------------------------------------------
# compare and forecast check every option before reading the data, and leave no folder when they refuse one
# --------------------------------------------------------------------------------------------------
BAD_OPTIONS = [
    (["--formats", "xyz"], ["--formats", "xyz", "allowed: ", "png", "svg"]),
    (["--formats", "png,xyz"], ["--formats", "xyz", "allowed: "]),
    (["--target-recall", "7"], ["--target-recall", "must be a number > 0 and <= 1", "got 7"]),
    (["--target-recall", "0"], ["--target-recall", "must be a number > 0 and <= 1", "got 0"]),
    (["--target-recall", "-1"], ["--target-recall", "must be a number > 0 and <= 1", "got -1"]),
    (["--target-recall", "nan"], ["--target-recall", "must be a number > 0 and <= 1", "got nan"]),
    (["--index-types", "FLAT,BOGUS"], ["--index-types", "'BOGUS'", "allowed: FLAT, IVF_FLAT"]),
    (["--k", "0"], ["--k", "k must be an int >= 1"]),
    (["--concurrency", "0,10"], ["--concurrency", "distinct ints in [1, 256]"]),
]


@pytest.fixture()
def no_work(monkeypatch):
    """Reading the data, comparing or forecasting fails the test: a refused option must stop the command first."""
    from milvus_lab import lab
    from milvus_lab.lab import cli as lab_cli

    def work(*args, **kwargs):
        raise AssertionError("the command did work before refusing an option")

    # both commands load their data through lab.cli.prepare_run
    for module, name in ((lab_cli, "load_dataset"), (lab, "compare"), (lab, "forecast")):
        monkeypatch.setattr(module, name, work)


@pytest.mark.parametrize("command", [["compare"], ["forecast", "--rows", "1000"]], ids=["compare", "forecast"])
@pytest.mark.parametrize(("bad", "said"), BAD_OPTIONS, ids=[" ".join(bad) for bad, _ in BAD_OPTIONS])
def test_a_refused_option_exits_2_before_any_work_and_leaves_no_folder(tmp_path, capsys, no_work, command, bad,
                                                                        said):
    np.save(tmp_path / "v.npy", clustered(200, 8, seed=6))
    out = tmp_path / "out"
    assert cli_main([*command, "--data", str(tmp_path / "v.npy"), "--nq", "20", "--out", str(out), "--no-progress",
                     *bad]) == 2
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith(f"milvus-lab {command[0]}: error: {bad[0]}: ")
    for words in said:
        assert words in line, (words, line)
    assert captured.out == "" and not out.exists()


@pytest.mark.parametrize("bad", [["--target-recall", "1.5"], ["--steps", "2"], ["--min-rows", "10"],
                                 ["--rows", "0"], ["--query-node-gb", "0"]])
def test_forecast_refuses_its_own_options_before_any_work(tmp_path, capsys, no_work, bad):
    out = tmp_path / "out"
    assert cli_main(["forecast", "--rows", "1000", "--out", str(out), *bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"milvus-lab forecast: error: {bad[0]}: {bad[0][2:].replace('-', '_')} must be ")
    assert not out.exists()


def test_options_are_checked_in_the_order_the_parser_declares_them(capsys, no_work):
    assert compare_main(["--formats", "xyz", "--index-types", "BOGUS", "--k", "0"]) == 2
    assert capsys.readouterr().err.startswith("milvus-lab compare: error: --k: ")


def test_checked_index_types_are_the_spec_names_without_duplicates():
    from milvus_lab.lab.cli import check_options

    args = compare_parser().parse_args(["--index-types", " HNSW, FLAT,HNSW,", "--formats", "png,,svg"])
    assert check_options(args) == (["HNSW", "FLAT"], ["png", "svg"])
    assert check_options(compare_parser().parse_args(["--formats", ""])) == (None, [])
