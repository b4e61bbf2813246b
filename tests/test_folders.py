"""Per-user folders: the lab's cache, the embedded server's folder and the signing key's config folder all come
from milvus_lab.folders (platformdirs), each moved by one environment variable whose name is written once."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import platformdirs
import pytest
from platformdirs import macos, windows

import milvus_lab
from milvus_lab import folders
from milvus_lab.engine import keys, persist
from milvus_lab.lab import datasets
from milvus_lab.server import embedded

PACKAGE = Path(milvus_lab.__file__).parent


class FakePlatform:
    """Stands in for platformdirs.PlatformDirs: a platform whose folders are under ``FakePlatform.root``."""

    root = Path("/nowhere")

    def __init__(self, **options):
        assert options == folders.PLATFORM_OPTIONS

    @property
    def user_cache_path(self) -> Path:
        return self.root / "platform-cache" / "milvus_lab"

    @property
    def user_config_path(self) -> Path:
        return self.root / "platform-config" / "milvus_lab"


@pytest.fixture
def no_overrides(monkeypatch):
    monkeypatch.delenv(folders.CACHE_DIR_ENV, raising=False)
    monkeypatch.delenv(folders.CONFIG_DIR_ENV, raising=False)


def test_the_three_folders_come_from_the_folders_module(monkeypatch, tmp_path, no_overrides):
    monkeypatch.setattr(FakePlatform, "root", tmp_path)
    monkeypatch.setattr(platformdirs, "PlatformDirs", FakePlatform)
    cache, config = tmp_path / "platform-cache" / "milvus_lab", tmp_path / "platform-config" / "milvus_lab"
    assert datasets.cache_dir() == cache
    assert embedded.default_folder() == cache / "server"
    assert persist.config_dir() == config
    assert persist.signing_key_path() == config / keys.KEY_FILE


def test_each_variable_moves_its_folder_for_every_user_of_it(monkeypatch, tmp_path, no_overrides):
    monkeypatch.setenv(folders.CACHE_DIR_ENV, str(tmp_path / "cache"))
    assert datasets.cache_dir() == tmp_path / "cache"
    assert embedded.default_folder() == tmp_path / "cache" / "server"
    assert persist.config_dir() != tmp_path / "cache"  # the cache variable leaves the config folder alone
    monkeypatch.setenv(folders.CONFIG_DIR_ENV, str(tmp_path / "config"))
    assert persist.config_dir() == tmp_path / "config"
    assert persist.signing_key_path() == tmp_path / "config" / keys.KEY_FILE
    assert datasets.cache_dir() == tmp_path / "cache"


def test_a_variable_expands_the_home_folder_and_an_empty_one_is_unset(monkeypatch, tmp_path, no_overrides):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(folders.CACHE_DIR_ENV, "~/elsewhere")
    assert folders.cache_dir() == tmp_path / "home" / "elsewhere"
    monkeypatch.setenv(folders.CACHE_DIR_ENV, "")
    monkeypatch.setattr(FakePlatform, "root", tmp_path)
    monkeypatch.setattr(platformdirs, "PlatformDirs", FakePlatform)
    assert folders.cache_dir() == tmp_path / "platform-cache" / "milvus_lab"


def test_the_variables_are_named_once_in_the_package():
    names = {folders.CACHE_DIR_ENV, folders.CONFIG_DIR_ENV}
    assert datasets.CACHE_ENV == embedded.CACHE_ENV == folders.CACHE_DIR_ENV
    assert persist.CONFIG_DIR_ENV == keys.CONFIG_DIR_ENV == folders.CONFIG_DIR_ENV
    written = [(path.name, node.value) for path in sorted(PACKAGE.rglob("*.py"))
               for node in ast.walk(ast.parse(path.read_text(), str(path)))
               if isinstance(node, ast.Constant) and node.value in names]
    assert sorted(written) == [("folders.py", "MILVUS_LAB_CACHE_DIR"), ("folders.py", "MILVUS_LAB_CONFIG_DIR")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG folders are Linux's")
def test_linux_defaults_are_the_xdg_folders(monkeypatch, tmp_path, no_overrides):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    assert datasets.cache_dir() == tmp_path / "xdg-cache" / "milvus_lab"
    assert embedded.default_folder() == tmp_path / "xdg-cache" / "milvus_lab" / "server"
    assert persist.config_dir() == tmp_path / "xdg-config" / "milvus_lab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.cache_dir() == tmp_path / "home" / ".cache" / "milvus_lab"
    assert embedded.default_folder() == tmp_path / "home" / ".cache" / "milvus_lab" / "server"
    assert persist.config_dir() == tmp_path / "home" / ".config" / "milvus_lab"


def test_macos_and_windows_folders_are_the_ones_used_before_platformdirs(monkeypatch, tmp_path):
    """The options given to platformdirs keep the folders of the hand-written code it replaced."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    mac = macos.MacOS(**folders.PLATFORM_OPTIONS)
    assert Path(mac.user_cache_dir) == tmp_path / "home" / "Library" / "Caches" / "milvus_lab"
    assert Path(mac.user_config_dir) == tmp_path / "home" / "Library" / "Application Support" / "milvus_lab"
    # off Windows, platformdirs can read the known folders from the variables Windows sets
    monkeypatch.setattr(windows, "get_win_folder", windows.get_win_folder_from_env_vars)
    monkeypatch.setenv("APPDATA", str(tmp_path / "roaming"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    win = windows.Windows(**folders.PLATFORM_OPTIONS)
    assert Path(win.user_cache_dir) == tmp_path / "local" / "milvus_lab"
    assert Path(win.user_config_dir) == tmp_path / "roaming" / "milvus_lab"
