"""Crash safety of saves: a kill or a full disk at any moment leaves the previous save intact and loadable."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import clustered

from milvus_lab import Engine
from milvus_lab.engine import persist
from milvus_lab.engine.persist import PersistError

ROOT = Path(__file__).resolve().parent.parent

#: the signing key lives in this test's own folder (conftest's key_folder), never in the real home
pytestmark = pytest.mark.usefixtures("key_folder")


#: the shared `engine` fixture (conftest) builds an index once a segment holds this many rows
ENGINE_BUILD_THRESHOLD = 32


def collection(engine, rows=400):
    c = engine.create_collection("c", 16, segment_rows=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c.create_index("IVF_FLAT", {"nlist": 4})
    c.insert(clustered(rows, 16, clusters=8))
    assert c.wait_for_index(60)
    return c


def view(path) -> tuple:
    """What a load of ``path`` brings back (rows, ids, segments, answers)."""
    target = Engine(build_threshold=32)
    try:
        c = target.restore_collection(persist.read_collection_state(path))
        ids = sorted(i for s in c.segments() for i in c.list_id_in_segment(s["name"]))
        result = c.search(clustered(5, 16, clusters=8, seed=7), 5, {"nprobe": 2})
        return c.count(), ids, [s["index_name"] for s in c.segments()], result.ids.tolist()
    finally:
        target.close()


class Disk:
    """``open`` for persist's own writes that fails with ENOSPC once ``budget`` bytes were written."""

    def __init__(self, budget: int):
        self.left = budget

    def open(self, file, mode="r", *args, **kwargs):
        fh = open(file, mode, *args, **kwargs)
        return fh if "w" not in mode else _Limited(fh, self)


class _Limited:
    """A file whose writes count against the disk's budget (not a real file object, so NumPy writes
    through ``write`` instead of ``tofile``)."""

    def __init__(self, fh, disk: Disk):
        self.fh, self.disk = fh, disk

    def write(self, data):
        size = memoryview(data).nbytes if not isinstance(data, str) else len(data.encode())
        if size > self.disk.left:
            self.disk.left = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.disk.left -= size
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


@pytest.mark.parametrize("fraction", [0, 0.001, 0.1, 0.5, 0.9, 0.999])
def test_disk_full_keeps_the_previous_save(engine, tmp_path, monkeypatch, fraction):
    """The disk fills at a point of the new save (a fraction of the bytes it writes through Python)."""
    c = collection(engine)
    path = persist.save_collection(c.snapshot(), tmp_path / "s")
    before = view(path)
    manifest = (path / "manifest.json").read_bytes()
    c.insert(clustered(250, 16, clusters=8, seed=5))
    assert c.wait_for_index(60)
    roomy = Disk(10**12)
    monkeypatch.setattr(persist, "open", roomy.open, raising=False)
    persist.save_collection(c.snapshot(), tmp_path / "measure")
    needed = 10**12 - roomy.left
    monkeypatch.setattr(persist, "open", Disk(int(fraction * needed)).open, raising=False)
    with pytest.raises(PersistError, match="the disk is full") as err:
        persist.save_collection(c.snapshot(), path)
    assert "previous save: it is intact" in str(err.value)
    monkeypatch.undo()
    monkeypatch.setenv(persist.CONFIG_DIR_ENV, str(tmp_path / "config"))
    assert (path / "manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in path.iterdir()) == sorted([".lock", "manifest.json",
                                                             json.loads(manifest)["data_dir"]])
    assert view(path) == before
    persist.save_collection(c.snapshot(), path)  # with room again, the new save lands
    assert view(path)[0] == 650


def test_disk_full_at_fsync_keeps_the_previous_save(engine, tmp_path, monkeypatch):
    c = collection(engine)
    path = persist.save_collection(c.snapshot(), tmp_path / "s")
    before = view(path)
    c.insert(clustered(50, 16, clusters=8, seed=5))
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(persist.os, "fsync", fsync)
    with pytest.raises(PersistError, match="disk is full"):
        persist.save_collection(c.snapshot(), path)
    monkeypatch.undo()
    monkeypatch.setenv(persist.CONFIG_DIR_ENV, str(tmp_path / "config"))
    assert view(path) == before


def test_interrupted_first_save_leaves_no_save_and_the_next_one_succeeds(engine, tmp_path, monkeypatch):
    c = collection(engine)

    def die(src, dst):
        raise KeyboardInterrupt  # killed before the manifest was committed

    monkeypatch.setattr(persist.os, "replace", die)
    with pytest.raises(KeyboardInterrupt):
        persist.save_collection(c.snapshot(), tmp_path / "s")
    monkeypatch.undo()
    monkeypatch.setenv(persist.CONFIG_DIR_ENV, str(tmp_path / "config"))
    with pytest.raises(PersistError, match="manifest.json is missing"):
        persist.read_collection_state(tmp_path / "s")
    # what a SIGKILL leaves (the cleanup above cannot run): a data folder and a temporary manifest
    (tmp_path / "s" / f"data-{'a' * 32}").mkdir()
    (tmp_path / "s" / ".manifest.json.0.tmp").write_text("{")
    persist.save_collection(c.snapshot(), tmp_path / "s")  # our own leftovers do not block a save
    assert view(tmp_path / "s")[0] == 400
    assert len(list((tmp_path / "s").iterdir())) == 3  # the manifest, its data folder and the lock file


def test_kill_after_commit_leaves_the_new_save_and_a_stale_folder_that_goes_next_time(engine, tmp_path):
    c = collection(engine)
    path = persist.save_collection(c.snapshot(), tmp_path / "s")
    stale = path / f"data-{'b' * 32}"
    stale.mkdir()
    (stale / "junk").write_bytes(b"x" * 10)
    assert view(path)[0] == 400  # a stale folder the manifest does not name is ignored
    persist.save_collection(c.snapshot(), path)
    assert not stale.exists()


@pytest.mark.slow
def test_kill_during_save_never_leaves_a_mix(tmp_path):
    """SIGKILL a process saving in a loop, 15 times; every load gives the previous or the new save."""
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "kill_during_save.py"), "--kills", "15",
                          "--index", "IVF_FLAT", "--seed", "1", "--json", "--workdir", str(tmp_path / "work")],
                         capture_output=True, text=True, timeout=600)
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts["failures"] == [], counts
    assert counts["kills"] == 15 and counts["unreadable"] == 0 and counts["mixed"] == 0
    assert counts["previous"] + counts["new"] == 15
    assert counts["saves_completed"] > 0
    assert out.returncode == 0


@pytest.mark.slow
def test_two_processes_saving_to_one_path_take_turns(engine, tmp_path):
    """Saves from several processes to one path, loads in between: every load is a complete save."""
    c = collection(engine)
    path = persist.save_collection(c.snapshot(), tmp_path / "s")
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
              "from conftest import clustered\n"
              "from milvus_lab import Engine\n"
              "from milvus_lab.engine import persist\n"
              "e = Engine(build_threshold=32)\n"
              "c = e.create_collection('c', 16, segment_rows=100)\n"
              "c.create_index('IVF_FLAT', {'nlist': 4})\n"
              "c.insert(clustered(int(sys.argv[1]), 16, clusters=8))\n"
              "c.wait_for_index(60)\n"
              "for _ in range(8):\n"
              f"    persist.save_collection(c.snapshot(), {str(path)!r})\n"
              "e.close()\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(rows)], stderr=subprocess.PIPE, text=True)
             for rows in (300, 500)]
    seen = set()
    while any(p.poll() is None for p in procs):
        seen.add(view(path)[0])
    assert [p.wait() for p in procs] == [0, 0], [p.stderr.read()[-2000:] for p in procs]
    seen.add(view(path)[0])
    assert seen <= {300, 400, 500}
    assert view(path)[0] in (300, 500)


def test_folders_of_killed_saves_go_at_the_start_of_the_next_save(engine, tmp_path, monkeypatch):
    """Saves killed again and again before their commit do not pile up folders."""
    c = collection(engine)
    path = persist.save_collection(c.snapshot(), tmp_path / "s")
    live = json.loads((path / "manifest.json").read_text())["data_dir"]
    for i in range(3):  # what three SIGKILLed saves leave behind
        (path / f"data-{str(i) * 32}").mkdir()
        (path / f".manifest.json.{i}.tmp").write_text("{")

    def die(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(persist.os, "replace", die)
    with pytest.raises(KeyboardInterrupt):
        persist.save_collection(c.snapshot(), path)
    monkeypatch.undo()
    monkeypatch.setenv(persist.CONFIG_DIR_ENV, str(tmp_path / "config"))
    assert sorted(p.name for p in path.iterdir()) == sorted([".lock", "manifest.json", live])
    assert view(path)[0] == 400
