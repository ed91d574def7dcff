"""API keys (admin): create (the key is shown once; optionally expiring), list (never the keys), rotate, revoke."""
from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView

from ..auth import create_api_key, expiry_from, key_view, list_api_keys, require_role, revoke_api_key, rotate_api_key
from ..schemas.common import ErrorSchema
from ..schemas.keys import (
    CreatedKeySchema,
    KeyCreateSchema,
    KeyListSchema,
    KeyRotateSchema,
    KeySchema,
    RotatedKeySchema,
)
from .blueprint import Blueprint

blp = Blueprint("keys", __name__, url_prefix="/api/v1/keys", description="API keys with roles viewer < auditor < admin")

UNAUTHORIZED = "No API key, or an unknown, revoked or expired one"
FORBIDDEN = "The key is not an admin key"


def _db():
    return current_app.extensions["db"]


@blp.route("")
class Keys(MethodView):
    @require_role("admin")
    @blp.response(200, KeyListSchema)
    @blp.alt_response(401, schema=ErrorSchema, description=UNAUTHORIZED)
    @blp.alt_response(403, schema=ErrorSchema, description=FORBIDDEN)
    def get(self):
        """Keys with name, role, prefix, state, expiry and rotation links (the keys themselves are not stored)."""
        return {"items": [key_view(k) for k in list_api_keys(_db())]}

    @require_role("admin")
    @blp.arguments(KeyCreateSchema)
    @blp.response(201, CreatedKeySchema)
    @blp.alt_response(401, schema=ErrorSchema, description=UNAUTHORIZED)
    @blp.alt_response(403, schema=ErrorSchema, description=FORBIDDEN)
    def post(self, body):
        """Create a key, optionally expiring (expires_in_days or expires_at); the response is the only time the
        key is shown."""
        expires_at = expiry_from(body.get("expires_in_days"), body.get("expires_at"))
        key, plain = create_api_key(_db(), body["name"], body["role"], actor=g.actor, expires_at=expires_at)
        return {**key_view(key), "key": plain}


@blp.route("/<int:key_id>")
class Key(MethodView):
    @require_role("admin")
    @blp.response(200, KeySchema)
    @blp.alt_response(401, schema=ErrorSchema, description=UNAUTHORIZED)
    @blp.alt_response(403, schema=ErrorSchema, description=FORBIDDEN)
    @blp.alt_response(404, schema=ErrorSchema, description="No such key")
    def delete(self, key_id: int):
        """Revoke a key (it stops working at once)."""
        return key_view(revoke_api_key(_db(), key_id, actor=g.actor))


@blp.route("/<int:key_id>/rotate")
class KeyRotation(MethodView):
    @require_role("admin")
    @blp.arguments(KeyRotateSchema, required=False)
    @blp.response(201, RotatedKeySchema)
    @blp.alt_response(401, schema=ErrorSchema, description=UNAUTHORIZED)
    @blp.alt_response(403, schema=ErrorSchema, description=FORBIDDEN)
    @blp.alt_response(404, schema=ErrorSchema, description="No such key")
    @blp.alt_response(409, schema=ErrorSchema, description="The key is revoked, or was already rotated")
    def post(self, body, key_id: int):
        """Rotate a key: a new key for the same holder (same name and role; shown this once), while the old key
        keeps working for overlap_hours (default 24) and then expires. The new key expires at expires_at /
        after expires_in_days when given, else after the old key's lifetime counted from now (never, if the old
        key never expired). Recorded in the activity log (api_key.rotate)."""
        kwargs = {}
        if "expires_in_days" in body or "expires_at" in body:
            kwargs["expires_at"] = expiry_from(body.get("expires_in_days"), body.get("expires_at"))
        new, plain, old = rotate_api_key(_db(), key_id, actor=g.actor, overlap_hours=body["overlap_hours"], **kwargs)
        return {**key_view(new), "key": plain, "previous": key_view(old)}
