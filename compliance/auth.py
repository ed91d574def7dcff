"""API keys with roles viewer < auditor < admin. Keys are stored as sha256 hashes only."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone
from functools import wraps

from flask import current_app, g, request
from sqlalchemy import delete, select

from .engine.errors import Forbidden, NotFound, Unauthorized
from .models import ApiKey, AuditEvent, ConsoleSession
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


def list_api_keys(db) -> list[ApiKey]:
    """Every key (name, role, prefix, state; never the key), oldest first."""
    with db.session() as s:
        keys = list(s.scalars(select(ApiKey).order_by(ApiKey.id)))
        for k in keys:
            s.expunge(k)
        return keys


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
    identity = identify_key(current_app.extensions["db"], plain)
    if identity is None:
        g.auth_error = "the API key is unknown or revoked"
        return
    g.actor, g.role = identity


def actor_of(key: ApiKey) -> str:
    """The actor recorded for everything done with this key (API and console alike)."""
    return f"{key.name} ({key.prefix}…)"


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _touch(key: ApiKey) -> None:
    now = datetime.now(timezone.utc)
    if key.last_used_at is None or (now - _aware(key.last_used_at)).total_seconds() > 60:
        key.last_used_at = now


def identify_key(db, plain: str) -> tuple[str, str] | None:
    """(actor, role) of a live key, or None when it is unknown or revoked."""
    with db.session() as s:
        key = s.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plain)))
        if key is None or key.revoked_at is not None:
            return None
        _touch(key)
        return actor_of(key), key.role


# ---------- web console sessions: an API key exchanged for a session cookie ----------

CONSOLE_SESSION_HOURS = 12


def open_console_session(db, plain: str) -> tuple[str, str] | None:
    """Exchange a live API key for a console session: (token for the cookie, role), or None.

    Only sha256(token) is stored; the session acts with the key's role and as the key's actor."""
    now = datetime.now(timezone.utc)
    with db.session() as s:
        key = s.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plain.strip())))
        if key is None or key.revoked_at is not None:
            return None
        _touch(key)
        s.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
        token = secrets.token_urlsafe(32)
        s.add(ConsoleSession(token_hash=hash_key(token), key_id=key.id, csrf_token=secrets.token_urlsafe(32),
                             created_at=now, expires_at=now + timedelta(hours=CONSOLE_SESSION_HOURS)))
        return token, key.role


def console_identity(db, token: str) -> tuple[str, str, str] | None:
    """(actor, role, csrf token) of a live console session, or None (unknown, expired, key revoked)."""
    now = datetime.now(timezone.utc)
    with db.session() as s:
        row = s.execute(select(ConsoleSession, ApiKey).join(ApiKey, ApiKey.id == ConsoleSession.key_id)
                        .where(ConsoleSession.token_hash == hash_key(token))).first()
        if row is None:
            return None
        sess, key = row
        if key.revoked_at is not None or _aware(sess.expires_at) <= now:
            s.delete(sess)
            return None
        _touch(key)
        return actor_of(key), key.role, sess.csrf_token


def close_console_session(db, token: str) -> None:
    """Sign out: the session row goes, so the cookie (or any copy of it) stops working."""
    with db.session() as s:
        s.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == hash_key(token)))


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
