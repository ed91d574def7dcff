"""The change feed and point-in-time views of a catalogue."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from marshmallow import RAISE

from ..auth import require_role
from ..schemas.changes import (
    CATALOGUE_AS_OF_FIELDS,
    CATALOGUE_DIFF_FIELDS,
    CatalogueAsOfItemSchema,
    CatalogueAsOfQuerySchema,
    CatalogueDiffItemSchema,
    CatalogueDiffQuerySchema,
    ChangeSchema,
    ChangesExportQuerySchema,
    ChangesQuerySchema,
)
from ..services.changes import list_changes
from ..services.exports import export
from ..services.point_in_time import catalogue_as_of, catalogue_diff
from .blueprint import Blueprint
from .downloads import EXPORT_RESPONSES, download

blp = Blueprint("changes", __name__, url_prefix="/api/v1", description="Change feed and point-in-time catalogue views")


@blp.route("/changes")
class Changes(MethodView):
    @require_role("viewer")
    @blp.arguments(ChangesQuerySchema, location="query")
    @blp.page_response(ChangeSchema)
    def get(self, query):
        """Change records, newest first; filter by catalogue, product (id or SKU), destination, revision/version, run."""
        return list_changes(current_app.extensions["db"], **query)


@blp.route("/changes/export")
class ChangesExport(MethodView):
    @require_role("viewer")
    @blp.arguments(ChangesExportQuerySchema, location="query", unknown=RAISE)
    @blp.doc(responses=EXPORT_RESPONSES)
    def get(self, query):
        """Every change record matching the filters (not a page), newest first, with the product's and catalogue's
        names; streamed as CSV, JSON Lines or XLSX."""
        fmt = query.pop("format")
        pieces, name = export(current_app.extensions["db"], "changes", fmt, filters=query)
        return download(pieces, name, fmt)


@blp.route("/catalogues/<int:catalogue_id>/diff")
class CatalogueDiff(MethodView):
    @require_role("viewer")
    @blp.arguments(CatalogueDiffQuerySchema, location="query")
    @blp.page_response(CatalogueDiffItemSchema, **CATALOGUE_DIFF_FIELDS)
    def get(self, query, catalogue_id: int):
        """Which products x destinations change between two dates under the current rules (or ruleset_revision):
        a page of the changed cells, with the counts (transitions) of the whole catalogue."""
        return catalogue_diff(current_app, catalogue_id, query["from_"], query["to"], query.get("destinations"),
                              query.get("ruleset_revision"), query["page"], query["per_page"],
                              transaction_type=query["transaction_type"])


@blp.route("/catalogues/<int:catalogue_id>/as-of")
class CatalogueAsOf(MethodView):
    @require_role("viewer")
    @blp.arguments(CatalogueAsOfQuerySchema, location="query")
    @blp.page_response(CatalogueAsOfItemSchema, **CATALOGUE_AS_OF_FIELDS)
    def get(self, query, catalogue_id: int):
        """Re-evaluate a catalogue as of any date (nothing is stored): counts of the whole catalogue and a page of
        its products."""
        return catalogue_as_of(current_app, catalogue_id, query["as_of"], query.get("destinations"),
                               query.get("ruleset_revision"), query["page"], query["per_page"],
                               transaction_type=query["transaction_type"])
