"""Audit progress, paginated results and streamed reports (CSV / JSON)."""
from __future__ import annotations

from flask import Response, current_app, jsonify, stream_with_context
from flask.views import MethodView

from ..auth import require_role
from ..schemas.audit import AuditReportQuerySchema, AuditResultsQuerySchema
from ..services import audits as svc
from .blueprint import Blueprint

blp = Blueprint("audits", __name__, url_prefix="/api/v1", description="Batch audits of catalogues")


def _db():
    return current_app.extensions["db"]


@blp.route("/audits/<int:audit_id>")
class AuditItem(MethodView):
    @require_role("viewer")
    @blp.response(200)
    def get(self, audit_id: int):
        """Status, progress (products and chunks), counts per ECCN and per licence outcome, timings."""
        return jsonify(svc.audit_status(_db(), audit_id))


@blp.route("/audits/<int:audit_id>/results")
class AuditResults(MethodView):
    @require_role("viewer")
    @blp.arguments(AuditResultsQuerySchema, location="query")
    @blp.response(200)
    def get(self, query, audit_id: int):
        """One row per product x destination, paginated; filter by destination and requirement."""
        from .catalogues import page_body

        rows, total = svc.audit_results_page(_db(), current_app.extensions["rulebooks"], audit_id, query["page"],
                                             query["per_page"], query.get("destination"), query.get("requirement"))
        return jsonify(page_body(rows, query["page"], query["per_page"], total))


def _report(audit_id: int, query: dict, fmt: str) -> Response:
    db, store = _db(), current_app.extensions["rulebooks"]
    gen = svc.iter_report(db, store, audit_id, fmt, query.get("destination"), query.get("requirement"))
    first = next(gen)  # raises 404/422 before the response starts
    mimetype = "text/csv" if fmt == "csv" else "application/json"

    def body():
        yield first
        yield from gen

    resp = Response(stream_with_context(body()), mimetype=mimetype)
    resp.headers["Content-Disposition"] = f'attachment; filename="audit-{audit_id}.{fmt}"'
    return resp


@blp.route("/audits/<int:audit_id>/report.csv")
class AuditReportCsv(MethodView):
    @require_role("viewer")
    @blp.arguments(AuditReportQuerySchema, location="query")
    @blp.doc(responses={"200": {"description": "The report (streamed download)",
                                "content": {"text/csv": {"schema": {"type": "string"}}}}})
    def get(self, query, audit_id: int):
        """The whole report as CSV (streamed): sku, eccn, status, destination, requirement, review_policy,
        exceptions, rule_ids, margins, missing."""
        return _report(audit_id, query, "csv")


@blp.route("/audits/<int:audit_id>/report.json")
class AuditReportJson(MethodView):
    @require_role("viewer")
    @blp.arguments(AuditReportQuerySchema, location="query")
    @blp.doc(responses={"200": {"description": "The report (streamed download): the audit's fields and `results`",
                                "content": {"application/json": {"schema": {"type": "object"}}}}})
    def get(self, query, audit_id: int):
        """The whole report as JSON (streamed): {audit fields..., "results": [...]}."""
        return _report(audit_id, query, "json")
