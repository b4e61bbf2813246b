"""Save / load of a collection or an engine: exact round trips, no rebuild, damaged files refused whole."""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import clustered

from milvus_lab import Engine, backends
from milvus_lab.engine import persist
from milvus_lab.engine.persist import PersistError
from milvus_lab.errors import AlreadyExistsError, IllegalIdError

BUILD = {
    "FLAT": ({}, None),
    "IVF_FLAT": ({"nlist": 8}, {"nprobe": 3}),
    "IVF_SQ8": ({"nlist": 8}, {"nprobe": 3}),
    "IVF_SQ8H": ({"nlist": 8}, {"nprobe": 3}),
    "IVF_PQ": ({"nlist": 8, "m": 4}, {"nprobe": 3}),
    "RNSG": ({"search_length": 20, "out_degree": 10, "candidate_pool_size": 60, "knng": 20}, {"search_length": 30}),
    "HNSW": ({"M": 8, "efConstruction": 40}, {"ef": 30}),
    "ANNOY": ({"n_trees": 4}, {"search_k": -1}),
}

#: the signing key lives in this test's own folder (conftest's key_folder), never in the real home
pytestmark = pytest.mark.usefixtures("key_folder")


# the engine's Collection.save / Engine.save / engine.load_collection / Engine.load are these calls
save_collection, save_engine, load_collection = persist.save_collection, persist.save_engine, persist.load_collection


def load_engine(path, *, trust=False):
    return Engine.restore(persist.read_engine_state(path, trust=trust))


#: the shared `engine` fixture (conftest) builds an index once a segment holds this many rows
ENGINE_BUILD_THRESHOLD = 32


def quiet(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


def observable(c) -> tuple:
    """Everything a user can see about a collection, for before/after comparisons."""
    segs = [(s["partition"], s["name"], s["row_count"], s["deleted_rows"], s["sealed"], s["index_name"])
            for s in c.segments()]
    return (c.name, c.dimension, c.metric, c.index_file_size, c.count(), c.index_type, c.index_params,
            c.index_params_given, c.list_partitions(), segs, c.stats())


def rich_collection(engine, name="rich", metric="L2", index="IVF_FLAT", dim=16, seed=0):
    """Partitions, several sealed segments (indexed) plus an open one, user ids, flushed and pending deletes."""
    # PQ trains on 256 rows or more
    c = engine.create_collection(name, dim, metric_type=metric, segment_rows=300 if index == "IVF_PQ" else 120)
    c.create_partition("books")
    data = clustered(700, dim, clusters=10, seed=seed)
    if metric == "IP":
        data /= np.linalg.norm(data, axis=1, keepdims=True)
    ids = np.arange(700, dtype=np.int64) * 3 + 11
    quiet(c.create_index, index, BUILD[index][0])
    c.insert(data[:500], ids=ids[:500])
    c.insert(data[500:], ids=ids[500:].tolist(), partition_tag="books")
    assert c.wait_for_index(60)
    c.delete(ids[::7].tolist())
    c.flush()
    c.delete(ids[1::50].tolist())  # pending: not flushed when saved
    return c, data, ids


def same_search(a, b, queries, k, params, tags=None):
    ra = quiet(a.search, queries, k, params, tags)
    rb = quiet(b.search, queries, k, params, tags)
    assert np.array_equal(ra.ids, rb.ids)
    assert np.array_equal(ra.distances, rb.distances)
    return ra


def test_round_trip_is_exact_and_does_not_rebuild(engine, tmp_path, monkeypatch):
    c, data, ids = rich_collection(engine)
    assert any(s["index_name"] == "IVF_FLAT" for s in c.segments())
    before = observable(c)
    save_collection(c, tmp_path / "save")

    def no_build(*args, **kwargs):
        raise AssertionError("load must not rebuild an index")

    monkeypatch.setattr(backends, "build", no_build)
    other = Engine(build_threshold=32)
    try:
        d = load_collection(other, tmp_path / "save")
        assert observable(d) == before
        queries = clustered(20, 16, clusters=10, seed=5)
        same_search(c, d, queries, 10, {"nprobe": 3})
        same_search(c, d, queries, 10, {"nprobe": 3}, ["books"])
        assert all((x is None and y is None) or np.array_equal(x, y)
                   for x, y in zip(c.get_entity_by_id(ids.tolist()), d.get_entity_by_id(ids.tolist())))
        c.flush()
        d.flush()  # the pending deletes travelled with the save
        assert observable(d) == observable(c)
        with pytest.raises(IllegalIdError):  # user ids, and which of them are live, travelled too
            d.insert(data[:1], ids=[int(ids[2])])
        assert d.memory_bytes()["index_bytes"] == c.memory_bytes()["index_bytes"]
    finally:
        other.close()


@pytest.mark.parametrize("index", list(BUILD))
@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_every_index_type_round_trips(engine, tmp_path, index, metric):
    c, data, _ = rich_collection(engine, metric=metric, index=index)
    if index != "FLAT":
        assert any(s["index_name"] == index for s in c.segments()), c.segments()
    save_collection(c, tmp_path / index)
    other = Engine(build_threshold=32)
    try:
        d = load_collection(other, tmp_path / index)
        assert observable(d) == observable(c)
        queries = data[::37] + 0.01
        same_search(c, d, queries, 7, BUILD[index][1])
    finally:
        other.close()


def test_rnsg_with_duplicate_rows_round_trips(engine, tmp_path):
    c = engine.create_collection("dups", 8)
    base = clustered(40, 8, seed=3)
    c.insert(np.concatenate([base, base, base[:10]]))
    quiet(c.create_index, "RNSG", BUILD["RNSG"][0])
    assert c.segments()[0]["index_name"] == "RNSG"
    save_collection(c, tmp_path / "s")
    files = json.loads((tmp_path / "s" / "manifest.json").read_text())["files"]
    assert any(name.endswith(".groups.npy") for name in files)  # the companion file is covered too
    other = Engine(build_threshold=32)
    try:
        d = load_collection(other, tmp_path / "s")
        same_search(c, d, base[:5], 6, {"search_length": 30})
    finally:
        other.close()


@pytest.mark.parametrize("metric,index", [("HAMMING", "IVF_FLAT"), ("JACCARD", "IVF_FLAT"), ("TANIMOTO", "FLAT"),
                                          ("SUBSTRUCTURE", "FLAT"), ("SUPERSTRUCTURE", "FLAT")])
def test_binary_collections_round_trip(engine, tmp_path, metric, index):
    rng = np.random.default_rng(1)
    c = engine.create_collection("bin", 64, metric_type=metric)
    codes = rng.integers(0, 256, (300, 8), dtype=np.uint8)
    c.insert([bytes(r) for r in codes])
    quiet(c.create_index, index, {"nlist": 8} if index == "IVF_FLAT" else {})
    save_collection(c, tmp_path / "b")
    other = Engine(build_threshold=32)
    try:
        d = load_collection(other, tmp_path / "b")
        assert observable(d) == observable(c)
        same_search(c, d, codes[:9] & codes[9:18], 5, {"nprobe": 4} if index == "IVF_FLAT" else None)
    finally:
        other.close()


def test_engine_round_trip(tmp_path):
    e = Engine(build_threshold=32)
    try:
        c1, *_ = rich_collection(e, "one", index="HNSW")
        c2, *_ = rich_collection(e, "two", metric="IP", index="IVF_SQ8")
        e.create_collection("empty", 8, metric_type="HAMMING", index_file_size=7)
        save_engine(e, tmp_path / "eng")
        f = load_engine(tmp_path / "eng")
        try:
            assert f.build_threshold == 32
            assert f.list_collections() == e.list_collections()
            for name in e.list_collections():
                assert observable(f.get_collection(name)) == observable(e.get_collection(name))
            q = clustered(5, 16, clusters=10, seed=8)
            same_search(c1, f.get_collection("one"), q, 5, {"ef": 20})
            same_search(c2, f.get_collection("two"), q, 5, {"nprobe": 2})
        finally:
            f.close()
    finally:
        e.close()


def test_pending_deletes_keep_their_extent_across_a_save(engine, tmp_path):
    c = engine.create_collection("later", 4)
    c.insert(np.ones((2, 4), np.float32))  # ids 0, 1
    c.delete([1, 2])  # 2 does not exist yet ...
    c.insert(np.ones((2, 4), np.float32))  # ... and is generated here: the delete must not reach it
    save_collection(c, tmp_path / "p")
    other = Engine(build_threshold=32)
    try:
        d = load_collection(other, tmp_path / "p")
        c.flush()
        d.flush()
        assert c.count() == d.count() == 3
        assert observable(d) == observable(c)
    finally:
        other.close()


def test_loaded_collection_keeps_working(engine, tmp_path):
    c = engine.create_collection("auto", 8, segment_rows=50)
    quiet(c.create_index, "IVF_FLAT", {"nlist": 4})
    c.insert(clustered(130, 8))
    assert c.wait_for_index(60)
    save_collection(c, tmp_path / "a")
    other = Engine(build_threshold=32)
    try:
        d = load_collection(other, tmp_path / "a", name="renamed")
        assert other.list_collections() == ["renamed"]
        new = d.insert(clustered(100, 8, seed=4))
        assert new.tolist() == list(range(130, 230))  # auto ids continue, never reused
        assert d.wait_for_index(60)
        assert [s["index_name"] for s in d.segments()] == ["IVF_FLAT"] * 4 + ["FLAT"]
        assert d.count() == 230
    finally:
        other.close()


# ------------------------------------------------------------------------------------------------------
# damaged, tampered and foreign saves
# ------------------------------------------------------------------------------------------------------
def rewrite_manifest(root: Path, change) -> None:
    """Edit the manifest and recompute its checksum, as an attacker or a buggy tool might (without the
    user's key the signature cannot be recomputed, so it goes)."""
    manifest = json.loads((root / "manifest.json").read_text())
    manifest.pop("checksum")
    manifest.pop("signature", None)
    change(manifest)
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest["checksum"] = {"sha256": hashlib.sha256(body).hexdigest()}
    (root / "manifest.json").write_text(json.dumps(manifest))


def resign_file(root: Path, rel: str) -> None:
    data = (root / rel).read_bytes()
    rewrite_manifest(root, lambda m: m["files"].update({rel: {"sha256": hashlib.sha256(data).hexdigest(),
                                                             "bytes": len(data)}}))


def first(manifest_files: dict, suffix: str) -> str:
    return next(name for name in sorted(manifest_files) if name.endswith(suffix))


@pytest.fixture
def saved(engine, tmp_path):
    c, *_ = rich_collection(engine)
    path = save_collection(c, tmp_path / "good")
    return path, json.loads((path / "manifest.json").read_text())["files"]


def flip_byte(path: Path, offset: int = -5) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "vectors byte flipped": (lambda p, f: flip_byte(p / first(f, ".vectors.npy")), "sha256"),
    "index truncated": (lambda p, f: truncate(p / first(f, ".index")), "truncated"),
    "ids truncated": (lambda p, f: truncate(p / first(f, ".ids.npy")), "truncated"),
    "deleted mask removed": (lambda p, f: (p / first(f, ".deleted.npy")).unlink(), "missing"),
    "manifest truncated": (lambda p, f: truncate(p / "manifest.json"), "not valid JSON"),
    "manifest edited": (lambda p, f: (p / "manifest.json").write_text(
        (p / "manifest.json").read_text().replace('"dimension": 16', '"dimension": 17')), "checksum"),
    "manifest missing": (lambda p, f: (p / "manifest.json").unlink(), "missing"),
    "manifest not ours": (lambda p, f: (p / "manifest.json").write_text('{"format": "other"}'), "not a milvus_lab"),
    "newer format": (lambda p, f: rewrite_manifest(p, lambda m: m.update(format_version=99)), "newer"),
    "dimension changed and re-signed": (
        lambda p, f: rewrite_manifest(p, lambda m: m["collections"][0].update(dimension=17)), "shape"),
    "bad metric re-signed": (
        lambda p, f: rewrite_manifest(p, lambda m: m["collections"][0].update(metric="COSINE")), "schema"),
    "nlist out of range re-signed": (
        lambda p, f: rewrite_manifest(p, lambda m: m["collections"][0].update(index_params={"nlist": 0})),
        "index parameters"),
    "path traversal re-signed": (
        lambda p, f: rewrite_manifest(p, lambda m: m["files"].update({"../../etc/passwd": {"sha256": "0" * 64,
                                                                                          "bytes": 1}})),
        "invalid file path"),
    "extra key re-signed": (
        lambda p, f: rewrite_manifest(p, lambda m: m["collections"][0].update(evil=1)), "keys"),
    "count mismatch re-signed": (
        lambda p, f: rewrite_manifest(p, lambda m: m["collections"][0]["segments"][0].update(count=5)), "shape"),
    "n_deleted mismatch re-signed": (
        lambda p, f: rewrite_manifest(p, lambda m: m["collections"][0]["segments"][0].update(n_deleted=0)),
        "n_deleted"),
    "duplicate live id": (lambda p, f: (np.save(p / first(f, "2.ids.npy"), np.load(p / first(f, "1.ids.npy"))),
                                        resign_file(p, first(f, "2.ids.npy"))), "twice"),
    "vectors replaced by a symlink": (lambda p, f: ((p / first(f, "1.vectors.npy")).unlink(),
                                                    (p / first(f, "1.vectors.npy")).symlink_to("/etc/hostname")),
                                      "symbolic link"),
    "pending delete extent beyond the rows re-signed": (
        lambda p, f: rewrite_manifest(p, lambda m: m["collections"][0]["pending_deletes"][0]["extent"].update(
            {"1": 10**6})), "beyond"),
    "ids as float re-signed": (lambda p, f: (np.save(p / first(f, "1.ids.npy"),
                                                     np.load(p / first(f, "1.ids.npy")).astype(np.float64)),
                                             resign_file(p, first(f, "1.ids.npy"))), "dtype"),
    "NaN vector re-signed": (lambda p, f: (np.save(p / first(f, "1.vectors.npy"),
                                                   np.full((120, 16), np.nan, np.float32)),
                                           resign_file(p, first(f, "1.vectors.npy"))), "NaN"),
    "pickled object array re-signed": (lambda p, f: (np.save(p / first(f, "1.ids.npy"),
                                                             np.array([{"x": 1}] * 120, dtype=object),
                                                             allow_pickle=True),
                                                     resign_file(p, first(f, "1.ids.npy"))), "dtype object"),
    "npy header announcing more rows than the file holds re-signed": (
        lambda p, f: (_short_npy(p / first(f, "1.ids.npy")), resign_file(p, first(f, "1.ids.npy"))), "announces"),
}


def _short_npy(path: Path) -> None:
    """A valid .npy header for the right shape, followed by too few bytes (NumPy would allocate first)."""
    header = np.load(path)
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, np.lib.format.header_data_from_array_1_0(header))
        fh.write(b"\0" * 8)


def _write_other_index(path: Path) -> None:
    import faiss

    index = faiss.IndexFlatL2(4)
    index.add(np.zeros((120, 4), np.float32))
    faiss.write_index(index, str(path))


def test_foreign_index_file_is_rebuilt_by_default_and_refused_when_trusted(saved, engine):
    path, files = saved
    original = observable(engine.get_collection("rich"))
    _write_other_index(path / first(files, ".index"))
    resign_file(path, first(files, ".index"))
    target = Engine(build_threshold=32)
    try:
        with pytest.raises(PersistError, match="index") as err:  # trusted: the file is parsed, and refused
            load_collection(target, path, trust=True)
        assert "nothing was loaded" in str(err.value)
        assert target.list_collections() == []
        with pytest.warns(persist.UnsignedSaveWarning, match="rebuilt"):  # default: never parsed, rebuilt
            loaded = load_collection(target, path)
        assert observable(loaded) == original
    finally:
        target.close()


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"format": "milvus_lab", "format_version": 2e0}',
                                  '{"format": NaN}', "\ufeff{}", '"string"', "null", "1e999999"])
def test_a_manifest_that_is_not_a_save_is_refused(saved, text):
    path, _ = saved
    (path / "manifest.json").write_text(text)
    with pytest.raises(PersistError):
        persist.read_collection_state(path)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_save_is_refused_and_loads_nothing(saved, damage):
    path, files = saved
    change, words = DAMAGE[damage]
    change(path, files)
    target = Engine(build_threshold=32)
    try:
        target.create_collection("keep", 4)
        with pytest.raises(PersistError, match=words) as err:
            load_collection(target, path)
        assert "nothing was loaded" in str(err.value)
        assert target.list_collections() == ["keep"]
        with pytest.raises(PersistError):
            load_engine(path)
    finally:
        target.close()


def test_kind_mismatch_and_name_clash(engine, tmp_path):
    c, *_ = rich_collection(engine)
    save_collection(c, tmp_path / "col")
    save_engine(engine, tmp_path / "eng")
    with pytest.raises(PersistError, match="load_collection"):
        load_engine(tmp_path / "col")
    with pytest.raises(PersistError, match="Engine.load"):
        load_collection(engine, tmp_path / "eng")
    before = observable(c)
    with pytest.raises(AlreadyExistsError, match="name="):
        load_collection(engine, tmp_path / "col")
    assert engine.list_collections() == ["rich"] and observable(c) == before
    assert load_collection(engine, tmp_path / "col", name="copy").count() == c.count()


def test_refuses_to_overwrite_foreign_directory_or_file(engine, tmp_path):
    c = engine.create_collection("x", 4)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.txt").write_text("precious")
    with pytest.raises(PersistError, match="not a milvus_lab save"):
        save_collection(c, tmp_path / "notes")
    assert (tmp_path / "notes" / "thesis.txt").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(PersistError, match="is a file"):
        save_collection(c, tmp_path / "file")
    with pytest.raises(PersistError, match="no such directory"):
        load_collection(engine, tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------------------
# saving never leaves a half-written save in place of a good one
# ------------------------------------------------------------------------------------------------------
def test_failed_save_keeps_the_previous_save(engine, tmp_path, monkeypatch):
    c, *_ = rich_collection(engine)
    path = save_collection(c, tmp_path / "s")
    good = observable(c)
    first_manifest = (path / "manifest.json").read_bytes()
    c.insert(clustered(5, 16, seed=9), ids=[10**9 + i for i in range(5)])
    index_type = type(next(s.index for s in c.snapshot().segments if s.index is not None))

    def failing_save(self, where):
        Path(where).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(index_type, "save", failing_save)
    with pytest.raises(PersistError, match="disk full"):
        save_collection(c, path)
    assert (path / "manifest.json").read_bytes() == first_manifest
    assert [p.name for p in path.iterdir() if p.name.startswith("data-")] == \
        [json.loads(first_manifest)["data_dir"]]  # the new data folder was removed
    assert not [p for p in path.iterdir() if p.name.endswith(".tmp")]
    other = Engine(build_threshold=32)
    try:
        assert observable(load_collection(other, path)) == good
    finally:
        other.close()


def test_crash_before_commit_keeps_the_previous_save(engine, tmp_path, monkeypatch):
    c, *_ = rich_collection(engine)
    path = save_collection(c, tmp_path / "s")
    good = observable(c)
    c.drop_index()
    real_replace = persist.os.replace

    def crash(src, dst):
        raise KeyboardInterrupt  # the process dies between writing the data and committing the manifest

    monkeypatch.setattr(persist.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_collection(c, path)
    monkeypatch.setattr(persist.os, "replace", real_replace)
    other = Engine(build_threshold=32)
    try:
        assert observable(load_collection(other, path)) == good
    finally:
        other.close()
    save_collection(c, path)  # the next save succeeds and cleans up
    assert len([p for p in path.iterdir() if p.name.startswith("data-")]) == 1


def test_save_while_inserting_is_a_consistent_snapshot(engine, tmp_path):
    c = engine.create_collection("busy", 8, segment_rows=64)
    quiet(c.create_index, "IVF_FLAT", {"nlist": 4})
    stop = threading.Event()
    errors = []

    def writer():
        i = 0
        while not stop.is_set() and i < 400:
            try:
                c.insert(clustered(10, 8, seed=i))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    counts = []
    try:
        for k in range(5):
            path = save_collection(c, tmp_path / f"s{k}")
            other = Engine(build_threshold=32)
            try:
                d = load_collection(other, path)
                counts.append(d.count())
                assert d.count() % 10 == 0  # whole batches only
                sealed = [s for s in d.segments() if s["sealed"]]
                assert all(s["index_name"] == "IVF_FLAT" for s in sealed)  # save waited for background builds
            finally:
                other.close()
    finally:
        stop.set()
        t.join()
    assert not errors
    assert counts == sorted(counts)


def test_segments_waiting_for_a_build_get_it_after_load(engine, tmp_path, monkeypatch):
    """Sealed segments that were still waiting for a background build are scheduled after load."""
    c = engine.create_collection("wait", 8, segment_rows=40)
    quiet(c.create_index, "HNSW", {"M": 8, "efConstruction": 20})
    monkeypatch.setattr(engine.indexer, "submit", lambda *a, **k: None)  # background builds never run here
    c.insert(clustered(100, 8))
    assert [s["index_name"] for s in c.segments()] == ["FLAT"] * 3
    save_collection(c, tmp_path / "w")
    other = Engine(build_threshold=32)
    try:
        d = load_collection(other, tmp_path / "w")  # restore builds them before it returns
        assert [s["index_name"] for s in d.segments()] == ["HNSW", "HNSW", "FLAT"]
    finally:
        other.close()


def test_save_and_load_methods_round_trip(tmp_path, monkeypatch):
    """The engine's own methods go through persist, with the trust flag threaded through."""
    e = Engine(build_threshold=32)
    try:
        c = e.create_collection("m", 8, segment_rows=50)
        quiet(c.create_index, "IVF_FLAT", {"nlist": 4})
        c.insert(clustered(120, 8))
        assert c.wait_for_index(60)
        c.save(tmp_path / "c")
        e.save(tmp_path / "e")
        q = clustered(5, 8, seed=3)
        again = Engine.load(tmp_path / "e")
        other = Engine().load_collection(tmp_path / "c", "copy")
        for loaded in (again.get_collection("m"), other):
            same_search(c, loaded, q, 3, {"nprobe": 2})
        monkeypatch.setenv(persist.CONFIG_DIR_ENV, str(tmp_path / "someone-else"))
        with pytest.warns(persist.UnsignedSaveWarning):
            assert Engine.load(tmp_path / "e").get_collection("m").count() == 120
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            same_search(c, Engine.load(tmp_path / "e", trust=True).get_collection("m"), q, 3, {"nprobe": 2})
            same_search(c, Engine().load_collection(tmp_path / "c", trust=True), q, 3, {"nprobe": 2})
    finally:
        e.close()
