"""Audit task: `compliance.audits.chunk` runs one chunk through compliance.services.jobs."""
from __future__ import annotations

from celery import shared_task

from ..services import audits
from .retry import TRANSIENT


@shared_task(name="compliance.audits.chunk", bind=True, fail_chunk=staticmethod(audits.fail_chunk),
             acks_late=True, reject_on_worker_lost=True, autoretry_for=TRANSIENT, retry_backoff=True,
             retry_backoff_max=60, max_retries=6)
def audit_chunk(self, audit_id: int, chunk_id: int) -> dict:
    """Claim, evaluate and write one chunk; the last one finalizes the audit."""
    return audits.run_chunk(self.ext("db"), self.ext("rulebooks"), audit_id, chunk_id,
                            self.ext("config").JOB_LEASE_SECONDS)
