"""The console's Blueprint: the signed-in identity, CSRF on every form, roles, errors as pages.

Identity is the API's: a console session stands for the API key it was opened with, so g.actor and
g.role are exactly what the API would set for that key (compliance.auth), and every service call
records the same actor whichever door the action came through."""
from __future__ import annotations

import hmac
import logging
import secrets
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from ..auth import console_identity
from ..engine.errors import ComplianceError
from ..models.auth import ROLES

log = logging.getLogger(__name__)
blp = Blueprint("console", __name__, template_folder="templates", static_folder="static",
                static_url_path="/console/static")

SESSION_COOKIE = "cc_session"
CSRF_COOKIE = "cc_csrf"  # before sign-in (the sign-in form itself) and with AUTH_MODE=disabled
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def _db():
    return current_app.extensions["db"]


def _store():
    return current_app.extensions["rulebooks"]


@blp.before_request
def load_identity():
    """g.actor / g.role from the session cookie (or the local admin with AUTH_MODE=disabled), then CSRF."""
    g.actor, g.role, g.csrf_token, g.new_csrf_cookie = "anonymous", None, None, None
    config = current_app.config["COMPLIANCE"]
    if config.AUTH_MODE == "disabled":
        g.actor, g.role = "local", "admin"
    else:
        token = request.cookies.get(SESSION_COOKIE)
        identity = console_identity(_db(), token) if token else None
        if identity is not None:
            g.actor, g.role, g.csrf_token = identity
    if g.csrf_token is None:
        g.csrf_token = request.cookies.get(CSRF_COOKIE)
        if not g.csrf_token:
            g.csrf_token = g.new_csrf_cookie = secrets.token_urlsafe(32)
    if request.method in UNSAFE and request.endpoint != "console.static":
        sent = request.form.get("csrf_token", "")
        if not sent or not hmac.compare_digest(sent, g.csrf_token):
            abort(400, "the form's CSRF token is missing or stale: reload the page and submit again")


@blp.after_request
def set_csrf_cookie(response):
    if getattr(g, "new_csrf_cookie", None):
        response.set_cookie(CSRF_COOKIE, g.new_csrf_cookie, httponly=True, samesite="Strict", secure=request.is_secure)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def role_required(role: str):
    """Signed out: to the sign-in page (then back). Role too low: 403 with the API's own words."""
    needed = ROLES.index(role)

    def decorator(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            if g.role is None:
                return redirect(url_for("console.sign_in", next=request.full_path.rstrip("?")))
            if ROLES.index(g.role) < needed:
                return render_template("console/error.html", status=403,
                                       message=f"this needs the {role} role; your key has {g.role}"), 403
            return fn(*args, **kwargs)

        return wrapper

    return decorator


def has_role(role: str) -> bool:
    return g.get("role") is not None and ROLES.index(g.role) >= ROLES.index(role)


def safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host): an open redirect otherwise."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return url_for("console.dashboard")
    return target


@blp.app_template_global()
def csrf_field():
    from markupsafe import Markup, escape

    return Markup(f'<input type="hidden" name="csrf_token" value="{escape(g.get("csrf_token") or "")}">')


# The main navigation: (endpoint, label, role needed); entries whose page is not built are left out.
NAV = (("console.classify", "Classify", "viewer"), ("console.catalogues", "Catalogues", "viewer"),
       ("console.rules", "Rules", "viewer"), ("console.drafts", "Drafts", "admin"),
       ("console.changes", "Changes", "viewer"), ("console.orders", "Holds", "viewer"),
       ("console.licences", "Licences", "viewer"), ("console.screening_lists", "Lists", "viewer"),
       ("console.keys", "Keys", "admin"),
       ("console.webhooks", "Webhooks", "admin"))


@blp.context_processor
def identity_context():
    nav = [item for item in NAV if item[0] in current_app.view_functions]
    return {"actor": g.get("actor"), "role": g.get("role"), "has_role": has_role, "nav_items": nav,
            "endpoints": current_app.view_functions}


@blp.app_template_global("errors_near")
def _errors_near(errors, path):
    from .forms import errors_near

    return errors_near(errors or {}, path)


@blp.app_template_filter("pretty_json")
def pretty_json(value) -> str:
    import json

    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@blp.app_template_filter("merge")
def merge(args: dict, **more) -> dict:
    """{{ url_for(endpoint, **(args | merge(page=2))) }}: the same query with some values replaced."""
    return {**args, **more}


@blp.errorhandler(ComplianceError)
def domain_error(exc: ComplianceError):
    return render_template("console/error.html", status=exc.status, message=exc.message, errors=exc.errors), exc.status


@blp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return render_template("console/error.html", status=exc.code, message=exc.description or exc.name), exc.code


@blp.errorhandler(Exception)
def unexpected_error(exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return render_template("console/error.html", status=500, message="unexpected error; it has been logged"), 500
