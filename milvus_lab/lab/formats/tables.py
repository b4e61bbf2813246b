"""Tables of vectors: pandas DataFrames and the ``.csv`` / ``.parquet`` files that hold them.

The vectors are a column holding one vector per row (arrays, lists, or text such as ``"[0.1, 0.2]"``), or
numeric columns, one per dimension.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ... import spec
from ...errors import IllegalRecordError, ParamError
from ..arguments import Str, check
from .paths import arg_name, existing_file, file_path


def holds_vectors(series: Any) -> bool:
    """Does a DataFrame column hold one vector per row (arrays or lists, or text such as "[0.1, 0.2]")?
    Judged by its first non-missing cell; a column of another dtype than object never does."""
    if series.dtype != object or not len(series):
        return False
    first = series.dropna()
    if not len(first):
        return False
    cell = first.iloc[0]
    if isinstance(cell, str):
        return cell.lstrip().startswith(("[", "("))
    return isinstance(cell, (list, tuple, np.ndarray))


def dataframe_matrix(df: Any, column: str | None, columns: Sequence[str] | None, what: str) -> np.ndarray:
    """The vectors of DataFrame ``df`` as a 2-D float32 array: ``column`` holds one vector per row, or
    ``columns`` are numeric, one per dimension.

    With neither, the one column of vectors or else all numeric columns are used; anything ambiguous, missing
    or non-numeric raises ParamError / IllegalRecordError whose message starts with ``what``."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise ParamError(f"{what}: expected a pandas DataFrame (df); got {type(df).__name__}")
    column = check("column", column, Str(none_ok=True))
    if columns is not None:
        if isinstance(columns, (str, bytes, Mapping)) or not isinstance(columns, (list, tuple)) or \
                not all(isinstance(c, str) for c in columns) or not columns:
            raise ParamError(f"columns must be a non-empty list of column names; got {spec.show_value(columns)}")
        columns = [str.__str__(c) for c in columns]
    if column is not None and columns is not None:
        raise ParamError(f"give {arg_name('column', '...', 'NAME')} (one column of vectors) or "
                         f"{arg_name('columns', '...', 'A,B,...')} (numeric columns), not both")
    if column is None and columns is None:
        vector_cols = [c for c in df.columns if holds_vectors(df[c])]
        numeric = [c for c in df.columns
                   if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
        if len(vector_cols) == 1:  # scalar columns beside it (ids, prices) are not part of the vectors
            column = vector_cols[0]
        elif numeric and not vector_cols:
            columns = numeric
        else:
            found = (f"{len(vector_cols)} columns hold vectors ({', '.join(map(str, vector_cols))})" if vector_cols
                     else "no column holds vectors or numbers")
            raise ParamError(f"{what}: say which data to use: {arg_name('column', repr('name'), 'NAME')} for a "
                             f"column of vectors, or {arg_name('columns', '[...]', 'A,B,...')} for numeric columns, "
                             f"one per dimension; {found}; the columns are {list(df.columns)}")
    if column is not None:
        if column not in df.columns:
            raise ParamError(f"{what}: no column {column!r}; columns are {list(df.columns)}")
        cells = df[column].tolist()
        lengths = {len(np.atleast_1d(np.asarray(c))) for c in cells}
        if len(lengths) > 1:
            raise IllegalRecordError(f"{what}: column {column!r} holds vectors of different lengths "
                                     f"{sorted(lengths)[:5]}; all must have the same dimension")
        try:
            matrix = np.stack([np.asarray(c, dtype=np.float32) for c in cells]) if cells else np.empty((0, 0))
        except (TypeError, ValueError) as exc:
            raise IllegalRecordError(f"{what}: column {column!r} holds non-numeric values ({exc})") from None
        if matrix.ndim != 2:
            raise IllegalRecordError(f"{what}: column {column!r} must hold one vector per row; it holds "
                                     f"{'scalars' if matrix.ndim == 1 else f'{matrix.ndim - 1}-D arrays'} (for "
                                     f"numeric columns, one per dimension, use "
                                     f"{arg_name('columns', '[...]', 'A,B,...')})")
        return matrix
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ParamError(f"{what}: no column(s) {missing}; columns are {list(df.columns)}")
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise IllegalRecordError(f"{what}: column(s) {bad} are not numeric")
    return df[list(columns)].to_numpy(dtype=np.float32)


def read_table(path: str | os.PathLike, column: str | None, columns: Sequence[str] | None,
               what: str = "path") -> np.ndarray:
    """Vectors from a .csv / .parquet table (a column of vectors, possibly written as text, or numeric
    columns), chosen as :func:`dataframe_matrix` chooses them; a .csv suffix is read as CSV, any other as
    parquet. An unreadable file raises IllegalRecordError; messages name the argument ``what``."""
    import pandas as pd

    path = file_path(what, path)
    existing_file(what, path)
    try:
        df = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pandas and pyarrow raise many kinds for a broken file
        raise IllegalRecordError(f"cannot read {path}: {exc}") from None
    if column is not None:
        text = [column] if column in df.columns and len(df) and isinstance(df[column].iloc[0], str) else []
    else:  # vectors written as text ("[0.1, 0.2]") are read as vectors
        text = [c for c in df.columns if holds_vectors(df[c]) and isinstance(df[c].dropna().iloc[0], str)]
    for name in text:
        try:
            df[name] = [np.array(s.strip("[]()").replace(",", " ").split(), dtype=np.float32) for s in df[name]]
        except (ValueError, AttributeError) as exc:
            raise IllegalRecordError(f"{path}: column {name!r} holds text that is not a list of numbers "
                                     f"({exc})") from None
    return dataframe_matrix(df, column, columns, str(path))
