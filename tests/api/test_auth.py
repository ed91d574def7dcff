"""API keys: 401 without a key or with an unknown/revoked one; a viewer may classify."""
from __future__ import annotations

import pytest

from compliance.auth import create_api_key, revoke_api_key
from tests.conftest import H20

BODY = {"product": H20}


@pytest.mark.parametrize("path", ["/api/v1/classify", "/api/v1/classify/batch"])
def test_classify_without_a_key_is_401(client, path):
    r = client.post(path, json={"products": [H20]} if path.endswith("batch") else BODY)
    assert r.status_code == 401
    assert "API key is required" in r.get_json()["message"]


@pytest.mark.parametrize("path", ["/api/v1/rules", "/api/v1/rules/vocabulary", "/api/v1/decisions/1"])
def test_reads_without_a_key_are_401(client, path):
    assert client.get(path).status_code == 401


def test_an_unknown_key_is_401(client):
    r = client.post("/api/v1/classify", json=BODY, headers={"Authorization": "Bearer cck_not-a-real-key"})
    assert r.status_code == 401
    assert "unknown or revoked" in r.get_json()["message"]


def test_a_revoked_key_is_401(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    key, plain = create_api_key(db, "soon revoked", "viewer")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {plain}"}
    assert client.post("/api/v1/classify", json=BODY, headers=headers).status_code == 200
    revoke_api_key(db, key.id)
    r = client.post("/api/v1/classify", json=BODY, headers=headers)
    assert r.status_code == 401 and "unknown or revoked" in r.get_json()["message"]


def test_a_viewer_can_classify_with_either_header(client, viewer_headers):
    assert client.post("/api/v1/classify", json=BODY, headers=viewer_headers).status_code == 200
    plain = viewer_headers["Authorization"].split(" ", 1)[1]
    assert client.post("/api/v1/classify", json=BODY, headers={"X-API-Key": plain}).status_code == 200


def test_auth_disabled_mode_needs_no_key(make_app):
    app = make_app(AUTH_MODE="disabled")
    assert app.test_client().post("/api/v1/classify", json=BODY).status_code == 200
