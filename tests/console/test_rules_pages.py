"""Rules pages and the draft editor: the API's rule_* services behind forms; the audit trail
names the same actor for the same key whether the action came from the console or the API."""
from __future__ import annotations

import html as htmllib
import re

import pytest

from tests.conftest import H100

from .conftest import csrf_of, new_key, sign_in

H20 = {"name": "H20", "vendor": "NVIDIA", "family": "H20", "datacenter": True,
       "throughput": [{"format": "fp16", "dense_tops": 148}], "die_area_mm2": 814}
OVERLAY = {"op": "add_overlay", "id": "console.overlay.h20", "products": "H20", "title": "H20 letter",
           "citation": "BIS is-informed letter", "effective_from": "2025-04-09", "destinations": "MY",
           "requirement": "license_required"}


def _text(response) -> str:
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))))


def _errors(response) -> dict[str, str]:
    return {k: htmllib.unescape(v) for k, v in re.findall(r'id="([^"]+)-error" role="alert">([^<]+)<',
                                                          response.get_data(as_text=True))}


@pytest.fixture
def admin(app, auditor_headers):
    """An admin console session, with a catalogue holding an H20 and an H100 watched for CN, DE and MY."""
    client = app.test_client()
    cat = client.post("/api/v1/catalogues", json={"name": "Chips", "destinations": ["CN", "DE", "MY"]},
                      headers=auditor_headers).get_json()
    for sku, spec in (("H20", H20), ("H100", H100)):
        assert client.put(f"/api/v1/catalogues/{cat['id']}/products/{sku}", json=spec,
                          headers=auditor_headers).status_code == 201
    key = new_key(app, "admin", "Ada")
    sign_in(client, key)
    client.catalogue_id, client.key = cat["id"], key
    return client


def _draft(client) -> str:
    page = client.get("/rules/drafts")
    response = client.post("/rules/drafts", data={"csrf_token": csrf_of(page), "title": "H20", "base_version": "1"})
    assert response.status_code == 302
    return response.headers["Location"]


def _post(client, url, data):
    token = csrf_of(client.get("/rules/drafts"))
    return client.post(url, data={**data, "csrf_token": token})


def test_draft_overlay_preview_publish_feed_rollback(app, admin):
    draft = _draft(admin)
    response = _post(admin, draft + "/edit", OVERLAY)
    assert response.status_code == 302
    page = _text(admin.get(draft))
    assert "Valid:" in page and "+ rule console.overlay.h20" in page
    preview = _post(admin, draft + "/preview", {"as_of": "2025-05-01"})
    text = _text(preview)
    assert "1 of 2 products change" in text
    assert "MY: not listed · no license required → not listed · license required" in text
    assert re.search(r"H20 MY [^>]*no license required [^>]*license required console.overlay.h20", text)
    published = _post(admin, draft + "/publish", {"reason": "H20 letter", "as_of": "2025-05-01", "confirm": "true"})
    assert published.status_code == 302 and "/rules/versions/2" in published.headers["Location"]
    from compliance.tasks import wait_for_embedded_jobs

    wait_for_embedded_jobs(app, timeout=60)
    assert "Published version 2" in _text(admin.get(published.headers["Location"]))
    feed = _text(admin.get("/changes?destination=MY"))
    assert "1 changes" in feed and "H20 MY" in feed and "console.overlay.h20" in feed
    assert "0 changes" in _text(admin.get("/changes?destination=CN"))
    csv = admin.get("/changes/export.csv?destination=MY").get_data(as_text=True).splitlines()
    assert len(csv) == 2 and ",H20,MY," in csv[1]
    rolled = _post(admin, "/rules/versions/1/rollback", {"reason": "undo", "confirm": "true"})
    assert rolled.status_code == 302 and "/rules/versions/3" in rolled.headers["Location"]
    wait_for_embedded_jobs(app, timeout=60)
    assert "2 changes" in _text(admin.get("/changes?destination=MY"))
    diff = _text(admin.get("/rules/diff?from=1&to=2"))
    assert "Rules added console.overlay.h20" in diff


def test_edit_errors_are_named_next_to_their_fields(admin):
    draft = _draft(admin)
    response = _post(admin, draft + "/edit", {**OVERLAY, "id": "", "effective_from": "04/09/2025"})
    assert response.status_code == 422
    errors = _errors(response)
    assert errors["id"] == "required" and errors["effective_from"] == "not a date (YYYY-MM-DD): '04/09/2025'"
    bad_json = _post(admin, draft + "/edit", {"op": "json", "ops": "[{"})
    assert "not valid JSON" in _text(bad_json)


def test_publish_after_someone_else_is_a_clear_409(admin):
    first, second = _draft(admin), _draft(admin)
    _post(admin, first + "/edit", OVERLAY)
    _post(admin, second + "/edit", {**OVERLAY, "id": "console.overlay.h20b"})
    assert _post(admin, first + "/publish", {"reason": "first", "confirm": "true"}).status_code == 302
    response = _post(admin, second + "/publish", {"reason": "second", "confirm": "true"})
    assert response.status_code == 409
    assert "Someone else published first." in _text(response) and "start a new draft from version 2" in _text(response)
    assert "published as version 2" in _text(admin.get(first))
    assert 'id="published-as"' not in admin.get(second).get_data(as_text=True)


def test_storm_guard_asks_for_confirmation(admin):
    draft = _draft(admin)
    _post(admin, draft + "/edit", {**OVERLAY, "products": "H20, H100"})  # both products: 100% > 20%
    response = _post(admin, draft + "/publish", {"reason": "wide"})
    assert response.status_code == 428
    assert "Storm guard." in _text(response) and _errors(response)["confirm"] == "tick to confirm this publish"
    assert _post(admin, draft + "/publish", {"reason": "wide", "confirm": "true"}).status_code == 302


def test_same_actor_in_the_audit_trail_from_console_and_api(app, admin):
    _draft(admin)
    response = admin.post("/api/v1/rules/drafts", json={"title": "api"}, headers={"Authorization": f"Bearer {admin.key}"})
    assert response.status_code == 201
    trail = admin.get("/api/v1/rules/audit-trail?action=rules.draft.create",
                      headers={"Authorization": f"Bearer {admin.key}"}).get_json()["items"]
    actors = {e["actor"] for e in trail}
    assert actors == {f"Ada ({admin.key[:12]}…)"} and len(trail) == 2
    assert f"Ada ({admin.key[:12]}…)" in _text(admin.get("/rules/activity"))


@pytest.mark.parametrize("path", ["/rules/drafts", "/admin/keys", "/admin/webhooks"])
def test_a_viewer_cannot_reach_admin_pages(signed_in, path):
    response = signed_in("viewer").get(path)
    assert response.status_code == 403
    assert "this needs the admin role; your key has viewer" in response.get_data(as_text=True)


def test_an_auditor_cannot_post_to_admin_actions(app, signed_in):
    client = signed_in("auditor")
    token = csrf_of(client.get("/"))
    assert client.post("/rules/drafts", data={"csrf_token": token, "title": "x"}).status_code == 403
    assert client.post("/admin/keys", data={"csrf_token": token, "name": "x", "role": "admin"}).status_code == 403


def test_keys_page_creates_a_key_shown_once_with_the_admin_as_actor(app, admin):
    response = _post(admin, "/admin/keys", {"name": "new viewer", "role": "viewer"})
    key = re.search(r"shown this once:\s*<code>(cck_[^<]+)</code>", response.get_data(as_text=True)).group(1)
    fresh = app.test_client()
    assert sign_in(fresh, key).status_code == 302
    assert key not in admin.get("/admin/keys").get_data(as_text=True)
    bad = _post(admin, "/admin/keys", {"name": "", "role": "root"})
    assert bad.status_code == 422 and _errors(bad)["name"] == "Length must be between 1 and 200."


def test_overlay_by_model_family_vendor_aliases_and_family_forms(admin):
    """Letters name model families (canonical vendor + family), not free text: the overlay form takes family
    ids, and the vendor alias and family forms edit what they match on; bad values are named at the field."""
    draft = _draft(admin)
    page = admin.get(draft).get_data(as_text=True)
    assert '<option value="nvidia/h20">' in page  # the draft's known families are offered
    bad = _post(admin, draft + "/edit", {**OVERLAY, "products": "", "families": "h20"})
    assert bad.status_code == 422 and "model family ids" in _errors(bad)["families"]
    ok = _post(admin, draft + "/edit", {**OVERLAY, "id": "console.overlay.h20-family", "products": "",
                                        "families": "nvidia/h20"})
    assert ok.status_code == 302
    assert _post(admin, draft + "/edit", {"op": "set_vendor", "vendor": "nvidia", "name": "NVIDIA",
                                          "aliases": "NVIDIA, NVIDIA Corporation, Nvidia Corp."}).status_code == 302
    bad_vendor = _post(admin, draft + "/edit", {"op": "set_vendor", "vendor": "Not An Id", "aliases": "x"})
    assert bad_vendor.status_code == 422 and "canonical vendor id" in _errors(bad_vendor)["vendor"]
    bad_family = _post(admin, draft + "/edit", {"op": "set_family", "family.name": "H30"})
    assert bad_family.status_code == 422 and "vendor/model" in _errors(bad_family)["family.id"]
    assert 'value="H30"' in bad_family.get_data(as_text=True)  # what was typed stays in the form
    text = _text(_post(admin, draft + "/preview", {"as_of": "2025-05-01"}))
    assert re.search(r"H20 MY [^>]*no license required [^>]*license required console.overlay.h20-family", text)
    assert "Valid:" in _text(admin.get(draft))
