"""Audit tasks: `compliance.audits.chunk` (one id range), `compliance.audits.finalize` (chord body).

Tasks take ids, never rows. Chunks are idempotent (delete-then-insert of their id range in one
transaction), so they run with acks_late: a worker killed mid-chunk gets its message redelivered.
Transient database / broker errors are retried with exponential backoff.
"""
from __future__ import annotations

import logging

from celery.exceptions import MaxRetriesExceededError
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError

from . import SWEEPERS, celery_app

log = logging.getLogger(__name__)
MAX_RETRIES = 6


def _ext(name: str):
    return celery_app.flask_app.extensions[name]


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: lost DB connections, DB operational errors, Redis/broker hiccups."""
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (RedisConnectionError, RedisTimeoutError, KombuOperationalError, ConnectionError))


def _backoff(retries: int) -> float:
    return min(60.0, 2.0 ** retries)


@celery_app.task(name="compliance.audits.chunk", bind=True, acks_late=True, reject_on_worker_lost=True,
                 max_retries=MAX_RETRIES)
def audit_chunk(self, audit_id: int, chunk_id: int) -> dict:
    """Evaluate one chunk of an audit and write its results; finalize if it was the last one."""
    from ..services.audits import all_chunks_done, finalize_audit, mark_chunk_failed, run_chunk

    db = _ext("db")
    try:
        out = run_chunk(db, _ext("rulebooks"), audit_id, chunk_id)
    except Exception as exc:
        if is_transient(exc):
            try:
                raise self.retry(exc=exc, countdown=_backoff(self.request.retries))
            except MaxRetriesExceededError:
                pass
        log.exception("audit %s chunk %s failed", audit_id, chunk_id)
        mark_chunk_failed(db, chunk_id, f"{type(exc).__name__}: {exc}")
        raise
    # The chord body finalizes too; doing it here as well survives lost chord counters (redeliveries).
    if all_chunks_done(db, audit_id):
        finalize_audit(db, audit_id)
    return out


@celery_app.task(name="compliance.audits.finalize", bind=True, acks_late=True, max_retries=MAX_RETRIES,
                 ignore_result=True)
def audit_finalize(self, audit_id: int) -> bool:
    """Chord body: compute final counts once every chunk is done (idempotent)."""
    from ..services.audits import finalize_audit

    try:
        return finalize_audit(_ext("db"), audit_id)
    except Exception as exc:
        if is_transient(exc):
            raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc
        raise


@celery_app.task(name="compliance.audits.start", acks_late=True)
def audit_start(audit_id: int) -> None:
    """Publish an audit's chord (used where the caller cannot build it itself)."""
    from ..services.audits import start_audit

    start_audit(audit_id)


def redispatch_chunks(audit_id: int, chunk_ids: list[int]) -> None:
    """Re-send chunks (sweeper); each one finalizes the audit when it turns out to be the last."""
    for cid in chunk_ids:
        audit_chunk.apply_async(args=[audit_id, cid])


def sweep_audits() -> dict:
    """Sweeper: finalize finished audits, re-dispatch chunks stuck pending/running too long."""
    from ..services.audits import sweep_audits as _sweep

    return _sweep(_ext("db"))


SWEEPERS.append(sweep_audits)
