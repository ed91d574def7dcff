"""Re-checking open orders after a list snapshot is imported or a rule version is published.

Every open order (held or released; not rejected) is re-screened and its lines re-evaluated, in id-ordered
chunks: per chunk, the distinct products are classified in one engine batch per (date, destination,
headquarters, transaction type) — those decided before under the same rules are not evaluated again — and
every distinct party of the chunk is screened once, in one call. Then per line:

* a released line with a reason it did not have when it was released (a party newly listed, a licence
  newly required) is held again: an `order_changes` row (kind `held`), the order held, webhook `order.held`;
* a held line that nothing holds any more is NOT released: its reasons are cleared, the order is flagged
  `needs_review` and an `order_changes` row (kind `no_longer_blocked`) is recorded, for an officer to release;
* a held line whose reasons changed gets the new reasons (kind `reasons_changed`).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..db import enqueue_after_commit
from ..models import ActivityEvent, Order, OrderChange, OrderLine, OrderRecheck, OrderRecheckChunk, WebhookSubscription
from . import jobs
from .orders import _classification, _line_reasons, _screening_reasons, classify_lines
from .paging import Page
from .screening import screen_parties
from .webhooks import enqueue_deliveries, enqueue_event

OPEN = ("held", "released")
CHUNK = 500
RECHECK_TASK = "compliance.orders.recheck"  # plans the job (start_recheck)
RECHECK_CHUNK_TASK = "compliance.orders.recheck_chunk"  # one chunk (run_recheck_chunk)
RECHECK_JOB = jobs.JobKind("order_recheck", OrderRecheck, OrderRecheckChunk, "recheck_id", RECHECK_CHUNK_TASK)


def _key(reason: dict) -> tuple:
    return (reason.get("code"), reason.get("entry_id") or reason.get("citation"), reason.get("party_role"))


def recheck_chunk(db, store, order_ids: list[int], cause: str, threshold: float, sample_path: str | None) -> dict:
    """Re-check the given open orders; counts of what changed."""
    counts, write = compute_recheck(db, store, order_ids, cause, threshold, sample_path)
    with db.session() as s:
        write(s)
    return counts


def compute_recheck(db, store, order_ids: list[int], cause: str, threshold: float, sample_path: str | None):
    """Read and evaluate the given open orders (no writes): the counts, filled in by `write(session)`, which
    re-reads the orders' statuses and lines in that session and applies the changes in bulk."""
    counts = {"orders": 0, "lines": 0, "held": 0, "no_longer_blocked": 0, "reasons_changed": 0}
    with db.session() as s:
        orders = {r.id: r for r in s.execute(select(Order.id, Order.order_date, Order.ship_to, Order.headquarters,
                                                    Order.transaction_type, Order.parties)
                                             .where(Order.id.in_(order_ids), Order.status.in_(OPEN)))}
        lines = s.execute(select(OrderLine.id, OrderLine.order_id, OrderLine.product)
                          .where(OrderLine.order_id.in_(list(orders)))
                          .order_by(OrderLine.order_id, OrderLine.seq)).all() if orders else []
    if not orders:
        return counts, lambda s: None
    groups: dict[tuple, list] = defaultdict(list)
    for ln in lines:
        o = orders[ln.order_id]
        groups[(o.order_date, o.ship_to, o.headquarters, o.transaction_type)].append(ln)
    decisions: dict[int, dict] = {}
    for (day, ship_to, hq, ttype), group in groups.items():
        # each distinct product of the group classified once (and not at all when decided before under the
        # same rules: services/orders.classify_lines keeps the decisions)
        found, _, _ = classify_lines(store, [ln.product for ln in group], day, ship_to, hq, ttype, fresh=True)
        for ln, d in zip(group, found):
            decisions[ln.id] = d
    flat = [(oid, p) for oid, o in orders.items() for p in o.parties]
    distinct: dict[tuple, int] = {}  # each distinct party of the chunk screened once
    for _, p in flat:
        distinct.setdefault((p["name"], p.get("country"), p.get("address")), len(distinct))
    answer = screen_parties(db, [{"name": n, "country": c, "address": a} for n, c, a in distinct], threshold,
                            sample_path)
    screening: dict[int, list[dict]] = defaultdict(list)
    for oid, p in flat:
        res = answer["results"][distinct[(p["name"], p.get("country"), p.get("address"))]]
        screening[oid].append({"role": p["role"], **res})
    party_reasons = {oid: _screening_reasons(sc) for oid, sc in screening.items()}

    def write(s) -> None:
        now = datetime.now(timezone.utc)
        # the chunk's orders and lines as they are now (an officer may have released or rejected meanwhile)
        live = {r.id: r for r in s.execute(select(Order.id, Order.reference, Order.screening)
                                           .where(Order.id.in_(list(orders)), Order.status.in_(OPEN)))}
        by_order: dict[int, list] = defaultdict(list)
        for ln in s.execute(select(OrderLine.id, OrderLine.order_id, OrderLine.seq, OrderLine.status,
                                   OrderLine.reasons)
                            .where(OrderLine.order_id.in_(list(live))).order_by(OrderLine.seq)):
            by_order[ln.order_id].append(ln)
        notify = bool(s.scalar(select(func.count()).select_from(WebhookSubscription)
                               .where(WebhookSubscription.active.is_(True))))
        line_rows, order_rows, change_rows, audit_rows = [], [], [], []
        deliveries: list[int] = []
        for oid, order in live.items():
            counts["orders"] += 1
            newly_held = flagged = False
            for ln in by_order[oid]:
                d = decisions.get(ln.id)
                if d is None:  # a line added since the chunk was read: the next re-check takes it
                    continue
                counts["lines"] += 1
                new = list(party_reasons[oid]) + _line_reasons(d, orders[oid].ship_to)
                old_keys, new_keys = {_key(r) for r in ln.reasons}, {_key(r) for r in new}
                kind = None
                row: dict = {}
                if ln.status == "released":
                    if new_keys - old_keys:
                        kind = "held"
                        row = {"status": "held", "release_basis": None, "released_by": None, "released_at": None,
                               "release_reason": None, "licence_id": None}
                        newly_held = True
                elif ln.status == "held":
                    if not new and ln.reasons:
                        kind = "no_longer_blocked"
                        flagged = True
                    elif new and new_keys != old_keys:
                        kind = "reasons_changed"
                if kind is None:
                    continue
                counts[kind] += 1
                change_rows.append({"order_id": oid, "line_id": ln.id, "line_seq": ln.seq, "cause": cause,
                                    "kind": kind, "old_status": "released" if kind == "held" else "held",
                                    "new_status": "held", "old_reasons": ln.reasons, "new_reasons": new,
                                    "created_at": now})
                line_rows.append({"id": ln.id, **row, "reasons": new, "eccn": d["classification"].get("eccn"),
                                  "classification": _classification(d), "licences": d["licences"]})
            row = {"id": oid, "checked_at": now}
            if order.screening != screening[oid]:
                row["screening"] = screening[oid]
            if newly_held:
                row.update(status="held", decided_by=None, decided_at=None)
                if notify:
                    deliveries += enqueue_event(s, "order.held", {"order_id": oid, "reference": order.reference,
                                                                  "cause": cause}, key=f"order.held:{oid}:{cause}")
            if flagged:
                row["needs_review"] = True
            order_rows.append(row)
            if newly_held or flagged:
                audit_rows.append({"actor": "system", "action": "order.recheck", "target": f"order:{oid}",
                                   "detail": {"cause": cause, "held": newly_held, "needs_review": flagged},
                                   "at": now})
        # in bulk: one executemany per shape of row (SQLAlchemy groups the rows by their keys)
        if line_rows:
            s.execute(update(OrderLine), line_rows)
        if order_rows:
            s.execute(update(Order), order_rows)
        if change_rows:
            s.execute(insert(OrderChange), change_rows)
        if audit_rows:
            s.execute(insert(ActivityEvent), audit_rows)
        enqueue_deliveries(s, deliveries)

    return counts, write


def recheck_open_orders(db, store, cause: str, threshold: float, sample_path: str | None,
                        chunk: int = CHUNK) -> dict:
    """Every open order, `chunk` orders at a time, in this process (no job rows: the CLI and tests)."""
    total = {"orders": 0, "lines": 0, "held": 0, "no_longer_blocked": 0, "reasons_changed": 0, "chunks": 0}
    last = 0
    while True:
        with db.session() as s:
            ids = list(s.scalars(select(Order.id).where(Order.status.in_(OPEN), Order.id > last)
                                 .order_by(Order.id).limit(chunk)))
        if not ids:
            return total
        for k, v in recheck_chunk(db, store, ids, cause, threshold, sample_path).items():
            total[k] += v
        total["chunks"] += 1
        last = ids[-1]


def open_order_count(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Order).where(Order.status.in_(OPEN)))


def request_recheck(session, cause: str) -> None:
    """Queue the re-check of every open order once the caller's transaction has committed (the task plans the
    job: services/jobs.py, one chunk task per CHUNK open orders)."""
    enqueue_after_commit(session, RECHECK_TASK, [cause])


# ---------------------------------------------------------------- the re-check as a job of services/jobs.py

def _open_ids():
    return select(Order.id).where(Order.status.in_(OPEN)).order_by(Order.id)


def start_recheck(db, cause: str, chunk_size: int | None = None) -> dict:
    """Plan the re-check of `cause` (once: a cause already planned is not planned again, so a redelivered
    task is harmless): the job and one chunk per `chunk_size` open orders, their tasks sent after commit."""
    chunk_size = chunk_size or CHUNK
    try:
        with db.session() as s:
            if s.scalar(select(OrderRecheck.id).where(OrderRecheck.cause == cause)) is not None:
                return {"cause": cause, "planned": False}
            job = OrderRecheck(cause=cause, status="pending", counts={})
            s.add(job)
            s.flush()
            chunks = [OrderRecheckChunk(recheck_id=job.id, seq=i, lo_id=lo, hi_id=hi, size=n, status="pending",
                                        attempts=0, counts={})
                      for i, (lo, hi, n) in enumerate(jobs.id_ranges(s, _open_ids(), chunk_size))]
            s.add_all(chunks)
            job.total = sum(c.size for c in chunks)
            s.flush()
            if chunks:
                jobs.enqueue_chunks(s, RECHECK_JOB, job.id, [c.id for c in chunks])
            else:
                jobs.finalize_in(s, RECHECK_JOB, job.id, _finalize)
            return {"cause": cause, "planned": True, "recheck_id": job.id, "chunks": len(chunks),
                    "orders": job.total}
    except IntegrityError:  # the same cause planned concurrently (UNIQUE(cause))
        return {"cause": cause, "planned": False}


def run_recheck_chunk(db, store, recheck_id: int, chunk_id: int, threshold: float, sample_path: str | None,
                      lease_seconds: float = 30.0) -> dict:
    """Claim, re-check and write one chunk (fenced: its writes apply once); the last one finalizes the job."""
    def compute(job: OrderRecheck, chunk: OrderRecheckChunk) -> jobs.ChunkWork:
        with db.session() as s:
            ids = list(s.scalars(_open_ids().where(Order.id >= chunk.lo_id, Order.id <= chunk.hi_id)))
        counts, write = compute_recheck(db, store, ids, job.cause, threshold, sample_path)

        def apply(session) -> None:
            write(session)
            session.execute(update(OrderRecheckChunk).where(OrderRecheckChunk.id == chunk.id)
                            .values(counts=dict(counts)).execution_options(synchronize_session=False))

        return jobs.ChunkWork(apply, result=counts)

    return jobs.run_chunk(db, RECHECK_JOB, recheck_id, chunk_id, compute, _finalize, lease_seconds)


def _finalize(s, job: OrderRecheck) -> None:
    """The job's counts summed from its chunks (not from task results)."""
    total = {"orders": 0, "lines": 0, "held": 0, "no_longer_blocked": 0, "reasons_changed": 0, "chunks": 0}
    for counts in s.scalars(select(OrderRecheckChunk.counts).where(OrderRecheckChunk.recheck_id == job.id)):
        total["chunks"] += 1
        for k, v in (counts or {}).items():
            if k in total:
                total[k] += v
    job.counts = total
    job.error = None


def fail_recheck_chunk(db, recheck_id: int, chunk_id: int, error: str) -> None:
    jobs.fail_chunk(db, RECHECK_JOB, recheck_id, chunk_id, error)


def sweep_rechecks(db, requeue_after: float) -> dict[str, int]:
    """Finalize complete re-checks; re-enqueue chunks whose lease expired or whose message may be lost."""
    return jobs.sweep(db, RECHECK_JOB, _finalize, requeue_after)


def recheck_view(job: OrderRecheck) -> dict:
    return {"id": job.id, "cause": job.cause, "status": job.status, "total": job.total, "counts": job.counts,
            "error": job.error, "created_at": job.created_at, "started_at": job.started_at,
            "finished_at": job.finished_at}


def list_rechecks(db, cause: str | None = None) -> list[dict]:
    with db.session() as s:
        q = select(OrderRecheck).order_by(OrderRecheck.id.desc())
        if cause:
            q = q.where(OrderRecheck.cause == cause)
        return [recheck_view(j) for j in s.scalars(q.limit(100))]


def list_changes(db, page: int, per_page: int, order_id: int | None = None, kind: str | None = None,
                 cause: str | None = None) -> dict:

    with db.session() as s:
        q = select(OrderChange)
        if order_id:
            q = q.where(OrderChange.order_id == order_id)
        if kind:
            q = q.where(OrderChange.kind == kind)
        if cause:
            q = q.where(OrderChange.cause == cause)
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        items = [{"id": c.id, "order_id": c.order_id, "line_id": c.line_id, "line_seq": c.line_seq, "cause": c.cause,
                  "kind": c.kind, "old_status": c.old_status, "new_status": c.new_status,
                  "old_reasons": c.old_reasons, "new_reasons": c.new_reasons, "created_at": c.created_at}
                 for c in s.scalars(q.order_by(OrderChange.id.desc()).offset((page - 1) * per_page).limit(per_page))]
        return Page(items, page, per_page, total)
