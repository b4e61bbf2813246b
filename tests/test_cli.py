"""The command line: the README's demo walks the create_index / drop_index story; --help lists every command
in plain text; `notebooks` copies the tutorials without overwriting edits; `app` serves Voila on 127.0.0.1
with kernel culling; `server` points at the server extra."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from milvus_lab import cli
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


@pytest.mark.slow
def test_demo_piped_prints_no_progress_lines():
    """Piped (not a terminal), the build's elapsed-time bar is off: no line per tick in the output."""
    done = subprocess.run([sys.executable, "-m", "milvus_lab.cli", "demo", "--n", "20000", "--queries", "100",
                           "--nlist", "2048"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "elapsed" not in done.stdout + done.stderr
    assert len(done.stdout.splitlines()) < 40


def test_demo_refuses_unknown_words(capsys):
    assert main(["demo", "--n", "1000", "--words", "king,zzzzqqq"]) == 2
    assert "zzzzqqq" in capsys.readouterr().err


def test_help_lists_every_command_without_rest_markup(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out and ":func:" not in out
    for command in ("demo", "compare", "notebooks", "app", "server"):
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), command


def test_help_lists_each_command_once(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "compare", "notebooks", "app", "server"):
        assert len(re.findall(rf"^\s+{command}\b", out, re.MULTILINE)) == 1, (command, out)


def test_notebooks_as_root_passes_allow_root_to_jupyterlab_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0, raising=False)
    assert main(["notebooks", "--dir", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    [command] = [line for line in out.splitlines() if line.startswith("$ ")]
    assert command.split().count("--allow-root") == 1
    assert sum("--allow-root" in line for line in out.splitlines()) == 2  # the command and a one-line note
    assert main(["notebooks", "--dir", str(tmp_path), "--dry-run", "--allow-root"]) == 0  # given: not twice
    [command] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("$ ")]
    assert command.split().count("--allow-root") == 1
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000, raising=False)
    assert main(["notebooks", "--dir", str(tmp_path), "--dry-run"]) == 0
    assert "--allow-root" not in capsys.readouterr().out


def test_notebooks_and_app_pass_unknown_options_on(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000, raising=False)
    assert main(["notebooks", "--dir", str(tmp_path), "--dry-run", "--ServerApp.token=abc",
                 "--LabApp.dev_mode", "False"]) == 0
    [command] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("$ ")]
    assert command.endswith("--ServerApp.token=abc --LabApp.dev_mode False")
    assert main(["app", "--dry-run", "--VoilaConfiguration.theme=dark", "--no-browser"]) == 0
    [command] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("$ ")]
    assert command.split()[-1] == "--VoilaConfiguration.theme=dark" and "--no-browser" in command.split()
    assert "--allow-root" not in command  # Voila runs as root as it is and refuses the flag
    # our own options are not abbreviated into theirs, and other commands still refuse unknown options
    assert main(["app", "--dry-run", "--po=1"]) == 0
    assert capsys.readouterr().out.split()[-1] == "--po=1"
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--ServerApp.token=abc"])
    assert exit_.value.code == 2 and "milvus-lab demo: error: unrecognized arguments" in capsys.readouterr().err


def test_compare_is_a_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--data" in out and "milvus-lab compare" in out


def test_notebooks_copies_the_tutorials_and_keeps_the_users_edits(tmp_path, capsys):
    target = tmp_path / "work"
    assert main(["notebooks", "--dir", str(target), "--dry-run", "--no-browser"]) == 0
    names = sorted(p.name for p in cli.notebook_source().glob("*.ipynb"))
    assert sorted(p.name for p in target.glob("*.ipynb")) == names and "01_quickstart.ipynb" in names
    out = capsys.readouterr().out
    assert "-m jupyterlab --ip=127.0.0.1" in out and "--no-browser" in out and str(target.resolve()) in out
    edited = target / "01_quickstart.ipynb"
    edited.write_text("my edits")
    assert main(["notebooks", "--dir", str(target), "--dry-run"]) == 0
    assert edited.read_text() == "my edits"
    assert "Kept your copies of 01_quickstart.ipynb" in capsys.readouterr().out


def test_app_serves_voila_on_localhost_with_kernel_culling(capsys):
    assert main(["app", "--dry-run", "--no-browser", "--cull-idle", "120"]) == 0
    out = capsys.readouterr().out
    assert "-m voila" in out and out.split()[4].endswith("app.ipynb")
    assert "--Voila.ip=127.0.0.1" in out
    assert "--MappingKernelManager.cull_idle_timeout=120" in out
    assert "--MappingKernelManager.cull_interval=" in out


def test_server_without_the_extra_says_what_to_install(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_server(name, *args, **kwargs):
        if name.endswith("server.cli") or (args and args[2] and "server" in name and args[3] == 2):
            raise ImportError("No module named 'pymilvus'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_server)
    assert main(["server", "status"]) == 2
    assert "pip install 'milvus-lab[server]'" in capsys.readouterr().err


def test_an_installed_copy_finds_the_tutorials_under_share(tmp_path, monkeypatch):
    """After `pip install .` (no checkout), the notebooks are the data files under <prefix>/share/milvus-lab."""
    installed = tmp_path / "prefix" / "share" / "milvus-lab" / "notebooks"
    installed.mkdir(parents=True)
    (installed / "app.ipynb").write_text("{}")
    monkeypatch.setattr(cli, "__file__", str(tmp_path / "site-packages" / "milvus_lab" / "cli.py"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    assert cli.notebook_source() == installed
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="pip install"):
        cli.notebook_source()
