"""Catalogues, their products and bulk imports (upload), and starting audits of a catalogue."""
from __future__ import annotations

from flask import current_app, g, request, url_for
from flask.views import MethodView
from marshmallow import RAISE

from ..auth import require_role
from ..engine.errors import InvalidInput
from ..schemas.audit import AuditCreateSchema, AuditSchema, AuditsQuerySchema, AuditSummarySchema
from ..schemas.catalogue import (
    CatalogueCreateSchema,
    CatalogueProductSchema,
    CatalogueSchema,
    ImportQuerySchema,
    ImportReportSchema,
    PageQuerySchema,
    ProductQuerySchema,
)
from ..schemas.common import TabularExportQuerySchema, list_of
from ..schemas.product import ProductSchema
from ..services import catalogues as svc
from ..services import exports as export_svc
from ..services import idempotency, import_jobs
from ..services.import_formats import detect_format
from ..services.imports import import_file
from .blueprint import Blueprint
from .downloads import EXPORT_RESPONSES, download

blp = Blueprint("catalogues", __name__, url_prefix="/api/v1", description="Catalogues, products and imports")


def _db():
    return current_app.extensions["db"]


def _store():
    return current_app.extensions["rulebooks"]


@blp.route("/catalogues")
class Catalogues(MethodView):
    @require_role("viewer")
    @blp.response(200, list_of(CatalogueSchema))
    def get(self):
        """Every catalogue with its product count and counts per current status."""
        db = _db()
        return {"items": [svc.catalogue_summary(db, c) for c in svc.list_catalogues(db)]}

    @require_role("auditor")
    @blp.arguments(CatalogueCreateSchema)
    @blp.response(201, CatalogueSchema)
    def post(self, body):
        """Create an (empty) catalogue; fill it with an import or product PUTs."""
        _, rulebook = _store().current()
        cat = svc.create_catalogue(_db(), body["name"], body.get("description", ""), body.get("destinations"),
                                   rulebook=rulebook)
        return svc.catalogue_summary(_db(), cat), 201, {"Location": url_for("catalogues.Catalogue",
                                                                            catalogue_id=cat.id)}


@blp.route("/catalogues/<int:catalogue_id>")
class Catalogue(MethodView):
    @require_role("viewer")
    @blp.response(200, CatalogueSchema)
    def get(self, catalogue_id: int):
        """A catalogue with its product count and counts per current status."""
        return svc.catalogue_summary(_db(), svc.get_catalogue(_db(), catalogue_id))

    @require_role("admin")
    @blp.response(204)
    def delete(self, catalogue_id: int):
        """Delete a catalogue with its products, import reports and audits."""
        svc.delete_catalogue(_db(), catalogue_id)
        return "", 204


@blp.route("/catalogues/<int:catalogue_id>/products")
class Products(MethodView):
    @require_role("viewer")
    @blp.arguments(ProductQuerySchema, location="query")
    @blp.page_response(CatalogueProductSchema)
    def get(self, query, catalogue_id: int):
        """Products, paginated, filtered by vendor, current ECCN, current status or a SKU/name substring, and
        sorted (`sort`)."""
        return svc.list_products(_db(), catalogue_id, query["page"], query["per_page"], query.get("vendor"),
                                 query.get("eccn"), query.get("status"), query.get("q"), query["sort"])


@blp.route("/catalogues/<int:catalogue_id>/products/<path:sku>")
class ProductItem(MethodView):
    @require_role("viewer")
    @blp.response(200, CatalogueProductSchema)
    def get(self, catalogue_id: int, sku: str):
        """One product with its stored spec, metrics and current standing."""
        return svc.get_product(_db(), catalogue_id, sku)

    @require_role("auditor")
    @blp.arguments(ProductSchema)
    @blp.response(200, CatalogueProductSchema, description="The product was replaced")
    @blp.alt_response(201, schema=CatalogueProductSchema, success=True,
                      description="The product was created (Location: its URL)")
    def put(self, body, catalogue_id: int, sku: str):
        """Create or replace a product (the path's SKU wins); its standing is recomputed."""
        if body.get("sku") not in (None, sku):
            raise InvalidInput(f"sku in the body ({body['sku']!r}) differs from the path ({sku!r})",
                               {"sku": ["must match the SKU in the path"]})
        body["sku"] = sku
        product, created = svc.put_product(_db(), _store(), catalogue_id, body)
        if created:
            return product, 201, {"Location": url_for("catalogues.ProductItem", catalogue_id=catalogue_id, sku=sku)}
        return product

    @require_role("auditor")
    @blp.response(204)
    def delete(self, catalogue_id: int, sku: str):
        """Delete a product."""
        svc.delete_product(_db(), catalogue_id, sku)
        return "", 204


IDEMPOTENCY_HEADER = {"in": "header", "name": "Idempotency-Key", "required": False, "schema": {
    "type": "string", "minLength": 1, "maxLength": 200},
    "description": "Retries with the same key, file, format and sheet answer with the first import (no second "
                   "import); the same key with another file is a 422."}
PREFER_HEADER = {"in": "header", "name": "Prefer", "required": False, "schema": {"type": "string"},
                 "description": "`respond-async` (RFC 7240): run the import as a job, answered 202 with its URL "
                                "(Location) and `Preference-Applied: respond-async`; poll it for progress. "
                                "Without it (and without `async=true`) the import runs in the request (201)."}


def _wants_async(query: dict) -> bool:
    """`?async=true` or a `Prefer: respond-async` header (RFC 7240: comma-separated preferences)."""
    prefs = {p.split(";")[0].split("=")[0].strip().lower()
             for h in request.headers.getlist("Prefer") for p in h.split(",")}
    return bool(query.get("async_")) or "respond-async" in prefs


def _import_answer(report: dict) -> dict:
    return report | {"url": url_for("catalogues.ImportItem", report_id=report["id"])}


@blp.route("/catalogues/<int:catalogue_id>/imports")
class Imports(MethodView):
    @require_role("auditor")
    @blp.arguments(ImportQuerySchema, location="query")
    @blp.response(201, ImportReportSchema, description="The import ran in the request: its full report "
                                                        "(Location: its URL)")
    @blp.alt_response(202, schema=ImportReportSchema, success=True,
                      description="`Prefer: respond-async` or `async=true`: the import is queued as a job "
                                  "(Location: its URL); poll it for progress and, once done, the full report")
    @blp.alt_response(413, description="Upload larger than MAX_UPLOAD_BYTES")
    @blp.alt_response(422, description="Unreadable file (not UTF-8, bad JSON, unknown CSV columns, ...), or an "
                                       "Idempotency-Key reused with another file")
    @blp.doc(parameters=[IDEMPOTENCY_HEADER, PREFER_HEADER])
    def post(self, query, catalogue_id: int):
        """Import products from CSV (comma, semicolon or tab separated), TSV, XLSX (first sheet or `sheet=`), JSON
        or JSON Lines: a multipart field `file`, or the file as the body.

        Good rows are kept, bad rows are reported (row, field, problem); re-imports upsert by SKU. By default the
        import runs in the request and answers 201 with the report. With `Prefer: respond-async` (or
        `async=true`) the file is stored and imported by a worker: 202 with the import's URL, whose status
        (pending, running, done, failed) and progress (rows read, bytes read of the total) move until the full
        report is there. An unreadable file is refused at once (422) either way.
        """
        svc.get_catalogue(_db(), catalogue_id)
        upload = request.files.get("file")
        if upload is not None:
            filename, ctype, stream = upload.filename or "", upload.mimetype, upload.stream
        elif request.mimetype == "multipart/form-data":
            raise InvalidInput("no file in the upload: send the multipart field 'file'", {"file": ["missing"]})
        else:
            filename, ctype, stream = query.get("filename", ""), request.mimetype, request.stream
        fmt = detect_format(filename, ctype, query.get("format"))
        wants_async = _wants_async(query)
        key = request.headers.get("Idempotency-Key")
        if not wants_async and key is None:
            result = import_file(_db(), _store(), catalogue_id, stream, fmt, filename, sheet=query.get("sheet"))
            # an empty (but well-formed) file is a valid import of nothing
            report = _import_answer(svc.import_report(_db(), result.report_id))
            return report, 201, {"Location": report["url"]}
        idem = None
        if key is not None:
            idempotency.Request.of("", key, "POST", request.path, None)  # a bad key is a 422 before the upload is read
            idem = (f"{g.actor} POST {request.path}", key, request.path)
        import_id = import_jobs.create_import(_db(), catalogue_id, stream, fmt, filename, sheet=query.get("sheet"),
                                              actor=g.actor, enqueue=wants_async, idempotency=idem)
        if not wants_async:  # synchronous with an Idempotency-Key: the job runs here, unless a retry found it
            import_jobs.run_now(_db(), _store(), import_id, current_app.config["COMPLIANCE"].JOB_LEASE_SECONDS)
        report = _import_answer(svc.import_report(_db(), import_id))
        headers = {"Location": report["url"]}
        if wants_async:
            headers["Preference-Applied"] = "respond-async"
        elif report["status"] == "done":
            return report, 201, headers
        return report, 202, headers  # queued, or (a retried key) still running elsewhere

    @require_role("viewer")
    @blp.arguments(PageQuerySchema, location="query", unknown=RAISE)
    @blp.page_response(ImportReportSchema)
    def get(self, query, catalogue_id: int):
        """Import reports of a catalogue, newest first, paginated (without the row errors)."""
        return svc.import_reports(_db(), catalogue_id, query["page"], query["per_page"])


@blp.route("/catalogues/<int:catalogue_id>/export")
class CatalogueExport(MethodView):
    @require_role("viewer")
    @blp.arguments(TabularExportQuerySchema, location="query", unknown=RAISE)
    @blp.doc(responses=EXPORT_RESPONSES)
    def get(self, query, catalogue_id: int):
        """Every product of the catalogue, streamed. CSV and XLSX: the import's columns plus the standing (eccn,
        status, classified_revision, classified_on, computed_tpp, performance_density; ignored on re-import).
        JSON Lines: each product's spec as stored. Each imports back to the same products."""
        pieces, name = export_svc.export(_db(), "catalogue", query["format"], catalogue_id=catalogue_id)
        return download(pieces, name, query["format"])


@blp.route("/imports/<int:report_id>")
class ImportItem(MethodView):
    @require_role("viewer")
    @blp.response(200, ImportReportSchema)
    def get(self, report_id: int):
        """One import: while it runs, its status and progress (rows read, bytes read of the total); once done,
        the full report with every rejected row."""
        return _import_answer(svc.import_report(_db(), report_id))


@blp.route("/catalogues/<int:catalogue_id>/audits")
class CatalogueAudits(MethodView):
    @require_role("auditor")
    @blp.arguments(AuditCreateSchema)
    @blp.response(202, AuditSchema, description="The audit is recorded (Location: its URL); poll it for progress")
    @blp.alt_response(404, description="Unknown catalogue")
    @blp.alt_response(422, description="Invalid date or country code, or an Idempotency-Key reused with "
                                        "another request")
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "required": False, "schema": {
        "type": "string", "minLength": 1, "maxLength": 200},
        "description": "Retries with the same key and body answer with the first audit (no duplicate)."}])
    def post(self, body, catalogue_id: int):
        """Start an audit of the catalogue: 202 with the audit's URL; poll it for progress."""
        from ..services import idempotency
        from ..services.audit_results import audit_status
        from ..services.audits import create_audit

        config = current_app.config["COMPLIANCE"]
        hq = (body.get("end_user") or {}).get("headquarters")
        key = request.headers.get("Idempotency-Key")
        idem = None if key is None else idempotency.Request.of(f"{g.actor} POST {request.path}", key, "POST",
                                                                request.path, body)
        audit = create_audit(_db(), _store(), catalogue_id, body["as_of"], body["destinations"], hq, g.actor,
                             config.AUDIT_CHUNK_SIZE, idempotency=idem,
                             transaction_type=body["transaction_type"])  # its chunk tasks are sent after commit
        url = url_for("audits.AuditItem", audit_id=audit.id)
        return audit_status(_db(), audit.id) | {"url": url}, 202, {"Location": url}

    @require_role("viewer")
    @blp.arguments(AuditsQuerySchema, location="query")
    @blp.page_response(AuditSummarySchema)
    def get(self, query, catalogue_id: int):
        """Audits of a catalogue, newest first, paginated."""
        from ..services.audit_results import list_audits

        svc.get_catalogue(_db(), catalogue_id)
        page = list_audits(_db(), catalogue_id, page=query["page"], per_page=query["per_page"])
        return page.map(lambda a: a | {"url": url_for("audits.AuditItem", audit_id=a["id"])})
