"""The order re-check runs on the chunked-job mechanism (services/jobs.py): planned once per cause, one chunk
per CHUNK open orders, fenced writes (a duplicate chunk message writes nothing twice), counts summed from the
chunks, the sweeper re-sends unsent chunks; the migration matches the models (SQLite and PostgreSQL)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from compliance.models import OrderChange, OrderRecheck, OrderRecheckChunk
from compliance.services import order_recheck
from compliance.tasks import wait_for_embedded_jobs
from tests.api.test_order_recheck import create, custom_list


@pytest.fixture
def app(make_app, db_url):
    return make_app(DATABASE_URL=db_url)


@pytest.fixture
def auditor(app, headers_for):
    return headers_for(app, "auditor")


def _jobs(db):
    with db.session() as s:
        return list(s.scalars(select(OrderRecheck).order_by(OrderRecheck.id)))


def _chunks(db, job_id):
    with db.session() as s:
        return list(s.scalars(select(OrderRecheckChunk).where(OrderRecheckChunk.recheck_id == job_id)
                              .order_by(OrderRecheckChunk.seq)))


def test_a_snapshot_import_runs_the_recheck_as_a_chunked_job(app, client, auditor, monkeypatch):
    monkeypatch.setattr(order_recheck, "CHUNK", 2)  # five open orders: three chunks
    for i in range(5):
        create(client, auditor, name=f"Nova Wafer Trading {i}" if i else "Nova Wafer Trading", ref=f"PO-{i}")
    _, snap_id = custom_list(client, auditor, "name,country\nNova Wafer Trading,DE\n")
    db = app.extensions["db"]
    job = next(j for j in _jobs(db) if j.cause == f"list_snapshot:{snap_id}")
    assert job.status == "done" and job.total == 5 and job.finished_at is not None
    chunks = _chunks(db, job.id)
    assert [c.size for c in chunks] == [2, 2, 1] and all(c.status == "done" for c in chunks)
    assert all(c.lease_owner is None and c.attempts == 1 for c in chunks)
    assert job.counts["orders"] == 5 and job.counts["chunks"] == 3 and job.counts["lines"] == 5
    assert job.counts["held"] == sum(c.counts["held"] for c in chunks) >= 1
    with db.session() as s:
        held = s.scalar(select(func.count()).select_from(OrderChange)
                        .where(OrderChange.cause == f"list_snapshot:{snap_id}", OrderChange.kind == "held"))
    assert held == job.counts["held"]


def test_a_cause_is_planned_once_and_a_duplicate_chunk_message_writes_nothing_twice(app, client, auditor):
    db = app.extensions["db"]
    o = create(client, auditor)
    custom_list(client, auditor, "name,country\nNova Wafer Trading,DE\n")  # holds it (recheck of that cause)
    assert order_recheck.start_recheck(db, "list_snapshot:999")["planned"] is True
    wait_for_embedded_jobs(app, timeout=120)
    assert order_recheck.start_recheck(db, "list_snapshot:999") == {"cause": "list_snapshot:999", "planned": False}
    job = next(j for j in _jobs(db) if j.cause == "list_snapshot:999")
    chunk = _chunks(db, job.id)[0]
    config = app.config["COMPLIANCE"]
    again = order_recheck.run_recheck_chunk(db, app.extensions["rulebooks"], job.id, chunk.id,
                                            config.SCREENING_THRESHOLD, config.SCREENING_SAMPLE)
    assert again == {"chunk": chunk.id, "skipped": True}
    assert _chunks(db, job.id)[0].attempts == 1
    feed = client.get(f"/api/v1/orders/changes?order_id={o['id']}", headers=auditor).get_json()["items"]
    assert len(feed) == 1  # held once, by the import; the same reasons again change nothing


def test_the_sweeper_sends_a_chunk_whose_message_was_lost(app, client, auditor, monkeypatch):
    db = app.extensions["db"]
    create(client, auditor)
    wait_for_embedded_jobs(app, timeout=120)  # the order's own work is done: the sweep below sees only this job
    sent: list = []
    from compliance.services import jobs
    real = jobs.enqueue_chunks
    monkeypatch.setattr(jobs, "enqueue_chunks", lambda s, kind, job_id, ids: sent.append(ids))  # broker down
    assert order_recheck.start_recheck(db, "rule_version:77")["planned"] is True
    job = next(j for j in _jobs(db) if j.cause == "rule_version:77")
    assert job.status == "pending" and sent
    monkeypatch.setattr(jobs, "enqueue_chunks", real)
    with db.session() as s:  # as if the message never reached the broker
        s.execute(update(OrderRecheckChunk).where(OrderRecheckChunk.recheck_id == job.id).values(enqueued_at=None))
    assert order_recheck.sweep_rechecks(db, 60)["enqueued_chunks"] == 1
    wait_for_embedded_jobs(app, timeout=120)
    job = next(j for j in _jobs(db) if j.cause == "rule_version:77")
    assert job.status == "done" and job.counts["orders"] == 1


def test_a_recheck_with_no_open_order_is_done_at_once(app):
    db = app.extensions["db"]
    assert order_recheck.start_recheck(db, "rule_version:5")["chunks"] == 0
    assert _jobs(db)[-1].status == "done" and _jobs(db)[-1].counts["orders"] == 0


def test_the_migration_matches_the_models_and_goes_down_and_up(make_app, db_url):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from compliance.db import alembic_config
    from compliance.models import Base

    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    flat = [d for d in diffs if isinstance(d, tuple)] + [x for d in diffs if isinstance(d, list) for x in d]
    assert [d for d in flat if "order_recheck" in repr(d)] == []
    db.dispose()
    url = app.config["COMPLIANCE"].DATABASE_URL
    command.downgrade(alembic_config(url), "0018_activity_events")
    command.upgrade(alembic_config(url), "head")
    assert order_recheck.start_recheck(db, "rule_version:1")["planned"] is True

