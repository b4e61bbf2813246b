"""What renders the tutorials' committed outputs, and a digest of it, so a stale tutorial can be detected.

``scripts/render_tutorials.py`` re-executes the teaching notebooks at the sizes their code states and records
in each notebook's metadata (``metadata["milvus_lab"]``) the package version, :func:`renderer_digest` of the
modules below (the ones whose code shapes what a notebook's outputs show: figures, tables, reports, HTML
views), the machine and the time. A test compares the recorded digest with today's: a change to any of these
modules makes the committed outputs stale until they are rendered again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent

#: modules (relative to the package) whose code decides what a tutorial's outputs look like
RENDERING_MODULES = (
    "lab/plots.py",
    "lab/report.py",
    "lab/forecast_report.py",
    "lab/concurrency.py",
    "engine/html.py",
    "views/_common.py",
    "views/annoy_forest.py",
    "views/hnsw.py",
    "views/ivf.py",
    "views/quantization.py",
)
#: the metadata key the render script writes
METADATA_KEY = "milvus_lab"
#: the teaching notebooks, in order (the app notebook is committed without outputs)
TEACHING = ("01_quickstart.ipynb", "02_index_types.ipynb", "03_compare_and_tune.ipynb", "04_segments.ipynb",
            "05_forecast.ipynb")


def renderer_digest(root: Path | None = None, modules: tuple[str, ...] = RENDERING_MODULES) -> str:
    """SHA-256 over the names and bytes of the rendering modules under ``root`` (default: this package);
    a module that does not exist counts as empty."""
    root = PACKAGE if root is None else Path(root)
    h = hashlib.sha256()
    for name in modules:
        path = root / name
        h.update(name.encode() + b"\0")
        h.update(path.read_bytes() if path.is_file() else b"")
        h.update(b"\0")
    return h.hexdigest()
