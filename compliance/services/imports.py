"""Importing a catalogue file: stream its rows in batches (validated in this process or a pool of worker
processes), write each batch, resolve systems last, then store the report.

Every row goes through `ProductSchema` (the classify API's contract). Good rows are upserted by
SKU (re-importing a file creates no duplicates); bad rows are reported one line each as
``{"row": n, "field": "...", "problem": "..."}``; ``imported + rejected == rows_read`` always.
Rows are numbered from 1 in file order (CSV: the header is not a row; JSON Lines: blank lines are
skipped, not counted). Duplicate SKUs within one file: the last row wins; every earlier one
is reported as a warning (``"warning": true``), not as a rejection.

Every problem of a row is reported (one line each, same row number): a row with a bad ``tpp`` cell, a
bad ``datacenter`` cell gets two lines; ``rejected`` counts rows, not lines.

Its parts: import_formats.py (the format, the readers), import_cells.py (the CSV layout, the cell grammar),
import_rows.py (validating a batch), import_writer.py (the upserts).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import IO, Any, Callable, Iterator

from sqlalchemy import select, update

from ..db import Database
from ..engine.errors import NotFound
from ..models import Catalogue, ImportReport, Product
from .import_formats import detect_format, iter_rows
from .import_rows import init_worker, is_reference, prepare_batch, prepare_star, row_error
from .import_writer import write_payloads

BATCH_ROWS = 20_000
MAX_REPORTED = 100_000  # error lines kept in the stored report (counts stay exact beyond it)


@dataclass
class ImportResult:
    """What an import did (also stored as an ImportReport)."""

    catalogue_id: int
    filename: str
    format: str
    rows_read: int = 0
    imported: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0
    duplicates: int = 0
    errors: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    report_id: int | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.report_id, "catalogue_id": self.catalogue_id, "filename": self.filename,
                "format": self.format, "rows_read": self.rows_read, "imported": self.imported,
                "created": self.created, "updated": self.updated, "rejected": self.rejected,
                "duplicates": self.duplicates, "errors": self.errors, "warnings": self.warnings,
                "seconds": round(self.seconds, 3)}

    def _reject(self, entries: list[dict]) -> None:
        """One rejected row, with every problem found in it (one entry each)."""
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.extend(entries)


def _batches(rows: Iterator[tuple[int, Any]], size: int) -> Iterator[list[tuple[int, Any]]]:
    batch: list[tuple[int, Any]] = []
    for item in rows:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def import_file(db: Database, store, catalogue_id: int, stream: IO[bytes], fmt: str, filename: str = "",
                batch_rows: int = BATCH_ROWS, workers: int = 1, sheet: str | None = None,
                progress: Callable[[ImportResult], None] | None = None) -> ImportResult:
    """Validate and upsert every row of a file into a catalogue; store and return the report (finished)."""
    result = load_file(db, store, catalogue_id, stream, fmt, filename, batch_rows, workers, sheet, progress)
    with db.session() as s:
        rep = ImportReport(catalogue_id=catalogue_id, filename=filename[:500], format=fmt, status="done")
        s.add(rep)
        s.flush()
        store_report(s, result, rep)
    return result


def store_report(session, result: ImportResult, rep: ImportReport) -> None:
    """Copy a finished import's counts and rows into its report; touch the catalogue."""
    now = datetime.now(timezone.utc)
    rep.rows_read, rep.imported, rep.created = result.rows_read, result.imported, result.created
    rep.updated, rep.rejected, rep.seconds = result.updated, result.rejected, result.seconds
    rep.errors = result.errors + result.warnings
    rep.finished_at = rep.finished_at or now
    rep.started_at = rep.started_at or now - timedelta(seconds=result.seconds)
    session.execute(update(Catalogue).where(Catalogue.id == result.catalogue_id).values(updated_at=now))
    session.flush()
    result.report_id = rep.id


def load_file(db: Database, store, catalogue_id: int, stream: IO[bytes], fmt: str, filename: str = "",
              batch_rows: int = BATCH_ROWS, workers: int = 1, sheet: str | None = None,
              progress: Callable[[ImportResult], None] | None = None) -> ImportResult:
    """Validate and upsert every row of a file into a catalogue; the counts (no report stored).

    Streams the file in batches (memory stays flat for millions of rows). With workers > 1, batches
    are validated and turned into table rows by a pool of worker processes while this process writes
    (PostgreSQL COPY + one INSERT ... ON CONFLICT per batch). Systems whose components reference SKUs
    are resolved after every other row, against this file and the catalogue.
    """
    t0 = time.perf_counter()
    with db.session() as s:
        if s.get(Catalogue, catalogue_id) is None:
            raise NotFound(f"no catalogue {catalogue_id}")
    version, rulebook = store.current()
    result = ImportResult(catalogue_id, filename, fmt)
    as_copy = db.is_postgres
    seen: dict[str, int] = {}  # sku -> row it was last seen on
    with db.session() as s:  # an empty catalogue takes plain COPY until a SKU repeats across batches
        fresh = [s.scalar(select(Product.id).where(Product.catalogue_id == catalogue_id).limit(1)) is None]
    pending: dict[str, Any] = {}  # sku -> payload (last row wins within a write batch)
    deferred: list[tuple[int, dict]] = []
    timing = {"write": 0.0}

    def flush() -> None:
        if pending:
            tw = time.perf_counter()
            c, u = write_payloads(db, catalogue_id, pending, as_copy, plain_insert=fresh[0])
            result.created += c
            result.updated += u
            pending.clear()
            timing["write"] += time.perf_counter() - tw

    def take(outcomes: list[tuple]) -> None:
        for o in outcomes:
            if o[0] == "err":
                result.rows_read += 1
                result._reject([row_error(o[1], f, p) for f, p in o[2]])
            elif o[0] == "defer":
                deferred.append((o[1], o[2]))  # counted when resolved
            else:
                result.rows_read += 1
                _, row, sku, payload = o
                prev = seen.get(sku)
                if prev is not None:
                    result.duplicates += 1
                    if len(result.warnings) < MAX_REPORTED:
                        result.warnings.append({"row": prev, "field": "sku", "warning": True,
                                                "problem": f"duplicate SKU {sku!r}: row {row} replaces this row (last wins)"})
                    if sku in pending:
                        del pending[sku]  # keep insertion order = file order
                    else:
                        fresh[0] = False  # the earlier row is already stored: upsert from now on
                seen[sku] = row
                result.imported += 1
                pending[sku] = payload
        if len(pending) >= batch_rows:
            flush()
        if progress is not None:
            progress(result)

    rows = iter_rows(stream, fmt, convert_csv=False, sheet=sheet)
    batches = _batches(rows, batch_rows if workers <= 1 else min(batch_rows, 5000))
    if workers > 1:
        import multiprocessing as mp

        # spawn, not fork: the caller may have threads (Celery, Redis, the embedded executor) whose
        # locks a forked child could inherit held.
        pool = mp.get_context("spawn").Pool(workers, initializer=init_worker, initargs=(rulebook.content,))
        with pool:
            jobs = ((b, catalogue_id, version.revision, as_copy) for b in batches)
            it = pool.imap(prepare_star, jobs, chunksize=1)
            timing["wait_workers"] = 0.0
            while True:
                tw = time.perf_counter()
                try:
                    outcomes = next(it)
                except StopIteration:
                    break
                finally:
                    timing["wait_workers"] += time.perf_counter() - tw
                take(outcomes)
    else:
        for b in batches:
            take(prepare_batch(b, catalogue_id, version.revision, as_copy, rulebook))
    flush()
    if deferred:
        resolved = _resolve_references(db, catalogue_id, deferred, result)
        for row, raw in resolved:
            try:
                outcomes = prepare_batch([(row, raw)], catalogue_id, version.revision, as_copy, rulebook)
            except RecursionError:
                outcomes = [("err", row, [("components", "components nest too deeply (a cycle?)")])]
            if outcomes[0][0] == "defer":  # a reference that resolved to another reference
                outcomes = [("err", row, [("components", "component references must resolve to full products")])]
            take(outcomes)
        flush()
    timing["parse_validate"] = time.perf_counter() - t0 - timing["write"]
    result.seconds = time.perf_counter() - t0
    result.timings = timing
    assert result.imported + result.rejected == result.rows_read
    result.errors.sort(key=lambda e: e["row"])  # systems resolved last are reported in file order too
    return result


def _resolve_references(db: Database, catalogue_id: int, deferred: list[tuple[int, dict]],
                        result: ImportResult) -> list[tuple[int, dict]]:
    """Replace component SKU references by the referenced specs (this file's rows are stored by now)."""
    refs = {c["product"]["sku"] for _, raw in deferred for c in raw["components"] if is_reference(c)}
    with db.session() as s:
        known = dict(s.execute(select(Product.sku, Product.spec).where(
            Product.catalogue_id == catalogue_id, Product.sku.in_(refs))).all()) if refs else {}
    deferred_skus = {(raw.get("sku") or raw.get("name")): raw for _, raw in deferred}
    out = []
    for row, raw in deferred:
        comps, missing = [], []
        own = raw.get("sku") or raw.get("name")
        for c in raw["components"]:
            if is_reference(c):
                ref = c["product"]["sku"]
                target = known.get(ref)
                if target is None and ref in deferred_skus and ref != own:
                    target = deferred_skus[ref]  # a system made of systems from the same file
                if target is None:
                    missing.append(ref)
                    continue
                c = {**c, "product": target}
            comps.append(c)
        if missing:
            result.rows_read += 1
            result._reject([row_error(row, "components", f"unknown component SKU(s): {', '.join(missing)} "
                                                         "(not in this file or the catalogue)")])
            continue
        out.append((row, {**raw, "components": comps}))
    return out


def report_dict(rep: ImportReport) -> dict[str, Any]:
    """An ImportReport row as the API shows it (errors and duplicate warnings apart)."""
    errors = [e for e in rep.errors or [] if not e.get("warning")]
    warnings = [e for e in rep.errors or [] if e.get("warning")]
    return {"id": rep.id, "catalogue_id": rep.catalogue_id, "filename": rep.filename, "format": rep.format,
            "rows_read": rep.rows_read, "imported": rep.imported, "created": rep.created, "updated": rep.updated,
            "rejected": rep.rejected, "duplicates": len(warnings), "errors": errors, "warnings": warnings,
            "seconds": round(rep.seconds, 3), "created_at": rep.created_at.isoformat() if rep.created_at else None,
            "status": rep.status, "error": rep.error, "progress": progress_of(rep),
            "started_at": rep.started_at.isoformat() if rep.started_at else None,
            "finished_at": rep.finished_at.isoformat() if rep.finished_at else None}


def progress_of(rep: ImportReport) -> dict[str, Any]:
    """Rows read so far, bytes read of the total and the percentage (of bytes; 100 once done)."""
    total = rep.bytes_total
    done = rep.status == "done"
    read = total if done and total is not None else (rep.bytes_read or 0)
    percent = 100.0 if done else (round(100.0 * min(read, total) / total, 1) if total else 0.0)
    return {"rows_read": rep.rows_read, "bytes_read": read, "bytes_total": total, "percent": percent}


def import_path(db: Database, store, catalogue_id: int, path: str, fmt: str | None = None,
                workers: int = 1, sheet: str | None = None,
                progress: Callable[[int], None] | None = None) -> ImportResult:
    """Import a file from disk (CLI, sample catalogue, benchmark). `progress(bytes read so far)` is
    called after each batch of rows."""
    import os

    fmt = detect_format(path, None, fmt)
    with open(path, "rb") as fh:
        report = None if progress is None else (lambda _result: progress(fh.tell()))
        result = import_file(db, store, catalogue_id, fh, fmt, os.path.basename(path), workers=workers, sheet=sheet,
                             progress=report)
        if progress is not None:
            progress(os.path.getsize(path))
        return result
