"""Webhooks that integrate: Standard Webhooks signatures (checked here by an independent HMAC), generated
whsec_ secrets, absolute links, audit.completed / reevaluation.completed events, redelivery of a failed
delivery with its attempts listed, and backoff with jitter."""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time

import pytest

from compliance.services.webhooks import backoff_seconds, links_for, verify_standard
from compliance.tasks import wait_for_embedded_jobs
from tests.conftest import H100
from tests.integration.conftest import wait_until
from tests.rulehelpers import Receiver


@pytest.fixture
def app(make_app):
    return make_app(WEBHOOK_MAX_ATTEMPTS="2", WEBHOOK_BACKOFF_SECONDS="0.1",
                    PUBLIC_BASE_URL="https://compliance.example.com/")


def _h(headers: dict, name: str) -> str:
    return next(v for k, v in headers.items() if k.lower() == name)


def _independent_check(secret: str, headers: dict, body: bytes) -> bool:
    """Standard Webhooks, written from the specification: key = base64 after whsec_."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{_h(headers, 'webhook-id')}.{_h(headers, 'webhook-timestamp')}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(sig == f"v1,{expected}" for sig in _h(headers, "webhook-signature").split())


def _deliveries(client, headers, sub_id, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return client.get(f"/api/v1/webhooks/{sub_id}/deliveries?{qs}", headers=headers).json["items"]


def test_standard_signature_events_links_and_redelivery(app, client, admin_headers, auditor_headers):
    hook = Receiver(codes=[500, 500])  # the first event fails both attempts
    try:
        sub = client.post("/api/v1/webhooks", json={"url": hook.url, "events": ["audit.completed", "audit.failed"]},
                          headers=admin_headers).json
        secret = sub["secret"]
        assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
        cid = client.post("/api/v1/catalogues", json={"name": "hooks"}, headers=auditor_headers).json["id"]
        client.post(f"/api/v1/catalogues/{cid}/imports", headers=auditor_headers,
                    data={"file": (io.BytesIO(json.dumps({**H100, "sku": "H"}).encode()), "p.jsonl")},
                    content_type="multipart/form-data")
        audit = client.post(f"/api/v1/catalogues/{cid}/audits", json={"destinations": ["CN"]},
                            headers=auditor_headers).json
        wait_for_embedded_jobs(client.application)
        failed = wait_until(lambda: (_deliveries(client, admin_headers, sub["id"], status="failed") or [None])[0],
                            timeout=20, message="the delivery to fail twice")
        assert failed["event"] == "audit.completed" and failed["attempts"] == 2
        assert [a["status_code"] for a in failed["log"]] == [500, 500]
        headers, body = hook.requests[0]
        assert _independent_check(secret, headers, body)
        assert verify_standard(secret, {k.lower(): v for k, v in headers.items()}, body)
        assert not verify_standard(secret, {k.lower(): v for k, v in headers.items()}, body + b" ")
        payload = json.loads(body)
        assert _h(headers, "webhook-id") == payload["id"] == failed["event_id"]
        assert payload["data"]["audit_id"] == audit["id"] and payload["data"]["status"] == "done"
        assert payload["links"]["audit"] == f"https://compliance.example.com/api/v1/audits/{audit['id']}"
        assert payload["links"]["catalogue"] == f"https://compliance.example.com/api/v1/catalogues/{cid}"
        r = client.post(f"/api/v1/webhooks/{sub['id']}/deliveries/{failed['id']}/redeliver", headers=admin_headers)
        assert r.status_code == 202, r.json
        again = wait_until(lambda: next((d for d in _deliveries(client, admin_headers, sub["id"], status="delivered")
                                         if d["id"] == r.json["deliveries"][0]), None),
                           timeout=20, message="the redelivery")
        assert again["event_id"] == failed["event_id"] and again["attempts"] == 1
        assert again["log"][0]["redelivery_of"] == failed["id"]
        headers2, body2 = hook.requests[-1]
        assert _h(headers2, "webhook-id") == payload["id"] and _independent_check(secret, headers2, body2)
        assert client.post(f"/api/v1/webhooks/{sub['id']}/deliveries/999999/redeliver",
                           headers=admin_headers).status_code == 404
        assert client.post(f"/api/v1/webhooks/{sub['id']}/deliveries/{failed['id']}/redeliver",
                           headers=auditor_headers).status_code == 403
        trail = client.get("/api/v1/rules/audit-trail?action=webhook.redeliver", headers=admin_headers).json
        assert trail["items"][0]["detail"]["delivery"] == failed["id"]
    finally:
        hook.close()


def test_a_secret_chosen_by_the_admin_signs_with_its_bytes(app, client, admin_headers):
    hook = Receiver()
    try:
        secret = "my-own-secret-0123456789"
        sub = client.post("/api/v1/webhooks", json={"url": hook.url, "secret": secret}, headers=admin_headers).json
        client.post(f"/api/v1/webhooks/{sub['id']}/ping", headers=admin_headers)
        wait_until(lambda: hook.requests, timeout=20, message="the ping")
        headers, body = hook.requests[0]
        signed = f"{_h(headers, 'webhook-id')}.{_h(headers, 'webhook-timestamp')}.".encode() + body
        mac = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
        assert _h(headers, "webhook-signature") == f"v1,{mac}"
        assert abs(int(_h(headers, "webhook-timestamp")) - time.time()) < 60
    finally:
        hook.close()


def test_stale_timestamps_fail_verification():
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(int(time.time()) - 3600), "webhook-signature": "v1,x"}
    assert not verify_standard("whsec_" + base64.b64encode(b"k" * 32).decode(), headers, b"{}")


def test_backoff_doubles_with_jitter():
    assert backoff_seconds(3, 1.0, jitter=False) == 4.0
    draws = {round(backoff_seconds(3, 1.0), 6) for _ in range(50)}
    assert len(draws) > 10 and all(2.0 <= d <= 4.0 for d in draws)


def test_reevaluation_completed_event_and_links(app, client, admin_headers):
    with app.app_context():
        assert links_for({"run_id": 7}) == {
            "reevaluation": "https://compliance.example.com/api/v1/rules/reevaluations/7",
            "changes": "https://compliance.example.com/api/v1/changes?run_id=7"}
    hook = Receiver()
    try:
        client.post("/api/v1/webhooks", json={"url": hook.url, "events": ["reevaluation.completed"]},
                    headers=admin_headers)
        from compliance.services import rule_drafts, rule_publish, rule_versions

        db = app.extensions["db"]
        with db.session() as s:
            content = rule_versions.current_version(s).content
        rule = next(x for p in content["packs"] for x in p["rules"] if x.get("kind") == "licence")
        draft = rule_drafts.create_draft(db, "tests")["id"]
        rule_drafts.apply_edits(db, draft, [{"op": "end_rule", "rule_id": rule["id"], "effective_to": "2025-01-01"}], "tests")
        with app.app_context():
            rule_publish.publish_draft(app, draft, "tests", "end a rule", confirm=True)
        wait_for_embedded_jobs(client.application)
        wait_until(lambda: hook.requests, timeout=30, message="reevaluation.completed")
        payload = json.loads(hook.requests[0][1])
        assert payload["event"] == "reevaluation.completed" and payload["data"]["rule_version"] == 2
        assert payload["links"]["reevaluation"].startswith("https://compliance.example.com/api/v1/rules/reevaluations/")
    finally:
        hook.close()
