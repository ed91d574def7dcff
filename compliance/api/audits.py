"""Audit progress, paginated results and streamed reports (CSV / JSON / JSON Lines / XLSX)."""
from __future__ import annotations

from flask import Response, current_app, url_for
from flask.views import MethodView

from ..auth import require_role
from ..schemas.audit import AuditReportQuerySchema, AuditResultSchema, AuditResultsQuerySchema, AuditSchema
from ..services import audit_report as report_svc
from ..services import audit_results as svc
from ..services.tabular import MEDIA_TYPES
from .blueprint import Blueprint
from .downloads import download

blp = Blueprint("audits", __name__, url_prefix="/api/v1", description="Batch audits of catalogues")


def _db():
    return current_app.extensions["db"]


@blp.route("/audits/<int:audit_id>")
class AuditItem(MethodView):
    @require_role("viewer")
    @blp.response(200, AuditSchema)
    def get(self, audit_id: int):
        """What was asked (date, destinations, end user, transaction type, pinned revision), status, progress
        (products and chunks), counts per ECCN and per licence outcome, timings."""
        return svc.audit_status(_db(), audit_id) | {"url": url_for("audits.AuditItem", audit_id=audit_id)}


@blp.route("/audits/<int:audit_id>/results")
class AuditResults(MethodView):
    @require_role("viewer")
    @blp.arguments(AuditResultsQuerySchema, location="query")
    @blp.page_response(AuditResultSchema)
    def get(self, query, audit_id: int):
        """One row per product x destination, paginated; filter by destination and requirement."""
        return svc.audit_results_page(_db(), current_app.extensions["rulebooks"], audit_id, query["page"],
                                      query["per_page"], query.get("destination"), query.get("requirement"))


def _report(audit_id: int, query: dict, fmt: str) -> Response:
    db, store = _db(), current_app.extensions["rulebooks"]
    # raises 404/422 here, before the response starts
    gen = report_svc.iter_report(db, store, audit_id, fmt, query.get("destination"), query.get("requirement"))
    return download(gen, f"audit-{audit_id}.{fmt}", fmt)


@blp.route("/audits/<int:audit_id>/report.csv")
class AuditReportCsv(MethodView):
    @require_role("viewer")
    @blp.arguments(AuditReportQuerySchema, location="query")
    @blp.doc(responses={"200": {"description": "The report (streamed download)",
                                "content": {"text/csv": {"schema": {"type": "string"}}}}})
    def get(self, query, audit_id: int):
        """The whole report as CSV (streamed; formula cells neutralised), one row per product x destination:
        sku, product_name, vendor, eccn, status, destination, requirement, review_policy, exceptions, rule_ids,
        citations, margins, missing, as_of, transaction_type, rule_version, ruleset_revision, product_id."""
        return _report(audit_id, query, "csv")


@blp.route("/audits/<int:audit_id>/report.jsonl")
class AuditReportJsonl(MethodView):
    @require_role("viewer")
    @blp.arguments(AuditReportQuerySchema, location="query")
    @blp.doc(responses={"200": {"description": "The report (streamed download): one JSON object per line",
                                "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}})
    def get(self, query, audit_id: int):
        """The whole report as JSON Lines (streamed), the CSV's columns as one object per line."""
        return _report(audit_id, query, "jsonl")


@blp.route("/audits/<int:audit_id>/report.xlsx")
class AuditReportXlsx(MethodView):
    @require_role("viewer")
    @blp.arguments(AuditReportQuerySchema, location="query")
    @blp.doc(responses={"200": {"description": "The report as an Excel workbook (one sheet, the CSV's columns)",
                                "content": {MEDIA_TYPES["xlsx"]: {"schema": {"type": "string", "format": "binary"}}}}})
    def get(self, query, audit_id: int):
        """The whole report as XLSX (text cells are strings, never formulas)."""
        return _report(audit_id, query, "xlsx")


@blp.route("/audits/<int:audit_id>/report.json")
class AuditReportJson(MethodView):
    @require_role("viewer")
    @blp.arguments(AuditReportQuerySchema, location="query")
    @blp.doc(responses={"200": {"description": "The report (streamed download): the audit's fields and `results`",
                                "content": {"application/json": {"schema": {"type": "object"}}}}})
    def get(self, query, audit_id: int):
        """The whole report as JSON (streamed): {audit fields..., "results": [...]}."""
        return _report(audit_id, query, "json")
