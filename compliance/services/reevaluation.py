"""Re-evaluation after a rule change, and the columnar comparison it shares with impact previews
and point-in-time diffs.

Two evaluations of the same product table (old vs new rulebook, or one rulebook at two dates) are
compared as numpy arrays: an outcome of product i at destination j changed when its ECCN, status,
licence requirement or review policy differs. Only the changed cells are turned into Python rows.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from itertools import repeat
from typing import Any, Iterable, Sequence

import numpy as np
from sqlalchemy import bindparam, func, select, update

from ..db import Database
from ..engine import Evaluation, Rulebook, evaluate
from ..engine.codes import ECCN_LABELS, POLICY_LABELS, REQUIREMENT_LABELS, STATUS_LABELS
from ..engine.vocabulary import REQUIREMENTS, STATUSES
from ..models import Catalogue, ChangeRecord, Product, ReevaluationChunk, ReevaluationRun, RuleVersion
from ..models.base import iso_utc, utcnow
from . import jobs
from .determinations import sync_reviews
from .paging import Page
from .product_columns import ChunkPart, load_chunk
from .webhooks import enqueue_deliveries

log = logging.getLogger(__name__)
RUN_JOB = jobs.JobKind("reevaluation", ReevaluationRun, ReevaluationChunk, "run_id", "compliance.reeval.chunk")


@dataclass
class ChangedCells:
    """The changed (product, destination) cells of one compared table."""

    rows: np.ndarray  # int[c] index into the part's products
    cols: np.ndarray  # int[c] index into destinations
    old_eccn: np.ndarray
    new_eccn: np.ndarray
    old_status: np.ndarray
    new_status: np.ndarray
    old_req: np.ndarray
    new_req: np.ndarray
    old_pol: np.ndarray
    new_pol: np.ndarray
    old: Evaluation
    new: Evaluation

    def __len__(self) -> int:
        return len(self.rows)

    def causes(self) -> list[str]:
        """Per changed cell: the licence rules matched under one evaluation and not the other, plus the
        deciding classification rules when the ECCN or status changed."""
        old_bits = self.old.rule_bits[self.rows, self.cols]
        new_bits = self.new.rule_bits[self.rows, self.cols]
        top_old = self.old.table.top[self.rows]
        top_new = self.new.table.top[self.rows]
        old_dec = self.old.decided_by[top_old]
        new_dec = self.new.decided_by[top_new]
        cls_changed = (self.old_eccn != self.new_eccn) | (self.old_status != self.new_status)
        old_ids = [r.id for r in self.old.rules.licence]
        new_ids = [r.id for r in self.new.rules.licence]
        old_cls = [r.id for r in self.old.rules.classification]
        new_cls = [r.id for r in self.new.rules.classification]
        cache: dict[tuple, str] = {}
        out = []
        for ob, nb, od, nd, cc in zip(old_bits.tolist(), new_bits.tolist(), old_dec.tolist(), new_dec.tolist(),
                                      cls_changed.tolist()):
            key = (ob, nb, od, nd, cc)
            hit = cache.get(key)
            if hit is None:
                a = {old_ids[b] for b in range(len(old_ids)) if ob >> b & 1}
                b_ = {new_ids[b] for b in range(len(new_ids)) if nb >> b & 1}
                cause = sorted(a ^ b_)
                if cc:
                    cause += [x for x in ((old_cls[od] if od >= 0 else None), (new_cls[nd] if nd >= 0 else None))
                              if x and x not in cause]
                if not cause:  # same rules matched, but their effect changed (e.g. an edited review policy)
                    cause = sorted(a | b_)
                hit = ",".join(cause)
                cache[key] = hit
            out.append(hit)
        return out


def compare(old: Evaluation, new: Evaluation) -> ChangedCells:
    """Cells whose ECCN, status, requirement or review policy differ between two evaluations."""
    top_o, top_n = old.table.top, new.table.top
    e_o, e_n = old.eccn[top_o], new.eccn[top_n]
    s_o, s_n = old.status[top_o], new.status[top_n]
    k, m = old.requirement.shape
    cls = (e_o != e_n) | (s_o != s_n)
    mask = (old.requirement != new.requirement) | (old.policy != new.policy)
    if m:
        mask |= cls[:, None]
    rows, cols = np.nonzero(mask)
    return ChangedCells(rows, cols, e_o[rows], e_n[rows], s_o[rows], s_n[rows],
                        old.requirement[rows, cols], new.requirement[rows, cols],
                        old.policy[rows, cols], new.policy[rows, cols], old, new)


def transition_counts(cells: ChangedCells, destinations: Sequence[str], counter: Counter) -> None:
    """Add (destination, old outcome, new outcome) -> count into `counter` (vectorised over cells)."""
    if not len(cells):
        return
    keys = np.stack([cells.cols, cells.old_eccn, cells.new_eccn, cells.old_req, cells.new_req, cells.old_pol,
                     cells.new_pol, cells.old_status, cells.new_status]).astype(np.int64).T
    uniq, counts = np.unique(keys, axis=0, return_counts=True)
    for row, c in zip(uniq.tolist(), counts.tolist()):
        counter[(destinations[row[0]], *row[1:])] += c


def render_transitions(counter: Counter) -> list[dict[str, Any]]:
    out = []
    for (dest, oe, ne, orq, nrq, op, np_, os_, ns_), c in counter.most_common():
        out.append({"destination": dest, "count": c,
                    "from": {"eccn": ECCN_LABELS[oe], "status": STATUSES[os_], "requirement": REQUIREMENTS[orq],
                             "review_policy": POLICY_LABELS[op]},
                    "to": {"eccn": ECCN_LABELS[ne], "status": STATUSES[ns_], "requirement": REQUIREMENTS[nrq],
                           "review_policy": POLICY_LABELS[np_]}})
    return out


def cell_items(cells: ChangedCells, ids: np.ndarray, skus: Sequence[str], destinations: Sequence[str],
               limit: int | None = None) -> list[dict[str, Any]]:
    n = len(cells) if limit is None else min(limit, len(cells))
    if n == 0:
        return []
    causes = cells.causes()[:n] if n else []
    out = []
    for x in range(n):
        r, c = int(cells.rows[x]), int(cells.cols[x])
        out.append({"product_id": int(ids[r]), "sku": skus[r], "destination": destinations[c],
                    "from": {"eccn": ECCN_LABELS[cells.old_eccn[x]], "status": STATUSES[cells.old_status[x]],
                             "requirement": REQUIREMENTS[cells.old_req[x]], "review_policy": POLICY_LABELS[cells.old_pol[x]]},
                    "to": {"eccn": ECCN_LABELS[cells.new_eccn[x]], "status": STATUSES[cells.new_status[x]],
                           "requirement": REQUIREMENTS[cells.new_req[x]], "review_policy": POLICY_LABELS[cells.new_pol[x]]},
                    "cause_rule_ids": [c_ for c_ in causes[x].split(",") if c_]})
    return out


def _catalogues(session) -> list[tuple[int, str, list[str]]]:
    return [(c.id, c.name, list(c.destinations or [])) for c in session.scalars(select(Catalogue).order_by(Catalogue.id))]


def _parts(session, catalogue_id: int, chunk_size: int) -> Iterable[ChunkPart]:
    """Every product of a catalogue, chunk by chunk."""
    for lo, hi, _ in jobs.id_ranges(session, _product_ids(catalogue_id), chunk_size):
        yield from load_chunk(session, catalogue_id, lo, hi)


def _product_ids(catalogue_id: int):
    return select(Product.id).where(Product.catalogue_id == catalogue_id).order_by(Product.id)


def impact_preview(db: Database, old_rb: Rulebook, new_rb: Rulebook, as_of: date,
                   destinations: list[str] | None = None, item_limit: int = 1000,
                   chunk_size: int = 200_000) -> dict[str, Any]:
    """Dry run over every catalogue: per catalogue, changed products x destinations and counts per transition."""
    t0 = time.perf_counter()
    catalogues_out = []
    total = changed_products = changed_rows = 0
    with db.session() as s:
        for cid, name, watched in _catalogues(s):
            dests = list(dict.fromkeys(destinations if destinations is not None else watched))
            counter: Counter = Counter()
            items: list[dict] = []
            n = n_changed = n_rows = 0
            for part in _parts(s, cid, chunk_size):
                old = evaluate(part.table, old_rb, as_of, dests)
                new = evaluate(part.table, new_rb, as_of, dests)
                cells = compare(old, new)
                n += len(part.ids)
                n_rows += len(cells)
                n_changed += len(np.unique(cells.rows))
                transition_counts(cells, dests, counter)
                if len(items) < item_limit:
                    items += cell_items(cells, part.ids, part.skus, dests, item_limit - len(items))
            total += n
            changed_products += n_changed
            changed_rows += n_rows
            catalogues_out.append({"id": cid, "name": name, "destinations": dests, "products": n,
                                   "changed_products": n_changed, "changed_rows": n_rows,
                                   "transitions": render_transitions(counter), "items": items,
                                   "items_truncated": n_rows > len(items)})
    return {"as_of": as_of.isoformat(), "total_products": total, "changed_products": changed_products,
            "changed_rows": changed_rows, "share_changed": (changed_products / total) if total else 0.0,
            "catalogues": catalogues_out, "seconds": round(time.perf_counter() - t0, 3)}


# ---------------------------------------------------------------- runs (a job of compliance.services.jobs)

def create_run(session, from_version_id: int | None, to_version_id: int, as_of: date,
               chunk_size: int) -> ReevaluationRun:
    """In the caller's (publish) transaction: the run and its chunks, sent once that transaction commits."""
    run = ReevaluationRun(from_version_id=from_version_id, to_version_id=to_version_id, as_of=as_of,
                          status="pending", counts={})
    session.add(run)
    session.flush()
    chunks = []
    for cid, _, _ in _catalogues(session):
        for lo, hi, n in jobs.id_ranges(session, _product_ids(cid), chunk_size):
            chunks.append(ReevaluationChunk(run_id=run.id, seq=len(chunks), catalogue_id=cid, lo_id=lo, hi_id=hi,
                                            size=n, status="pending", attempts=0, counts={}))
    session.add_all(chunks)
    run.total = sum(c.size for c in chunks)
    session.flush()
    if chunks:
        jobs.enqueue_chunks(session, RUN_JOB, run.id, [c.id for c in chunks])
    else:
        jobs.finalize_in(session, RUN_JOB, run.id, _finalize)
    return run


RECORD_FIELDS = ("run_id", "catalogue_id", "product_id", "sku", "destination", "as_of", "from_revision",
                 "to_revision", "old_eccn", "new_eccn", "old_status", "new_status", "old_requirement",
                 "new_requirement", "old_review_policy", "new_review_policy", "cause_rule_ids", "created_at")


def change_rows(run_id: int, catalogue_id: int, part: ChunkPart, cells: ChangedCells, destinations: Sequence[str],
                as_of: date, from_revision: str, to_revision: str, now: datetime) -> list[tuple]:
    """One change_records row (RECORD_FIELDS) per changed cell, labels looked up column-wise."""
    n = len(cells)
    if not n:
        return []
    rows = cells.rows
    skus = np.array(part.skus, dtype=object)[rows]
    dests = np.array(list(destinations), dtype=object)[cells.cols]
    return list(zip(repeat(run_id, n), repeat(catalogue_id, n), part.ids[rows].tolist(), skus.tolist(),
                    dests.tolist(), repeat(as_of, n), repeat(from_revision, n), repeat(to_revision, n),
                    ECCN_LABELS[cells.old_eccn].tolist(), ECCN_LABELS[cells.new_eccn].tolist(),
                    STATUS_LABELS[cells.old_status].tolist(), STATUS_LABELS[cells.new_status].tolist(),
                    REQUIREMENT_LABELS[cells.old_req].tolist(), REQUIREMENT_LABELS[cells.new_req].tolist(),
                    POLICY_LABELS[cells.old_pol].tolist(), POLICY_LABELS[cells.new_pol].tolist(),
                    cells.causes(), repeat(now, n)))


def insert_changes(session, rows: list[tuple]) -> None:
    """Insert change_records rows (RECORD_FIELDS); a row already recorded for its (run, product,
    destination) is skipped (UNIQUE from migration 0008), so a chunk applied again adds nothing.

    PostgreSQL: one COPY into a session-local staging table, then one INSERT ... SELECT ... ON CONFLICT
    DO NOTHING. SQLite: the same INSERT ... ON CONFLICT DO NOTHING, executemany."""
    if not rows:
        return
    conn = session.connection()
    cols = ", ".join(RECORD_FIELDS)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection  # psycopg.Connection, inside the session's transaction
        with raw.cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS change_records_stage ON COMMIT DELETE ROWS AS "
                        f"SELECT {cols} FROM change_records WITH NO DATA")
            cur.execute("DELETE FROM change_records_stage")  # rows of an earlier call in this transaction
            with cur.copy(f"COPY change_records_stage ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(f"INSERT INTO change_records ({cols}) SELECT {cols} FROM change_records_stage "
                        "ON CONFLICT DO NOTHING")
        return
    from sqlalchemy.dialects.sqlite import insert

    conn.execute(insert(ChangeRecord.__table__).on_conflict_do_nothing(),
                 [dict(zip(RECORD_FIELDS, row)) for row in rows])


def moved_standing(part: ChunkPart, ev: Evaluation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, eccn labels, status labels) of the part's products whose standing under `ev` differs from the
    stored one (compared in numpy; a product never classified has none stored, so it moves)."""
    top = ev.table.top
    eccn, status = ECCN_LABELS[ev.eccn[top]], STATUS_LABELS[ev.status[top]]
    n = len(part.ids)
    stored_eccn = part.eccn if part.eccn is not None else np.full(n, None, dtype=object)
    stored_status = part.status if part.status is not None else np.full(n, None, dtype=object)
    moved = np.asarray((eccn != stored_eccn) | (status != stored_status), dtype=bool)
    return part.ids[moved], eccn[moved], status[moved]


def update_standing(session, ids: np.ndarray, eccn: np.ndarray, status: np.ndarray, revision: str, day: date,
                    now: datetime) -> None:
    """Set the standing (eccn, status, classified_revision, classified_on) of the given products only:
    one UPDATE by primary key, executemany (SQLite and PostgreSQL alike)."""
    if not len(ids):
        return
    t = Product.__table__
    stmt = (update(t).where(t.c.id == bindparam("b_id"))
            .values(eccn=bindparam("b_eccn"), status=bindparam("b_status"), classified_revision=revision,
                    classified_on=day, updated_at=now))
    session.connection().execute(stmt, [{"b_id": i, "b_eccn": e, "b_status": st} for i, e, st in
                                        zip(ids.tolist(), eccn.tolist(), status.tolist())])


def run_chunk(db: Database, store, run_id: int, chunk_id: int, lease_seconds: float = 30.0) -> dict[str, Any]:
    """Run one chunk through the job mechanism (claim, compute, fenced write, finalize the run if last)."""
    return jobs.run_chunk(db, RUN_JOB, run_id, chunk_id, lambda r, c: _compute(db, store, r, c), _finalize,
                          lease_seconds)


def _compute(db: Database, store, run: ReevaluationRun, chunk: ReevaluationChunk) -> jobs.ChunkWork:
    """Evaluate one chunk under both revisions and diff them in numpy. The write inserts the changed cells'
    records in bulk (UNIQUE(run, product, destination) + ON CONFLICT DO NOTHING), updates the standing of
    only the products whose standing moved, and records determination reviews."""
    t0 = time.perf_counter()
    with db.session() as s:
        old_v = s.get(RuleVersion, run.from_version_id)
        new_v = s.get(RuleVersion, run.to_version_id)
        newest = s.scalar(select(func.max(RuleVersion.number)))
        cat = s.get(Catalogue, chunk.catalogue_id)
        dests = list(dict.fromkeys(cat.destinations or []))
        old_rb, new_rb = store.rulebook_for(old_v), store.rulebook_for(new_v)
        parts = load_chunk(s, chunk.catalogue_id, chunk.lo_id, chunk.hi_id)
        refresh = new_v.number == newest  # a later publish refreshes products itself
    t_load = time.perf_counter()
    as_of = run.as_of
    today = date.today()
    now = utcnow()
    records: list[tuple] = []
    moved: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    n_products = 0
    for part in parts:
        old = evaluate(part.table, old_rb, as_of, dests)
        new = evaluate(part.table, new_rb, as_of, dests)
        cells = compare(old, new)
        n_products += len(np.unique(cells.rows))
        records += change_rows(run.id, chunk.catalogue_id, part, cells, dests, as_of, old_rb.revision,
                               new_rb.revision, now)
        if refresh:
            moved.append(moved_standing(part, new if as_of == today else evaluate(part.table, new_rb, today, [])))
    n_moved = sum(len(m[0]) for m in moved)

    def write(s) -> None:
        insert_changes(s, records)
        for ids, eccn, status in moved:
            update_standing(s, ids, eccn, status, new_rb.revision, today, now)
        if refresh:  # determinations whose product's computed answer moved now need review
            enqueue_deliveries(s, sync_reviews(s, chunk.catalogue_id, "rule_change", run.id, lo_id=chunk.lo_id,
                                               hi_id=chunk.hi_id))

    t1 = time.perf_counter()
    counts = {"changed_rows": len(records), "changed_products": n_products, "updated_products": n_moved,
              "seconds": round(t1 - t0, 3), "load_seconds": round(t_load - t0, 3),
              "evaluate_seconds": round(t1 - t_load, 3)}
    return jobs.ChunkWork(write, values={"counts": counts}, result={"changed_rows": len(records)})


def _finalize(s, run: ReevaluationRun) -> None:
    """The run's totals from the database (not from task results), and its webhook (run once)."""
    CR = ChangeRecord
    mine = CR.run_id == run.id
    chunks = s.execute(select(func.count(), func.coalesce(func.sum(ReevaluationChunk.size), 0))
                       .where(ReevaluationChunk.run_id == run.id)).one()
    run.total = int(chunks[1])
    run.change_records = s.scalar(select(func.count()).select_from(CR).where(mine)) or 0
    run.changed_products = s.scalar(select(func.count(func.distinct(CR.product_id))).where(mine)) or 0
    by = s.execute(select(CR.destination, CR.old_requirement, CR.new_requirement, CR.old_review_policy,
                          CR.new_review_policy, func.count()).where(mine)
                   .group_by(CR.destination, CR.old_requirement, CR.new_requirement, CR.old_review_policy,
                             CR.new_review_policy)).all()
    run.counts = {"transitions": [{"destination": d, "from": {"requirement": a, "review_policy": c},
                                   "to": {"requirement": b, "review_policy": e}, "count": n}
                                  for d, a, b, c, e, n in sorted(by, key=lambda r: (-r[5], r[0]))],
                  "chunks": int(chunks[0]), "chunks_pending": 0}
    run.error = None
    if run.change_records > 0:
        from .webhooks import enqueue_event

        to_v = s.get(RuleVersion, run.to_version_id)
        from_v = s.get(RuleVersion, run.from_version_id) if run.from_version_id else None
        enqueue_deliveries(s, enqueue_event(s, "changes.published", {
            "run_id": run.id, "rule_version": to_v.number, "from_version": from_v.number if from_v else None,
            "from_revision": from_v.revision if from_v else None, "to_revision": to_v.revision,
            "as_of": run.as_of.isoformat(), "changed_products": run.changed_products,
            "change_records": run.change_records, "counts": run.counts["transitions"],
            "feed": f"/api/v1/changes?revision={to_v.revision}",
        }, key=f"run:{run.id}"))
    from .webhooks import enqueue_event

    to_v = s.get(RuleVersion, run.to_version_id)
    from_v = s.get(RuleVersion, run.from_version_id) if run.from_version_id else None
    enqueue_deliveries(s, enqueue_event(s, "reevaluation.completed", {
        "run_id": run.id, "rule_version": to_v.number, "from_version": from_v.number if from_v else None,
        "to_revision": to_v.revision, "as_of": run.as_of.isoformat(), "products": run.total,
        "changed_products": run.changed_products, "change_records": run.change_records,
    }, key=f"reevaluation:{run.id}"))


def fail_chunk(db: Database, run_id: int, chunk_id: int, error: str) -> None:
    jobs.fail_chunk(db, RUN_JOB, run_id, chunk_id, error)


def sweep_runs(db: Database, requeue_after: float) -> dict[str, int]:
    """Finalize complete runs; re-enqueue chunks whose lease expired or whose message may be lost."""
    return jobs.sweep(db, RUN_JOB, _finalize, requeue_after)


def run_view(run: ReevaluationRun, from_v: RuleVersion | None, to_v: RuleVersion) -> dict[str, Any]:
    return {"id": run.id, "status": run.status, "from_version": from_v.number if from_v else None,
            "to_version": to_v.number, "to_revision": to_v.revision, "as_of": run.as_of.isoformat(),
            "total": run.total, "changed_products": run.changed_products, "change_records": run.change_records,
            "counts": run.counts, "error": run.error,
            "created_at": iso_utc(run.created_at),
            "started_at": iso_utc(run.started_at),
            "finished_at": iso_utc(run.finished_at)}


def get_run(db: Database, run_id: int) -> dict[str, Any]:
    from ..engine.errors import NotFound

    with db.session() as s:
        run = s.get(ReevaluationRun, run_id)
        if run is None:
            raise NotFound(f"no re-evaluation run {run_id}")
        return run_view(run, s.get(RuleVersion, run.from_version_id) if run.from_version_id else None,
                        s.get(RuleVersion, run.to_version_id))


def list_runs(db: Database, page: int = 1, per_page: int = 50) -> Page:
    """Re-evaluation runs, newest first: one page of run views."""
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(ReevaluationRun))
        runs = s.scalars(select(ReevaluationRun).order_by(ReevaluationRun.id.desc())
                         .offset((page - 1) * per_page).limit(per_page)).all()
        return Page([run_view(r, s.get(RuleVersion, r.from_version_id) if r.from_version_id else None,
                              s.get(RuleVersion, r.to_version_id)) for r in runs], page, per_page, total)
