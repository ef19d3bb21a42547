"""Browser-test fixtures: Debian's chromium driven by Playwright, a built dashboard, a server.

- `server`: the service engineer's `live_server` fixture (uvicorn + a real Celery worker)
  when tests/conftest.py provides it; otherwise `rlserve up` in a temporary data folder.
- `page`: a fresh browser context whose test fails on any console error or page error;
  `page_errors.allow(pattern)` lets a test accept an error it provokes on purpose.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
CHROMIUM = os.environ.get("RLSERVE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def dashboard_built() -> Path:
    """frontend/dist, built with npm when it is missing or older than the sources."""
    dist = FRONTEND / "dist" / "index.html"
    sources = [p for p in (FRONTEND / "src").rglob("*") if p.is_file()] + [FRONTEND / "index.html"]
    stale = not dist.exists() or max(p.stat().st_mtime for p in sources) > dist.stat().st_mtime
    if stale:
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("frontend/dist is missing or stale and npm is not installed: cd frontend && npm ci && npm run build")
        if not (FRONTEND / "node_modules").is_dir():
            subprocess.run([npm, "ci"], cwd=FRONTEND, check=True)
        subprocess.run([npm, "run", "build"], cwd=FRONTEND, check=True)
    return dist.parent


@dataclass
class Server:
    url: str
    token: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def _own_server(tmp_path_factory: pytest.TempPathFactory, dashboard_built: Path) -> Iterator[Server]:
    """`rlserve up` (API + one worker) in a temporary data folder."""
    data = tmp_path_factory.mktemp("rlserve-data")
    env = {**os.environ, "RLSERVE_DATA_DIR": str(data), "RLSERVE_FRONTEND_DIR": str(dashboard_built)}
    rlserve = [sys.executable, "-c", "from app.cli import main; main()"]
    token = subprocess.run([*rlserve, "token", "create", "browser"], env=env, check=True, capture_output=True, text=True)
    token_value = token.stdout.strip().splitlines()[-1]
    port = _free_port()
    log = (data / "up.log").open("w")
    process = subprocess.Popen([*rlserve, "up", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"rlserve up did not start:\n{(data / 'up.log').read_text()}")
        time.sleep(0.2)
    yield Server(url, token_value)
    process.send_signal(signal.SIGINT)  # `up` stops its worker on the way out
    try:
        process.wait(40)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest, dashboard_built: Path) -> Server:
    try:
        live = request.getfixturevalue("live_server")
    except pytest.FixtureLookupError:
        return request.getfixturevalue("_own_server")
    return Server(live.url.rstrip("/"), live.token)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class PageErrors:
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def page(browser, page_errors: PageErrors) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("console", lambda m: m.type == "error" and page_errors.errors.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: page_errors.errors.append(f"page error: {e}"))
    yield page
    context.close()
    unexpected = page_errors.unexpected()
    assert not unexpected, "errors in the browser console:\n" + "\n".join(unexpected)


@pytest.fixture
def signed_in(page, server: Server):  # type: ignore[no-untyped-def]
    """The page, logged in the way a user does: the URL that `rlserve up` prints."""
    page.goto(f"{server.url}/?token={server.token}#/")
    page.wait_for_selector("table.jobs")
    return page
