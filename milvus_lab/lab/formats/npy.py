"""NumPy ``.npy`` files, read memory-mapped, and the file behind a memory-mapped array of float32 rows.

A ``.npy`` file is mapped, not read: its rows stay in the page cache and cost this process no memory until
touched. The helpers here find the file behind such an array, read its rows without mapping them, map a
copy-on-write head of it, and drop its pages again.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

from ...engine.files import npy_header
from ...errors import IllegalRecordError
from .paths import existing_file, file_path


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype a .npy file declares, read without loading anything; refused when the file is
    not a .npy file or holds pickled objects (those are never loaded: unpickling runs code from the file)."""
    try:
        with open(path, "rb") as f:
            shape, dtype = npy_header(f)
    except OSError as exc:
        raise IllegalRecordError(f"cannot read {path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - numpy's reasons for a file that is not .npy vary by version
        size = path.stat().st_size
        reason = str(exc).split(";")[0].split(". ")[0][:120]
        raise IllegalRecordError(f"{path} is not a NumPy .npy file ({size:,} bytes; {reason}); write one with "
                                 f"numpy.save") from None
    if dtype.hasobject:
        raise IllegalRecordError(f"{path} holds Python objects (dtype {dtype}); pickled objects are never loaded, "
                                 f"since loading them can run code. Save the vectors as a numeric array "
                                 f"(numpy.save(path, array.astype('float32')))")
    return shape, dtype


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """The array of a .npy file, memory-mapped read-only (``np.load(mmap_mode="r")``).

    The header is checked first: a file that is not .npy, or holds pickled Python objects, is refused with
    IllegalRecordError before anything is loaded; so is a truncated or damaged file. A missing file or a
    folder raises :class:`~milvus_lab.lab.formats.paths.DataFileError`."""
    path = existing_file("path", file_path("path", path))
    _npy_header(path)
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise IllegalRecordError(f"cannot read {path} as a NumPy .npy array (truncated or damaged: "
                                 f"{str(exc).split(';')[0][:160]})") from None


# --------------------------------------------------------------------------------------------------
# The file behind a memory-mapped array
# --------------------------------------------------------------------------------------------------
def mapped_file(array: np.ndarray) -> tuple[str, int] | None:
    """(file name, byte offset of row 0) when ``array`` is exactly the float32 rows of a memory-mapped file
    (C-contiguous, the whole mapping from its first byte); None for any other array."""
    mapped = array
    while mapped is not None and not isinstance(mapped, np.memmap):
        mapped = getattr(mapped, "base", None)
    if mapped is None or getattr(mapped, "filename", None) is None or mapped.dtype != np.float32 or \
            mapped.shape != array.shape or not mapped.flags.c_contiguous or \
            mapped.__array_interface__["data"][0] != array.__array_interface__["data"][0]:
        return None
    return str(mapped.filename), int(mapped.offset)


def read_mapped_rows(source: tuple[str, int], ids: np.ndarray, dim: int) -> np.ndarray:
    """Rows ``ids`` (len(ids) x dim, float32) of the float32 rows that start at byte ``source[1]`` of file
    ``source[0]`` (as :func:`mapped_file` gives them), read with ``os.preadv``: no page of the file is mapped
    into this process, so reading does not undo :func:`release_mapped_pages`."""
    out = np.empty((len(ids), dim), dtype=np.float32)
    row_bytes = dim * 4
    with open(source[0], "rb") as f:
        fd = f.fileno()
        for j, i in enumerate(ids.tolist()):
            os.preadv(fd, [memoryview(out[j]).cast("B")], source[1] + i * row_bytes)
    return out


def copy_on_write_rows(source: tuple[str, int], rows: int, dim: int) -> np.memmap:
    """A copy-on-write mapping (``mode="c"``) of the first ``rows`` float32 rows of ``dim`` values at
    ``source`` (as :func:`mapped_file` gives it): writes to it stay in this process's memory (only their
    pages become private), the file is never changed."""
    return np.memmap(source[0], dtype=np.float32, mode="c", offset=source[1], shape=(rows, dim))


def _released_ranges(array: np.ndarray, mapped_bytes: int, private_rows: np.ndarray | None) -> list[tuple[int, int]]:
    """(start, length) ranges of a mapping of ``mapped_bytes`` holding ``array`` (at the end of its first
    allocation unit, as numpy maps it) that may be dropped: every page but those of ``private_rows``, whose
    copy-on-write contents exist nowhere else."""
    if private_rows is None or not len(private_rows):
        return [(0, mapped_bytes)]
    source = mapped_file(array)
    delta = 0 if source is None else source[1] % mmap.ALLOCATIONGRANULARITY
    row_bytes = array.shape[1] * array.itemsize
    rows = np.asarray(private_rows, dtype=np.int64)
    first = (delta + rows * row_bytes) // mmap.PAGESIZE
    last = (delta + (rows + 1) * row_bytes - 1) // mmap.PAGESIZE
    kept = np.unique(np.concatenate([np.arange(a, b + 1) for a, b in zip(first.tolist(), last.tolist())]))
    ranges, page = [], 0
    for keep in kept.tolist() + [-(-mapped_bytes // mmap.PAGESIZE)]:
        if keep > page:
            start = page * mmap.PAGESIZE
            ranges.append((start, min(keep * mmap.PAGESIZE, mapped_bytes) - start))
        page = keep + 1
    return ranges


def release_mapped_pages(array: Any, private_rows: np.ndarray | None = None) -> bool:
    """When ``array`` is memory-mapped from a file, drop its pages from this process's resident memory
    (``madvise(MADV_DONTNEED)``); the OS reads them again from the file when needed. The pages of
    ``private_rows`` (rows written into a copy-on-write mapping, whose contents exist nowhere else) are kept.
    Returns whether pages were dropped: False for an array that is not mapped, or where the platform cannot."""
    mapped = array
    while mapped is not None and not isinstance(mapped, mmap.mmap):
        mapped = getattr(mapped, "_mmap", None) or getattr(mapped, "base", None)
    if mapped is None or not hasattr(mapped, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return False
    try:
        for start, length in _released_ranges(array, len(mapped), private_rows):
            mapped.madvise(mmap.MADV_DONTNEED, start, length)
    except (OSError, ValueError):
        return False
    return True
