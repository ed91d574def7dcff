"""Webhook subscriptions and signed deliveries.

Each delivery POSTs a JSON body; `X-Compliance-Signature: sha256=<hex>` is the HMAC-SHA256 of the raw
body with the subscription's secret. The body carries the event id and timestamp (also sent as the
`X-Compliance-Event-Id` and `X-Compliance-Timestamp` headers) so receivers can reject replays.
Every attempt is logged on the `WebhookDelivery` row; failures are retried with exponential backoff.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import func, select

from ..db import Database, enqueue_after_commit
from ..engine.errors import InvalidInput, NotFound
from ..models import AuditEvent, WebhookDelivery, WebhookSubscription

log = logging.getLogger(__name__)
DELIVER_TASK = "compliance.webhooks.deliver"
EVENTS = ("changes.published", "determination.needs_review", "order.held", "order.released", "ping")
SIGNATURE_HEADER = "X-Compliance-Signature"
# Base of the exponential backoff between attempts: base, 2*base, 4*base, ... seconds (capped).
BACKOFF_CAP_SECONDS = 3600.0


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, body), header or "")


def backoff_seconds(attempt: int, base: float = 1.0) -> float:
    """Delay before attempt `attempt + 1` (attempt counts from 1)."""
    return min(BACKOFF_CAP_SECONDS, base * (2 ** (attempt - 1)))


def _check_url(url: str) -> str:
    parsed = urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInput("url must be http(s)", {"url": ["must be an absolute http:// or https:// URL"]})
    if parsed.username is not None or parsed.password is not None:
        # The URL is listed to admins and recorded in the audit trail (readable by auditors): a
        # password in it would leak. Deliveries are authenticated by the HMAC signature instead.
        raise InvalidInput("url must not contain credentials",
                           {"url": ["must not contain a user name or password (deliveries are signed with the secret)"]})
    return url


def subscription_view(sub: WebhookSubscription) -> dict[str, Any]:
    return {"id": sub.id, "url": sub.url, "events": sub.events, "active": sub.active, "created_by": sub.created_by,
            "created_at": sub.created_at.isoformat() if sub.created_at else None}


def create_subscription(db: Database, url: str, actor: str, secret: str | None = None,
                        events: list[str] | None = None) -> dict[str, Any]:
    """Register a URL; the secret (given or generated) is returned once."""
    _check_url(url)
    events = list(events or ["changes.published"])
    bad = [e for e in events if e not in EVENTS]
    if bad:
        raise InvalidInput("unknown events", {"events": [f"unknown event(s) {bad}; use {list(EVENTS)}"]})
    secret = secret or secrets.token_urlsafe(32)
    if len(secret) < 16:
        raise InvalidInput("secret too short", {"secret": ["at least 16 characters"]})
    with db.session() as s:
        sub = WebhookSubscription(url=url, secret=secret, events=events, active=True, created_by=actor)
        s.add(sub)
        s.flush()
        s.add(AuditEvent(actor=actor, action="webhook.create", target=f"webhook:{sub.id}",
                         detail={"url": url, "events": events}))
        return subscription_view(sub) | {"secret": secret}


def list_subscriptions(db: Database) -> list[dict[str, Any]]:
    with db.session() as s:
        return [subscription_view(x) for x in s.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))]


def deactivate_subscription(db: Database, sub_id: int, actor: str) -> dict[str, Any]:
    with db.session() as s:
        sub = s.get(WebhookSubscription, sub_id)
        if sub is None:
            raise NotFound(f"no webhook {sub_id}")
        sub.active = False
        s.add(AuditEvent(actor=actor, action="webhook.delete", target=f"webhook:{sub.id}", detail={"url": sub.url}))
        s.flush()
        return subscription_view(sub)


def delivery_view(d: WebhookDelivery) -> dict[str, Any]:
    return {"id": d.id, "subscription_id": d.subscription_id, "event": d.event, "event_id": d.payload.get("id"),
            "status": d.status, "attempts": d.attempts, "last_status_code": d.last_status_code,
            "last_error": d.last_error, "log": d.log,
            "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
            "created_at": d.created_at.isoformat() if d.created_at else None,
            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None}


def list_deliveries(db: Database, sub_id: int, page: int = 1, per_page: int = 100) -> dict[str, Any]:
    with db.session() as s:
        if s.get(WebhookSubscription, sub_id) is None:
            raise NotFound(f"no webhook {sub_id}")
        q = select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub_id)
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        items = [delivery_view(d) for d in s.scalars(q.order_by(WebhookDelivery.id.desc())
                                                      .offset((page - 1) * per_page).limit(per_page))]
        return {"items": items, "total": total, "page": page, "per_page": per_page}


def enqueue_event(session, event: str, data: dict[str, Any], key: str | None = None,
                  subscription_id: int | None = None) -> list[int]:
    """Create one pending delivery per active subscriber of `event` (inside the caller's transaction)."""
    q = select(WebhookSubscription).where(WebhookSubscription.active.is_(True))
    if subscription_id is not None:
        q = q.where(WebhookSubscription.id == subscription_id)
    ids = []
    now = datetime.now(timezone.utc)
    for sub in session.scalars(q):
        if event not in (sub.events or []) and event != "ping":
            continue
        event_id = f"evt_{secrets.token_hex(12)}"
        payload = {"id": event_id, "event": event, "created_at": now.isoformat(), "key": key, "data": data}
        d = WebhookDelivery(subscription_id=sub.id, event=event, payload=payload, status="pending", attempts=0,
                            log=[], next_attempt_at=now)
        session.add(d)
        session.flush()
        ids.append(d.id)
    return ids


def enqueue_deliveries(session, delivery_ids: list[int]) -> None:
    """Send the delivery tasks once `session`'s transaction commits (the sweeper retries unsent ones)."""
    for did in delivery_ids:
        enqueue_after_commit(session, DELIVER_TASK, [int(did)])


def ping(db: Database, sub_id: int, actor: str) -> dict[str, Any]:
    with db.session() as s:
        if s.get(WebhookSubscription, sub_id) is None:
            raise NotFound(f"no webhook {sub_id}")
        ids = enqueue_event(s, "ping", {"message": "ping", "by": actor}, subscription_id=sub_id)
        enqueue_deliveries(s, ids)
    return {"deliveries": ids}


def attempt_delivery(db: Database, delivery_id: int, timeout: float, max_attempts: int,
                     backoff_base: float = 1.0) -> tuple[str, float | None]:
    """Make one HTTP attempt and log it. Returns (status, retry_in_seconds or None)."""
    with db.session() as s:
        d = s.get(WebhookDelivery, delivery_id)
        if d is None or d.status != "pending":
            return (d.status if d else "missing"), None
        sub = s.get(WebhookSubscription, d.subscription_id)
        if sub is None or not sub.active:
            d.status = "failed"
            d.last_error = "subscription inactive"
            return "failed", None
        url, secret, payload = sub.url, sub.secret, d.payload
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    ts = str(int(time.time()))
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "export-compliance-checker-webhooks/1",
        SIGNATURE_HEADER: sign(secret, body), "X-Compliance-Timestamp": ts,
        "X-Compliance-Event": payload["event"], "X-Compliance-Event-Id": payload["id"]})
    code: int | None = None
    error: str | None = None
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http/https checked)
            code = resp.status
    except urllib.error.HTTPError as exc:
        code = exc.code
        error = f"HTTP {exc.code}"
    except Exception as exc:  # network errors are logged on the delivery, then retried
        error = f"{type(exc).__name__}: {exc}"[:500]
    ok = code is not None and 200 <= code < 300
    now = datetime.now(timezone.utc)
    with db.session() as s:
        d = s.get(WebhookDelivery, delivery_id, with_for_update=True)
        d.attempts += 1
        d.last_status_code = code
        d.last_error = None if ok else error
        d.log = list(d.log or []) + [{"attempt": d.attempts, "at": now.isoformat(), "status_code": code,
                                      "error": None if ok else error,
                                      "ms": round((time.perf_counter() - started) * 1000, 1)}]
        if ok:
            d.status, d.delivered_at, d.next_attempt_at = "delivered", now, None
            return "delivered", None
        if d.attempts >= max_attempts:
            d.status, d.next_attempt_at = "failed", None
            log.warning("webhook delivery %s failed after %s attempts", delivery_id, d.attempts)
            return "failed", None
        delay = backoff_seconds(d.attempts, backoff_base)
        d.next_attempt_at = now + timedelta(seconds=delay)
        return "pending", delay


def sweep_deliveries(db: Database, grace_seconds: float = 120) -> list[int]:
    """Re-send pending deliveries whose next attempt is long overdue (lost messages)."""
    with db.session() as s:
        ids = _due(s, grace_seconds)
        enqueue_deliveries(s, ids)
    return ids


def _due(s, grace_seconds: float) -> list[int]:
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=grace_seconds)
    return list(s.scalars(select(WebhookDelivery.id).where(WebhookDelivery.status == "pending",
                                                           WebhookDelivery.next_attempt_at < cutoff)))
