"""POST /classify, POST /classify/batch, GET /decisions/{id}."""
from __future__ import annotations

from functools import wraps

from flask import Response, current_app, g, request
from flask.views import MethodView

from ..auth import require_role
from ..schemas.classify import (
    BatchClassifyRequestSchema,
    BatchDecisionSchema,
    ClassifyRequestSchema,
    DecisionRecordSchema,
    DecisionSchema,
)
from ..schemas.common import ErrorSchema
from ..services.classification import check_batch_size, classify_products, get_decision, record_decisions
from .blueprint import Blueprint, json_body
from .encoding import dumps_bytes, stream_object
from .gc_pause import paused_iter, pausing_gc

blp = Blueprint("classify", __name__, url_prefix="/api/v1", description="Classify chips and determine licences")
STREAM_CHUNK = 500  # products encoded per piece of a streamed batch answer


def _store():
    return current_app.extensions["rulebooks"]


def refuse_oversized_batch(fn):
    """422 naming `products` when a batch holds more than BATCH_MAX_PRODUCTS, before any product is
    validated (the body is only decoded: MAX_BODY_BYTES bounds that)."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            body = json_body(request) if request.is_json else None
        except (ValueError, RecursionError):
            body = None  # malformed: the argument parser reports it
        products = body.get("products") if isinstance(body, dict) else None
        if isinstance(products, list):
            check_batch_size(len(products), current_app.config["COMPLIANCE"].BATCH_MAX_PRODUCTS)
        return fn(*args, **kwargs)

    return wrapper


def _options(body: dict, products_key: str) -> dict:
    return {k: v for k, v in body.items() if k != products_key}


@blp.route("/classify")
class Classify(MethodView):
    @require_role("viewer")
    @pausing_gc
    @blp.arguments(ClassifyRequestSchema)
    @blp.response(200, DecisionSchema, description="The decision (detail=summary: the summary fields only)")
    @blp.alt_response(422, schema=ErrorSchema, description="Invalid input: the errors name each field and problem")
    @blp.alt_response(400, schema=ErrorSchema, description="Malformed JSON")
    @blp.alt_response(401, schema=ErrorSchema, description="No API key, or an unknown or revoked one")
    @blp.alt_response(413, schema=ErrorSchema, description="Body larger than MAX_BODY_BYTES")
    @blp.alt_response(415, schema=ErrorSchema, description="Body is not application/json")
    def post(self, body):
        """Classify one product as of a date, with licence requirements per destination."""
        hq = (body.get("end_user") or {}).get("headquarters")
        decisions = classify_products(_store(), [body["product"]], body["as_of"], body["destinations"], hq,
                                      body.get("ruleset_revision"), body["detail"],
                                      body["transaction_type"])
        decision = decisions.all()
        if body.get("record"):
            record_decisions(current_app.extensions["db"], _options(body, "product"), [body["product"]], decision,
                             g.actor)
        # Built column-wise by the engine's explanation and encoded once (DecisionSchema documents it;
        # the test suite validates every answer against the spec).
        return Response(dumps_bytes(decision[0]), mimetype="application/json")


@blp.route("/classify/batch")
class ClassifyBatch(MethodView):
    @require_role("viewer")
    @pausing_gc
    @refuse_oversized_batch
    @blp.arguments(BatchClassifyRequestSchema)
    @blp.response(200, BatchDecisionSchema, description="One decision per product, in request order (streamed)")
    @blp.alt_response(422, schema=ErrorSchema,
                      description="Invalid input (errors name each field, products by index), or more than "
                                  "BATCH_MAX_PRODUCTS products (errors name `products`)")
    @blp.alt_response(400, schema=ErrorSchema, description="Malformed JSON")
    @blp.alt_response(401, schema=ErrorSchema, description="No API key, or an unknown or revoked one")
    @blp.alt_response(413, schema=ErrorSchema, description="Body larger than MAX_BODY_BYTES")
    @blp.alt_response(415, schema=ErrorSchema, description="Body is not application/json")
    def post(self, body):
        """Classify up to 10,000 products in one call (same answers as one at a time)."""
        hq = (body.get("end_user") or {}).get("headquarters")
        products = body["products"]
        decisions = classify_products(_store(), products, body["as_of"], body["destinations"], hq,
                                      body.get("ruleset_revision"), body["detail"],
                                      body["transaction_type"])
        head = {"count": len(decisions), "as_of": body["as_of"].isoformat(),
                "ruleset_revision": decisions.revision, "rule_version": decisions.rule_version}
        if body.get("record"):
            results = decisions.all()
            record_decisions(current_app.extensions["db"], _options(body, "products"), products, results, g.actor)
            chunks = iter([results])
        else:
            chunks = decisions.chunks(STREAM_CHUNK, encoded=True)
        # Streamed a chunk of products at a time: a 10,000-product full answer is ~65 MB of JSON,
        # which is never held whole in the worker.
        return Response(paused_iter(stream_object(head, "results", chunks)), mimetype="application/json")


@blp.route("/decisions/<int:decision_id>")
class Decision(MethodView):
    @require_role("viewer")
    @blp.response(200, DecisionRecordSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such decision")
    def get(self, decision_id: int):
        """A stored decision record: the request, the response and the revision it cites."""
        return get_decision(current_app.extensions["db"], decision_id)
