"""Order re-check task: after a list snapshot or a rule publish, every open order is re-checked.

A single task that walks the open orders in id-ordered chunks (services/order_recheck.py); it can move onto
the chunked-job mechanism of services/jobs.py (see docs/screening.md)."""
from __future__ import annotations

from celery import shared_task

from ..services.order_recheck import recheck_open_orders


@shared_task(name="compliance.orders.recheck", bind=True, acks_late=True)
def recheck_orders(self, cause: str) -> dict:
    config = self.ext("config")
    return recheck_open_orders(self.ext("db"), self.ext("rulebooks"), cause, config.SCREENING_THRESHOLD,
                               config.SCREENING_SAMPLE)
