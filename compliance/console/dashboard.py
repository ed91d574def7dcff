"""`/`: catalogues with counts by status, running audits and re-evaluations (live), latest changes,
the rule version in force."""
from __future__ import annotations

from flask import render_template

from ..services import catalogues as cat_svc
from ..services.audit_results import audit_status, list_audits
from ..services.changes import list_changes
from ..services.reevaluation import list_runs
from ..services.rule_versions import version_summary
from .blueprint import _db, _store, blp, role_required

RUNNING = ("pending", "running")


def running_work() -> dict:
    """Audits and re-evaluation runs still in progress, with their progress (the polled fragment)."""
    db = _db()
    audits = [audit_status(db, a["id"]) for a in list_audits(db, status=RUNNING, per_page=20).items]
    runs = [r for r in list_runs(db, per_page=20).items if r["status"] in RUNNING]
    return {"audits": audits, "runs": runs}


@blp.route("/")
@role_required("viewer")
def dashboard():
    db = _db()
    version, rulebook = _store().current()
    catalogues = [cat_svc.catalogue_summary(db, c) for c in cat_svc.list_catalogues(db)]
    return render_template("console/dashboard.html", version=version_summary(version), catalogues=catalogues,
                           work=running_work(), changes=list_changes(db, page=1, per_page=10).items,
                           recent_runs=list_runs(db, per_page=5).items, packs=len(rulebook.packs))


@blp.route("/console/running")
@role_required("viewer")
def running_fragment():
    """The running-work panel alone: console.js polls it while something runs."""
    return render_template("console/_running.html", work=running_work())
