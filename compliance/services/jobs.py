"""Chunked jobs: the one mechanism behind audits, re-evaluations and every later batch job.

A job is a row (``status`` pending|running|done|failed, ``error``, ``started_at``, ``finished_at``)
with chunk rows (``status``, ``lo_id``/``hi_id``/``size``, ``attempts``, ``started_at``, ``finished_at``,
``lease_owner``, ``lease_expires_at``, ``enqueued_at``). A `JobKind` names the two models, the chunk's
foreign key to its job and the Celery task that runs one chunk (it takes ``(job_id, chunk_id)``).

The life of a job, and the functions a job's service calls:

``id_ranges(session, ids, size)``
    Plan: split an ordered id query into ``(lo_id, hi_id, n)`` ranges. The service inserts the job and
    its chunks and calls ``enqueue_chunks(session, kind, job_id, chunk_ids)`` in the same transaction:
    the chunk tasks are sent after commit (`compliance.db.enqueue_after_commit`), never on rollback.
``run_chunk(db, kind, job_id, chunk_id, compute, finalize, lease_seconds)``
    1. *claim*: one conditional UPDATE gives the chunk a lease (a fresh owner token, now + lease) if it
       is not done and its lease is free or expired; otherwise the call is a no-op (a duplicate message).
    2. ``compute(job, chunk) -> ChunkWork`` reads and evaluates; a heartbeat thread extends the lease
       every lease/3 seconds meanwhile.
    3. *fenced finish*: one transaction marks the chunk done WHERE ``lease_owner`` is still ours, then
       applies ``work.write(session)``. If the lease was lost (expired and taken by another worker), the
       fence matches no row and the transaction rolls back: a chunk's writes are never applied twice.
    4. *finalize once*: ``UPDATE job SET status='done' WHERE open AND no chunk is undone``; the single
       caller whose UPDATE matched runs ``finalize(session, job)`` in that transaction. No chord.
``sweep(db, kind, finalize, requeue_after)``
    Finalizes jobs whose finalize was lost, re-enqueues chunks whose lease expired (their worker died)
    and pending chunks never sent (broker down) or sent more than ``requeue_after`` seconds ago.
``fail_chunk(db, kind, job_id, chunk_id, error)``
    A chunk that failed for good (non-transient error, retries exhausted) fails its job.

Transient errors are retried by Celery (``autoretry_for`` on the chunk task); a failed attempt releases
its lease so the retry can claim the chunk at once.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence

from sqlalchemy import Integer, Select, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from ..db import Database, enqueue_after_commit

log = logging.getLogger(__name__)
OPEN = ("pending", "running")


@dataclass(frozen=True)
class JobKind:
    """What the mechanism needs to know about one kind of job."""

    name: str
    job: type  # the job model
    chunk: type  # the chunk model
    job_fk: str  # the chunk column holding the job's id
    task: str  # Celery task name, called with (job_id, chunk_id)

    @property
    def fk(self):
        return getattr(self.chunk, self.job_fk)


@dataclass
class ChunkWork:
    """What a chunk's compute step hands to the fenced finish."""

    write: Callable[[Session], None]  # applies the chunk's writes inside the fenced transaction
    values: dict[str, Any] = field(default_factory=dict)  # chunk columns set when it is marked done
    result: dict[str, Any] = field(default_factory=dict)  # small counts returned by the task


def _now() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- plan

def id_ranges(session: Session, ids: Select, size: int) -> list[tuple[int, int, int]]:
    """Split the ids selected by `ids` (one column, ordered ascending) into ranges of at most `size`.

    The database numbers the ids and groups them (a window function), so only one row per range
    leaves it, not every id."""
    size = max(1, int(size))
    sub = ids.order_by(None).subquery()
    col = sub.c[0]
    # (row number - 1) / size with both integers: integer division on PostgreSQL and SQLite alike
    group = (func.row_number().over(order_by=col) - 1).self_group().op("/", return_type=Integer)(size).label("g")
    numbered = select(col.label("id"), group).subquery()
    rows = session.connection().execute(
        select(func.min(numbered.c.id), func.max(numbered.c.id), func.count())
        .group_by(numbered.c.g).order_by(numbered.c.g)).all()
    return [(int(lo), int(hi), int(n)) for lo, hi, n in rows]


def enqueue_chunks(session: Session, kind: JobKind, job_id: int, chunk_ids: Sequence[int]) -> None:
    """Send the chunk tasks after this transaction commits; stamp `enqueued_at` (cleared if unsent)."""
    if not chunk_ids:
        return
    C = kind.chunk
    ids = [int(c) for c in chunk_ids]
    session.execute(update(C).where(C.id.in_(ids)).values(enqueued_at=_now())
                    .execution_options(synchronize_session=False))
    bind = session.get_bind()
    for cid in ids:
        enqueue_after_commit(session, kind.task, [int(job_id), cid], on_unsent=lambda cid=cid: _unsent(bind, kind, cid))


def _unsent(bind, kind: JobKind, chunk_id: int) -> None:
    """The chunk's message never reached the broker: let the next sweep send it."""
    C = kind.chunk
    with Session(bind) as s, s.begin():
        s.execute(update(C).where(C.id == chunk_id, C.lease_owner.is_(None)).values(enqueued_at=None))


# ---------------------------------------------------------------- run

class LeaseLost(Exception):
    """The chunk's lease was taken over (it expired): this attempt's writes were rolled back."""


@dataclass(frozen=True)
class Claim:
    owner: str
    job: Any  # detached job row
    chunk: Any  # detached chunk row


def new_owner() -> str:
    """A lease owner token unique to one attempt (host, process, random)."""
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def claim_chunk(db: Database, kind: JobKind, job_id: int, chunk_id: int, lease_seconds: float) -> Claim | None:
    """Take the chunk's lease if it is not done and nobody holds a live lease on it; else None."""
    C, J = kind.chunk, kind.job
    owner = new_owner()
    now = _now()
    with db.session() as s:
        claimed = s.execute(
            update(C).where(C.id == chunk_id, kind.fk == job_id, C.status.in_(OPEN),
                            or_(C.lease_owner.is_(None), C.lease_expires_at < now),
                            exists().where(J.id == job_id, J.status.in_(OPEN)))
            .values(status="running", lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds),
                    attempts=C.attempts + 1, started_at=now)
            .execution_options(synchronize_session=False)).rowcount
        if claimed != 1:
            return None
        s.execute(update(J).where(J.id == job_id, J.status == "pending").values(status="running", started_at=now)
                  .execution_options(synchronize_session=False))
        job, chunk = s.get(J, job_id), s.get(C, chunk_id)
        s.expunge_all()
    return Claim(owner, job, chunk)


class Heartbeat:
    """Extends a chunk's lease every lease/3 seconds on a daemon thread while its work runs."""

    def __init__(self, db: Database, kind: JobKind, chunk_id: int, owner: str, lease_seconds: float):
        self.db, self.kind, self.chunk_id, self.owner, self.lease = db, kind, chunk_id, owner, lease_seconds
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{kind.name}-{chunk_id}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        C = self.kind.chunk
        while not self._stop.wait(self.lease / 3):
            try:
                with self.db.session() as s:
                    n = s.execute(update(C).where(C.id == self.chunk_id, C.lease_owner == self.owner)
                                  .values(lease_expires_at=_now() + timedelta(seconds=self.lease))
                                  .execution_options(synchronize_session=False)).rowcount
            except Exception as exc:  # a DB hiccup: the next beat tries again; the fence stays safe
                log.warning("%s chunk %s heartbeat failed: %s", self.kind.name, self.chunk_id, exc)
                continue
            if n != 1:
                self.lost = True
                log.warning("%s chunk %s: lease lost to another worker", self.kind.name, self.chunk_id)
                return


def _compute(compute: Callable[[Any, Any], ChunkWork], job: Any, chunk: Any) -> ChunkWork:
    """The compute step of one chunk (tests/integration/slow_worker.py slows it in a real worker)."""
    return compute(job, chunk)


def finish_chunk(db: Database, kind: JobKind, claim: Claim, work: ChunkWork) -> bool:
    """Fenced finish: mark done and apply the writes in one transaction, only if the lease is still ours."""
    C = kind.chunk
    try:
        with db.session() as s:
            fenced = s.execute(
                update(C).where(C.id == claim.chunk.id, C.lease_owner == claim.owner, C.status == "running")
                .values(status="done", lease_owner=None, lease_expires_at=None, finished_at=_now(), **work.values)
                .execution_options(synchronize_session=False)).rowcount
            if fenced != 1:
                raise LeaseLost()
            work.write(s)
    except LeaseLost:
        log.warning("%s %s chunk %s: lease lost before finishing; writes discarded", kind.name,
                    getattr(claim.chunk, kind.job_fk), claim.chunk.id)
        return False
    return True


def release(db: Database, kind: JobKind, claim: Claim) -> None:
    """Give a lease back after a failed attempt, so that a retry can claim the chunk at once."""
    C = kind.chunk
    with db.session() as s:
        s.execute(update(C).where(C.id == claim.chunk.id, C.lease_owner == claim.owner)
                  .values(lease_owner=None, lease_expires_at=None).execution_options(synchronize_session=False))


def run_chunk(db: Database, kind: JobKind, job_id: int, chunk_id: int, compute: Callable[[Any, Any], ChunkWork],
              finalize: Callable[[Session, Any], None], lease_seconds: float) -> dict[str, Any]:
    """Claim, compute (under a heartbeat), fenced finish, finalize the job if this was its last chunk."""
    claim = claim_chunk(db, kind, job_id, chunk_id, lease_seconds)
    if claim is None:
        return {"chunk": chunk_id, "skipped": True}
    try:
        with Heartbeat(db, kind, chunk_id, claim.owner, lease_seconds):
            work = _compute(compute, claim.job, claim.chunk)
        finished = finish_chunk(db, kind, claim, work)
    except BaseException:
        try:
            release(db, kind, claim)
        except Exception:
            log.exception("%s chunk %s: could not release its lease", kind.name, chunk_id)
        raise
    if not finished:
        return {"chunk": chunk_id, "lease_lost": True}
    finalized = finalize_if_complete(db, kind, job_id, finalize)
    return {"chunk": chunk_id, **work.result, "finalized": finalized}


# ---------------------------------------------------------------- finalize, fail

def finalize_in(session: Session, kind: JobKind, job_id: int, finalize: Callable[[Session, Any], None]) -> bool:
    """In `session`: mark the job done if it is open and every chunk is done, then run `finalize` (once)."""
    J, C = kind.job, kind.chunk
    now = _now()
    undone = exists().where(kind.fk == job_id, C.status != "done")
    won = session.execute(update(J).where(J.id == job_id, J.status.in_(OPEN), ~undone)
                          .values(status="done", finished_at=now)
                          .execution_options(synchronize_session=False)).rowcount
    if won != 1:
        return False
    job = session.get(J, job_id)
    session.refresh(job)
    if job.started_at is None:
        job.started_at = now
    finalize(session, job)
    return True


def finalize_if_complete(db: Database, kind: JobKind, job_id: int, finalize: Callable[[Session, Any], None]) -> bool:
    with db.session() as s:
        return finalize_in(s, kind, job_id, finalize)


def fail_chunk(db: Database, kind: JobKind, job_id: int, chunk_id: int, error: str) -> None:
    """A chunk failed for good: mark it and its job failed (the job keeps the first error)."""
    C, J = kind.chunk, kind.job
    with db.session() as s:
        seq = s.scalar(select(C.seq).where(C.id == chunk_id))
        s.execute(update(C).where(C.id == chunk_id, C.status != "done")
                  .values(status="failed", lease_owner=None, lease_expires_at=None)
                  .execution_options(synchronize_session=False))
        s.execute(update(J).where(J.id == job_id, J.status.in_(OPEN))
                  .values(status="failed", error=f"chunk {seq} failed: {error}"[:2000], finished_at=_now())
                  .execution_options(synchronize_session=False))


# ---------------------------------------------------------------- sweep

def sweep(db: Database, kind: JobKind, finalize: Callable[[Session, Any], None],
          requeue_after: float) -> dict[str, int]:
    """Finalize complete jobs; re-enqueue chunks whose lease expired, or never sent / sent long ago."""
    J, C = kind.job, kind.chunk
    with db.session() as s:
        open_ids = list(s.scalars(select(J.id).where(J.status.in_(OPEN))))
    finalized = sum(1 for job_id in open_ids if finalize_if_complete(db, kind, job_id, finalize))
    now = _now()
    with db.session() as s:
        expired = and_(C.lease_owner.is_not(None), C.lease_expires_at < now)
        unsent = and_(C.lease_owner.is_(None),
                      or_(C.enqueued_at.is_(None), C.enqueued_at < now - timedelta(seconds=requeue_after)))
        rows = s.execute(select(C.id, kind.fk).join(J, J.id == kind.fk)
                         .where(J.status.in_(OPEN), C.status.in_(OPEN), or_(expired, unsent))
                         .order_by(C.id)).all()
        if rows:
            # An expired lease is dropped: if its owner is alive after all, its fenced finish fails.
            s.execute(update(C).where(C.id.in_([r[0] for r in rows]), expired)
                      .values(status="pending", lease_owner=None, lease_expires_at=None)
                      .execution_options(synchronize_session=False))
        by_job: dict[int, list[int]] = {}
        for cid, jid in rows:
            by_job.setdefault(jid, []).append(cid)
        for jid, cids in by_job.items():
            enqueue_chunks(s, kind, jid, cids)
    if rows:
        log.info("sweep %s: re-enqueued %d chunks of %d jobs", kind.name, len(rows), len(by_job))
    return {"finalized": finalized, "enqueued_chunks": len(rows)}


def undone_chunk_ids(session: Session, kind: JobKind, job_id: int) -> list[int]:
    C = kind.chunk
    return list(session.scalars(select(C.id).where(kind.fk == job_id, C.status != "done").order_by(C.seq)))
