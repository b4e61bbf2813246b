"""The root password of each embedded server: made at its first start, kept where only its owner can read it.

An embedded Milvus 2.3 server binds its ports on every interface and its authorization's well-known default
is ``root:Milvus``. So the launcher starts it with authorization on and, before anyone is told it runs,
changes root's password to a random one kept here: one file per server folder (mode 0600, in a folder of
mode 0700) under ``credentials/`` beside milvus_lab's signing key (:func:`milvus_lab.engine.persist.config_dir`).
:func:`milvus_lab.server.embedded.token_for_uri` finds it again for :func:`milvus_lab.server.connect`, so
nobody types it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from ..engine.persist import CONFIG_DIR_ENV, config_dir
from ..errors import ServerError

#: the folder (under the config folder) that holds one credentials file per embedded server folder
CREDENTIALS_DIR = "credentials"
ROOT_USER = "root"
#: the password a Milvus 2.3 server with authorization on gives root until someone changes it
DEFAULT_PASSWORD = "Milvus"
#: random bytes in a new root password (32 URL-safe characters; Milvus allows 6 to 256)
PASSWORD_BYTES = 24
#: characters of a password shown where a person may need to tell two apart (never the whole)
SHOWN_CHARACTERS = 4
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def credentials_path(folder: str | os.PathLike) -> Path:
    """The credentials file of the embedded server whose data lives in ``folder`` (resolved)."""
    key = hashlib.sha256(str(Path(folder).expanduser().resolve()).encode()).hexdigest()[:24]
    return config_dir() / CREDENTIALS_DIR / f"server_{key}.json"


def new_password() -> str:
    """A fresh random root password (from :mod:`secrets`)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def mask(token: str) -> str:
    """``root:abcd…`` for ``root:abcdefgh...``: enough to tell two apart, never the password."""
    user, _, password = token.partition(":")
    return f"{user}:{password[:SHOWN_CHARACTERS]}…" if password else user


def load(folder: str | os.PathLike) -> str | None:
    """The root password kept for ``folder``'s server, or None when none was made yet.

    Raises ServerError when the file exists but cannot be read, or is readable by other users."""
    path = credentials_path(folder)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ServerError(f"the embedded server's credentials {path} cannot be read ({exc})") from None
    if os.name == "posix" and mode & 0o077:
        raise ServerError(f"the embedded server's credentials {path} are readable by other users (mode "
                          f"{mode & 0o777:o}); run: chmod 600 {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        password = data["password"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ServerError(f"the embedded server's credentials {path} cannot be read ({exc}); delete the file and "
                          f"the server's folder {folder} to start afresh") from None
    if not isinstance(password, str) or not password:
        raise ServerError(f"the embedded server's credentials {path} hold no password; delete the file and the "
                          f"server's folder {folder} to start afresh")
    return password


def save(folder: str | os.PathLike, password: str) -> Path:
    """Keep ``password`` for ``folder``'s server: written to a new file of mode 0600, then moved into place."""
    path = credentials_path(folder)
    record = {"folder": str(Path(folder).expanduser().resolve()), "user": ROOT_USER, "password": password}
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise ServerError(f"cannot keep the embedded server's root password in {path.parent} ({exc}); set "
                          f"{CONFIG_DIR_ENV} to a writable folder") from None
    return path


def token(folder: str | os.PathLike) -> str | None:
    """``root:<password>`` for ``folder``'s server (None when it has none yet)."""
    password = load(folder)
    return None if password is None else f"{ROOT_USER}:{password}"


def loopback_port(uri: str) -> int | None:
    """The port of ``uri`` when it names this machine (127.0.0.1, localhost, ::1), else None."""
    try:
        parts = urlsplit(uri if "://" in uri else "http://" + uri)
        port = parts.port
    except ValueError:
        return None
    return port if parts.hostname in LOOPBACK_HOSTS else None


def known_folders() -> list[str]:
    """The server folders this user keeps a root password for (from the credentials files that can be read)."""
    folders = []
    try:
        files = sorted((config_dir() / CREDENTIALS_DIR).glob("server_*.json"))
    except OSError:
        return []
    for path in files:
        try:
            folder = json.loads(path.read_text(encoding="utf-8"))["folder"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(folder, str):
            folders.append(folder)
    return folders
