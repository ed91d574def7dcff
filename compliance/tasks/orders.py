"""Order re-check task: after a list snapshot or a rule publish, every open order is re-checked.

A single task that walks the open orders in id-ordered chunks (services/order_recheck.py); it can move onto
the chunked-job mechanism of services/jobs.py (see docs/screening.md)."""
from __future__ import annotations

from ..services.order_recheck import recheck_open_orders
from . import celery_app, ext


@celery_app.task(name="compliance.orders.recheck", acks_late=True)
def recheck_orders(cause: str) -> dict:
    config = ext("config")
    return recheck_open_orders(ext("db"), ext("rulebooks"), cause, config.SCREENING_THRESHOLD,
                               config.SCREENING_SAMPLE)
