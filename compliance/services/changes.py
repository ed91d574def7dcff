"""The change feed: change records written by re-evaluations after a publish, filtered and paged.
The API (GET /changes) and the web console both read it through `list_changes`."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Any

from sqlalchemy import func, or_, select

from ..db import Database
from ..engine.errors import NotFound
from ..models import Catalogue, ChangeRecord, Product, RuleVersion
from ..schemas.common import DB_ID_MAX
from .paging import Page


def change_view(c: ChangeRecord, product_name: str | None = None, catalogue_name: str | None = None) -> dict[str, Any]:
    return {"id": c.id, "run_id": c.run_id, "catalogue_id": c.catalogue_id, "catalogue_name": catalogue_name,
            "product_id": c.product_id, "sku": c.sku, "product_name": product_name,
            "destination": c.destination, "as_of": c.as_of.isoformat(), "from_revision": c.from_revision,
            "to_revision": c.to_revision,
            "old": {"eccn": c.old_eccn, "status": c.old_status, "requirement": c.old_requirement,
                    "review_policy": c.old_review_policy},
            "new": {"eccn": c.new_eccn, "status": c.new_status, "requirement": c.new_requirement,
                    "review_policy": c.new_review_policy},
            "cause_rule_ids": [x for x in (c.cause_rule_ids or "").split(",") if x],
            "created_at": c.created_at.isoformat() if c.created_at else None}


def _filtered(session, filters: dict[str, Any]):
    C = ChangeRecord
    q = select(C)
    if filters.get("catalogue_id") is not None:
        q = q.where(C.catalogue_id == filters["catalogue_id"])
    if filters.get("product"):
        p = filters["product"]
        # an id must be ASCII digits ("²".isdigit() is true) and fit a 64-bit id; else it is a SKU
        is_id = p.isascii() and p.isdigit() and int(p) <= DB_ID_MAX
        q = q.where(or_(C.sku == p, C.product_id == int(p)) if is_id else C.sku == p)
    if filters.get("destination"):
        q = q.where(C.destination == filters["destination"])
    if filters.get("revision"):
        r = filters["revision"].lower()
        q = q.where(C.to_revision == r) if len(r) == 64 else q.where(C.to_revision.like(r + "%"))
    if filters.get("version") is not None:
        rev = session.scalar(select(RuleVersion.revision).where(RuleVersion.number == filters["version"]))
        if rev is None:
            raise NotFound(f"no rule version {filters['version']}", {"version": ["unknown version"]})
        q = q.where(C.to_revision == rev)
    if filters.get("run_id") is not None:
        q = q.where(C.run_id == filters["run_id"])
    if filters.get("rule"):
        like = f"%{filters['rule']}%"
        q = q.where(C.cause_rule_ids.like(like))
    if filters.get("since"):
        q = q.where(C.created_at >= _day_start(filters["since"]))
    if filters.get("until"):
        q = q.where(C.created_at < _day_start(filters["until"], 1))
    return q


def _with_names(q):
    """The query's change records with their product's and catalogue's names (None once deleted)."""
    return (q.add_columns(Product.name, Catalogue.name)
            .outerjoin(Product, Product.id == ChangeRecord.product_id)
            .outerjoin(Catalogue, Catalogue.id == ChangeRecord.catalogue_id))


def _day_start(day: date, plus_days: int = 0) -> datetime:
    from datetime import timedelta

    return datetime.combine(day + timedelta(days=plus_days), time.min, tzinfo=timezone.utc)


def list_changes(db: Database, page: int = 1, per_page: int = 100, **filters: Any) -> Page:
    """Change records, newest first. Filters: catalogue_id, product (id or SKU), destination, revision
    (full or prefix), version, run_id, rule (a cause rule id, substring), since/until (dates recorded)."""
    C = ChangeRecord
    with db.session() as s:
        q = _filtered(s, filters)
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        items = [change_view(*r) for r in s.execute(_with_names(q).order_by(C.id.desc())
                                                     .offset((page - 1) * per_page).limit(per_page))]
    return Page(items, page, per_page, total)


def iter_changes(db: Database, batch: int = 1000, **filters: Any):
    """Every matching change record, newest first, in batches (exports)."""
    C = ChangeRecord
    last_id = None
    while True:
        with db.session() as s:
            q = _filtered(s, filters)
            if last_id is not None:
                q = q.where(C.id < last_id)
            rows = [change_view(*r) for r in s.execute(_with_names(q).order_by(C.id.desc()).limit(batch))]
        if not rows:
            return
        yield from rows
        last_id = rows[-1]["id"]
