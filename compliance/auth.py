"""API keys with roles viewer < auditor < admin. Keys are stored as sha256 hashes only."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timezone
from functools import wraps

from flask import current_app, g, request
from sqlalchemy import select

from .engine.errors import Forbidden, NotFound, Unauthorized
from .models import ApiKey, AuditEvent
from .models.auth import ROLES

KEY_PREFIX = "cck_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(db, name: str, role: str, actor: str = "cli") -> tuple[ApiKey, str]:
    """Create a key; the plain key is returned once and never stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    with db.session() as s:
        key = ApiKey(name=name, prefix=plain[:12], key_hash=hash_key(plain), role=role)
        s.add(key)
        s.flush()
        s.add(AuditEvent(actor=actor, action="api_key.create", target=f"api_key:{key.id}",
                         detail={"name": name, "role": role, "prefix": key.prefix}))
        s.expunge(key)
    return key, plain


def revoke_api_key(db, key_id: int, actor: str = "cli") -> ApiKey:
    with db.session() as s:
        key = s.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"no API key {key_id}")
        if key.revoked_at is None:
            key.revoked_at = datetime.now(timezone.utc)
            s.add(AuditEvent(actor=actor, action="api_key.revoke", target=f"api_key:{key.id}",
                             detail={"prefix": key.prefix}))
        s.flush()
        s.expunge(key)
        return key


def _presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("X-API-Key") or None


def authenticate() -> None:
    """Resolve the caller into g.actor / g.role (None when no valid key)."""
    g.actor, g.role = "anonymous", None
    config = current_app.config["COMPLIANCE"]
    if config.AUTH_MODE == "disabled":
        g.actor, g.role = "local", "admin"
        return
    plain = _presented_key()
    if not plain:
        return
    db = current_app.extensions["db"]
    with db.session() as s:
        key = s.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plain)))
        if key is None or key.revoked_at is not None:
            g.auth_error = "the API key is unknown or revoked"
            return
        now = datetime.now(timezone.utc)
        last = key.last_used_at
        if last is None or (now - (last if last.tzinfo else last.replace(tzinfo=timezone.utc))).total_seconds() > 60:
            key.last_used_at = now
        g.actor, g.role = f"{key.name} ({key.prefix}…)", key.role


def require_role(role: str):
    """Decorator: 401 without a valid key, 403 when the key's role is below `role`."""
    needed = ROLES.index(role)

    def decorator(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            authenticate()
            if g.role is None:
                raise Unauthorized(getattr(g, "auth_error", None) or
                                   "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
            if ROLES.index(g.role) < needed:
                raise Forbidden(f"this needs the {role} role; your key has {g.role}")
            return fn(*args, **kwargs)

        return wrapper

    return decorator
