"""Operations: /metrics scraped by prometheus_client's own parser; JSON log lines with a request id that
follows the request into the job it starts; API keys never in a log line."""
from __future__ import annotations

import io
import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from compliance.logs import JsonFormatter, RequestIdFilter, redact
from compliance.tasks import wait_for_embedded_jobs
from tests.conftest import H20, H100


def _scrape(client, headers=None) -> dict[str, list]:
    r = client.get("/metrics", headers=headers or {})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.mimetype == "text/plain" and "version=" in r.headers["Content-Type"]
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        for s in family.samples:
            samples.setdefault(s.name, []).append(s)
    return samples


def _value(samples, name, **labels) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_count_requests_classifications_and_jobs(client, auditor_headers, viewer_headers):
    before = _scrape(client)
    body = {"product": H100, "as_of": "2025-05-01", "destinations": ["CN"]}
    assert client.post("/api/v1/classify", json=body, headers=viewer_headers).status_code == 200
    batch = {"products": [H100, H20], "as_of": "2025-05-01"}
    assert client.post("/api/v1/classify/batch", json=batch, headers=viewer_headers).status_code == 200
    assert client.get("/api/v1/audits/999", headers=viewer_headers).status_code == 404
    cid = client.post("/api/v1/catalogues", json={"name": "m"}, headers=auditor_headers).json["id"]
    data = "\n".join(json.dumps({**p, "sku": p["name"]}) for p in (H100, H20)).encode()
    client.post(f"/api/v1/catalogues/{cid}/imports", headers=auditor_headers,
                data={"file": (io.BytesIO(data), "p.jsonl")}, content_type="multipart/form-data")
    assert client.post(f"/api/v1/catalogues/{cid}/audits", json={"as_of": "2025-06-01", "destinations": ["CN"]},
                       headers=auditor_headers).status_code == 202
    wait_for_embedded_jobs(client.application)
    after = _scrape(client)
    route = "/api/v1/classify"
    assert _value(after, "compliance_http_requests_total", route=route, status="200", method="POST") \
        - _value(before, "compliance_http_requests_total", route=route, status="200", method="POST") == 1
    assert _value(after, "compliance_http_requests_total", route="/api/v1/audits/<int:audit_id>", status="404") >= 1
    assert _value(after, "compliance_http_request_duration_seconds_count", route=route) >= 1
    assert _value(after, "compliance_classifications_total") - _value(before, "compliance_classifications_total") >= 3
    assert _value(after, "compliance_audits", status="done") >= 1
    assert _value(after, "compliance_audit_chunks", status="done") >= 1
    assert _value(after, "compliance_audit_duration_seconds_count") >= 1
    assert _value(after, "compliance_audited_products") >= 2
    assert _value(after, "compliance_celery_tasks_total", outcome="success") >= 1
    assert not any(k.startswith("compliance_http_requests") and s.labels.get("route") == "/metrics"
                   for k, v in after.items() for s in v)


def test_metrics_token(make_app):
    app = make_app(METRICS_TOKEN="s3cret-token")
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert "compliance_audit_duration_seconds_count" in _scrape(client, {"Authorization": "Bearer s3cret-token"})


def test_request_id_is_echoed_and_follows_the_request_into_its_job(client, auditor_headers, caplog):
    caplog.set_level(logging.DEBUG)
    cid = client.post("/api/v1/catalogues", json={"name": "rid"}, headers=auditor_headers).json["id"]
    client.post(f"/api/v1/catalogues/{cid}/imports", headers=auditor_headers,
                data={"file": (io.BytesIO(json.dumps({**H100, "sku": "H"}).encode()), "p.jsonl")},
                content_type="multipart/form-data")
    r = client.post(f"/api/v1/catalogues/{cid}/audits", json={"destinations": ["CN"]},
                    headers={**auditor_headers, "X-Request-ID": "req-abc.123"})
    assert r.status_code == 202 and r.headers["X-Request-ID"] == "req-abc.123"
    wait_for_embedded_jobs(client.application)
    task_lines = [rec for rec in caplog.records if rec.name == "compliance.tasks" and "started" in rec.getMessage()]
    assert task_lines and all(getattr(rec, "request_id", None) == "req-abc.123" for rec in task_lines), \
        [(rec.getMessage(), getattr(rec, "request_id", None)) for rec in task_lines]
    fresh = client.get("/api/v1/health", headers={"X-Request-ID": "bad id with spaces"})
    assert fresh.headers["X-Request-ID"] != "bad id with spaces" and len(fresh.headers["X-Request-ID"]) == 32


def test_json_lines_carry_the_request_id_and_never_a_key(client, admin_headers):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        created = client.post("/api/v1/keys", json={"name": "ops", "role": "viewer"},
                              headers={**admin_headers, "X-Request-ID": "rid-7"}).json
        logging.getLogger("compliance.test").warning("caller sent Authorization: Bearer %s and %s",
                                                     created["key"], admin_headers["Authorization"])
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    access = [x for x in lines if x["logger"] == "compliance.http" and x.get("route") == "/api/v1/keys"]
    assert access and access[0]["request_id"] == "rid-7" and access[0]["status"] == 201
    assert {"ts", "level", "message", "duration_ms", "method"} <= set(access[0])
    text = stream.getvalue()
    secret = created["key"]
    assert secret not in text and admin_headers["Authorization"].split()[1] not in text
    assert "[redacted]" in text


@pytest.mark.parametrize("text,expected", [
    ("key cck_abcDEF123_-xyz used", "key cck_[redacted] used"),
    ("Authorization: Bearer abcdefgh.ijk", "Authorization: Bearer [redacted]"),
    ("nothing secret here", "nothing secret here"),
])
def test_redaction(text, expected):
    assert redact(text) == expected


def test_log_format_json_is_a_setting(make_app):
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        make_app(LOG_FORMAT="xml")


@pytest.mark.parametrize("as_of", ["2022-10-06", "2099-01-01"])
def test_as_of_outside_the_supported_range_is_a_422_naming_it(client, viewer_headers, as_of):
    r = client.post("/api/v1/classify", json={"product": H100, "as_of": as_of}, headers=viewer_headers)
    assert r.status_code == 422 and "as_of" in str(r.json["errors"]) and "2022-10-07" in str(r.json["errors"])
    ok = client.post("/api/v1/classify", json={"product": H100, "as_of": "2022-10-07"}, headers=viewer_headers)
    assert ok.status_code == 200
