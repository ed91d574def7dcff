"""Rule versions (list, get, export, diff, rollback), drafts (create, edit ops, PUT, validate, preview,
publish) and the audit trail. Reading versions needs viewer; anything that changes rules needs admin."""
from __future__ import annotations

import functools

from flask import Response, current_app, g, jsonify, request, url_for
from flask.views import MethodView
from marshmallow import RAISE

from ..auth import require_role
from ..schemas.admin_rules import (
    AuditEventSchema,
    AuditTrailExportQuerySchema,
    AuditTrailQuerySchema,
    DiffQuerySchema,
    DraftContentSchema,
    DraftCreateSchema,
    DraftEditSchema,
    DraftListQuerySchema,
    DraftSchema,
    ExportQuerySchema,
    ImpactPreviewSchema,
    PreviewSchema,
    PublishedSchema,
    PublishSchema,
    RunSchema,
    RunsQuerySchema,
    ValidationReportSchema,
    VersionDetailSchema,
    VersionDiffSchema,
    VersionSchema,
)
from ..schemas.common import ErrorSchema, list_of
from ..services import activity_log, rule_diff, rule_drafts, rule_export, rule_publish, rule_versions
from ..services.reevaluation import get_run, list_runs
from .blueprint import Blueprint
from .downloads import EXPORT_RESPONSES, download

blp = Blueprint("admin_rules", __name__, url_prefix="/api/v1/rules",
                description="Versioned rules: drafts, edit operations, validation, impact preview, publish, rollback, diff")


def _db():
    return current_app.extensions["db"]


def _location(description: str) -> dict:
    return {"Location": {"description": description, "schema": {"type": "string"}}}


ETAG_HEADER = {"ETag": {"description": "The draft's version token (quoted); send it back as If-Match to write",
                         "schema": {"type": "string"}}}
IF_MATCH = {"in": "header", "name": "If-Match", "required": False, "schema": {"type": "string"},
            "description": "The draft's ETag as you read it (e.g. \"7\"): a stale one is 412 and nothing is written. "
                           "Optional unless DRAFT_IF_MATCH=required (then its absence is 428)."}
STALE = "If-Match names a version of the draft that is no longer current: errors.If-Match and the ETag header " \
        "give the current one; nothing was applied"
MISSING = "If-Match is required (DRAFT_IF_MATCH=required) and was not sent"


def _preconditions() -> dict:
    """The If-Match header and whether it is required, for a draft write."""
    return {"if_match": request.headers.get("If-Match"),
            "require_if_match": current_app.config["COMPLIANCE"].DRAFT_IF_MATCH == "required"}


def _with_draft_etag(draft: dict, status: int = 200, headers: dict | None = None):
    return draft, status, {"ETag": draft["etag"], **(headers or {})}


def precondition_failed_as_412(view):
    """A stale If-Match: the service's JSON error body, 412, with the draft's current ETag as the header."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except rule_drafts.PreconditionFailed as exc:
            from . import error_body

            response = jsonify(error_body(412, "Precondition Failed", exc.message, exc.errors))
            response.status_code = 412
            if exc.etag:
                response.headers["ETag"] = exc.etag
            return response

    return wrapper


def _published(result: dict):
    """A publish's or rollback's answer: 201 with the new version's address."""
    return result, 201, {"Location": url_for("admin_rules.Version", number=result["number"])}


@blp.route("/versions")
class Versions(MethodView):
    @require_role("viewer")
    @blp.response(200, list_of(VersionSchema))
    def get(self):
        """Published versions, newest first (number, revision, parent, author, reason, time)."""
        return {"items": rule_versions.list_versions(_db())}


@blp.route("/versions/<version:number>")
class Version(MethodView):
    @require_role("viewer")
    @blp.response(200, VersionDetailSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such version")
    def get(self, number: int):
        """One published version with its full content."""
        return rule_versions.version_detail(_db(), number)


@blp.route("/versions/<version:number>/export")
class VersionExport(MethodView):
    @require_role("viewer")
    @blp.arguments(ExportQuerySchema, location="query")
    @blp.doc(responses={"200": {"description": "The version as a download: format=zip or format=yaml",
                                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}},
                                            "application/yaml": {"schema": {"type": "string"}}}}})
    @blp.alt_response(404, schema=ErrorSchema, description="No such version")
    def get(self, query, number: int):
        """The version in the rules/ YAML layout: a zip (default) or one multi-document YAML bundle."""
        body, mimetype, filename = rule_export.export_version(_db(), number, query["format"])
        return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@blp.route("/versions/<version:number>/rollback")
class VersionRollback(MethodView):
    @require_role("admin")
    @blp.arguments(PublishSchema)
    @blp.response(201, PublishedSchema, headers=_location("The new version: GET /rules/versions/{number}"))
    @blp.alt_response(404, schema=ErrorSchema, description="No such version")
    @blp.alt_response(409, schema=ErrorSchema, description="Another publish landed at the same time")
    @blp.alt_response(422, schema=ErrorSchema,
                      description="No reason, or the content equals the current version (nothing to publish)")
    @blp.alt_response(428, schema=ErrorSchema, description="Storm guard: resend with confirm=true")
    def post(self, body, number: int):
        """Publish version `number`'s content again as a new version (with a reason)."""
        return _published(rule_publish.rollback_to(current_app, number, g.actor, body["reason"], body.get("as_of"),
                                          body["confirm"]))


@blp.route("/diff")
class Diff(MethodView):
    @require_role("viewer")
    @blp.arguments(DiffQuerySchema, location="query")
    @blp.response(200, VersionDiffSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such version")
    def get(self, query):
        """Rules added/removed/changed (field level), packs added/removed, country group changes."""
        return rule_diff.diff_versions(_db(), query["from_"], query["to"])


@blp.route("/audit-trail")
class AuditTrail(MethodView):
    @require_role("auditor")
    @blp.arguments(AuditTrailQuerySchema, location="query")
    @blp.page_response(AuditEventSchema)
    def get(self, query):
        """Who changed what (rules, keys, webhooks), when and why; newest first."""
        return activity_log.activity_page(_db(), query["page"], query["per_page"], query.get("action"), query.get("actor"))


@blp.route("/audit-trail/export")
class AuditTrailExport(MethodView):
    @require_role("auditor")
    @blp.arguments(AuditTrailExportQuerySchema, location="query", unknown=RAISE)
    @blp.doc(responses=EXPORT_RESPONSES)
    def get(self, query):
        """The whole activity log (audit trail) matching the filters, newest first: CSV, JSON Lines or XLSX."""
        from ..services.exports import export

        pieces, name = export(_db(), "activity", query["format"], filters=query)
        return download(pieces, name, query["format"])


@blp.route("/drafts")
class Drafts(MethodView):
    @require_role("admin")
    @blp.arguments(DraftListQuerySchema, location="query")
    @blp.response(200, list_of(DraftSchema))
    def get(self, query):
        """Drafts, newest first (without their content)."""
        return {"items": rule_drafts.list_drafts(_db(), query.get("status"))}

    @require_role("admin")
    @blp.arguments(DraftCreateSchema)
    @blp.response(201, DraftSchema, headers=_location("The draft: GET /rules/drafts/{draft_id}") | ETAG_HEADER)
    @blp.alt_response(422, schema=ErrorSchema, description="Unknown base_version, or a bad title")
    def post(self, body):
        """Start a draft from a published version (default the current one)."""
        draft = rule_drafts.create_draft(_db(), g.actor, body.get("base_version"), body["title"])
        return _with_draft_etag(draft, 201, {"Location": url_for("admin_rules.Draft", draft_id=draft["id"])})


@blp.route("/drafts/<int:draft_id>")
class Draft(MethodView):
    @require_role("admin")
    @blp.response(200, DraftSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, schema=ErrorSchema, description="No such draft")
    def get(self, draft_id: int):
        """A draft with its content and validation report; the ETag header is its version token (If-Match)."""
        return _with_draft_etag(rule_drafts.get_draft(_db(), draft_id))

    @require_role("admin")
    @blp.arguments(DraftEditSchema)
    @blp.doc(parameters=[IF_MATCH])
    @blp.response(200, DraftSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, schema=ErrorSchema, description="No such draft")
    @blp.alt_response(409, schema=ErrorSchema, description="The draft is not open (published or discarded)")
    @blp.alt_response(412, schema=ErrorSchema, description=STALE)
    @blp.alt_response(422, schema=ErrorSchema,
                      description="Bad operations: every problem named by ops[i].field; nothing was applied")
    @blp.alt_response(428, schema=ErrorSchema, description=MISSING)
    @precondition_failed_as_412
    def patch(self, body, draft_id: int):
        """Apply edit operations, all or none. Operations:
        set_threshold {rule_id, path, value}; add_rule {pack_id, rule}; update_rule {rule_id, changes};
        end_rule {rule_id, effective_to}; remove_rule {rule_id}; add_pack {pack}; remove_pack {pack_id};
        set_country_group {group, members}; add_overlay {id, title, citation, effective_from, effective_to?,
        families: [model family ids] or products: [patterns], destinations?, groups?, headquarters?,
        headquarters_groups?, requirement?, review_policy?, precedence?, pack_id?, tests?} (expands to a licence
        rule); set_vendor {vendor, name?, aliases, pack_id?, remove?} (the vendor alias table);
        set_family {family: {id, vendor, name, names?, lookalikes?, citation?}, pack_id?}.
        Send If-Match with the ETag you read: a stale one is 412 and nothing is applied."""
        return _with_draft_etag(rule_drafts.apply_edits(_db(), draft_id, body["ops"], g.actor, **_preconditions()))

    @require_role("admin")
    @blp.arguments(DraftContentSchema)
    @blp.doc(parameters=[IF_MATCH])
    @blp.response(200, DraftSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, schema=ErrorSchema, description="No such draft")
    @blp.alt_response(409, schema=ErrorSchema, description="The draft is not open (published or discarded)")
    @blp.alt_response(412, schema=ErrorSchema, description=STALE)
    @blp.alt_response(428, schema=ErrorSchema, description=MISSING)
    @precondition_failed_as_412
    def put(self, body, draft_id: int):
        """Replace the whole content (power users); the response reports validity. Send If-Match with the
        ETag you read, or you may overwrite someone else's edits."""
        return _with_draft_etag(rule_drafts.replace_content(_db(), draft_id, body["content"], g.actor, **_preconditions()))

    @require_role("admin")
    @blp.doc(parameters=[IF_MATCH])
    @blp.response(200, DraftSchema, description="The discarded draft (without its content)", headers=ETAG_HEADER)
    @blp.alt_response(404, schema=ErrorSchema, description="No such draft")
    @blp.alt_response(409, schema=ErrorSchema, description="The draft is not open (published or discarded)")
    @blp.alt_response(412, schema=ErrorSchema, description=STALE)
    @blp.alt_response(428, schema=ErrorSchema, description=MISSING)
    @precondition_failed_as_412
    def delete(self, draft_id: int):
        """Discard an open draft."""
        return _with_draft_etag(rule_drafts.discard_draft(_db(), draft_id, g.actor, **_preconditions()))


@blp.route("/drafts/<int:draft_id>/validate")
class DraftValidate(MethodView):
    @require_role("admin")
    @blp.response(200, ValidationReportSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such draft")
    def post(self, draft_id: int):
        """Schema errors with paths and pack test failures, all at once (valid: true/false)."""
        return rule_drafts.validate_draft(_db(), draft_id)


@blp.route("/drafts/<int:draft_id>/preview")
class DraftPreview(MethodView):
    @require_role("admin")
    @blp.arguments(PreviewSchema)
    @blp.response(200, ImpactPreviewSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such draft")
    @blp.alt_response(422, schema=ErrorSchema,
                      description="The content is not a valid rulebook (failing pack tests are reported, not fatal)")
    def post(self, body, draft_id: int):
        """Impact preview: which products x destinations would change in every catalogue, with counts per transition."""
        return rule_publish.preview_draft(current_app, draft_id, body.get("as_of"), body.get("destinations"), body["item_limit"])


@blp.route("/drafts/<int:draft_id>/publish")
class DraftPublish(MethodView):
    @require_role("admin")
    @blp.arguments(PublishSchema)
    @blp.doc(parameters=[IF_MATCH])
    @blp.response(201, PublishedSchema, headers=_location("The new version: GET /rules/versions/{number}"))
    @blp.alt_response(404, schema=ErrorSchema, description="No such draft")
    @blp.alt_response(409, schema=ErrorSchema, description="The draft is not open, or another publish landed since "
                                                           "it was made, or (without If-Match) it was edited while "
                                                           "publishing; the draft stays open")
    @blp.alt_response(412, schema=ErrorSchema, description=STALE + " (also when an edit lands while publishing)")
    @blp.alt_response(422, schema=ErrorSchema, description="Invalid content or failing pack tests (errors lists them), "
                                                           "no reason, or nothing to publish")
    @blp.alt_response(428, schema=ErrorSchema,
                      description="Storm guard: resend with confirm=true (errors.preview holds the counts); or "
                                  "If-Match is required (DRAFT_IF_MATCH=required) and was not sent (errors.If-Match)")
    @precondition_failed_as_412
    def post(self, body, draft_id: int):
        """Publish as version N+1 and start re-evaluation. 409 if another publish landed since the draft
        was made; 412 if If-Match is stale; 422 if invalid; 428 when the storm guard needs confirm=true."""
        return _published(rule_publish.publish_draft(current_app, draft_id, g.actor, body["reason"], body.get("as_of"),
                                                     body["confirm"], **_preconditions()))


@blp.route("/reevaluations")
class Runs(MethodView):
    @require_role("viewer")
    @blp.arguments(RunsQuerySchema, location="query")
    @blp.page_response(RunSchema)
    def get(self, query):
        """Re-evaluation runs, newest first (50 a page by default)."""
        return list_runs(_db(), query["page"], query["per_page"])


@blp.route("/reevaluations/<int:run_id>")
class Run(MethodView):
    @require_role("viewer")
    @blp.response(200, RunSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such run")
    def get(self, run_id: int):
        """One re-evaluation run: status and totals (recomputed from the database when it finished)."""
        return get_run(_db(), run_id)
