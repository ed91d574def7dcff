"""The console's draft editor carries the ETag of the page it showed (a hidden field in every edit, publish and
discard form): when someone else changed the draft since, the form is refused with a clear message and a link
to reload, never applied over their change."""
from __future__ import annotations

import html as htmllib
import re

import pytest

from .conftest import CSRF, csrf_of, new_key, sign_in

ETAG_FIELD = re.compile(r'<input type="hidden" name="etag" value="([^"]*)">')
OVERLAY = {"op": "add_overlay", "id": "console.overlay.h20", "products": "H20", "title": "H20 letter",
           "citation": "BIS is-informed letter", "effective_from": "2025-04-09", "destinations": "MY",
           "requirement": "license_required"}


@pytest.fixture
def admin(app):
    client = app.test_client()
    client.key = new_key(app, "admin", "Ada")
    sign_in(client, client.key)
    return client


def _page(client, url):
    """The draft page: its CSRF token and the ETag of every form that writes (all the same)."""
    html = client.get(url).get_data(as_text=True)
    etags = {htmllib.unescape(v) for v in ETAG_FIELD.findall(html)}
    assert len(etags) == 1 and len(ETAG_FIELD.findall(html)) >= 9, etags  # 8 edit forms, publish, discard
    return CSRF.search(html).group(1), etags.pop()


def _draft(client) -> str:
    response = client.post("/rules/drafts", data={"csrf_token": csrf_of(client.get("/rules/drafts")), "title": "t"})
    assert response.status_code == 302
    return response.headers["Location"]


def _someone_else_edits(client, url: str) -> str:
    """Bob edits the draft through the API; returns the draft's new ETag."""
    draft_id = url.rstrip("/").rsplit("/", 1)[1]
    response = client.patch(f"/api/v1/rules/drafts/{draft_id}", headers={"Authorization": f"Bearer {client.bob}"},
                            json={"ops": [{"op": "add_overlay", **{k: v for k, v in OVERLAY.items() if k != "op"},
                                           "id": "bob.overlay", "products": ["H20"], "destinations": ["MY"]}]})
    assert response.status_code == 200, response.get_json()
    return response.headers["ETag"]


def _text(response) -> str:
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))))


@pytest.mark.parametrize("action", ["edit", "publish", "discard"])
def test_a_form_from_before_someone_elses_change_is_refused_with_a_reload_link(app, admin, action):
    admin.bob = new_key(app, "admin", "Bob")
    url = _draft(admin)
    csrf, opened = _page(admin, url)
    current = _someone_else_edits(admin, url)
    assert current != opened
    data = {"edit": OVERLAY, "publish": {"reason": "mine", "confirm": "true"}, "discard": {}}[action]
    response = admin.post(f"{url}/{action}", data={**data, "csrf_token": csrf, "etag": opened})
    assert response.status_code == 412
    text = _text(response)
    assert "This draft was changed by someone else since you opened it." in text and "Nothing was applied" in text
    body = response.get_data(as_text=True)
    assert re.search(rf'<a href="{re.escape(url)}" id="reload">Reload the draft</a>', body)
    after = admin.get(f"/api/v1/rules/drafts/{url.rsplit('/', 1)[1]}", headers={"Authorization": f"Bearer {admin.key}"})
    rules = [r["id"] for p in after.get_json()["content"]["packs"] for r in p.get("rules") or []]
    assert after.get_json()["status"] == "open" and after.headers["ETag"] == current
    assert "bob.overlay" in rules and "console.overlay.h20" not in rules
    assert admin.get("/api/v1/rules/versions", headers={"Authorization": f"Bearer {admin.key}"}).get_json()["items"][0][
        "number"] == 1
    # The refused page shows the draft as it is now; its forms carry the current ETag, and then go through.
    assert {htmllib.unescape(v) for v in ETAG_FIELD.findall(body)} == {current}
    csrf, etag = _page(admin, url)
    assert etag == current
    again = admin.post(f"{url}/{action}", data={**data, "csrf_token": csrf, "etag": etag})
    assert again.status_code == 302, _text(again)


def test_a_form_without_an_etag_is_428_when_the_setting_requires_one(make_app):
    app = make_app(DRAFT_IF_MATCH="required")
    client = app.test_client()
    sign_in(client, new_key(app, "admin", "Ada"))
    url = _draft(client)
    csrf, etag = _page(client, url)
    response = client.post(f"{url}/edit", data={**OVERLAY, "csrf_token": csrf})
    assert response.status_code == 428 and "does not say which version of the draft" in _text(response)
    assert client.post(f"{url}/edit", data={**OVERLAY, "csrf_token": csrf, "etag": etag}).status_code == 302
