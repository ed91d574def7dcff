"""The licence register."""
from __future__ import annotations

from flask import current_app, g, url_for
from flask.views import MethodView

from ..auth import require_role
from ..schemas.common import ErrorSchema
from ..schemas.orders import IssuedLicenceQuerySchema, IssuedLicenceSchema
from ..services import licences as svc
from .blueprint import Blueprint
from .screening import json_only

blp = Blueprint("licences", __name__, url_prefix="/api/v1", description="Licences and their balances")


def _db():
    return current_app.extensions["db"]


@blp.route("/licences")
class Licences(MethodView):
    @require_role("auditor")
    @json_only
    @blp.arguments(IssuedLicenceSchema)
    @blp.response(201, IssuedLicenceSchema)
    @blp.alt_response(409, schema=ErrorSchema, description="A licence with that number exists")
    @blp.alt_response(422, schema=ErrorSchema, description="Bad licence (end before start, unknown country, ...)")
    def post(self, body):
        """Register a licence: number, holder, ECCNs or products, destinations, parties, limits, validity."""
        view = svc.create_licence(_db(), body, g.actor)
        return view, 201, {"Location": url_for("licences.LicenceItem", licence_id=view["id"])}

    @require_role("viewer")
    @blp.arguments(IssuedLicenceQuerySchema, location="query")
    @blp.page_response(IssuedLicenceSchema)
    def get(self, query):
        """The licence register with balances (filter by destination, valid on a date)."""
        return svc.list_licences(_db(), query["page"], query["per_page"], query.get("destination"),
                                 query.get("valid_on"))


@blp.route("/licences/<int:licence_id>")
class LicenceItem(MethodView):
    @require_role("viewer")
    @blp.response(200, IssuedLicenceSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such licence")
    def get(self, licence_id: int):
        """One licence with its balance and every draw-down."""
        return svc.get_licence(_db(), licence_id)
