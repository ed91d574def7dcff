"""Audits on a real Celery worker (subprocess) with Redis and PostgreSQL.

Crash tests slow each chunk down in the worker process only (start_worker(slow=...), see
tests/integration/slow_worker.py) so a SIGKILL lands mid-chunk; a short JOB_LEASE_SECONDS and a beat
sweeper let the killed worker's chunks be picked up again quickly (the defaults: test_job_recovery.py).
"""
from __future__ import annotations

import io
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import func, select

from bench.audit_pipeline import csv_bytes
from compliance.engine import evaluate
from compliance.engine.vocabulary import REQUIREMENTS, REVIEW_POLICIES
from compliance.models import AuditChunk, AuditResult
from compliance.services.audit_results import audit_status
from compliance.services.audits import create_audit, start_audit
from compliance.services.catalogues import create_catalogue
from compliance.services.imports import import_file
from compliance.services.product_columns import load_chunk
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.services


AS_OF = date(2025, 6, 1)
DESTS = ["CN", "AE", "DE", "MO", "RU"]


def _catalogue(app, n: int, name: str = "synthetic") -> int:
    db, store = app.extensions["db"], app.extensions["rulebooks"]
    cat = create_catalogue(db, name, destinations=["CN"])
    rep = import_file(db, store, cat.id, io.BytesIO(csv_bytes(n)), "csv", "syn.csv")
    assert rep.imported == n and rep.rejected == 0
    return cat.id


def _expected_counts(app, catalogue_id: int, dests: list[str], hq: str | None) -> dict:
    """The engine run directly on every product of the catalogue in one table (no chunks, no Celery)."""
    db, store = app.extensions["db"], app.extensions["rulebooks"]
    _, rulebook = store.current()
    with db.session() as s:
        parts = load_chunk(s, catalogue_id, 0, 2**62)
    by_eccn, by_status = Counter(), Counter()
    licences = {d: Counter() for d in dests}
    for part in parts:
        ev = evaluate(part.table, rulebook, AS_OF, dests, hq)
        by_eccn.update(e or "none" for e in ev.top_eccn_labels())
        by_status.update(ev.top_status_labels())
        for j, d in enumerate(dests):
            for req, pol in zip(ev.requirement[:, j].tolist(), ev.policy[:, j].tolist()):
                policy = REVIEW_POLICIES[pol] if pol >= 0 else ("unknown" if pol == -2 else "none")
                licences[d][(REQUIREMENTS[req], policy)] += 1
    return {"by_eccn": dict(by_eccn), "by_status": dict(by_status),
            "licences": {d: dict(c) for d, c in licences.items()}}


def _flat_licences(counts: dict) -> dict:
    return {d: {(req, pol): n for req, pols in per.items() for pol, n in pols.items()}
            for d, per in counts["licences"].items()}


def _start(app, audit_id: int) -> None:
    start_audit(app.extensions["db"], audit_id)


def _done(app, audit_id: int):
    st = audit_status(app.extensions["db"], audit_id)
    assert st["status"] != "failed", st["error"]
    return st if st["status"] == "done" else None


def test_audit_of_12000_products_on_a_real_worker_matches_the_engine(worker_env, start_worker):
    app = worker_env.app
    n = 12_000
    cid = _catalogue(app, n)
    audit = create_audit(app.extensions["db"], app.extensions["rulebooks"], cid, AS_OF, DESTS, "US", "test",
                         chunk_size=1500, enqueue=False)
    start_worker(concurrency=2)
    _start(app, audit.id)
    st = wait_until(lambda: _done(app, audit.id), timeout=120, interval=0.3, message="the audit to finish")
    assert st["progress"] == {"products_done": n, "products_total": n, "chunks_done": 8, "chunks_total": 8,
                              "percent": 100.0}
    expected = _expected_counts(app, cid, DESTS, "US")
    assert st["counts"]["products"] == n
    assert st["counts"]["by_eccn"] == expected["by_eccn"]
    assert st["counts"]["by_status"] == expected["by_status"]
    assert _flat_licences(st["counts"]) == expected["licences"]
    assert len(expected["by_eccn"]) >= 3 and len(expected["by_status"]) == 3  # the data really is mixed
    assert st["timings"]["seconds"] > 0 and st["timings"]["products_per_second"] > 0
    with app.extensions["db"].session() as s:
        assert s.scalar(select(func.count()).select_from(AuditResult).where(AuditResult.audit_id == audit.id)) == n


def test_a_chunk_delivered_twice_runs_once_and_leaves_the_same_rows(worker_env, start_worker):
    app = worker_env.app
    db = app.extensions["db"]
    cid = _catalogue(app, 3000)
    audit = create_audit(db, app.extensions["rulebooks"], cid, AS_OF, ["CN", "AE"], None, "test", chunk_size=1000,
                         enqueue=False)
    with db.session() as s:
        chunk = s.scalar(select(AuditChunk).where(AuditChunk.audit_id == audit.id, AuditChunk.seq == 1))
        chunk_id, size = chunk.id, chunk.size
    start_worker(concurrency=2)
    celery = app.extensions["celery"]
    # The same message twice, at once: both worker processes run it concurrently.
    results = [celery.send_task("compliance.audits.chunk", args=[audit.id, chunk_id], queue="audits")
               for _ in range(2)]
    outs = [r.get(timeout=60) for r in results]
    assert sorted(bool(o.get("skipped")) for o in outs) == [False, True]  # one ran, the other was a no-op

    def rows():
        with db.session() as s:
            return s.execute(select(AuditResult.product_id, AuditResult.outcomes, AuditResult.margins)
                             .where(AuditResult.audit_id == audit.id).order_by(AuditResult.product_id)).all()

    first = rows()
    assert len(first) == size == len({r[0] for r in first})
    again = celery.send_task("compliance.audits.chunk", args=[audit.id, chunk_id], queue="audits").get(timeout=60)
    assert again["skipped"] and rows() == first
    with db.session() as s:
        chunk = s.get(AuditChunk, chunk_id)
        assert chunk.status == "done" and chunk.attempts == 1 and chunk.lease_owner is None
    assert audit_status(db, audit.id)["status"] == "running"  # the other chunks never ran


def test_a_worker_killed_mid_audit_is_recovered_by_redelivery_without_loss_or_doubles(worker_env, start_worker):
    app = worker_env.app
    db = app.extensions["db"]
    n = 4000
    cid = _catalogue(app, n)
    audit = create_audit(db, app.extensions["rulebooks"], cid, AS_OF, ["CN", "AE"], None, "test", chunk_size=100,
                         enqueue=False)
    # A message the killed worker had received but not yet claimed comes back after JOB_REQUEUE_SECONDS.
    short = {"JOB_LEASE_SECONDS": "2", "JOB_SWEEP_SECONDS": "1", "JOB_REQUEUE_SECONDS": "5"}
    w = start_worker(concurrency=2, extra_env=short, slow=0.4)
    _start(app, audit.id)

    def running_chunks() -> int:
        with db.session() as s:
            return s.scalar(select(func.count()).select_from(AuditChunk).where(
                AuditChunk.audit_id == audit.id, AuditChunk.status == "running"))

    def some_done():
        # Kill while a chunk is in flight (each sleeps 0.4 s after claiming its lease), not between two.
        st = audit_status(db, audit.id)
        return st if 4 <= st["progress"]["chunks_done"] < 30 and running_chunks() >= 1 else None

    before = wait_until(some_done, timeout=60, interval=0.05, message="a few chunks to finish")
    w.kill()
    st = audit_status(db, audit.id)
    assert st["status"] == "running" and st["progress"]["chunks_done"] < 40, "the kill must land mid-audit"
    assert running_chunks() >= 1  # the killed worker left chunks leased: the sweeper re-sends them on expiry
    start_worker(concurrency=2, extra_env=short, slow=0.4, beat=True)
    st = wait_until(lambda: _done(app, audit.id), timeout=150, interval=0.3, message="the audit to finish")
    assert st["progress"]["products_done"] == n and before["progress"]["chunks_done"] >= 4
    expected = _expected_counts(app, cid, ["CN", "AE"], None)
    assert st["counts"]["by_eccn"] == expected["by_eccn"]
    assert _flat_licences(st["counts"]) == expected["licences"]
    with db.session() as s:
        ids = s.scalars(select(AuditResult.product_id).where(AuditResult.audit_id == audit.id)).all()
        assert len(ids) == n == len(set(ids))
        redelivered = s.scalar(select(func.count()).select_from(AuditChunk).where(
            AuditChunk.audit_id == audit.id, AuditChunk.attempts >= 2))
    assert redelivered >= 1  # at least one chunk ran again after the crash (its first attempt wrote nothing)
