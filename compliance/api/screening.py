"""Party screening (POST /screen), screening lists with their snapshots and deltas, and hit reviews."""
from __future__ import annotations

from functools import wraps

from flask import Response, current_app, g, jsonify, request, url_for
from flask.views import MethodView
from werkzeug.exceptions import UnsupportedMediaType

from ..auth import require_role
from ..engine.errors import InvalidInput
from ..schemas.common import ErrorSchema
from ..schemas.screening import (
    HitReviewQuerySchema,
    HitReviewSchema,
    ListChangeQuerySchema,
    ListChangeSchema,
    ListEntryQuerySchema,
    ListEntrySchema,
    ListImportQuerySchema,
    ListSnapshotSchema,
    ListsSchema,
    ReviewCreateSchema,
    ScreenAnswerSchema,
    ScreeningJobReportQuerySchema,
    ScreeningJobSchema,
    ScreeningListSchema,
    ScreenRequestSchema,
)
from ..services import screening as svc
from ..services import screening_jobs as jobs
from ..services import screening_lists as lists
from .blueprint import Blueprint

blp = Blueprint("screening", __name__, url_prefix="/api/v1",
                description="Restricted-party screening: lists, snapshots and deltas, screening, hit reviews")


def _db():
    return current_app.extensions["db"]


def _config():
    return current_app.config["COMPLIANCE"]


def json_only(fn):
    """A body that is not JSON is a 415 naming Content-Type (before the schema would call the name missing)."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        if request.content_length and not request.is_json:
            got = request.headers.get("Content-Type") or "none"
            exc = UnsupportedMediaType(f"Content-Type must be application/json, got {got!r}")
            exc.data = {"errors": {"Content-Type": [f"must be application/json, got {got!r}"]}}
            raise exc
        return fn(*args, **kwargs)

    return wrapper


@blp.route("/screen")
class Screen(MethodView):
    @require_role("viewer")
    @json_only
    @blp.arguments(ScreenRequestSchema)
    @blp.response(200, ScreenAnswerSchema)
    @blp.alt_response(415, schema=ErrorSchema, description="The body is not JSON")
    @blp.alt_response(422, schema=ErrorSchema, description="Bad party (missing name, unknown country, ...)")
    def post(self, body):
        """Screen a party (`name`, `country`, `address`) or a batch (`parties`) against every list in force.

        Each hit names the list, the entry (with its Federal Register citation, licence requirement and review
        policy), the name or alias matched, the score and why. Hits at or above SCREENING_THRESHOLD only."""
        config = _config()
        parties = body.get("parties") or [{"name": body["name"], "country": body.get("country"),
                                           "address": body.get("address")}]
        answer = svc.screen_parties(_db(), parties, config.SCREENING_THRESHOLD, config.SCREENING_SAMPLE)
        if "parties" not in body:
            one = answer.pop("results")[0]
            answer.update(one)
        return answer


@blp.route("/screening/lists")
class Lists(MethodView):
    @require_role("viewer")
    @blp.response(200, ListsSchema)
    def get(self):
        """Every screening list with its snapshot in force."""
        lists.ensure_sample(_db(), _config().SCREENING_SAMPLE)
        return {"items": lists.list_lists(_db())}

    @require_role("auditor")
    @blp.arguments(ScreeningListSchema)
    @blp.response(201, ScreeningListSchema)
    @blp.alt_response(409, schema=ErrorSchema, description="A list of that name exists")
    def post(self, body):
        """Create a custom list (the company's own denied parties); fill it by importing a file."""
        lists.ensure_csl_list(_db(), g.actor)
        view = lists.create_list(_db(), body["name"], body.get("description", ""), g.actor)
        return view, 201, {"Location": url_for("screening.ListItem", list_id=view["id"])}


@blp.route("/screening/lists/<int:list_id>")
class ListItem(MethodView):
    @require_role("viewer")
    @blp.response(200, ScreeningListSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such list")
    def get(self, list_id: int):
        """A list with every snapshot, newest first."""
        return lists.get_list(_db(), list_id)


@blp.route("/screening/lists/<int:list_id>/snapshots")
class Snapshots(MethodView):
    @require_role("auditor")
    @blp.arguments(ListImportQuerySchema, location="query")
    @blp.response(201, ListSnapshotSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such list")
    @blp.alt_response(409, schema=ErrorSchema, description="The file is the snapshot in force already")
    @blp.alt_response(413, schema=ErrorSchema, description="Upload larger than MAX_UPLOAD_BYTES")
    @blp.alt_response(422, schema=ErrorSchema, description="Unreadable file (not UTF-8, bad JSON, no name column)")
    def post(self, query, list_id: int):
        """Import a list file (CSL CSV, TSV or JSON; a custom list in the same columns) as the list's next
        snapshot: a multipart field `file`, or the file as the body. Good rows are kept, bad rows reported
        (row, field, problem); the answer has the delta against the previous snapshot."""
        upload = request.files.get("file")
        if upload is not None:
            filename, ctype, data = upload.filename or "", upload.mimetype, upload.read()
        elif request.mimetype == "multipart/form-data":
            raise InvalidInput("no file in the upload: send the multipart field 'file'", {"file": ["missing"]})
        else:
            filename, ctype, data = query.get("filename", ""), request.mimetype, request.get_data()
        fmt = lists.detect_format(filename, ctype, query.get("format"))
        view = lists.import_snapshot(_db(), list_id, data, fmt, filename, query.get("source_date"), g.actor)
        return view, 201, {"Location": url_for("screening.SnapshotItem", snapshot_id=view["id"])}


@blp.route("/screening/snapshots/<int:snapshot_id>")
class SnapshotItem(MethodView):
    @require_role("viewer")
    @blp.response(200, ListSnapshotSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such snapshot")
    def get(self, snapshot_id: int):
        """One snapshot: counts, rejected rows with their problems, delta counts."""
        return lists.get_snapshot(_db(), snapshot_id)


@blp.route("/screening/snapshots/<int:snapshot_id>/changes")
class SnapshotChanges(MethodView):
    @require_role("viewer")
    @blp.arguments(ListChangeQuerySchema, location="query")
    @blp.page_response(ListChangeSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such snapshot")
    def get(self, query, snapshot_id: int):
        """The delta of a snapshot against the previous one: entries added, removed and changed (with fields)."""
        return lists.snapshot_changes(_db(), snapshot_id, query["page"], query["per_page"], query.get("change"))


@blp.route("/screening/snapshots/<int:snapshot_id>/entries")
class SnapshotEntries(MethodView):
    @require_role("viewer")
    @blp.arguments(ListEntryQuerySchema, location="query")
    @blp.page_response(ListEntrySchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such snapshot")
    def get(self, query, snapshot_id: int):
        """The entries of a snapshot (filter by name and source list)."""
        return lists.snapshot_entries(_db(), snapshot_id, query["page"], query["per_page"], query.get("q"),
                                      query.get("source"))


@blp.route("/screening/reviews")
class Reviews(MethodView):
    @require_role("auditor")
    @json_only
    @blp.arguments(ReviewCreateSchema)
    @blp.response(201, HitReviewSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such entry")
    @blp.alt_response(422, schema=ErrorSchema, description="Not a hit of this party, or no reason")
    def post(self, body):
        """Clear a hit as a false positive for this party (or confirm it), with a reason. A cleared hit is
        not raised again for this party until the party (name, country, address) or the entry changes."""
        config = _config()
        return svc.record_review(_db(), body["party"], body["entry_id"], body["decision"], body["reason"], g.actor,
                                 config.SCREENING_THRESHOLD, config.SCREENING_SAMPLE), 201

    @require_role("viewer")
    @blp.arguments(HitReviewQuerySchema, location="query")
    @blp.page_response(HitReviewSchema)
    def get(self, query):
        """Every hit review, newest first (the audit trail of clearances and confirmations)."""
        return svc.list_reviews(_db(), query["page"], query["per_page"], query.get("decision"), query.get("actor"),
                                query.get("entry_id"))


@blp.route("/screening/jobs")
class ScreeningJobs(MethodView):
    @require_role("auditor")
    @blp.arguments(ListImportQuerySchema, location="query")
    @blp.response(202, ScreeningJobSchema)
    @blp.alt_response(413, schema=ErrorSchema, description="Upload larger than MAX_UPLOAD_BYTES")
    @blp.alt_response(422, schema=ErrorSchema, description="Unreadable file (not UTF-8, bad JSON, no name column)")
    def post(self, query):
        """Bulk-screen a party master file (CSV with name, country, address columns; or JSON: a list of
        parties) on the workers: 202 with the job; bad rows are reported and left out."""
        upload = request.files.get("file")
        if upload is not None:
            filename, ctype, data = upload.filename or "", upload.mimetype, upload.read()
        elif request.mimetype == "multipart/form-data":
            raise InvalidInput("no file in the upload: send the multipart field 'file'", {"file": ["missing"]})
        else:
            filename, ctype, data = query.get("filename", ""), request.mimetype, request.get_data()
        fmt = lists.detect_format(filename, ctype, query.get("format"))
        view = jobs.create_job(_db(), data, fmt, filename, g.actor)
        return view, 202, {"Location": url_for("screening.ScreeningJobItem", job_id=view["id"])}


@blp.route("/screening/jobs/<int:job_id>")
class ScreeningJobItem(MethodView):
    @require_role("viewer")
    @blp.response(200, ScreeningJobSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such job")
    def get(self, job_id: int):
        """A bulk screening job: status, progress, counts, rejected rows."""
        return jobs.get_job(_db(), job_id)


@blp.route("/screening/jobs/<int:job_id>/report")
class ScreeningJobReport(MethodView):
    @require_role("viewer")
    @blp.arguments(ScreeningJobReportQuerySchema, location="query")
    @blp.doc(responses={"200": {"description": "Every party with its status and hits",
                                "content": {"text/csv": {"schema": {"type": "string"}},
                                            "application/json": {"schema": {"type": "object"}}}}})
    @blp.alt_response(404, schema=ErrorSchema, description="No such job")
    def get(self, query, job_id: int):
        """The report: every party (or only_hits=true) with its status and hits; format=json or csv (one line
        per hit; formula cells neutralised)."""
        rows = jobs.job_report(_db(), job_id, query["only_hits"])
        if query["format"] == "csv":
            resp = Response(jobs.report_csv(rows), mimetype="text/csv")
            resp.headers["Content-Disposition"] = f'attachment; filename="screening-job-{job_id}.csv"'
            return resp
        return jsonify({"job_id": job_id, "parties": rows})
