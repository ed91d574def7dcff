"""Order re-check task: after a list snapshot or a rule publish, every open order is re-checked.

A single task that walks the open orders in id-ordered chunks (services/order_recheck.py). It is not yet on
the chunked-job mechanism of services/jobs.py (not on main when this was written): see docs/screening.md."""
from __future__ import annotations

from . import celery_app


@celery_app.task(name="compliance.orders.recheck", acks_late=True)
def recheck_orders(cause: str) -> dict:
    from ..services.order_recheck import recheck_open_orders

    app = celery_app.flask_app
    config = app.config["COMPLIANCE"]
    return recheck_open_orders(app.extensions["db"], app.extensions["rulebooks"], cause, config.SCREENING_THRESHOLD,
                               config.SCREENING_SAMPLE)
