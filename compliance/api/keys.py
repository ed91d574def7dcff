"""API keys (admin): create (the key is shown once), list (never the keys), revoke."""
from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView

from ..auth import create_api_key, list_api_keys, require_role, revoke_api_key
from ..schemas.changes import CreatedKeySchema, KeyCreateSchema, KeyListSchema, KeySchema
from .blueprint import Blueprint

blp = Blueprint("keys", __name__, url_prefix="/api/v1/keys", description="API keys with roles viewer < auditor < admin")


@blp.route("")
class Keys(MethodView):
    @require_role("admin")
    @blp.response(200, KeyListSchema)
    def get(self):
        """Keys with name, role, prefix and state (the keys themselves are not stored)."""
        return {"items": list_api_keys(current_app.extensions["db"])}

    @require_role("admin")
    @blp.arguments(KeyCreateSchema)
    @blp.response(201, CreatedKeySchema)
    def post(self, body):
        """Create a key; the response is the only time the key is shown."""
        key, plain = create_api_key(current_app.extensions["db"], body["name"], body["role"], actor=g.actor)
        return {**{name: getattr(key, name) for name in KeySchema().fields}, "key": plain}


@blp.route("/<int:key_id>")
class Key(MethodView):
    @require_role("admin")
    @blp.response(200, KeySchema)
    def delete(self, key_id: int):
        """Revoke a key (it stops working at once)."""
        return revoke_api_key(current_app.extensions["db"], key_id, actor=g.actor)
