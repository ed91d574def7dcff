"""API keys (admin): create (the key is shown once), list (never the keys), revoke."""
from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView
from sqlalchemy import select

from ..auth import create_api_key, require_role, revoke_api_key
from ..models import ApiKey
from ..schemas.changes import KeyCreateSchema
from .blueprint import Blueprint

blp = Blueprint("keys", __name__, url_prefix="/api/v1/keys", description="API keys with roles viewer < auditor < admin")


def key_view(k: ApiKey) -> dict:
    return {"id": k.id, "name": k.name, "role": k.role, "prefix": k.prefix,
            "created_at": k.created_at.isoformat() if k.created_at else None,
            "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None}


@blp.route("")
class Keys(MethodView):
    @require_role("admin")
    @blp.response(200)
    def get(self):
        """Keys with name, role, prefix and state (the keys themselves are not stored)."""
        with current_app.extensions["db"].session() as s:
            return {"items": [key_view(k) for k in s.scalars(select(ApiKey).order_by(ApiKey.id))]}

    @require_role("admin")
    @blp.arguments(KeyCreateSchema)
    @blp.response(201)
    def post(self, body):
        """Create a key; the response is the only time the key is shown."""
        key, plain = create_api_key(current_app.extensions["db"], body["name"], body["role"], actor=g.actor)
        return key_view(key) | {"key": plain}


@blp.route("/<int:key_id>")
class Key(MethodView):
    @require_role("admin")
    @blp.response(200)
    def delete(self, key_id: int):
        """Revoke a key (it stops working at once)."""
        return key_view(revoke_api_key(current_app.extensions["db"], key_id, actor=g.actor))
