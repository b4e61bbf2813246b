"""The checks every file reader makes first, and how their messages name the arguments they refuse.

A message names an argument as a Python keyword (``column='name'``) or, within :func:`cli_spelling`, as the
``milvus-lab compare`` option that sets it (``--column NAME``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from ... import spec
from ...errors import IllegalRecordError, ParamError


class DataFileError(IllegalRecordError, FileNotFoundError):
    """A data file that is missing or is a folder (also a FileNotFoundError, so either ``except`` catches it)."""


#: the options of ``milvus-lab compare`` that set the loaders' arguments, for messages shown on the command line
CLI_OPTIONS = {"path": "--data", "queries": "--queries", "groundtruth": "--groundtruth", "column": "--column",
               "columns": "--columns", "n_queries": "--nq", "metric": "--metric", "normalize": "--normalize"}
_CLI_SPELLING: ContextVar[bool] = ContextVar("milvus_lab_cli_spelling", default=False)


@contextlib.contextmanager
def cli_spelling() -> Iterator[None]:
    """Within it, the loaders' messages name their arguments as ``milvus-lab compare``'s options
    (``--column NAME``) instead of Python keywords (``column='name'``)."""
    token = _CLI_SPELLING.set(True)
    try:
        yield
    finally:
        _CLI_SPELLING.reset(token)


def arg_name(name: str, python_value: str = "", cli_value: str = "") -> str:
    """How a message names argument ``name`` (with an example value): ``column='name'`` or ``--column NAME``.

    Inside :func:`cli_spelling` a name of :data:`CLI_OPTIONS` is its option, followed by ``cli_value`` when
    given; otherwise ``name=python_value``, or the bare ``name`` when no value is given."""
    if _CLI_SPELLING.get() and name in CLI_OPTIONS:
        return CLI_OPTIONS[name] + (f" {cli_value}" if cli_value else "")
    return f"{name}={python_value}" if python_value else name


def file_path(name: str, value: Any) -> Path:
    """``value`` as a Path (a str or an os.PathLike giving a str); ParamError naming ``name`` otherwise.

    Empty or blank text, text with a NUL and a hostile ``__fspath__`` are refused; the file is not looked at."""
    try:
        text = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    except Exception:  # noqa: BLE001 - a hostile __fspath__
        text = None
    if not isinstance(text, str) or not text.strip() or "\x00" in text:
        raise ParamError(f"{arg_name(name)} must be a file path (a str or pathlib.Path); got {spec.show_value(value)}")
    return Path(text)


def existing_file(name: str, path: Path) -> Path:
    """``path`` when it is an existing file; :class:`DataFileError` naming ``name`` when it is a folder or
    does not exist."""
    if path.is_dir():
        raise DataFileError(f"{arg_name(name)} {path} is a folder, not a data file; give one file of vectors")
    if not path.is_file():
        raise DataFileError(f"{arg_name(name)}: no such file: {path}")
    return path
