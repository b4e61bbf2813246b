"""Save and load a collection's or an engine's state: data, partitions, deletes, built indexes.

persist reads and writes only the plain values of :mod:`milvus_lab.engine.state` (what ``snapshot()``
returns and ``restore`` takes); it never touches a collection's internals and imports neither
``collection`` nor ``engine`` (they call it).

A save is a directory. ``manifest.json`` is the commit point: every data file (vectors, ids and deleted masks
as ``.npy``, indexes in their library's own format) is written and fsynced into a fresh ``data-<hex>``
folder beside it, then a new manifest naming those files with their sha256 is written to a temporary
name, fsynced and moved over the old one with ``os.replace`` (then the folder is fsynced). A crash or an
error (a full disk) at any moment leaves the previous save in place and loadable; stale data folders go
after the next commit. There is never a moment when the path holds no complete save (so, unlike a swap of
whole directories by rename, nothing needs recovering after a crash). Saves to one path from several
processes or threads take turns, and so do loads, which wait for a save in progress (:mod:`filelock` on
``path/.lock``, :func:`.files.folder_lock`).

Each manifest is signed with an HMAC-SHA256 under a per-user secret key kept in the user's config folder
(:mod:`.keys`); since the manifest lists every file's sha256, the signature covers every byte. On
load, the manifest's checksum, schema and every file's size and sha256 are checked before any file is
parsed; arrays are read with ``np.load(allow_pickle=False)`` and the whole state is checked
(:meth:`CollectionState.check`) before any index file is read. Index files are handed to faiss / hnswlib /
annoy only when the save is signed with this user's key or the caller passes ``trust=True``; otherwise the
state is returned without them (with an :class:`UnsignedSaveWarning`) and restore rebuilds the indexes
from the saved vectors and parameters. Nothing is unpickled or executed.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .. import backends, spec
from ..errors import MilvusLabError, PersistError, UnsignedSaveWarning
from ..units import MIB
from .files import folder_lock, fsync_dir, fsync_file, npy_header, sha256_file
from .keys import (CONFIG_DIR_ENV, KEY_FILE, SIGNATURE_ALGORITHM, config_dir, sign, signature_problem, signing_key,
                   signing_key_path)
from .state import CollectionState, EngineState, PendingDelete, SegmentState, is_int, layout_problem, row_layout

#: CONFIG_DIR_ENV, KEY_FILE, SIGNATURE_ALGORITHM, config_dir and signing_key_path live in .keys (re-exported)
__all__ = ["CONFIG_DIR_ENV", "FORMAT_NAME", "FORMAT_VERSION", "KEY_FILE", "SIGNATURE_ALGORITHM", "PersistError",
           "UnsignedSaveWarning", "config_dir", "load_collection", "read_collection_state", "read_engine_state",
           "save_collection", "save_engine", "signing_key_path"]

FORMAT_NAME = "milvus_lab"
FORMAT_VERSION = 2
#: versions this code reads; version 1 saves carry no signature (their indexes are rebuilt unless trusted)
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
#: a manifest larger than this is not one of ours (it lists files, it holds no data)
MAX_MANIFEST_BYTES = 64 * MIB
LOCK_FILE = ".lock"
_DATA_DIR = re.compile(r"data-[0-9a-f]{32}\Z")
_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")


# ------------------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------------------
def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _jsonable(value: Any) -> Any:
    """Parameters as given (FLAT keeps whatever it ignored) in a JSON-safe form."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


# ------------------------------------------------------------------------------------------------------
# save
# ------------------------------------------------------------------------------------------------------
def _write_npy(folder: Path, name: str, array: np.ndarray, files: dict[str, Any], root: Path) -> str:
    path = folder / name
    with open(path, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    return _record(path, files, root)


def _record(path: Path, files: dict[str, Any], root: Path) -> str:
    rel = path.relative_to(root).as_posix()
    digest, size = sha256_file(path)
    files[rel] = {"sha256": digest, "bytes": size}
    return rel


def _write_collection(state: CollectionState, folder: Path, root: Path, files: dict[str, Any]) -> dict[str, Any]:
    folder.mkdir()
    meta: dict[str, Any] = {
        "name": state.name, "dimension": int(state.dimension), "index_file_size": int(state.index_file_size),
        "metric": state.metric, "segment_rows": int(state.segment_rows), "index_type": state.index_type,
        "index_params": {str(k): int(v) for k, v in state.index_params.items()},
        "index_params_given": _jsonable(dict(state.index_params_given)),
        "id_mode": state.id_mode, "next_auto_id": int(state.next_auto_id),
        "next_segment_id": int(state.next_segment_id), "partitions": list(state.partitions),
        "background_errors": [str(e) for e in state.background_errors],
    }
    # each pending delete reaches only the rows that existed when it was called (its extent)
    meta["pending_deletes"] = [
        {"ids": _write_npy(folder, f"pending_deletes_{i}.npy", np.asarray(batch.ids, np.int64), files, root),
         "extent": {str(int(k)): int(v) for k, v in sorted(batch.extent.items())}}
        for i, batch in enumerate(state.pending_deletes)]
    segments = []
    for seg in state.segments:
        sid = int(seg.segment_id)
        entry: dict[str, Any] = {
            "id": sid, "partition": seg.partition, "capacity_rows": int(seg.capacity_rows),
            "count": seg.count, "sealed": bool(seg.sealed), "n_deleted": seg.n_deleted,
            "raw_reason": seg.raw_reason,
            "vectors": _write_npy(folder, f"{sid}.vectors.npy", seg.vectors, files, root),
            "ids": _write_npy(folder, f"{sid}.ids.npy", seg.ids, files, root),
            "deleted": (None if seg.deleted is None else
                        _write_npy(folder, f"{sid}.deleted.npy", seg.deleted, files, root)),
            "index": None,
        }
        if seg.index is not None:
            index_path = folder / f"{sid}.index"
            seg.index.save(index_path)
            # an adapter may write companion files beside the index (faiss NSG: <path>.groups.npy)
            extra = sorted(p for p in folder.iterdir() if p.name.startswith(index_path.name + "."))
            for p in [index_path, *extra]:
                fsync_file(p)
            entry["index"] = {"index_type": seg.index.index_type, "params": {k: int(v) for k, v in
                                                                             seg.index.params.items()},
                              "file": _record(index_path, files, root),
                              "extra_files": [_record(p, files, root) for p in extra]}
        segments.append(entry)
    meta["segments"] = segments
    return meta


def _leftover(entry: Path) -> bool:
    """A file or folder an interrupted save of ours leaves behind (nothing a manifest names yet)."""
    return ((_DATA_DIR.match(entry.name) is not None and entry.is_dir() and not entry.is_symlink())
            or (entry.name.startswith(f".{MANIFEST}.") and entry.name.endswith(".tmp")))


def _prepare_target(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise PersistError(f"cannot save to {path}: it is a file; give a directory path")
    if path.is_dir() and not (path / MANIFEST).is_file() and any(not _leftover(e) and e.name != LOCK_FILE
                                                                 for e in path.iterdir()):
        raise PersistError(f"cannot save to {path}: the directory is not empty and is not a milvus_lab save "
                           f"(no {MANIFEST}); refusing to overwrite it")
    path.mkdir(parents=True, exist_ok=True)


def _commit(path: Path, kind: str, states: tuple[CollectionState, ...], extra: Mapping[str, Any]) -> Path:
    """Write the data files into a fresh folder, then atomically replace the (signed) manifest."""
    for state in states:
        if not isinstance(state, CollectionState):
            raise PersistError(f"save_collection / save_engine take the state from snapshot(); got "
                               f"{type(state).__name__}")
    key = signing_key(create=True)
    _prepare_target(path)
    with folder_lock(path / LOCK_FILE):
        return _commit_locked(path, kind, states, extra, key)


def _commit_locked(path: Path, kind: str, states: tuple[CollectionState, ...], extra: Mapping[str, Any],
                   key: bytes) -> Path:
    live = _live_data_dir(path)
    if live is not None or not (path / MANIFEST).exists():
        # we hold the save lock: folders from saves killed before their commit are garbage
        _remove_leftovers(path, keep=live or "")
    data_name = f"data-{uuid.uuid4().hex}"
    data_dir = path / data_name
    tmp_manifest = path / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
    try:
        data_dir.mkdir()
        files: dict[str, Any] = {}
        collections = [_write_collection(state, data_dir / f"c{i}", path, files)
                       for i, state in enumerate(states)]
        for i in range(len(states)):
            fsync_dir(data_dir / f"c{i}")
        fsync_dir(data_dir)
        body = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "kind": kind,
                "milvus_lab_version": _package_version(),
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "data_dir": data_name,
                **extra, "collections": collections, "files": files}
        payload = _canonical(body)
        manifest = dict(body, checksum={"sha256": hashlib.sha256(payload).hexdigest()}, signature=sign(key, payload))
        with open(tmp_manifest, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1, allow_nan=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_manifest, path / MANIFEST)  # the commit point
        fsync_dir(path)
    except BaseException as exc:
        shutil.rmtree(data_dir, ignore_errors=True)
        tmp_manifest.unlink(missing_ok=True)
        if isinstance(exc, MilvusLabError) or not isinstance(exc, Exception):
            raise
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        raise PersistError(f"saving to {path} failed ({'the disk is full: ' if full else ''}"
                           f"{type(exc).__name__}: {exc}); nothing was written over the previous save: "
                           f"it is intact and still loads") from exc
    _remove_leftovers(path, keep=data_name)  # the committed manifest no longer names these
    return path


def _remove_leftovers(path: Path, keep: str) -> None:
    for entry in path.iterdir():
        if entry.name != keep and _leftover(entry):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _live_data_dir(path: Path) -> str | None:
    """The data folder the current manifest names (None when there is no readable manifest)."""
    try:
        name = json.loads((path / MANIFEST).read_bytes()).get("data_dir")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return name if isinstance(name, str) else None


def _package_version() -> str:
    """The installed milvus_lab's version, for the record (importing the package here would be a cycle)."""
    try:
        return importlib.metadata.version("milvus-lab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _as_path(path: Any) -> Path:
    try:
        return Path(path)
    except TypeError:
        raise PersistError(f"{path!r} is not a path; give a str or os.PathLike naming a directory") from None


class _HasSnapshot(Protocol):
    def snapshot(self) -> Any: ...


class _RestoresCollections(Protocol):
    def restore_collection(self, state: CollectionState, *, name: str | None = None) -> Any: ...


def _snapshot_of(obj: Any, what: str) -> Any:
    snapshot = getattr(obj, "snapshot", None)
    if not callable(snapshot):
        raise PersistError(f"cannot save {obj!r}: not {what} (it has no snapshot())")
    return snapshot()


def save_collection(collection: _HasSnapshot | CollectionState, path: str | os.PathLike) -> Path:
    """Save a collection (what its ``snapshot()`` returns, or that state itself) to the directory ``path``,
    signed with this user's key. The previous save at ``path`` stays intact until the new one is complete."""
    state = collection if isinstance(collection, CollectionState) else _snapshot_of(collection, "a collection")
    return _commit(_as_path(path), "collection", (state,), {})


def save_engine(engine: _HasSnapshot | EngineState, path: str | os.PathLike) -> Path:
    """Save an engine (its ``snapshot()``: settings and every collection, or that state) to ``path``."""
    state = engine if isinstance(engine, EngineState) else _snapshot_of(engine, "an engine")
    if not isinstance(state, EngineState):
        raise PersistError(f"save_engine takes an engine or its snapshot(); got {type(state).__name__}")
    settings = {"build_threshold": int(state.build_threshold),
                "segment_rows": None if state.segment_rows is None else int(state.segment_rows)}
    return _commit(_as_path(path), "engine", tuple(state.collections), {"engine": settings})


# ------------------------------------------------------------------------------------------------------
# load: verify, parse, check the whole state, and only then (signed or trusted) read index files
# ------------------------------------------------------------------------------------------------------
def _bad(path: Path, what: str) -> PersistError:
    return PersistError(f"cannot load {path}: {what}; nothing was loaded")


def _read_manifest(path: Path) -> tuple[dict[str, Any], Any]:
    if not path.exists():
        raise _bad(path, "no such directory")
    if not path.is_dir():
        raise _bad(path, f"not a directory (a milvus_lab save is a directory with {MANIFEST})")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise _bad(path, f"{MANIFEST} is missing; this is not a milvus_lab save")
    if mpath.stat().st_size > MAX_MANIFEST_BYTES:
        raise _bad(path, f"{MANIFEST} is larger than {MAX_MANIFEST_BYTES} bytes; not a milvus_lab manifest")
    try:
        manifest = json.loads(mpath.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(path, f"{MANIFEST} is not valid JSON (truncated or edited?): {exc}") from None
    if not isinstance(manifest, dict):
        raise _bad(path, f"{MANIFEST} is not a JSON object")
    if manifest.get("format") != FORMAT_NAME:
        raise _bad(path, f"{MANIFEST} is not a milvus_lab manifest (format={manifest.get('format')!r})")
    version = manifest.get("format_version")
    if not is_int(version) or version not in READABLE_VERSIONS:
        newer = " (saved by a newer milvus_lab?)" if is_int(version) and version > FORMAT_VERSION else ""
        raise _bad(path, f"format_version {version!r} is not supported; this milvus_lab reads versions "
                         f"{', '.join(map(str, READABLE_VERSIONS))}{newer}")
    checksum = manifest.pop("checksum", None)
    signature = manifest.pop("signature", None)
    if not isinstance(checksum, dict) or not isinstance(checksum.get("sha256"), str):
        raise _bad(path, f"{MANIFEST} has no checksum")
    try:
        actual = hashlib.sha256(_canonical(manifest)).hexdigest()
    except (TypeError, ValueError) as exc:
        raise _bad(path, f"{MANIFEST} holds values JSON cannot represent: {exc}") from None
    if actual != checksum["sha256"]:
        raise _bad(path, f"{MANIFEST} checksum mismatch (the manifest was edited or damaged)")
    return manifest, signature


def _require(cond: bool, path: Path, what: str) -> None:
    if not cond:
        raise _bad(path, what)


def _verify_files(path: Path, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Check every listed file's name, size and sha256 before anything is parsed."""
    files = manifest.get("files")
    data_dir = manifest.get("data_dir")
    _require(isinstance(data_dir, str) and bool(_DATA_DIR.match(data_dir)), path,
             f"manifest data_dir {data_dir!r} is invalid")
    _require(isinstance(files, dict), path, "manifest has no file list")
    for rel, entry in files.items():
        parts = rel.split("/") if isinstance(rel, str) else []
        _require(len(parts) == 3 and parts[0] == data_dir and re.fullmatch(r"c\d+", parts[1]) is not None
                 and bool(_FILE_NAME.match(parts[2])) and parts[2] not in (".", ".."), path,
                 f"manifest names an invalid file path {rel!r}")
        _require(isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and is_int(entry.get("bytes")),
                 path, f"manifest entry for {rel} is invalid")
        fpath = path / rel
        if fpath.is_symlink() or (path / parts[0]).is_symlink() or (path / parts[0] / parts[1]).is_symlink():
            raise _bad(path, f"file {rel} is a symbolic link; a save holds only regular files")
        if not fpath.is_file():
            raise _bad(path, f"file {rel} is missing")
        size = fpath.stat().st_size
        if size != entry["bytes"]:
            raise _bad(path, f"file {rel} has {size} bytes, the manifest says {entry['bytes']} "
                             f"(truncated or modified)")
        digest, _ = sha256_file(fpath)
        if digest != entry["sha256"]:
            raise _bad(path, f"file {rel} fails its sha256 check (modified or damaged)")
    return files


class _Loader:
    """Parses one verified save into states (index files are read only when ``trusted``)."""

    def __init__(self, path: Path, manifest: dict[str, Any], files: dict[str, dict[str, Any]], trusted: bool):
        self.path = path
        self.files = files
        self.version = manifest["format_version"]
        #: False: index files are never handed to a library; restore rebuilds them from the saved vectors
        self.trusted = trusted
        self.not_read = 0
        self.used: set[str] = set()
        self.listings: dict[Path, list[str]] = {}

    def bad(self, what: str) -> PersistError:
        return _bad(self.path, what)

    def require(self, cond: bool, what: str) -> None:
        if not cond:
            raise self.bad(what)

    def file(self, rel: Any, what: str) -> Path:
        self.require(isinstance(rel, str) and rel in self.files, f"{what} names a file not in the manifest: "
                                                                 f"{rel!r}")
        self.require(rel not in self.used, f"{what} reuses file {rel}")
        self.used.add(rel)
        return self.path / rel

    def array(self, rel: Any, what: str, dtype: np.dtype, shape: tuple[int | None, ...]) -> np.ndarray:
        fpath = self.file(rel, what)
        raw = fpath.read_bytes()
        if hashlib.sha256(raw).hexdigest() != self.files[rel]["sha256"]:
            raise self.bad(f"file {rel} changed while loading")
        self.npy_header(raw, rel, what, dtype, shape)
        try:
            array = np.load(io.BytesIO(raw), allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
            raise self.bad(f"{what} ({rel}) is not a readable .npy array: {type(exc).__name__}: {exc}") from None
        self.require(isinstance(array, np.ndarray), f"{what} ({rel}) is not an array")
        problem = layout_problem(what, array.dtype, array.shape, dtype, shape)
        self.require(problem is None, str(problem))
        return np.ascontiguousarray(array)

    def npy_header(self, raw: bytes, rel: str, what: str, dtype: np.dtype, shape: tuple[int | None, ...]) -> None:
        """Check a .npy header (dtype, shape, and that the file holds exactly that many bytes) before NumPy
        allocates anything for it."""
        stream = io.BytesIO(raw)
        try:
            found_shape, found_dtype = npy_header(stream)
        except Exception as exc:  # noqa: BLE001 - any header failure is a bad file
            raise self.bad(f"{what} ({rel}) is not a readable .npy array: {type(exc).__name__}: {exc}") from None
        problem = layout_problem(what, found_dtype, found_shape, dtype, shape)
        self.require(problem is None, str(problem))  # an object dtype is never the layout wanted
        size = int(np.prod(found_shape, dtype=object)) * found_dtype.itemsize
        self.require(stream.tell() + size == len(raw), f"{what} ({rel}) holds {len(raw) - stream.tell()} data bytes, "
                                                       f"its header announces {size}")

    def collection(self, meta: Any) -> CollectionState:
        self.require(isinstance(meta, dict), "a collection entry is not an object")
        keys = {"name", "dimension", "index_file_size", "metric", "segment_rows", "index_type", "index_params",
                "index_params_given", "id_mode", "next_auto_id", "next_segment_id", "partitions",
                "background_errors", "pending_deletes", "segments"}
        self.require(set(meta) == keys, f"collection entry keys {sorted(meta)} differ from {sorted(keys)}")
        name = meta["name"]
        self.require(isinstance(name, str), f"collection name {name!r} is not a string")
        where = f"collection {name!r}"
        try:  # the row layout needs a valid schema first; check() repeats these with the rest
            metric = spec.normalize_metric(meta["metric"])
            dim = spec.validate_dimension(meta["dimension"], metric)
        except MilvusLabError as exc:
            raise self.bad(f"{where}: schema is invalid: {exc}") from None
        for key in ("index_file_size", "segment_rows", "next_auto_id", "next_segment_id"):
            self.require(is_int(meta[key]), f"{where}: {key} {meta[key]!r} is not an integer")
        self.require(isinstance(meta["index_type"], str), f"{where}: index_type is not a string")
        for key in ("index_params", "index_params_given"):
            self.require(isinstance(meta[key], dict), f"{where}: {key} is not an object")
        for key in ("partitions", "background_errors", "pending_deletes", "segments"):
            self.require(isinstance(meta[key], list), f"{where}: {key} is not a list")
        self.require(all(isinstance(t, str) for t in meta["partitions"]), f"{where}: a partition tag is not a string")
        pending = []
        for batch in meta["pending_deletes"]:
            self.require(isinstance(batch, dict) and set(batch) == {"ids", "extent"}
                         and isinstance(batch["extent"], dict), f"{where}: a pending delete entry is malformed")
            ids = self.array(batch["ids"], f"{where}: pending deletes", np.dtype(np.int64), (None,))
            extent = {}
            for key, value in batch["extent"].items():
                self.require(re.fullmatch(r"[0-9]{1,19}", key) is not None and is_int(value),
                             f"{where}: a pending delete extent is malformed")
                extent[int(key)] = value
            pending.append(PendingDelete(ids=ids, extent=extent))
        row_shape, dtype = row_layout(dim, metric)
        indexes: dict[int, dict[str, Any]] = {}
        segments = tuple(self.segment(entry, where, row_shape, dtype, indexes) for entry in meta["segments"])
        state = CollectionState(
            name=name, dimension=dim, metric=meta["metric"], index_file_size=meta["index_file_size"],
            segment_rows=meta["segment_rows"], index_type=meta["index_type"], index_params=meta["index_params"],
            index_params_given=meta["index_params_given"], id_mode=meta["id_mode"],
            next_auto_id=meta["next_auto_id"], next_segment_id=meta["next_segment_id"],
            partitions=tuple(meta["partitions"]), segments=segments, pending_deletes=tuple(pending),
            background_errors=tuple(meta["background_errors"]))
        self.check(state)  # the whole state is consistent before any index file is looked at
        if not indexes:
            return state
        if not self.trusted:
            self.not_read += len(indexes)  # restore rebuilds them: an unsigned file never reaches a library
            return state
        with_index = tuple(dataclasses.replace(seg, index=self.index(indexes[seg.segment_id], where, state))
                           if seg.segment_id in indexes else seg for seg in segments)
        state = dataclasses.replace(state, segments=with_index)
        self.check(state)  # the loaded indexes match their segments (rows, dimension, type)
        return state

    def check(self, state: CollectionState) -> None:
        try:
            state.check()
        except MilvusLabError as exc:
            raise self.bad(str(exc)) from None

    def segment(self, entry: Any, where: str, row_shape: tuple[int, ...], dtype: np.dtype,
                indexes: dict[int, dict[str, Any]]) -> SegmentState:
        reason_key = "build_error" if self.version == 1 else "raw_reason"
        keys = {"id", "partition", "capacity_rows", "count", "sealed", "n_deleted", reason_key, "vectors", "ids",
                "deleted", "index"}
        self.require(isinstance(entry, dict) and set(entry) == keys, f"{where}: a segment entry is malformed")
        sid = entry["id"]
        self.require(is_int(sid) and sid >= 1, f"{where}: segment id {sid!r} is invalid")
        where = f"{where}, segment {sid}"
        count = entry["count"]
        self.require(is_int(count) and count >= 0, f"{where}: count is invalid")
        self.require(is_int(entry["capacity_rows"]), f"{where}: capacity_rows is invalid")
        self.require(entry["index"] is None or isinstance(entry["index"], dict), f"{where}: index entry is malformed")
        vectors = self.array(entry["vectors"], f"{where}: vectors", dtype, (count, *row_shape))
        ids = self.array(entry["ids"], f"{where}: ids", np.dtype(np.int64), (count,))
        deleted = None
        if entry["deleted"] is not None:
            deleted = self.array(entry["deleted"], f"{where}: deleted mask", np.dtype(np.bool_), (count,))
        n_deleted = 0 if deleted is None else int(deleted.sum())
        self.require(entry["n_deleted"] == n_deleted, f"{where}: n_deleted {entry['n_deleted']!r} does not match "
                                                      f"the deleted mask ({n_deleted})")
        if entry["index"] is not None:
            self.require(sid not in indexes, f"{where}: segment id repeated")
            indexes[sid] = entry["index"]
        return SegmentState(segment_id=sid, partition=entry["partition"], vectors=vectors, ids=ids, deleted=deleted,
                            sealed=entry["sealed"], capacity_rows=entry["capacity_rows"],
                            raw_reason=entry[reason_key])

    def index(self, entry: dict[str, Any], where: str, state: CollectionState) -> Any:
        """Read one index file with its library (only for a signed or trusted save, after check())."""
        self.require(set(entry) == {"index_type", "params", "file", "extra_files"}
                     and isinstance(entry["extra_files"], list)
                     and all(isinstance(rel, str) for rel in entry["extra_files"]),
                     f"{where}: index entry is malformed")
        self.require(entry["index_type"] == state.index_type and entry["params"] == dict(state.index_params),
                     f"{where}: built index {entry['index_type']} {entry['params']} differs from the collection's "
                     f"index {state.index_type} {dict(state.index_params)}")
        fpath = self.file(entry["file"], f"{where}: index")
        extra = {self.file(rel, f"{where}: index companion").name for rel in entry["extra_files"]}
        for rel in entry["extra_files"]:
            self.require(Path(rel).name.startswith(fpath.name + "."), f"{where}: index companion {rel} "
                                                                        f"does not belong to {fpath.name}")
        if fpath.parent not in self.listings:
            self.listings[fpath.parent] = sorted(p.name for p in fpath.parent.iterdir())
        beside = {n for n in self.listings[fpath.parent] if n.startswith(fpath.name + ".")}
        self.require(beside == extra, f"{where}: unlisted files beside the index: {sorted(beside - extra)}")
        digest, _ = sha256_file(fpath)  # the file a library reads is the file the signature covers
        self.require(digest == self.files[entry["file"]]["sha256"], f"file {entry['file']} changed while loading")
        try:
            return backends.load(state.index_type, dict(state.index_params), state.metric, state.dimension, fpath)
        except (MilvusLabError, OSError) as exc:
            raise self.bad(f"{where}: the {state.index_type} index cannot be read: {exc}") from None


def _guarded(path: Path, step: Callable[[], Any]) -> Any:
    """Run a load step; anything but a PersistError means a save we did not foresee: a PersistError."""
    try:
        return step()
    except PersistError:
        raise
    except (Exception, MemoryError) as exc:  # a hostile save must never surface a foreign exception
        raise _bad(path, f"the save is invalid ({type(exc).__name__}: {exc})") from exc


def _manifest_identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = (path / MANIFEST).stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _load(path: Any, trust: Any, kind: str, parse: Callable[[dict[str, Any], _Loader], Any]) -> Any:
    if not isinstance(trust, bool):
        raise PersistError(f"trust={trust!r} is invalid; allowed: True (read index files of a save you trust) "
                           f"or False")
    path = _as_path(path)

    def run() -> tuple[Any, _Loader, str | None]:
        manifest, signature = _read_manifest(path)
        found = manifest.get("kind")
        _require(found in ("collection", "engine"), path, f"unknown kind {found!r}")
        if found != kind:
            raise _bad(path, "this is a whole-engine save; load it with Engine.load"
                       if found == "engine" else
                       "this is a single-collection save; load it with engine.load_collection")
        _require(isinstance(manifest.get("collections"), list), path, "manifest has no collection list")
        files = _verify_files(path, manifest)
        problem = None if trust else signature_problem(_canonical(manifest), signature)
        loader = _Loader(path, manifest, files, trusted=problem is None)
        return parse(manifest, loader), loader, problem

    for attempt in range(3):
        before = _manifest_identity(path)
        try:
            with folder_lock(path / LOCK_FILE, create=False):
                result, loader, problem = _guarded(path, run)
            break
        except PersistError:
            # another process committed a new save while we read (and removed the files we were reading):
            # read again; a save that is damaged for real fails the same way each time
            if attempt == 2 or before is None or _manifest_identity(path) == before:
                raise
    if loader.not_read:
        warnings.warn(
            f"{path} is not signed with this user's key ({problem}), so its {loader.not_read} index file(s) were "
            f"not read: the indexes are rebuilt from the saved vectors and parameters (approximate results may "
            f"differ slightly from the original's). If you trust where this save comes from, load it with "
            f"trust=True to read its index files as they are.", UnsignedSaveWarning, stacklevel=3)
    return result


def read_collection_state(path: str | os.PathLike, *, trust: bool = False) -> CollectionState:
    """The (checked) collection state saved by :func:`save_collection` at ``path``, for ``restore``.

    A save signed with this user's key has its index files read. Any other save (someone else's, or edited
    after it was signed) never hands its index files to faiss / hnswlib / annoy: its segments come back
    without an index, so restore rebuilds them from the saved vectors and parameters, with an
    :class:`UnsignedSaveWarning`, unless ``trust=True`` (only for saves whose origin you trust: a crafted
    index file can crash the process). A damaged or invalid save raises PersistError."""
    def parse(manifest: dict[str, Any], loader: _Loader) -> CollectionState:
        _require(len(manifest["collections"]) == 1, path, "a collection save must hold exactly one collection")
        return loader.collection(manifest["collections"][0])

    return _load(path, trust, "collection", parse)


def read_engine_state(path: str | os.PathLike, *, trust: bool = False) -> EngineState:
    """The (checked) engine state saved by :func:`save_engine` at ``path``, for ``Engine.restore``
    (``Engine.load``); index files are read only from a signed save or with ``trust=True`` (see
    :func:`read_collection_state`)."""
    def parse(manifest: dict[str, Any], loader: _Loader) -> EngineState:
        settings = manifest.get("engine")
        want = {"build_threshold"} if loader.version == 1 else {"build_threshold", "segment_rows"}
        _require(isinstance(settings, dict) and set(settings) == want, path, "engine settings are malformed")
        state = EngineState(build_threshold=settings["build_threshold"], segment_rows=settings.get("segment_rows"),
                            collections=tuple(loader.collection(meta) for meta in manifest["collections"]))
        try:
            state.check()
        except MilvusLabError as exc:
            raise _bad(path, str(exc)) from None
        return state

    return _load(path, trust, "engine", parse)


def load_collection(engine: _RestoresCollections, path: str | os.PathLike, name: str | None = None, *,
                    trust: bool = False) -> Any:
    """Add the collection saved at ``path`` to ``engine`` (as ``name`` if given) and return it.

    Index files are read only from a save signed with this user's key or with ``trust=True``; otherwise
    the indexes are rebuilt from the saved vectors (:class:`UnsignedSaveWarning`). PersistError for a
    damaged or invalid save, AlreadyExistsError for a taken name; the engine is unchanged on any error."""
    return engine.restore_collection(read_collection_state(path, trust=trust), name=name)
