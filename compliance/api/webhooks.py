"""Webhook subscriptions (admin) and their delivery logs."""
from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView

from ..auth import require_role
from ..schemas.changes import PageQuerySchema as PaginationQuerySchema
from ..schemas.changes import WebhookCreateSchema
from ..services import webhooks as wh
from .blueprint import Blueprint

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks",
                description="Signed webhooks: changes.published after a re-evaluation with changes")


def _db():
    return current_app.extensions["db"]


@blp.route("")
class Webhooks(MethodView):
    @require_role("admin")
    @blp.response(200)
    def get(self):
        """Subscriptions (never their secrets)."""
        return {"items": wh.list_subscriptions(_db())}

    @require_role("admin")
    @blp.arguments(WebhookCreateSchema)
    @blp.response(201)
    def post(self, body):
        """Register a URL and a secret; deliveries carry X-Compliance-Signature: sha256=HMAC(secret, raw body)."""
        return wh.create_subscription(_db(), body["url"], g.actor, body.get("secret"), body.get("events"))


@blp.route("/<int:sub_id>")
class Webhook(MethodView):
    @require_role("admin")
    @blp.response(200)
    def delete(self, sub_id: int):
        """Deactivate a subscription."""
        return wh.deactivate_subscription(_db(), sub_id, g.actor)


@blp.route("/<int:sub_id>/deliveries")
class Deliveries(MethodView):
    @require_role("admin")
    @blp.arguments(PaginationQuerySchema, location="query")
    @blp.response(200)
    def get(self, query, sub_id: int):
        """Delivery log: attempts, status codes, errors."""
        return wh.list_deliveries(_db(), sub_id, query["page"], query["per_page"])


@blp.route("/<int:sub_id>/ping")
class Ping(MethodView):
    @require_role("admin")
    @blp.response(202)
    def post(self, sub_id: int):
        """Send a signed test event."""
        return wh.ping(_db(), sub_id, g.actor)
