"""Console pages for determinations: a catalogue's computed vs determined standings, and on a product's page
its determination (record one, approve one, the history), through the same services and schemas as
POST /catalogues/{id}/determinations and POST /determinations/{id}/approve."""
from __future__ import annotations

from flask import g, redirect, render_template, request, url_for

from ..engine.errors import ComplianceError, InvalidInput
from ..schemas.determinations import STANDING_STATES, ApprovalSchema, DeterminationCreateSchema
from ..services import catalogues as catalogue_svc
from ..services import determinations as svc
from .blueprint import _db, _store, blp, role_required
from .forms import domain_errors, load, parse_json

PER_PAGE = 50


def product_context(catalogue_id: int, sku: str) -> dict:
    """What the product page shows of determinations: the standing, the history, the catalogue's policy."""
    db = _db()
    return {"standing": svc.product_standing(db, catalogue_id, sku),
            "history": svc.list_determinations(db, 1, 100, catalogue_id=catalogue_id, sku=sku).items,
            "policy": svc.get_policy(db, catalogue_id)}


@blp.route("/catalogues/<int:catalogue_id>/determinations")
@role_required("viewer")
def catalogue_determinations(catalogue_id: int):
    db = _db()
    cat = catalogue_svc.get_catalogue(db, catalogue_id)
    state = request.args.get("state", "")
    error = None
    if state and state not in STANDING_STATES:
        error, state = f"state: must be one of {', '.join(STANDING_STATES)}, got {state!r}", ""
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 0 < len(page) < 7 else 1
    everything = svc.catalogue_standings(db, catalogue_id, 1, 1).counts
    result = svc.catalogue_standings(db, catalogue_id, page, PER_PAGE, state=state or None)
    return render_template("console/determinations.html", cat=cat, result=result, state=state, states=STANDING_STATES,
                           counts=everything, error=error, policy=svc.get_policy(db, catalogue_id),
                           args={k: v for k, v in request.args.items() if k != "page"}), 400 if error else 200


def _form_body(form) -> tuple[dict | None, dict[str, list[str]]]:
    """The record form -> the API's request body (DeterminationCreateSchema), or the errors by field."""
    basis: dict = {}
    errors: dict[str, list[str]] = {}
    for name in ("datasheet", "text"):
        if form.get(f"basis.{name}", "").strip():
            basis[name] = form[f"basis.{name}"].strip()
    figures = form.get("basis.spec_figures", "").strip()
    if figures:
        parsed, errors = parse_json(figures, "basis.spec_figures")
        if not errors:
            basis["spec_figures"] = parsed
    body = {"sku": form.get("sku", ""), "eccn": form.get("eccn", "").strip(), "basis": basis}
    for name in ("rule_revision", "as_of"):
        if form.get(name, "").strip():
            body[name] = form[name].strip()
    if errors:
        return None, errors
    return load(DeterminationCreateSchema(), body)


@blp.route("/catalogues/<int:catalogue_id>/products/<path:sku>/determinations", methods=["POST"])
@role_required("auditor")
def record(catalogue_id: int, sku: str):
    from .catalogues import product_page

    form = request.form.to_dict() | {"sku": sku}
    body, errors = _form_body(form)
    if body is not None:
        try:
            svc.record_determination(_db(), _store(), catalogue_id, sku, body["eccn"], body["basis"], g.actor,
                                     body.get("rule_revision"), body.get("as_of"))
        except InvalidInput as exc:
            errors = domain_errors(exc)
        else:
            return redirect(url_for("console.product", catalogue_id=catalogue_id, sku=sku) + "#determination")
    return product_page(catalogue_id, sku, det_form=form, det_errors=errors, status=422)


@blp.route("/determinations/<int:determination_id>/approve", methods=["POST"])
@role_required("auditor")
def approve(determination_id: int):
    from .catalogues import product_page

    det = svc.get_determination(_db(), determination_id)
    body, errors = load(ApprovalSchema(), {k: v for k, v in {"note": request.form.get("note", "").strip()}.items() if v})
    if body is not None:
        try:
            svc.approve_determination(_db(), determination_id, g.actor, body.get("note"))
        except ComplianceError as exc:  # the recorder approving (422), already approved or superseded (409)
            errors = {"approve": [exc.message]}
            status = exc.status
        else:
            return redirect(url_for("console.product", catalogue_id=det["catalogue_id"], sku=det["sku"])
                            + "#determination")
    else:
        status = 422
    return product_page(det["catalogue_id"], det["sku"], det_errors=errors, status=status)


@blp.route("/catalogues/<int:catalogue_id>/determination-policy", methods=["POST"])
@role_required("admin")
def set_policy(catalogue_id: int):
    """Four eyes on or off for the catalogue's determinations (PUT /catalogues/{id}/determination-policy)."""
    svc.set_policy(_db(), catalogue_id, request.form.get("four_eyes") == "on", g.actor)
    return redirect(url_for("console.catalogue_determinations", catalogue_id=catalogue_id))


@blp.route("/catalogues/<int:catalogue_id>/determinations/export.<any(csv, xlsx, json):fmt>")
@role_required("auditor")
def export(catalogue_id: int, fmt: str):
    """The same streamed export as GET /api/v1/determinations/export (every determination with its history)."""
    from ..api.downloads import download
    from ..services import determination_export

    db = _db()
    catalogue_svc.get_catalogue(db, catalogue_id)
    gen = {"csv": determination_export.iter_csv, "xlsx": determination_export.iter_xlsx,
           "json": determination_export.iter_json}[fmt](db, catalogue_id)
    return download(gen, f"determinations-{catalogue_id}.{fmt}", fmt)
