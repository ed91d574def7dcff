"""The change feed (services.changes.list_changes, as GET /api/v1/changes) with filters, and its export."""
from __future__ import annotations

import json
from datetime import date

from flask import render_template, request

from ..api.downloads import download
from ..schemas.changes import ChangesQuerySchema
from ..services import catalogues as cat_svc
from ..services.changes import iter_changes, list_changes
from ..services.exports import export
from .blueprint import _db, blp, role_required
from .forms import load, number

PER_PAGE = 100


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
                           catalogues=cat_svc.list_catalogues(_db()), pages=max(1, -(-page.total // PER_PAGE)))


@blp.route("/changes/export.<any(csv, jsonl, xlsx, json):fmt>")
@role_required("viewer")
def changes_export(fmt: str):
    """Every change matching the filters (not only the page), streamed: the API's export (CSV, JSON Lines,
    XLSX; the change records with product and catalogue names), or the feed's items as one JSON document."""
    query, errors = _filters()
    if errors:
        from ..engine.errors import InvalidInput

        raise InvalidInput("invalid filters", errors)
    filters = {k: v for k, v in query.items() if k not in ("page", "per_page")}
    if fmt == "json":
        rows = iter_changes(_db(), **filters)

        def as_json():
            yield '{"items": ['
            for i, c in enumerate(rows):
                yield ("," if i else "") + json.dumps(c)
            yield "]}"

        pieces, name = as_json(), "changes.json"
    else:
        pieces, name = export(_db(), "changes", fmt, filters=filters)
    return download(pieces, name, fmt)
