"""`milvus-lab app` and `milvus-lab notebooks` as real processes: they start as the user running them (root
included: JupyterLab gets --allow-root), and SIGTERM to the `milvus-lab` process id stops the server and every
kernel it started (a process manager or a teacher's script stops them this way). Checked by process id."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp: Path) -> dict[str, str]:
    """Jupyter's per-user folders in ``tmp``: the test writes nothing to the real home."""
    env = dict(os.environ)
    for name in ("JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR"):
        env[name] = str(tmp / name.lower())
    return env


def _start(args: list[str], tmp: Path, port: int) -> tuple[subprocess.Popen, Path]:
    log = tmp / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "milvus_lab.cli", *args], cwd=tmp, env=_env(tmp),
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with status {proc.returncode}:\n{log.read_text()[-3000:]}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, log
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise TimeoutError(f"nothing listened on {port}:\n{log.read_text()[-3000:]}")


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _kernels(pid: int) -> list[psutil.Process]:
    return [p for p in _descendants(pid) if "ipykernel" in " ".join(p.cmdline())]


def _stopped_by_sigterm(proc: subprocess.Popen, log: Path) -> list[str]:
    """SIGTERM the `milvus-lab` process only; return the processes it had started that are still alive."""
    started = _descendants(proc.pid)
    names = {p.pid: f"{p.pid}: {' '.join(p.cmdline())[:100]}" for p in started}
    assert started, "the command started no server process?"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"milvus-lab did not exit within 60 s of SIGTERM:\n{log.read_text()[-3000:]}")
    _, alive = psutil.wait_procs(started, timeout=30)
    for p in alive:  # leave the machine clean whatever the outcome
        p.kill()
    return [names[p.pid] for p in alive]


def test_sigterm_to_milvus_lab_app_stops_voila_and_its_kernels(tmp_path):
    port = _free_port()
    proc, log = _start(["app", "--no-browser", "--port", str(port), "--Voila.port_retries=0"], tmp_path, port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=120) as page:  # a page load: a kernel
            assert page.status == 200
        deadline = time.monotonic() + 60
        while not _kernels(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _kernels(proc.pid), f"the page load started no kernel:\n{log.read_text()[-3000:]}"
        alive = _stopped_by_sigterm(proc, log)
        assert alive == [], f"still running after SIGTERM: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_notebooks_start_as_this_user_and_stop_on_sigterm(tmp_path):
    """Run as root (containers), JupyterLab needs --allow-root: the command passes it, so the server starts."""
    port = _free_port()
    proc, log = _start(["notebooks", "--no-browser", "--port", str(port), "--dir", str(tmp_path / "nb"),
                        "--ServerApp.port_retries=0"], tmp_path, port)
    try:
        assert (tmp_path / "nb" / "app.ipynb").exists()
        if os.geteuid() == 0:
            assert "passing --allow-root to JupyterLab" in log.read_text()
        alive = _stopped_by_sigterm(proc, log)
        assert alive == [], f"still running after SIGTERM: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
