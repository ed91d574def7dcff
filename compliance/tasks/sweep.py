"""The periodic sweeper task (Celery beat, every JOB_SWEEP_SECONDS)."""
from __future__ import annotations

from celery import shared_task

from ..services.audits import sweep_audits
from ..services.import_jobs import sweep_imports
from ..services.order_recheck import sweep_rechecks
from ..services.reevaluation import sweep_runs
from ..services.screening_jobs import sweep_screening_jobs
from ..services.webhooks import sweep_deliveries


@shared_task(name="compliance.sweep", bind=True)
def sweep(self) -> dict:
    """Expired chunk leases and unsent or lost chunks of audits, re-evaluations, imports, order re-checks and bulk screenings, lost finalizes,
    overdue webhook deliveries: each re-sent after the sweep's commit."""
    db, config = self.ext("db"), self.ext("config")
    return {"audits": sweep_audits(db, config.JOB_REQUEUE_SECONDS),
            "reevaluations": sweep_runs(db, config.JOB_REQUEUE_SECONDS),
            "imports": sweep_imports(db, config.JOB_REQUEUE_SECONDS),
            "order_rechecks": sweep_rechecks(db, config.JOB_REQUEUE_SECONDS),
            "screening_jobs": sweep_screening_jobs(db, config.JOB_REQUEUE_SECONDS),
            "webhooks": len(sweep_deliveries(db))}
