"""Catalogues: list and create, one catalogue (chart, products with filters and sorting, upload with
the per-row errors, its audits and a form to start one), and one product with its standing over time."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import current_app, g, redirect, render_template, request, url_for

from ..engine.errors import InvalidInput
from ..engine.vocabulary import ECCNS, STATUSES, TRANSACTION_TYPES
from ..schemas.audit import AuditCreateSchema
from ..schemas.catalogue import CatalogueCreateSchema, ProductQuerySchema
from ..services import catalogues as svc
from ..services import import_jobs
from ..services.audit_results import list_audits
from ..services.audits import create_audit
from ..services.changes import list_changes
from ..services.classification import classify_products
from ..services.import_formats import detect_format
from . import charts
from .blueprint import _db, _store, blp, has_role, role_required
from .forms import codes, domain_errors, load

PER_PAGE = 50
UPLOAD_WAIT_SECONDS = 5.0  # an upload's page waits this long for the import before showing its progress
FIRST_RULE_DATE = date(2022, 8, 26)  # the first A100/H100 letter: where a product's timeline starts


@blp.route("/catalogues", methods=["GET", "POST"])
@role_required("viewer")
def catalogues():
    db = _db()
    errors: dict[str, list[str]] = {}
    form = request.form.to_dict() if request.method == "POST" else {}
    if request.method == "POST":
        if not has_role("auditor"):
            return render_template("console/error.html", status=403,
                                   message=f"this needs the auditor role; your key has {g.role}"), 403
        body = {"name": form.get("name", "").strip(), "description": form.get("description", "")}
        if form.get("destinations", "").strip():
            body["destinations"] = codes(form["destinations"])
        loaded, errors = load(CatalogueCreateSchema(), body)
        if loaded is not None:
            _, rulebook = _store().current()
            try:
                cat = svc.create_catalogue(db, loaded["name"], loaded.get("description", ""), loaded.get("destinations"),
                                           rulebook=rulebook)
            except InvalidInput as exc:
                errors = domain_errors(exc)
            else:
                return redirect(url_for("console.catalogue", catalogue_id=cat.id))
    items = [svc.catalogue_summary(db, c) for c in svc.list_catalogues(db)]
    return render_template("console/catalogues.html", catalogues=items, errors=errors, form=form)


def _product_query() -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The products filter, validated by the API's ProductQuerySchema (same names, same messages)."""
    raw = {k: v for k, v in request.args.items() if k in ("vendor", "eccn", "status", "q", "page") and v.strip()}
    loaded, errors = load(ProductQuerySchema(), raw | {"per_page": PER_PAGE})
    return (loaded or {"page": 1, "per_page": PER_PAGE}), errors


@blp.route("/catalogues/<int:catalogue_id>")
@role_required("viewer")
def catalogue(catalogue_id: int):
    report = request.args.get("report", "")
    upload = svc.import_report(_db(), int(report)) if report.isdigit() and len(report) < 18 else None
    if upload is not None and upload["catalogue_id"] != catalogue_id:
        upload = None
    return _catalogue_page(catalogue_id, upload=upload)


def _catalogue_page(catalogue_id: int, upload: dict | None = None, upload_errors: dict | None = None,
                    audit_form: dict | None = None, audit_errors: dict | None = None, status: int = 200):
    db = _db()
    cat = svc.get_catalogue(db, catalogue_id)
    summary = svc.catalogue_summary(db, cat)
    query, filter_errors = _product_query()
    sort = request.args.get("sort", "id")
    try:
        listing = svc.list_products(db, catalogue_id, query["page"], PER_PAGE, query.get("vendor"),
                                    query.get("eccn"), query.get("status"), query.get("q"), sort)
    except InvalidInput as exc:
        filter_errors, sort = domain_errors(exc), "id"
        listing = svc.list_products(db, catalogue_id, 1, PER_PAGE)
    items, total = listing.items, listing.total
    chart_date = _date_arg("chart_as_of") or date.today()
    _, rulebook = _store().current()
    points = svc.product_points(db, catalogue_id)
    lines = charts.thresholds(rulebook, chart_date)
    eccns = sorted({p["eccn"] for p in points["points"]}, key=lambda e: (e is None, e or ""))
    args = {k: v for k, v in request.args.items() if k not in ("page", "report")}
    return render_template(
        "console/catalogue.html", cat=summary, products=items, total=total, query=query, sort=sort, args=args,
        pages=max(1, -(-total // PER_PAGE)), filter_errors=filter_errors, eccns=ECCNS, statuses=STATUSES,
        chart=charts.scatter(points["points"], lines), chart_info=points, chart_date=chart_date, lines=lines,
        legend=[(e or "not listed", charts.eccn_colour(e)) for e in eccns],
        audits=list_audits(db, catalogue_id, per_page=20).items,
        imports=svc.import_reports(db, catalogue_id, per_page=10).items,
        upload=upload, upload_errors=upload_errors or {}, audit_form=audit_form or {
            "as_of": date.today().isoformat(), "destinations": ", ".join(cat.destinations or [])},
        audit_errors=audit_errors or {}, transaction_types=TRANSACTION_TYPES), status


def _date_arg(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


@blp.route("/catalogues/<int:catalogue_id>/export.<any(csv, jsonl, xlsx):fmt>")
@role_required("viewer")
def catalogue_export(catalogue_id: int, fmt: str):
    """The API's GET /catalogues/{id}/export: every product, in the import's layout."""
    from ..api.downloads import download
    from ..services.exports import export

    pieces, name = export(_db(), "catalogue", fmt, catalogue_id=catalogue_id)
    return download(pieces, name, fmt)


@blp.route("/catalogues/<int:catalogue_id>/upload", methods=["POST"])
@role_required("auditor")
def upload(catalogue_id: int):
    """The API's import as a job (POST /catalogues/{id}/imports, Prefer: respond-async): good rows kept, bad rows
    listed with row and field; the progress shown while it runs."""
    db = _db()
    svc.get_catalogue(db, catalogue_id)
    file = request.files.get("file")
    if file is None or not file.filename:
        return _catalogue_page(catalogue_id, upload_errors={"file": ["missing: choose a CSV, XLSX, JSON or JSON Lines file"]},
                               status=422)
    try:
        fmt = detect_format(file.filename, file.mimetype, request.form.get("format") or None)
        import_id = import_jobs.create_import(db, catalogue_id, file.stream, fmt, file.filename,
                                              sheet=request.form.get("sheet", "").strip() or None, actor=g.actor)
    except InvalidInput as exc:
        return _catalogue_page(catalogue_id, upload_errors=domain_errors(exc) | {"file": [exc.message]}, status=422)
    # the import is a job (as POST /imports with Prefer: respond-async): a small file's report is shown at
    # once, a big one's progress until it is done
    import_jobs.wait_for(db, import_id, UPLOAD_WAIT_SECONDS)
    return redirect(url_for("console.catalogue", catalogue_id=catalogue_id, report=import_id) + "#upload")


@blp.route("/imports/<int:import_id>/progress")
@role_required("viewer")
def import_progress(import_id: int):
    """An import's progress panel alone: console.js polls it until the import is done (or failed)."""
    return render_template("console/_import_progress.html", upload=svc.import_report(_db(), import_id))


@blp.route("/catalogues/<int:catalogue_id>/audits", methods=["POST"])
@role_required("auditor")
def start_audit_form(catalogue_id: int):
    """What POST /api/v1/catalogues/{id}/audits does: the audit pinned to the current revision, then run."""
    form = request.form.to_dict()
    body: dict[str, Any] = {}
    if form.get("as_of", "").strip():
        body["as_of"] = form["as_of"].strip()
    if form.get("destinations", "").strip():
        body["destinations"] = codes(form["destinations"])
    if form.get("transaction_type", "").strip():
        body["transaction_type"] = form["transaction_type"].strip()
    loaded, errors = load(AuditCreateSchema(), body)
    if loaded is None:
        return _catalogue_page(catalogue_id, audit_form=form, audit_errors=errors, status=422)
    config = current_app.config["COMPLIANCE"]
    hq = (loaded.get("end_user") or {}).get("headquarters")
    try:
        audit = create_audit(_db(), _store(), catalogue_id, loaded["as_of"], loaded["destinations"], hq, g.actor,
                             config.AUDIT_CHUNK_SIZE, transaction_type=loaded["transaction_type"])
    except InvalidInput as exc:
        return _catalogue_page(catalogue_id, audit_form=form, audit_errors=domain_errors(exc), status=422)
    return redirect(url_for("console.audit", audit_id=audit.id))


# ---------------------------------------------------------------- one product

def timeline_dates(rulebook, until: date) -> list[date]:
    """Every date a rule starts or stops being in force, from the first letter to `until`."""
    days = {FIRST_RULE_DATE, until}
    for r in rulebook.rules:
        for d in (r.effective_from, r.effective_to and r.effective_to + timedelta(days=1)):
            if d and FIRST_RULE_DATE <= d <= until:
                days.add(d)
    return sorted(days)


def standing_over_time(spec: dict, destinations: list[str], until: date) -> list[dict[str, Any]]:
    """The product classified as of each rule date under the current version (the same classify path as
    POST /classify), merged into periods of unchanged standing, each with why it changed."""
    version, rulebook = _store().current()
    days = timeline_dates(rulebook, until)
    periods: list[dict[str, Any]] = []
    for i, day in enumerate(days[:-1] if len(days) > 1 else days):
        d = classify_products(_store(), [spec], day, destinations, None, None, "summary", "export").all()[0]
        c = d["classification"]
        per_dest = {lic["destination"]: (lic["requirement"], lic.get("review_policy")) for lic in d["licences"]}
        key = (c["eccn"], c["status"], tuple(sorted(per_dest.items())))
        end = days[i + 1] if i + 1 < len(days) else until
        if periods and periods[-1]["key"] == key:
            periods[-1]["end"] = end
            continue
        full = classify_products(_store(), [spec], day, destinations, None, None, "full", "export").all()[0]
        fc = full["classification"]
        periods.append({"key": key, "start": day, "end": end, "eccn": c["eccn"], "status": c["status"],
                        "rule_id": fc.get("rule_id"), "citation": fc.get("citation"), "reason": fc.get("reason"),
                        "licences": {lic["destination"]: lic for lic in full["licences"]}})
    return periods


@blp.route("/catalogues/<int:catalogue_id>/products/<path:sku>")
@role_required("viewer")
def product(catalogue_id: int, sku: str):
    return product_page(catalogue_id, sku)


def product_page(catalogue_id: int, sku: str, det_form: dict | None = None, det_errors: dict | None = None,
                 status: int = 200):
    """The product page; a determination form that failed comes back with its errors next to the fields."""
    from .determinations import product_context

    db = _db()
    cat = svc.get_catalogue(db, catalogue_id)
    p = svc.get_product(db, catalogue_id, sku)
    picked = [c.upper() for c in codes(request.args.get("destinations", ""))] or ["CN", "AE"]
    try:
        periods = standing_over_time(p.spec, picked, date.today())
    except InvalidInput as exc:
        periods, picked = [], []
        error = exc.message
    else:
        error = None
    rows = ["classification"] + picked
    segments = []
    for per in periods:
        why = f" — {per['rule_id']}" if per["rule_id"] else ""
        segments.append({"row": "classification", "start": per["start"], "end": per["end"],
                         "label": per["eccn"] or "not listed", "colour": charts.STATUS_COLOURS.get(per["status"]),
                         "tip": f"{per['start']} → {per['end']}: {per['eccn'] or 'not listed'} "
                                f"({per['status'].replace('_', ' ')}){why}"})
        for dest in picked:
            lic = per["licences"].get(dest) or {}
            req = lic.get("requirement", "")
            segments.append({"row": dest, "start": per["start"], "end": per["end"],
                             "label": req.replace("_", " ").replace("license", "licence"),
                             "colour": charts.REQUIREMENT_COLOURS.get(req, "#95a5a6"),
                             "tip": f"{dest} {per['start']} → {per['end']}: {req.replace('_', ' ')}"
                                    f"{' (' + lic['review_policy'].replace('_', ' ') + ')' if lic.get('review_policy') else ''}"
                                    f"{' — ' + ', '.join(lic.get('rule_ids') or []) if lic.get('rule_ids') else ''}"})
    changes = list_changes(db, 1, 50, catalogue_id=catalogue_id, product=sku).items
    return render_template("console/product.html", cat=cat, p=p, periods=periods, picked=picked, error=error,
                           timeline=charts.timeline(segments, rows), changes=changes,
                           det_form=det_form or {}, det_errors=det_errors or {},
                           **product_context(catalogue_id, sku)), status
