"""One audit: live progress, counts (as charts), results page by page, CSV / JSON downloads; all from
the API's audit services (audit_status, audit_results_page, iter_report)."""
from __future__ import annotations

from flask import render_template, request

from ..engine.errors import InvalidInput
from ..engine.vocabulary import REQUIREMENTS
from ..schemas.audit import AuditResultsQuerySchema
from ..services import audit_results as svc
from ..services.catalogues import get_catalogue
from . import charts
from .blueprint import _db, _store, blp, role_required
from .forms import domain_errors, load

PER_PAGE = 100


def _counts_charts(status: dict) -> dict:
    counts = status.get("counts") or {}
    by_eccn = sorted((counts.get("by_eccn") or {}).items(), key=lambda kv: -kv[1])
    eccn_bars = charts.bars([(k if k not in (None, "none", "null") else "not listed", v, charts.eccn_colour(k))
                             for k, v in by_eccn])
    licence_rows = []
    for dest, reqs in sorted((counts.get("licences") or {}).items()):  # {dest: {requirement: {policy: n}}}
        for req, policies in sorted((reqs or {}).items()):
            for policy, n in sorted((policies or {}).items() if isinstance(policies, dict) else [("none", policies)]):
                label = f"{dest}: {req.replace('_', ' ')}" + (f", {policy.replace('_', ' ')}" if policy != "none" else "")
                licence_rows.append((label, int(n), charts.REQUIREMENT_COLOURS.get(req, "#95a5a6")))
    return {"eccn": eccn_bars, "licences": charts.bars(licence_rows[:60])}


@blp.route("/audits/<int:audit_id>")
@role_required("viewer")
def audit(audit_id: int):
    db = _db()
    status = svc.audit_status(db, audit_id)
    cat = get_catalogue(db, status["catalogue_id"])
    raw = {k: v for k, v in request.args.items() if k in ("page", "destination", "requirement") and v.strip()}
    query, errors = load(AuditResultsQuerySchema(), raw | {"per_page": PER_PAGE})
    rows, total = [], 0
    if query is not None and status["status"] == "done":
        try:
            results = svc.audit_results_page(db, _store(), audit_id, query["page"], PER_PAGE,
                                             query.get("destination"), query.get("requirement"))
            rows, total = results.items, results.total
        except InvalidInput as exc:
            errors = domain_errors(exc)
    query = query or {"page": 1}
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("console/audit.html", a=status, cat=cat, rows=rows, total=total, query=query, args=args,
                           errors=errors, pages=max(1, -(-total // PER_PAGE)), requirements=REQUIREMENTS,
                           charts=_counts_charts(status))


@blp.route("/audits/<int:audit_id>/progress")
@role_required("viewer")
def audit_progress(audit_id: int):
    """The progress panel alone: console.js polls it until the audit is done (or failed)."""
    return render_template("console/_audit_progress.html", a=svc.audit_status(_db(), audit_id))


@blp.route("/audits/<int:audit_id>/report.<any(csv, json, jsonl, xlsx):fmt>")
@role_required("viewer")
def audit_report(audit_id: int, fmt: str):
    """The same streamed report as GET /api/v1/audits/{id}/report.csv|json|jsonl|xlsx."""
    from ..api.downloads import download
    from ..services.audit_report import iter_report

    gen = iter_report(_db(), _store(), audit_id, fmt, request.args.get("destination") or None,
                      request.args.get("requirement") or None)  # a 404/422 surfaces before the download starts
    return download(gen, f"audit-{audit_id}.{fmt}", fmt)
