"""Webhook subscriptions and signed deliveries, the Standard Webhooks way.

Each delivery POSTs a JSON body with three headers (the Standard Webhooks specification):

- ``webhook-id``: the event id (``evt_...``), the same on every retry and redelivery: dedupe on it;
- ``webhook-timestamp``: Unix seconds of this attempt: refuse ones far from your clock (replays);
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<raw body>")>``.

The key is the secret's bytes after ``whsec_``, base64-decoded (the secrets this service generates look like
that, so the Standard Webhooks libraries verify them as they are); a secret you chose yourself (any other
text) is used as its UTF-8 bytes. ``X-Compliance-Signature: sha256=<hex HMAC of the raw body>`` is still sent
for receivers written before (deprecated). The body carries the event id, name, time, ``links`` (absolute
URLs under PUBLIC_BASE_URL) and ``data``. Every attempt is logged on the `WebhookDelivery` row; failures are
retried with exponential backoff and jitter; a failed delivery can be redelivered (a new delivery of the
same event, same webhook-id).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import random
import secrets
import socket
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import func, select

from ..db import Database, enqueue_after_commit
from ..engine.errors import InvalidInput, NotFound
from ..models import ActivityEvent, WebhookDelivery, WebhookSubscription
from .paging import Page

log = logging.getLogger(__name__)
DELIVER_TASK = "compliance.webhooks.deliver"
EVENTS = ("changes.published", "determination.needs_review", "order.held", "order.released", "audit.completed",
          "audit.failed", "reevaluation.completed", "ping")
SIGNATURE_HEADER = "X-Compliance-Signature"  # legacy (sha256 of the body only); webhook-signature is the standard
# What each id in an event's data links to (absolute under PUBLIC_BASE_URL).
LINKS = {"audit_id": ("audit", "/api/v1/audits/{}"), "run_id": ("reevaluation", "/api/v1/rules/reevaluations/{}"),
         "catalogue_id": ("catalogue", "/api/v1/catalogues/{}"), "order_id": ("order", "/api/v1/orders/{}"),
         "determination_id": ("determination", "/api/v1/determinations/{}")}
# Base of the exponential backoff between attempts: base, 2*base, 4*base, ... seconds (capped).
BACKOFF_CAP_SECONDS = 3600.0


def sign(secret: str, body: bytes) -> str:
    """The legacy X-Compliance-Signature value (HMAC of the body alone)."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, body), header or "")


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except ValueError:
            pass
    return secret.encode("utf-8")


def standard_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """webhook-signature: v1,<base64 HMAC-SHA256(key, id.timestamp.body)>."""
    mac = hmac.new(signing_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_standard(secret: str, headers: dict[str, str], body: bytes, tolerance: float = 300,
                    now: float | None = None) -> bool:
    """What a receiver does: the timestamp within `tolerance` seconds, and one v1 signature that matches."""
    msg_id, ts = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    try:
        if abs((time.time() if now is None else now) - int(ts)) > tolerance:
            return False
    except ValueError:
        return False
    expected = standard_signature(secret, msg_id, ts, body)
    return any(hmac.compare_digest(expected, sig) for sig in headers.get("webhook-signature", "").split())


def backoff_seconds(attempt: int, base: float = 1.0, jitter: bool = True) -> float:
    """Delay before attempt `attempt + 1` (attempt counts from 1): base * 2^(attempt-1), capped, times a
    random factor in [0.5, 1] (so receivers that came back are not hit by every retry at once)."""
    delay = min(BACKOFF_CAP_SECONDS, base * (2 ** (attempt - 1)))
    return delay * random.uniform(0.5, 1.0) if jitter else delay


def links_for(data: dict[str, Any]) -> dict[str, str]:
    """Absolute URLs of the things an event names, under PUBLIC_BASE_URL."""
    base = _public_base_url()
    out = {}
    for key, (name, path) in LINKS.items():
        if isinstance(data.get(key), int):
            out[name] = base + path.format(data[key])
    if isinstance(data.get("run_id"), int):
        out["changes"] = f"{base}/api/v1/changes?run_id={data['run_id']}"
    return out


_settings = {"public_base_url": "http://127.0.0.1:8000"}


def configure(public_base_url: str) -> None:
    """Set by the app factory from PUBLIC_BASE_URL."""
    _settings["public_base_url"] = public_base_url


def _public_base_url() -> str:
    return _settings["public_base_url"].rstrip("/")


class TargetRefused(Exception):
    """A webhook URL whose host is, or resolves to, an address deliveries may not reach."""


Networks = Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]


def _blocked_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why deliveries may not go to `ip` (cloud metadata, this machine, a private network ...), or None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for label, flag in (("loopback", ip.is_loopback), ("link-local (cloud metadata)", ip.is_link_local),
                        ("multicast", ip.is_multicast), ("unspecified", ip.is_unspecified),
                        ("private", ip.is_private), ("reserved", ip.is_reserved), ("not global", not ip.is_global)):
        if flag:
            return label
    return None


def resolve_target(host: str, port: int, allowed: Networks = ()) -> list[tuple]:
    """Every address `host` resolves to, as getaddrinfo entries, after refusing the lot if any one is
    private, loopback, link-local, multicast or otherwise not global (unless inside an `allowed` network).
    A name that resolves to one public and one private address is refused: a rebinding attacker controls
    which one a later lookup returns."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"host {host!r} does not resolve ({exc})") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        reason = _blocked_reason(ip)
        if reason and not any(ip in net for net in allowed):
            raise TargetRefused(f"host {host!r} resolves to {ip}, a {reason} address: deliveries may not go "
                                "there (add it to WEBHOOK_ALLOWED_NETWORKS for a receiver on a private network)")
    return infos


def _vetted_socket(host: str, port: int, timeout: float, allowed: Networks) -> socket.socket:
    """A connection to one of `host`'s vetted addresses (vetted now, at delivery, not only at sign-up)."""
    error: OSError | None = None
    for family, kind, proto, _, address in resolve_target(host, port, allowed):
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"no address for {host!r}")


class _VettedHTTP(http.client.HTTPConnection):
    allowed: Networks = ()

    def connect(self) -> None:
        self.sock = _vetted_socket(self.host, self.port, self.timeout, self.allowed)


class _VettedHTTPS(http.client.HTTPSConnection):
    allowed: Networks = ()

    def connect(self) -> None:
        sock = _vetted_socket(self.host, self.port, self.timeout, self.allowed)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float, allowed: Networks = ()) -> int:
    """POST to a vetted address of the URL's host; the status code. Redirects are not followed."""
    parsed = urlparse(url)
    cls = _VettedHTTPS if parsed.scheme == "https" else _VettedHTTP
    conn = cls(parsed.hostname, parsed.port, timeout=timeout)
    conn.allowed = allowed
    try:
        path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
        conn.request("POST", path, body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def _check_url(url: str, allowed: Networks = ()) -> str:
    parsed = urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInput("url must be http(s)", {"url": ["must be an absolute http:// or https:// URL"]})
    if parsed.username is not None or parsed.password is not None:
        # The URL is listed to admins and recorded in the audit trail (readable by auditors): a
        # password in it would leak. Deliveries are authenticated by the HMAC signature instead.
        raise InvalidInput("url must not contain credentials",
                           {"url": ["must not contain a user name or password (deliveries are signed with the secret)"]})
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        raise InvalidInput("url has a bad port", {"url": ["the port must be a number from 1 to 65535"]}) from None
    try:
        resolve_target(parsed.hostname, port, allowed)
    except TargetRefused as exc:
        raise InvalidInput(f"url refused: {exc}", {"url": [str(exc)]}) from None
    return url


def _iso(dt: datetime | None) -> str | None:
    """A stored time in ISO 8601 with its UTC offset (SQLite gives it back without one)."""
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).isoformat()


def subscription_view(sub: WebhookSubscription) -> dict[str, Any]:
    return {"id": sub.id, "url": sub.url, "events": sub.events, "active": sub.active, "created_by": sub.created_by,
            "created_at": _iso(sub.created_at)}


def create_subscription(db: Database, url: str, actor: str, secret: str | None = None,
                        events: list[str] | None = None, allowed_networks: Networks = ()) -> dict[str, Any]:
    """Register a URL; the secret (given or generated) is returned once. A URL whose host is or resolves to
    a private, loopback, link-local or multicast address is refused unless inside `allowed_networks`."""
    _check_url(url, allowed_networks)
    events = list(events or ["changes.published"])
    bad = [e for e in events if e not in EVENTS]
    if bad:
        raise InvalidInput("unknown events", {"events": [f"unknown event(s) {bad}; use {list(EVENTS)}"]})
    secret = secret or new_secret()
    if len(secret) < 16:
        raise InvalidInput("secret too short", {"secret": ["at least 16 characters"]})
    with db.session() as s:
        sub = WebhookSubscription(url=url, secret=secret, events=events, active=True, created_by=actor)
        s.add(sub)
        s.flush()
        s.add(ActivityEvent(actor=actor, action="webhook.create", target=f"webhook:{sub.id}",
                            detail={"url": url, "events": events}))
        return subscription_view(sub) | {"secret": secret}


def list_subscriptions(db: Database) -> list[dict[str, Any]]:
    with db.session() as s:
        return [subscription_view(x) for x in s.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))]


def get_subscription(db: Database, sub_id: int) -> dict[str, Any]:
    """One subscription (never its secret); 404 if absent."""
    with db.session() as s:
        sub = s.get(WebhookSubscription, sub_id)
        if sub is None:
            raise NotFound(f"no webhook {sub_id}")
        return subscription_view(sub)


def deactivate_subscription(db: Database, sub_id: int, actor: str) -> dict[str, Any]:
    with db.session() as s:
        sub = s.get(WebhookSubscription, sub_id)
        if sub is None:
            raise NotFound(f"no webhook {sub_id}")
        sub.active = False
        s.add(ActivityEvent(actor=actor, action="webhook.delete", target=f"webhook:{sub.id}", detail={"url": sub.url}))
        s.flush()
        return subscription_view(sub)


def delivery_view(d: WebhookDelivery) -> dict[str, Any]:
    return {"id": d.id, "subscription_id": d.subscription_id, "event": d.event, "event_id": d.payload.get("id"),
            "status": d.status, "attempts": d.attempts, "last_status_code": d.last_status_code,
            "last_error": d.last_error, "log": d.log,
            "next_attempt_at": _iso(d.next_attempt_at), "created_at": _iso(d.created_at),
            "delivered_at": _iso(d.delivered_at)}


def list_deliveries(db: Database, sub_id: int, page: int = 1, per_page: int = 100,
                    status: str | None = None) -> Page:
    """One page of a subscription's deliveries, newest first, each with its attempt log; `status` filters."""
    with db.session() as s:
        if s.get(WebhookSubscription, sub_id) is None:
            raise NotFound(f"no webhook {sub_id}")
        q = select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub_id)
        if status:
            q = q.where(WebhookDelivery.status == status)
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        items = [delivery_view(d) for d in s.scalars(q.order_by(WebhookDelivery.id.desc())
                                                      .offset((page - 1) * per_page).limit(per_page))]
    return Page(items, page, per_page, int(total or 0))


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
        payload = {"id": event_id, "event": event, "created_at": now.isoformat(), "key": key,
                   "links": links_for(data), "data": data}
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


def redeliver(db: Database, sub_id: int, delivery_id: int, actor: str) -> dict[str, Any]:
    """Send a delivery's event again as a new delivery (same event id, so receivers can dedupe): after a
    receiver outage outlasted the retries. The original delivery and its attempt log stay as they were."""
    with db.session() as s:
        old = s.get(WebhookDelivery, delivery_id)
        if old is None or old.subscription_id != sub_id:
            raise NotFound(f"no delivery {delivery_id} of webhook {sub_id}")
        sub = s.get(WebhookSubscription, sub_id)
        if not sub.active:
            raise InvalidInput(f"webhook {sub_id} is deactivated", {"sub_id": ["the subscription is not active"]})
        if old.status == "pending":
            raise InvalidInput(f"delivery {delivery_id} is still being attempted",
                               {"delivery_id": ["pending: wait for it to be delivered or to fail"]})
        now = datetime.now(timezone.utc)
        d = WebhookDelivery(subscription_id=sub_id, event=old.event, payload=old.payload, status="pending",
                            attempts=0, log=[{"redelivery_of": old.id, "by": actor, "at": now.isoformat()}],
                            next_attempt_at=now)
        s.add(d)
        s.flush()
        s.add(ActivityEvent(actor=actor, action="webhook.redeliver", target=f"webhook:{sub_id}",
                            detail={"delivery": old.id, "new_delivery": d.id, "event_id": old.payload.get("id")}))
        new_id = d.id
        enqueue_deliveries(s, [new_id])  # sent after the commit
    return {"deliveries": [new_id]}


def attempt_delivery(db: Database, delivery_id: int, timeout: float, max_attempts: int,
                     backoff_base: float = 1.0, allowed_networks: Networks = ()) -> tuple[str, float | None]:
    """Make one HTTP attempt and log it. Returns (status, retry_in_seconds or None). The host is resolved
    and vetted again (it may have been re-pointed since sign-up); a refused target fails the delivery at
    once, and a redirect is an unsuccessful attempt, never followed."""
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
    headers = {
        "Content-Type": "application/json", "User-Agent": "export-compliance-checker-webhooks/1",
        "webhook-id": payload["id"], "webhook-timestamp": ts,
        "webhook-signature": standard_signature(secret, payload["id"], ts, body),
        SIGNATURE_HEADER: sign(secret, body), "X-Compliance-Timestamp": ts,
        "X-Compliance-Event": payload["event"], "X-Compliance-Event-Id": payload["id"]}
    code: int | None = None
    error: str | None = None
    refused = False
    started = time.perf_counter()
    try:
        code = post_json(url, body, headers, timeout, allowed_networks)
        if not 200 <= code < 300:
            error = f"HTTP {code}" + (" (redirect not followed)" if 300 <= code < 400 else "")
    except TargetRefused as exc:
        refused, error = True, f"refused: {exc}"[:500]
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
        if d.attempts >= max_attempts or refused:
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
