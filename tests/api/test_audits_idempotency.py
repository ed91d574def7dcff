"""Issue 12 item 6: Idempotency-Key on POST /catalogues/{id}/audits (SQLite and PostgreSQL): a retry with
the same key and body answers with the first audit and creates nothing; the same key with another body is
422 naming the header; concurrent first requests with one key make one audit."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from compliance.models import Audit, IdempotencyKey
from compliance.tasks import wait_for_embedded_jobs
from tests.api.test_audits_api import catalogue  # noqa: F401  (fixture: the audit API tests' catalogue)


@pytest.fixture
def app(make_app, db_url):
    return make_app(DATABASE_URL=db_url, AUDIT_CHUNK_SIZE="3")


BODY = {"as_of": "2025-06-01", "destinations": ["CN", "AE"]}


def _post(client, headers, cid, key=None, body=BODY):
    extra = {} if key is None else {"Idempotency-Key": key}
    return client.post(f"/api/v1/catalogues/{cid}/audits", json=body, headers={**headers, **extra})


def _audits(app):
    with app.extensions["db"].session() as s:
        return s.scalar(select(func.count()).select_from(Audit))


def test_a_retry_with_the_same_key_and_body_gets_the_first_audit(app, client, auditor_headers, catalogue):  # noqa: F811
    first = _post(client, auditor_headers, catalogue, "order-42")
    assert first.status_code == 202
    again = _post(client, auditor_headers, catalogue, "order-42")
    assert again.status_code == 202
    assert again.json["id"] == first.json["id"] and again.headers["Location"] == first.headers["Location"]
    assert _audits(app) == 1
    other = _post(client, auditor_headers, catalogue, "order-43")  # another key: another audit
    assert other.status_code == 202 and other.json["id"] != first.json["id"]
    without = [_post(client, auditor_headers, catalogue).json["id"] for _ in range(2)]  # no key: no dedup
    assert len(set(without)) == 2 and _audits(app) == 4
    wait_for_embedded_jobs(client.application)
    assert client.get(first.headers["Location"], headers=auditor_headers).json["status"] == "done"


def test_the_same_key_with_another_body_is_422_naming_the_header(app, client, auditor_headers, catalogue):  # noqa: F811
    assert _post(client, auditor_headers, catalogue, "k-1").status_code == 202
    r = _post(client, auditor_headers, catalogue, "k-1", dict(BODY, destinations=["CN"]))
    assert r.status_code == 422 and "Idempotency-Key" in r.json["errors"], r.json
    assert _audits(app) == 1
    for bad in ("", " ", "x" * 201):
        r = _post(client, auditor_headers, catalogue, bad)
        assert r.status_code == 422 and "Idempotency-Key" in r.json["errors"], (bad, r.json)
    assert _audits(app) == 1
    wait_for_embedded_jobs(client.application)


def test_keys_belong_to_their_caller(app, client, auditor_headers, admin_headers, catalogue):  # noqa: F811
    a = _post(client, auditor_headers, catalogue, "shared-key").json["id"]
    b = _post(client, admin_headers, catalogue, "shared-key").json["id"]
    assert a != b and _audits(app) == 2
    wait_for_embedded_jobs(client.application)


def test_concurrent_first_requests_with_one_key_make_one_audit(app, auditor_headers, catalogue):  # noqa: F811
    answers: list = []
    gate = threading.Barrier(4)

    def go():
        client = app.test_client()
        gate.wait()
        r = _post(client, auditor_headers, catalogue, "race")
        answers.append((r.status_code, r.json.get("id")))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {code for code, _ in answers} == {202} and len({i for _, i in answers}) == 1, answers
    assert _audits(app) == 1
    with app.extensions["db"].session() as s:
        assert s.scalar(select(func.count()).select_from(IdempotencyKey)) == 1
    wait_for_embedded_jobs(app)
