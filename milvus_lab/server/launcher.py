"""``python -m milvus_lab.server.launcher FOLDER``: the detached process that runs an embedded Milvus server for
:func:`milvus_lab.server.embedded.start` (see there)."""

from __future__ import annotations

import sys
from pathlib import Path

from milvus_lab.server.embedded import serve

if __name__ == "__main__":
    sys.exit(serve(Path(sys.argv[1]).resolve()))
