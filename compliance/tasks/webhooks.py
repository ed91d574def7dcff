"""Webhook delivery task: one HTTP attempt per execution, retried with exponential backoff."""
from __future__ import annotations

from celery import shared_task

from ..services.webhooks import attempt_delivery


@shared_task(name="compliance.webhooks.deliver", bind=True, acks_late=True, max_retries=None)
def deliver(self, delivery_id: int) -> dict:
    """Attempts are counted on the delivery row (not by Celery), so a redelivered message never
    exceeds WEBHOOK_MAX_ATTEMPTS."""
    config = self.ext("config")
    status, retry_in = attempt_delivery(self.ext("db"), delivery_id, config.WEBHOOK_TIMEOUT_SECONDS,
                                        config.WEBHOOK_MAX_ATTEMPTS, config.WEBHOOK_BACKOFF_SECONDS,
                                        config.webhook_allowed_networks)
    if retry_in is None:
        return {"delivery": delivery_id, "status": status}
    if self.request.is_eager:
        # Embedded mode: a timer re-submits the attempt, so a dead receiver never blocks the jobs
        # thread (audits, re-evaluations) while it backs off.
        self.ext("jobs").later(retry_in, lambda: self.apply_async(args=[delivery_id]))
        return {"delivery": delivery_id, "status": status, "retry_in": retry_in}
    raise self.retry(countdown=retry_in)
