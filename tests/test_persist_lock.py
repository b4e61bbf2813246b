"""The save lock (filelock on ``path/.lock``): saves to one path take turns, and a load waits for a save."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np
import pytest
from conftest import clustered

from milvus_lab.engine import files, persist

pytestmark = pytest.mark.usefixtures("key_folder")

#: how long the first saver, inside the lock, leaves the door open for the second to get in wrongly; a working
#: lock keeps it out however long this is, so the value decides only how sure a broken lock is to be caught
OPEN_DOOR_SECONDS = 1.0
#: a safety bound on waiting for the other thread, so a broken test fails instead of hanging
STUCK_SECONDS = 120.0


class Recorder:
    """Wraps the part of a save that runs under the lock and the lock itself, to see who is where."""

    def __init__(self, monkeypatch):
        self.events: list[tuple[str, str]] = []
        self.inside = 0
        self.most_inside = 0
        self.guard = threading.Lock()
        self.asking = {name: threading.Event() for name in ("first", "second")}
        self.entered = {name: threading.Event() for name in ("first", "second")}
        real_commit, real_lock = persist._commit_locked, persist.folder_lock

        @contextmanager
        def watched_lock(lock_file, **kwargs):
            if threading.current_thread().name in self.asking:
                self.asking[threading.current_thread().name].set()
            with real_lock(lock_file, **kwargs) as held:
                yield held

        def watched_commit(*args, **kwargs):
            name = threading.current_thread().name
            with self.guard:
                self.inside += 1
                self.most_inside = max(self.most_inside, self.inside)
                self.events.append(("enter", name))
            self.entered[name].set()
            if name == "first":  # hold the lock until the second saver is at the door, then a while longer
                assert self.asking["second"].wait(STUCK_SECONDS)
                self.entered["second"].wait(OPEN_DOOR_SECONDS)
            try:
                return real_commit(*args, **kwargs)
            finally:
                with self.guard:
                    self.inside -= 1
                    self.events.append(("exit", name))

        monkeypatch.setattr(persist, "folder_lock", watched_lock)
        monkeypatch.setattr(persist, "_commit_locked", watched_commit)


def two_states(engine):
    states = []
    for rows in (120, 260):
        c = engine.create_collection(f"c{rows}", 16, segment_rows=100)
        c.insert(clustered(rows, 16, clusters=4))
        states.append(c.snapshot())
    return states


def test_two_threads_saving_to_one_path_never_interleave(engine, tmp_path, monkeypatch):
    first_state, second_state = two_states(engine)
    path = tmp_path / "s"
    recorder = Recorder(monkeypatch)
    errors: list[BaseException] = []

    def save(state):
        try:
            persist.save_collection(state, path)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    first = threading.Thread(target=save, args=(first_state,), name="first")
    first.start()
    assert recorder.entered["first"].wait(STUCK_SECONDS), errors  # inside before the second saver starts
    second = threading.Thread(target=save, args=(second_state,), name="second")
    second.start()
    first.join(STUCK_SECONDS)
    second.join(STUCK_SECONDS)
    assert not errors
    assert recorder.most_inside == 1
    assert recorder.events == [("enter", "first"), ("exit", "first"), ("enter", "second"), ("exit", "second")]
    # the save that went in last is the one on disk, complete, with nothing of the first one left over
    loaded = persist.read_collection_state(path)
    assert loaded.name == second_state.name and sum(s.count for s in loaded.segments) == 260
    assert sorted(np.concatenate([s.ids for s in loaded.segments])) == \
        sorted(np.concatenate([s.ids for s in second_state.segments]))
    assert len([p for p in path.iterdir() if p.name.startswith("data-")]) == 1


def test_a_load_waits_for_the_lock(engine, tmp_path):
    state, _ = two_states(engine)
    path = persist.save_collection(state, tmp_path / "s")
    loaded = threading.Event()

    def load():
        persist.read_collection_state(path)
        loaded.set()

    with files.folder_lock(path / persist.LOCK_FILE):  # as a save in progress holds it
        reader = threading.Thread(target=load)
        reader.start()
        assert not loaded.wait(OPEN_DOOR_SECONDS)
    reader.join(STUCK_SECONDS)
    assert loaded.is_set()


def test_a_save_without_a_lock_file_loads_without_making_one(engine, tmp_path):
    state, _ = two_states(engine)
    path = persist.save_collection(state, tmp_path / "s")
    (path / persist.LOCK_FILE).unlink()  # an older save, or a copy without it
    assert persist.read_collection_state(path).name == state.name
    assert not (path / persist.LOCK_FILE).exists()
    with files.folder_lock(path / persist.LOCK_FILE, create=False) as held:
        assert held is False
    with files.folder_lock(path / persist.LOCK_FILE) as held:
        assert held is True and (path / persist.LOCK_FILE).is_file()
