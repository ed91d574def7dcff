"""Admin pages: API keys (create: shown once; revoke) and webhooks (register, deactivate, ping,
deliveries), through the same functions as /api/v1/keys and /api/v1/webhooks."""
from __future__ import annotations

from flask import current_app, g, redirect, render_template, request, url_for

from ..auth import create_api_key, list_api_keys, revoke_api_key
from ..engine.errors import InvalidInput
from ..schemas.changes import WebhookCreateSchema
from ..schemas.keys import KeyCreateSchema
from ..services import webhooks as wh
from .blueprint import _db, blp, role_required
from .forms import domain_errors, load


@blp.route("/admin/keys", methods=["GET", "POST"])
@role_required("admin")
def keys():
    errors, created, form = {}, None, request.form.to_dict()
    if request.method == "POST":
        loaded, errors = load(KeyCreateSchema(), {"name": form.get("name", "").strip(), "role": form.get("role", "")})
        if loaded is not None:
            key, plain = create_api_key(_db(), loaded["name"], loaded["role"], actor=g.actor)
            created = {"name": key.name, "role": key.role, "key": plain}
            form = {}
    return render_template("console/keys.html", keys=list_api_keys(_db()), errors=errors, form=form,
                           created=created), (422 if errors else 200)


@blp.route("/admin/keys/<int:key_id>/revoke", methods=["POST"])
@role_required("admin")
def revoke_key(key_id: int):
    revoke_api_key(_db(), key_id, actor=g.actor)
    return redirect(url_for("console.keys"))


@blp.route("/admin/webhooks", methods=["GET", "POST"])
@role_required("admin")
def webhooks():
    errors, created, form = {}, None, request.form.to_dict()
    if request.method == "POST":
        body = {"url": form.get("url", "").strip()}
        if form.get("secret", "").strip():
            body["secret"] = form["secret"].strip()
        loaded, errors = load(WebhookCreateSchema(), body)
        if loaded is not None:
            try:
                created = wh.create_subscription(_db(), loaded["url"], g.actor, loaded.get("secret"), loaded.get("events"),
                                                 current_app.config["COMPLIANCE"].webhook_allowed_networks)
                form = {}
            except InvalidInput as exc:
                errors = domain_errors(exc)
    subs = wh.list_subscriptions(_db())
    return render_template("console/webhooks.html", subs=subs, errors=errors, form=form, created=created), \
        (422 if errors else 200)


@blp.route("/admin/webhooks/<int:sub_id>", methods=["GET"])
@role_required("admin")
def webhook(sub_id: int):
    deliveries = wh.list_deliveries(_db(), sub_id, 1, 100)
    sub = wh.get_subscription(_db(), sub_id)
    return render_template("console/webhook.html", sub=sub, deliveries=deliveries)


@blp.route("/admin/webhooks/<int:sub_id>/ping", methods=["POST"])
@role_required("admin")
def ping_webhook(sub_id: int):
    wh.ping(_db(), sub_id, g.actor)
    return redirect(url_for("console.webhook", sub_id=sub_id))


@blp.route("/admin/webhooks/<int:sub_id>/deactivate", methods=["POST"])
@role_required("admin")
def deactivate_webhook(sub_id: int):
    wh.deactivate_subscription(_db(), sub_id, g.actor)
    return redirect(url_for("console.webhooks"))
