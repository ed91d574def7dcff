"""The dashboard reads the same services as the API; the API docs pages use local assets only."""
from __future__ import annotations

import re

from tests.conftest import H100


def test_dashboard_shows_version_catalogues_running_and_changes(app, signed_in, auditor_headers):
    client = app.test_client()
    api = client.get("/api/v1/health").get_json()
    created = client.post("/api/v1/catalogues", json={"name": "Accelerators", "destinations": ["CN", "DE"]},
                          headers=auditor_headers).get_json()
    client.put(f"/api/v1/catalogues/{created['id']}/products/H100", json=H100, headers=auditor_headers)
    summary = client.get(f"/api/v1/catalogues/{created['id']}", headers=auditor_headers).get_json()
    html = signed_in("viewer").get("/").get_data(as_text=True)
    assert f"Version {api['rule_version']}" in html and api["ruleset_revision"][:12] in html
    assert "Accelerators" in html
    for status, n in summary["by_status"].items():
        assert re.search(rf"st-{status}\">{status.replace('_', ' ')}</span> {n}<", html), (status, n)
    assert "Nothing is running." in html
    assert "No changes recorded yet" in html


def test_running_fragment_is_a_partial(signed_in):
    response = signed_in("viewer").get("/console/running")
    assert response.status_code == 200
    assert "<html" not in response.get_data(as_text=True) and 'data-busy="no"' in response.get_data(as_text=True)


def _external(html: str) -> list[str]:
    return [u for u in re.findall(r'(?:src|href)="([^"]+)"', html) if "//" in u]


def test_api_docs_pages_load_only_local_assets(client):
    for path in ("/api/v1/docs", "/api/v1/redoc"):
        html = client.get(path).get_data(as_text=True)
        assert _external(html) == [], path
        for asset in re.findall(r'(?:src|href)="(/[^"]+)"', html):
            response = client.get(asset)
            assert response.status_code == 200 and len(response.data) > 10_000, asset


def test_console_pages_load_only_local_assets(signed_in):
    client = signed_in("admin")
    html = client.get("/").get_data(as_text=True)
    assert _external(html) == []


def test_spec_intro_keeps_key_placeholders_out_of_html(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    description = spec["info"]["description"]
    # Markdown code spans: the docs pages show <key> literally instead of swallowing it as a tag
    assert "`Authorization: Bearer <key>`" in description and "`X-API-Key: <key>`" in description
    assert "Bearer <key>'" not in description
