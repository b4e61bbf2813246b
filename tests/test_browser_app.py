"""The app in a real browser: notebooks/app.ipynb served by Voilà on 127.0.0.1, driven by Playwright with
Debian's Chromium. Choose IVF_PQ, see only valid m, have an out-of-range nlist refused, create the index
and see the panel report it, search, drop. The run keeps a screenshot as docs/img/app.png for the README."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from milvus_lab import spec

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "app.ipynb"
SCREENSHOT = Path(os.environ.get("MILVUS_LAB_SCREENSHOT", ROOT / "docs" / "img" / "app.png"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DIM = 48  # the notebook's projection of GloVe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited with status {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"voila did not listen on 127.0.0.1:{port} within {timeout:.0f} s:\n"
                       f"{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def voila_url(tmp_path_factory):
    assert Path(CHROMIUM).exists(), (f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y "
                                     f"chromium; .ci/run does it) to run the browser tests")
    tmp = tmp_path_factory.mktemp("voila")
    port = _free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env["JUPYTER_RUNTIME_DIR"] = str(tmp / "runtime")
    log = tmp / "voila.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voila", str(NOTEBOOK), f"--port={port}", "--Voila.ip=127.0.0.1",
             "--Voila.port_retries=0", "--no-browser", "--show_tracebacks=True"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, proc, log, timeout=30)
        yield f"http://127.0.0.1:{port}/", log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_app_in_a_real_browser(voila_url):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    url, log = voila_url
    m_param = spec.INDEXES["IVF_PQ"].build["m"]
    valid_m = [str(v) for v in spec.allowed_values(m_param, {"dim": DIM})]
    nlist_param = spec.INDEXES["IVF_PQ"].build["nlist"]
    too_big = spec.bounds(nlist_param)[1] + 1
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url, wait_until="domcontentloaded", timeout=30_000)
            try:
                page.wait_for_selector(".milvus-app", timeout=45_000)
            except PlaywrightTimeout:
                raise AssertionError(f"the app did not render; voila log:\n{log.read_text()[-3000:]}") from None
            panel = page.locator(".milvus-panel")
            expect(panel).to_contain_text("5,000")

            # choose IVF_PQ: m offers exactly the values valid for 48-d vectors
            page.select_option(".milvus-index-type select", label="IVF_PQ")
            m_select = page.locator(".milvus-param-m select")
            expect(m_select).to_be_visible()
            options = m_select.locator("option").all_text_contents()
            assert [o.strip() for o in options] == valid_m

            # an out-of-range nlist is refused with the reason, kept as typed, and Create is disabled
            nlist = page.locator(".milvus-param-nlist input")
            nlist.fill(str(too_big))
            expect(page.locator(".milvus-message-nlist")).to_contain_text(
                f"nlist={too_big} is out of range; allowed: 1 <= nlist <= {too_big - 1}")
            assert nlist.input_value() == str(too_big), "the typed value was changed"
            create = page.locator("button.milvus-create")
            expect(create).to_be_disabled()

            # a valid nlist: create the index, see the build time and the panel report it
            nlist.fill("32")
            expect(create).to_be_enabled()
            page.select_option(".milvus-param-m select", label="8")
            create.click()
            expect(page.locator(".milvus-index-message")).to_contain_text("Created IVF_PQ (nlist=32, m=8) in",
                                                                           timeout=30_000)
            expect(panel).to_contain_text("IVF_PQ (nlist=32, m=8)")
            expect(panel).to_contain_text("all 5,000 rows indexed")
            expect(page.locator(".milvus-segments")).to_contain_text("IVF_PQ")
            expect(page.locator(".milvus-current-index")).to_contain_text("Current index: IVF_PQ")

            # search a word: a results table with the latency and the recall against FLAT
            expect(page.locator(".milvus-param-nprobe input")).to_be_visible()
            page.locator(".milvus-query input").fill("king")
            page.locator("button.milvus-search").click()
            table = page.locator(".milvus-results table")
            expect(table).to_be_visible()
            expect(table.locator("tbody tr")).to_have_count(10)
            expect(table.locator("tbody tr").first).to_contain_text("king")
            message = page.locator(".milvus-search-message")
            expect(message).to_contain_text(" ms")
            expect(message).to_contain_text("recall@10 against FLAT")

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.locator(".milvus-app").screenshot(path=str(SCREENSHOT))  # Voilà scrolls inside the page

            # drop the index: exact search again, everywhere
            page.locator("button.milvus-drop").click()
            expect(page.locator(".milvus-index-message")).to_contain_text("Dropped the IVF_PQ index")
            expect(panel).to_contain_text("FLAT (no index: exact search)")
            expect(page.locator(".milvus-param-nprobe input")).to_have_count(0)
            assert not errors, f"JavaScript errors in the page: {errors}"
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
