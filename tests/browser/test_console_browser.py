"""End to end in a real Chromium: sign in, read the dashboard, the API docs render offline, sign out;
pages read with JavaScript off."""
from __future__ import annotations

from .conftest import browser_sign_in, key_for, shot


def test_sign_in_dashboard_sign_out(page, live):
    page.goto("/")
    assert "/sign-in" in page.url
    page.fill("#api_key", "cck_wrong")
    page.click("button[type=submit]")
    assert page.locator(".field-error").inner_text() == "the API key is unknown or revoked"
    browser_sign_in(page, key_for(live, "viewer", "Vera"))
    assert page.locator("h1").inner_text() == "Dashboard"
    assert "Version 1" in page.locator("#rule-version").inner_text()
    assert "Sample" in page.locator("#catalogues").inner_text()
    assert page.locator(".actor").inner_text().startswith("Vera (cck_")
    cookie = next(c for c in page.context.cookies() if c["name"] == "cc_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find("cc_session") == -1  # not readable from scripts
    shot(page, "dashboard")
    page.click("text=Sign out")
    page.wait_for_url("**/sign-in")
    page.goto("/")
    assert "/sign-in" in page.url


def test_api_docs_render_offline(page, live):
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto("/api/v1/docs")
    page.wait_for_selector(".opblock", timeout=30_000)  # Swagger UI has drawn the operations
    assert page.locator(".opblock").count() > 20
    info = page.locator(".info .description").inner_text()
    assert "Authorization: Bearer <key>" in info and "X-API-Key: <key>" in info
    shot(page, "swagger-ui")
    page.goto("/api/v1/redoc")
    page.wait_for_selector("[role=menuitem], .menu-content", timeout=30_000)
    assert "Authorization: Bearer <key>" in page.locator("body").inner_text()
    shot(page, "redoc")
    outside = [u for u in requests if not u.startswith(live.url) and not u.startswith("data:") and not u.startswith("blob:")]
    assert outside == []


def test_pages_read_without_javascript(page_without_js, live):
    page = page_without_js
    browser_sign_in(page, key_for(live, "viewer"))
    assert page.locator("h1").inner_text() == "Dashboard"
    assert "Sample" in page.locator("#catalogues").inner_text()
    assert "Nothing is running." in page.locator("#running").inner_text()
