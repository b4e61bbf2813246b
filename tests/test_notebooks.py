"""The teaching notebooks run top to bottom in CI, on small data, and are committed without outputs.

Each notebook is executed with nbclient in a kernel of *this* interpreter (a temporary ``python3``
kernelspec pointing at ``sys.executable`` comes first on ``JUPYTER_PATH``), from a temporary copy of
``notebooks/`` so nothing is written next to the originals. The kernel gets ``MILVUS_LAB_SMALL=1``
(each notebook's first cell reads it and loads less data), ``MPLBACKEND=Agg`` (no GUI) and the
repository on ``PYTHONPATH`` (so an uninstalled checkout works too). A cell that raises fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
TEACHING = ["01_quickstart.ipynb", "02_index_types.ipynb", "03_compare_and_tune.ipynb", "04_segments.ipynb"]
#: every notebook in the folder is checked for committed outputs (app.ipynb too)
ALL_NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell; the whole set takes well under 5 minutes with MILVUS_LAB_SMALL=1
KERNEL = "python3"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for the kernel: a python3 kernelspec of this interpreter first on JUPYTER_PATH."""
    jupyter = tmp_path_factory.mktemp("jupyter")
    spec_dir = jupyter / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (milvus_lab tests)", "language": "python",
    }))
    path = [str(jupyter)] + ([os.environ["JUPYTER_PATH"]] if os.environ.get("JUPYTER_PATH") else [])
    pythonpath = [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    return {"JUPYTER_PATH": os.pathsep.join(path), "PYTHONPATH": os.pathsep.join(pythonpath),
            "MILVUS_LAB_SMALL": "1", "MPLBACKEND": "Agg"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of notebooks/ to run in: whatever a notebook writes stays out of the repository."""
    target = tmp_path_factory.mktemp("notebooks")
    for item in NOTEBOOK_DIR.iterdir():
        if item.is_file():
            shutil.copy2(item, target / item.name)
    return target


def _error_text(cell: dict) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output['ename']}: {output['evalue']}"
    return ""


@pytest.mark.slow
@pytest.mark.parametrize("name", TEACHING)
def test_notebook_runs_top_to_bottom(name: str, kernel_env: dict[str, str], workdir: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in kernel_env.items():
        monkeypatch.setenv(key, value)  # read by the kernelspec lookup and inherited by the kernel
    nb = nbformat.read(workdir / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL, allow_errors=False,
                                     resources={"metadata": {"path": str(workdir)}})
    started = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{name}: a cell failed\n{exc}", pytrace=False)
    seconds = time.perf_counter() - started
    print(f"{name}: {len(nb.cells)} cells in {seconds:.1f} s")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code), f"{name}: not every code cell ran"
    assert not [c for c in code if _error_text(c)], f"{name}: {[_error_text(c) for c in code]}"
    assert "MILVUS_LAB_SMALL" in code[0].source, f"{name}: the first code cell must read the small-data switch"
    blank = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "plot_" in c.source
             and not any("image/png" in o.get("data", {}) for o in c.outputs)]
    assert not blank, f"{name}: cells {blank} call a plot function but show no image"


def test_kernel_is_this_interpreter(kernel_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """nbclient's "python3" resolves to the temporary kernelspec, i.e. to sys.executable's environment."""
    from jupyter_client.kernelspec import KernelSpecManager

    for key, value in kernel_env.items():
        monkeypatch.setenv(key, value)
    assert KernelSpecManager().get_kernel_spec(KERNEL).argv[0] == sys.executable


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_committed_notebook_has_no_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name} cell {i} has committed outputs: clear them before committing"
            assert cell.execution_count is None, f"{name} cell {i} has an execution count: clear outputs"
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL


def test_every_teaching_notebook_is_committed() -> None:
    missing = [n for n in TEACHING if not (NOTEBOOK_DIR / n).is_file()]
    assert not missing, f"missing notebooks: {missing}"


def test_first_markdown_cell_documents_the_small_data_switch() -> None:
    for name in TEACHING:
        nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "markdown")
        assert "MILVUS_LAB_SMALL" in first.source, name
