"""This user's signing key and the signatures of save manifests (HMAC-SHA256).

The key is 32 random bytes (:mod:`secrets`) kept as 64 hex digits in ``signing_key`` in the user's config
folder (:func:`milvus_lab.folders.config_dir`), made once by the first save, mode 0600 in a 0700 folder.
A signature covers the exact bytes it is given; :mod:`.persist` gives it the canonical manifest, which lists
every file's sha256, so it covers every byte of a save.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path
from typing import Any

from ..errors import PersistError
from ..folders import CONFIG_DIR_ENV, config_dir
from .files import fsync_dir

__all__ = ["CONFIG_DIR_ENV", "KEY_FILE", "SIGNATURE_ALGORITHM", "config_dir", "key_id", "sign",
           "signature_problem", "signing_key", "signing_key_path"]

KEY_FILE = "signing_key"
SIGNATURE_ALGORITHM = "hmac-sha256"
_KEY_BYTES = 32
_KEY_TEXT = re.compile(r"[0-9a-f]{64}\n?\Z")


def signing_key_path() -> Path:
    """Where this user's signing key lives (created, mode 0600, by the first save)."""
    return config_dir() / KEY_FILE


def _read_key_file(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise PersistError(f"the signing key {path} cannot be read ({exc}); fix or delete it (saves signed with "
                           f"it will then load with their indexes rebuilt), or point {CONFIG_DIR_ENV} "
                           f"at another folder") from None
    if not _KEY_TEXT.match(text):
        raise PersistError(f"the signing key {path} is not 64 hex digits; fix or delete it, or point "
                           f"{CONFIG_DIR_ENV} at another folder")
    return bytes.fromhex(text.strip())


def signing_key(create: bool) -> bytes | None:
    """This user's key; made once when ``create`` (a save) and absent, else None when absent.
    PersistError (naming the file and the variable that moves it) when it cannot be read or made."""
    path = signing_key_path()
    if path.is_file():
        return _read_key_file(path)
    if not create:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it meanwhile
        return _read_key_file(path)
    except OSError as exc:
        raise PersistError(f"cannot create the signing key in {path.parent} ({exc}); set {CONFIG_DIR_ENV} to "
                           f"a writable folder") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(_KEY_BYTES) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise PersistError(f"cannot write the signing key {path} ({exc}); set {CONFIG_DIR_ENV} to a writable "
                           f"folder") from None
    fsync_dir(path.parent)
    return _read_key_file(path)


def key_id(key: bytes) -> str:
    """A short public name of ``key`` (it tells whose key signed, and reveals nothing of the key)."""
    return hashlib.sha256(b"milvus_lab signing key id\0" + key).hexdigest()[:16]


def sign(key: bytes, payload: bytes) -> dict[str, str]:
    """The signature record of ``payload`` under ``key``: algorithm, key id and the HMAC in hex."""
    return {"algorithm": SIGNATURE_ALGORITHM, "key_id": key_id(key),
            "hmac": hmac.new(key, payload, hashlib.sha256).hexdigest()}


def signature_problem(payload: bytes, signature: Any) -> str | None:
    """None when ``signature`` is a valid signature of ``payload`` under this user's key, else why not."""
    if signature is None:
        return "it carries no signature"
    if not (isinstance(signature, dict) and signature.get("algorithm") == SIGNATURE_ALGORITHM
            and isinstance(signature.get("hmac"), str) and isinstance(signature.get("key_id"), str)):
        return "its signature is malformed"
    key = signing_key(create=False)
    if key is None:
        return f"this user has no signing key yet at {signing_key_path()}"
    if not hmac.compare_digest(sign(key, payload)["hmac"], signature["hmac"]):
        if signature["key_id"] != key_id(key):
            return "it was signed with another key (another user or machine)"
        return "its signature does not match its content (edited after it was signed)"
    return None
