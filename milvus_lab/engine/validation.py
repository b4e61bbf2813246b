"""Argument checks shared by the engine's public calls: names, vectors, ids.

Type and shape problems raise ParamError (pymilvus raises those too); rule violations raise the
specific MilvusLabError subclass whose code the facade returns. Limits come from milvus_lab.spec.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .. import spec
from ..errors import (
    IllegalCollectionNameError,
    IllegalDimensionError,
    IllegalIdError,
    IllegalRecordError,
    InvalidParameterError,
    ParamError,
)
from ..units import GIB

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NAME_RULE = (f"1-{spec.NAME_MAX_LENGTH} characters, the first a letter or '_', then letters, digits or '_'")


def _check_name_text(kind: str, name: Any, error: type) -> str:
    text = spec.plain_str(name)
    if not text:
        raise ParamError(f"{kind} must be a non-empty str; got {spec.show_value(name)}")
    if len(text) > spec.NAME_MAX_LENGTH or not _NAME.match(text):
        raise error(f"{kind} {spec.show_value(text)} is invalid; allowed: {_NAME_RULE}")
    return text


def collection_name(name: Any) -> str:
    return _check_name_text("collection_name", name, IllegalCollectionNameError)


def partition_tag(tag: Any) -> str:
    if spec.plain_str(tag) is None:
        raise ParamError(f"partition_tag must be a str; got {spec.show_value(tag)}")
    return _check_name_text("partition_tag", tag, InvalidParameterError)


def float_vectors(records: Any, dim: int, what: str = "records") -> np.ndarray:
    """A C-contiguous float32 (n, dim) array from a 2-D array or a list of equal-length rows."""
    if (type(records) is np.ndarray and records.dtype == np.float32 and records.ndim == 2
            and records.shape[0] and records.shape[1] == dim and records.flags.c_contiguous):
        if not np.isfinite(records).all():
            _raise_non_finite(records, what)
        return records  # already what the engine stores: no copy on the search path
    if isinstance(records, (bytes, bytearray)) or (isinstance(records, (list, tuple)) and records
                                                   and isinstance(records[0], (bytes, bytearray))):
        raise IllegalRecordError(f"{what} are bytes (binary vectors) but the collection stores float "
                                 f"vectors of dimension {dim}; give rows of {dim} floats")
    if isinstance(records, np.ndarray):
        array = records
    elif isinstance(records, (list, tuple)):
        if len(records) == 0:
            raise ParamError(f"{what} must be a non-empty list of rows; got an empty list")
        try:
            array = np.asarray(records)
        except MemoryError:
            raise IllegalRecordError(f"{what}: a batch of {len(records):,} rows does not fit in memory; insert "
                                     f"it in smaller batches") from None
        except Exception as exc:  # ragged rows, or rows whose __len__ / __float__ raise
            raise ParamError(f"{what} must be a list of equal-length rows of numbers "
                             f"({type(exc).__name__}: {spec.show_value(str(exc))})") from None
    else:
        raise ParamError(f"{what} must be a 2-D array or a list of rows; got {type(records).__name__}")
    if array.ndim == 1 and array.size and not isinstance(records, list):
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ParamError(f"{what} must be a non-empty 2-D batch (rows x {dim}); got shape {array.shape}")
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ParamError(f"{what} must contain numbers; got dtype {array.dtype}")
    if np.iscomplexobj(array):
        raise ParamError(f"{what} must contain real numbers; got complex dtype {array.dtype}")
    if array.shape[1] != dim:
        raise IllegalDimensionError(f"{what} have dimension {array.shape[1]}; the collection's dimension "
                                    f"is {dim}")
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32 become inf: refused below
            out = np.ascontiguousarray(array, dtype=np.float32)
    except MemoryError:
        gib = array.shape[0] * array.shape[1] * np.dtype(np.float32).itemsize / GIB
        raise IllegalRecordError(f"{what}: a batch of {array.shape[0]:,} x {array.shape[1]} floats "
                                 f"({gib:.1f} GiB) does not fit in memory; insert it in smaller batches") from None
    if not np.isfinite(out).all():
        _raise_non_finite(out, what)
    return out


def _raise_non_finite(array: np.ndarray, what: str) -> None:
    row = int(np.argwhere(~np.isfinite(array))[0][0])
    raise IllegalRecordError(f"{what} contain NaN or infinite values (first in row {row}); "
                             f"only finite numbers are allowed")


def binary_vectors(records: Any, dim: int, what: str = "records") -> np.ndarray:
    """A C-contiguous uint8 (n, dim/8) array from a list of bytes objects or a uint8 array."""
    nbytes = dim // spec.BINARY_DIMENSION_MULTIPLE
    if isinstance(records, np.ndarray):
        if records.dtype != np.uint8 or records.ndim != 2 or records.shape[0] == 0:
            raise ParamError(f"{what} for a binary collection must be bytes or a uint8 array (n, {nbytes}); "
                             f"got {records.dtype} {records.shape}")
        array = records
    elif isinstance(records, (list, tuple)):
        if len(records) == 0:
            raise ParamError(f"{what} must be a non-empty list of bytes; got an empty list")
        if not all(isinstance(r, (bytes, bytearray)) for r in records):
            raise IllegalRecordError(f"{what} for binary metric collections must be bytes of length "
                                     f"dimension/8 = {nbytes}; got {type(records[0]).__name__} rows")
        lengths = {len(r) for r in records}
        if lengths != {nbytes}:
            raise IllegalDimensionError(f"{what} have {sorted(lengths)} bytes per row; the collection's "
                                        f"dimension {dim} needs {nbytes} bytes")
        array = np.frombuffer(b"".join(records), dtype=np.uint8).reshape(len(records), nbytes)
    elif isinstance(records, (bytes, bytearray)):
        raise ParamError(f"{what} must be a list of bytes rows, not a single bytes object")
    else:
        raise ParamError(f"{what} must be a list of bytes; got {type(records).__name__}")
    if array.shape[1] != nbytes:
        raise IllegalDimensionError(f"{what} have {array.shape[1]} bytes per row; dimension {dim} needs "
                                    f"{nbytes}")
    return np.ascontiguousarray(array, dtype=np.uint8)


def id_list(ids: Any, what: str = "ids", *, allow_empty: bool = False) -> np.ndarray:
    """An int64 array from a list (or 1-D integer array) of ints in the int64 id range."""
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer)):
            raise ParamError(f"{what} must be a 1-D integer array; got {ids.dtype} {ids.shape}")
        if ids.dtype == np.uint64 and ids.size and ids.max() > spec.ID_RANGE[1]:  # would wrap to negative int64
            raise ParamError(f"{what} must be in [{spec.ID_RANGE[0]}, {spec.ID_RANGE[1]}] (int64); got "
                             f"{int(ids.max())}")
        values = ids.astype(np.int64, copy=False)
    elif isinstance(ids, (list, tuple)):
        numbers = [spec.as_int(v) for v in ids]
        first_bad = next((i for i, n in enumerate(numbers) if n is None), None)
        if first_bad is not None:
            bad = ids[first_bad]
            raise ParamError(f"{what} must be ints; got {spec.show_value(bad)} ({type(bad).__name__})")
        too_big = next((n for n in numbers if not spec.ID_RANGE[0] <= n <= spec.ID_RANGE[1]), None)
        if too_big is not None:
            raise ParamError(f"{what} must be in [{spec.ID_RANGE[0]}, {spec.ID_RANGE[1]}]; got "
                             f"{spec.show_value(too_big)}")
        values = np.asarray(numbers, dtype=np.int64)
    else:
        raise ParamError(f"{what} must be a list of ints; got {type(ids).__name__}")
    if values.size == 0 and not allow_empty:
        raise ParamError(f"{what} must be a non-empty list of ints")
    if values.size and values.min() < spec.ID_RANGE[0]:
        raise ParamError(f"{what} must be in [{spec.ID_RANGE[0]}, {spec.ID_RANGE[1]}]; got "
                         f"{int(values.min())}")
    return values


def unique_ids(ids: np.ndarray) -> None:
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1][:5].tolist()
        raise IllegalIdError(f"ids contain duplicates within one batch: {dup}; each id must be unique")
