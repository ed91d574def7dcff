"""Access control across the rule, change-feed, webhook and key endpoints: 401 without a key, 403 with
a role below the one needed, and keys never appear in logs."""
from __future__ import annotations

import logging

import pytest

from tests.rulehelpers import make_scenario_catalogue

# (method, path, body, role needed)
ENDPOINTS = [
    ("get", "/api/v1/rules/versions", None, "viewer"),
    ("get", "/api/v1/rules/versions/1", None, "viewer"),
    ("get", "/api/v1/rules/versions/1/export", None, "viewer"),
    ("get", "/api/v1/rules/diff?from=1&to=1", None, "viewer"),
    ("get", "/api/v1/rules/reevaluations", None, "viewer"),
    ("get", "/api/v1/changes", None, "viewer"),
    ("get", "/api/v1/catalogues/{cat}/diff?from=2023-06-01&to=2024-01-01", None, "viewer"),
    ("get", "/api/v1/catalogues/{cat}/as-of?as_of=2024-01-01", None, "viewer"),
    ("get", "/api/v1/rules/audit-trail", None, "auditor"),
    ("get", "/api/v1/rules/drafts", None, "admin"),
    ("post", "/api/v1/rules/drafts", {}, "admin"),
    ("get", "/api/v1/rules/drafts/{draft}", None, "admin"),
    ("patch", "/api/v1/rules/drafts/{draft}", {"ops": [{"op": "end_rule", "rule_id": "us-2024-12.hbm.3a090c",
                                                         "effective_to": "2030-01-01"}]}, "admin"),
    ("put", "/api/v1/rules/drafts/{draft}", {"content": {}}, "admin"),
    ("post", "/api/v1/rules/drafts/{draft}/validate", None, "admin"),
    ("post", "/api/v1/rules/drafts/{draft}/preview", {"as_of": "2025-01-01"}, "admin"),
    ("post", "/api/v1/rules/drafts/{draft}/publish", {"reason": "x"}, "admin"),
    ("post", "/api/v1/rules/versions/1/rollback", {"reason": "x"}, "admin"),
    ("get", "/api/v1/webhooks", None, "admin"),
    ("post", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/x", "secret": "0123456789abcdef0"}, "admin"),
    ("get", "/api/v1/keys", None, "admin"),
    ("post", "/api/v1/keys", {"name": "n", "role": "viewer"}, "admin"),
]
ROLES = ["viewer", "auditor", "admin"]


@pytest.fixture
def setup(app, headers_for):
    cat = make_scenario_catalogue(app)
    keys = {r: headers_for(app, r) for r in ROLES}
    draft = app.test_client().post("/api/v1/rules/drafts", json={}, headers=keys["admin"]).json["id"]
    return app, keys, {"cat": cat, "draft": draft}


@pytest.mark.parametrize("method,path,body,role", ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
def test_each_endpoint_needs_a_key_and_the_right_role(setup, method, path, body, role):
    app, keys, ids = setup
    client = app.test_client()
    url = path.format(**ids)
    call = getattr(client, method)
    kwargs = {"json": body} if body is not None else {}
    anonymous = call(url, **kwargs)
    assert anonymous.status_code == 401, anonymous.json
    bad = call(url, headers={"Authorization": "Bearer cck_not-a-real-key"}, **kwargs)
    assert bad.status_code == 401
    for r in ROLES[:ROLES.index(role)]:
        denied = call(url, headers=keys[r], **kwargs)
        assert denied.status_code == 403, (r, denied.json)
        assert role in denied.json["message"]
    allowed = call(url, headers=keys[role], **kwargs)
    assert allowed.status_code not in (401, 403, 500), allowed.json


def test_keys_api_creates_a_key_shown_once_lists_without_keys_and_revokes(app, admin_headers, caplog):
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    created = client.post("/api/v1/keys", json={"name": "ci", "role": "auditor"}, headers=admin_headers)
    assert created.status_code == 201
    plain = created.json["key"]
    assert plain.startswith("cck_") and created.json["prefix"] == plain[:12]
    auditor = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/rules/audit-trail", headers=auditor).status_code == 200
    assert client.get("/api/v1/keys", headers=auditor).status_code == 403
    listing = client.get("/api/v1/keys", headers=admin_headers)
    assert plain not in listing.get_data(as_text=True)
    assert all("key" not in k and "key_hash" not in k for k in listing.json["items"])
    assert {"ci", "test admin"} <= {k["name"] for k in listing.json["items"]}
    revoked = client.delete(f"/api/v1/keys/{created.json['id']}", headers=admin_headers)
    assert revoked.status_code == 200 and revoked.json["revoked_at"]
    after = client.get("/api/v1/rules/audit-trail", headers=auditor)
    assert after.status_code == 401 and "revoked" in after.json["message"]
    assert client.post("/api/v1/keys", json={"name": "x", "role": "root"}, headers=admin_headers).status_code == 422
    assert client.delete("/api/v1/keys/999", headers=admin_headers).status_code == 404
    trail = client.get("/api/v1/rules/audit-trail?action=api_key.*", headers=admin_headers).json["items"]
    assert [e["action"] for e in trail[:2]] == ["api_key.revoke", "api_key.create"]
    # Neither the new key nor the admin key reached any log record.
    admin_plain = admin_headers["Authorization"].split()[1]
    assert plain not in caplog.text and admin_plain not in caplog.text
    # The access log did record these calls, naming the caller by key prefix only.
    access = [r.getMessage() for r in caplog.records if r.name == "compliance.access"]
    assert any(plain[:12] in line and "/api/v1/rules/audit-trail" in line for line in access)


def test_keys_never_appear_in_logs_even_on_errors(app, admin_headers, caplog):
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    plain = admin_headers["Authorization"].split()[1]
    d = client.post("/api/v1/rules/drafts", json={}, headers=admin_headers).json["id"]
    client.patch(f"/api/v1/rules/drafts/{d}", json={"ops": [{"op": "nope"}]}, headers=admin_headers)
    client.post(f"/api/v1/rules/drafts/{d}/publish", json={"reason": "x"}, headers=admin_headers)
    client.get("/api/v1/changes?destination=XX", headers=admin_headers)
    client.get("/api/v1/changes", headers={"X-API-Key": plain})
    client.get("/api/v1/changes", headers={"Authorization": f"Bearer {plain}x"})
    assert plain not in caplog.text
    assert any(r.name == "compliance.access" and plain[:12] in r.getMessage() for r in caplog.records)


# Bodies and queries that are invalid, sent without a key or with too low a role: the caller learns
# about the missing key or role first, never about the endpoint's input contract.
INVALID_REQUESTS = [
    ("post", "/api/v1/classify", {}, "viewer"),
    ("post", "/api/v1/classify/batch", {}, "viewer"),
    ("get", "/api/v1/rules?as_of=not-a-date", None, "viewer"),
    ("get", "/api/v1/catalogues/1/products?page=0", None, "viewer"),
    ("put", "/api/v1/catalogues/1/products/X", {}, "auditor"),
    ("post", "/api/v1/catalogues", {}, "auditor"),
    ("post", "/api/v1/catalogues/1/audits", {}, "auditor"),
    ("post", "/api/v1/catalogues/1/imports?format=zz", None, "auditor"),
    ("get", "/api/v1/audits/1/results?page=0", None, "viewer"),
    ("get", "/api/v1/audits/1/report.csv?destination=ZZ", None, "viewer"),
]


@pytest.mark.parametrize("method, path, body, role", INVALID_REQUESTS)
def test_an_invalid_request_without_the_right_key_is_401_or_403_before_any_validation(
        app, headers_for, method, path, body, role):
    client = app.test_client()
    r = getattr(client, method)(path, json=body)
    assert r.status_code == 401, (path, r.get_data(as_text=True)[:200])
    if role != "viewer":
        r = getattr(client, method)(path, json=body, headers=headers_for(app, "viewer"))
        assert r.status_code == 403, (path, r.get_data(as_text=True)[:200])
