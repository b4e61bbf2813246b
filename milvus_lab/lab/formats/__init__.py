"""The lab's data files: readers and writers that return and take plain arrays, one module per format.

- :mod:`.paths`: the checks every reader makes first (a file path, an existing file) and how messages name
  the arguments (:func:`cli_spelling` for ``milvus-lab compare``'s options);
- :mod:`.npy`: ``.npy`` read memory-mapped, and the file behind a memory-mapped array;
- :mod:`.vecs`: ``.fvecs`` / ``.ivecs`` / ``.bvecs``;
- :mod:`.hdf5`: ann-benchmarks HDF5 files;
- :mod:`.tables`: pandas DataFrames and ``.csv`` / ``.parquet`` files.

:func:`read_matrix` picks the reader by the file's suffix. Nothing here knows the lab's
:class:`~milvus_lab.lab.datasets.Dataset`: :mod:`milvus_lab.lab.datasets` wraps what these return.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import ParamError
from .hdf5 import HDF5_METRICS, HDF5Arrays, read_hdf5, write_hdf5
from .npy import copy_on_write_rows, mapped_file, read_mapped_rows, read_npy, release_mapped_pages
from .paths import CLI_OPTIONS, DataFileError, arg_name, cli_spelling, existing_file, file_path
from .tables import dataframe_matrix, holds_vectors, read_table
from .vecs import (
    VECS_DTYPES,
    read_bvecs,
    read_fvecs,
    read_ivecs,
    read_vecs,
    write_bvecs,
    write_fvecs,
    write_ivecs,
    write_vecs,
)


def read_array(path: Any, what: str = "path") -> np.ndarray:
    """A 2-D array from a .npy file (memory-mapped) or an .fvecs / .ivecs / .bvecs file, by its suffix.

    Any other suffix (tables and HDF5 included) raises ParamError listing the lab's file types; messages
    name the argument ``what``."""
    path = file_path(what, path)
    suffix = path.suffix.lower()
    if suffix in VECS_DTYPES:
        existing_file(what, path)
        return read_vecs(path)
    if suffix == ".npy":
        existing_file(what, path)
        return read_npy(path)
    if path.is_dir():
        existing_file(what, path)
    raise ParamError(f"{arg_name(what)} {path}: unsupported file type {suffix!r}; use .npy, .fvecs, .bvecs, "
                     f".ivecs, .hdf5/.h5, .csv or .parquet")


def read_matrix(path: str | os.PathLike, *, column: str | None = None,
                columns: Sequence[str] | None = None, what: str = "path") -> np.ndarray:
    """A 2-D array from .npy, .fvecs / .bvecs / .ivecs, .csv or .parquet, by the file's suffix (``column`` /
    ``columns`` choose a table's vectors as :func:`~.tables.dataframe_matrix` does)."""
    path = file_path(what, path)
    if path.is_dir():  # said before its (missing) suffix
        existing_file(what, path)
    if path.suffix.lower() in (".csv", ".parquet"):
        return read_table(path, column, columns, what)
    return read_array(path, what)


__all__ = [
    "CLI_OPTIONS", "DataFileError", "HDF5Arrays", "HDF5_METRICS", "VECS_DTYPES", "arg_name", "cli_spelling",
    "copy_on_write_rows", "dataframe_matrix", "existing_file", "file_path", "holds_vectors", "mapped_file",
    "read_array", "read_bvecs", "read_fvecs", "read_hdf5", "read_ivecs", "read_mapped_rows", "read_matrix",
    "read_npy", "read_table", "read_vecs", "release_mapped_pages", "write_bvecs", "write_fvecs", "write_hdf5",
    "write_ivecs", "write_vecs",
]
