"""The OpenAPI spec is the contract: every operation documents its 2xx body and its key requirement."""
from __future__ import annotations

from tests.spec_check import UNDOCUMENTED_2XX

STREAMED = {("get", "/api/v1/audits/{audit_id}/report.csv"), ("get", "/api/v1/audits/{audit_id}/report.json"),
            ("get", "/api/v1/rules/versions/{number}/export")}


def _operations(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    return spec, [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()
                  if m in ("get", "post", "put", "patch", "delete")]


def _documents_a_body(op) -> bool:
    return any(code.startswith("2") and (code == "204" or op["responses"][code].get("content"))
               for code in op["responses"])


def test_every_operation_documents_its_success_body(client):
    _, ops = _operations(client)
    missing = [(m, p) for m, p, op in ops if not _documents_a_body(op) and (m, p) not in UNDOCUMENTED_2XX]
    assert missing == []


def test_the_list_of_undocumented_operations_only_shrinks(client):
    _, ops = _operations(client)
    documented_now = [(m, p) for m, p, op in ops if _documents_a_body(op) and (m, p) in UNDOCUMENTED_2XX]
    assert documented_now == [], "remove these from tests/spec_check.UNDOCUMENTED_2XX"
    assert UNDOCUMENTED_2XX <= {(m, p) for m, p, _ in ops}


def test_streamed_downloads_document_their_media_types(client):
    _, ops = _operations(client)
    media = {(m, p): set(op["responses"]["200"]["content"]) for m, p, op in ops if (m, p) in STREAMED}
    assert media == {("get", "/api/v1/audits/{audit_id}/report.csv"): {"text/csv"},
                     ("get", "/api/v1/audits/{audit_id}/report.json"): {"application/json"},
                     ("get", "/api/v1/rules/versions/{number}/export"): {"application/zip", "application/yaml"}}


def test_every_operation_but_health_requires_the_api_key(client):
    spec, ops = _operations(client)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <key>`"}
    assert schemes["ApiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    default = spec["security"]
    assert default == [{"ApiKey": []}, {"ApiKeyHeader": []}]
    open_ops = [(m, p) for m, p, op in ops if op.get("security", default) == []]
    assert open_ops == [("get", "/api/v1/health")]


def test_a_response_that_breaks_its_schema_is_caught(tmp_path, schema_templates):
    """The spec check itself can fail: a body that contradicts the documented schema is reported."""
    from compliance import create_app
    from compliance.config import Config
    from tests.spec_check import install

    config = Config.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}", "CELERY_BROKER_URL": "",
                              "SAMPLE_CATALOGUE": ""})
    schema_templates.provision(config.DATABASE_URL, config.RULES_DIR)
    app = create_app(config)
    seen: list[str] = []
    install(app, seen)

    @app.before_request
    def wrong_health():
        from flask import request

        if request.path == "/api/v1/health":
            return {"status": 5, "embedded": "yes"}

    app.test_client().get("/api/v1/health")
    app.extensions["db"].dispose()
    assert any("/api/v1/health 200" in m for m in seen), seen


def test_paginated_lists_send_and_document_the_x_pagination_header(client, viewer_headers):
    """One pagination convention: a Page body (items, page, per_page, total, pages) and flask-smorest's
    X-Pagination header with the same numbers, documented on the operation."""
    import json

    spec, ops = _operations(client)
    paged = [(m, p) for m, p, op in ops if "X-Pagination" in op["responses"].get("200", {}).get("headers", {})]
    assert ("get", "/api/v1/changes") in paged
    assert spec["components"]["headers"]["PAGINATION"]["schema"]
    response = client.get("/api/v1/changes?per_page=5&page=2", headers=viewer_headers)
    assert response.status_code == 200
    body, header = response.get_json(), json.loads(response.headers["X-Pagination"])
    assert (body["page"], body["per_page"], body["pages"]) == (2, 5, -(-body["total"] // 5))
    assert header["total"] == body["total"] and header["total_pages"] == body["pages"]
