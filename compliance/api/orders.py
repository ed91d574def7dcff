"""Orders: create (classify every line, screen every party, hold with reasons), the holds queue, release a
held line (licence or four-eyes override), reject."""
from __future__ import annotations

from flask import current_app, g, url_for
from flask.views import MethodView

from ..auth import require_role
from ..schemas.common import ErrorSchema
from ..schemas.orders import (
    OrderChangeQuerySchema,
    OrderChangeSchema,
    OrderCreateSchema,
    OrderQuerySchema,
    OrderSchema,
    RejectSchema,
    ReleaseSchema,
)
from ..services import order_recheck
from ..services import orders as svc
from .blueprint import Blueprint
from .screening import json_only

blp = Blueprint("orders", __name__, url_prefix="/api/v1", description="Orders: holds and releases")


def _db():
    return current_app.extensions["db"]


@blp.route("/orders")
class Orders(MethodView):
    @require_role("auditor")
    @json_only
    @blp.arguments(OrderCreateSchema)
    @blp.response(201, OrderSchema)
    @blp.alt_response(415, schema=ErrorSchema, description="The body is not JSON")
    @blp.alt_response(422, schema=ErrorSchema, description="Bad order (unknown country, negative quantity, "
                                                           "unknown catalogue product, ...)")
    def post(self, body):
        """Check an order: every line classified (one batch, the rules in force on the order date, the
        headquarters rule from the end user's parent), every party screened; `status` is held when any line
        needs a licence, any party hits a list, or an input is unknown; each reason has its citation."""
        config = current_app.config["COMPLIANCE"]
        view = svc.create_order(_db(), current_app.extensions["rulebooks"], body, g.actor,
                                config.SCREENING_THRESHOLD, config.SCREENING_SAMPLE)
        return view, 201, {"Location": url_for("orders.OrderItem", order_id=view["id"])}

    @require_role("viewer")
    @blp.arguments(OrderQuerySchema, location="query")
    @blp.page_response(OrderSchema)
    def get(self, query):
        """Orders, newest first; the holds queue is `status=held` (filter by destination, reason, needs_review)."""
        return svc.list_orders(_db(), query["page"], query["per_page"], query.get("status"), query.get("ship_to"),
                               query.get("reference"), query.get("needs_review"), query.get("reason"))


@blp.route("/orders/changes")
class OrderChanges(MethodView):
    @require_role("viewer")
    @blp.arguments(OrderChangeQuerySchema, location="query")
    @blp.page_response(OrderChangeSchema)
    def get(self, query):
        """The orders' change feed, newest first: lines held again, lines no longer blocked (flagged for
        review, not released) and changed reasons, each with its cause (a list snapshot or a rule version)."""
        return order_recheck.list_changes(_db(), query["page"], query["per_page"], query.get("order_id"),
                                          query.get("kind"), query.get("cause"))


@blp.route("/orders/<int:order_id>")
class OrderItem(MethodView):
    @require_role("viewer")
    @blp.response(200, OrderSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such order")
    def get(self, order_id: int):
        """One order with its lines, reasons and screening."""
        return svc.get_order(_db(), order_id)


@blp.route("/orders/<int:order_id>/lines/<int:line_id>/release")
class LineRelease(MethodView):
    @require_role("auditor")
    @json_only
    @blp.arguments(ReleaseSchema)
    @blp.response(200, OrderSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such order, line or licence")
    @blp.alt_response(409, schema=ErrorSchema, description="The line is not held, or the licence is exhausted")
    @blp.alt_response(422, schema=ErrorSchema, description="The licence does not cover the line, or the override "
                                                           "is by the order's creator (four eyes)")
    def post(self, body, order_id: int, line_id: int):
        """Release a held line with a licence that covers it (validity, destination, ECCN or product, parties;
        its quantity and value drawn down atomically) or with an override by an officer who did not create the
        order (four eyes), with a reason. Both are recorded in the activity log."""
        return svc.release_line(_db(), order_id, line_id, g.actor, body.get("licence_id"), body["override"],
                                body.get("reason"))


@blp.route("/orders/<int:order_id>/reject")
class OrderReject(MethodView):
    @require_role("auditor")
    @json_only
    @blp.arguments(RejectSchema)
    @blp.response(200, OrderSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such order")
    @blp.alt_response(409, schema=ErrorSchema, description="The order is not held")
    def post(self, body, order_id: int):
        """Reject a held order with a reason (its held lines are rejected)."""
        return svc.reject_order(_db(), order_id, g.actor, body["reason"])
