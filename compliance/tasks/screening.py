"""Bulk screening tasks (services/screening_jobs.py): `compliance.screening.bulk_chunk` screens one chunk of a
party file's job (a chunked job of services/jobs.py: lease, fenced write, finalize once); `compliance.screening.bulk`
runs a job queued as one task before the chunked jobs."""
from __future__ import annotations

from celery import shared_task

from ..services import screening_jobs
from .retry import TRANSIENT


@shared_task(name="compliance.screening.bulk_chunk", bind=True, fail_chunk=staticmethod(screening_jobs.fail_chunk),
             acks_late=True, reject_on_worker_lost=True, autoretry_for=TRANSIENT, retry_backoff=True,
             retry_backoff_max=60, max_retries=6)
def run_bulk_chunk(self, job_id: int, chunk_id: int) -> dict:
    config = self.ext("config")
    return screening_jobs.run_chunk(self.ext("db"), job_id, chunk_id, config.SCREENING_THRESHOLD,
                                    config.SCREENING_SAMPLE, config.JOB_LEASE_SECONDS)


@shared_task(name="compliance.screening.bulk", bind=True, acks_late=True)
def run_bulk(self, job_id: int) -> dict:
    config = self.ext("config")
    return screening_jobs.run_job(self.ext("db"), job_id, config.SCREENING_THRESHOLD, config.SCREENING_SAMPLE)
