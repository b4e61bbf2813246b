"""The change signal (``protocol.ChangeSignalling``) and the forms that listen to it instead of polling.

Oracles: the list of calls a test made (each change moves the version, each read does not), a count of
``stats()`` calls (none while nothing changes), and a fresh render of the collection (what the panel must
show once a change was signalled)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import clustered
from helpers import ProtocolCollection

from milvus_lab.errors import MilvusLabError, ParamError
from milvus_lab.protocol import ChangeSignal, ChangeSignalling
from milvus_lab.widgets import CollectionPanel, IndexForm, SearchForm, app

DIM = 16
#: the shared `engine` fixture (conftest) builds an index once a segment holds this many rows
ENGINE_BUILD_THRESHOLD = 1


@pytest.fixture
def coll(engine):
    c = engine.create_collection("listen", DIM, index_file_size=1)
    c.segment_rows = 400
    c.insert(clustered(300, DIM, seed=1))
    return c


def count_stats(collection) -> list[int]:
    """Wrap ``collection.stats`` so every call is recorded; return the record."""
    calls: list[int] = []
    real = collection.stats

    def stats():
        calls.append(1)
        return real()
    collection.stats = stats
    return calls


def test_the_version_moves_on_every_change_and_never_on_a_read(coll):
    assert isinstance(coll, ChangeSignalling)
    vectors = clustered(50, DIM, seed=2)
    changes = [
        ("insert", lambda: coll.insert(vectors)),
        ("create_partition", lambda: coll.create_partition("p")),
        ("insert into p", lambda: coll.insert(vectors, partition_tag="p")),
        ("drop_partition", lambda: coll.drop_partition("p")),
        ("delete", lambda: coll.delete([0, 1, 2])),
        ("flush", coll.flush),
        ("compact", coll.compact),
        ("create_index", lambda: coll.create_index("IVF_FLAT", {"nlist": 8}, warn=False)),
        ("drop_index", coll.drop_index),
    ]
    reads = [coll.count, coll.stats, coll.segments, coll.describe_index, coll.describe, coll.list_partitions,
             lambda: coll.search(vectors[:2], top_k=3, params=None if coll.index_type == "FLAT" else {"nprobe": 1}),
             lambda: coll.get_entity_by_id([5, 6]),
             lambda: coll.has_partition("p")]
    for name, change in changes:
        before = coll.version
        change()
        coll.wait_for_index()
        assert coll.version > before, f"{name} did not move the version"
        before = coll.version
        for read in reads:
            read()
        assert coll.version == before, f"a read moved the version after {name}"


def test_a_refused_call_leaves_the_version_alone(coll):
    before = coll.version
    with pytest.raises(MilvusLabError):
        coll.insert(np.zeros((3, DIM + 1), dtype=np.float32))
    with pytest.raises(MilvusLabError):
        coll.create_index("IVF_FLAT", {"nlist": 0})
    with pytest.raises(MilvusLabError):
        coll.drop_partition("no such partition")
    assert coll.version == before


def test_a_background_build_fires_the_hook_on_the_indexer_thread(coll):
    coll.create_index("IVF_FLAT", {"nlist": 8}, warn=False)
    seen: list[tuple[int, str]] = []
    stop = coll.on_change(lambda v: seen.append((v, threading.current_thread().name)))
    # create_index sealed the 300 rows it indexed; 450 more fill (seal) a 400-row segment, built in the background
    coll.insert(clustered(450, DIM, seed=3))
    assert coll.wait_for_index(120)
    stop()
    main = threading.current_thread().name
    assert [v for v, _ in seen] == sorted(v for v, _ in seen) and seen[-1][0] == coll.version
    assert any(name != main for _, name in seen), "no change was signalled from the background build"
    assert any(s["sealed"] and s["index_name"] == "IVF_FLAT" for s in coll.segments())


def test_forms_follow_changes_without_a_polling_thread(coll):
    calls = count_stats(coll)
    panel = CollectionPanel(coll)
    index_form = IndexForm(coll)
    search_form = SearchForm(coll)
    try:
        for owner in (panel, index_form, search_form):
            assert owner.watcher.thread is None and owner.watcher.active
        assert not [t for t in threading.enumerate() if t.name == "milvus_lab-widget-watcher"]
        calls.clear()
        threading.Event().wait(0.3)  # a poller at the default 0.5 s interval... there is none to tick
        assert calls == [], "stats() was called while the collection was idle"
        coll.insert(clustered(50, DIM, seed=4))
        assert calls, "an insert did not reach the forms"
        assert panel.html.value == panel.render() and "350" in panel.html.value
        coll.create_index("HNSW", {"M": 8, "efConstruction": 40}, warn=False)
        assert "Current index: HNSW (M=8, efConstruction=40)" in index_form.current.text
        assert "HNSW" in search_form.index_info.value and "ef" in search_form.fields
        calls.clear()
        coll.insert(clustered(450, DIM, seed=5))  # seals a 400-row segment: the indexer thread builds it
        assert coll.wait_for_index(120)
        assert panel.html.value == panel.render(), "the background build's end did not reach the panel"
        assert "sealed" in panel.html.value
        settled = len(calls)
        coll.count(), coll.describe_index(), coll.search(clustered(1, DIM), top_k=2, params={"ef": 16})
        assert len(calls) == settled, "reads made the forms look again"
    finally:
        for owner in (panel, index_form, search_form):
            owner.close()
    for owner in (panel, index_form, search_form):
        assert not owner.watcher.active
    calls.clear()
    coll.insert(clustered(10, DIM, seed=6))
    assert calls == [], "a closed form still listens"


def test_a_dropped_collection_is_shown_by_the_listening_panel(engine, coll):
    panel = CollectionPanel(coll)
    try:
        engine.drop_collection("listen")
        assert "was dropped" in panel.html.value
    finally:
        panel.close()


def test_a_raising_listener_breaks_neither_the_change_nor_other_listeners(coll):
    heard: list[int] = []
    coll.on_change(lambda v: 1 / 0)
    coll.on_change(heard.append)
    rows = coll.count()
    coll.insert(clustered(20, DIM, seed=7))
    assert coll.count() == rows + 20 and heard == [coll.version]


def test_on_change_refuses_what_cannot_be_called(coll):
    with pytest.raises(ParamError, match="callback must be callable.*int 3"):
        coll.on_change(3)


def test_unsubscribe_stops_the_calls_and_is_idempotent():
    signal = ChangeSignal()
    heard: list[int] = []
    stop = signal.subscribe(heard.append)
    signal.bump()
    stop()
    stop()
    signal.bump()
    assert heard == [1] and signal.version == 2


def test_the_counter_is_exact_under_concurrent_bumps():
    signal = ChangeSignal()
    heard: list[int] = []
    lock = threading.Lock()

    def listen(v: int) -> None:
        with lock:
            heard.append(v)
    signal.subscribe(listen)
    threads, per_thread = 8, 500
    workers = [threading.Thread(target=lambda: [signal.bump() for _ in range(per_thread)]) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    total = threads * per_thread
    assert signal.version == total and sorted(heard) == list(range(1, total + 1))


def test_concurrent_inserts_each_move_the_version_once(engine):
    c = engine.create_collection("many", DIM, index_file_size=1)
    before = c.version
    batch = clustered(5, DIM, seed=8)
    workers = [threading.Thread(target=lambda: [c.insert(batch) for _ in range(20)]) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert c.count() == 4 * 20 * 5 and c.version == before + 4 * 20


class _RecordingHandle:
    """Stands in for a pymilvus Collection: records the RPCs made, answers num_entities."""

    def __init__(self) -> None:
        self.rpcs: list[str] = []
        self.num_entities = 0

    def insert(self, rows, **_kw) -> None:
        self.rpcs.append("insert")
        self.num_entities += len(rows[0])

    def flush(self, **_kw) -> None:
        self.rpcs.append("flush")


def test_a_server_collection_counts_the_changes_made_through_it_without_an_rpc():
    from milvus_lab.server.target import ServerCollection, ServerTarget

    target = ServerTarget.__new__(ServerTarget)  # no connection: the handle below answers instead of a server
    target.uri, target.timeout, target.profile = "fake://listen", 5.0, "milvus-2.3"
    handle = _RecordingHandle()
    c = ServerCollection(target, "listen", DIM, "L2", handle)
    assert isinstance(c, ChangeSignalling)
    heard: list[int] = []
    c.on_change(heard.append)
    c.insert(clustered(10, DIM, seed=9))
    assert c.version == 1 and heard == [1] and handle.rpcs == ["insert", "flush"]
    rpcs = len(handle.rpcs)
    assert c.version == 1 and len(handle.rpcs) == rpcs, "reading the version made an RPC"
    assert c.count() == 10 and c.describe_index().index_type == "FLAT" and c.version == 1
    with pytest.raises(MilvusLabError):
        c.insert(np.zeros((2, DIM + 1), dtype=np.float32))
    assert c.version == 1
    c.drop_index()
    assert c.version == 2 and heard == [1, 2]


def test_the_app_listens_once_for_its_three_views(coll):
    calls = count_stats(coll)
    a = app(coll)
    try:
        assert a.watcher.thread is None and a.watcher.active
        calls.clear()
        coll.create_index("IVF_FLAT", {"nlist": 8}, warn=False)
        assert "Current index: IVF_FLAT (nlist=8)" in a.index_form.current.text
        assert "IVF_FLAT" in a.search_form.index_info.value and a.panel.html.value == a.panel.render()
    finally:
        a.close()
    assert not a.watcher.active


def test_a_collection_without_the_signal_is_still_followed_by_polling(coll):
    silent = ProtocolCollection(coll)  # the protocol's verbs only: no version, no on_change
    assert not isinstance(silent, ChangeSignalling)
    f = IndexForm(silent, interval=0.01)
    try:
        assert f.watcher.thread is not None and f.watcher.active
        coll.create_index("HNSW", {"M": 8, "efConstruction": 40}, warn=False)
        done = threading.Event()
        for _ in range(12000):  # a failure bound only (about 120 s): the loop ends on the change
            if "HNSW" in f.current.text or done.wait(0.01):
                break
        assert "Current index: HNSW (M=8, efConstruction=40)" in f.current.text
    finally:
        f.close()
    f.watcher.thread.join(60)
    assert not f.watcher.active
