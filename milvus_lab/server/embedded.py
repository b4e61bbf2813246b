"""An embedded Milvus 2.3 standalone server (PyPI ``milvus``) in a folder of its own, started and stopped by pid.

:func:`start` spawns a detached launcher process (``python -m milvus_lab.server.launcher FOLDER``) that starts
``milvus.MilvusServer`` with its base folder in FOLDER, writes ``FOLDER/server.json`` (pids, port, URI) and
waits; so the server outlives the command or notebook cell that started it. :func:`stop` reads that file and
ends the server's process and the launcher by their process ids, never by a process name. The server is
addressed on 127.0.0.1 only, but Milvus 2.3 binds its ports on every interface and cannot be told otherwise
(milvus-io/milvus#26538): so it always runs with authorization on, and the launcher replaces root's well-known
password by a random one (:mod:`.credentials`) before it records the server as running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from .. import folders
from ..errors import ServerError
from . import credentials

#: the file in the server's folder that records who runs it
STATE_FILE = "server.json"
LAUNCHER_LOG = "launcher.log"
#: the etcd ports a folder's server used last (reused when free, so etcd's stored member address stays valid)
ETCD_PORTS_FILE = "etcd_ports.json"
ETCD_FIRST_PORT = 2379
CACHE_ENV = folders.CACHE_DIR_ENV
#: seconds to wait for the server to report healthy (it takes 7-10 s on 2 cores, more on a first start)
START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
#: the user and password of a Milvus server with authorization enabled, until someone changes them
DEFAULT_TOKEN = f"{credentials.ROOT_USER}:{credentials.DEFAULT_PASSWORD}"
#: seconds the launcher tries to change root's default password once the server answers
SECURE_TIMEOUT = 60.0
#: what a person starting the server should know about who else can reach it
NETWORK_NOTE = ("Milvus 2.3 listens on every network interface (ports {port}, 9091 and others), so it is "
                "reachable from the network; it requires a user, and root's password is random, kept in {path}")
INSTALL_HINT = "pip install 'milvus-lab[server]'"


@dataclass(frozen=True)
class ServerInfo:
    """A running embedded server: its folder, the milvus process id, the launcher's, the port and the URI.

    ``authorization`` is True for every server :func:`start` starts; False only for a state file that does not
    record it, whose server is then treated as having no authorization."""

    folder: str
    pid: int
    launcher_pid: int
    port: int
    version: str
    authorization: bool = False
    started: float = 0.0

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str | None:
        """``root:<password>`` of this server, read from its credentials file (None: no authorization).

        :func:`milvus_lab.server.connect` finds it by itself for a server of this user on 127.0.0.1."""
        return credentials.token(self.folder) if self.authorization else None

    def __repr__(self) -> str:  # the dataclass repr, without anything secret (the token is not a field)
        return (f"ServerInfo(folder={self.folder!r}, pid={self.pid}, launcher_pid={self.launcher_pid}, "
                f"port={self.port}, version={self.version!r}, authorization={self.authorization})")


def default_folder() -> Path:
    """``server`` in milvus_lab's cache folder (:func:`milvus_lab.folders.cache_dir`: ``$MILVUS_LAB_CACHE_DIR``
    if set, else ``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%``
    on Windows, + milvus_lab)."""
    return folders.cache_dir() / "server"


def _process(pid: int) -> psutil.Process | None:
    """The running process ``pid``, or None when there is none or it is a zombie (it has exited; only its parent
    has not collected it yet)."""
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None
    try:
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc
    except psutil.NoSuchProcess:  # ZombieProcess included
        return None
    except psutil.AccessDenied:  # another user's process: it exists, and its status is not ours to read
        return proc


def _alive(pid: int) -> bool:
    return _process(pid) is not None


def _cmdline(pid: int) -> str:
    """``pid``'s command line, its arguments joined by spaces ('' when it is gone or not ours to read)."""
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def _is_ours(pid: int, folder: Path, launcher: bool) -> bool:
    """True when ``pid`` is alive and is this folder's milvus binary (or its launcher): a recycled pid is not."""
    if not _alive(pid):
        return False
    cmd = _cmdline(pid)
    if launcher:
        return "milvus_lab.server.launcher" in cmd and str(folder) in cmd
    return cmd.startswith(str(folder / "bin" / "milvus"))


def read_state(folder: str | os.PathLike | None = None) -> ServerInfo | None:
    """The server recorded in ``folder`` if its milvus process is still running, else None."""
    folder = Path(folder) if folder is not None else default_folder()
    path = folder.resolve() / STATE_FILE
    try:
        data = json.loads(path.read_text())
        info = ServerInfo(**data)
    except (OSError, ValueError, TypeError):
        return None
    if not _is_ours(info.pid, Path(info.folder), launcher=False):
        return None
    return info


def token_for_uri(uri: str) -> str | None:
    """The token of this user's running embedded server that answers at ``uri`` on this machine, or None.

    Only servers whose root password this user keeps (:mod:`.credentials`) are considered; a URI of another
    host is never given a token."""
    port = credentials.loopback_port(uri)
    if port is None:
        return None
    for folder in credentials.known_folders():
        info = read_state(folder)
        if info is not None and info.port == port:
            return credentials.token(folder)
    return None


def _require_milvus() -> None:
    try:
        import milvus  # noqa: F401
    except ImportError as exc:
        raise ServerError(f"the embedded Milvus server needs the 'milvus' package: {INSTALL_HINT} ({exc})") from exc


def start(folder: str | os.PathLike | None = None, *, timeout: float = START_TIMEOUT) -> ServerInfo:
    """Start an embedded Milvus server with its data in ``folder`` (default: :func:`default_folder`) and return
    its :class:`ServerInfo` once it answers; a server already running in that folder is returned as it is.

    Authorization is on: user ``root`` with a random password made at the folder's first start and kept in
    :func:`credentials.credentials_path` (mode 0600); ``root:Milvus`` is refused. Raises ServerError naming the
    folder and the log to read when it does not come up within ``timeout`` s.
    """
    _require_milvus()
    folder = Path(folder) if folder is not None else default_folder()
    folder = folder.expanduser().resolve()
    running = read_state(folder)
    if running is not None:
        return running
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE_FILE).unlink(missing_ok=True)
    log = folder / LAUNCHER_LOG
    cmd = [sys.executable, "-m", "milvus_lab.server.launcher", str(folder)]
    with open(log, "wb") as out:
        launcher = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_state(folder)
        if info is not None:
            return info
        if launcher.poll() is not None:
            raise ServerError(f"the embedded Milvus server in {folder} did not start (launcher exited with status "
                              f"{launcher.returncode}): {_tail(log)}; see {log} and {folder / 'logs'}")
        time.sleep(0.2)
    _terminate(launcher.pid)
    raise ServerError(f"the embedded Milvus server in {folder} did not answer within {timeout:.0f} s; "
                      f"see {log} and {folder / 'logs'}")


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _terminate(pid: int, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM ``pid``, then SIGKILL if it is still there after ``timeout`` s; True once it is gone. psutil
    checks that ``pid`` is still the process it was when looked up before each signal. Polled with
    :func:`_alive` rather than ``Process.wait``: a zombie (exited, its parent not collecting it yet) is gone."""
    for send, wait in ((psutil.Process.terminate, timeout), (psutil.Process.kill, 5.0)):
        proc = _process(pid)
        if proc is None:
            return True
        try:
            send(proc)
        except psutil.NoSuchProcess:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return True
            time.sleep(0.1)
    return not _alive(pid)


def stop(folder: str | os.PathLike | None = None, *, timeout: float = STOP_TIMEOUT) -> ServerInfo | None:
    """Stop the embedded server recorded in ``folder`` by its process id (and its launcher by its own).

    Returns the stopped server's info, or None when none was running there. Data stays in the folder."""
    folder = Path(folder) if folder is not None else default_folder()
    folder = folder.expanduser().resolve()
    path = folder / STATE_FILE
    try:
        info = ServerInfo(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    stopped = None
    if _is_ours(info.pid, Path(info.folder), launcher=False):
        if not _terminate(info.pid, timeout):
            raise ServerError(f"the Milvus server (pid {info.pid}) in {folder} did not stop")
        stopped = info
    if _is_ours(info.launcher_pid, Path(info.folder), launcher=True):
        _terminate(info.launcher_pid, timeout)
    # a launcher already on its way out (its server just ended) has an empty command line for a moment:
    # not ours to signal by then, but wait for it to be gone so that "stopped" means stopped
    deadline = time.monotonic() + timeout
    while _alive(info.launcher_pid) and not _cmdline(info.launcher_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    path.unlink(missing_ok=True)
    return stopped


def _free_port(first: int, taken: set[int]) -> int:
    """The first port from ``first`` up that nobody listens on at 127.0.0.1 (and not in ``taken``)."""
    for port in range(first, first + 1000):
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise ServerError(f"no free port for the embedded Milvus server's etcd from {first} up")


def _own_etcd_ports(server: Any, folder: Path) -> None:
    """Give the server's embedded etcd its own client and peer ports on 127.0.0.1.

    The package templates etcd's client port but leaves its peer port at etcd's fixed 2380, so a second
    embedded server on the machine dies at start ("bind: address already in use"). An etcd config file
    (Milvus's ``etcd.config.path``) names both; the ports a folder used before are reused when free."""
    ports_file = folder / ETCD_PORTS_FILE
    try:
        previous = json.loads(ports_file.read_text())
    except (OSError, ValueError):
        previous = {}
    client = _free_port(int(previous.get("client", ETCD_FIRST_PORT)), set())
    peer = _free_port(int(previous.get("peer", client + 1)), {client})
    ports_file.write_text(json.dumps({"client": client, "peer": peer}))
    config = folder / "configs" / "embed_etcd.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("\n".join([
        "name: milvus_lab",
        f"listen-client-urls: http://127.0.0.1:{client}",
        f"advertise-client-urls: http://127.0.0.1:{client}",
        f"listen-peer-urls: http://127.0.0.1:{peer}",
        f"initial-advertise-peer-urls: http://127.0.0.1:{peer}",
        f"initial-cluster: milvus_lab=http://127.0.0.1:{peer}",
        ""]))
    server.config.update(etcd_port=client)
    anchor = "\netcd:\n"
    if anchor not in server.config.template_text:
        raise ServerError("the milvus package's config template has no 'etcd:' section; milvus_lab was tested with "
                          "milvus 2.3.5")
    server.config.template_text = server.config.template_text.replace(
        anchor, f"{anchor}  config:\n    path: {config}\n", 1)


# --------------------------------------------------------------------------------------------------
# The launcher's work (python -m milvus_lab.server.launcher FOLDER)
# --------------------------------------------------------------------------------------------------
def _root_session(uri: str, password: str, alias: str) -> bool | None:
    """Connect ``alias`` as root with ``password`` and make one request that needs a user: True if it is served,
    False if the server refuses the password, None if it cannot tell yet (not ready, no answer)."""
    from pymilvus import connections, utility

    try:
        connections.connect(alias, uri=uri, token=f"{credentials.ROOT_USER}:{password}", timeout=10)
        utility.list_collections(timeout=10, using=alias)
        return True
    except Exception as exc:  # noqa: BLE001 - pymilvus raises MilvusException and grpc errors
        try:
            connections.disconnect(alias)
        except Exception:  # noqa: BLE001
            pass
        text = str(exc)
        return False if "UNAUTHENTICATED" in text or "auth check failure" in text else None


def secure_root(folder: Path, port: int, timeout: float = SECURE_TIMEOUT) -> None:
    """Make sure root's password on the server at ``port`` is the one kept for ``folder``.

    At a folder's first start the server has root's default password: a random one is kept first (mode 0600),
    then set on the server, so a failure in between leaves a password the next start sets again. Raises
    ServerError when the server refuses both the kept and the default password, or cannot say within
    ``timeout`` s."""
    from pymilvus import connections, utility

    uri = f"http://127.0.0.1:{port}"
    alias = f"milvus_lab_launcher_{os.getpid()}"
    kept = credentials.load(folder)
    deadline = time.monotonic() + timeout
    while True:
        with_kept = None if kept is None else _root_session(uri, kept, alias)
        if with_kept:
            connections.disconnect(alias)
            return
        with_default = _root_session(uri, credentials.DEFAULT_PASSWORD, alias)
        if with_default:
            password = kept or credentials.new_password()
            path = credentials.save(folder, password)
            try:
                utility.reset_password(credentials.ROOT_USER, credentials.DEFAULT_PASSWORD, password, using=alias,
                                       timeout=10)
            except Exception as exc:  # noqa: BLE001 - pymilvus raises MilvusException and grpc errors
                raise ServerError(f"could not change root's default password on the embedded server in {folder}: "
                                  f"{exc}; the password kept in {path} is set at the next start") from None
            finally:
                connections.disconnect(alias)
            kept = password
            continue  # check that the new password is the one the server now asks for
        if with_default is False and (kept is None or with_kept is False):
            raise ServerError(
                f"the embedded server in {folder} refuses root's default password and "
                + (f"the one kept in {credentials.credentials_path(folder)}" if kept is not None else
                   f"no password is kept for it in {credentials.credentials_path(folder)}")
                + ": its root password was changed elsewhere or its kept password was lost; start a server in a "
                  f"new folder (--folder), or delete {folder} to start afresh")
        if time.monotonic() >= deadline:
            raise ServerError(f"the embedded server in {folder} did not answer a login within {timeout:.0f} s")
        time.sleep(1.0)


def serve(folder: Path) -> int:
    """Start Milvus in ``folder`` with authorization on, give root its kept random password (made at the
    first start), record the server in ``server.json``, wait until it exits or SIGTERM arrives."""
    from milvus import MilvusServer, __version__

    server = MilvusServer()
    server.set_base_dir(str(folder))
    server.config.set("authorization_enabled", True)
    _own_etcd_ports(server, folder)

    def shut_down() -> None:
        if server.server_proc is not None:  # give Milvus time to shut down cleanly before the hard kill
            server.server_proc.terminate()
            try:
                server.server_proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        server.stop()
        (folder / STATE_FILE).unlink(missing_ok=True)

    def on_term(signum: int, frame: object) -> None:
        shut_down()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    server.start()  # blocks until /healthz answers
    try:
        secure_root(folder, server.listen_port)
    except ServerError as exc:  # never leave a server running that someone else may log in to
        print(f"error: {exc}", flush=True)
        shut_down()
        return 1
    info = ServerInfo(folder=str(folder), pid=server.server_proc.pid, launcher_pid=os.getpid(),
                      port=server.listen_port, version=__version__, authorization=True, started=time.time())
    tmp = folder / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(info)))
    os.replace(tmp, folder / STATE_FILE)
    print(f"Milvus {__version__} (pid {info.pid}) answers at {info.uri}", flush=True)
    status = server.server_proc.wait()
    print(f"Milvus (pid {info.pid}) exited with status {status}", flush=True)
    server.server_proc = None
    server.stop()
    (folder / STATE_FILE).unlink(missing_ok=True)
    return 0

