"""The change feed (services.changes.list_changes, as GET /api/v1/changes) with filters, and its export."""
from __future__ import annotations

import csv
import io
import json
from datetime import date

from flask import Response, render_template, request, stream_with_context

from ..schemas.changes import ChangesQuerySchema
from ..services import catalogues as cat_svc
from ..services.changes import iter_changes, list_changes
from .blueprint import _db, blp, role_required
from .forms import load, number

PER_PAGE = 100
EXPORT_COLUMNS = ("id", "created_at", "catalogue_id", "sku", "destination", "as_of", "old_eccn", "old_status",
                  "old_requirement", "old_review_policy", "new_eccn", "new_status", "new_requirement",
                  "new_review_policy", "cause_rule_ids", "from_revision", "to_revision", "run_id")


def _filters() -> tuple[dict, dict[str, list[str]]]:
    """The API's ChangesQuerySchema for the API's filters; since/until (dates) and rule are the console's."""
    api_names = ("catalogue_id", "product", "destination", "revision", "version", "run_id", "page")
    raw = {k: (number(v) if k in ("catalogue_id", "version", "run_id", "page") else v.strip())
           for k, v in request.args.items() if k in api_names and v.strip()}
    query, errors = load(ChangesQuerySchema(), raw | {"per_page": PER_PAGE})
    query = query or {"page": 1, "per_page": PER_PAGE}
    for name in ("since", "until"):
        if request.args.get(name, "").strip():
            try:
                query[name] = date.fromisoformat(request.args[name].strip())
            except ValueError:
                errors[name] = [f"not a date (YYYY-MM-DD): {request.args[name]!r}"]
    if request.args.get("rule", "").strip():
        query["rule"] = request.args["rule"].strip()
    return query, errors


@blp.route("/changes")
@role_required("viewer")
def changes():
    query, errors = _filters()
    page = list_changes(_db(), **query)
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("console/changes.html", feed=page, errors=errors, args=args, query=query,
                           catalogues=cat_svc.list_catalogues(_db()), pages=max(1, -(-page["total"] // PER_PAGE)))


@blp.route("/changes/export.<any(csv, json):fmt>")
@role_required("viewer")
def changes_export(fmt: str):
    """Every change matching the filters (not only the page), streamed."""
    query, errors = _filters()
    if errors:
        from ..engine.errors import InvalidInput

        raise InvalidInput("invalid filters", errors)
    filters = {k: v for k, v in query.items() if k not in ("page", "per_page")}
    rows = iter_changes(_db(), **filters)

    def as_csv():
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(EXPORT_COLUMNS)
        for c in rows:
            writer.writerow([c["id"], c["created_at"], c["catalogue_id"], c["sku"], c["destination"], c["as_of"],
                             *(c["old"][k] for k in ("eccn", "status", "requirement", "review_policy")),
                             *(c["new"][k] for k in ("eccn", "status", "requirement", "review_policy")),
                             ",".join(c["cause_rule_ids"]), c["from_revision"], c["to_revision"], c["run_id"]])
            if buf.tell() > 65536:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    def as_json():
        yield '{"items": ['
        for i, c in enumerate(rows):
            yield ("," if i else "") + json.dumps(c)
        yield "]}"

    body = as_csv() if fmt == "csv" else as_json()
    response = Response(stream_with_context(body), mimetype="text/csv" if fmt == "csv" else "application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="changes.{fmt}"'
    return response
