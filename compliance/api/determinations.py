"""Determinations (record, approve, history, computed vs determined, review feed, export) and the
decision log (list, replay)."""
from __future__ import annotations

from dataclasses import asdict

from flask import current_app, g, url_for
from flask.views import MethodView
from marshmallow import fields

from ..auth import require_role
from ..schemas.common import ErrorSchema
from ..schemas.determinations import (
    ApprovalSchema,
    AuditDeterminationsSchema,
    DecisionLogEntrySchema,
    DecisionLogQuerySchema,
    DeterminationCreateSchema,
    DeterminationQuerySchema,
    DeterminationSchema,
    ExportQuerySchema,
    PolicySchema,
    PolicyViewSchema,
    ReplaySchema,
    ReviewQuerySchema,
    ReviewSchema,
    StandingCountsSchema,
    StandingQuerySchema,
    StandingSchema,
)
from ..services import decision_log as log_svc
from ..services import determination_export as export_svc
from ..services import determinations as svc
from ..services.tabular import MEDIA_TYPES
from .blueprint import Blueprint
from .downloads import download

blp = Blueprint("determinations", __name__, url_prefix="/api/v1",
                description="Classification determinations and the decision log")


def _db():
    return current_app.extensions["db"]


def _store():
    return current_app.extensions["rulebooks"]


def _standing(st: svc.Standing) -> dict:
    return {**asdict(st), "state": st.state}


@blp.route("/catalogues/<int:catalogue_id>/determinations")
class CatalogueDeterminations(MethodView):
    @require_role("auditor")
    @blp.arguments(DeterminationCreateSchema)
    @blp.response(201, DeterminationSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown catalogue or SKU")
    @blp.alt_response(422, schema=ErrorSchema, description="Unknown ECCN, no basis, unknown rule revision")
    def post(self, body, catalogue_id: int):
        """Record a determination for a product: ECCN (or EAR99 / NOT_SUBJECT), basis, rule revision.

        Recorded by the caller's key. Without four eyes it is in force at once and supersedes the previous
        one; with four eyes (the catalogue's determination policy) it waits for another person's approval."""
        view = svc.record_determination(_db(), _store(), catalogue_id, body["sku"], body["eccn"], body["basis"],
                                        g.actor, body.get("rule_revision"), body.get("as_of"))
        return view, 201, {"Location": url_for("determinations.DeterminationItem", determination_id=view["id"])}

    @require_role("viewer")
    @blp.arguments(StandingQuerySchema, location="query")
    @blp.page_response(StandingSchema, counts=fields.Nested(StandingCountsSchema))
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown catalogue")
    def get(self, query, catalogue_id: int):
        """Computed vs determined for every product of the catalogue (filter needs_review=true)."""
        page = svc.catalogue_standings(_db(), catalogue_id, query["page"], query["per_page"],
                                       query.get("needs_review"), query.get("state"), query.get("sku"))
        return page.map(_standing)


@blp.route("/catalogues/<int:catalogue_id>/determination-policy")
class DeterminationPolicy(MethodView):
    @require_role("viewer")
    @blp.response(200, PolicyViewSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown catalogue")
    def get(self, catalogue_id: int):
        """Whether this catalogue's determinations need a second person's approval (four eyes)."""
        return svc.get_policy(_db(), catalogue_id)

    @require_role("admin")
    @blp.arguments(PolicySchema)
    @blp.response(200, PolicyViewSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="Unknown catalogue")
    def put(self, body, catalogue_id: int):
        """Turn four eyes on or off for the catalogue's new determinations."""
        return svc.set_policy(_db(), catalogue_id, body["four_eyes"], g.actor)


@blp.route("/determinations")
class Determinations(MethodView):
    @require_role("viewer")
    @blp.arguments(DeterminationQuerySchema, location="query")
    @blp.page_response(DeterminationSchema)
    def get(self, query):
        """Every determination (superseded and pending ones too), newest first."""
        return svc.list_determinations(_db(), query["page"], query["per_page"], query.get("catalogue_id"),
                                       query.get("sku"), query.get("eccn"), query.get("recorded_by"),
                                       query.get("state"))


@blp.route("/determinations/<int:determination_id>")
class DeterminationItem(MethodView):
    @require_role("viewer")
    @blp.response(200, DeterminationSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such determination")
    def get(self, determination_id: int):
        """One determination."""
        return svc.get_determination(_db(), determination_id)


@blp.route("/determinations/<int:determination_id>/approve")
class DeterminationApprove(MethodView):
    @require_role("auditor")
    @blp.arguments(ApprovalSchema)
    @blp.response(200, DeterminationSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such determination")
    @blp.alt_response(409, schema=ErrorSchema, description="Already approved, superseded, or no approval needed")
    @blp.alt_response(422, schema=ErrorSchema, description="The approver is the person who recorded it")
    def post(self, body, determination_id: int):
        """Approve a determination awaiting four eyes (the approver must differ from the recorder)."""
        return svc.approve_determination(_db(), determination_id, g.actor, body.get("note"))


@blp.route("/determinations/reviews")
class DeterminationReviews(MethodView):
    @require_role("viewer")
    @blp.arguments(ReviewQuerySchema, location="query")
    @blp.page_response(ReviewSchema)
    def get(self, query):
        """The determinations' change feed: each determination whose computed answer moved (a publish, a
        spec change) or disagrees, with the reason; newest first."""
        return svc.list_reviews(_db(), query["page"], query["per_page"], query.get("catalogue_id"), query.get("sku"),
                                query.get("revision"), query.get("run_id"), query.get("determination_id"))


@blp.route("/determinations/export")
class DeterminationExport(MethodView):
    @require_role("auditor")
    @blp.arguments(ExportQuerySchema, location="query")
    @blp.doc(responses={"200": {"description": "Every determination with its history (streamed download)",
                                "content": {"text/csv": {"schema": {"type": "string"}},
                                            "application/json": {"schema": {"type": "object"}},
                                            MEDIA_TYPES["xlsx"]: {"schema": {"type": "string", "format": "binary"}}}}})
    def get(self, query):
        """Determinations and their history for an auditor: format=csv or xlsx (formula cells neutralised) or json."""
        fmt = query["format"]
        cid = query.get("catalogue_id")
        gen = {"json": export_svc.iter_json, "csv": export_svc.iter_csv, "xlsx": export_svc.iter_xlsx}[fmt](_db(), cid)
        return download(gen, f"determinations.{fmt}", fmt)


@blp.route("/audits/<int:audit_id>/determinations")
class AuditDeterminations(MethodView):
    @require_role("viewer")
    @blp.response(200, AuditDeterminationsSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such audit")
    def get(self, audit_id: int):
        """Determinations in force that disagree with this audit's answers (they need review)."""
        return svc.audit_needs_review(_db(), audit_id)


@blp.route("/decisions")
class DecisionLog(MethodView):
    @require_role("viewer")
    @blp.arguments(DecisionLogQuerySchema, location="query")
    @blp.page_response(DecisionLogEntrySchema)
    @blp.alt_response(422, schema=ErrorSchema, description="Bad filter")
    def get(self, query):
        """The decision log: stored classify decisions, determinations and audit results, newest first;
        filter by kind, product (SKU or name), ECCN, actor, revision and date."""
        return log_svc.list_decisions(_db(), query["page"], query["per_page"], query.get("kind"),
                                      query.get("product"), query.get("eccn"), query.get("actor"),
                                      query.get("revision"), query.get("from_"), query.get("to"))


@blp.route("/decisions/<int:decision_id>/replay")
class DecisionReplay(MethodView):
    @require_role("viewer")
    @blp.response(200, ReplaySchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such decision")
    def post(self, decision_id: int):
        """Re-run a stored decision on the revision it cited: `identical` must be true; `current` is what
        the current revision answers."""
        return log_svc.replay_decision(_db(), _store(), decision_id)
