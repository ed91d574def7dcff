"""Catalogue audits: create (pinned rule revision), run chunks, finalize, read results (the full report is
services/audit_report.py).

An audit evaluates every product of a catalogue as of one date for a list of destinations. It is a job
of compliance.services.jobs: `AuditChunk`s (product id ranges) are claimed under a lease and each
writes its `AuditResult` rows in the fenced finish (which first deletes any rows of its range, so even a
chunk reset by hand leaves exactly one row per product; UNIQUE(audit_id, product_id) backs it).

`AuditResult.outcomes` encodes each destination's licence result as ``req:policy:exceptions:bits``
(integer codes of compliance.engine.evaluate), joined by ``;`` in the audit's destination order.
`rule bits` index ``rulebook.in_force(as_of).licence`` of the audit's pinned revision.
"""
from __future__ import annotations

import logging
import time
from datetime import date, datetime, timezone
from typing import Any, Sequence

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from ..db import Database
from ..engine import evaluate
from ..engine.codes import POLICY_UNKNOWN, exception_names, policy_label
from ..engine.errors import InvalidInput, NotFound
from ..engine.evaluate import Evaluation
from ..engine.explain import margins_and_missing
from ..engine.vocabulary import REQUIREMENTS, TRANSACTION_TYPES
from ..models import Audit, AuditChunk, AuditResult, Catalogue, Product, RuleVersion
from . import idempotency as idem
from . import jobs
from .determinations import audit_needs_review
from .paging import Page
from .product_columns import load_chunk
from .webhooks import enqueue_deliveries

log = logging.getLogger(__name__)
AUDIT_JOB = jobs.JobKind("audit", Audit, AuditChunk, "audit_id", "compliance.audits.chunk")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(dt: datetime | None) -> datetime | None:
    return None if dt is None else (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc))


# ---------------------------------------------------------------- creation

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


# ---------------------------------------------------------------- one chunk

def encode_outcomes(ev: Evaluation) -> list[str]:
    """Per top-level product: 'req:policy:exc:bits' per destination joined by ';' (each distinct row once)."""
    k, m = ev.requirement.shape
    if k == 0:
        return []
    if m == 0:
        return [""] * k
    stacked = np.concatenate([ev.requirement.astype(np.int64), ev.policy.astype(np.int64),
                              ev.exceptions.astype(np.int64), ev.rule_bits.astype(np.int64)], axis=1)
    uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
    labels = [";".join(f"{u[j]}:{u[m + j]}:{u[2 * m + j]}:{int(np.uint64(u[3 * m + j]))}" for j in range(m))
              for u in uniq]
    return [labels[i] for i in inverse.reshape(-1)]


def chunk_counts(eccn: Sequence[str | None], status: Sequence[str], outcomes: Sequence[str]) -> dict[str, Any]:
    """Counts of one chunk (progress while an audit runs; the final counts come from the database)."""
    from collections import Counter

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
    now = _aware(audit.finished_at) or _now()
    started, created = _aware(audit.started_at), _aware(audit.created_at)
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
    from .webhooks import enqueue_event

    counts = audit.counts or {}
    data = {"audit_id": audit.id, "catalogue_id": audit.catalogue_id, "status": audit.status,
            "as_of": audit.as_of.isoformat(), "destinations": audit.destinations,
            "transaction_type": audit.transaction_type,
            "ruleset_revision": audit.ruleset_revision, "products": audit.total,
            "by_eccn": counts.get("by_eccn"), "by_status": counts.get("by_status"), "error": audit.error}
    return enqueue_event(session, f"audit.{'completed' if audit.status == 'done' else 'failed'}", data,
                         key=f"audit:{audit.id}")


def decode_outcome(segment: str) -> tuple[int, int, int, int]:
    req, pol, exc, bits = segment.split(":")
    return int(req), int(pol), int(exc), int(bits)


def policy_count_key(code: int) -> str:
    """The key a review-policy code is counted under in audit counts."""
    return "unknown" if code == POLICY_UNKNOWN else (policy_label(code) or "none")


def final_counts(destinations: Sequence[str], rows: Sequence[tuple]) -> dict[str, Any]:
    """Counts per ECCN, per status and per destination x requirement x review policy."""
    by_eccn: dict[str, int] = {}
    by_status: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    licences: dict[str, dict[str, dict[str, int]]] = {d: {} for d in destinations}
    total = 0
    for eccn, status, oc, n in rows:
        total += n
        by_eccn[eccn or "none"] = by_eccn.get(eccn or "none", 0) + n
        by_status[status] = by_status.get(status, 0) + n
        outcomes[oc] = outcomes.get(oc, 0) + n
    for oc, n in outcomes.items():
        for dest, seg in zip(destinations, oc.split(";") if oc else []):
            req, pol, _, _ = decode_outcome(seg)
            bucket = licences[dest].setdefault(REQUIREMENTS[req], {})
            key = policy_count_key(pol)
            bucket[key] = bucket.get(key, 0) + n
    return {"products": total, "by_eccn": by_eccn, "by_status": by_status, "licences": licences,
            "outcomes": outcomes}


# ---------------------------------------------------------------- reading

def get_audit(db: Database, audit_id: int) -> Audit:
    with db.session() as s:
        audit = s.get(Audit, audit_id)
        if audit is None:
            raise NotFound(f"no audit {audit_id}")
        s.expunge(audit)
        return audit


def audit_status(db: Database, audit_id: int) -> dict[str, Any]:
    """Status, progress, counts and timings of an audit (partial counts while it runs)."""
    audit = get_audit(db, audit_id)
    with db.session() as s:
        chunks = s.execute(select(AuditChunk.status, AuditChunk.size, AuditChunk.counts)
                           .where(AuditChunk.audit_id == audit_id)).all()
    done = [c for c in chunks if c[0] == "done"]
    products_done = sum(c[1] for c in done)
    if audit.status == "done":
        counts = dict(audit.counts)
    else:
        merged = {"by_eccn": {}, "by_status": {}, "outcomes": {}}
        for c in done:
            for key in merged:
                for k, v in (c[2] or {}).get(key, {}).items():
                    merged[key][k] = merged[key].get(k, 0) + v
        partial = final_counts(audit.destinations, [(None, None, oc, n) for oc, n in merged["outcomes"].items()])
        counts = {"products": products_done, "by_eccn": merged["by_eccn"], "by_status": merged["by_status"],
                  "licences": partial["licences"], "outcomes": merged["outcomes"]}
    counts.pop("outcomes", None)
    if audit.status == "done":  # determinations in force that this audit's answers contradict
        counts["determinations_needing_review"] = audit_needs_review(db, audit_id)["needs_review"]
    timings = dict(audit.timings or {})
    if audit.status != "done":
        now = _now()
        started = _aware(audit.started_at)
        timings = {"queued_at": _aware(audit.created_at).isoformat() if audit.created_at else None,
                   "started_at": started.isoformat() if started else None, "finished_at": None,
                   "seconds": round((now - started).total_seconds(), 3) if started else None}
        if started and products_done:
            timings["products_per_second"] = round(products_done / max((now - started).total_seconds(), 1e-6), 1)
    return {
        "id": audit.id, "catalogue_id": audit.catalogue_id, "status": audit.status, "as_of": audit.as_of.isoformat(),
        "destinations": audit.destinations, "end_user": {"headquarters": audit.headquarters},
        "transaction_type": audit.transaction_type,
        "ruleset_revision": audit.ruleset_revision, "rule_version_id": audit.rule_version_id,
        "requested_by": audit.requested_by, "error": audit.error,
        "progress": {"products_done": products_done, "products_total": audit.total,
                     "chunks_done": len(done), "chunks_total": len(chunks),
                     "percent": round(100.0 * products_done / audit.total, 1) if audit.total else 100.0},
        "counts": counts, "timings": timings,
    }


def list_audits(db: Database, catalogue_id: int | None = None, status: Sequence[str] | None = None,
                page: int = 1, per_page: int = 100) -> Page:
    """One page of audits, newest first: of one catalogue and/or in the given statuses (e.g. the running ones)."""
    cond = []
    if catalogue_id is not None:
        cond.append(Audit.catalogue_id == catalogue_id)
    if status:
        cond.append(Audit.status.in_(list(status)))
    with db.session() as s:
        total = int(s.scalar(select(func.count()).select_from(Audit).where(*cond)) or 0)
        audits = s.scalars(select(Audit).where(*cond).order_by(Audit.id.desc())
                           .offset((page - 1) * per_page).limit(per_page)).all()
        items = [{"id": a.id, "catalogue_id": a.catalogue_id, "status": a.status, "as_of": a.as_of.isoformat(),
                  "destinations": a.destinations, "transaction_type": a.transaction_type, "total": a.total,
                  "created_at": a.created_at.isoformat() if a.created_at else None} for a in audits]
    return Page(items, page, per_page, total)


class OutcomeDecoder:
    """Turns stored outcome strings back into labels, via the pinned revision's licence rules in force."""

    def __init__(self, store, db: Database, audit: Audit):
        with db.session() as s:
            version = s.get(RuleVersion, audit.rule_version_id)
            s.expunge(version)
        rulebook = store.rulebook_for(version)
        self.rule_ids = [r.id for r in rulebook.in_force(audit.as_of).licence]
        self.destinations = list(audit.destinations)
        self._cache: dict[str, list[dict[str, Any]]] = {}

    def decode(self, outcomes: str) -> list[dict[str, Any]]:
        hit = self._cache.get(outcomes)
        if hit is None:
            hit = []
            for dest, seg in zip(self.destinations, outcomes.split(";") if outcomes else []):
                req, pol, exc, bits = decode_outcome(seg)
                hit.append({"destination": dest, "requirement": REQUIREMENTS[req],
                            "review_policy": policy_label(pol),  # as the classify API
                            "exceptions": exception_names(exc),
                            "rule_ids": [r for b, r in enumerate(self.rule_ids) if bits >> b & 1]})
            self._cache[outcomes] = hit
        return hit


def _result_rows(decoder: OutcomeDecoder, r, dest: str | None, requirement: str | None) -> list[dict[str, Any]]:
    out = []
    for lic in decoder.decode(r.outcomes):
        if dest and lic["destination"] != dest:
            continue
        if requirement and lic["requirement"] != requirement:
            continue
        out.append({"product_id": r.product_id, "sku": r.sku, "eccn": r.eccn, "status": r.status, **lic,
                    "margins": r.margins, "missing": r.missing})
    return out


def _check_filters(audit: Audit, destination: str | None, requirement: str | None) -> None:
    if destination and destination not in audit.destinations:
        raise InvalidInput(f"destination {destination!r} is not part of this audit ({', '.join(audit.destinations)})",
                           {"destination": [f"not one of {audit.destinations}"]})
    if requirement and requirement not in REQUIREMENTS:
        raise InvalidInput(f"unknown requirement {requirement!r}", {"requirement": [f"must be one of {list(REQUIREMENTS)}"]})


def audit_results_page(db: Database, store, audit_id: int, page: int, per_page: int, destination: str | None = None,
                       requirement: str | None = None) -> Page:
    """One page of product x destination result rows (ordered by product id, then destination)."""
    audit = get_audit(db, audit_id)
    destination = destination.upper() if destination else None
    _check_filters(audit, destination, requirement)
    decoder = OutcomeDecoder(store, db, audit)
    m_sel = 1 if destination else len(audit.destinations)
    base = AuditResult.audit_id == audit_id
    offset = (page - 1) * per_page
    with db.session() as s:
        codes = dict(s.execute(select(AuditResult.outcomes, func.count()).where(base)
                               .group_by(AuditResult.outcomes)).all())
        if requirement:
            keep = {oc: len(_result_rows(decoder, _Row(oc), destination, requirement)) for oc in codes}
            keep = {oc: k for oc, k in keep.items() if k}
            total = sum(codes[oc] * k for oc, k in keep.items())
            if not keep:
                return Page([], page, per_page, 0)
            q = select(AuditResult).where(base, AuditResult.outcomes.in_(list(keep))).order_by(AuditResult.product_id)
            rows: list[dict] = []
            skipped = 0
            for r in s.execute(q.execution_options(yield_per=2000)).scalars():
                expanded = _result_rows(decoder, r, destination, requirement)
                if skipped + len(expanded) <= offset:
                    skipped += len(expanded)
                    continue
                start = max(0, offset - skipped)
                skipped += start
                rows.extend(expanded[start:])
                if len(rows) >= per_page:
                    break
            return Page(rows[:per_page], page, per_page, total)
        total = sum(codes.values()) * m_sel
        first, skip = divmod(offset, m_sel)
        need = (skip + per_page + m_sel - 1) // m_sel
        q = select(AuditResult).where(base).order_by(AuditResult.product_id).offset(first).limit(need)
        rows = []
        for r in s.scalars(q):
            rows.extend(_result_rows(decoder, r, destination, None))
        return Page(rows[skip:skip + per_page], page, per_page, total)


class _Row:
    def __init__(self, outcomes: str):
        self.outcomes = outcomes
        self.product_id = self.sku = self.eccn = self.status = self.margins = self.missing = None


# ---------------------------------------------------------------- crash recovery

def sweep_audits(db: Database, requeue_after: float) -> dict[str, int]:
    """Finalize complete audits; re-enqueue chunks whose lease expired or whose message may be lost."""
    return jobs.sweep(db, AUDIT_JOB, _finalize, requeue_after)
