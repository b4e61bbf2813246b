"""Where milvus_lab keeps per-user files: one cache folder and one config folder, each with one override.

The platform's conventions come from :mod:`platformdirs` (on Linux ``$XDG_CACHE_HOME`` or ``~/.cache``, and
``$XDG_CONFIG_HOME`` or ``~/.config``; on macOS ``~/Library/Caches`` and ``~/Library/Application Support``;
on Windows ``%LOCALAPPDATA%`` and ``%APPDATA%``), each + ``milvus_lab``. An environment variable replaces a
folder outright (``~`` expanded): :data:`CACHE_DIR_ENV` and :data:`CONFIG_DIR_ENV` are the only place their
names are written. Nothing here creates a folder; the code that writes a file there does.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["APP_NAME", "CACHE_DIR_ENV", "CONFIG_DIR_ENV", "cache_dir", "config_dir"]

APP_NAME = "milvus_lab"
#: replaces the cache folder (exact neighbours of bundled data, the embedded server's folder)
CACHE_DIR_ENV = "MILVUS_LAB_CACHE_DIR"
#: replaces the config folder (the signing key of saves, the embedded servers' credentials)
CONFIG_DIR_ENV = "MILVUS_LAB_CONFIG_DIR"
#: platformdirs' options: no vendor folder, no extra ``Cache`` level on Windows, and the roaming %APPDATA%
#: for settings, so that a Windows user's signing key follows them between machines
PLATFORM_OPTIONS = {"appname": APP_NAME, "appauthor": False, "opinion": False, "roaming": True}


def _override(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """milvus_lab's per-user cache folder: ``$MILVUS_LAB_CACHE_DIR`` if set, else the platform's cache folder
    + ``milvus_lab``. Anything in it can be computed again."""
    return _override(CACHE_DIR_ENV) or platformdirs.PlatformDirs(**PLATFORM_OPTIONS).user_cache_path


def config_dir() -> Path:
    """milvus_lab's per-user settings folder: ``$MILVUS_LAB_CONFIG_DIR`` if set, else the platform's config
    folder + ``milvus_lab``. It holds secrets (the signing key), so files there are made readable by the user
    only."""
    return _override(CONFIG_DIR_ENV) or platformdirs.PlatformDirs(**PLATFORM_OPTIONS).user_config_path

