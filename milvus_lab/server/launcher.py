"""``python -m milvus_lab.server.launcher FOLDER [--authorization]``: the detached process that runs an embedded
Milvus server for :func:`milvus_lab.server.embedded.start` (see there)."""

from __future__ import annotations

import sys
from pathlib import Path

from milvus_lab.server.embedded import serve

if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(serve(Path(args[0]).resolve(), "--authorization" in args[1:]))
