"""Export of determinations with their history (superseded and pending ones too) for an auditor: CSV or XLSX
(through the shared writer, services/tabular.py: formula cells neutralised) or JSON, streamed."""
from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Iterator

from sqlalchemy import select

from ..db import Database
from ..models import Determination, Product
from .determinations import determination_view, review_reasons, state_of
from .tabular import iter_csv as _tabular_csv
from .tabular import iter_xlsx as _tabular_xlsx

COLUMNS = ("id", "catalogue_id", "sku", "product_name", "eccn", "state", "recorded_by", "recorded_at",
           "approval_required", "approved_by", "approved_at", "superseded_by", "superseded_at", "rule_version",
           "ruleset_revision", "as_of", "computed_eccn", "computed_status", "current_eccn", "current_status",
           "current_revision", "needs_review", "review_reasons", "basis_datasheet", "basis_text",
           "basis_spec_figures", "input_sha256", "decision_id")
BATCH = 1000


def _text(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def export_rows(db: Database, catalogue_id: int | None = None) -> Iterator[dict[str, Any]]:
    """Every determination (oldest first) with the product's current computed answer and review state."""
    last = 0
    while True:
        with db.session() as s:
            q = select(Determination, Product).outerjoin(Product, Product.id == Determination.product_id).where(
                Determination.id > last)
            if catalogue_id is not None:
                q = q.where(Determination.catalogue_id == catalogue_id)
            rows = s.execute(q.order_by(Determination.id).limit(BATCH)).all()
            out = []
            for d, p in rows:
                view = determination_view(d)
                reasons = review_reasons(d, p) if state_of(d) == "in_force" else []
                basis = d.basis or {}
                out.append({
                    "id": d.id, "catalogue_id": d.catalogue_id, "sku": d.sku, "product_name": d.product_name,
                    "eccn": d.eccn, "state": view["state"], "recorded_by": d.recorded_by,
                    "recorded_at": _text(d.recorded_at), "approval_required": d.approval_required,
                    "approved_by": d.approved_by, "approved_at": _text(d.approved_at),
                    "superseded_by": d.superseded_by_id, "superseded_at": _text(d.superseded_at),
                    "rule_version": d.rule_version, "ruleset_revision": d.ruleset_revision, "as_of": _text(d.as_of),
                    "computed_eccn": d.computed_eccn, "computed_status": d.computed_status,
                    "current_eccn": p.eccn if p else None, "current_status": p.status if p else None,
                    "current_revision": p.classified_revision if p else None, "needs_review": bool(reasons),
                    "review_reasons": "; ".join(reasons), "basis_datasheet": basis.get("datasheet"),
                    "basis_text": basis.get("text"),
                    "basis_spec_figures": json.dumps(basis["spec_figures"], sort_keys=True)
                    if basis.get("spec_figures") else None,
                    "input_sha256": d.input_sha256, "decision_id": d.decision_id})
        if not out:
            return
        yield from out
        last = out[-1]["id"]


def iter_csv(db: Database, catalogue_id: int | None = None) -> Iterator[str]:
    return _tabular_csv(COLUMNS, export_rows(db, catalogue_id))


def iter_xlsx(db: Database, catalogue_id: int | None = None) -> Iterator[bytes]:
    return _tabular_xlsx(COLUMNS, export_rows(db, catalogue_id), "determinations")


def iter_json(db: Database, catalogue_id: int | None = None) -> Iterator[str]:
    yield '{"columns": ' + json.dumps(list(COLUMNS)) + ', "items": ['
    first = True
    for row in export_rows(db, catalogue_id):
        yield ("" if first else ",") + json.dumps(row, sort_keys=False)
        first = False
    yield "]}"
