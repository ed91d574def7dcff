"""POST /classify, POST /classify/batch, GET /decisions/{id}."""
from __future__ import annotations

from flask import current_app, g, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from ..auth import require_role
from ..engine.errors import NotFound
from ..models import DecisionRecord
from ..schemas.classify import BatchClassifyRequestSchema, BatchDecisionSchema, ClassifyRequestSchema, DecisionSchema
from ..schemas.common import ErrorSchema
from ..services.classification import check_batch_size, classify_products, record_decision

blp = Blueprint("classify", __name__, url_prefix="/api/v1", description="Classify chips and determine licences")


def _store():
    return current_app.extensions["rulebooks"]


@blp.route("/classify")
class Classify(MethodView):
    @require_role("viewer")
    @blp.arguments(ClassifyRequestSchema)
    @blp.response(200, DecisionSchema)
    @blp.alt_response(422, schema=ErrorSchema, description="Invalid input: the errors name each field and problem")
    @blp.alt_response(400, schema=ErrorSchema, description="Malformed JSON")
    @blp.alt_response(401, schema=ErrorSchema, description="No API key, or an unknown or revoked one")
    @blp.alt_response(413, schema=ErrorSchema, description="Body larger than MAX_BODY_BYTES")
    @blp.alt_response(415, schema=ErrorSchema, description="Body is not application/json")
    def post(self, body):
        """Classify one product as of a date, with licence requirements per destination."""
        hq = (body.get("end_user") or {}).get("headquarters")
        decisions, _ = classify_products(_store(), [body["product"]], body["as_of"], body["destinations"], hq,
                                         body.get("ruleset_revision"))
        decision = decisions[0]
        if body.get("record"):
            decision["decision_id"] = record_decision(current_app.extensions["db"], body, decision, g.actor)
        return jsonify(decision)


@blp.route("/classify/batch")
class ClassifyBatch(MethodView):
    @require_role("viewer")
    @blp.arguments(BatchClassifyRequestSchema)
    @blp.response(200, BatchDecisionSchema)
    @blp.alt_response(422, schema=ErrorSchema,
                      description="Invalid input (errors name each field, products by index), or more than "
                                  "BATCH_MAX_PRODUCTS products (errors name `products`)")
    @blp.alt_response(401, schema=ErrorSchema, description="No API key, or an unknown or revoked one")
    @blp.alt_response(415, schema=ErrorSchema, description="Body is not application/json")
    def post(self, body):
        """Classify up to 10,000 products in one call (same answers as one at a time)."""
        config = current_app.config["COMPLIANCE"]
        check_batch_size(len(body["products"]), config.BATCH_MAX_PRODUCTS)
        hq = (body.get("end_user") or {}).get("headquarters")
        decisions, version = classify_products(_store(), body["products"], body["as_of"], body["destinations"],
                                               hq, body.get("ruleset_revision"))
        if body.get("record"):
            db = current_app.extensions["db"]
            options = {k: v for k, v in body.items() if k != "products"}
            for product, d in zip(body["products"], decisions):
                # store the full product spec, as a single classify does, so the decision can be replayed
                d["decision_id"] = record_decision(db, {**options, "product": product}, d, g.actor)
        return jsonify({"results": decisions, "count": len(decisions), "as_of": body["as_of"].isoformat(),
                        "ruleset_revision": decisions[0]["ruleset_revision"], "rule_version": version.number})


@blp.route("/decisions/<int:decision_id>")
class Decision(MethodView):
    @require_role("viewer")
    @blp.response(200)
    def get(self, decision_id: int):
        """A stored decision record: the request, the response and the revision it cites."""
        with current_app.extensions["db"].session() as s:
            rec = s.get(DecisionRecord, decision_id)
            if rec is None:
                raise NotFound(f"no decision {decision_id}")
            return {"id": rec.id, "created_at": rec.created_at.isoformat(), "actor": rec.actor,
                    "as_of": rec.as_of.isoformat(), "ruleset_revision": rec.ruleset_revision,
                    "request": rec.request, "response": rec.response}
