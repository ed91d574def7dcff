"""Re-evaluation tasks: a chord per run (chunk tasks take run id + chunk id; finalize recomputes totals)."""
from __future__ import annotations

import logging

from celery import chord

from . import SWEEPERS, celery_app, dispatch

log = logging.getLogger(__name__)


def _app():
    return celery_app.flask_app


@celery_app.task(name="compliance.reeval.start", acks_late=True)
def start_run(run_id: int) -> dict:
    """Plan the run's chunks (idempotent) and launch chord(chunks) -> finalize."""
    from ..services.reevaluation import finalize_run, plan_run

    app = _app()
    chunk_ids = plan_run(app.extensions["db"], run_id, app.config["COMPLIANCE"].AUDIT_CHUNK_SIZE)
    if not chunk_ids:
        return finalize_run(app.extensions["db"], run_id)
    chord([run_chunk.si(run_id, cid) for cid in chunk_ids])(finalize.si(run_id))
    return {"run": run_id, "chunks": len(chunk_ids)}


@celery_app.task(name="compliance.reeval.chunk", acks_late=True)
def run_chunk(run_id: int, chunk_id: int) -> dict:
    """Idempotent: change records are inserted behind a UNIQUE constraint (ON CONFLICT DO NOTHING)."""
    from ..services.reevaluation import run_chunk as _run

    return _run(_app(), run_id, chunk_id)


@celery_app.task(name="compliance.reeval.finalize", acks_late=True)
def finalize(run_id: int) -> dict:
    from ..services.reevaluation import finalize_run

    return finalize_run(_app().extensions["db"], run_id)


def start_reevaluation(run_id: int) -> None:
    """Called through `dispatch()` after the publish transaction committed."""
    start_run.delay(run_id)


def sweep_reevaluations() -> list[int]:
    """Restart runs left pending/running by a crash (their chunks are idempotent)."""
    from ..services.reevaluation import stalled_runs

    app = _app()
    ids = stalled_runs(app.extensions["db"], app.config["COMPLIANCE"].REEVALUATION_STALL_SECONDS)
    for run_id in ids:
        dispatch(lambda run_id=run_id: start_run.delay(run_id))
    return ids


SWEEPERS.append(sweep_reevaluations)
