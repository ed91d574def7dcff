"""An audit's full report, streamed: one row per product x destination, as CSV, JSON, JSON Lines or XLSX.

Every row carries what an auditor needs to show why: the product's name and vendor, the audit's as-of
date and transaction type, its pinned rule version and revision, the licence rules that decided and their
citations. CSV, JSON Lines and XLSX go through the shared writer (services/tabular.py: formula cells
neutralised); JSON is ``{audit fields..., "results": [...]}``. The API, the console and `compliance audit run --out` use it.
"""
from __future__ import annotations

import json
from typing import Any, Iterator

from sqlalchemy import select

from ..db import Database
from ..models import AuditResult, Product, RuleVersion
from .audit_results import OutcomeDecoder, check_result_filters, get_audit, result_rows
from .tabular import iter_export

FORMATS = ("csv", "json", "jsonl", "xlsx")
REPORT_COLUMNS = ("sku", "product_name", "vendor", "eccn", "status", "destination", "requirement", "review_policy",
                  "exceptions", "rule_ids", "citations", "margins", "missing", "as_of", "transaction_type",
                  "rule_version", "ruleset_revision", "product_id")
AUDIT_FIELDS = ("as_of", "transaction_type", "rule_version", "ruleset_revision")  # the same on every row


def _rows(db: Database, store, audit, destination: str | None, requirement: str | None,
          batch: int) -> Iterator[dict[str, Any]]:
    decoder = OutcomeDecoder(store, db, audit)
    with db.session() as s:
        version = s.get(RuleVersion, audit.rule_version_id)
        number = version.number
        rulebook = store.rulebook_for(version)
    citation = {r.id: r.citation for r in rulebook.in_force(audit.as_of).licence}
    fixed = {"as_of": audit.as_of.isoformat(), "transaction_type": audit.transaction_type, "rule_version": number,
             "ruleset_revision": audit.ruleset_revision}
    q = (select(AuditResult.product_id, AuditResult.sku, AuditResult.eccn, AuditResult.status, AuditResult.margins,
                AuditResult.missing, AuditResult.outcomes, Product.name, Product.vendor)
         .outerjoin(Product, Product.id == AuditResult.product_id)
         .where(AuditResult.audit_id == audit.id).order_by(AuditResult.product_id).execution_options(yield_per=batch))
    with db.session() as s:
        for r in s.execute(q):
            for rec in result_rows(decoder, r, destination, requirement):
                rec["product_name"] = r.name
                rec["vendor"] = r.vendor
                rec["citations"] = [citation[i] for i in rec["rule_ids"] if i in citation]
                yield rec | fixed


def iter_report(db: Database, store, audit_id: int, fmt: str, destination: str | None = None,
                requirement: str | None = None, batch: int = 5000) -> Iterator[str | bytes]:
    """The full report as pieces (text; bytes for XLSX). Raises NotFound / InvalidInput before the first piece."""
    audit = get_audit(db, audit_id)
    destination = destination.upper() if destination else None
    check_result_filters(audit, destination, requirement)
    rows = _rows(db, store, audit, destination, requirement, batch)
    if fmt != "json":
        return iter_export(fmt, REPORT_COLUMNS, rows, f"audit {audit_id}")
    return _iter_json(db, audit, rows)


def _iter_json(db: Database, audit, rows) -> Iterator[str]:
    with db.session() as s:
        number = s.get(RuleVersion, audit.rule_version_id).number
    head = {"audit_id": audit.id, "catalogue_id": audit.catalogue_id, "status": audit.status,
            "as_of": audit.as_of.isoformat(), "destinations": audit.destinations,
            "transaction_type": audit.transaction_type, "rule_version": number,
            "ruleset_revision": audit.ruleset_revision}
    yield json.dumps(head)[:-1] + ', "results": ['
    parts: list[str] = []
    first = True
    for rec in rows:
        parts.append(json.dumps({k: rec[k] for k in REPORT_COLUMNS if k not in AUDIT_FIELDS}))
        if len(parts) >= 2000:
            yield ("" if first else ",") + ",".join(parts)
            first, parts = False, []
    if parts:
        yield ("" if first else ",") + ",".join(parts)
    yield "]}"
