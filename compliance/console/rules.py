"""Rules: versions with their packs and citations, the rules in force on a date, a diff between any two
versions, the activity log; and for admins the draft editor (edit forms, the packs' own tests, impact
preview with its chart, publish with the storm guard and the 409, discard, roll back). Every action is
the API's service call (compliance.services.rule_*) with the signed-in key's actor."""
from __future__ import annotations

import json
from datetime import date
from typing import Any

from flask import current_app, g, redirect, render_template, request, url_for

from ..engine.errors import ComplianceError, Conflict, InvalidInput, RulebookInvalid
from ..engine.vocabulary import REQUIREMENTS, REVIEW_POLICIES
from ..schemas.admin_rules import (
    AuditTrailQuerySchema,
    DiffQuerySchema,
    DraftCreateSchema,
    DraftEditSchema,
    PreviewSchema,
    PublishSchema,
)
from ..services import activity_log, rule_diff, rule_drafts, rule_export, rule_publish, rule_versions
from ..services.reevaluation import list_runs
from . import charts
from .blueprint import _db, _store, blp, has_role, role_required
from .forms import codes, domain_errors, flatten_errors, load, number, parse_json

NUMERIC_METRICS = ("tpp", "performance_density", "io_bandwidth", "memory_bandwidth_density", "dram_bandwidth",
                   "transistors")


# ---------------------------------------------------------------- reading

@blp.route("/rules")
@role_required("viewer")
def rules():
    version, rulebook = _store().current()
    try:
        as_of = date.fromisoformat(request.args.get("as_of", ""))
    except ValueError:
        as_of = date.today()
    live = rulebook.in_force(as_of)
    in_force = [r.describe() for r in live.classification + live.licence]
    versions = rule_versions.list_versions(_db())
    return render_template("console/rules.html", version=rule_versions.version_summary(version), versions=versions,
                           in_force=in_force, as_of=as_of, packs=rulebook.packs, runs=list_runs(_db(), per_page=10).items)


@blp.route("/rules/versions/<version:number>")
@role_required("viewer")
def version(number: int):
    detail = rule_versions.version_detail(_db(), number)
    current = rule_versions.list_versions(_db())[0]["number"]
    return render_template("console/version.html", v=detail, current=current, errors={}, form={},
                           notice=_notice())


def _notice() -> str | None:
    """A short message after a redirect (published, rolled back), rebuilt from the query."""
    if request.args.get("published"):
        return f"Published version {request.args['published']}; re-evaluation run #{request.args.get('run', '?')} started."
    return None


@blp.route("/rules/versions/<version:number>/export")
@role_required("viewer")
def version_export(number: int):
    from flask import Response

    fmt = request.args.get("format", "zip")
    if fmt not in ("zip", "yaml"):
        raise InvalidInput("format: must be zip or yaml", {"format": ["must be one of: zip, yaml"]})
    body, mimetype, filename = rule_export.export_version(_db(), number, fmt)
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@blp.route("/rules/diff")
@role_required("viewer")
def diff():
    versions = rule_versions.list_versions(_db())
    raw = {k: request.args[k] for k in ("from", "to") if request.args.get(k, "").strip()}
    result, errors = None, {}
    if raw:
        loaded, errors = load(DiffQuerySchema(), {k: number(v) for k, v in raw.items()})
        if loaded is not None:
            result = rule_diff.diff_versions(_db(), loaded["from_"], loaded["to"])
    return render_template("console/diff.html", versions=versions, result=result, errors=errors, raw=raw)


@blp.route("/rules/activity")
@role_required("auditor")
def activity():
    raw = {k: v for k, v in request.args.items() if k in ("page", "action", "actor") and v.strip()}
    query, errors = load(AuditTrailQuerySchema(), {k: (number(v) if k == "page" else v) for k, v in raw.items()})
    query = query or {"page": 1, "per_page": 100}
    trail = activity_log.activity_page(_db(), query["page"], 100, query.get("action"), query.get("actor"))
    args = {k: v for k, v in raw.items() if k != "page"}
    return render_template("console/activity.html", trail=trail, errors=errors, args=args,
                           pages=max(1, trail.pages))


@blp.route("/rules/activity/export.<any(csv, jsonl, xlsx):fmt>")
@role_required("auditor")
def activity_export(fmt: str):
    """The whole activity log matching the filters (the API's GET /rules/audit-trail/export)."""
    from ..api.downloads import download
    from ..services.exports import export

    filters = {k: v.strip() for k, v in request.args.items() if k in ("action", "actor") and v.strip()}
    pieces, name = export(_db(), "activity", fmt, filters=filters)
    return download(pieces, name, fmt)


@blp.route("/rules/versions/<version:number>/rollback", methods=["POST"])
@role_required("admin")
def rollback(number: int):
    loaded, errors = load(PublishSchema(), _publish_body(request.form))
    if loaded is not None:
        try:
            out = rule_publish.rollback_to(current_app, number, g.actor, loaded["reason"], loaded.get("as_of"), loaded["confirm"])
        except ComplianceError as exc:
            errors = _publish_errors(exc)
        else:
            return redirect(url_for("console.version", number=out["number"], published=out["number"], run=out["run_id"]))
    detail = rule_versions.version_detail(_db(), number)
    current = rule_versions.list_versions(_db())[0]["number"]
    return render_template("console/version.html", v=detail, current=current, errors=errors, form=request.form,
                           notice=None), 422 if "storm" not in errors else 428


# ---------------------------------------------------------------- drafts

@blp.route("/rules/drafts", methods=["GET", "POST"])
@role_required("admin")
def drafts():
    errors: dict[str, list[str]] = {}
    form = request.form.to_dict()
    if request.method == "POST":
        body: dict[str, Any] = {"title": form.get("title", "")}
        if form.get("base_version", "").strip():
            body["base_version"] = number(form["base_version"])
        loaded, errors = load(DraftCreateSchema(), body)
        if loaded is not None:
            try:
                d = rule_drafts.create_draft(_db(), g.actor, loaded.get("base_version"), loaded["title"])
            except InvalidInput as exc:
                errors = domain_errors(exc)
            else:
                return redirect(url_for("console.draft", draft_id=d["id"]))
    return render_template("console/drafts.html", drafts=rule_drafts.list_drafts(_db()), versions=rule_versions.list_versions(_db()),
                           errors=errors, form=form), (422 if errors else 200)


def threshold_leaves(content: dict) -> list[dict[str, Any]]:
    """Every numeric condition leaf of the draft: (rule id, path, metric, op, value), for set_threshold."""
    out: list[dict[str, Any]] = []

    def walk(node, path, rule):
        if not isinstance(node, dict):
            return
        if "metric" in node:
            if node["metric"] in NUMERIC_METRICS and isinstance(node.get("value"), (int, float)):
                out.append({"rule_id": rule["id"], "path": path, "metric": node["metric"], "op": node.get("op"),
                            "value": node["value"], "label": node.get("label") or ""})
            return
        for key in ("all", "any"):
            for i, child in enumerate(node.get(key) or []):
                walk(child, f"{path}.{key}[{i}]", rule)
        if "not" in node:
            walk(node["not"], f"{path}.not", rule)

    for pack in content.get("packs") or []:
        for rule in pack.get("rules") or []:
            walk(rule.get("when") or {}, "when", rule)
    return out


def rule_ids(content: dict) -> list[str]:
    return [r["id"] for p in content.get("packs") or [] for r in p.get("rules") or []]


STALE = "This draft was changed by someone else since you opened it."
NO_ETAG = "This form does not say which version of the draft it was made from."


def _preconditions(form) -> dict[str, Any]:
    """The ETag of the page the form was on (its hidden `etag` field), sent as the API's If-Match."""
    return {"if_match": form.get("etag") or None,
            "require_if_match": current_app.config["COMPLIANCE"].DRAFT_IF_MATCH == "required"}


def _is_stale(exc: ComplianceError) -> bool:
    """412 (the page's ETag is no longer the draft's), or 428 naming If-Match (a form without one)."""
    return isinstance(exc, rule_drafts.PreconditionFailed) or (
        isinstance(exc, rule_drafts.PreconditionRequired) and isinstance(exc.errors, dict) and "If-Match" in exc.errors)


def _stale_page(draft_id: int, exc: ComplianceError, **extra):
    """The draft as it is now, with the message and a link to reload; nothing was applied."""
    failed = isinstance(exc, rule_drafts.PreconditionFailed)
    return _draft_page(draft_id, 412 if failed else 428, stale=exc.message, stale_title=STALE if failed else NO_ETAG,
                       **extra)


def _draft_page(draft_id: int, status: int = 200, **extra):
    d = rule_drafts.get_draft(_db(), draft_id)
    ctx = {"d": d, "stale": None, "stale_title": None, "leaves": threshold_leaves(d["content"]), "rule_ids": rule_ids(d["content"]),
           "groups": sorted(((d["content"].get("country_groups") or {}).get("groups") or {}).items()),
           "requirements": REQUIREMENTS[:2], "policies": REVIEW_POLICIES, "op": None, "errors": {}, "form": {},
           "preview": None, "preview_chart": None, "publish_errors": {}, "publish_form": {},
           "families": sorted(f["id"] for p in d["content"].get("packs") or [] for f in p.get("families") or []
                              if isinstance(f, dict) and isinstance(f.get("id"), str)),
           "pack_ids": [p.get("id") for p in d["content"].get("packs") or [] if p.get("id")],
           "base_diff": rule_diff.diff_contents(rule_versions.version_detail(_db(), d["base_version"])["content"], d["content"]),
           "today": date.today().isoformat()}
    ctx.update(extra)
    return render_template("console/draft.html", **ctx), status


@blp.route("/rules/drafts/<int:draft_id>")
@role_required("admin")
def draft(draft_id: int):
    return _draft_page(draft_id)[0]


def op_from_form(form) -> dict[str, Any]:
    """One edit operation from its form (field names are the op's own)."""
    op = form.get("op", "")
    if op == "set_threshold":
        leaf = form.get("leaf", "")
        rule_id, _, path = leaf.partition("|")
        return {"op": op, "rule_id": rule_id, "path": path, "value": number(form.get("value", ""))}
    if op == "end_rule":
        return {"op": op, "rule_id": form.get("rule_id", ""), "effective_to": form.get("effective_to", "")}
    if op == "remove_rule":
        return {"op": op, "rule_id": form.get("rule_id", "")}
    if op == "set_country_group":
        return {"op": op, "group": form.get("group", "").strip(), "members": [c.upper() for c in codes(form.get("members", ""))]}
    if op == "add_overlay":
        out: dict[str, Any] = {"op": op}
        for name in ("id", "title", "citation", "effective_from", "effective_to", "requirement", "review_policy",
                     "notes"):
            if form.get(name, "").strip():
                out[name] = form[name].strip()
        for name in ("products", "families"):
            if form.get(name, "").strip():
                out[name] = [p.strip() for p in form[name].split(",") if p.strip()]
        for name in ("destinations", "groups"):
            if form.get(name, "").strip():
                out[name] = [c.upper() if name == "destinations" else c for c in codes(form[name])]
        return out
    if op == "set_vendor":
        out = {"op": op, "vendor": form.get("vendor", "").strip(),
               "aliases": [a.strip() for a in form.get("aliases", "").split(",") if a.strip()]}
        if form.get("name", "").strip():
            out["name"] = form["name"].strip()
        return out
    if op == "set_family":
        family: dict[str, Any] = {}
        for name in ("id", "vendor", "name", "citation"):
            if form.get(f"family.{name}", "").strip():
                family[name] = form[f"family.{name}"].strip()
        for name in ("names", "lookalikes"):
            if form.get(f"family.{name}", "").strip():
                family[name] = [n.strip() for n in form[f"family.{name}"].split(",") if n.strip()]
        out = {"op": op, "family": family}
        if form.get("pack_id", "").strip():
            out["pack_id"] = form["pack_id"].strip()
        return out
    return {"op": op}


@blp.route("/rules/drafts/<int:draft_id>/edit", methods=["POST"])
@role_required("admin")
def draft_edit(draft_id: int):
    """Apply the form's edit (or a pasted list of operations): PATCH /rules/drafts/{id}, all or none."""
    form = request.form.to_dict()
    if form.get("op") == "json":
        ops, errors = parse_json(form.get("ops", ""), "ops")
        body = {"ops": ops if isinstance(ops, list) else [ops]} if not errors else None
    else:
        body, errors = {"ops": [op_from_form(request.form)]}, {}
    if body is not None:
        loaded, errors = load(DraftEditSchema(), body)
        if loaded is not None:
            try:
                rule_drafts.apply_edits(_db(), draft_id, loaded["ops"], g.actor, **_preconditions(request.form))
            except (rule_drafts.PreconditionFailed, rule_drafts.PreconditionRequired) as exc:
                return _stale_page(draft_id, exc, op=form.get("op"), form=form)
            except InvalidInput as exc:
                errors = {k.removeprefix("ops[0].") if form.get("op") != "json" else k: v
                          for k, v in domain_errors(exc).items()}
                errors = {k.removeprefix("ops.0."): v for k, v in errors.items()}
            else:
                return redirect(url_for("console.draft", draft_id=draft_id, edited=form.get("op")) + "#validation")
    return _draft_page(draft_id, 422, op=form.get("op"), errors=errors, form=form)


@blp.route("/rules/drafts/<int:draft_id>/preview", methods=["POST"])
@role_required("admin")
def draft_preview(draft_id: int):
    """POST /rules/drafts/{id}/preview: the dry run over every catalogue, with its transitions drawn."""
    body: dict[str, Any] = {"item_limit": 200}
    if request.form.get("as_of", "").strip():
        body["as_of"] = request.form["as_of"].strip()
    if request.form.get("destinations", "").strip():
        body["destinations"] = codes(request.form["destinations"])
    loaded, errors = load(PreviewSchema(), body)
    if loaded is None:
        return _draft_page(draft_id, 422, op="preview", errors=errors, form=request.form)
    try:
        preview = rule_publish.preview_draft(current_app, draft_id, loaded.get("as_of"), loaded.get("destinations"),
                                             loaded["item_limit"])
    except (InvalidInput, RulebookInvalid) as exc:
        return _draft_page(draft_id, 422, op="preview", errors=domain_errors(exc) if isinstance(exc, InvalidInput)
                           else {"_form": list(exc.errors)}, form=request.form)
    return _draft_page(draft_id, preview=preview, preview_chart=transition_chart(preview), form=request.form,
                       op="preview")[0]


def transition_chart(preview: dict):
    """Products x destinations moving between outcomes, over every catalogue."""
    totals: dict[str, int] = {}
    for cat in preview.get("catalogues") or []:
        for t in cat.get("transitions") or []:
            label = _transition_label(t)
            totals[label] = totals.get(label, 0) + int(t.get("count") or 0)
    items = sorted(totals.items(), key=lambda kv: -kv[1])[:30]
    return charts.bars([(k, v, "#1f5fbf") for k, v in items])


def _transition_label(t: dict) -> str:
    def side(x):
        if isinstance(x, dict):
            parts = [x.get("eccn") or "not listed", (x.get("requirement") or "").replace("_", " ")]
            if x.get("review_policy"):
                parts.append(x["review_policy"].replace("_", " "))
            return " · ".join(p for p in parts if p)
        return str(x)

    dest = f"{t['destination']}: " if t.get("destination") else ""
    return f"{dest}{side(t.get('from'))} → {side(t.get('to'))}"


def _publish_body(form) -> dict[str, Any]:
    body: dict[str, Any] = {"reason": form.get("reason", "").strip(), "confirm": form.get("confirm") == "true"}
    if form.get("as_of", "").strip():
        body["as_of"] = form["as_of"].strip()
    return body


def _publish_errors(exc: ComplianceError) -> dict[str, list[str]]:
    """409 (someone else published first) and 428 (storm guard) as clear messages on the form."""
    if isinstance(exc, Conflict):
        return {"conflict": [exc.message]}
    if exc.status == 428:
        return {"storm": [exc.message], "confirm": ["tick to confirm this publish"]}
    if isinstance(exc, RulebookInvalid):
        return {"_form": [exc.message] + list(exc.errors)[:20]}
    return flatten_errors(exc.errors) if exc.errors else {"_form": [exc.message]}


@blp.route("/rules/drafts/<int:draft_id>/publish", methods=["POST"])
@role_required("admin")
def draft_publish(draft_id: int):
    loaded, errors = load(PublishSchema(), _publish_body(request.form))
    status = 422
    if loaded is not None:
        try:
            out = rule_publish.publish_draft(current_app, draft_id, g.actor, loaded["reason"], loaded.get("as_of"),
                                             loaded["confirm"], **_preconditions(request.form))
        except ComplianceError as exc:
            if _is_stale(exc):
                return _stale_page(draft_id, exc, publish_form=request.form)
            errors, status = _publish_errors(exc), exc.status
        else:
            return redirect(url_for("console.version", number=out["number"], published=out["number"], run=out["run_id"]))
    return _draft_page(draft_id, status, publish_errors=errors, publish_form=request.form)


@blp.route("/rules/drafts/<int:draft_id>/discard", methods=["POST"])
@role_required("admin")
def draft_discard(draft_id: int):
    try:
        rule_drafts.discard_draft(_db(), draft_id, g.actor, **_preconditions(request.form))
    except (rule_drafts.PreconditionFailed, rule_drafts.PreconditionRequired) as exc:
        return _stale_page(draft_id, exc)
    return redirect(url_for("console.drafts"))


@blp.app_template_filter("compact_json")
def compact_json(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


__all__ = ["has_role"]
