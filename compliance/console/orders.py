"""Orders in the console: the holds queue, an order with its lines, reasons and screening hits, releasing a held
line (a licence that covers it, or a four-eyes override) and rejecting an order; the licence register and a
licence with the lines it released. The same services and schemas as /api/v1/orders and /api/v1/licences, so
the console and the API cannot disagree (nor record a different actor)."""
from __future__ import annotations

from datetime import date

from flask import g, redirect, render_template, request, url_for

from ..engine.errors import ComplianceError, NotFound
from ..schemas.orders import (
    ORDER_STATUSES,
    IssuedLicenceQuerySchema,
    IssuedLicenceSchema,
    OrderQuerySchema,
    RejectSchema,
    ReleaseSchema,
)
from ..services import licences as licence_svc
from ..services import order_recheck
from ..services import orders as svc
from .blueprint import _db, blp, has_role, role_required
from .forms import codes, domain_errors, load, number

PER_PAGE = 25
LICENCES_PER_PAGE = 50
HOLDER_MAX = 300
DONE = {"released": "released", "rejected": "rejected"}  # ?done=... after a successful form: what the notice says


def _query(schema, names: tuple[str, ...], per_page: int, numeric: tuple[str, ...] = ("page",)):
    """The filters of a list page, validated by the API's query schema: (query, errors by field)."""
    raw = {k: (number(v) if k in numeric else v.strip()) for k, v in request.args.items()
           if k in names and v.strip()}
    return load(schema, raw | {"per_page": per_page})


@blp.route("/orders")
@role_required("viewer")
def orders():
    """The holds queue: held orders by default (status= empty for every order), newest first."""
    args = request.args.to_dict()
    args.setdefault("status", "held")
    query, errors = load(OrderQuerySchema(), {k: (number(v) if k == "page" else v.strip()) for k, v in args.items()
                                              if k in ("page", "status", "ship_to", "reference", "needs_review")
                                              and v.strip()}
                         | {"per_page": PER_PAGE})
    result = None
    if query is not None:
        result = svc.list_orders(_db(), query["page"], PER_PAGE, query.get("status"), query.get("ship_to"),
                                 query.get("reference"), query.get("needs_review"))
    return render_template("console/orders.html", result=result, errors=errors, form=args, statuses=ORDER_STATUSES,
                           args={k: v for k, v in args.items() if k != "page"}), 400 if errors else 200


@blp.route("/orders/<int:order_id>")
@role_required("viewer")
def order(order_id: int):
    return order_page(order_id)


def order_page(order_id: int, release: dict | None = None, reject: dict | None = None, status: int = 200):
    """The order page; `release` / `reject` carry a failed form back ({"line_id", "form", "errors", "message"})."""
    db = _db()
    o = svc.get_order(db, order_id)
    can_decide = has_role("auditor") and o["status"] == "held"
    options = licence_svc.release_options(db, order_id) if can_decide else {}
    done = DONE.get(request.args.get("done", ""))
    return render_template("console/order.html", o=o, options=options, can_decide=can_decide,
                           activity=svc.order_activity(db, order_id),
                           changes=order_recheck.list_changes(db, 1, 50, order_id=order_id),
                           release=release or {}, reject=reject or {}, done=done,
                           done_line=request.args.get("line", "")), status


def _failure(exc: ComplianceError) -> tuple[dict[str, list[str]], str]:
    """A service's refusal as (errors by field, the service's message)."""
    if isinstance(exc, NotFound):
        return {"licence_id": [exc.message]}, exc.message  # the order and line were found: the licence was not
    return domain_errors(exc), exc.message


@blp.route("/orders/<int:order_id>/lines/<int:line_id>/release", methods=["POST"])
@role_required("auditor")
def release_line(order_id: int, line_id: int):
    """Release a held line: basis=licence with licence_id (and a note), or basis=override with a reason."""
    o = svc.get_order(_db(), order_id)
    if not any(ln["id"] == line_id for ln in o["lines"]):
        raise NotFound(f"order {order_id} has no line {line_id}")
    form = request.form.to_dict()
    body: dict = {}
    if form.get("basis") == "override":
        body["override"] = True
    elif form.get("licence_id", "").strip():
        body["licence_id"] = number(form["licence_id"])
    if form.get("reason", "").strip():
        body["reason"] = form["reason"].strip()
    loaded, errors = load(ReleaseSchema(), body)
    message, status = None, 422
    if loaded is not None:
        try:
            view = svc.release_line(_db(), order_id, line_id, g.actor, loaded.get("licence_id"), loaded["override"],
                                    loaded.get("reason"))
        except ComplianceError as exc:  # not covered, exhausted (409), four eyes, released meanwhile (409)
            (errors, message), status = _failure(exc), exc.status
        else:
            seq = next(ln["seq"] for ln in view["lines"] if ln["id"] == line_id)
            return redirect(url_for("console.order", order_id=order_id, done="released", line=seq) + f"#line-{line_id}")
    return order_page(order_id, release={"line_id": line_id, "form": form, "errors": errors, "message": message},
                      status=status)


@blp.route("/orders/<int:order_id>/reject", methods=["POST"])
@role_required("auditor")
def reject_order(order_id: int):
    """Reject a held order with a reason (POST /api/v1/orders/{id}/reject)."""
    svc.get_order(_db(), order_id)
    form = request.form.to_dict()
    reason = form.get("reason", "").strip()
    loaded, errors = load(RejectSchema(), {"reason": reason} if reason else {})
    message, status = None, 422
    if loaded is not None:
        try:
            svc.reject_order(_db(), order_id, g.actor, loaded["reason"])
        except ComplianceError as exc:  # not held (409)
            (errors, message), status = _failure(exc), exc.status
        else:
            return redirect(url_for("console.order", order_id=order_id, done="rejected"))
    return order_page(order_id, reject={"form": form, "errors": errors, "message": message}, status=status)


def licence_state(lic: dict, today: date) -> str:
    """valid | not_yet_valid | expired | exhausted (valid dates but nothing left)."""
    if today < lic["valid_from"]:
        return "not_yet_valid"
    if today > lic["valid_to"]:
        return "expired"
    if lic["quantity_remaining"] == 0 or (lic["value_remaining"] is not None and lic["value_remaining"] <= 0):
        return "exhausted"
    return "valid"


def _licence_body(form) -> dict:
    """The register form -> the body of POST /api/v1/licences (lists split on commas or spaces; parties, which
    have spaces, on semicolons or new lines); empty fields are left out, so the schema names what is missing."""
    body: dict = {}
    for name in ("number", "holder", "valid_from", "valid_to", "notes"):
        if form.get(name, "").strip():
            body[name] = form[name].strip()
    for name in ("eccns", "products", "destinations"):
        if form.get(name, "").strip():
            body[name] = codes(form[name])
    if form.get("parties", "").strip():
        body["parties"] = [p.strip() for p in form["parties"].replace("\n", ";").split(";") if p.strip()]
    for name in ("quantity_limit", "value_limit"):
        if form.get(name, "").strip():
            body[name] = number(form[name].replace(",", ""))
    return body


@blp.route("/licences", methods=["POST"])
@role_required("auditor")
def register_licence():
    """Register a licence (POST /api/v1/licences): bad input is shown next to its field, nothing is stored."""
    form = request.form.to_dict()
    body, errors = load(IssuedLicenceSchema(), _licence_body(form))
    if body is not None:
        try:
            view = licence_svc.create_licence(_db(), body, g.actor)
        except ComplianceError as exc:  # a licence with that number exists (409)
            errors, status = {"_form": [exc.message]} | domain_errors(exc), exc.status
        else:
            return redirect(url_for("console.licence", licence_id=view["id"]))
    else:
        status = 422
    return licences(new_form=form, new_errors=errors, status=status)


@blp.route("/licences")
@role_required("viewer")
def licences(new_form: dict | None = None, new_errors: dict | None = None, status: int = 200):
    """The licence register with balances (filters: destination, holder, valid on a date)."""
    query, errors = _query(IssuedLicenceQuerySchema(), ("page", "destination", "valid_on"), LICENCES_PER_PAGE)
    holder = request.args.get("holder", "").strip()
    if len(holder) > HOLDER_MAX:
        errors = {**errors, "holder": [f"Longer than maximum length {HOLDER_MAX}."]}
    result = None
    if query is not None and not errors:
        result = licence_svc.list_licences(_db(), query["page"], LICENCES_PER_PAGE, query.get("destination"),
                                           query.get("valid_on"), holder or None)
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("console/licences.html", result=result, errors=errors, args=args,
                           form=request.args, today=date.today(), state=licence_state, new_form=new_form or {},
                           new_errors=new_errors or {}), 400 if errors else status


@blp.route("/licences/<int:licence_id>")
@role_required("viewer")
def licence(licence_id: int):
    db = _db()
    lic = licence_svc.get_licence(db, licence_id)
    return render_template("console/licence.html", lic=lic, releases=licence_svc.licence_releases(db, licence_id),
                           today=date.today(), state=licence_state)
