"""Issue 12 item 7: with DEFAULT settings (JOB_LEASE_SECONDS=30 renewed every 10 s, JOB_SWEEP_SECONDS=15),
a chunk whose whole worker died (SIGKILL of the worker and its pool) is picked up again within 60 s by
another worker, and its writes are applied once. Real Redis, PostgreSQL and two worker processes."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from compliance.config import Config
from compliance.models import AuditChunk, AuditResult
from compliance.services.audit_results import audit_status
from compliance.services.audits import create_audit, start_audit
from tests.integration.conftest import wait_until
from tests.integration.test_audit_worker import AS_OF, _catalogue

pytestmark = pytest.mark.services
RECOVERY_BOUND_SECONDS = 60


def test_a_chunk_of_a_killed_worker_is_picked_up_within_60_s_with_default_settings(worker_env, start_worker):
    app = worker_env.app
    db = app.extensions["db"]
    defaults = Config.from_env({}, environ={})
    assert (defaults.JOB_LEASE_SECONDS, defaults.JOB_SWEEP_SECONDS) == (30, 15)
    assert not {"JOB_LEASE_SECONDS", "JOB_SWEEP_SECONDS", "JOB_REQUEUE_SECONDS"} & set(worker_env.env)
    n = 2000
    cid = _catalogue(app, n)
    audit = create_audit(db, app.extensions["rulebooks"], cid, AS_OF, ["CN", "AE"], None, "test", chunk_size=500,
                         enqueue=False)
    # Worker A takes one chunk and hangs in it (as a long evaluation would), holding the lease.
    a = start_worker(concurrency=1, queues="audits", slow=600)
    start_audit(db, audit.id)

    def held():
        with db.session() as s:
            return s.execute(select(AuditChunk.id, AuditChunk.lease_owner).where(
                AuditChunk.audit_id == audit.id, AuditChunk.lease_owner.is_not(None))).first()

    chunk_id, owner = wait_until(held, timeout=60, message="worker A to claim a chunk")
    start_worker(concurrency=1, beat=True)  # worker B, with the beat sweeper; takes the other chunks
    wait_until(lambda: audit_status(db, audit.id)["progress"]["chunks_done"] == 3, timeout=90,
               message="worker B to finish the other chunks")
    a.kill()
    killed_at = time.monotonic()

    def reclaimed():
        with db.session() as s:
            c = s.get(AuditChunk, chunk_id)
            return c if c.attempts >= 2 else None

    wait_until(reclaimed, timeout=RECOVERY_BOUND_SECONDS + 30, interval=0.2, message="the chunk to be claimed again")
    picked_up = time.monotonic() - killed_at
    st = wait_until(lambda: audit_status(db, audit.id) if audit_status(db, audit.id)["status"] == "done" else None,
                    timeout=60, interval=0.2, message="the audit to finish")
    finished = time.monotonic() - killed_at
    print(f"\nrecovery with default settings: chunk picked up again {picked_up:.1f} s after SIGKILL, "
          f"audit done {finished:.1f} s after it (bound {RECOVERY_BOUND_SECONDS} s)")
    assert picked_up <= RECOVERY_BOUND_SECONDS
    assert st["counts"]["products"] == n
    with db.session() as s:
        ids = s.scalars(select(AuditResult.product_id).where(AuditResult.audit_id == audit.id)).all()
        chunk = s.get(AuditChunk, chunk_id)
        assert s.scalar(select(func.max(AuditChunk.attempts)).where(AuditChunk.audit_id == audit.id)) == 2
    assert len(ids) == n == len(set(ids))
    assert chunk.status == "done" and chunk.attempts == 2 and chunk.lease_owner is None
