"""Audit task: `compliance.audits.chunk` runs one chunk through compliance.services.jobs."""
from __future__ import annotations

from ..services import audits
from . import TRANSIENT, ChunkTask, celery_app, ext


@celery_app.task(name="compliance.audits.chunk", base=ChunkTask, fail_chunk=staticmethod(audits.fail_chunk),
                 acks_late=True, reject_on_worker_lost=True, autoretry_for=TRANSIENT, retry_backoff=True,
                 retry_backoff_max=60, max_retries=6)
def audit_chunk(audit_id: int, chunk_id: int) -> dict:
    """Claim, evaluate and write one chunk; the last one finalizes the audit."""
    return audits.run_chunk(ext("db"), ext("rulebooks"), audit_id, chunk_id, ext("config").JOB_LEASE_SECONDS)
