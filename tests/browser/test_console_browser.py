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


def test_classify_explains_and_names_bad_fields(page, live):
    browser_sign_in(page, key_for(live, "viewer"))
    page.click("nav >> text=Classify")
    page.fill("[name='product.name']", "H20")
    page.fill("[name='product.vendor']", "NVIDIA")
    page.select_option("[name='product.datacenter']", "true")
    page.select_option("[name='product.throughput.0.format']", "fp16")
    page.fill("[name='product.throughput.0.tops']", "148")
    page.fill("[name='product.die_area_mm2']", "814")
    page.fill("[name='as_of']", "2025-05-01")
    page.fill("[name='destinations']", "CN, DE")
    page.click("button:has-text('Classify')")
    assert "Not in 3A090/4A090" in page.locator("#result").inner_text()
    assert "TPP may rise by less than 2,432 before 3A090.a.1" in page.locator("#what-it-would-take").inner_text()
    assert "D:5" in page.locator("#licences").inner_text()
    shot(page, "classify")
    page.fill("[name='product.die_area_mm2']", "-3")
    page.click("button:has-text('Classify')")
    assert page.locator("[id='product.die_area_mm2-error']").inner_text() == "must be greater than 0"
    assert page.locator("[name='product.die_area_mm2']").get_attribute("aria-invalid") == "true"


def test_upload_with_a_bad_row_then_audit_to_the_end(page, live, tmp_path):
    browser_sign_in(page, key_for(live, "auditor", "Audrey"))
    page.click("nav >> text=Catalogues")
    page.fill("#name", "Browser catalogue")
    page.fill("#destinations", "CN, AE, DE")
    page.click("button:has-text('Create')")
    assert page.locator("h1").inner_text() == "Browser catalogue"
    csv = tmp_path / "chips.csv"
    csv.write_text("sku,name,vendor,datacenter,throughput,die_area_mm2\n"
                   "H100,H100 SXM5,NVIDIA,true,fp8:1979,814\n"
                   "BAD,Broken chip,NVIDIA,maybe,fp8:10,100\n"
                   "L4,L4,NVIDIA,true,fp8:242,294\n")
    page.set_input_files("#file", str(csv))
    page.click("button:has-text('Upload')")
    report = page.locator("#import-report").inner_text()
    assert "3 rows read, 2 imported" in report and "1 rejected" in report
    assert "datacenter" in page.locator("#row-errors").inner_text() \
        and page.locator("#row-errors td").first.inner_text() == "2"  # the second data row
    assert page.locator("#product-table tbody tr").count() == 2
    assert page.locator("#chart circle.point").count() == 2
    shot(page, "catalogue")
    page.fill("#as_of", "2025-05-01")
    page.click("button:has-text('Start an audit')")
    page.wait_for_selector("[data-status=done]", timeout=60_000)  # polled until it finishes
    page.reload()
    assert "4 rows" in page.locator("#results").inner_text() or "6 rows" in page.locator("#results").inner_text()
    with page.expect_download() as download:
        page.click("text=Download CSV")
    assert download.value.suggested_filename.endswith(".csv")
    shot(page, "audit")
    page.click("#result-rows >> text=H100")
    assert "Standing over time" in page.locator("#timeline").inner_text()
    assert page.locator("#timeline svg rect").count() >= 3
    shot(page, "product")


def test_a_viewer_cannot_upload_or_start_audits(page, live):
    browser_sign_in(page, key_for(live, "viewer"))
    page.click("nav >> text=Catalogues")
    assert page.locator("#new-catalogue").count() == 0
    page.click("#catalogue-list a")
    assert page.locator("#upload").count() == 0
    assert page.locator("text=Start an audit").count() == 0
