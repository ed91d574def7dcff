"""The chunked-job mechanism (compliance.services.jobs) on audits, in embedded mode, on SQLite and
PostgreSQL: leases, the fenced finish, finalize exactly once, and the sweeper (expired leases, chunks
never sent, lost finalizes). The real-worker crash tests are in tests/integration/."""
from __future__ import annotations

import threading
from datetime import date

from sqlalchemy import func, select, update

from compliance.models import Audit, AuditChunk, AuditResult
from compliance.services import jobs
from compliance.services.audit_results import audit_status
from compliance.services.audits import AUDIT_JOB, _finalize, create_audit, run_chunk, sweep_audits
from compliance.services.catalogues import create_catalogue
from compliance.tasks import wait_for_embedded_jobs
from tests.conftest import A800, H20, H100


def _setup(app, chunk_size=1, enqueue=False):
    from compliance.services.catalogues import put_product

    db, store = app.extensions["db"], app.extensions["rulebooks"]
    cat = create_catalogue(db, "c")
    for p in (H100, A800, H20):
        put_product(db, store, cat.id, p)
    return db, store, create_audit(db, store, cat.id, date(2025, 6, 1), ["CN"], None, "t", chunk_size, enqueue=enqueue)


def _chunk_ids(db, audit_id):
    with db.session() as s:
        return list(s.scalars(select(AuditChunk.id).where(AuditChunk.audit_id == audit_id).order_by(AuditChunk.seq)))


def _result_count(db, audit_id):
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(AuditResult).where(AuditResult.audit_id == audit_id))


def test_sweeper_sends_the_chunks_of_an_audit_that_was_never_enqueued(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db, store, audit = _setup(app)  # recorded, never sent (as when the broker was down)
    assert sweep_audits(db, requeue_after=3600) == {"finalized": 0, "enqueued_chunks": 3}
    wait_for_embedded_jobs(app)
    st = audit_status(db, audit.id)
    assert st["status"] == "done" and st["counts"]["products"] == 3
    assert sweep_audits(db, requeue_after=3600) == {"finalized": 0, "enqueued_chunks": 0}


def test_a_sent_pending_chunk_is_resent_only_after_requeue_after(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db, store, audit = _setup(app)
    with db.session() as s:  # sent (stamped) but its message never ran
        s.execute(update(AuditChunk).where(AuditChunk.audit_id == audit.id).values(enqueued_at=func.now()))
    assert sweep_audits(db, requeue_after=3600)["enqueued_chunks"] == 0
    assert sweep_audits(db, requeue_after=-60)["enqueued_chunks"] == 3
    wait_for_embedded_jobs(app)
    assert audit_status(db, audit.id)["status"] == "done"


def test_sweeper_finalizes_an_audit_whose_finalize_was_lost(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db, store, audit = _setup(app, chunk_size=10)
    (chunk_id,) = _chunk_ids(db, audit.id)
    assert run_chunk(db, store, audit.id, chunk_id)["finalized"] is True
    with db.session() as s:  # as if the process died between the chunk's commit and the finalize
        s.execute(update(Audit).where(Audit.id == audit.id).values(status="running", counts={}))
    assert audit_status(db, audit.id)["status"] == "running"
    assert sweep_audits(db, requeue_after=3600) == {"finalized": 1, "enqueued_chunks": 0}
    st = audit_status(db, audit.id)
    assert st["status"] == "done" and st["counts"]["by_eccn"] == {"3A090.a": 2, "none": 1}
    assert sweep_audits(db, requeue_after=3600) == {"finalized": 0, "enqueued_chunks": 0}


def test_finalize_runs_exactly_once_under_concurrency(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db, store, audit = _setup(app, chunk_size=10)
    (chunk_id,) = _chunk_ids(db, audit.id)
    claim = jobs.claim_chunk(db, AUDIT_JOB, audit.id, chunk_id, 60)
    assert jobs.finish_chunk(db, AUDIT_JOB, claim, jobs.ChunkWork(lambda s: None))
    calls, wins = [], []

    def finalize(s, job):
        calls.append(job.id)
        _finalize(s, job)

    def go():
        wins.append(jobs.finalize_if_complete(db, AUDIT_JOB, audit.id, finalize))

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True] and calls == [audit.id]
    assert audit_status(db, audit.id)["status"] == "done"


def test_a_live_lease_turns_a_duplicate_delivery_into_a_no_op(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db, store, audit = _setup(app, chunk_size=10)
    (chunk_id,) = _chunk_ids(db, audit.id)
    claim = jobs.claim_chunk(db, AUDIT_JOB, audit.id, chunk_id, 60)  # a live worker holds it
    assert claim is not None
    assert run_chunk(db, store, audit.id, chunk_id) == {"chunk": chunk_id, "skipped": True}
    assert sweep_audits(db, requeue_after=-60)["enqueued_chunks"] == 0  # nothing stalled: a live lease
    assert _result_count(db, audit.id) == 0


def test_an_expired_lease_is_resent_and_the_dead_owner_cannot_write_afterwards(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db, store, audit = _setup(app, chunk_size=10)
    (chunk_id,) = _chunk_ids(db, audit.id)
    dead = jobs.claim_chunk(db, AUDIT_JOB, audit.id, chunk_id, -1)  # its worker died: the lease has expired
    assert dead is not None
    assert sweep_audits(db, requeue_after=3600)["enqueued_chunks"] == 1
    wait_for_embedded_jobs(app)
    st = audit_status(db, audit.id)
    assert st["status"] == "done" and st["counts"]["products"] == 3
    # The "dead" worker wakes up and tries to write its (duplicate) rows: the fence refuses them.
    wrote = []
    assert not jobs.finish_chunk(db, AUDIT_JOB, dead, jobs.ChunkWork(lambda s: wrote.append(1)))
    assert wrote == [] and _result_count(db, audit.id) == 3
    with db.session() as s:
        chunk = s.get(AuditChunk, chunk_id)
        assert chunk.status == "done" and chunk.attempts == 2 and chunk.lease_owner is None


def test_a_lease_taken_over_mid_chunk_discards_the_first_attempts_writes(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db, store, audit = _setup(app, chunk_size=10)
    (chunk_id,) = _chunk_ids(db, audit.id)
    first = jobs.claim_chunk(db, AUDIT_JOB, audit.id, chunk_id, -1)
    assert run_chunk(db, store, audit.id, chunk_id)["finalized"] is True  # the second owner finishes
    assert not jobs.finish_chunk(db, AUDIT_JOB, first, jobs.ChunkWork(lambda s: s.execute(
        update(Audit).where(Audit.id == audit.id).values(error="doubled"))))
    assert audit_status(db, audit.id)["error"] is None and _result_count(db, audit.id) == 3


def test_a_failed_attempt_gives_its_lease_back_and_a_permanent_failure_fails_the_audit(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db, store, audit = _setup(app, chunk_size=10)
    (chunk_id,) = _chunk_ids(db, audit.id)

    def broken(job, chunk):
        raise ValueError("bug")

    try:
        jobs.run_chunk(db, AUDIT_JOB, audit.id, chunk_id, broken, _finalize, 60)
    except ValueError:
        pass
    else:
        raise AssertionError("the error must propagate (Celery retries transient ones)")
    with db.session() as s:
        assert s.get(AuditChunk, chunk_id).lease_owner is None  # a retry can claim it at once
    audit_chunk = app.extensions["celery"].tasks["compliance.audits.chunk"]
    audit_chunk.on_failure(ValueError("bug"), "task-id", [audit.id, chunk_id], {}, None)
    st = audit_status(db, audit.id)
    assert st["status"] == "failed" and st["error"] == "chunk 0 failed: ValueError: bug"
    assert run_chunk(db, store, audit.id, chunk_id)["skipped"]  # a failed job's chunks are not run


def test_chunk_tasks_retry_transient_errors_with_celerys_own_backoff(app):
    from kombu.exceptions import OperationalError as KombuOperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from sqlalchemy.exc import OperationalError

    tasks = app.extensions["celery"].tasks
    audit_chunk, reeval_chunk = tasks["compliance.audits.chunk"], tasks["compliance.reeval.chunk"]
    for task in (audit_chunk, reeval_chunk):
        assert {OperationalError, RedisConnectionError, KombuOperationalError} <= set(task.autoretry_for)
        assert task.retry_backoff and task.acks_late and task.reject_on_worker_lost and task.max_retries >= 3
    router = app.extensions["celery"].amqp.router
    assert router.route({}, audit_chunk.name)["queue"].name == "audits"
    assert router.route({}, reeval_chunk.name)["queue"].name == "reevaluation"


def test_one_chunking_helper(make_app):
    app = make_app()
    db = app.extensions["db"]
    from compliance.models import Product

    with db.session() as s:
        cat = create_catalogue(db, "ids")
        ids = select(Product.id).where(Product.catalogue_id == cat.id).order_by(Product.id)
        assert jobs.id_ranges(s, ids, 2) == []
    db2, store, audit = _setup(app, chunk_size=2)
    with db.session() as s:
        chunks = s.execute(select(AuditChunk.lo_id, AuditChunk.hi_id, AuditChunk.size)
                           .where(AuditChunk.audit_id == audit.id).order_by(AuditChunk.seq)).all()
        ids = select(Product.id).where(Product.catalogue_id == audit.catalogue_id).order_by(Product.id)
        assert [tuple(c) for c in chunks] == jobs.id_ranges(s, ids, 2)
    assert [c[2] for c in chunks] == [2, 1] and chunks[0][1] < chunks[1][0]
