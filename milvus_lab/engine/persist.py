"""Save and load a collection or a whole engine: data, partitions, deleted ids and built indexes.

A save is a directory. ``manifest.json`` is the only file a load trusts first, and the commit point:
every data file (vectors, ids and deleted masks as ``.npy``, indexes in their library's own format) is
written into a fresh ``data-<hex>`` folder beside it, then a new manifest naming those files and their
sha256 is written to a temporary name and moved over the old one with ``os.replace``. A crash or an error
at any moment leaves the previous save loadable; stale data folders are removed after the commit.

Loading is all or nothing: the manifest's own checksum, its schema and every file's size and sha256 are
checked before any file is parsed or any library reader runs; arrays are read with
``np.load(allow_pickle=False)`` and checked (dtype, shape, ids, counts, dimension, metric, index
parameters through :func:`milvus_lab.spec.validate_build`); built indexes are loaded with the library's
reader, never rebuilt. Only when everything is valid is the collection added to the engine. Files are data,
never code: nothing is unpickled or executed.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import shutil
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import backends, spec
from ..errors import AlreadyExistsError, MilvusLabError, PersistError
from . import validation
from .collection import DEFAULT_PARTITION, Collection
from .segment import Segment

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["CONFIG_DIR_ENV", "FORMAT_NAME", "FORMAT_VERSION", "PersistError", "UnsignedSaveWarning", "config_dir",
           "load_collection", "load_engine", "save_collection", "save_engine", "signing_key_path"]

FORMAT_NAME = "milvus_lab"
FORMAT_VERSION = 2
#: versions this code reads; version 1 saves carry no signature (their indexes are rebuilt unless trusted)
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
#: a manifest larger than this is not one of ours (it lists files, it holds no data)
MAX_MANIFEST_BYTES = 64 * 2**20
_DATA_DIR = re.compile(r"data-[0-9a-f]{32}\Z")
_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")
_CHUNK = 1 << 20


# ------------------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------------------
_path_locks: dict[str, threading.Lock] = {}
_path_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    """One lock per save directory, so two saves to one path in this process do not interleave."""
    key = str(path.resolve())
    with _path_locks_guard:
        return _path_locks.setdefault(key, threading.Lock())


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
# signing: an HMAC-SHA256 of the manifest (which lists every file's sha256) with a per-user secret key
# ------------------------------------------------------------------------------------------------------
#: environment variable naming the folder that holds the signing key (default: the platform's config folder)
CONFIG_DIR_ENV = "MILVUS_LAB_CONFIG_DIR"
KEY_FILE = "signing_key"
SIGNATURE_ALGORITHM = "hmac-sha256"
_KEY_BYTES = 32
_KEY_TEXT = re.compile(r"[0-9a-f]{64}\n?\Z")


class UnsignedSaveWarning(UserWarning):
    """A save not signed with this user's key was loaded: its indexes were rebuilt from the saved vectors."""


def config_dir() -> Path:
    """The folder holding milvus_lab's per-user settings: ``$MILVUS_LAB_CONFIG_DIR`` if set, else the
    platform's config folder (``$XDG_CONFIG_HOME`` or ``~/.config`` on Linux, ``~/Library/Application
    Support`` on macOS, ``%APPDATA%`` on Windows) + ``milvus_lab``."""
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "milvus_lab"


def signing_key_path() -> Path:
    """Where this user's signing key lives (created, mode 0600, by the first save)."""
    return config_dir() / KEY_FILE


def _read_key_file(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise PersistError(f"the signing key {path} cannot be read ({exc}); fix or delete it (saves signed with "
                           f"it will then load with their indexes rebuilt), or point {CONFIG_DIR_ENV} "
                           f"at another folder") from None
    if not _KEY_TEXT.match(text):
        raise PersistError(f"the signing key {path} is not 64 hex digits; fix or delete it, or point "
                           f"{CONFIG_DIR_ENV} at another folder")
    return bytes.fromhex(text.strip())


def _signing_key(create: bool) -> bytes | None:
    """This user's key; created once with :mod:`secrets` when ``create`` (saving), else None when absent."""
    path = signing_key_path()
    if path.is_file():
        return _read_key_file(path)
    if not create:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it meanwhile
        return _read_key_file(path)
    except OSError as exc:
        raise PersistError(f"cannot create the signing key in {path.parent} ({exc}); set {CONFIG_DIR_ENV} to "
                           f"a writable folder") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(_KEY_BYTES) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise PersistError(f"cannot write the signing key {path} ({exc}); set {CONFIG_DIR_ENV} to a writable "
                           f"folder") from None
    _fsync_dir(path.parent)
    return _read_key_file(path)


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"milvus_lab signing key id\0" + key).hexdigest()[:16]


def _signature(key: bytes, body: Mapping[str, Any]) -> dict[str, str]:
    return {"algorithm": SIGNATURE_ALGORITHM, "key_id": _key_id(key),
            "hmac": hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()}


def _signature_problem(body: Mapping[str, Any], signature: Any) -> str | None:
    """None when ``signature`` is valid for this user's key, else why not (for the warning)."""
    if signature is None:
        return "it carries no signature"
    if not (isinstance(signature, dict) and signature.get("algorithm") == SIGNATURE_ALGORITHM
            and isinstance(signature.get("hmac"), str) and isinstance(signature.get("key_id"), str)):
        return "its signature is malformed"
    key = _signing_key(create=False)
    if key is None:
        return f"this user has no signing key yet at {signing_key_path()}"
    if not hmac.compare_digest(_signature(key, body)["hmac"], signature["hmac"]):
        if signature["key_id"] != _key_id(key):
            return "it was signed with another key (another user or machine)"
        return "its signature does not match its content (edited after it was signed)"
    return None


# ------------------------------------------------------------------------------------------------------
# save
# ------------------------------------------------------------------------------------------------------
class _Snapshot:
    """A consistent copy of a collection's metadata and references to its immutable arrays and indexes."""

    def __init__(self, collection: Collection):
        c = collection
        with c._write:
            c._check_alive()
            # background builds take only _state, so waiting here cannot deadlock; holding _write means
            # no insert can seal (and schedule) another segment meanwhile
            c._engine._indexer.wait(c)
            with c._state:
                self.meta: dict[str, Any] = {
                    "name": c.name, "dimension": c.dimension, "index_file_size": c.index_file_size,
                    "metric": c.metric, "segment_rows": c.segment_rows, "index_type": c._index_type,
                    "index_params": dict(c._index_params),
                    "index_params_given": _jsonable(dict(c._index_params_given)),
                    "id_mode": c._id_mode, "next_auto_id": int(c._next_auto_id),
                    "next_segment_id": int(c._next_segment_id), "partitions": list(c._partitions),
                    "background_errors": [str(e) for e in c._background_errors],
                }
                # each pending delete reaches only the rows that existed when it was called (its extent)
                self.pending = [(np.asarray(ids, np.int64), {int(k): int(v) for k, v in extent.items()})
                                for ids, extent in c._pending_deletes]
                self.segments = [(seg.view(), seg.capacity_rows, seg.build_error)
                                 for seg in c._all_segments()]


def _write_npy(folder: Path, name: str, array: np.ndarray, files: dict[str, Any], root: Path) -> str:
    path = folder / name
    with open(path, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    return _record(path, files, root)


def _record(path: Path, files: dict[str, Any], root: Path) -> str:
    rel = path.relative_to(root).as_posix()
    digest, size = _sha256_file(path)
    files[rel] = {"sha256": digest, "bytes": size}
    return rel


def _write_collection(snap: _Snapshot, folder: Path, root: Path, files: dict[str, Any]) -> dict[str, Any]:
    folder.mkdir()
    meta = dict(snap.meta)
    meta["pending_deletes"] = [
        {"ids": _write_npy(folder, f"pending_deletes_{i}.npy", ids, files, root),
         "extent": {str(k): v for k, v in sorted(extent.items())}}
        for i, (ids, extent) in enumerate(snap.pending)]
    segments = []
    for view, capacity, build_error in snap.segments:
        seg: dict[str, Any] = {
            "id": view.segment_id, "partition": view.partition, "capacity_rows": int(capacity),
            "count": len(view.ids), "sealed": bool(view.sealed), "n_deleted": int(view.n_deleted),
            "build_error": build_error,
            "vectors": _write_npy(folder, f"{view.segment_id}.vectors.npy", view.vectors, files, root),
            "ids": _write_npy(folder, f"{view.segment_id}.ids.npy", view.ids, files, root),
            "deleted": (None if view.deleted is None else
                        _write_npy(folder, f"{view.segment_id}.deleted.npy", view.deleted, files, root)),
            "index": None,
        }
        if view.index is not None:
            index_path = folder / f"{view.segment_id}.index"
            view.index.save(index_path)
            # an adapter may write companion files beside the index (faiss NSG: <path>.groups.npy)
            extra = sorted(p for p in folder.iterdir() if p.name.startswith(index_path.name + "."))
            for p in [index_path, *extra]:
                _fsync_file(p)
            seg["index"] = {"index_type": view.index.index_type, "params": dict(view.index.params),
                            "file": _record(index_path, files, root),
                            "extra_files": [_record(p, files, root) for p in extra]}
        segments.append(seg)
    meta["segments"] = segments
    return meta


def _leftover(entry: Path) -> bool:
    """A file or folder an interrupted save of ours leaves behind (nothing a manifest names yet)."""
    return ((_DATA_DIR.match(entry.name) is not None and entry.is_dir() and not entry.is_symlink())
            or (entry.name.startswith(f".{MANIFEST}.") and entry.name.endswith(".tmp")))


def _prepare_target(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise PersistError(f"cannot save to {path}: it is a file; give a directory path")
    if path.is_dir() and not (path / MANIFEST).is_file() and any(not _leftover(e) for e in path.iterdir()):
        raise PersistError(f"cannot save to {path}: the directory is not empty and is not a milvus_lab save "
                           f"(no {MANIFEST}); refusing to overwrite it")
    path.mkdir(parents=True, exist_ok=True)


def _commit(path: Path, kind: str, snapshots: list[_Snapshot], extra: Mapping[str, Any]) -> Path:
    """Write the data files into a fresh folder, then atomically replace the manifest."""
    from .. import __version__

    path = Path(path)
    key = _signing_key(create=True)
    with _lock_for(path):
        _prepare_target(path)
        data_name = f"data-{uuid.uuid4().hex}"
        data_dir = path / data_name
        tmp_manifest = path / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
        try:
            data_dir.mkdir()
            files: dict[str, Any] = {}
            collections = [_write_collection(snap, data_dir / f"c{i}", path, files)
                           for i, snap in enumerate(snapshots)]
            _fsync_dir(data_dir)
            body = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "kind": kind,
                    "milvus_lab_version": __version__,
                    "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "data_dir": data_name,
                    **extra, "collections": collections, "files": files}
            manifest = dict(body, checksum={"sha256": hashlib.sha256(_canonical(body)).hexdigest()},
                            signature=_signature(key, body))
            with open(tmp_manifest, "w", encoding="utf-8") as fh:
                json.dump(manifest, fh, indent=1, allow_nan=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_manifest, path / MANIFEST)
            _fsync_dir(path)
        except BaseException as exc:
            shutil.rmtree(data_dir, ignore_errors=True)
            tmp_manifest.unlink(missing_ok=True)
            if isinstance(exc, MilvusLabError) or not isinstance(exc, Exception):
                raise
            full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
            raise PersistError(f"saving to {path} failed ({'the disk is full: ' if full else ''}"
                               f"{type(exc).__name__}: {exc}); nothing was written over the previous save: "
                               f"it is intact and still loads") from exc
        for entry in path.iterdir():  # the committed manifest no longer names these
            if entry.name != data_name and _DATA_DIR.match(entry.name) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.name.startswith(f".{MANIFEST}.") and entry.name.endswith(".tmp"):
                entry.unlink(missing_ok=True)
    return path


def save_collection(collection: Collection, path: str | os.PathLike) -> Path:
    """Save one collection (data, partitions, deletes, built indexes) to the directory ``path``.

    Waits for the collection's background builds first. The previous save at ``path`` stays intact until
    the new one is complete."""
    return _commit(Path(path), "collection", [_Snapshot(collection)], {})


def save_engine(engine: Engine, path: str | os.PathLike) -> Path:
    """Save every collection of ``engine`` and its settings to the directory ``path``."""
    with engine._lock:
        collections = list(engine._collections.values())
    snapshots = []
    for c in collections:
        try:
            snapshots.append(_Snapshot(c))
        except MilvusLabError:
            if not c._dropped:
                raise  # dropped while we were saving: not part of the engine any more
    return _commit(Path(path), "engine", snapshots, {"engine": {"build_threshold": engine.build_threshold}})


# ------------------------------------------------------------------------------------------------------
# load: verify, parse, validate, then build new objects; nothing is registered until all is valid
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
    if not _is_int(version) or version not in READABLE_VERSIONS:
        newer = " (saved by a newer milvus_lab?)" if _is_int(version) and version > FORMAT_VERSION else ""
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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
        _require(isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and _is_int(entry.get("bytes")),
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
        digest, _ = _sha256_file(fpath)
        if digest != entry["sha256"]:
            raise _bad(path, f"file {rel} fails its sha256 check (modified or damaged)")
    return files


class _Loader:
    """Parses one verified save into new Collection objects (not yet registered anywhere)."""

    def __init__(self, path: Path, manifest: dict[str, Any], files: dict[str, dict[str, Any]], trusted: bool):
        self.path = path
        self.manifest = manifest
        self.files = files
        #: False: index files are never handed to a library; indexes are rebuilt from the saved vectors
        self.trusted = trusted
        self.rebuilt = 0
        self.rebuild_failed: list[str] = []
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
        try:
            array = np.load(io.BytesIO(raw), allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
            raise self.bad(f"{what} ({rel}) is not a readable .npy array: {type(exc).__name__}: {exc}") from None
        self.require(isinstance(array, np.ndarray), f"{what} ({rel}) is not an array")
        self.require(array.dtype == dtype, f"{what} has dtype {array.dtype}, expected {np.dtype(dtype)}")
        self.require(array.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, array.shape)),
                     f"{what} has shape {array.shape}, expected {tuple('n' if s is None else s for s in shape)}")
        return np.ascontiguousarray(array)

    def collection(self, engine: Engine, meta: Any, name: str | None) -> tuple[Collection, list[Segment]]:
        self.require(isinstance(meta, dict), "a collection entry is not an object")
        keys = {"name", "dimension", "index_file_size", "metric", "segment_rows", "index_type", "index_params",
                "index_params_given", "id_mode", "next_auto_id", "next_segment_id", "partitions",
                "background_errors", "pending_deletes", "segments"}
        self.require(set(meta) == keys, f"collection entry keys {sorted(meta)} differ from {sorted(keys)}")
        try:
            saved_name = validation.collection_name(meta["name"])
            metric = spec.normalize_metric(meta["metric"])
            dim = spec.validate_dimension(meta["dimension"], metric)
            size = spec.validate_index_file_size(meta["index_file_size"])
        except MilvusLabError as exc:
            raise self.bad(f"collection schema is invalid: {exc}") from None
        where = f"collection {saved_name!r}"
        self.require(_is_int(meta["segment_rows"]) and meta["segment_rows"] >= 1,
                     f"{where}: segment_rows {meta['segment_rows']!r} is invalid")
        index_type, index_params = meta["index_type"], meta["index_params"]
        self.require(isinstance(index_type, str) and index_type in spec.INDEXES and isinstance(index_params, dict),
                     f"{where}: index_type {index_type!r} is unknown")
        try:
            _, clean = spec.validate_build(index_type, index_params, dim=dim, metric=metric, warn=False)
        except MilvusLabError as exc:
            raise self.bad(f"{where}: index parameters are invalid: {exc}") from None
        self.require(clean == index_params, f"{where}: index parameters {index_params!r} are not in canonical form")
        self.require(isinstance(meta["index_params_given"], dict), f"{where}: index_params_given is not an object")
        id_mode = meta["id_mode"]
        self.require(id_mode in (None, "auto", "user"), f"{where}: id_mode {id_mode!r} is invalid")
        self.require(_is_int(meta["next_auto_id"]) and 0 <= meta["next_auto_id"] <= spec.ID_RANGE[1] + 1,
                     f"{where}: next_auto_id is invalid")
        self.require(_is_int(meta["next_segment_id"]) and meta["next_segment_id"] >= 1,
                     f"{where}: next_segment_id is invalid")
        partitions = meta["partitions"]
        self.require(isinstance(partitions, list) and DEFAULT_PARTITION in partitions
                     and len(set(map(str, partitions))) == len(partitions),
                     f"{where}: partition list {partitions!r} is invalid")
        for tag in partitions:
            try:
                validation.partition_tag(tag)
            except MilvusLabError as exc:
                raise self.bad(f"{where}: {exc}") from None
        errors = meta["background_errors"]
        self.require(isinstance(errors, list) and all(isinstance(e, str) for e in errors),
                     f"{where}: background_errors is invalid")
        self.require(isinstance(meta["segments"], list), f"{where}: segments is not a list")

        final_name = saved_name if name is None else validation.collection_name(name)
        collection = Collection(engine, final_name, dim, size, metric)
        collection.segment_rows = meta["segment_rows"]
        self.require(isinstance(meta["pending_deletes"], list), f"{where}: pending_deletes is not a list")
        pending_batches = []
        for batch in meta["pending_deletes"]:
            self.require(isinstance(batch, dict) and set(batch) == {"ids", "extent"}
                         and isinstance(batch["extent"], dict), f"{where}: a pending delete entry is malformed")
            ids = self.array(batch["ids"], f"{where}: pending deletes", np.dtype(np.int64), (None,))
            self.require(not ids.size or ids.min() >= 0, f"{where}: pending deletes hold negative ids")
            extent = {}
            for key, value in batch["extent"].items():
                self.require(isinstance(key, str) and key.isdigit() and _is_int(value) and value >= 0,
                             f"{where}: a pending delete extent is malformed")
                extent[int(key)] = value
            pending_batches.append((ids, extent))

        row_shape = (dim // 8,) if spec.is_binary_metric(metric) else (dim,)
        dtype = np.dtype(np.uint8) if spec.is_binary_metric(metric) else np.dtype(np.float32)
        by_partition: dict[str, list[Segment]] = {tag: [] for tag in partitions}
        seen_ids: set[int] = set()
        segments: list[Segment] = []
        rebuilds: list[Segment] = []
        live_parts: list[np.ndarray] = []
        all_ids_max = -1
        for entry in meta["segments"]:
            seg = self.segment(entry, where, row_shape, dtype, by_partition, seen_ids, index_type, clean,
                               metric, dim, rebuilds)
            by_partition[seg.partition].append(seg)
            segments.append(seg)
            live_parts.append(seg.ids[seg.live_mask()])
            if seg.count:
                all_ids_max = max(all_ids_max, int(seg.ids.max()))
        self.require(meta["next_segment_id"] > max(seen_ids, default=0),
                     f"{where}: next_segment_id {meta['next_segment_id']} is not above the segment ids")
        live = np.concatenate(live_parts) if live_parts else np.empty(0, np.int64)
        self.require(len(np.unique(live)) == len(live), f"{where}: a live id appears twice")
        self.require(id_mode is not None or not any(s.count for s in segments),
                     f"{where}: rows are stored but id_mode is unset")
        if id_mode == "auto":
            self.require(all_ids_max < meta["next_auto_id"],
                         f"{where}: stored ids reach {all_ids_max} but next_auto_id is {meta['next_auto_id']}")
        collection._partitions = by_partition
        collection._index_type = index_type
        collection._index_params = clean
        collection._index_params_given = dict(meta["index_params_given"])
        collection._id_mode = id_mode
        collection._next_auto_id = meta["next_auto_id"]
        collection._live_user_ids = set(live.tolist()) if id_mode == "user" else set()
        # each pending delete keeps its extent: it never reaches rows inserted after it was called
        counts = {seg.segment_id: seg.count for seg in segments}
        for _, extent in pending_batches:
            for sid, rows in extent.items():
                self.require(sid not in counts or rows <= counts[sid],
                             f"{where}: a pending delete reaches beyond segment {sid}'s rows")
        collection._pending_deletes = [(ids, {sid: rows for sid, rows in extent.items() if sid in counts})
                                       for ids, extent in pending_batches]
        collection._next_segment_id = meta["next_segment_id"]
        collection._background_errors = list(errors)
        self.rebuild(rebuilds, index_type, clean, metric, where)  # last: only once everything is valid
        return collection, segments

    def segment(self, entry: Any, where: str, row_shape: tuple[int, ...], dtype: np.dtype,
                by_partition: Mapping[str, list[Segment]], seen_ids: set[int], index_type: str,
                params: Mapping[str, int], metric: str, dim: int, rebuilds: list[Segment]) -> Segment:
        keys = {"id", "partition", "capacity_rows", "count", "sealed", "n_deleted", "build_error", "vectors",
                "ids", "deleted", "index"}
        self.require(isinstance(entry, dict) and set(entry) == keys, f"{where}: a segment entry is malformed")
        sid = entry["id"]
        self.require(_is_int(sid) and sid >= 1 and sid not in seen_ids, f"{where}: segment id {sid!r} is invalid")
        seen_ids.add(sid)
        where = f"{where}, segment {sid}"
        self.require(isinstance(entry["partition"], str) and entry["partition"] in by_partition,
                     f"{where}: unknown partition {entry['partition']!r}")
        count = entry["count"]
        self.require(_is_int(count) and count >= 0, f"{where}: count is invalid")
        self.require(_is_int(entry["capacity_rows"]) and entry["capacity_rows"] >= max(count, 1),
                     f"{where}: capacity_rows is invalid")
        self.require(isinstance(entry["sealed"], bool), f"{where}: sealed is not a bool")
        self.require(entry["build_error"] is None or isinstance(entry["build_error"], str),
                     f"{where}: build_error is invalid")
        vectors = self.array(entry["vectors"], f"{where}: vectors", dtype, (count, *row_shape))
        ids = self.array(entry["ids"], f"{where}: ids", np.dtype(np.int64), (count,))
        self.require(not ids.size or ids.min() >= 0, f"{where}: ids must be >= 0")
        if not np.issubdtype(dtype, np.integer):
            self.require(bool(np.isfinite(vectors).all()), f"{where}: vectors hold NaN or infinite values")
        deleted = None
        if entry["deleted"] is not None:
            deleted = self.array(entry["deleted"], f"{where}: deleted mask", np.dtype(np.bool_), (count,))
        n_deleted = 0 if deleted is None else int(deleted.sum())
        self.require(entry["n_deleted"] == n_deleted, f"{where}: n_deleted {entry['n_deleted']!r} does not match "
                                                      f"the deleted mask ({n_deleted})")
        seg = Segment(sid, entry["partition"], row_shape, dtype, entry["capacity_rows"])
        seg._vectors, seg._ids, seg.count = vectors, ids, count
        seg.sealed = entry["sealed"]
        seg.deleted, seg.n_deleted = deleted, n_deleted
        seg.build_error = entry["build_error"]
        if entry["index"] is not None:
            self.require(seg.sealed, f"{where}: an open segment cannot hold a built index")
            seg.index = self.index(entry["index"], where, index_type, params, metric, dim, count)
            if seg.index is None:
                rebuilds.append(seg)
        return seg

    def rebuild(self, segments: list[Segment], index_type: str, params: Mapping[str, int], metric: str,
                where: str) -> None:
        """Build the indexes of an unsigned save from its (validated) vectors and parameters."""
        for seg in segments:
            try:
                seg.index = backends.build(index_type, dict(params), seg.vectors, metric)
                self.rebuilt += 1
            except MilvusLabError as exc:  # e.g. too few distinct rows: the segment stays raw, with the reason
                seg.build_error = str(exc)
                self.rebuild_failed.append(f"{where}, segment {seg.segment_id}: {exc}")

    def index(self, entry: Any, where: str, index_type: str, params: Mapping[str, int], metric: str, dim: int,
              count: int) -> Any:
        self.require(isinstance(entry, dict) and set(entry) == {"index_type", "params", "file", "extra_files"}
                     and isinstance(entry["extra_files"], list), f"{where}: index entry is malformed")
        self.require(entry["index_type"] == index_type and entry["params"] == dict(params),
                     f"{where}: built index {entry['index_type']} {entry['params']} differs from the collection's "
                     f"index {index_type} {dict(params)}")
        fpath = self.file(entry["file"], f"{where}: index")
        self.require(all(isinstance(rel, str) for rel in entry["extra_files"]),
                     f"{where}: index companion list is malformed")
        extra = {self.file(rel, f"{where}: index companion").name for rel in entry["extra_files"]}
        for rel in entry["extra_files"]:
            self.require(Path(rel).name.startswith(fpath.name + "."), f"{where}: index companion {rel} "
                                                                        f"does not belong to {fpath.name}")
        if fpath.parent not in self.listings:
            self.listings[fpath.parent] = sorted(p.name for p in fpath.parent.iterdir())
        beside = {n for n in self.listings[fpath.parent] if n.startswith(fpath.name + ".")}
        self.require(beside == extra, f"{where}: unlisted files beside the index: {sorted(beside - extra)}")
        if not self.trusted:
            return None  # the caller rebuilds it: an unsigned file never reaches faiss / hnswlib / annoy
        try:
            built = backends.load(index_type, dict(params), metric, dim, fpath)
        except (MilvusLabError, OSError) as exc:
            raise self.bad(f"{where}: the {index_type} index cannot be read: {exc}") from None
        self.require(getattr(built, "ntotal", count) == count,
                     f"{where}: the {index_type} index holds {getattr(built, 'ntotal', '?')} rows, the segment {count}")
        self.require(getattr(built, "dim", dim) == dim,
                     f"{where}: the {index_type} index has dimension {getattr(built, 'dim', '?')}, expected {dim}")
        return built


def _open(path: str | os.PathLike, trust: bool) -> tuple[Path, dict[str, Any], _Loader, str | None]:
    """Read and verify the manifest and every file; decide whether index files may be parsed.

    Returns the loader and, when the index files will be rebuilt instead of read, why (for the warning)."""
    if not isinstance(trust, bool):
        raise PersistError(f"trust={trust!r} is invalid; allowed: True or False")
    try:
        path = Path(path)
    except TypeError:
        raise PersistError(f"cannot load {path!r}: not a path") from None

    def verify() -> tuple[dict[str, Any], dict[str, Any], str | None]:
        manifest, signature = _read_manifest(path)
        _require(manifest.get("kind") in ("collection", "engine"), path, f"unknown kind {manifest.get('kind')!r}")
        _require(isinstance(manifest.get("collections"), list), path, "manifest has no collection list")
        files = _verify_files(path, manifest)
        return manifest, files, None if trust else _signature_problem(manifest, signature)

    manifest, files, problem = _guarded(path, verify)
    return path, manifest, _Loader(path, manifest, files, trusted=problem is None), problem


def _guarded(path: Path, step: Callable[[], Any]) -> Any:
    """Run a load step; anything but our own exceptions means a save we did not foresee: a PersistError."""
    try:
        return step()
    except PersistError:
        raise
    except (Exception, MemoryError) as exc:  # a hostile save must never surface a foreign exception
        raise _bad(path, f"the save is invalid ({type(exc).__name__}: {exc})") from exc


def _warn_rebuilt(path: Path, loader: _Loader, problem: str | None) -> None:
    if problem is None or not (loader.rebuilt or loader.rebuild_failed):
        return
    failed = ""
    if loader.rebuild_failed:
        failed = (f"; {len(loader.rebuild_failed)} segment(s) could not be rebuilt and stay raw (searched "
                  f"exactly): " + "; ".join(loader.rebuild_failed))
    warnings.warn(
        f"{path} is not signed with this user's key ({problem}), so its index files were not read: "
        f"{loader.rebuilt} index(es) were rebuilt from the saved vectors and parameters{failed}. "
        f"Approximate results may differ slightly from the original. If you trust where this save comes from, "
        f"load it with trust=True to read its index files as they are.", UnsignedSaveWarning, stacklevel=3)


def _schedule_pending_builds(collection: Collection, segments: list[Segment]) -> None:
    """Sealed segments that were waiting for a background build when saved get it now."""
    waiting = [s for s in segments if s.sealed and s.index is None and s.build_error is None and s.count]
    collection._schedule(waiting)


def load_collection(engine: Engine, path: str | os.PathLike, name: str | None = None, *,
                    trust: bool = False) -> Collection:
    """Load a collection saved by :func:`save_collection` into ``engine`` (as ``name`` if given).

    A save signed with this user's key has its index files read as they are. Any other save (someone
    else's, or edited after signing) never hands its index files to faiss / hnswlib / annoy: its indexes
    are rebuilt from the saved vectors and parameters, with an :class:`UnsignedSaveWarning`, unless
    ``trust=True`` (only for saves whose origin you trust: a crafted index file can crash the process).
    Raises PersistError for a damaged or invalid save and AlreadyExistsError when the name is taken;
    in both cases the engine is unchanged."""
    if name is not None:
        name = validation.collection_name(name)
    path, manifest, loader, problem = _open(path, trust)
    if manifest["kind"] != "collection":
        raise _bad(path, "this is a whole-engine save; load it with load_engine (or Engine.load)")
    _require(len(manifest["collections"]) == 1, path, "a collection save must hold exactly one collection")
    collection, segments = _guarded(path, lambda: loader.collection(engine, manifest["collections"][0], name))
    with engine._lock:
        if collection.name in engine._collections:
            raise AlreadyExistsError(f"collection {collection.name!r} already exists; drop it first or load "
                                     f"with another name (name=...)")
        engine._collections[collection.name] = collection
    _schedule_pending_builds(collection, segments)
    _warn_rebuilt(path, loader, problem)
    return collection


def load_engine(path: str | os.PathLike, *, trust: bool = False) -> Engine:
    """Load an engine saved by :func:`save_engine`: a new Engine with every collection, indexes included.

    Index files are read only from a save signed with this user's key, or with ``trust=True``; otherwise
    the indexes are rebuilt from the saved vectors (see :func:`load_collection`)."""
    from .engine import Engine

    path, manifest, loader, problem = _open(path, trust)
    if manifest["kind"] != "engine":
        raise _bad(path, "this is a single-collection save; load it with load_collection(engine, path)")
    settings = manifest.get("engine")
    _require(isinstance(settings, dict) and _is_int(settings.get("build_threshold"))
             and settings["build_threshold"] >= 1, path, "engine settings are invalid")
    engine = Engine(build_threshold=settings["build_threshold"])
    loaded = []
    try:
        for meta in manifest["collections"]:
            collection, segments = _guarded(path, lambda meta=meta: loader.collection(engine, meta, None))
            _require(collection.name not in engine._collections, path,
                     f"collection {collection.name!r} appears twice")
            engine._collections[collection.name] = collection
            loaded.append((collection, segments))
    except BaseException:
        engine.close()
        raise
    for collection, segments in loaded:
        _schedule_pending_builds(collection, segments)
    _warn_rebuilt(path, loader, problem)
    return engine
