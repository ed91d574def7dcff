"""Webhook subscriptions (admin) and their delivery logs."""
from __future__ import annotations

from flask import current_app, g, url_for
from flask.views import MethodView

from ..auth import require_role
from ..schemas.changes import (
    CreatedWebhookSchema,
    DeliveriesQuerySchema,
    DeliveriesQueuedSchema,
    DeliverySchema,
    WebhookCreateSchema,
    WebhookSchema,
)
from ..schemas.common import list_of
from ..services import webhooks as wh
from .blueprint import Blueprint

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks",
                description="Signed webhooks: changes.published after a re-evaluation with changes")


def _db():
    return current_app.extensions["db"]


@blp.route("")
class Webhooks(MethodView):
    @require_role("admin")
    @blp.response(200, list_of(WebhookSchema))
    def get(self):
        """Subscriptions (never their secrets)."""
        return {"items": wh.list_subscriptions(_db())}

    @require_role("admin")
    @blp.arguments(WebhookCreateSchema)
    @blp.response(201, CreatedWebhookSchema)
    def post(self, body):
        """Register a URL (the secret is generated as whsec_..., or given); deliveries are signed the Standard Webhooks
        way: webhook-id, webhook-timestamp, webhook-signature = v1,base64(HMAC-SHA256(key, id.timestamp.body))."""
        created = wh.create_subscription(_db(), body["url"], g.actor, body.get("secret"), body.get("events"),
                                         current_app.config["COMPLIANCE"].webhook_allowed_networks)
        return created, 201, {"Location": url_for("webhooks.Webhook", sub_id=created["id"])}


@blp.route("/<int:sub_id>")
class Webhook(MethodView):
    @require_role("admin")
    @blp.response(200, WebhookSchema)
    def get(self, sub_id: int):
        """One subscription (never its secret)."""
        return wh.get_subscription(_db(), sub_id)

    @require_role("admin")
    @blp.response(200, WebhookSchema)
    def delete(self, sub_id: int):
        """Deactivate a subscription (its deliveries stay listed); answers with it, inactive."""
        return wh.deactivate_subscription(_db(), sub_id, g.actor)


@blp.route("/<int:sub_id>/deliveries")
class Deliveries(MethodView):
    @require_role("admin")
    @blp.arguments(DeliveriesQuerySchema, location="query")
    @blp.page_response(DeliverySchema)
    def get(self, query, sub_id: int):
        """Delivery log, newest first, paginated: each delivery with its attempts (time, status code, error,
        duration); ?status=failed."""
        return wh.list_deliveries(_db(), sub_id, query["page"], query["per_page"], query.get("status"))


@blp.route("/<int:sub_id>/deliveries/<int:delivery_id>/redeliver")
class Redeliver(MethodView):
    @require_role("admin")
    @blp.response(202, DeliveriesQueuedSchema)
    def post(self, sub_id: int, delivery_id: int):
        """Send a delivered or failed delivery's event again, as a new delivery with the same webhook-id."""
        return wh.redeliver(_db(), sub_id, delivery_id, g.actor)


@blp.route("/<int:sub_id>/ping")
class Ping(MethodView):
    @require_role("admin")
    @blp.response(202, DeliveriesQueuedSchema)
    def post(self, sub_id: int):
        """Send a signed test event."""
        return wh.ping(_db(), sub_id, g.actor)
