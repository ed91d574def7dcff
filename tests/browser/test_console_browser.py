"""End to end in a real Chromium: sign in, read the dashboard, the API docs render offline, sign out;
pages read with JavaScript off."""
from __future__ import annotations

from .conftest import browser_sign_in, in_both_modes, key_for, shot


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
    shot(page, "swagger-ui", full_page=False)
    page.goto("/api/v1/redoc")
    page.wait_for_selector("[role=menuitem], .menu-content", timeout=30_000)
    assert "Authorization: Bearer <key>" in page.locator("body").inner_text()
    shot(page, "redoc", full_page=False)
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


@in_both_modes
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


def test_chart_date_moves_the_threshold_lines(page, live):
    browser_sign_in(page, key_for(live, "viewer"))
    page.click("nav >> text=Catalogues")
    page.click("#catalogue-list a")
    assert page.locator("#chart circle.point").count() > 10
    today = {(g.get_attribute("data-metric"), g.get_attribute("data-value")) for g in page.locator("#chart g.threshold").all()}
    assert ("performance_density", "5.92") in today
    with page.expect_navigation(url="**chart_as_of=2023-01-01**"):
        page.fill("#chart_as_of", "2023-01-01")  # its change event: console.js submits the form
    page.wait_for_load_state()
    then = {(g.get_attribute("data-metric"), g.get_attribute("data-value")) for g in page.locator("#chart g.threshold").all()}
    assert then == {("tpp", "4800.0")}  # October 2022: TPP 4800 (and I/O bandwidth, not on this chart)
    title = page.locator("#chart circle.point title").first.text_content()
    assert "TPP" in title and "PD" in title


@in_both_modes
def test_draft_preview_publish_feed_rollback_sign_out(page, live):
    browser_sign_in(page, key_for(live, "admin", "Ada"))
    page.click("nav >> text=Drafts")
    page.fill("#title", "H20 to Mongolia")
    page.click("button:has-text('Create draft')")
    form = page.locator("#op-add_overlay")
    form.locator("[name=id]").fill("browser.overlay.h20")
    form.locator("[name=products]").fill("H20")
    form.locator("[name=title]").fill("H20 letter (test)")
    form.locator("[name=citation]").fill("test letter")
    form.locator("[name=effective_from]").fill("2025-04-09")
    form.locator("[name=destinations]").fill("MN")
    form.locator("button").click()
    assert "Valid:" in page.locator("#validation").inner_text()
    page.fill("#preview [name=as_of]", "2025-05-01")
    page.fill("#preview [name=destinations]", "MN")
    page.click("button:has-text('Preview the impact')")
    result = page.locator("#preview-result").inner_text()
    assert "products change" in result and "MN:" in result
    assert page.locator("#preview-result svg.bars rect").count() >= 1
    shot(page, "draft-preview")
    page.fill("#publish [name=reason]", "H20 letter")
    page.fill("#publish [name=as_of]", "2025-05-01")
    page.check("#publish [name=confirm]")
    page.click("button:has-text('Publish as version 2')")
    assert "Published version 2" in page.locator("#notice").inner_text()
    page.click("nav >> text=Changes")
    page.fill("#destination", "MN")
    page.click("button:has-text('Filter')")
    for _ in range(30):  # the re-evaluation runs in the background
        if page.locator("#change-feed td", has_text="browser.overlay.h20").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.locator("#change-feed td", has_text="browser.overlay.h20").count() >= 1
    shot(page, "changes")
    page.goto("/rules/versions/1")
    page.fill("#rollback [name=reason]", "undo the test letter")
    page.check("#rollback [name=confirm]")
    page.click("button:has-text('Roll back to v1')")
    assert "Published version 3" in page.locator("#notice").inner_text()
    page.click("text=Sign out")
    page.wait_for_url("**/sign-in")


def test_a_viewer_is_refused_admin_pages(page, live):
    browser_sign_in(page, key_for(live, "viewer"))
    assert page.locator("nav >> text=Drafts").count() == 0
    response = page.goto("/rules/drafts")
    assert response.status == 403
    assert "this needs the admin role" in page.locator("body").inner_text()


def test_more_pages_read_without_javascript(page_without_js, live):
    page = page_without_js
    browser_sign_in(page, key_for(live, "admin"))
    for path, text in (("/rules", "Published versions"), ("/changes", "changes"), ("/catalogues", "Sample"),
                       ("/rules/drafts", "New draft"), ("/admin/keys", "Keys")):
        page.goto(path)
        assert text in page.locator("main").inner_text(), path
    page.goto("/catalogues")
    page.click("#catalogue-list a")
    assert page.locator("#chart circle.point").count() > 10


def test_record_a_determination_then_find_it_needing_review(page, live):
    """An officer records a determination that disagrees with the engine on the sample catalogue's first
    product; the page shows both answers and why it needs review, and the catalogue's list finds it."""
    browser_sign_in(page, key_for(live, "auditor", "Officer Eve"))
    page.click("nav >> text=Catalogues")
    page.click("#catalogue-list a")
    page.click("#determinations-link")
    assert "need review" in page.locator("#summary").inner_text()
    page.locator("#standings a").first.click()
    page.click("#record-determination summary")
    page.fill("#eccn", "not an eccn")
    page.click("#record-determination button[type=submit]")
    assert page.locator("#eccn-error").is_visible()  # the API's message, next to the field
    page.fill("#eccn", "EAR99")
    page.fill("[id='basis.text']", "the vendor's letter says this is a consumer part")
    page.click("#record-determination button[type=submit]")
    assert "Officer Eve" in page.locator("#computed-vs-determined").inner_text()
    assert "determined EAR99" in page.locator("#review-reasons").inner_text()
    shot(page, "determination")
    page.goto(page.url.split("/products/")[0] + "/determinations?state=needs_review")
    assert page.locator("#standings tbody tr").count() >= 1


@in_both_modes
def test_release_a_held_line_with_a_licence_from_the_holds_queue(page, live):
    """An order for the sample catalogue's H100 to CN is held (licence required); another officer finds it in
    the holds queue, opens it, picks the licence that covers it from the dropdown and releases the line."""
    from compliance.services.catalogues import list_catalogues

    app = live.app
    clerk = {"Authorization": f"Bearer {key_for(live, 'auditor', 'Clerk Cleo')}"}
    client = app.test_client()
    cid = list_catalogues(app.extensions["db"])[0].id
    order = client.post("/api/v1/orders", headers=clerk, json={
        "reference": "PO-BROWSER", "date": "2025-05-01", "ship_to": "CN",
        "end_user": {"name": "Blue River Labs", "country": "CN"},
        "lines": [{"sku": "NVIDIA-H100-SXM5-80GB", "catalogue_id": cid, "quantity": 4, "value": 120000}]}).get_json()
    assert order["status"] == "held", order
    licence = client.post("/api/v1/licences", headers=clerk, json={
        "number": "BIS-L-0001", "holder": "Us Inc", "eccns": [order["lines"][0]["classification"]["eccn"]],
        "destinations": ["CN"], "quantity_limit": 10, "valid_from": "2025-01-01", "valid_to": "2099-12-31"}).get_json()
    browser_sign_in(page, key_for(live, "auditor", "Officer Oz"))
    page.click("nav >> text=Holds")
    queue = page.locator("#order-queue")
    assert "licence required" in queue.inner_text()
    queue.locator("a", has_text="PO-BROWSER").click()
    line = order["lines"][0]["id"]
    page.select_option(f"#release-{line}-licence_id", str(licence["id"]))
    shot(page, "order-held")
    page.click(f"#release-{line} button:has-text('Release with licence')")
    assert "Line 1 released." in page.locator("#notice").inner_text()
    assert page.locator(f"#line-{line}").get_attribute("data-status") == "released"
    page.click(f"#line-{line} >> text=BIS-L-0001")
    assert page.locator("#quantity-left").inner_text() == "6"
    assert "PO-BROWSER" in page.locator("#released-lines").inner_text()


def test_order_pages_read_without_javascript(page_without_js, live):
    page = page_without_js
    browser_sign_in(page, key_for(live, "viewer"))
    for label, text in (("Holds", "No order is held."), ("Licences", "No licences match."),
                        ("Lists", "csl")):
        page.click(f"nav >> text={label}")
        assert text in page.locator("main").inner_text(), label
    page.click(".screening-list a")  # the sample snapshot: its delta and entries
    assert "Huawei Technologies Co., Ltd." in page.locator("#snapshot-entries").inner_text()
