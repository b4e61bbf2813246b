"""``milvus-lab server start|stop|status``: an embedded Milvus 2.3 server for notebooks, no Docker needed."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from ..errors import ServerError
from . import credentials, embedded

#: exit status of ``status`` when no server runs (the LSB convention for "program is not running")
NOT_RUNNING = 3

DESCRIPTION = """\
start, stop or check an embedded Milvus 2.3 server (PyPI 'milvus', needs: pip install 'milvus-lab[server]').

Its data lives in a folder under your cache (default: $MILVUS_LAB_CACHE_DIR/server or ~/.cache/milvus_lab/server);
'start' returns once the server answers and prints its URI; 'stop' ends it by its process id.
Milvus 2.3 listens on every network interface, so the server always requires a user: root, with a random
password made at the first start and kept (mode 0600) in your milvus_lab config folder; milvus_lab.server.connect
finds it, so you never type it."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="milvus-lab server", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", metavar="{start,stop,status}", required=True)
    folder_help = f"the server's data folder (default: {embedded.default_folder()})"
    start = sub.add_parser("start", help="start the server in the background and print its URI")
    start.add_argument("--folder", help=folder_help)
    start.add_argument("--timeout", type=float, default=embedded.START_TIMEOUT,
                       help="seconds to wait for the server to answer (default: %(default).0f)")
    stop = sub.add_parser("stop", help="stop the server (by its process id)")
    stop.add_argument("--folder", help=folder_help)
    status = sub.add_parser("status", help=f"is it running? (exit status 0 if so, {NOT_RUNNING} if not)")
    status.add_argument("--folder", help=folder_help)
    return parser


def _describe(info: embedded.ServerInfo) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.started)) if info.started else "?"
    if info.authorization:
        token = info.token
        auth = (f", authorization on (token {credentials.mask(token)}, kept in "
                f"{credentials.credentials_path(info.folder)})" if token else
                ", authorization on (its root password is not in this user's config folder)")
    else:
        auth = ", authorization OFF (started by an older milvus_lab: stop and start it again)"
    return (f"Milvus {info.version} (pid {info.pid}) at {info.uri}{auth}\n"
            f"  data: {info.folder}\n  running since {since}\n"
            f"  note: {embedded.NETWORK_NOTE.format(port=info.port, path=credentials.credentials_path(info.folder))}")


def _snippet(info: embedded.ServerInfo) -> str:
    return ("  use it: from milvus_lab import server; target = server.connect("
            f"{info.uri!r})  # finds the password itself\n  stop it: milvus-lab server stop"
            + (f" --folder {info.folder}" if info.folder != str(embedded.default_folder().resolve()) else ""))


def server_main(argv: Sequence[str] | None = None) -> int:
    """Run ``milvus-lab server ...`` with ``argv`` (the words after 'server'); returns the exit status."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    folder = args.folder
    try:
        if args.action == "start":
            running = embedded.read_state(folder)
            if running is not None:
                print("already running: " + _describe(running))
                print(_snippet(running))
                return 0
            where = folder or embedded.default_folder()
            print(f"starting Milvus in {where} (about 10 s; the first start also unpacks its binaries) ...",
                  flush=True)
            info = embedded.start(folder, timeout=args.timeout)
            print("started: " + _describe(info))
            print(_snippet(info))
            return 0
        if args.action == "stop":
            stopped = embedded.stop(folder)
            where = folder or embedded.default_folder()
            if stopped is None:
                print(f"no Milvus server is running in {where}")
            else:
                print(f"stopped Milvus (pid {stopped.pid}) at {stopped.uri}; its data stays in {stopped.folder}")
            return 0
        info = embedded.read_state(folder)
        if info is None:
            print(f"no Milvus server is running in {folder or embedded.default_folder()}")
            return NOT_RUNNING
        print("running: " + _describe(info))
        return 0
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(server_main())
