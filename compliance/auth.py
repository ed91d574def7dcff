"""API keys with roles viewer < auditor < admin. Keys are stored as sha256 hashes only."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone
from functools import wraps

from flask import current_app, g, request
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from .engine.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from .models import ActivityEvent, ApiKey, ConsoleSession
from .models.auth import EXPIRES_IN_DAYS_MAX, OVERLAP_HOURS_DEFAULT, OVERLAP_HOURS_MAX, ROLES, as_utc, expiry_problem
from .models.base import iso_utc
from .services.committed import TimedCache, watch

KEY_PREFIX = "cck_"
_INHERIT = object()


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def expiry_from(expires_in_days: int | None = None, expires_at: datetime | None = None) -> datetime | None:
    """A new key's expiry from `expires_in_days` or `expires_at` (at most one; neither: no expiry).

    InvalidInput naming the field when it is out of range or both are given."""
    if expires_in_days is not None and expires_at is not None:
        raise InvalidInput("give expires_in_days or expires_at, not both",
                           {"expires_at": ["give expires_in_days or expires_at, not both"]})
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= EXPIRES_IN_DAYS_MAX:
            problem = f"must be between 1 and {EXPIRES_IN_DAYS_MAX}"
            raise InvalidInput(f"expires_in_days: {problem}", {"expires_in_days": [problem]})
        return _now() + timedelta(days=expires_in_days)
    problem = expiry_problem(expires_at)
    if problem:
        raise InvalidInput(f"expires_at: {problem}", {"expires_at": [problem]})
    return as_utc(expires_at) if expires_at is not None else None


def key_state(key: ApiKey, now: datetime | None = None) -> str:
    """`revoked`, `expired` or `active`."""
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= (now or _now()):
        return "expired"
    return "active"


def key_view(key: ApiKey, now: datetime | None = None) -> dict:
    """A key as the API and the CLI list it (never the key itself: only its prefix)."""
    return {"id": key.id, "name": key.name, "role": key.role, "prefix": key.prefix, "state": key_state(key, now),
            "created_at": key.created_at, "expires_at": key.expires_at, "revoked_at": key.revoked_at,
            "last_used_at": key.last_used_at, "rotated_from": key.rotated_from_id, "replaced_by": key.replaced_by_id}


def _new_key(name: str, role: str, expires_at: datetime | None, rotated_from: int | None = None) -> tuple[ApiKey, str]:
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=plain[:12], key_hash=hash_key(plain), role=role, expires_at=expires_at,
                 rotated_from_id=rotated_from, created_at=_now())
    return key, plain


def create_api_key(db, name: str, role: str, actor: str = "cli",
                   expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """Create a key, valid until `expires_at` (None: until revoked); the plain key is returned once and
    never stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    problem = expiry_problem(expires_at)
    if problem:
        raise InvalidInput(f"expires_at: {problem}", {"expires_at": [problem]})
    with db.session() as s:
        key, plain = _new_key(name, role, as_utc(expires_at) if expires_at else None)
        s.add(key)
        s.flush()
        s.add(ActivityEvent(actor=actor, action="api_key.create", target=f"api_key:{key.id}",
                            detail={"name": name, "role": role, "prefix": key.prefix,
                                 "expires_at": iso_utc(key.expires_at)}))
        s.expunge(key)
    return key, plain


def rotate_api_key(db, key_id: int, actor: str = "cli", overlap_hours: int = OVERLAP_HOURS_DEFAULT,
                   expires_at=_INHERIT) -> tuple[ApiKey, str, ApiKey]:
    """Rotate a key: a new key for the same holder (same name and role), shown once, and the old key set
    to expire `overlap_hours` from now (never later than it already would), so that its holder can switch
    over. The new key expires at `expires_at` when given (None: never); by default it gets the old key's
    lifetime (created -> expiry) counted from now, or none if the old key had none.

    Returns (new key, its plain text, old key). NotFound for an unknown key; Conflict for a revoked key or one
    already rotated (rotate its successor instead). Recorded in the activity log as `api_key.rotate` on the
    old key and `api_key.create` on the new one."""
    if not 0 <= overlap_hours <= OVERLAP_HOURS_MAX:
        problem = f"must be between 0 and {OVERLAP_HOURS_MAX}"
        raise InvalidInput(f"overlap_hours: {problem}", {"overlap_hours": [problem]})
    if expires_at is not _INHERIT:
        problem = expiry_problem(expires_at)
        if problem:
            raise InvalidInput(f"expires_at: {problem}", {"expires_at": [problem]})
    now = _now()
    try:
        with db.session() as s:
            old = s.get(ApiKey, key_id)
            if old is None:
                raise NotFound(f"no API key {key_id}")
            if old.revoked_at is not None:
                raise Conflict(f"API key {key_id} is revoked; create a new key instead")
            if old.replaced_by_id is not None:
                raise Conflict(f"API key {key_id} was already rotated (replaced by key {old.replaced_by_id}); "
                               "rotate that one")
            if expires_at is _INHERIT:
                lifetime = old.expires_at - old.created_at if old.expires_at else None
                new_expiry = now + lifetime if lifetime else None
            else:
                new_expiry = as_utc(expires_at) if expires_at else None
            new, plain = _new_key(old.name, old.role, new_expiry, rotated_from=old.id)
            s.add(new)
            s.flush()  # the unique rotated_from_id: a concurrent rotation of the same key fails here
            old_expiry = now + timedelta(hours=overlap_hours)
            if old.expires_at is not None and old.expires_at < old_expiry:
                old_expiry = old.expires_at
            # Conditional: a rotation or revocation that committed since the read above wins.
            done = s.execute(update(ApiKey).where(ApiKey.id == old.id, ApiKey.replaced_by_id.is_(None),
                                                  ApiKey.revoked_at.is_(None))
                             .values(replaced_by_id=new.id, expires_at=old_expiry)
                             .execution_options(synchronize_session=False)).rowcount
            if done != 1:
                raise Conflict(f"API key {key_id} was rotated or revoked meanwhile")
            s.add(ActivityEvent(actor=actor, action="api_key.create", target=f"api_key:{new.id}",
                                detail={"name": new.name, "role": new.role, "prefix": new.prefix,
                                     "expires_at": iso_utc(new.expires_at), "rotated_from": old.id}))
            s.add(ActivityEvent(actor=actor, action="api_key.rotate", target=f"api_key:{old.id}",
                                detail={"prefix": old.prefix, "replaced_by": new.id, "new_prefix": new.prefix,
                                     "overlap_hours": overlap_hours, "old_key_expires_at": iso_utc(old_expiry),
                                     "new_key_expires_at": iso_utc(new.expires_at)}))
            s.flush()
            s.refresh(old)
            s.expunge(new)
            s.expunge(old)
    except IntegrityError:
        raise Conflict(f"API key {key_id} was rotated meanwhile") from None
    return new, plain, old


def revoke_api_key(db, key_id: int, actor: str = "cli") -> ApiKey:
    with db.session() as s:
        key = s.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"no API key {key_id}")
        if key.revoked_at is None:
            key.revoked_at = _now()
            s.add(ActivityEvent(actor=actor, action="api_key.revoke", target=f"api_key:{key.id}",
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


_RESOLVED = "compliance.auth.identity"


def authenticate() -> None:
    """Resolve the caller into g.actor / g.role / g.key_id (role and key id None when no valid key; then
    g.auth_error says why). Once per request: the rate limiter's key function and require_role share the
    lookup, which is kept on the request itself (an app context, and so g, may outlive one request)."""
    resolved = request.environ.get(_RESOLVED)
    if resolved is None:
        resolved = request.environ[_RESOLVED] = _identify_caller()
    g.actor, g.role, g.key_id, error = resolved
    if error:
        g.auth_error = error
    else:
        g.pop("auth_error", None)


def _identify_caller() -> tuple[str, str | None, int | None, str | None]:
    """(actor, role, key id, why refused) of this request's caller."""
    if current_app.config["COMPLIANCE"].AUTH_MODE == "disabled":
        return "local", "admin", None, None
    plain = _presented_key()
    if not plain:
        return "anonymous", None, None, None
    found = resolve_key(current_app.extensions["db"], plain)
    if isinstance(found, str):
        return "anonymous", None, None, found
    return (*found, None)


def actor_of(key: ApiKey) -> str:
    """The actor recorded for everything done with this key (API and console alike)."""
    return f"{key.name} ({key.prefix}…)"


def _touch(key: ApiKey) -> None:
    now = _now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        key.last_used_at = now


def _refusal(key: ApiKey | None, now: datetime) -> str | None:
    """Why this key may not be used now (None: it may)."""
    if key is None or key.revoked_at is not None:
        return "the API key is unknown or revoked"
    if key.expires_at is not None and key.expires_at <= now:
        rotated = f" (it was rotated: use its replacement, key {key.replaced_by_id})" if key.replaced_by_id else ""
        return f"the API key expired at {key.expires_at.isoformat()}{rotated}"
    return None


def identify_key(db, plain: str) -> tuple[str, str] | None:
    """(actor, role) of a live key, or None when it is unknown, revoked or expired."""
    found = resolve_key(db, plain)
    return None if isinstance(found, str) else found[:2]


# A live key's lookup is kept for KEY_CACHE_SECONDS (services/committed.py): revoking, rotating or
# expiring a key through this process drops every entry at its commit, so the next request is refused;
# a change made by another process (another web worker, the CLI) is seen within KEY_CACHE_SECONDS. An
# expiry time is checked on every use, cached or not. Refusals are never cached.
KEY_CACHE_SECONDS = 2.0
KEYS_CHANGED = watch(ApiKey, ignore=("last_used_at",))
_live_keys: TimedCache[tuple[str, str, int, datetime | None]] = TimedCache(KEY_CACHE_SECONDS, KEYS_CHANGED)


def resolve_key(db, plain: str) -> tuple[str, str, int] | str:
    """(actor, role, key id) of a live key, or why it is refused (unknown, revoked, expired)."""
    digest = hash_key(plain)
    hit = _live_keys.get(db, digest)
    if hit is not None:
        actor, role, key_id, expires_at = hit
        if expires_at is None or expires_at > _now():
            return actor, role, key_id
    token = _live_keys.begin()
    with db.session() as s:
        key = s.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
        refusal = _refusal(key, _now())
        if refusal:
            return refusal
        _touch(key)
        found = actor_of(key), key.role, key.id
        expires_at = key.expires_at
    _live_keys.put(db, digest, (*found, expires_at), token)
    return found


# ---------- web console sessions: an API key exchanged for a session cookie ----------

CONSOLE_SESSION_HOURS = 12


def open_console_session(db, plain: str) -> tuple[str, str] | None:
    """Exchange a live API key for a console session: (token for the cookie, role), or None.

    Only sha256(token) is stored; the session acts with the key's role and as the key's actor."""
    now = datetime.now(timezone.utc)
    with db.session() as s:
        key = s.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plain.strip())))
        if _refusal(key, now):
            return None
        _touch(key)
        s.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
        token = secrets.token_urlsafe(32)
        s.add(ConsoleSession(token_hash=hash_key(token), key_id=key.id, csrf_token=secrets.token_urlsafe(32),
                             created_at=now, expires_at=now + timedelta(hours=CONSOLE_SESSION_HOURS)))
        return token, key.role


def console_identity(db, token: str) -> tuple[str, str, str] | None:
    """(actor, role, csrf token) of a live console session, or None (unknown, expired, key revoked or expired)."""
    now = datetime.now(timezone.utc)
    with db.session() as s:
        row = s.execute(select(ConsoleSession, ApiKey).join(ApiKey, ApiKey.id == ConsoleSession.key_id)
                        .where(ConsoleSession.token_hash == hash_key(token))).first()
        if row is None:
            return None
        sess, key = row
        if _refusal(key, now) or sess.expires_at <= now:
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
