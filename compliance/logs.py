"""Logging: plain text or one JSON object per line (`LOG_FORMAT=json`), a request id on every line, API keys never.

- **Request id**: each request takes the caller's `X-Request-ID` (letters, digits, `.`, `_`, `-`; at most 128) or
  gets a new one; it is sent back as `X-Request-ID` and put on every log line written while the request runs.
  Work the request starts carries it: a Celery message gets it as a header and the task's log lines have it
  (the worker sets it for the task's run), and embedded jobs run in a copy of the request's context.
- **JSON lines**: the stdlib's logging with a small JSON formatter (``ts``, ``level``, ``logger``, ``message``,
  ``request_id``, any ``extra=`` fields, ``exc_info`` as text). No library: the formatter is twenty lines, and
  orjson (already a dependency) encodes it; python-json-logger would add a dependency to do the same.
- **No keys**: anything that looks like one of our API keys (``cck_`` + its secret) or an ``Authorization``
  header value is replaced before a line is written, in either format.
"""
from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timezone

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_SECRETS = re.compile(r"cck_[A-Za-z0-9_\-]{6,}|(?i:((?:bearer|basic)\s+))[A-Za-z0-9._~+/=\-]{8,}")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}
access_log = logging.getLogger("compliance.http")


def redact(text: str) -> str:
    """`text` with every API key and Authorization credential replaced by [redacted]."""
    return _SECRETS.sub(lambda m: f"{m.group(1)}[redacted]" if m.group(1) else "cck_[redacted]", text)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.rid = f" [{rid}]" if rid else ""
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        import orjson

        out = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": redact(record.getMessage()),
               "request_id": getattr(record, "request_id", None)}
        for key, value in vars(record).items():
            if key not in _STANDARD and key != "rid" and not key.startswith("_"):
                out[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exc_info"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(out, default=str).decode()


def configure(level: str, fmt: str = "text") -> None:
    """One stderr handler on the root logger with the request-id filter and the chosen formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_compliance", False)]:
        root.removeHandler(old)
    handler._compliance = True
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def init_request_ids(app) -> None:
    """X-Request-ID in and out, on every log line of the request, and an access line per request."""
    from flask import g, request

    @app.before_request
    def _take_request_id():
        given = request.headers.get("X-Request-ID", "")
        rid = given if _VALID_ID.match(given) else uuid.uuid4().hex
        g.request_id = rid
        g._request_id_token = REQUEST_ID.set(rid)
        g._request_t0 = time.perf_counter()

    @app.after_request
    def _give_request_id(response):
        rid = g.get("request_id")
        if rid:
            response.headers["X-Request-ID"] = rid
            rule = request.url_rule
            access_log.info("%s %s %s", request.method, request.path, response.status_code,
                            extra={"method": request.method, "route": rule.rule if rule else None,
                                   "status": response.status_code,
                                   "duration_ms": round((time.perf_counter() - g._request_t0) * 1000, 2)})
        return response

    @app.teardown_request
    def _forget_request_id(_exc=None):
        token = g.pop("_request_id_token", None)
        if token is not None:
            try:
                REQUEST_ID.reset(token)
            except ValueError:  # reset from another context (streamed body): clear instead
                REQUEST_ID.set(None)

    _connect_celery()


_connected: list[bool] = []


def _connect_celery() -> None:
    """The request id travels with the Celery messages a request sends and is set while their task runs."""
    if _connected:
        return
    from celery.signals import before_task_publish, task_postrun, task_prerun

    def publish(headers=None, **_):
        rid = REQUEST_ID.get()
        if rid and headers is not None:
            headers.setdefault("request_id", rid)

    def prerun(task=None, **_):
        req = getattr(task, "request", None)
        rid = getattr(req, "request_id", None) or (getattr(req, "headers", None) or {}).get("request_id")
        if rid:
            task.request._request_id_token = REQUEST_ID.set(rid)
        logging.getLogger("compliance.tasks").debug("task %s started", getattr(task, "name", "?"))

    def postrun(task=None, **_):
        token = getattr(getattr(task, "request", None), "_request_id_token", None)
        if token is not None:
            try:
                REQUEST_ID.reset(token)
            except ValueError:
                REQUEST_ID.set(None)

    before_task_publish.connect(publish, weak=False)
    task_prerun.connect(prerun, weak=False)
    task_postrun.connect(postrun, weak=False)
    _connected.append(True)
