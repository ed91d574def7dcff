"""Screening lists in the console: every list with its snapshots (version, source date, entries, delta counts),
and a snapshot with its rejected rows, its delta against the previous snapshot (page by page) and a search of
its entries; the same services and query schemas as GET /api/v1/screening/lists and /screening/snapshots/{id}."""
from __future__ import annotations

from flask import current_app, render_template, request

from ..schemas.screening import ListChangeQuerySchema, ListEntryQuerySchema
from ..services import screening_lists as lists
from .blueprint import _db, blp, role_required
from .forms import load, number

PER_PAGE = 50
CHANGES = ("added", "removed", "changed")


@blp.route("/screening/lists")
@role_required("viewer")
def screening_lists():
    db = _db()
    lists.ensure_sample(db, current_app.config["COMPLIANCE"].SCREENING_SAMPLE)  # as the API's GET does
    return render_template("console/screening_lists.html",
                           items=[lists.get_list(db, lst["id"]) for lst in lists.list_lists(db)])


def _args(names: dict[str, str]) -> dict:
    """The page's query parameters named as the API's (e.g. entries_page -> page), numbers as numbers."""
    out = {}
    for ours, theirs in names.items():
        value = request.args.get(ours, "").strip()
        if value:
            out[theirs] = number(value) if theirs == "page" else value
    return out


@blp.route("/screening/snapshots/<int:snapshot_id>")
@role_required("viewer")
def snapshot(snapshot_id: int):
    """A snapshot: its delta (change=, page=) and its entries (q=, source=, entries_page=), each paginated."""
    db = _db()
    snap = lists.get_snapshot(db, snapshot_id)
    change_q, change_errors = load(ListChangeQuerySchema(), _args({"page": "page", "change": "change"})
                                   | {"per_page": PER_PAGE})
    entry_q, entry_errors = load(ListEntryQuerySchema(),
                                 _args({"entries_page": "page", "q": "q", "source": "source"}) | {"per_page": PER_PAGE})
    changes = (lists.snapshot_changes(db, snapshot_id, change_q["page"], PER_PAGE, change_q.get("change"))
               if change_q is not None else None)
    entries = (lists.snapshot_entries(db, snapshot_id, entry_q["page"], PER_PAGE, entry_q.get("q"),
                                      entry_q.get("source"))
               if entry_q is not None else None)
    errors = {**change_errors, **{("entries_page" if k == "page" else k): v for k, v in entry_errors.items()}}
    args = {k: v for k, v in request.args.items() if k not in ("page", "entries_page")}
    return render_template("console/snapshot.html", snap=snap, changes=changes, entries=entries, errors=errors,
                           form=request.args, args=args, change_kinds=CHANGES,
                           lst=lists.get_list(db, snap["list_id"])), 400 if errors else 200
