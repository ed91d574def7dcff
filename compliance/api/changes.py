"""The change feed and point-in-time views of a catalogue."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from sqlalchemy import func, or_, select

from ..auth import require_role
from ..engine.errors import NotFound
from ..models import ChangeRecord, RuleVersion
from ..schemas.changes import CatalogueAsOfQuerySchema, CatalogueDiffQuerySchema, ChangesQuerySchema
from ..schemas.common import DB_ID_MAX
from ..services.point_in_time import catalogue_as_of, catalogue_diff
from .blueprint import Blueprint

blp = Blueprint("changes", __name__, url_prefix="/api/v1", description="Change feed and point-in-time catalogue views")


def change_view(c: ChangeRecord) -> dict:
    return {"id": c.id, "run_id": c.run_id, "catalogue_id": c.catalogue_id, "product_id": c.product_id, "sku": c.sku,
            "destination": c.destination, "as_of": c.as_of.isoformat(), "from_revision": c.from_revision,
            "to_revision": c.to_revision,
            "old": {"eccn": c.old_eccn, "status": c.old_status, "requirement": c.old_requirement,
                    "review_policy": c.old_review_policy},
            "new": {"eccn": c.new_eccn, "status": c.new_status, "requirement": c.new_requirement,
                    "review_policy": c.new_review_policy},
            "cause_rule_ids": [x for x in (c.cause_rule_ids or "").split(",") if x],
            "created_at": c.created_at.isoformat() if c.created_at else None}


@blp.route("/changes")
class Changes(MethodView):
    @require_role("viewer")
    @blp.arguments(ChangesQuerySchema, location="query")
    @blp.response(200)
    def get(self, query):
        """Change records, newest first; filter by catalogue, product (id or SKU), destination, revision/version, run."""
        C = ChangeRecord
        q = select(C)
        with current_app.extensions["db"].session() as s:
            if "catalogue_id" in query:
                q = q.where(C.catalogue_id == query["catalogue_id"])
            if "product" in query:
                p = query["product"]
                # an id must be ASCII digits ("²".isdigit() is true) and fit a 64-bit id; else it is a SKU
                is_id = p.isascii() and p.isdigit() and int(p) <= DB_ID_MAX
                q = q.where(or_(C.sku == p, C.product_id == int(p)) if is_id else C.sku == p)
            if "destination" in query:
                q = q.where(C.destination == query["destination"])
            if "revision" in query:
                r = query["revision"].lower()
                q = q.where(C.to_revision == r) if len(r) == 64 else q.where(C.to_revision.like(r + "%"))
            if "version" in query:
                rev = s.scalar(select(RuleVersion.revision).where(RuleVersion.number == query["version"]))
                if rev is None:
                    raise NotFound(f"no rule version {query['version']}", {"version": ["unknown version"]})
                q = q.where(C.to_revision == rev)
            if "run_id" in query:
                q = q.where(C.run_id == query["run_id"])
            total = s.scalar(select(func.count()).select_from(q.subquery()))
            page, per_page = query["page"], query["per_page"]
            items = [change_view(c) for c in s.scalars(q.order_by(C.id.desc()).offset((page - 1) * per_page).limit(per_page))]
        return {"items": items, "total": total, "page": page, "per_page": per_page}


@blp.route("/catalogues/<int:catalogue_id>/diff")
class CatalogueDiff(MethodView):
    @require_role("viewer")
    @blp.arguments(CatalogueDiffQuerySchema, location="query")
    @blp.response(200)
    def get(self, query, catalogue_id: int):
        """Which products x destinations change between two dates under the current rules (or ruleset_revision)."""
        return catalogue_diff(current_app, catalogue_id, query["from_"], query["to"], query.get("destinations"),
                              query.get("ruleset_revision"), query["page"], query["per_page"])


@blp.route("/catalogues/<int:catalogue_id>/as-of")
class CatalogueAsOf(MethodView):
    @require_role("viewer")
    @blp.arguments(CatalogueAsOfQuerySchema, location="query")
    @blp.response(200)
    def get(self, query, catalogue_id: int):
        """Re-evaluate a catalogue as of any date (nothing is stored): counts and a page of products."""
        return catalogue_as_of(current_app, catalogue_id, query["as_of"], query.get("destinations"),
                               query.get("ruleset_revision"), query["page"], query["per_page"])
