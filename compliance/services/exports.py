"""What the exports export: a catalogue's products, the change feed, the activity log, each as rows read
in id-ordered batches (memory stays flat), handed to the shared writer (services/tabular.py) as CSV,
JSON Lines or XLSX. The API, the console and the CLI call `export`.

- A catalogue in CSV/XLSX has the import's columns (services/import_cells.py) plus its standing (eccn, status,
  classified_revision, classified_on, computed_tpp, performance_density), which the import ignores: an
  exported file imports back to the same products. In JSON Lines each line is the product's spec as
  stored (the import's JSON Lines format, re-importable as it is).
- The change feed has the same filters as GET /changes and the product's and catalogue's names.
- The activity log (audit trail) has the same filters as GET /rules/audit-trail.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Iterator

from sqlalchemy import select

from ..db import Database
from ..engine.errors import InvalidInput
from ..models import ActivityEvent, Product
from .activity_log import activity_query
from .catalogues import get_catalogue
from .changes import iter_changes
from .import_cells import CSV_COLUMNS, EXPORT_ONLY_COLUMNS, spec_to_csv_row
from .tabular import FORMATS, iter_export, primed

BATCH = 2000
CATALOGUE_COLUMNS = tuple(c for c in CSV_COLUMNS if not c.startswith(("dense_", "sparse_"))) + EXPORT_ONLY_COLUMNS
CHANGE_COLUMNS = ("id", "created_at", "catalogue_id", "catalogue_name", "product_id", "sku", "product_name",
                  "destination", "as_of", "old_eccn", "old_status", "old_requirement", "old_review_policy", "new_eccn",
                  "new_status", "new_requirement", "new_review_policy", "cause_rule_ids", "from_revision",
                  "to_revision", "run_id")
ACTIVITY_COLUMNS = ("id", "at", "actor", "action", "target", "reason", "detail")


def check_format(fmt: str) -> str:
    fmt = (fmt or "").lower()
    fmt = {"ndjson": "jsonl"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r}; use csv, jsonl or xlsx",
                           {"format": [f"must be one of {', '.join(FORMATS)}"]})
    return fmt


def catalogue_products(db: Database, catalogue_id: int) -> Iterator[Product]:
    last = 0
    while True:
        with db.session() as s:
            batch = s.scalars(select(Product).where(Product.catalogue_id == catalogue_id, Product.id > last)
                              .order_by(Product.id).limit(BATCH)).all()
            s.expunge_all()
        if not batch:
            return
        yield from batch
        last = batch[-1].id


def _catalogue_row(p: Product) -> dict[str, Any]:
    return spec_to_csv_row(p.spec or {}) | {
        "sku": p.sku, "name": p.name, "eccn": p.eccn, "status": p.status, "classified_revision": p.classified_revision,
        "classified_on": p.classified_on, "computed_tpp": p.tpp, "performance_density": p.performance_density}


def _change_row(c: dict[str, Any]) -> dict[str, Any]:
    row = {k: c.get(k) for k in CHANGE_COLUMNS if k in c}
    for side in ("old", "new"):
        for k, v in c[side].items():
            row[f"{side}_{k}"] = v
    return row


def _activity_rows(db: Database, action: str | None, actor: str | None) -> Iterator[dict[str, Any]]:
    last = None
    while True:
        with db.session() as s:
            q = activity_query(action, actor)
            if last is not None:
                q = q.where(ActivityEvent.id < last)
            events = s.scalars(q.order_by(ActivityEvent.id.desc()).limit(BATCH)).all()
            rows = [{"id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "target": e.target,
                     "reason": e.reason, "detail": e.detail} for e in events]
        if not rows:
            return
        yield from rows
        last = rows[-1]["id"]


def _spec_lines(products: Iterable[Product]) -> Iterator[str]:
    parts: list[str] = []
    for p in products:
        parts.append(json.dumps(p.spec, default=str) + "\n")
        if len(parts) >= 1000:
            yield "".join(parts)
            parts = []
    yield "".join(parts)


def export(db: Database, what: str, fmt: str, catalogue_id: int | None = None,
           filters: dict[str, Any] | None = None) -> tuple[Iterator[str | bytes], str]:
    """(pieces, file name) of one export; `what` is catalogue, changes or activity. Bad filters and unknown
    ids raise here (NotFound / InvalidInput), before anything is streamed."""
    fmt = check_format(fmt)
    filters = filters or {}
    if what == "catalogue":
        cat = get_catalogue(db, catalogue_id)
        name = f"catalogue-{cat.id}.{fmt}"
        if fmt == "jsonl":
            return _spec_lines(catalogue_products(db, cat.id)), name
        return iter_export(fmt, CATALOGUE_COLUMNS, (_catalogue_row(p) for p in catalogue_products(db, cat.id)),
                           cat.name), name
    if what == "changes":
        rows = primed(_change_row(c) for c in iter_changes(db, **filters))  # an unknown version: 404 now
        return iter_export(fmt, CHANGE_COLUMNS, rows, "changes"), f"changes.{fmt}"
    if what == "activity":
        rows = _activity_rows(db, filters.get("action"), filters.get("actor"))
        return iter_export(fmt, ACTIVITY_COLUMNS, rows, "activity"), f"activity.{fmt}"
    raise ValueError(f"unknown export {what!r}")
