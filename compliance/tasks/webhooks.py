"""Webhook delivery task: one HTTP attempt per execution, retried with exponential backoff."""
from __future__ import annotations

import logging

from ..services.webhooks import attempt_delivery
from . import celery_app, dispatch_later, ext

log = logging.getLogger(__name__)


@celery_app.task(name="compliance.webhooks.deliver", bind=True, acks_late=True, max_retries=None)
def deliver(self, delivery_id: int) -> dict:
    """Attempts are counted on the delivery row (not by Celery), so a redelivered message never
    exceeds WEBHOOK_MAX_ATTEMPTS."""
    config = ext("config")
    status, retry_in = attempt_delivery(ext("db"), delivery_id, config.WEBHOOK_TIMEOUT_SECONDS,
                                        config.WEBHOOK_MAX_ATTEMPTS, config.WEBHOOK_BACKOFF_SECONDS)
    if retry_in is None:
        return {"delivery": delivery_id, "status": status}
    if self.request.is_eager:
        # Embedded mode: a timer re-dispatches the attempt, so a dead receiver never blocks the
        # single embedded-jobs thread (audits, re-evaluations) while it backs off.
        dispatch_later(retry_in, lambda: deliver.delay(delivery_id))
        return {"delivery": delivery_id, "status": status, "retry_in": retry_in}
    raise self.retry(countdown=retry_in)
