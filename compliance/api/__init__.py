"""REST API under /api/v1 (flask-smorest: marshmallow schemas drive validation and OpenAPI)."""
from __future__ import annotations

import logging

from flask import Flask, g, jsonify, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, UnprocessableEntity, UnsupportedMediaType
from werkzeug.routing import IntegerConverter

from ..engine.errors import ComplianceError
from ..schemas.common import NUL_PROBLEM, VERSION_MAX, ErrorSchema
from .encoding import OrjsonProvider

log = logging.getLogger(__name__)
# Blueprints whose bodies are JSON only: any other body is a 415 naming Content-Type. (Other
# blueprints may accept uploads; extend this set as they are reviewed.)
JSON_ONLY_BLUEPRINTS = {"classify", "rules", "health"}
UPLOAD_MIMETYPES = {"multipart/form-data", "text/csv", "text/tab-separated-values", "application/x-ndjson",
                    "application/jsonl", "application/octet-stream",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class DatabaseIdConverter(IntegerConverter):
    """`<int:id>` limited to 1 .. 2**63-1: a larger id is a 404 rather than a database overflow (500)."""

    def __init__(self, map, fixed_digits=0, min=1, max=2**63 - 1, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


class VersionNumberConverter(IntegerConverter):
    """`<version:number>`: a rule version number, 1 .. 2**31-1 (its INTEGER column); larger is a 404."""

    def __init__(self, map, fixed_digits=0, min=1, max=VERSION_MAX, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


class ComplianceApi(Api):
    """flask-smorest Api whose documented error body is the one our error handlers actually send."""

    ERROR_SCHEMA = ErrorSchema


def init_api(app: Flask) -> Api:
    app.url_map.converters["int"] = DatabaseIdConverter  # before any blueprint adds a rule
    app.url_map.converters["version"] = VersionNumberConverter
    app.json = OrjsonProvider(app)
    api = ComplianceApi(app, spec_kwargs={
        "info": {"description": (
            "Classify AI chips against ECCN 3A090/4A090 as of any date, determine licence requirements per "
            "destination and end user, audit catalogues in batch, and manage versioned rules. "
            # Markdown: the docs pages render it, and a bare <key> would be taken as an HTML tag.
            "Authenticate with `Authorization: Bearer <key>` (or `X-API-Key: <key>`). Not legal advice.")},
        # Every operation needs a key unless it says otherwise (health: security []), so the docs
        # page's "Try it out" sends the key it is given.
        "security": [{"ApiKey": []}, {"ApiKeyHeader": []}],
    })
    api.spec.components.security_scheme("ApiKey", {"type": "http", "scheme": "bearer",
                                                   "description": "`Authorization: Bearer <key>`"})
    api.spec.components.security_scheme("ApiKeyHeader", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    from . import classify, health, rules
    from .limits import init_rate_limits

    init_rate_limits(app, api)  # RATE_LIMIT per API key; documents the 429 of every operation registered below

    for module in (health, classify, rules):
        api.register_blueprint(module.blp)
    for name in ("catalogues", "audits", "admin_rules", "changes", "webhooks", "keys", "determinations", "screening",
                 "orders", "licences"):
        try:
            module = __import__(f"{__name__}.{name}", fromlist=["blp"])
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        api.register_blueprint(module.blp)
    register_error_handlers(app)

    access_log = logging.getLogger("compliance.access")

    @app.after_request
    def log_access(response):
        # Identity by name and key prefix only (g.actor); the key itself never reaches a log.
        access_log.info("%s %s -> %s (%s)", request.method, request.path, response.status_code,
                        getattr(g, "actor", "anonymous"))
        return response

    @app.before_request
    def refuse_nul_characters():
        # No database column stores U+0000 (PostgreSQL refuses it in text and JSONB: a 500 before this),
        # so text holding one is refused here, for the query string, the path and form fields, naming
        # each; JSON bodies are checked where they are decoded (blueprint.json_body).
        errors: dict[str, dict[str, list[str]]] = {}
        for location, values in (("query", request.args), ("path", request.view_args or {})):
            bad = {k: [NUL_PROBLEM] for k, v in _items(values) if "\x00" in k or "\x00" in str(v)}
            if bad:
                errors[location] = bad
        if request.mimetype == "application/x-www-form-urlencoded":
            bad = {k: [NUL_PROBLEM] for k, v in _items(request.form) if "\x00" in k or "\x00" in v}
            if bad:
                errors["form"] = bad
        if errors:
            exc = UnprocessableEntity("a text input holds a NUL character")
            exc.data = {"messages": errors}
            raise exc

    @app.before_request
    def limit_body_size():
        config = app.config["COMPLIANCE"]
        upload = request.mimetype in UPLOAD_MIMETYPES
        request.max_content_length = config.MAX_UPLOAD_BYTES if upload else config.MAX_BODY_BYTES
        has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")
        json_only = request.blueprint in JSON_ONLY_BLUEPRINTS
        if json_only and request.method in ("POST", "PUT", "PATCH") and has_body and not request.is_json:
            # Without this, a body sent as text/plain or a form is silently ignored and the caller
            # gets "product: missing" for a product they did send.
            got = request.headers.get("Content-Type") or "none"
            exc = UnsupportedMediaType(f"Content-Type must be application/json, got {got!r}")
            exc.data = {"errors": {"Content-Type": [f"must be application/json, got {got!r}"]}}
            raise exc

    return api


def _items(values):
    """(key, value) pairs of a MultiDict (every value of a repeated key) or a dict."""
    return values.items(multi=True) if hasattr(values, "getlist") else values.items()


def error_body(status: int, name: str, message: str, errors=None):
    body = {"code": status, "status": name, "message": message}
    if errors:
        body["errors"] = errors
    return body


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ComplianceError)
    def handle_domain_error(exc: ComplianceError):
        from http import HTTPStatus

        return jsonify(error_body(exc.status, HTTPStatus(exc.status).phrase, exc.message, exc.errors)), exc.status

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException):
        data = getattr(exc, "data", None) or {}
        errors = data.get("messages") or data.get("errors")
        message = exc.description or exc.name
        if exc.code == 413:
            limit = request.max_content_length
            message = f"request body too large (limit {limit} bytes)"
        if exc.code == 422 and errors:
            message = "invalid input: " + "; ".join(_flatten(errors))[:2000]
        if exc.code == 400 and errors:
            message = "bad request: " + "; ".join(_flatten(errors))[:2000]
        return jsonify(error_body(exc.code or 500, exc.name, message, errors)), exc.code

    @app.errorhandler(RecursionError)
    def handle_too_deep(exc: RecursionError):
        # JSON nested thousands of levels deep exhausts the stack while it is decoded or loaded.
        message = "request body nested too deeply"
        return jsonify(error_body(400, "Bad Request", message, {"body": ["nested too deeply"]})), 400

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(error_body(500, "Internal Server Error", "unexpected error; it has been logged")), 500


def _flatten(errors, prefix: str = "") -> list[str]:
    """{'json': {'product': {'tpp': ['must be ...']}}} -> ['product.tpp: must be ...']"""
    out: list[str] = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            key = str(key)
            path = key if not prefix else f"{prefix}.{key}"
            if prefix == "" and key in ("json", "query", "form", "files", "view_args", "headers"):
                path = ""
            elif key == "_schema":  # marshmallow's name for "the object itself"
                path = prefix
            out += _flatten(value, path)
    elif isinstance(errors, list):
        if all(isinstance(e, str) for e in errors):
            out.append(f"{prefix or 'body'}: {', '.join(errors)}")
        else:
            for e in errors:
                out += _flatten(e, prefix)
    else:
        out.append(f"{prefix or 'body'}: {errors}")
    return out
