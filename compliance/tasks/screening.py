"""Bulk screening task: one job screens a party file a chunk at a time (services/screening_jobs.py). A single
task, not a services/jobs.py chunked job (see docs/screening.md)."""
from __future__ import annotations

from celery import shared_task

from ..services.screening_jobs import run_job


@shared_task(name="compliance.screening.bulk", bind=True, acks_late=True)
def run_bulk(self, job_id: int) -> dict:
    config = self.ext("config")
    return run_job(self.ext("db"), job_id, config.SCREENING_THRESHOLD, config.SCREENING_SAMPLE)
