"""Re-execute the teaching notebooks with the current code, at the sizes their code states, and commit-ready.

    python scripts/render_tutorials.py                  # every tutorial (a quiet machine: 20-30 minutes)
    python scripts/render_tutorials.py 05_forecast.ipynb

Each notebook runs from a temporary copy (nothing it writes lands in the repository), in a kernel of this
interpreter, WITHOUT ``MILVUS_LAB_SMALL`` (the sizes the code states). Its outputs are written back only when
no output holds an error or the lab's busy-machine warning: a tutorial must not teach that the numbers are
unreliable. The machine is checked before each notebook too (other processes' CPU share over a few seconds).
Each written notebook records in ``metadata["milvus_lab"]`` the package version, the digest of the modules
that render outputs (:mod:`milvus_lab.tutorials`), the machine and the date, and its first markdown cell ends
with one sentence saying on what machine and at what size its outputs were made.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nbclient  # noqa: E402
import nbformat  # noqa: E402

from milvus_lab import __version__  # noqa: E402
from milvus_lab.lab.timing import BUSY_OTHER_CPU, Monitor, available_cores  # noqa: E402
from milvus_lab.tutorials import METADATA_KEY, TEACHING, renderer_digest  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
BUSY_TEXT = "busy machine"
#: the sentence the render adds to the first markdown cell (replaced on every render)
STAMP = re.compile(r"\n\n_Outputs rendered .*?_\s*$", re.S)
KERNEL_SOURCE = re.compile(r"/tmp/ipykernel_\d+/\d+\.py:\d+: ")


def machine() -> str:
    try:
        import psutil

        memory = f", {psutil.virtual_memory().total / 2**30:.0f} GB"
    except ImportError:
        memory = ""
    return f"{available_cores()} cores{memory}, {platform.system()} {platform.machine()}, Python " \
           f"{platform.python_version()}"


def quiet_enough(seconds: float = 5.0) -> tuple[bool, str]:
    """Other processes' share of the CPUs over ``seconds`` is below the lab's busy bar."""
    monitor = Monitor()
    with monitor.watch() as load:
        time.sleep(seconds)
    other = load.get("other_cpu", float("nan"))
    return not (other == other and other >= BUSY_OTHER_CPU), f"other processes used {other:.0%} of the CPUs"


def problems(nb) -> list[str]:
    found = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {i}: {output.get('ename')}: {output.get('evalue')}")
            text = json.dumps(output)
            if BUSY_TEXT in text:
                found.append(f"cell {i}: the busy-machine warning")
    return found


def scrub(nb) -> None:
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                output["text"] = KERNEL_SOURCE.sub("", output["text"])


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def stamp(nb, seconds: float) -> None:
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    first.source = STAMP.sub("", first.source) + (
        f"\n\n_Outputs rendered on {time.strftime('%Y-%m-%d')} by `scripts/render_tutorials.py` on a quiet machine "
        f"({machine()}), at the sizes in the code (not `MILVUS_LAB_SMALL`), in {_duration(seconds)}._")
    nb.metadata[METADATA_KEY] = {"version": __version__, "renderer_digest": renderer_digest(),
                                 "machine": machine(), "rendered": time.strftime("%Y-%m-%d"), "small": False}


def main(names: list[str]) -> int:
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        kernels = Path(tmp) / "kernels" / "python3"
        kernels.mkdir(parents=True)
        (kernels / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3", "language": "python"}))
        os.environ.pop("MILVUS_LAB_SMALL", None)
        os.environ.update({"JUPYTER_PATH": tmp, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)})
        work = Path(tmp) / "run"
        work.mkdir()
        for name in names:
            ok, why = quiet_enough()
            if not ok:
                print(f"{name}: not rendered: the machine is busy ({why}); try again when it is quiet")
                failed += 1
                continue
            nb = nbformat.read(NOTEBOOKS / name, as_version=4)
            started = time.perf_counter()
            client = nbclient.NotebookClient(nb, timeout=1800, kernel_name="python3", allow_errors=True,
                                             store_widget_state=False, resources={"metadata": {"path": str(work)}})
            client.execute()
            seconds = time.perf_counter() - started
            found = problems(nb)
            if found:
                print(f"{name}: not written ({seconds:.0f} s): " + "; ".join(found))
                failed += 1
                continue
            scrub(nb)
            stamp(nb, seconds)
            nbformat.write(nb, NOTEBOOKS / name)
            print(f"{name}: rendered in {seconds:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or list(TEACHING)))
