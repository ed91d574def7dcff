"""Rate limiting per API key (issue 12), with Flask-Limiter.

- One budget per key across the whole API (an application-wide limit: `RATE_LIMIT`, e.g. 600/minute), keyed by
  the API key's id once the key is verified; a call without a valid key (none, unknown, revoked, expired) counts
  against its client address instead, so random keys cannot open fresh budgets. The key is looked up once per
  request (auth.authenticate), shared with require_role.
- Counted in Redis when the service has one (`Config.rate_limit_storage_url`: every web process shares the
  count), in memory in embedded mode. If Redis stops answering, counting goes on in memory (Flask-Limiter's
  in-memory fallback) and errors are logged, never answered: the limiter cannot turn a request into a 500.
- Only /api/v1 is limited, and not GET /health or the spec and docs pages; /metrics and the console are not.
- Over the limit (counted in compliance_rate_limited_total): 429 with the service's error body (`{"code", "status", "message"}`) and `Retry-After` (seconds);
  every limited answer carries X-RateLimit-Limit / -Remaining / -Reset. The spec documents the 429 on every
  operation that needs a key.
"""
from __future__ import annotations

import logging
import math
import time

from apispec import BasePlugin
from flask import Flask, current_app, g, jsonify, request
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.errors import RateLimitExceeded
from prometheus_client import Counter

from ..auth import authenticate

log = logging.getLogger(__name__)
EXEMPT_BLUEPRINTS = {"health", "api-docs"}
RESPONSE = "RATE_LIMITED"
EXTENSION = "compliance.rate_limiter"
# The limiter answers from a before_request hook that runs ahead of the metrics timer, so its 429s are counted
# here (and in the access log line), not in compliance_http_requests.
RATE_LIMITED = Counter("compliance_rate_limited", "Requests answered 429 by the rate limiter, by what was "
                       "limited: an API key, or a client address (no valid key)", ["by"])


def limit_key() -> str:
    """The bucket of this request: the verified API key's id, else the client address."""
    try:
        authenticate()
    except Exception:  # the database is down: the view answers that; the limiter only needs a bucket
        log.warning("rate limit: could not identify the API key; counting by address", exc_info=True)
    key_id = g.get("key_id")
    return f"key:{key_id}" if key_id is not None else f"addr:{request.remote_addr or 'unknown'}"


def _not_limited() -> bool:
    return not request.path.startswith("/api/v1/") or request.blueprint in EXEMPT_BLUEPRINTS


class RateLimitDoc(BasePlugin):
    """apispec plugin: every operation that needs a key documents the 429 (health's `security: []` does not)."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for method, operation in (operations or {}).items():
            if method in ("get", "post", "put", "patch", "delete") and operation.get("security") != []:
                operation.setdefault("responses", {}).setdefault("429", RESPONSE)


def document(api) -> None:
    """The 429 response component and the plugin that adds it to each operation (before blueprints register)."""
    api.spec.components.response(RESPONSE, {
        "description": "Too many requests for this API key (RATE_LIMIT): wait Retry-After seconds",
        "headers": {"Retry-After": {"description": "Seconds until the key may call again",
                                    "schema": {"type": "integer", "minimum": 1}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    })
    plugin = RateLimitDoc()
    plugin.init_spec(api.spec)
    api.spec.plugins.append(plugin)


def _seconds_to_reset(limiter: Limiter) -> int:
    current = limiter.current_limit
    try:
        return max(1, math.ceil(current.reset_at - time.time())) if current else 1
    except Exception:  # the store went away between the check and now
        return 1


def _too_many(exc: RateLimitExceeded):
    from . import error_body

    retry = _seconds_to_reset(current_app.extensions[EXTENSION])
    by_key = g.get("key_id") is not None
    RATE_LIMITED.labels("key" if by_key else "address").inc()
    who = "this API key" if by_key else "this client (no valid API key)"
    response = jsonify(error_body(429, "Too Many Requests",
                                  f"rate limit of {exc.description} exceeded for {who}; retry in {retry} s"))
    response.status_code = 429
    response.headers["Retry-After"] = str(retry)
    return response


def _add_headers(response):
    limiter: Limiter = current_app.extensions[EXTENSION]
    current = limiter.current_limit
    if current is None:
        return response
    try:
        response.headers.setdefault("X-RateLimit-Limit", str(current.limit.amount))
        response.headers.setdefault("X-RateLimit-Remaining", str(max(0, current.remaining)))
        response.headers.setdefault("X-RateLimit-Reset", str(current.reset_at))
    except Exception:  # the store is unreachable: no headers rather than an error
        log.warning("rate limit headers left out: the store did not answer", exc_info=True)
    return response


def init_rate_limits(app: Flask, api) -> Limiter | None:
    """Document the 429 and, when RATE_LIMIT is set, limit every /api/v1 call per API key. Call after the Api
    exists and before its blueprints register (so that the spec plugin sees every operation)."""
    document(api)
    config = app.config["COMPLIANCE"]
    if not (config.RATE_LIMIT or "").strip():
        return None
    storage = config.rate_limit_storage_url
    options = {"socket_connect_timeout": 2, "socket_timeout": 2} if storage.startswith("redis") else {}
    limiter = Limiter(
        limit_key,
        application_limits=[ApplicationLimit(config.RATE_LIMIT)],
        storage_uri=storage,
        storage_options=options,
        strategy="sliding-window-counter",
        key_prefix="compliance",
        headers_enabled=False,  # ours: Retry-After on a 429 only (Flask-Limiter's adds it to every answer)
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    limiter.request_filter(_not_limited)
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter
    app.register_error_handler(RateLimitExceeded, _too_many)
    app.after_request(_add_headers)
    return limiter
