"""Running a catalogue audit as a job: create it (rule revision pinned), start it, run one chunk, finalize it
once, sweep stalled work. Reading its results is services/audit_results.py.

An audit evaluates every product of a catalogue as of one date for a list of destinations. It is a job
of compliance.services.jobs: `AuditChunk`s (product id ranges) are claimed under a lease; each
writes its `AuditResult` rows in the fenced finish (which first deletes any rows of its range, so even a
chunk reset by hand leaves exactly one row per product; UNIQUE(audit_id, product_id) backs it). The rows'
outcome strings are services/audit_outcomes.py.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import date, datetime, timezone
from typing import Any, Sequence

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from ..db import Database
from ..engine import evaluate
from ..engine.errors import InvalidInput, NotFound
from ..engine.explain import margins_and_missing
from ..engine.vocabulary import TRANSACTION_TYPES
from ..models import Audit, AuditChunk, AuditResult, Catalogue, Product, RuleVersion
from . import idempotency as idem
from . import jobs
from .audit_outcomes import encode_outcomes, final_counts
from .audit_results import get_audit
from .product_columns import load_chunk
from .webhooks import enqueue_deliveries, enqueue_event

log = logging.getLogger(__name__)
AUDIT_JOB = jobs.JobKind("audit", Audit, AuditChunk, "audit_id", "compliance.audits.chunk")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def create_audit(db: Database, store, catalogue_id: int, as_of: date, destinations: Sequence[str] | None,
                 headquarters: str | None = None, actor: str = "", chunk_size: int = 50_000,
                 enqueue: bool = True, idempotency: idem.Request | None = None,
                 transaction_type: str = "export") -> Audit:
    """Create an audit with its chunks in one transaction (rule revision pinned now); its chunk tasks are
    sent once that transaction commits (unless enqueue=False: then `start_audit` sends them). Every product
    is evaluated as one `transaction_type` (export, reexport, in_country_transfer), as classify does.

    With no destinations, the catalogue's watched destinations are audited. With an Idempotency-Key
    already answered, that first audit is returned (422 if the key came with another request)."""
    args = (db, store, catalogue_id, as_of, destinations, headquarters, actor, chunk_size, enqueue, transaction_type)
    if idempotency is None:
        return _create(*args, None)
    hit = idem.replay(db, idempotency)
    if hit is None:
        try:
            return _create(*args, idempotency)
        except IntegrityError:  # a concurrent request with the same key won: answer as it did
            hit = idem.replay(db, idempotency)
            if hit is None:
                raise
    return get_audit(db, hit[0])


def _create(db: Database, store, catalogue_id: int, as_of: date, destinations: Sequence[str] | None,
            headquarters: str | None, actor: str, chunk_size: int, enqueue: bool, transaction_type: str,
            idempotency: idem.Request | None) -> Audit:
    if destinations is None:
        with db.session() as s:
            cat = s.get(Catalogue, catalogue_id)
            if cat is None:
                raise NotFound(f"no catalogue {catalogue_id}")
            destinations = list(cat.destinations or [])
    dests = list(dict.fromkeys(d.upper() for d in destinations))
    if not dests:
        raise InvalidInput("at least one destination is needed", {"destinations": ["give at least one country code"]})
    version, rulebook = store.current()
    # Validate codes the way the engine will (unknown country -> 422 naming it).
    from ..engine.evaluate import _country_codes

    _country_codes(dests, "destinations")
    if headquarters:
        _country_codes([headquarters], "end_user.headquarters")
    if transaction_type not in TRANSACTION_TYPES:
        raise InvalidInput(f"unknown transaction_type {transaction_type!r}",
                           {"transaction_type": [f"must be one of {list(TRANSACTION_TYPES)}"]})
    with db.session() as s:
        if s.get(Catalogue, catalogue_id) is None:
            raise NotFound(f"no catalogue {catalogue_id}")
        ranges = jobs.id_ranges(s, select(Product.id).where(Product.catalogue_id == catalogue_id)
                                .order_by(Product.id), chunk_size)
        audit = Audit(catalogue_id=catalogue_id, rule_version_id=version.id, ruleset_revision=version.revision,
                      as_of=as_of, destinations=dests, headquarters=headquarters,
                      transaction_type=transaction_type, status="pending",
                      total=sum(r[2] for r in ranges), counts={}, timings={}, requested_by=actor[:200])
        s.add(audit)
        s.flush()
        if idempotency is not None:
            idem.remember(s, idempotency, "audit", audit.id, 202)
        chunks = [AuditChunk(audit_id=audit.id, seq=i, lo_id=lo, hi_id=hi, size=n, status="pending", attempts=0,
                             counts={}) for i, (lo, hi, n) in enumerate(ranges)]
        s.add_all(chunks)
        s.flush()
        if not chunks:
            jobs.finalize_in(s, AUDIT_JOB, audit.id, _finalize)
        elif enqueue:
            jobs.enqueue_chunks(s, AUDIT_JOB, audit.id, [c.id for c in chunks])
        s.flush()
        s.refresh(audit)
        s.expunge(audit)
    return audit


def start_audit(db: Database, audit_id: int) -> int:
    """Send the audit's undone chunks (after this call's commit); returns how many."""
    with db.session() as s:
        ids = jobs.undone_chunk_ids(s, AUDIT_JOB, audit_id)
        jobs.enqueue_chunks(s, AUDIT_JOB, audit_id, ids)
    return len(ids)


def chunk_counts(eccn: Sequence[str | None], status: Sequence[str], outcomes: Sequence[str]) -> dict[str, Any]:
    """Counts of one chunk (progress while an audit runs; the final counts come from the database)."""
    return {"by_eccn": dict(Counter(e or "none" for e in eccn)), "by_status": dict(Counter(status)),
            "outcomes": dict(Counter(outcomes))}


def run_chunk(db: Database, store, audit_id: int, chunk_id: int, lease_seconds: float = 30.0) -> dict[str, Any]:
    """Run one chunk through the job mechanism (claim, compute, fenced write, finalize the audit if last)."""
    return jobs.run_chunk(db, AUDIT_JOB, audit_id, chunk_id, lambda a, c: _compute(db, store, a, c), _finalize,
                          lease_seconds)


def _compute(db: Database, store, audit: Audit, chunk: AuditChunk) -> jobs.ChunkWork:
    """Evaluate one chunk; its write deletes what an earlier attempt wrote for the range, then inserts."""
    t0 = time.perf_counter()
    with db.session() as s:
        version = s.get(RuleVersion, audit.rule_version_id)
        s.expunge(version)
        parts = load_chunk(s, audit.catalogue_id, chunk.lo_id, chunk.hi_id)
    rulebook = store.rulebook_for(version)
    dests = list(audit.destinations)
    records: list[tuple] = []
    for part in parts:
        ev = evaluate(part.table, rulebook, audit.as_of, dests, audit.headquarters, audit.transaction_type)
        eccn = ev.top_eccn_labels()
        status = ev.top_status_labels()
        outcomes = encode_outcomes(ev)
        margins, missing = margins_and_missing(ev)
        for pid, sku, e, st, mg, ms, oc in zip(part.ids.tolist(), part.skus, eccn, status, margins, missing, outcomes):
            records.append((audit.id, pid, sku, e or None, st, mg, ms, oc))
    counts = chunk_counts([r[3] for r in records], [r[4] for r in records], [r[7] for r in records])

    def write(s) -> None:
        s.execute(delete(AuditResult).where(AuditResult.audit_id == audit.id, AuditResult.product_id >= chunk.lo_id,
                                            AuditResult.product_id <= chunk.hi_id))
        write_results(db, s, records)

    seconds = time.perf_counter() - t0
    log.info("audit %s chunk %s: %d products evaluated in %.2fs", audit.id, chunk.seq, len(records), seconds)
    return jobs.ChunkWork(write, values={"counts": counts, "seconds": seconds},
                          result={"audit_id": audit.id, "products": len(records)})


RESULT_FIELDS = ("audit_id", "product_id", "sku", "eccn", "status", "margins", "missing", "outcomes")


def write_results(db: Database, session, records: list[tuple]) -> None:
    """Insert result rows: COPY on PostgreSQL, executemany elsewhere."""
    if not records:
        return
    if db.is_postgres:
        conn = session.connection().connection.driver_connection
        with conn.cursor() as cur:
            with cur.copy(f"COPY audit_results ({', '.join(RESULT_FIELDS)}) FROM STDIN") as copy:
                for r in records:
                    copy.write_row(r)
    else:
        session.execute(insert(AuditResult), [dict(zip(RESULT_FIELDS, r)) for r in records])


def fail_chunk(db: Database, audit_id: int, chunk_id: int, error: str) -> None:
    with db.session() as s:
        was = s.scalar(select(Audit.status).where(Audit.id == audit_id))
    jobs.fail_chunk(db, AUDIT_JOB, audit_id, chunk_id, error)
    with db.session() as s:
        audit = s.get(Audit, audit_id)
        if audit is not None and audit.status == "failed" and was != "failed":
            enqueue_deliveries(s, _audit_event(s, audit))  # audit.failed, sent after the commit


def _finalize(s, audit: Audit) -> None:
    """Final counts from the stored results, and timings (run once, by the job mechanism)."""
    rows = s.execute(select(AuditResult.eccn, AuditResult.status, AuditResult.outcomes, func.count())
                     .where(AuditResult.audit_id == audit.id)
                     .group_by(AuditResult.eccn, AuditResult.status, AuditResult.outcomes)).all()
    counts = final_counts(audit.destinations, rows)
    now = audit.finished_at or _now()
    started, created = audit.started_at, audit.created_at
    seconds = (now - started).total_seconds()
    audit.counts = counts
    audit.timings = {"queued_at": created.isoformat(), "started_at": started.isoformat(),
                     "finished_at": now.isoformat(),
                     "queue_seconds": round((started - created).total_seconds(), 3),
                     "seconds": round(seconds, 3),
                     "products_per_second": round(counts["products"] / seconds, 1) if seconds > 0 else None}
    enqueue_deliveries(s, _audit_event(s, audit))  # audit.completed, sent after the commit


def _audit_event(session, audit: Audit) -> list[int]:
    """Queue audit.completed / audit.failed for the subscribers (inside the caller's transaction)."""
    counts = audit.counts or {}
    data = {"audit_id": audit.id, "catalogue_id": audit.catalogue_id, "status": audit.status,
            "as_of": audit.as_of.isoformat(), "destinations": audit.destinations,
            "transaction_type": audit.transaction_type,
            "ruleset_revision": audit.ruleset_revision, "products": audit.total,
            "by_eccn": counts.get("by_eccn"), "by_status": counts.get("by_status"), "error": audit.error}
    return enqueue_event(session, f"audit.{'completed' if audit.status == 'done' else 'failed'}", data,
                         key=f"audit:{audit.id}")


def sweep_audits(db: Database, requeue_after: float) -> dict[str, int]:
    """Finalize complete audits; re-enqueue chunks whose lease expired or whose message may be lost."""
    return jobs.sweep(db, AUDIT_JOB, _finalize, requeue_after)
