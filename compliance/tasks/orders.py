"""Order re-check tasks: after a list snapshot or a rule publish, every open order is re-checked as a chunked
job of services/jobs.py (services/order_recheck.py): `compliance.orders.recheck` plans it (once per cause),
`compliance.orders.recheck_chunk` runs one chunk of open orders (lease, fenced write, finalize once)."""
from __future__ import annotations

from celery import shared_task

from ..services import order_recheck
from .retry import TRANSIENT


@shared_task(name="compliance.orders.recheck", bind=True, acks_late=True, autoretry_for=TRANSIENT,
             retry_backoff=True, retry_backoff_max=60, max_retries=6)
def recheck_orders(self, cause: str) -> dict:
    """Plan the re-check of every open order for `cause` and send its chunk tasks."""
    return order_recheck.start_recheck(self.ext("db"), cause)


@shared_task(name="compliance.orders.recheck_chunk", bind=True, fail_chunk=staticmethod(order_recheck.fail_recheck_chunk),
             acks_late=True, reject_on_worker_lost=True, autoretry_for=TRANSIENT, retry_backoff=True,
             retry_backoff_max=60, max_retries=6)
def recheck_chunk(self, recheck_id: int, chunk_id: int) -> dict:
    """Claim, re-check and write one chunk; the last one finalizes the re-check."""
    config = self.ext("config")
    return order_recheck.run_recheck_chunk(self.ext("db"), self.ext("rulebooks"), recheck_id, chunk_id,
                                           config.SCREENING_THRESHOLD, config.SCREENING_SAMPLE,
                                           config.JOB_LEASE_SECONDS)
