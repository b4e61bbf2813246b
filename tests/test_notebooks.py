"""The teaching notebooks run top to bottom in CI, on small data, and are committed with their outputs
(figures and tables readable on the web), rendered by ``python scripts/render_tutorials.py`` at the sizes
their code states on a quiet machine; a committed tutorial rendered by code that has changed since (the digest of
the modules that draw its outputs), or holding an error or a busy-machine warning, fails a test here. The app
notebook is committed without outputs (Voilà runs it).

Each notebook is executed with nbclient in a kernel of *this* interpreter (a temporary ``python3``
kernelspec pointing at ``sys.executable`` comes first on ``JUPYTER_PATH``), from a temporary copy of
``notebooks/`` so nothing is written next to the originals. The kernel gets ``MILVUS_LAB_SMALL=1``
(each notebook's first cell reads it and loads less data), ``MPLBACKEND=Agg`` (no GUI) and the
repository on ``PYTHONPATH`` (so an uninstalled checkout works too). A cell that raises fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from milvus_lab import tutorials

try:
    import ipykernel  # noqa: F401
    import nbclient
    import nbformat
except ImportError as exc:  # FAIL, never skip (CI must not pass without running them), as the server tests do
    pytest.fail(f"the notebook tests need nbformat, nbclient and ipykernel: pip install -e '.[test]' ({exc})",
                pytrace=False)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
TEACHING = list(tutorials.TEACHING)
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


def execute(nb, folder: Path) -> None:
    """Run ``nb`` in ``folder`` with the python3 kernel; widget state is not stored (outputs stay small)."""
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL, allow_errors=False,
                                     store_widget_state=False, resources={"metadata": {"path": str(folder)}})
    client.execute()


#: where a warning was raised, in a kernel: a temporary file name that changes every run
KERNEL_SOURCE = re.compile(r"/tmp/ipykernel_\d+/\d+\.py:\d+: ")


def scrub(nb) -> None:
    """Drop the kernel's temporary file names from warnings in the outputs (they change every run)."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                output["text"] = KERNEL_SOURCE.sub("", output["text"])


def _error_text(cell: dict) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output['ename']}: {output['evalue']}"
    return ""


@pytest.mark.notebook
@pytest.mark.parametrize("name", TEACHING)
def test_notebook_runs_top_to_bottom(name: str, kernel_env: dict[str, str], workdir: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in kernel_env.items():
        monkeypatch.setenv(key, value)  # read by the kernelspec lookup and inherited by the kernel
    nb = nbformat.read(workdir / name, as_version=4)
    started = time.perf_counter()
    try:
        execute(nb, workdir)
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


#: text that would make committed outputs depend on the machine that ran them
MACHINE_TEXT = ("/tmp/", "/var/folders/", str(ROOT), str(Path.home()))


@pytest.mark.parametrize("name", TEACHING)
def test_committed_tutorial_has_outputs_readable_on_the_web(name: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), f"{name}: commit it executed (see the module doc)"
    assert not [c for c in code if _error_text(c)], f"{name}: committed with an error output"
    plots = [c for c in code if "plot_" in c.source]
    assert all(any("image/png" in o.get("data", {}) for o in c.outputs) for c in plots), f"{name}: a plot is blank"
    text = json.dumps([c.outputs for c in code])
    leaked = [t for t in MACHINE_TEXT if t in text]
    assert not leaked, f"{name}: outputs name paths of the machine that ran them: {leaked}"
    assert "application/vnd.jupyter.widget-state+json" not in nb.metadata.get("widgets", {}), \
        f"{name}: widget state stored (huge); execute with store_widget_state=False"
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL


def test_the_app_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK_DIR / "app.ipynb", as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"app.ipynb cell {i} has outputs"
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL


def test_every_teaching_notebook_is_committed() -> None:
    missing = [n for n in TEACHING if not (NOTEBOOK_DIR / n).is_file()]
    assert not missing, f"missing notebooks: {missing}"


def test_first_markdown_cell_documents_the_small_data_switch() -> None:
    for name in TEACHING:
        nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "markdown")
        assert "MILVUS_LAB_SMALL" in first.source, name


# --------------------------------------------------------------------------------------------------
# Rendered by today's code, on a quiet machine, at the stated sizes (scripts/render_tutorials.py)
# --------------------------------------------------------------------------------------------------
from milvus_lab.tutorials import METADATA_KEY, RENDERING_MODULES, renderer_digest  # noqa: E402


@pytest.mark.parametrize("name", TEACHING)
def test_committed_tutorial_was_rendered_by_todays_code_at_its_stated_size(name: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    stamp = nb.metadata.get(METADATA_KEY)
    assert stamp, f"{name}: not rendered by scripts/render_tutorials.py (no metadata['{METADATA_KEY}'])"
    assert stamp["renderer_digest"] == renderer_digest(), \
        f"{name}: rendered by code that has changed since: run python scripts/render_tutorials.py {name}"
    assert stamp["small"] is False, f"{name}: rendered in the small mode"
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    assert "_Outputs rendered on" in first.source, f"{name}: the first cell does not say how it was rendered"
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "busy machine" not in text, f"{name}: an output carries the busy-machine warning"


def test_the_staleness_check_fails_after_a_change_to_a_plotting_function(tmp_path: Path) -> None:
    """A copy of the rendering modules with one plotting function changed gives another digest, so the test above
    would fail until the tutorials are rendered again; the unchanged copy gives today's digest."""
    package = ROOT / "milvus_lab"
    for name in RENDERING_MODULES:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (package / name).is_file():
            shutil.copy2(package / name, target)
    assert renderer_digest(tmp_path) == renderer_digest()
    plots = tmp_path / "lab" / "plots.py"
    plots.write_text(plots.read_text().replace("def plot_recall_qps(", "def plot_recall_qps(  # changed\n", 1))
    assert renderer_digest(tmp_path) != renderer_digest()
