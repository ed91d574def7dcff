"""Reading audits: one audit's status with its progress, the list of audits, its result rows decoded to labels
(the full report is services/audit_report.py).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from sqlalchemy import func, select

from ..db import Database
from ..engine.codes import exception_names, policy_label
from ..engine.errors import InvalidInput, NotFound
from ..engine.vocabulary import REQUIREMENTS
from ..models import Audit, AuditChunk, AuditResult, RuleVersion
from .audit_outcomes import decode_outcome, final_counts
from .determinations import audit_needs_review
from .paging import Page


def _now() -> datetime:
    return datetime.now(timezone.utc)


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
        started = audit.started_at
        timings = {"queued_at": audit.created_at.isoformat() if audit.created_at else None,
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


def result_rows(decoder: OutcomeDecoder, r, dest: str | None, requirement: str | None) -> list[dict[str, Any]]:
    out = []
    for lic in decoder.decode(r.outcomes):
        if dest and lic["destination"] != dest:
            continue
        if requirement and lic["requirement"] != requirement:
            continue
        out.append({"product_id": r.product_id, "sku": r.sku, "eccn": r.eccn, "status": r.status, **lic,
                    "margins": r.margins, "missing": r.missing})
    return out


def check_result_filters(audit: Audit, destination: str | None, requirement: str | None) -> None:
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
    check_result_filters(audit, destination, requirement)
    decoder = OutcomeDecoder(store, db, audit)
    m_sel = 1 if destination else len(audit.destinations)
    base = AuditResult.audit_id == audit_id
    offset = (page - 1) * per_page
    with db.session() as s:
        codes = dict(s.execute(select(AuditResult.outcomes, func.count()).where(base)
                               .group_by(AuditResult.outcomes)).all())
        if requirement:
            keep = {oc: len(result_rows(decoder, _Row(oc), destination, requirement)) for oc in codes}
            keep = {oc: k for oc, k in keep.items() if k}
            total = sum(codes[oc] * k for oc, k in keep.items())
            if not keep:
                return Page([], page, per_page, 0)
            q = select(AuditResult).where(base, AuditResult.outcomes.in_(list(keep))).order_by(AuditResult.product_id)
            rows: list[dict] = []
            skipped = 0
            for r in s.execute(q.execution_options(yield_per=2000)).scalars():
                expanded = result_rows(decoder, r, destination, requirement)
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
            rows.extend(result_rows(decoder, r, destination, None))
        return Page(rows[skip:skip + per_page], page, per_page, total)


class _Row:
    def __init__(self, outcomes: str):
        self.outcomes = outcomes
        self.product_id = self.sku = self.eccn = self.status = self.margins = self.missing = None
