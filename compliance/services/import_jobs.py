"""A catalogue import as a job on the one job mechanism (compliance.services.jobs), like an audit.

``create_import`` stores the upload in the database (``import_uploads``: the job's one chunk, with its lease;
``import_upload_parts``: the bytes, 8 MiB a row) beside a pending ``import_reports`` row, after reading the
file's head the way the import will (an unreadable file is a 422 at once, no job made); the task
``compliance.imports.run`` is sent after that transaction commits. ``run_import`` (the task's service call)
claims the upload, streams it through `imports.load_file` under a heartbeat while the report's progress
(rows read, bytes read of the total) is written about twice a second, then in the fenced finish stores
the counts, the rows; finalize deletes the upload. A file that turns out unreadable fails the job
(``fail_import``: status failed, the error; the upload deleted). The sweeper (``sweep_imports``) sends an
import again whose worker died (its lease expired) or whose message was lost: the rerun upserts the same
rows by SKU (nothing doubles; rows the dead attempt wrote count as updated).
"""
from __future__ import annotations

import hashlib
import io
import time
from datetime import datetime, timezone
from typing import IO, Any, Callable

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from ..db import Database
from ..engine.errors import ComplianceError, NotFound
from ..models import Catalogue, ImportReport, ImportUpload, ImportUploadPart
from . import idempotency as idem
from . import jobs
from .import_formats import iter_rows
from .imports import ImportResult, load_file, store_report

IMPORT_JOB = jobs.JobKind("import", ImportReport, ImportUpload, "import_id", "compliance.imports.run")
PART_BYTES = 8 << 20  # one import_upload_parts row
JOB_BATCH_ROWS = 5_000  # rows per write batch of a job: progress moves at least this often
PROGRESS_SECONDS = 0.5  # the report's progress is written at most this often


class _Replayed(Exception):
    """The Idempotency-Key was answered before: roll the new upload back, answer with that import."""

    def __init__(self, import_id: int):
        super().__init__(import_id)
        self.import_id = import_id


def create_import(db: Database, catalogue_id: int, stream: IO[bytes], fmt: str, filename: str = "",
                  sheet: str | None = None, actor: str = "", enqueue: bool = True,
                  idempotency: tuple[str, str, str] | None = None) -> int:
    """Store the upload with a pending report in one transaction; its task is sent after commit (unless
    enqueue=False: `start_import` sends it). Returns the report's id.

    `idempotency` = (scope, key, path): a retry with the same key, file, format and sheet answers with the
    first import (no second job); the same key with another request is a 422."""
    claim: list[idem.Request] = []  # the key's Request, once the body's digest is known
    try:
        return _create(db, catalogue_id, stream, fmt, filename, sheet, actor, enqueue, idempotency, claim)
    except _Replayed as hit:
        return hit.import_id
    except IntegrityError:  # a concurrent request with the same key won: answer as it did
        hit = idem.replay(db, claim[0]) if claim else None
        if hit is None:
            raise
        return hit[0]


def _create(db: Database, catalogue_id: int, stream: IO[bytes], fmt: str, filename: str, sheet: str | None,
            actor: str, enqueue: bool, idempotency: tuple[str, str, str] | None, claim: list[idem.Request]) -> int:
    with db.session() as s:
        if s.get(Catalogue, catalogue_id) is None:
            raise NotFound(f"no catalogue {catalogue_id}")
        rep = ImportReport(catalogue_id=catalogue_id, filename=filename[:500], format=fmt, status="pending",
                           errors=[], bytes_read=0, bytes_total=0, requested_by=actor[:200])
        s.add(rep)
        s.flush()
        up = ImportUpload(import_id=rep.id, seq=0, sheet=sheet, size=0, status="pending", attempts=0)
        s.add(up)
        s.flush()
        digest = hashlib.sha256()
        size = seq = 0
        while piece := stream.read(PART_BYTES):
            digest.update(piece)
            s.add(ImportUploadPart(upload_id=up.id, seq=seq, data=bytes(piece)))
            s.flush()
            s.expunge_all()  # the parts are written: do not keep them in memory
            size += len(piece)
            seq += 1
        rep = s.get(ImportReport, rep.id)
        up = s.get(ImportUpload, up.id)
        rep.bytes_total = up.size = size
        if idempotency is not None:
            req = _request(idempotency, digest.hexdigest(), filename, fmt, sheet)
            claim.append(req)
            hit = idem.replay(db, req)  # 422 if the key came with another request
            if hit is not None:
                raise _Replayed(hit[0])
            idem.remember(s, req, "import", rep.id, 202)
        # the file's head, read as the import will read it: an unreadable file is refused now (422)
        next(iter(iter_rows(io.BufferedReader(_PartsReader(lambda n: _part(s, up.id, n))), fmt, sheet=sheet)), None)
        if enqueue:
            jobs.enqueue_chunks(s, IMPORT_JOB, rep.id, [up.id])
        return rep.id


def _request(idempotency: tuple[str, str, str], sha256: str, filename: str, fmt: str,
             sheet: str | None) -> idem.Request:
    scope, key, path = idempotency
    return idem.Request.of(scope, key, "POST", path,
                           {"sha256": sha256, "filename": filename, "format": fmt, "sheet": sheet})


def wait_for(db: Database, import_id: int, timeout: float, interval: float = 0.05) -> str:
    """The import's status once it is done or failed, or after `timeout` seconds (a form that shows a small
    file's report at once, a big one's progress)."""
    deadline = time.monotonic() + timeout
    while True:
        with db.session() as s:
            status = s.scalar(select(ImportReport.status).where(ImportReport.id == import_id))
        if status not in jobs.OPEN or time.monotonic() >= deadline:
            return str(status)
        time.sleep(interval)


def start_import(db: Database, import_id: int) -> int:
    """Send the import's task if its upload is not done (after this call's commit); returns how many."""
    with db.session() as s:
        ids = jobs.undone_chunk_ids(s, IMPORT_JOB, import_id)
        jobs.enqueue_chunks(s, IMPORT_JOB, import_id, ids)
    return len(ids)


def _part(session, upload_id: int, seq: int) -> bytes | None:
    data = session.scalar(select(ImportUploadPart.data).where(ImportUploadPart.upload_id == upload_id,
                                                               ImportUploadPart.seq == seq))
    return None if data is None else bytes(data)


class _PartsReader(io.RawIOBase):
    """An upload's bytes read part after part (`fetch(seq)` -> bytes, None after the last)."""

    def __init__(self, fetch: Callable[[int], bytes | None]):
        self._fetch = fetch
        self._seq = 0
        self._buf = memoryview(b"")
        self.position = 0  # bytes handed out so far

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        while not len(self._buf):
            data = self._fetch(self._seq)
            if data is None:
                return 0
            self._seq += 1
            self._buf = memoryview(data)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        self.position += n
        return n


# ---------------------------------------------------------------- run

def run_import(db: Database, store, import_id: int, upload_id: int, lease_seconds: float = 30.0) -> dict[str, Any]:
    """Claim the upload, import it under a heartbeat, store the report in the fenced finish, finalize.

    A file found unreadable while it is read (a ComplianceError: retrying cannot help) fails the import here;
    other errors propagate (the task retries transient ones; one that fails for good calls `fail_import`)."""
    try:
        return _run(db, store, import_id, upload_id, lease_seconds)
    except ComplianceError as exc:
        fail_import(db, import_id, upload_id, exc.message)
        return {"chunk": upload_id, "failed": exc.message}


def _run(db: Database, store, import_id: int, upload_id: int, lease_seconds: float) -> dict[str, Any]:
    return jobs.run_chunk(db, IMPORT_JOB, import_id, upload_id, lambda rep, up: _compute(db, store, rep, up),
                          _finalize, lease_seconds)


def run_now(db: Database, store, import_id: int, lease_seconds: float = 30.0) -> None:
    """Run an import in this thread (a synchronous request with an Idempotency-Key): a no-op if it is done or
    another attempt holds its lease. An error fails the import, then propagates."""
    with db.session() as s:
        ids = jobs.undone_chunk_ids(s, IMPORT_JOB, import_id)
    for upload_id in ids:
        try:
            _run(db, store, import_id, upload_id, lease_seconds)
        except Exception as exc:
            fail_import(db, import_id, upload_id, exc.message if isinstance(exc, ComplianceError)
                        else f"{type(exc).__name__}: {exc}")
            raise


def _compute(db: Database, store, rep: ImportReport, up: ImportUpload) -> jobs.ChunkWork:
    def fetch(seq: int) -> bytes | None:
        with db.session() as s:
            return _part(s, up.id, seq)

    raw = _PartsReader(fetch)
    last = [0.0]

    def progress(result: ImportResult) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_SECONDS:
            return
        last[0] = now
        with db.session() as s:
            s.execute(update(ImportReport).where(ImportReport.id == rep.id, ImportReport.status == "running")
                      .values(rows_read=result.rows_read, imported=result.imported, rejected=result.rejected,
                              created=result.created, updated=result.updated, bytes_read=raw.position)
                      .execution_options(synchronize_session=False))

    result = load_file(db, store, rep.catalogue_id, io.BufferedReader(raw), rep.format, rep.filename,
                       batch_rows=JOB_BATCH_ROWS, sheet=up.sheet, progress=progress)

    def write(s) -> None:
        report = s.get(ImportReport, rep.id)
        report.bytes_read = up.size
        store_report(s, result, report)

    return jobs.ChunkWork(write=write, result={"rows_read": result.rows_read, "imported": result.imported,
                                               "rejected": result.rejected})


def _finalize(session, rep: ImportReport) -> None:
    """The import is done: its upload is no longer needed."""
    _delete_upload(session, rep.id)


def _delete_upload(session, import_id: int) -> None:
    ids = list(session.scalars(select(ImportUpload.id).where(ImportUpload.import_id == import_id)))
    if ids:
        session.execute(delete(ImportUploadPart).where(ImportUploadPart.upload_id.in_(ids))
                        .execution_options(synchronize_session=False))
        session.execute(delete(ImportUpload).where(ImportUpload.id.in_(ids))
                        .execution_options(synchronize_session=False))


def fail_import(db: Database, import_id: int, upload_id: int, error: str) -> None:
    """The import failed for good (an unreadable file, retries exhausted): mark it, delete its upload."""
    with db.session() as s:
        s.execute(update(ImportReport).where(ImportReport.id == import_id, ImportReport.status.in_(jobs.OPEN))
                  .values(status="failed", error=error[:2000], finished_at=datetime.now(timezone.utc))
                  .execution_options(synchronize_session=False))
        _delete_upload(s, import_id)


def sweep_imports(db: Database, requeue_after: float) -> dict[str, int]:
    """Finalize imports whose finalize was lost; send again those whose worker died or whose message was lost."""
    return jobs.sweep(db, IMPORT_JOB, _finalize, requeue_after)
