"""Sign-in (an API key exchanged for a session cookie) and sign-out."""
from __future__ import annotations

from flask import current_app, g, redirect, render_template, request, url_for

from ..auth import close_console_session, open_console_session
from .blueprint import SESSION_COOKIE, _db, blp, safe_next


@blp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    """GET: the form. POST: a live key opens a session (HttpOnly, SameSite=Lax, Secure over HTTPS)."""
    next_url = safe_next(request.values.get("next"))
    if current_app.config["COMPLIANCE"].AUTH_MODE == "disabled":
        return redirect(next_url)
    errors = {}
    if request.method == "POST":
        key = request.form.get("api_key", "").strip()
        opened = open_console_session(_db(), key) if key else None
        if opened is not None:
            token, _role = opened
            response = redirect(next_url)
            response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax", secure=request.is_secure,
                                max_age=12 * 3600)
            return response
        errors["api_key"] = ["missing: paste an API key"] if not key else ["the API key is unknown or revoked"]
    status = 401 if errors else 200
    return render_template("console/sign_in.html", errors=errors, next_url=next_url), status


@blp.route("/sign-out", methods=["POST"])
def sign_out():
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        close_console_session(_db(), token)
    g.role = None
    response = redirect(url_for("console.sign_in"))
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="Lax", secure=request.is_secure)
    return response
