"""Rule versions (list, get, export, diff, rollback), drafts (create, edit ops, PUT, validate, preview,
publish) and the audit trail. Reading versions needs viewer; anything that changes rules needs admin."""
from __future__ import annotations

from flask import Response, current_app, g, url_for
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
from ..services import rule_versions as rv
from ..services.reevaluation import get_run, list_runs
from .blueprint import Blueprint
from .downloads import EXPORT_RESPONSES, download

blp = Blueprint("admin_rules", __name__, url_prefix="/api/v1/rules",
                description="Versioned rules: drafts, edit operations, validation, impact preview, publish, rollback, diff")


def _db():
    return current_app.extensions["db"]


def _location(description: str) -> dict:
    return {"Location": {"description": description, "schema": {"type": "string"}}}


def _published(result: dict):
    """A publish's or rollback's answer: 201 with the new version's address."""
    return result, 201, {"Location": url_for("admin_rules.Version", number=result["number"])}


@blp.route("/versions")
class Versions(MethodView):
    @require_role("viewer")
    @blp.response(200, list_of(VersionSchema))
    def get(self):
        """Published versions, newest first (number, revision, parent, author, reason, time)."""
        return {"items": rv.list_versions(_db())}


@blp.route("/versions/<version:number>")
class Version(MethodView):
    @require_role("viewer")
    @blp.response(200, VersionDetailSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such version")
    def get(self, number: int):
        """One published version with its full content."""
        return rv.version_detail(_db(), number)


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
        body, mimetype, filename = rv.export_version(_db(), number, query["format"])
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
        return _published(rv.rollback_to(current_app, number, g.actor, body["reason"], body.get("as_of"),
                                          body["confirm"]))


@blp.route("/diff")
class Diff(MethodView):
    @require_role("viewer")
    @blp.arguments(DiffQuerySchema, location="query")
    @blp.response(200, VersionDiffSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such version")
    def get(self, query):
        """Rules added/removed/changed (field level), packs added/removed, country group changes."""
        return rv.diff_versions(_db(), query["from_"], query["to"])


@blp.route("/audit-trail")
class AuditTrail(MethodView):
    @require_role("auditor")
    @blp.arguments(AuditTrailQuerySchema, location="query")
    @blp.page_response(AuditEventSchema)
    def get(self, query):
        """Who changed what (rules, keys, webhooks), when and why; newest first."""
        return rv.audit_trail(_db(), query["page"], query["per_page"], query.get("action"), query.get("actor"))


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
        return {"items": rv.list_drafts(_db(), query.get("status"))}

    @require_role("admin")
    @blp.arguments(DraftCreateSchema)
    @blp.response(201, DraftSchema, headers=_location("The draft: GET /rules/drafts/{draft_id}"))
    @blp.alt_response(422, schema=ErrorSchema, description="Unknown base_version, or a bad title")
    def post(self, body):
        """Start a draft from a published version (default the current one)."""
        draft = rv.create_draft(_db(), g.actor, body.get("base_version"), body["title"])
        return draft, 201, {"Location": url_for("admin_rules.Draft", draft_id=draft["id"])}


@blp.route("/drafts/<int:draft_id>")
class Draft(MethodView):
    @require_role("admin")
    @blp.response(200, DraftSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such draft")
    def get(self, draft_id: int):
        """A draft with its content and validation report."""
        return rv.get_draft(_db(), draft_id)

    @require_role("admin")
    @blp.arguments(DraftEditSchema)
    @blp.response(200, DraftSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such draft")
    @blp.alt_response(409, schema=ErrorSchema, description="The draft is not open (published or discarded)")
    @blp.alt_response(422, schema=ErrorSchema,
                      description="Bad operations: every problem named by ops[i].field; nothing was applied")
    def patch(self, body, draft_id: int):
        """Apply edit operations, all or none. Operations:
        set_threshold {rule_id, path, value}; add_rule {pack_id, rule}; update_rule {rule_id, changes};
        end_rule {rule_id, effective_to}; remove_rule {rule_id}; add_pack {pack}; remove_pack {pack_id};
        set_country_group {group, members}; add_overlay {id, title, citation, effective_from, effective_to?,
        families: [model family ids] or products: [patterns], destinations?, groups?, headquarters?,
        headquarters_groups?, requirement?, review_policy?, precedence?, pack_id?, tests?} (expands to a licence
        rule); set_vendor {vendor, name?, aliases, pack_id?, remove?} (the vendor alias table);
        set_family {family: {id, vendor, name, names?, lookalikes?, citation?}, pack_id?}."""
        return rv.apply_edits(_db(), draft_id, body["ops"], g.actor)

    @require_role("admin")
    @blp.arguments(DraftContentSchema)
    @blp.response(200, DraftSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such draft")
    @blp.alt_response(409, schema=ErrorSchema, description="The draft is not open (published or discarded)")
    def put(self, body, draft_id: int):
        """Replace the whole content (power users); the response reports validity."""
        return rv.replace_content(_db(), draft_id, body["content"], g.actor)

    @require_role("admin")
    @blp.response(200, DraftSchema, description="The discarded draft (without its content)")
    @blp.alt_response(404, schema=ErrorSchema, description="No such draft")
    @blp.alt_response(409, schema=ErrorSchema, description="The draft is not open (published or discarded)")
    def delete(self, draft_id: int):
        """Discard an open draft."""
        return rv.discard_draft(_db(), draft_id, g.actor)


@blp.route("/drafts/<int:draft_id>/validate")
class DraftValidate(MethodView):
    @require_role("admin")
    @blp.response(200, ValidationReportSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such draft")
    def post(self, draft_id: int):
        """Schema errors with paths and pack test failures, all at once (valid: true/false)."""
        return rv.validate_draft(_db(), draft_id)


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
        return rv.preview_draft(current_app, draft_id, body.get("as_of"), body.get("destinations"), body["item_limit"])


@blp.route("/drafts/<int:draft_id>/publish")
class DraftPublish(MethodView):
    @require_role("admin")
    @blp.arguments(PublishSchema)
    @blp.response(201, PublishedSchema, headers=_location("The new version: GET /rules/versions/{number}"))
    @blp.alt_response(404, schema=ErrorSchema, description="No such draft")
    @blp.alt_response(409, schema=ErrorSchema, description="The draft is not open, or another publish landed since "
                                                           "it was made; the draft stays open")
    @blp.alt_response(422, schema=ErrorSchema, description="Invalid content or failing pack tests (errors lists them), "
                                                           "no reason, or nothing to publish")
    @blp.alt_response(428, schema=ErrorSchema,
                      description="Storm guard: resend with confirm=true (errors.preview holds the counts)")
    def post(self, body, draft_id: int):
        """Publish as version N+1 and start re-evaluation. 409 if another publish landed since the draft
        was made; 422 if invalid; 428 when the storm guard needs confirm=true."""
        return _published(rv.publish_draft(current_app, draft_id, g.actor, body["reason"], body.get("as_of"),
                                           body["confirm"]))


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
