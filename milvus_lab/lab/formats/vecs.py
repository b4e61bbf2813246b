"""``.fvecs`` / ``.ivecs`` / ``.bvecs``, the TEXMEX corpus format (SIFT, GIST): per row a little-endian int32
dimension, then the row's values (float32, int32 or uint8)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ... import spec
from ...errors import IllegalRecordError, ParamError
from .paths import existing_file, file_path

#: suffix -> the dtype of the values its rows hold
VECS_DTYPES = {".fvecs": np.dtype("<f4"), ".ivecs": np.dtype("<i4"), ".bvecs": np.dtype("u1")}


def _vecs_dtype(path: Path, kind: str | None) -> np.dtype:
    key = f".{kind}" if kind else path.suffix.lower()
    if key not in VECS_DTYPES:
        raise ParamError(f"{path}: unknown vecs format {key!r}; use .fvecs (float32), .ivecs (int32) or .bvecs "
                         f"(uint8)")
    return VECS_DTYPES[key]


def read_vecs(path: str | os.PathLike, kind: str | None = None) -> np.ndarray:
    """Read an .fvecs / .ivecs / .bvecs file (kind from the suffix unless given) as a 2-D array.

    Every row must declare the same dimension, within the spec's range, and the file must hold whole rows;
    otherwise IllegalRecordError says which row or how many bytes are wrong."""
    path = file_path("path", path)
    if kind is not None and kind not in ("fvecs", "ivecs", "bvecs"):
        raise ParamError(f"kind must be 'fvecs', 'ivecs', 'bvecs' or None; got {spec.show_value(kind)}")
    dtype = _vecs_dtype(path, kind)
    existing_file("path", path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise IllegalRecordError(f"cannot read {path}: {exc}") from None
    if raw.size < 4:
        raise IllegalRecordError(f"cannot read {path}: {raw.size} bytes is too short for a vecs file (each "
                                 f"row starts with a 4-byte dimension)")
    dim = int(raw[:4].view("<i4")[0])
    if not 1 <= dim <= spec.DIMENSION[1]:
        raise IllegalRecordError(f"cannot read {path}: the first row declares dimension {dim}; not a "
                                 f"{path.suffix or kind} file, or a corrupt one")
    row_bytes = 4 + dim * dtype.itemsize
    if raw.size % row_bytes:
        raise IllegalRecordError(
            f"cannot read {path}: {raw.size:,} bytes is not a whole number of rows of {row_bytes} bytes "
            f"(dimension {dim}); the file is truncated or rows have different dimensions")
    rows = raw.reshape(-1, row_bytes)
    dims = rows[:, :4].copy().view("<i4").ravel()
    if (dims != dim).any():
        first = int(np.flatnonzero(dims != dim)[0])
        raise IllegalRecordError(f"cannot read {path}: row {first} declares dimension {dims[first]}, row 0 "
                                 f"declares {dim}; all rows must have the same dimension")
    return np.ascontiguousarray(rows[:, 4:]).view(dtype).reshape(len(rows), dim)


def write_vecs(path: str | os.PathLike, array: Any, kind: str | None = None) -> Path:
    """Write a 2-D array as .fvecs / .ivecs / .bvecs (kind from the suffix unless given); returns the path.

    Integer formats take only integer arrays whose values fit their dtype; folders are created."""
    path = Path(path)
    dtype = _vecs_dtype(path, kind)
    data = np.asarray(array)
    if data.ndim != 2 or data.shape[1] == 0:
        raise IllegalRecordError(f"write_vecs needs a 2-D array with at least one column; got shape {data.shape}")
    if dtype.kind in "iu" and not np.issubdtype(data.dtype, np.integer):
        raise IllegalRecordError(f"{path.suffix or kind} holds integers; got dtype {data.dtype}")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if data.size and (data.min() < info.min or data.max() > info.max):
            raise IllegalRecordError(f"values outside [{info.min}, {info.max}] do not fit {path.suffix or kind}")
    rows = np.empty((len(data), 4 + data.shape[1] * dtype.itemsize), dtype=np.uint8)
    rows[:, :4] = np.full((len(data), 1), data.shape[1], dtype="<i4").view(np.uint8)
    rows[:, 4:] = np.ascontiguousarray(data, dtype=dtype).view(np.uint8).reshape(len(data), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.tofile(path)
    return path


def read_fvecs(path: str | os.PathLike) -> np.ndarray:
    """:func:`read_vecs` of an .fvecs file (float32 rows), whatever its suffix."""
    return read_vecs(path, "fvecs")


def read_ivecs(path: str | os.PathLike) -> np.ndarray:
    """:func:`read_vecs` of an .ivecs file (int32 rows, e.g. ground-truth ids), whatever its suffix."""
    return read_vecs(path, "ivecs")


def read_bvecs(path: str | os.PathLike) -> np.ndarray:
    """:func:`read_vecs` of a .bvecs file (uint8 rows), whatever its suffix."""
    return read_vecs(path, "bvecs")


def write_fvecs(path: str | os.PathLike, array: Any) -> Path:
    """:func:`write_vecs` as .fvecs (float32), whatever the suffix."""
    return write_vecs(path, array, "fvecs")


def write_ivecs(path: str | os.PathLike, array: Any) -> Path:
    """:func:`write_vecs` as .ivecs (int32), whatever the suffix."""
    return write_vecs(path, array, "ivecs")


def write_bvecs(path: str | os.PathLike, array: Any) -> Path:
    """:func:`write_vecs` as .bvecs (uint8), whatever the suffix."""
    return write_vecs(path, array, "bvecs")
