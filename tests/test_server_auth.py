"""An embedded server only its owner can use (issue 20.7): authorization on, root's password random, made at
the first start and kept 0600 beside the signing key, never printed; ``server.connect(uri)`` finds it.

The credentials tests need no server; the ``server``-marked test starts one of its own with the CLI (in a
temporary folder, its password in the session's temporary config folder) and stops it by its process id.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import psutil
import pytest
from conftest import clustered

from milvus_lab import lab
from milvus_lab.engine import persist
from milvus_lab.errors import ServerError
from milvus_lab.server import credentials, embedded
from milvus_lab.server.cli import NOT_RUNNING, server_main


# --------------------------------------------------------------------------------------------------
# No server needed
# --------------------------------------------------------------------------------------------------
def test_a_kept_password_is_private_and_read_back(tmp_path):
    folder = tmp_path / "server"
    assert credentials.load(folder) is None and credentials.token(folder) is None
    password = credentials.new_password()
    path = credentials.save(folder, password)
    assert path.parent == persist.config_dir() / credentials.CREDENTIALS_DIR  # beside the signing key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert credentials.load(folder) == password and credentials.token(folder) == f"root:{password}"
    assert credentials.load(tmp_path / "other") is None  # one password per server folder


def test_new_passwords_are_random_and_never_the_default():
    made = {credentials.new_password() for _ in range(50)}
    assert len(made) == 50 and credentials.DEFAULT_PASSWORD not in made
    assert all(len(p) >= 32 and ":" not in p for p in made)


def test_a_password_is_never_shown_in_full():
    password = credentials.new_password()
    shown = credentials.mask(f"root:{password}")
    assert shown.startswith("root:") and password not in shown
    assert len(shown) < len(password) // 2


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_credentials_file_others_can_read_is_refused(tmp_path):
    folder = tmp_path / "server"
    path = credentials.save(folder, credentials.new_password())
    path.chmod(0o644)
    with pytest.raises(ServerError, match="readable by other users.*chmod 600"):
        credentials.load(folder)


def test_a_damaged_credentials_file_is_a_server_error(tmp_path):
    folder = tmp_path / "server"
    path = credentials.save(folder, credentials.new_password())
    path.write_text("{not json")
    path.chmod(0o600)
    with pytest.raises(ServerError, match="cannot be read"):
        credentials.load(folder)


@pytest.mark.parametrize("uri", ["http://10.0.0.5:19530", "http://example.org:19530", "http://127.0.0.1:notaport",
                                 "http://127.0.0.1"])
def test_no_token_is_given_to_another_host_or_an_unknown_port(uri):
    assert embedded.token_for_uri(uri) is None


def test_the_server_info_repr_has_no_secret(tmp_path):
    folder = tmp_path / "server"
    password = credentials.new_password()
    credentials.save(folder, password)
    info = embedded.ServerInfo(str(folder), 1, 2, 19530, "2.3.5", authorization=True)
    assert info.token == f"root:{password}" and password not in repr(info)


# --------------------------------------------------------------------------------------------------
# On a server started with the CLI
# --------------------------------------------------------------------------------------------------
def _refusal(uri: str, token: str | None, alias: str) -> str:
    """The server's answer to a plain pymilvus client that sends ``token`` (or none), '' if it was served."""
    from pymilvus import connections, utility

    try:
        connections.connect(alias, uri=uri, timeout=10, **({} if token is None else {"token": token}))
        utility.list_collections(timeout=10, using=alias)
    except Exception as exc:  # noqa: BLE001 - pymilvus raises grpc errors and MilvusException
        return str(exc)
    finally:
        connections.disconnect(alias)
    return ""


@pytest.mark.server
def test_a_started_server_refuses_strangers_and_serves_its_owner_with_no_token(tmp_path, capsys):
    from milvus_lab.server import connect
    from milvus_lab.widgets import IndexForm

    folder = tmp_path / "server"
    try:
        assert server_main(["start", "--folder", str(folder)]) == 0
        out = capsys.readouterr().out
        info = embedded.read_state(folder)
        password = credentials.load(folder)
        assert info is not None and info.uri in out and f"pid {info.pid}" in out
        assert password and password != credentials.DEFAULT_PASSWORD and password not in out
        assert "reachable from the network" in out and str(credentials.credentials_path(folder)) in out
        assert stat.S_IMODE(credentials.credentials_path(folder).stat().st_mode) == 0o600

        for alias, token in (("no_token", None), ("default_password", embedded.DEFAULT_TOKEN)):
            refusal = _refusal(info.uri, token, f"milvus_lab_test_{alias}")
            assert "UNAUTHENTICATED" in refusal or "auth" in refusal.lower(), (alias, refusal)
        assert _refusal(info.uri, f"root:{password}", "milvus_lab_test_owner") == ""  # the kept one is the one

        base = clustered(3000, 16, clusters=30, seed=7)
        dataset = lab.from_array(base, n_queries=50, seed=1)
        with connect(info.uri) as target:  # no token typed
            # IVF_FLAT probing every cell is exhaustive: the lab's recall on the server is exact search's
            df = lab.measure(dataset, "IVF_FLAT", {"nlist": 16}, {"nprobe": 16}, target=target, latency_queries=10,
                             repeats=1)
            assert df["status"].tolist() == ["ok"] and df["recall"].tolist() == [1.0]
            assert df["target"].iloc[0] == "milvus-2.3"  # measured on the server
            tuned = lab.tune(dataset, 0.9, ["IVF_FLAT"], target=target, max_builds=1, latency_queries=10,
                             repeats=1, progress=False)
            assert tuned.error is None and tuned.winner is not None and tuned.winner["index_type"] == "IVF_FLAT"
            collection = target.create_collection(target.unique_name("auth"), 16)
            collection.insert(base)
            form = IndexForm(collection, "IVF_FLAT", watch=False)
            form.fields["nlist"].value = 16
            assert form.create() is not None, form.message.text
            assert collection.describe_index().index_type == "IVF_FLAT"
            hits = collection.search(base[:5], 1, {"nprobe": 16})
            assert np.array_equal(hits.ids[:, 0], np.arange(5))  # each row finds itself

        # a restart keeps the password made at the first start
        assert server_main(["stop", "--folder", str(folder)]) == 0
        assert not embedded._alive(info.pid) and not embedded._alive(info.launcher_pid)
        capsys.readouterr()
        assert server_main(["start", "--folder", str(folder)]) == 0
        assert credentials.load(folder) == password and password not in capsys.readouterr().out
        again = embedded.read_state(folder)
        assert _refusal(again.uri, embedded.DEFAULT_TOKEN, "milvus_lab_test_again") != ""
        with connect(again.uri) as target:
            assert target.list_collections() == []
    finally:
        embedded.stop(folder)
    assert server_main(["status", "--folder", str(folder)]) == NOT_RUNNING


@pytest.mark.server
def test_a_server_whose_password_was_lost_does_not_stay_up(tmp_path):
    """The data keeps root's changed password; without the kept one nobody can log in, so start refuses
    and the server it started is stopped (a server nobody can use, or anyone could, is never left running)."""
    folder = tmp_path / "server"
    try:
        info = embedded.start(folder)
        embedded.stop(folder)
        credentials.credentials_path(folder).unlink()
        with pytest.raises(ServerError, match="refuses root.s default password"):
            embedded.start(folder, timeout=240)
        assert embedded.read_state(folder) is None and not embedded._alive(info.pid)
        binary = str(folder.resolve() / "bin" / "milvus")
        left = [p.pid for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [""])[0] == binary]
        assert left == []  # the server the failed start ran was stopped
    finally:
        embedded.stop(folder)
