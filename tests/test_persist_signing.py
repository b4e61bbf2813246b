"""Signed saves: a per-user HMAC key decides whether index files may reach faiss / hnswlib / annoy."""

from __future__ import annotations

import hashlib
import json
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import clustered

from milvus_lab import Engine, backends
from milvus_lab.engine import persist
from milvus_lab.engine.persist import PersistError, UnsignedSaveWarning

#: the signing key lives in this test's own folder (conftest's key_folder), never in the real home
pytestmark = pytest.mark.usefixtures("key_folder")


#: the shared `engine` fixture (conftest) builds an index once a segment holds this many rows
ENGINE_BUILD_THRESHOLD = 32


def quiet(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


def indexed(engine, index="IVF_FLAT", params=None):
    c = engine.create_collection("signed", 16, segment_rows=100)
    quiet(c.create_index, index, params or {"nlist": 4})
    c.insert(clustered(350, 16, clusters=8))
    assert c.wait_for_index(60)
    assert [s["index_name"] for s in c.segments()] == [index] * 3 + ["FLAT"]
    return c


def load(path, *, trust=False, name=None):
    target = Engine(build_threshold=32)
    return target.restore_collection(persist.read_collection_state(path, trust=trust), name=name)


def results(c, queries, params):
    r = quiet(c.search, queries, 5, params)
    return r.ids, r.distances


def rewrite(root: Path, change, keep_signature=False) -> None:
    """Edit the manifest and recompute its checksum (all anyone can do without the user's key)."""
    manifest = json.loads((root / "manifest.json").read_text())
    manifest.pop("checksum")
    signature = manifest.pop("signature", None)
    change(manifest)
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest["checksum"] = {"sha256": hashlib.sha256(body).hexdigest()}
    if keep_signature and signature is not None:
        manifest["signature"] = signature
    (root / "manifest.json").write_text(json.dumps(manifest))


def forbid(monkeypatch, name):
    def refuse(*args, **kwargs):
        raise AssertionError(f"backends.{name} must not be called here")
    monkeypatch.setattr(backends, name, refuse)


def test_first_save_creates_a_private_key_and_signs(engine, tmp_path, key_folder):
    c = indexed(engine)
    assert not key_folder.exists()
    persist.save_collection(c.snapshot(), tmp_path / "s")
    key_file = key_folder / persist.KEY_FILE
    assert persist.signing_key_path() == key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(bytes.fromhex(key_file.read_text().strip())) == 32
    first = key_file.read_bytes()
    persist.save_collection(c.snapshot(), tmp_path / "s2")  # the key is made once and reused
    assert key_file.read_bytes() == first
    signature = json.loads((tmp_path / "s" / "manifest.json").read_text())["signature"]
    assert signature["algorithm"] == "hmac-sha256" and len(signature["hmac"]) == 64


def test_signed_save_reads_its_index_files(engine, tmp_path, monkeypatch):
    c = indexed(engine)
    persist.save_collection(c.snapshot(), tmp_path / "s")
    forbid(monkeypatch, "build")
    q = clustered(10, 16, clusters=8, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsignedSaveWarning)
        d = load(tmp_path / "s")
    assert [s["index_name"] for s in d.segments()] == [s["index_name"] for s in c.segments()]
    assert all(np.array_equal(a, b) for a, b in zip(results(c, q, {"nprobe": 2}), results(d, q, {"nprobe": 2})))


def test_someone_elses_save_is_rebuilt_never_parsed(engine, tmp_path, monkeypatch):
    c = indexed(engine)
    persist.save_collection(c.snapshot(), tmp_path / "s")
    monkeypatch.setenv(persist.CONFIG_DIR_ENV, str(tmp_path / "other-user"))
    persist.save_collection(c.snapshot(), tmp_path / "unrelated")  # the other user has a key of their own
    forbid(monkeypatch, "load")
    with pytest.warns(UnsignedSaveWarning, match="another key") as caught:
        d = load(tmp_path / "s")
    message = str(caught[0].message)
    assert "3 index file(s) were not read" in message and "rebuilt" in message and "trust=True" in message
    assert [s["index_name"] for s in d.segments()] == [s["index_name"] for s in c.segments()]
    q = clustered(10, 16, clusters=8, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(results(c, q, {"nprobe": 4}), results(d, q, {"nprobe": 4})))


def test_user_without_a_key_gets_a_rebuild_and_no_key_is_created(engine, tmp_path, monkeypatch):
    c = indexed(engine)
    persist.save_collection(c.snapshot(), tmp_path / "s")
    fresh = tmp_path / "fresh-user"
    monkeypatch.setenv(persist.CONFIG_DIR_ENV, str(fresh))
    with pytest.warns(UnsignedSaveWarning, match="no signing key"):
        load(tmp_path / "s")
    assert not fresh.exists()  # loading never writes into the config folder


def test_trust_reads_index_files_of_any_save(engine, tmp_path, monkeypatch):
    c = indexed(engine, "HNSW", {"M": 8, "efConstruction": 40})
    persist.save_collection(c.snapshot(), tmp_path / "s")
    monkeypatch.setenv(persist.CONFIG_DIR_ENV, str(tmp_path / "other-user"))
    forbid(monkeypatch, "build")
    q = clustered(10, 16, clusters=8, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsignedSaveWarning)
        d = load(tmp_path / "s", trust=True)
    assert all(np.array_equal(a, b) for a, b in zip(results(c, q, {"ef": 20}), results(d, q, {"ef": 20})))


def test_edit_after_signing_voids_the_signature(engine, tmp_path, monkeypatch):
    c = indexed(engine)
    path = persist.save_collection(c.snapshot(), tmp_path / "s")
    rewrite(path, lambda m: m["collections"][0]["background_errors"].append("x"), keep_signature=True)
    forbid(monkeypatch, "load")
    with pytest.warns(UnsignedSaveWarning, match="does not match its content"):
        d = load(path)
    assert d.count() == 350


def test_tampered_index_file_with_recomputed_sums_is_never_parsed(engine, tmp_path, monkeypatch):
    c = indexed(engine, "HNSW", {"M": 8, "efConstruction": 40})
    path = persist.save_collection(c.snapshot(), tmp_path / "s")
    files = json.loads((path / "manifest.json").read_text())["files"]
    rel = next(name for name in sorted(files) if name.endswith(".index"))
    data = bytearray((path / rel).read_bytes())
    data[len(data) // 2: len(data) // 2 + 16] = b"\xff" * 16
    (path / rel).write_bytes(bytes(data))
    rewrite(path, lambda m: m["files"][rel].update(sha256=hashlib.sha256(bytes(data)).hexdigest()))
    forbid(monkeypatch, "load")
    with pytest.warns(UnsignedSaveWarning, match="no signature"):
        d = load(path)
    assert [s["index_name"] for s in d.segments()] == ["HNSW"] * 3 + ["FLAT"]
    assert d.count() == 350


def test_version_1_saves_load_with_their_indexes_rebuilt(engine, tmp_path, monkeypatch):
    c = indexed(engine)
    path = persist.save_collection(c.snapshot(), tmp_path / "s")

    def as_version_1(m):
        m["format_version"] = 1
        for seg in m["collections"][0]["segments"]:
            seg["build_error"] = seg.pop("raw_reason")
    rewrite(path, as_version_1)
    forbid(monkeypatch, "load")
    with pytest.warns(UnsignedSaveWarning):
        d = load(path)
    assert [s["index_name"] for s in d.segments()] == [s["index_name"] for s in c.segments()]


def test_engine_saves_are_signed_too(engine, tmp_path, monkeypatch):
    indexed(engine)
    persist.save_engine(engine.snapshot(), tmp_path / "e")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsignedSaveWarning)
        state = persist.read_engine_state(tmp_path / "e")
    assert all(s.index is not None for s in state.collections[0].segments[:3])
    monkeypatch.setenv(persist.CONFIG_DIR_ENV, str(tmp_path / "other-user"))
    with pytest.warns(UnsignedSaveWarning):
        state = persist.read_engine_state(tmp_path / "e")
    assert all(s.index is None for s in state.collections[0].segments)
    restored = Engine.restore(state)
    try:
        assert [s["index_name"] for s in restored.get_collection("signed").segments()] == ["IVF_FLAT"] * 3 + ["FLAT"]
    finally:
        restored.close()


@pytest.mark.parametrize("trust", [1, "yes", None, np.bool_(True)])
def test_trust_must_be_a_bool(engine, tmp_path, trust):
    c = indexed(engine)
    persist.save_collection(c.snapshot(), tmp_path / "s")
    with pytest.raises(PersistError, match="trust="):
        persist.read_collection_state(tmp_path / "s", trust=trust)


def test_damaged_key_file_is_a_clear_error(engine, tmp_path, key_folder):
    c = indexed(engine)
    persist.save_collection(c.snapshot(), tmp_path / "s")
    (key_folder / persist.KEY_FILE).write_text("not a key")
    with pytest.raises(PersistError, match="not 64 hex digits"):
        persist.save_collection(c.snapshot(), tmp_path / "s2")
    with pytest.raises(PersistError, match="signing key"):
        persist.read_collection_state(tmp_path / "s")


def test_unwritable_key_folder_is_a_clear_error(engine, tmp_path, monkeypatch):
    c = indexed(engine)
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(persist.CONFIG_DIR_ENV, str(tmp_path / "a-file" / "sub"))
    with pytest.raises(PersistError, match=persist.CONFIG_DIR_ENV):
        persist.save_collection(c.snapshot(), tmp_path / "s")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("what", ["a string", None, 3, object()])
def test_saving_something_else_is_a_clear_error(tmp_path, what):
    with pytest.raises(PersistError, match="not a collection"):
        persist.save_collection(what, tmp_path / "s")
    with pytest.raises(PersistError, match="not an engine"):
        persist.save_engine(what, tmp_path / "e")
    assert not (tmp_path / "s").exists()
