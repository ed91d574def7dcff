"""The audit sweeper (crash recovery), in embedded mode: it re-dispatches chunks left pending or
running too long and finalizes audits whose chunks are all done. (The real-worker crash test is
tests/integration/test_audit_worker.py.)"""
from __future__ import annotations

from datetime import date

from sqlalchemy import update

from compliance.models import Audit, AuditChunk
from compliance.services.audits import audit_status, create_audit, run_chunk, sweep_audits
from compliance.services.catalogues import create_catalogue
from compliance.tasks import SWEEPERS, wait_for_embedded_jobs
from tests.conftest import A800, H20, H100


def _setup(app, chunk_size=1):
    from compliance.services.catalogues import put_product

    db, store = app.extensions["db"], app.extensions["rulebooks"]
    cat = create_catalogue(db, "c")
    for p in (H100, A800, H20):
        put_product(db, store, cat.id, p)
    return db, store, create_audit(db, store, cat.id, date(2025, 6, 1), ["CN"], None, "t", chunk_size)


def test_sweeper_redispatches_an_audit_that_was_never_enqueued(app):
    db, store, audit = _setup(app)
    assert sweep_audits(db, stale_after=3600) == {"finalized": 0, "redispatched_chunks": 0}  # not stale yet
    out = sweep_audits(db, stale_after=0)
    assert out == {"finalized": 0, "redispatched_chunks": 3}
    wait_for_embedded_jobs()
    st = audit_status(db, audit.id)
    assert st["status"] == "done" and st["counts"]["products"] == 3


def test_sweeper_finalizes_an_audit_whose_chunks_are_all_done(app):
    db, store, audit = _setup(app, chunk_size=10)
    with db.session() as s:
        chunk_id = s.query(AuditChunk.id).filter_by(audit_id=audit.id).scalar()
    run_chunk(db, store, audit.id, chunk_id)  # the chunk ran, but the finalize step was lost (crash)
    assert audit_status(db, audit.id)["status"] == "running"
    assert any(fn.__name__ == "sweep_audits" for fn in SWEEPERS)
    assert sweep_audits(db)["finalized"] == 1
    st = audit_status(db, audit.id)
    assert st["status"] == "done" and st["counts"]["by_eccn"] == {"3A090.a": 2, "none": 1}
    assert sweep_audits(db) == {"finalized": 0, "redispatched_chunks": 0}


def test_a_stale_running_chunk_is_run_again_and_not_doubled(app):
    db, store, audit = _setup(app, chunk_size=10)
    with db.session() as s:
        chunk_id = s.query(AuditChunk.id).filter_by(audit_id=audit.id).scalar()
    run_chunk(db, store, audit.id, chunk_id)
    with db.session() as s:  # pretend a worker died right after writing, before marking the chunk done
        s.execute(update(AuditChunk).where(AuditChunk.id == chunk_id).values(status="running"))
        s.execute(update(Audit).where(Audit.id == audit.id).values(status="running"))
    assert sweep_audits(db, stale_after=0)["redispatched_chunks"] == 1
    wait_for_embedded_jobs()
    st = audit_status(db, audit.id)
    assert st["status"] == "done" and st["counts"]["products"] == 3


def test_transient_database_and_broker_errors_are_retried_others_are_not(app):
    from redis.exceptions import ConnectionError as RedisConnectionError
    from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

    from compliance.tasks.audits import audit_chunk, audit_finalize, is_transient

    assert is_transient(OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    assert is_transient(DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True))
    assert is_transient(RedisConnectionError("Connection refused"))
    assert not is_transient(DBAPIError("SELECT 1", {}, Exception("bad"), connection_invalidated=False))
    assert not is_transient(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_transient(ValueError("bug"))
    assert audit_chunk.acks_late and audit_chunk.reject_on_worker_lost and audit_chunk.max_retries >= 3
    assert app.extensions["celery"].amqp.router.route({}, audit_chunk.name)["queue"].name == "audits"
    assert audit_finalize.name == "compliance.audits.finalize"
