"""Import task: `compliance.imports.run` imports one uploaded catalogue file through compliance.services.jobs."""
from __future__ import annotations

from celery import shared_task

from ..services import import_jobs
from .retry import TRANSIENT


@shared_task(name="compliance.imports.run", bind=True, fail_chunk=staticmethod(import_jobs.fail_import),
             acks_late=True, reject_on_worker_lost=True, autoretry_for=TRANSIENT, retry_backoff=True,
             retry_backoff_max=60, max_retries=6)
def import_run(self, import_id: int, upload_id: int) -> dict:
    """Claim the upload, import its rows, store the report; the upload is deleted once done."""
    return import_jobs.run_import(self.ext("db"), self.ext("rulebooks"), import_id, upload_id,
                                  self.ext("config").JOB_LEASE_SECONDS)
