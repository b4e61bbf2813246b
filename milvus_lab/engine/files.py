"""Durable-file plumbing for saves: a file's sha256, fsync of a file or a folder, a lock that makes the
savers and loaders of one folder take turns across threads and processes (:mod:`filelock`), and the header
of a .npy file read before anything is loaded."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
from filelock import FileLock

from ..units import MIB

__all__ = ["folder_lock", "fsync_dir", "fsync_file", "npy_header", "sha256_file"]

_CHUNK = MIB


def npy_header(stream: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) a .npy stream declares, in format 1.0 or 2.0 (what ``np.save`` writes for numeric
    arrays), leaving the stream at the first data byte. Nothing is allocated or unpickled; a stream that is
    not such a file raises (``ValueError`` or NumPy's own error, which varies by version)."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f"format version {version} is not one NumPy's np.save writes for numeric arrays")
    return shape, dtype


def sha256_file(path: Path) -> tuple[str, int]:
    """(hex sha256, size in bytes) of the file at ``path``, read in 1 MiB chunks."""
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


def fsync_file(path: Path) -> None:
    """Flush the file at ``path`` to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (new and renamed names) to the disk, where the platform can (not on Windows)."""
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


@contextmanager
def folder_lock(lock_file: Path, *, create: bool = True) -> Iterator[bool]:
    """Hold the exclusive lock on ``lock_file`` (``flock`` on POSIX, ``LockFileEx`` on Windows, through
    :class:`filelock.FileLock`; a fresh handle per call, so threads of one process exclude each other too),
    waiting as long as another holder keeps it. The file is created (mode 0644) and left in place.

    With ``create=False`` (a reader), a lock file that is absent or cannot be opened means nobody saves there
    through us: the block runs without the lock. Yields whether the lock is held."""
    if not create and not lock_file.is_file():
        yield False
        return
    lock = FileLock(lock_file, mode=0o644)
    try:
        lock.acquire()
    except OSError:  # filelock's Timeout is one too, but a negative timeout never times out
        if create:
            raise
        held = False
    else:
        held = True
    try:
        yield held
    finally:
        if held:
            lock.release()
