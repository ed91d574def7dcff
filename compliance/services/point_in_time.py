"""Point in time: a catalogue evaluated as of any date, and its diff between two dates under the
current (or a given) rule version. Nothing is written."""
from __future__ import annotations

import time
from collections import Counter
from datetime import date

import numpy as np

from ..engine import evaluate
from ..engine.codes import ECCN_LABELS, POLICY_LABELS
from ..engine.errors import InvalidInput, NotFound
from ..engine.vocabulary import REQUIREMENTS, STATUSES
from ..models import Catalogue
from .paging import Page
from .reevaluation import _parts, cell_items, compare, render_transitions, transition_counts


def _catalogue(session, catalogue_id: int) -> Catalogue:
    cat = session.get(Catalogue, catalogue_id)
    if cat is None:
        raise NotFound(f"no catalogue {catalogue_id}", {"catalogue_id": [f"unknown catalogue {catalogue_id}"]})
    return cat


def _rulebook(app, revision: str | None):
    return app.extensions["rulebooks"].current(revision)


def catalogue_diff(app, catalogue_id: int, from_date: date, to_date: date, destinations: list[str] | None = None,
                   revision: str | None = None, page: int = 1, per_page: int = 100,
                   chunk_size: int = 200_000, transaction_type: str = "export") -> Page:
    """Which products x destinations change between two dates under one rule version (every product as one
    `transaction_type`): a page of the changed cells (of `changed_rows`), with the counts of the whole
    catalogue in `extra`."""
    if from_date == to_date:
        raise InvalidInput("from and to are the same date", {"to": ["must differ from 'from'"]})
    t0 = time.perf_counter()
    version, rb = _rulebook(app, revision)
    db = app.extensions["db"]
    counter: Counter = Counter()
    items: list[dict] = []
    skip = (page - 1) * per_page
    n = n_rows = n_products = 0
    with db.session() as s:
        cat = _catalogue(s, catalogue_id)
        dests = list(dict.fromkeys(destinations if destinations else (cat.destinations or [])))
        for part in _parts(s, catalogue_id, chunk_size):
            old = evaluate(part.table, rb, from_date, dests, transaction_type=transaction_type)
            new = evaluate(part.table, rb, to_date, dests, transaction_type=transaction_type)
            cells = compare(old, new)
            transition_counts(cells, dests, counter)
            n += len(part.ids)
            n_products += len(np.unique(cells.rows))
            lo, hi = max(0, skip - n_rows), min(len(cells), skip + per_page - n_rows)
            if hi > lo:
                items += cell_items(cells, part.ids, part.skus, dests, hi)[lo:hi]
            n_rows += len(cells)
    return Page(items, page, per_page, n_rows, extra={
        "catalogue_id": catalogue_id, "from": from_date.isoformat(), "to": to_date.isoformat(),
        "rule_version": version.number, "ruleset_revision": rb.revision, "destinations": dests,
        "transaction_type": transaction_type, "products": n, "changed_products": n_products, "changed_rows": n_rows,
        "transitions": render_transitions(counter), "seconds": round(time.perf_counter() - t0, 3)})


def catalogue_as_of(app, catalogue_id: int, as_of: date, destinations: list[str] | None = None,
                    revision: str | None = None, page: int = 1, per_page: int = 100,
                    chunk_size: int = 200_000, transaction_type: str = "export") -> Page:
    """The catalogue's outcomes on a date (every product as one `transaction_type`): a page of its products,
    with the counts per ECCN and per destination x requirement of the whole catalogue in `extra`."""
    version, rb = _rulebook(app, revision)
    db = app.extensions["db"]
    counts: Counter = Counter()
    eccn_counts: Counter = Counter()
    items: list[dict] = []
    skip = (page - 1) * per_page
    n = 0
    with db.session() as s:
        cat = _catalogue(s, catalogue_id)
        dests = list(dict.fromkeys(destinations if destinations else (cat.destinations or [])))
        for part in _parts(s, catalogue_id, chunk_size):
            ev = evaluate(part.table, rb, as_of, dests, transaction_type=transaction_type)
            top = ev.table.top
            for label, c in zip(*np.unique(ECCN_LABELS[ev.eccn[top]].astype(str), return_counts=True)):
                eccn_counts[label] += int(c)
            for j, d in enumerate(dests):
                for code, c in zip(*np.unique(ev.requirement[:, j], return_counts=True)):
                    counts[(d, REQUIREMENTS[int(code)])] += int(c)
            k = len(part.ids)
            lo, hi = max(0, skip - n), min(k, skip + per_page - n)
            for i in range(lo, hi):
                row = int(top[i])
                items.append({"product_id": int(part.ids[i]), "sku": part.skus[i],
                              "eccn": ECCN_LABELS[int(ev.eccn[row])], "status": STATUSES[int(ev.status[row])],
                              "licences": {d: {"requirement": REQUIREMENTS[int(ev.requirement[i, j])],
                                               "review_policy": POLICY_LABELS[int(ev.policy[i, j])]}
                                           for j, d in enumerate(dests)}})
            n += k
    by_dest: dict[str, dict[str, int]] = {}
    for (d, req), c in counts.items():
        by_dest.setdefault(d, {})[req] = c
    return Page(items, page, per_page, n, extra={
        "catalogue_id": catalogue_id, "as_of": as_of.isoformat(), "rule_version": version.number,
        "ruleset_revision": rb.revision, "destinations": dests, "transaction_type": transaction_type, "products": n,
        "eccn_counts": {("none" if k == "None" else k): v for k, v in eccn_counts.items()},
        "requirements": by_dest})
