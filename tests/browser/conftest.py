"""Browser-test fixtures: Debian's chromium driven by Playwright, a built dashboard, a server.

- `server`: tests/conftest.py's `live_server` (uvicorn + a real Celery worker, embedded
  SQLite + filesystem broker), started after the dashboard is built so the API serves it.
- `page`: a fresh browser context whose test fails on any console error or page error;
  `page_errors.allow(pattern)` lets a test accept an error it provokes on purpose.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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
            pytest.fail("frontend/dist is missing or stale and there is no npm to build it")
        if not (FRONTEND / "node_modules").is_dir():
            subprocess.run([npm, "ci"], cwd=FRONTEND, check=True)
        subprocess.run([npm, "run", "build"], cwd=FRONTEND, check=True)
    return dist.parent


@pytest.fixture(scope="session")
def server(dashboard_built: Path, live_server):  # type: ignore[no-untyped-def]
    """The service with the built dashboard (tests/conftest.py): `.url`, `.token`, `.client()`."""
    return live_server


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
def signed_in(page, server):  # type: ignore[no-untyped-def]
    """The page, logged in the way a user does: the URL that `rlserve up` prints."""
    page.goto(f"{server.url}/?token={server.token}#/")
    page.wait_for_selector("table.jobs")
    return page
