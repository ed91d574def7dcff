"""Issue 12 item 6: creating an audit while the broker is unreachable (a real Redis URL nobody listens on)
answers 202 at once; the audit and its chunks are recorded as not yet sent; a client's retry with its
Idempotency-Key gets the same audit; when a broker is back the sweeper sends the chunks and the audit
completes on a real worker."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from compliance.models import Audit, AuditChunk, AuditResult
from compliance.services.audit_results import audit_status
from tests.integration.conftest import wait_until
from tests.integration.test_audit_worker import _catalogue

pytestmark = pytest.mark.services
DEAD_BROKER = "redis://127.0.0.1:1/0"  # connection refused


def test_an_audit_created_while_the_broker_is_down_is_accepted_and_runs_when_it_is_back(
        worker_env, start_worker, headers_for):
    from compliance import create_app

    db = worker_env.app.extensions["db"]
    cid = _catalogue(worker_env.app, 3000)
    down = create_app({"DATABASE_URL": worker_env.database_url, "SAMPLE_CATALOGUE": "", "AUDIT_CHUNK_SIZE": "1000",
                       "CELERY_BROKER_URL": DEAD_BROKER, "CELERY_RESULT_BACKEND": DEAD_BROKER})
    client = down.test_client()
    headers = {**headers_for(down, "auditor"), "Idempotency-Key": "nightly-2025-06-01"}
    body = {"as_of": "2025-06-01", "destinations": ["CN", "AE"]}
    t0 = time.monotonic()
    r = client.post(f"/api/v1/catalogues/{cid}/audits", json=body, headers=headers)
    took = time.monotonic() - t0
    assert r.status_code == 202, r.json
    assert took < 5, f"answered after {took:.1f}s"
    retry = client.post(f"/api/v1/catalogues/{cid}/audits", json=body, headers=headers)
    assert retry.status_code == 202 and retry.json["id"] == r.json["id"]
    audit_id = r.json["id"]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Audit)) == 1
        chunks = s.execute(select(AuditChunk.status, AuditChunk.enqueued_at).where(AuditChunk.audit_id == audit_id)).all()
    assert len(chunks) == 3 and all(c == ("pending", None) for c in chunks)  # recorded as not sent
    down.extensions["db"].dispose()

    start_worker(concurrency=2, beat=True, extra_env={"JOB_SWEEP_SECONDS": "1"})  # the broker is back
    st = wait_until(lambda: audit_status(db, audit_id) if audit_status(db, audit_id)["status"] == "done" else None,
                    timeout=90, interval=0.3, message="the audit to be sent by the sweeper and finish")
    assert st["counts"]["products"] == 3000
    with db.session() as s:
        ids = s.scalars(select(AuditResult.product_id).where(AuditResult.audit_id == audit_id)).all()
    assert len(ids) == 3000 == len(set(ids))
    print(f"\nPOST /audits with the broker down answered 202 in {took * 1000:.0f} ms")
