"""Idempotency-Key on POSTs that create a job: a retry with the same key and the same request gets the
first answer (the same resource); the same key with a different request is refused (422).

    claim = idempotency.Request(scope, key, method, path, body)   # scope: who + which operation
    hit = idempotency.replay(db, claim)        # (resource_id, status) of the first answer, or None
    ... create the resource in a session, then in that same transaction:
    idempotency.remember(session, claim, "audit", audit.id, 202)

Two concurrent first requests with one key: the UNIQUE(scope, key) constraint lets one commit; the
other's transaction (and the resource it made) rolls back, and it answers with the winner's replay.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..db import Database
from ..engine.errors import InvalidInput
from ..models import IdempotencyKey

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Request:
    scope: str
    key: str
    sha256: str

    @classmethod
    def of(cls, scope: str, key: str, method: str, path: str, body: Any) -> "Request":
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidInput("the Idempotency-Key header must be 1 to 200 printable characters",
                               {"Idempotency-Key": [f"1 to {MAX_KEY_LENGTH} printable characters"]})
        canonical = json.dumps([method.upper(), path, body], sort_keys=True, default=str, separators=(",", ":"))
        return cls(scope[:300], key, hashlib.sha256(canonical.encode()).hexdigest())


def replay(db: Database, req: Request) -> tuple[int, int] | None:
    """The (resource id, status code) first answered for this key, if any; 422 if the request differs."""
    with db.session() as s:
        row = s.scalar(select(IdempotencyKey).where(IdempotencyKey.scope == req.scope, IdempotencyKey.key == req.key))
        if row is None:
            return None
        if row.request_sha256 != req.sha256:
            raise InvalidInput("this Idempotency-Key was already used with a different request",
                               {"Idempotency-Key": ["already used with a different request body: use a new key"]})
        return row.resource_id, row.status_code


def remember(session, req: Request, resource: str, resource_id: int, status_code: int) -> None:
    """Record the answer in the caller's transaction (the one that created the resource)."""
    session.add(IdempotencyKey(scope=req.scope, key=req.key, request_sha256=req.sha256, resource=resource,
                               resource_id=resource_id, status_code=status_code))
    session.flush()
