"""Re-evaluation task: `compliance.reeval.chunk` runs one chunk through compliance.services.jobs."""
from __future__ import annotations

from celery import shared_task

from ..services import reevaluation
from .retry import TRANSIENT


@shared_task(name="compliance.reeval.chunk", bind=True, fail_chunk=staticmethod(reevaluation.fail_chunk),
             acks_late=True, reject_on_worker_lost=True, autoretry_for=TRANSIENT, retry_backoff=True,
             retry_backoff_max=60, max_retries=6)
def run_chunk(self, run_id: int, chunk_id: int) -> dict:
    """Claim, compare and write one chunk; the last one finalizes the run."""
    return reevaluation.run_chunk(self.ext("db"), self.ext("rulebooks"), run_id, chunk_id,
                                  self.ext("config").JOB_LEASE_SECONDS)
