"""Webhooks in embedded mode (no broker): registration, validation, a retried signed delivery, and the
delivery log. The real-worker retry path is in tests/integration/test_reevaluation_e2e.py."""
from __future__ import annotations

import pytest

from compliance.services.webhooks import SIGNATURE_HEADER, verify
from tests.integration.conftest import wait_until
from tests.rulehelpers import Receiver

SECRET = "embedded-secret-0123456789abcdef"


def test_embedded_delivery_is_retried_off_the_jobs_thread_and_logged(app, admin_headers, viewer_headers):
    client = app.test_client()
    hook = Receiver(codes=[502])
    try:
        sub = client.post("/api/v1/webhooks", json={"url": hook.url, "secret": SECRET}, headers=admin_headers)
        assert sub.status_code == 201 and sub.json["secret"] == SECRET
        listed = client.get("/api/v1/webhooks", headers=admin_headers)
        assert SECRET not in listed.get_data(as_text=True)
        assert client.post("/api/v1/webhooks", json={"url": "http://x"}, headers=viewer_headers).status_code == 403
        assert client.post(f"/api/v1/webhooks/{sub.json['id']}/ping", headers=admin_headers).status_code == 202

        def delivered():
            items = client.get(f"/api/v1/webhooks/{sub.json['id']}/deliveries", headers=admin_headers).json["items"]
            return items[0] if items and items[0]["status"] == "delivered" else None

        d = wait_until(delivered, timeout=20, message="the retried delivery")
        assert d["attempts"] == 2 and [a["status_code"] for a in d["log"]] == [502, 200]
        assert all(verify(SECRET, body, h[SIGNATURE_HEADER]) for h, body in hook.requests)
    finally:
        hook.close()


def test_bad_webhook_registrations_name_the_field(app, admin_headers):
    client = app.test_client()
    for body, field in (({"url": "ftp://example.com/x"}, "url"), ({"url": "http://example.com/x", "secret": "short"}, "secret"),
                        ({"url": "http://example.com/x", "events": ["nope"]}, "events"), ({}, "url")):
        r = client.post("/api/v1/webhooks", json=body, headers=admin_headers)
        assert r.status_code == 422 and field in r.json["message"] + str(r.json.get("errors")), (body, r.json)
    assert client.get("/api/v1/webhooks/99/deliveries", headers=admin_headers).status_code == 404


@pytest.mark.parametrize("url", ["http://user:hunter2@127.0.0.1:9/hook", "https://token@example.com/hook"])
def test_a_webhook_url_with_credentials_is_refused_so_they_never_reach_listings_or_the_audit_trail(
        app, admin_headers, url):
    client = app.test_client()
    r = client.post("/api/v1/webhooks", json={"url": url, "secret": "s" * 20}, headers=admin_headers)
    assert r.status_code == 422 and "url" in r.get_json()["errors"], r.get_json()
    assert "hunter2" not in client.get("/api/v1/webhooks", headers=admin_headers).get_data(as_text=True)
    assert "hunter2" not in client.get("/api/v1/rules/audit-trail", headers=admin_headers).get_data(as_text=True)


def test_a_created_webhook_is_at_its_location_without_its_secret(app, admin_headers, viewer_headers):
    client = app.test_client()
    r = client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["audit.completed"]},
                    headers=admin_headers)
    assert r.status_code == 201 and r.json["secret"].startswith("whsec_")
    assert r.headers["Location"] == f"/api/v1/webhooks/{r.json['id']}"
    one = client.get(r.headers["Location"], headers=admin_headers)
    assert one.status_code == 200 and one.json == {k: v for k, v in r.json.items() if k != "secret"}
    assert client.get(r.headers["Location"], headers=viewer_headers).status_code == 403
    assert client.get("/api/v1/webhooks/999", headers=admin_headers).status_code == 404
    assert client.delete(r.headers["Location"], headers=admin_headers).json["active"] is False
    assert client.get(r.headers["Location"], headers=admin_headers).json["active"] is False
