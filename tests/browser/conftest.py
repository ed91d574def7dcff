"""Real-browser tests: Debian's headless Chromium, driven by Playwright (the system browser, never a
downloaded one), against the app served by a real HTTP server on 127.0.0.1 (ports 8160-8169 unless
TEST_LIVE_PORTS says otherwise). Under CI=true a missing browser is a failure, not a skip."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.conftest import CI
from tests.integration.conftest import start_worker, worker_env  # noqa: F401  (fixtures of the production mode)

CHROMIUM = os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium")
PORTS = os.environ.get("TEST_LIVE_PORTS", "8160-8169")
SCREENSHOTS = Path(os.environ.get("TEST_SCREENSHOTS", "/tmp/console-screenshots"))

pytestmark = pytest.mark.browser


def _serve_on_a_free_port(app):
    """A server bound to the first free port of PORTS (bound at once: parallel xdist workers race)."""
    from werkzeug.serving import make_server

    lo, hi = (int(x) for x in PORTS.split("-"))
    for port in range(lo, hi + 1):
        try:
            return port, make_server("127.0.0.1", port, app, threaded=True)
        except (OSError, SystemExit):  # werkzeug exits when the port is taken
            continue
    raise RuntimeError(f"no free port in {PORTS}")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (make test installs Debian's chromium: scripts/ensure-chromium)"
        if CI:
            pytest.fail(message + " (CI=true: a missing browser is a failure)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.port, self.server = _serve_on_a_free_port(app)
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(10)


# `@in_both_modes` on a test runs it against the embedded app (SQLite, jobs in-process) and against the
# production shape: PostgreSQL, Redis as the broker and a real Celery worker process running the jobs.
in_both_modes = pytest.mark.parametrize("live", ["embedded", "postgresql+redis+worker"], indirect=True)


@pytest.fixture
def live(request, make_app):
    """The app (the bundled rules and the sample catalogue) on a real HTTP port: embedded (SQLite, jobs
    in-process) unless the test is marked `in_both_modes`, which also runs it on PostgreSQL + Redis + a
    real Celery worker (tests/integration/conftest.py's worker_env and start_worker)."""
    from compliance.config import SETTINGS

    sample = next(s.default for s in SETTINGS if s.env == "SAMPLE_CATALOGUE")
    if getattr(request, "param", "embedded") == "embedded":
        app = make_app()
    else:
        app = request.getfixturevalue("worker_env").app
        request.getfixturevalue("start_worker")()
    from compliance.services.catalogues import ensure_sample_catalogue

    ensure_sample_catalogue(app, sample)
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture
def page(browser, live):
    context = browser.new_context(base_url=live.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def page_without_js(browser, live):
    context = browser.new_context(base_url=live.url, java_script_enabled=False, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def key_for(live, role: str, name: str | None = None) -> str:
    from compliance.auth import create_api_key

    _, plain = create_api_key(live.app.extensions["db"], name or f"browser {role}", role, actor="tests")
    return plain


def browser_sign_in(page, key: str) -> None:
    page.goto("/sign-in")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def shot(page, name: str, full_page: bool = True) -> None:
    """A screenshot in TEST_SCREENSHOTS (default /tmp/console-screenshots), to look at; docs/console holds copies."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
