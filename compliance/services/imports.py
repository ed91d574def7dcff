"""Bulk catalogue imports from CSV, JSON and JSON Lines.

Every row goes through `ProductSchema` (the classify API's contract). Good rows are upserted by
SKU (re-importing a file creates no duplicates); bad rows are reported one line each as
``{"row": n, "field": "...", "problem": "..."}``; ``imported + rejected == rows_read`` always.
Rows are numbered from 1 in file order (CSV: the header is not a row; JSON Lines: blank lines are
skipped and not counted). Duplicate SKUs within one file: the last row wins and every earlier one
is reported as a warning (``"warning": true``), not as a rejection.

CSV layout (header row required; column order free; empty cell = field not given):

==========================  ===============================================================
column                      value
==========================  ===============================================================
sku, name, vendor, family   text (``name`` required; ``sku`` defaults to ``name``)
kind                        ``ic`` (default), ``hbm`` or ``system``
datacenter                  ``true`` / ``false`` (case-insensitive)
tpp, die_area_mm2,          numbers (``.`` decimal point, no thousands separators)
io_bandwidth_gb_per_s,
memory_bandwidth_gb_per_s,
package_area_mm2,
transistors
throughput                  ``fmt:tops`` items joined by ``;``, e.g. ``fp8:1979;fp16:989.5``;
                            a sparse figure is ``fmt:tops:sparse`` (``fp8:3958:sparse``)
dense_<fmt>_tops,           per-format alternative to ``throughput``, e.g. ``dense_fp8_tops``
sparse_<fmt>_tops           (may be combined with ``throughput`` for other formats)
logic_dies                  ``area[:np|planar]`` items joined by ``;``, e.g. ``814:np;120:planar``
                            (``np`` = non-planar; no suffix: process unknown, the answer says so)
components                  ``SKU*count`` items joined by ``;``, e.g. ``H100-SXM*8;CPU-X*2``
                            (count defaults to 1). SKUs refer to products of the same file or
                            already in the catalogue.
process, release_date,      text
notes
source_url                  one source URL (stored as ``sources: [{"url": ...}]``)
==========================  ===============================================================

In JSON / JSON Lines a component may also be a reference ``{"product": {"sku": "X"}, "count": 8}``
(an object with only a ``sku``), resolved the same way as CSV components.
"""
from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import IO, Any, Iterator

from marshmallow import ValidationError
from sqlalchemy import select, update

from ..db import Database
from ..engine import build_table, evaluate
from ..engine.errors import InvalidInput, NotFound
from ..engine.vocabulary import FORMAT_BITS
from ..models import Catalogue, ImportReport, Product
from ..schemas.product import ProductSchema
from ..schemas.product_loader import default_loader
from .determinations import sync_reviews
from .product_columns import product_columns, table_from_rows
from .webhooks import enqueue_deliveries

FORMATS = ("csv", "json", "jsonl")
TEXT_COLUMNS = ("sku", "name", "vendor", "family", "kind", "process", "release_date", "hbm_packaging", "notes")
NUMBER_COLUMNS = ("tpp", "die_area_mm2", "io_bandwidth_gb_per_s", "memory_bandwidth_gb_per_s", "package_area_mm2",
                  "transistors")
OTHER_COLUMNS = ("datacenter", "throughput", "logic_dies", "components", "source_url")
PER_FORMAT_COLUMNS = {f"{kind}_{fmt}_tops": (fmt, f"{kind}_tops") for fmt in FORMAT_BITS for kind in ("dense", "sparse")}
CSV_COLUMNS = TEXT_COLUMNS + NUMBER_COLUMNS + OTHER_COLUMNS + tuple(PER_FORMAT_COLUMNS)
BATCH_ROWS = 20_000
MAX_REPORTED = 100_000  # error lines kept in the stored report (counts stay exact beyond it)


class RowError(Exception):
    """A row that cannot become a product: which field and what is wrong."""

    def __init__(self, field_name: str, problem: str):
        super().__init__(problem)
        self.field = field_name
        self.problem = problem

    def __reduce__(self):
        # Rows travel to the validation pool pickled; the default (cls, self.args) would call
        # RowError(problem) in the worker, which then dies unpickling its task and the import hangs.
        return (type(self), (self.field, self.problem))


# ---------------------------------------------------------------- parsing

def detect_format(filename: str | None, content_type: str | None = None, explicit: str | None = None) -> str:
    """csv / json / jsonl from an explicit choice, the file name, or the content type."""
    if explicit:
        fmt = explicit.lower().lstrip(".")
        fmt = {"ndjson": "jsonl"}.get(fmt, fmt)
        if fmt not in FORMATS:
            raise InvalidInput(f"unknown format {explicit!r}; use csv, json or jsonl",
                               {"format": [f"must be one of csv, json, jsonl, got {explicit!r}"]})
        return fmt
    name = (filename or "").lower()
    for suffix, fmt in ((".csv", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json")):
        if name.endswith(suffix):
            return fmt
    ctype = (content_type or "").split(";")[0].strip().lower()
    fmt = {"text/csv": "csv", "application/json": "json", "application/x-ndjson": "jsonl",
           "application/jsonl": "jsonl"}.get(ctype)
    if fmt:
        return fmt
    raise InvalidInput("cannot tell the file format: name the file .csv, .json or .jsonl, or pass format=",
                       {"format": ["unknown; give format=csv|json|jsonl"]})


def iter_rows(stream: IO[bytes], fmt: str, convert_csv: bool = True) -> Iterator[tuple[int, dict | RowError]]:
    """(row number, raw product dict or RowError) for every row of the file (CSV rows stay
    unconverted `CsvRow`s when convert_csv is False: the prepare step converts them)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="" if fmt == "csv" else None)
    try:
        if fmt == "csv":
            yield from _iter_csv(text, convert_csv)
        elif fmt == "jsonl":
            yield from _iter_jsonl(text)
        else:
            yield from _iter_json(text)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                           {"file": ["not UTF-8 text"]}) from None
    finally:
        text.detach()


def _iter_json(text: IO[str]) -> Iterator[tuple[int, dict | RowError]]:
    try:
        data = json.load(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"file is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                           {"file": [f"invalid JSON: {exc.msg} at line {exc.lineno}"]}) from None
    if isinstance(data, dict) and isinstance(data.get("products"), list):
        data = data["products"]
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise InvalidInput("JSON file must hold a list of products or {\"products\": [...]}",
                           {"file": ["expected a list of products or {\"products\": [...]}"]})
    for i, item in enumerate(data, 1):
        yield i, item if isinstance(item, dict) else RowError("_row", f"expected an object, got {type(item).__name__}")


def _iter_jsonl(text: IO[str]) -> Iterator[tuple[int, dict | RowError]]:
    n = 0
    for line in text:
        if not line.strip():
            continue
        n += 1
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield n, RowError("_row", f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        yield n, item if isinstance(item, dict) else RowError("_row", f"expected an object, got {type(item).__name__}")


def _iter_csv(text: IO[str], convert: bool = True) -> Iterator[tuple[int, dict | RowError]]:
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput("file is empty: a CSV import needs a header row", {"file": ["empty"]}) from None
    except csv.Error as exc:
        raise InvalidInput(f"unreadable CSV header: {exc}", {"file": [str(exc)]}) from None
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown or "name" not in header:
        problems = []
        if unknown:
            problems.append(f"unknown column(s): {', '.join(repr(u[:40]) for u in unknown[:10])}")
        if "name" not in header:
            problems.append("missing required column 'name'")
        raise InvalidInput("bad CSV header: " + "; ".join(problems) + f" (known columns: {', '.join(CSV_COLUMNS[:20])}, ...)",
                           {"header": problems})
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise InvalidInput(f"bad CSV header: column(s) listed twice: {', '.join(dup)}", {"header": [f"duplicate {dup}"]})
    width = len(header)
    n = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            n += 1
            yield n, RowError("_row", f"unreadable CSV row: {exc}")
            continue
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        n += 1
        if len(cells) != width:
            yield n, RowError("_row", f"expected {width} cells, got {len(cells)}")
            continue
        if not convert:
            yield n, CsvRow(zip(header, cells))
            continue
        try:
            yield n, csv_row_to_spec(dict(zip(header, cells)))
        except RowError as exc:
            yield n, exc


def _number(col: str, text: str) -> float | int:
    try:
        v = float(text)
    except ValueError:
        raise RowError(col, f"must be a number, got {text!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise RowError(col, f"must be a finite number, got {text!r}")
    return int(v) if v.is_integer() and "." not in text and "e" not in text.lower() else v


def csv_row_to_spec(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row (column -> cell text) as a product spec for ProductSchema (see the module doc)."""
    spec: dict[str, Any] = {}
    for col in TEXT_COLUMNS:
        v = row.get(col, "").strip()
        if v:
            spec[col] = v
    for col in NUMBER_COLUMNS:
        v = row.get(col, "").strip()
        if v:
            spec[col] = _number(col, v)
    dc = row.get("datacenter", "").strip().lower()
    if dc:
        if dc not in ("true", "false"):
            raise RowError("datacenter", f"must be true or false, got {row['datacenter']!r}")
        spec["datacenter"] = dc == "true"
    throughput: list[dict[str, Any]] = []
    for item in filter(None, (p.strip() for p in row.get("throughput", "").split(";"))):
        parts = [p.strip() for p in item.split(":")]
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2].lower() not in ("sparse", "dense")):
            raise RowError("throughput", f"expected 'format:tops' or 'format:tops:sparse', got {item!r}")
        key = "sparse_tops" if len(parts) == 3 and parts[2].lower() == "sparse" else "dense_tops"
        throughput.append({"format": parts[0].lower(), key: _number("throughput", parts[1])})
    for col, (fmt, key) in PER_FORMAT_COLUMNS.items():
        v = row.get(col, "").strip()
        if v:
            throughput.append({"format": fmt, key: _number(col, v)})
    if throughput:
        spec["throughput"] = throughput
    dies = []
    for item in filter(None, (p.strip() for p in row.get("logic_dies", "").split(";"))):
        parts = [p.strip() for p in item.split(":")]
        if len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("np", "planar")):
            raise RowError("logic_dies", f"expected 'area' or 'area:np' or 'area:planar', got {item!r}")
        dies.append({"area_mm2": _number("logic_dies", parts[0]),
                     **({"non_planar": parts[1].lower() == "np"} if len(parts) == 2 else {})})
    if dies:
        spec["logic_dies"] = dies
    comps = []
    for item in filter(None, (p.strip() for p in row.get("components", "").split(";"))):
        sku, _, count = item.rpartition("*") if "*" in item else (item, "", "1")
        try:
            n = int(count)
        except ValueError:
            raise RowError("components", f"count must be a whole number in {item!r}") from None
        if not sku.strip():
            raise RowError("components", f"missing SKU in {item!r}")
        comps.append({"product": {"sku": sku.strip()}, "count": n})
    if comps:
        spec["components"] = comps
    url = row.get("source_url", "").strip()
    if url:
        spec["sources"] = [{"url": url}]
    return spec


# ---------------------------------------------------------------- validation helpers

def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(messages, dict):
        for k, v in messages.items():
            k = str(k)
            path = k if not prefix else (f"{prefix}.{k}" if k != "_schema" else prefix)
            out += _flatten(v, path)
    elif isinstance(messages, list):
        for m in messages:
            out += _flatten(m, prefix) if not isinstance(m, str) else [(prefix or "_row", m)]
    else:
        out.append((prefix or "_row", str(messages)))
    return out


def row_error(row: int, field_name: str, problem: str) -> dict[str, Any]:
    return {"row": row, "field": field_name, "problem": problem}


def _validation_error(row: int, exc: ValidationError) -> dict[str, Any]:
    pairs = _flatten(exc.messages)
    first = pairs[0][0] if pairs else "_row"
    return row_error(row, first, "; ".join(f"{f}: {p}" if f != first else p for f, p in pairs))


def _is_reference(comp: Any) -> bool:
    return (isinstance(comp, dict) and isinstance(comp.get("product"), dict)
            and set(comp["product"]) == {"sku"})


def _has_references(raw: dict) -> bool:
    comps = raw.get("components")
    return isinstance(comps, list) and any(_is_reference(c) for c in comps)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


# ---------------------------------------------------------------- the import

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

    def _reject(self, entry: dict) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(entry)


class CsvRow(dict):
    """A CSV row's cells by column, not yet converted (conversion runs in the prepare step)."""


def _prepare(items: list[tuple[int, Any]], catalogue_id: int, revision: str, as_copy: bool,
             rulebook=None) -> list[tuple]:
    """Validate a batch of rows and build their Product rows. Runs in a worker process for big files.

    Returns ("ok", row, sku, payload) | ("err", row, field, problem) | ("defer", row, raw) per row,
    in input order; payload is a COPY text line (PostgreSQL) or a column dict.
    """
    rulebook = rulebook if rulebook is not None else _WORKER_STATE["rulebook"]
    loader = default_loader()
    out: list[tuple] = []
    good: list[tuple[int, dict, dict]] = []
    for row, raw in items:
        if isinstance(raw, CsvRow):
            try:
                raw = csv_row_to_spec(raw)
            except RowError as exc:
                raw = exc
        if isinstance(raw, RowError):
            out.append(("err", row, raw.field, raw.problem))
            continue
        if _has_references(raw):
            out.append(("defer", row, raw))
            continue
        try:
            spec = loader.load(raw)
        except ValidationError as exc:
            e = _validation_error(row, exc)
            out.append(("err", row, e["field"], e["problem"]))
            continue
        spec["sku"] = raw["sku"] = spec.get("sku") or spec["name"]
        out.append(None)  # placeholder, filled below in order
        good.append((len(out) - 1, spec, raw))
    if good:
        rows = product_rows(catalogue_id, [g[1] for g in good], rulebook, revision, [g[2] for g in good],
                            jsonable=False)
        for (pos, spec, _), r in zip(good, rows):
            out[pos] = ("ok", out_row(items, pos, out), spec["sku"], _copy_line(r) if as_copy else r)
    return out


def out_row(items, pos, out) -> int:
    """The file row number of output position `pos` (outputs and inputs are 1:1, in order)."""
    return items[pos][0]


_WORKER_STATE: dict[str, Any] = {}


def _copy_value(v: Any) -> str:
    if v is None:
        return "\\N"
    if v is True:
        return "t"
    if v is False:
        return "f"
    if isinstance(v, str):
        return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if isinstance(v, (dict, list)):
        return _copy_value(json.dumps(v, separators=(",", ":")))
    return str(v)


def _copy_line(r: dict) -> str:
    """One products_stage row in COPY text format (tab-separated, \\N for NULL)."""
    return "\t".join(_copy_value(r[f]) for f in PRODUCT_FIELDS) + "\n"


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
                batch_rows: int = BATCH_ROWS, workers: int = 1) -> ImportResult:
    """Validate and upsert every row of a file into a catalogue; store and return the report.

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
            c, u = _write_payloads(db, catalogue_id, pending, as_copy, plain_insert=fresh[0])
            result.created += c
            result.updated += u
            pending.clear()
            timing["write"] += time.perf_counter() - tw

    def take(outcomes: list[tuple]) -> None:
        for o in outcomes:
            if o[0] == "err":
                result.rows_read += 1
                result._reject(row_error(o[1], o[2], o[3]))
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

    rows = iter_rows(stream, fmt, convert_csv=False)
    batches = _batches(rows, batch_rows if workers <= 1 else min(batch_rows, 5000))
    if workers > 1:
        import multiprocessing as mp

        # spawn, not fork: the caller may have threads (Celery, Redis, the embedded executor) whose
        # locks a forked child could inherit held.
        pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(rulebook.content,))
        with pool:
            jobs = ((b, catalogue_id, version.revision, as_copy) for b in batches)
            it = pool.imap(_prepare_star, jobs, chunksize=1)
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
            take(_prepare(b, catalogue_id, version.revision, as_copy, rulebook))
    flush()
    if deferred:
        resolved = _resolve_references(db, catalogue_id, deferred, result)
        for row, raw in resolved:
            try:
                outcomes = _prepare([(row, raw)], catalogue_id, version.revision, as_copy, rulebook)
            except RecursionError:
                outcomes = [("err", row, "components", "components nest too deeply (a cycle?)")]
            if outcomes[0][0] == "defer":  # a reference that resolved to another reference
                outcomes = [("err", row, "components", "component references must resolve to full products")]
            take(outcomes)
        flush()
    timing["parse_validate"] = time.perf_counter() - t0 - timing["write"]
    result.seconds = time.perf_counter() - t0
    result.timings = timing
    assert result.imported + result.rejected == result.rows_read
    result.errors.sort(key=lambda e: e["row"])  # systems resolved last are reported in file order too
    with db.session() as s:
        rep = ImportReport(catalogue_id=catalogue_id, filename=filename[:500], format=fmt,
                           rows_read=result.rows_read, imported=result.imported, created=result.created,
                           updated=result.updated, rejected=result.rejected,
                           errors=result.errors + result.warnings, seconds=result.seconds)
        s.add(rep)
        s.execute(update(Catalogue).where(Catalogue.id == catalogue_id).values(updated_at=datetime.now(timezone.utc)))
        s.flush()
        result.report_id = rep.id
    return result


def _init_worker(rulebook_content: dict) -> None:
    """Pool initializer: the pinned rulebook, rebuilt once per worker process."""
    from ..engine import Rulebook

    _WORKER_STATE["rulebook"] = Rulebook(rulebook_content)


def _prepare_star(args) -> list[tuple]:
    return _prepare(*args)


def _resolve_references(db: Database, catalogue_id: int, deferred: list[tuple[int, dict]],
                        result: ImportResult) -> list[tuple[int, dict]]:
    """Replace component SKU references by the referenced specs (this file's rows are stored by now)."""
    refs = {c["product"]["sku"] for _, raw in deferred for c in raw["components"] if _is_reference(c)}
    with db.session() as s:
        known = dict(s.execute(select(Product.sku, Product.spec).where(
            Product.catalogue_id == catalogue_id, Product.sku.in_(refs))).all()) if refs else {}
    deferred_skus = {(raw.get("sku") or raw.get("name")): raw for _, raw in deferred}
    out = []
    for row, raw in deferred:
        comps, missing = [], []
        own = raw.get("sku") or raw.get("name")
        for c in raw["components"]:
            if _is_reference(c):
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
            result._reject(row_error(row, "components", f"unknown component SKU(s): {', '.join(missing)} "
                                                        "(not in this file or the catalogue)"))
            continue
        out.append((row, {**raw, "components": comps}))
    return out


def _write_payloads(db: Database, catalogue_id: int, pending: dict[str, Any], as_copy: bool,
                    plain_insert: bool = False) -> tuple[int, int]:
    """Write one batch of prepared rows; returns (created, updated). `plain_insert`: every SKU is
    known to be new (empty catalogue, no repeats so far), so COPY straight into products (the
    UNIQUE constraint still guards it)."""
    with db.session() as s:
        if as_copy and plain_insert:
            conn = s.connection().connection.driver_connection
            lines = list(pending.values())
            with conn.cursor() as cur, cur.copy(f"COPY products ({', '.join(PRODUCT_FIELDS)}) FROM STDIN") as copy:
                for i in range(0, len(lines), 2000):
                    copy.write("".join(lines[i:i + 2000]))
            return len(lines), 0
        if as_copy:
            return _copy_upsert_lines(s, list(pending.values()))
        return _sqlite_upsert(s, catalogue_id, list(pending.values()))


def report_dict(rep: ImportReport) -> dict[str, Any]:
    """An ImportReport row as the API shows it (errors and duplicate warnings apart)."""
    errors = [e for e in rep.errors or [] if not e.get("warning")]
    warnings = [e for e in rep.errors or [] if e.get("warning")]
    return {"id": rep.id, "catalogue_id": rep.catalogue_id, "filename": rep.filename, "format": rep.format,
            "rows_read": rep.rows_read, "imported": rep.imported, "created": rep.created, "updated": rep.updated,
            "rejected": rep.rejected, "duplicates": len(warnings), "errors": errors, "warnings": warnings,
            "seconds": round(rep.seconds, 3), "created_at": rep.created_at.isoformat() if rep.created_at else None}


# ---------------------------------------------------------------- writing

def standing(specs: list[dict], cols: list[dict], rulebook, revision: str, day: date) -> list[tuple]:
    """(eccn, status) today under the current rules, for each product (one vectorised pass)."""

    n = len(specs)
    out: list[tuple] = [(None, None)] * n
    plain = [i for i, c in enumerate(cols) if not c["has_components"]]
    systems = [i for i, c in enumerate(cols) if c["has_components"]]
    if plain:
        rows = [(0, cols[i]["sku"], cols[i]["kind"], cols[i]["tpp"], cols[i]["performance_density"], cols[i]["pd_na"],
                 cols[i]["io_bandwidth"], cols[i]["memory_bandwidth_density"], cols[i]["dram_bandwidth"],
                 cols[i]["transistors"], cols[i]["datacenter"], cols[i]["model_key"]) for i in plain]
        _, _, table = table_from_rows(rows)
        ev = evaluate(table, rulebook, day)
        for i, e, st in zip(plain, ev.top_eccn_labels(), ev.top_status_labels()):
            out[i] = (e or None, st)
    if systems:
        ev = evaluate(build_table([specs[i] for i in systems]), rulebook, day)
        for i, e, st in zip(systems, ev.top_eccn_labels(), ev.top_status_labels()):
            out[i] = (e or None, st)
    return out


PRODUCT_FIELDS = ("catalogue_id", "sku", "name", "vendor", "family", "kind", "spec", "tpp", "tpp_source",
                  "performance_density", "pd_na", "io_bandwidth", "memory_bandwidth_density", "dram_bandwidth",
                  "transistors", "datacenter", "model_key", "has_components", "eccn", "status",
                  "classified_revision", "classified_on", "created_at", "updated_at")
UPDATE_FIELDS = tuple(f for f in PRODUCT_FIELDS if f not in ("catalogue_id", "sku", "created_at"))


def product_rows(catalogue_id: int, specs: list[dict], rulebook, revision: str,
                 stored: list[dict] | None = None, jsonable: bool = True) -> list[dict]:
    """Full Product column dicts (metrics + current standing) for validated specs.

    `stored` is the wire form of each spec (what the client sent); default: dumped by ProductSchema."""
    if stored is None:
        schema = ProductSchema()
        stored = [schema.dump(s) for s in specs]
    today = date.today()
    now = datetime.now(timezone.utc)
    cols = [product_columns(s) for s in specs]
    stand = standing(specs, cols, rulebook, revision, today)
    rows = []
    for wire, c, (eccn, status) in zip(stored, cols, stand):
        rows.append({**c, "catalogue_id": catalogue_id, "spec": _jsonable(wire) if jsonable else wire, "eccn": eccn, "status": status,
                     "classified_revision": revision, "classified_on": today, "created_at": now, "updated_at": now})
    return rows


def write_products(db: Database, catalogue_id: int, specs: list[dict], rulebook, revision: str,
                   stored: list[dict] | None = None) -> tuple[int, int]:
    """Upsert validated specs by SKU in one transaction; returns (created, updated)."""
    if not specs:
        return 0, 0
    rows = product_rows(catalogue_id, specs, rulebook, revision, stored)
    with db.session() as s:
        if db.is_postgres:
            counts = _copy_upsert_lines(s, [_copy_line(r) for r in rows])
        else:
            counts = _sqlite_upsert(s, catalogue_id, rows)
        # determinations of the written products whose computed answer moved now need review
        enqueue_deliveries(s, sync_reviews(s, catalogue_id, "spec_change", skus=[r["sku"] for r in rows]))
    return counts


def _sqlite_upsert(session, catalogue_id: int, rows: list[dict]) -> tuple[int, int]:
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    skus = [r["sku"] for r in rows]
    existing: set[str] = set()
    for i in range(0, len(skus), 500):
        existing.update(session.scalars(select(Product.sku).where(Product.catalogue_id == catalogue_id,
                                                                  Product.sku.in_(skus[i:i + 500]))))
    stmt = sqlite_insert(Product.__table__)
    stmt = stmt.on_conflict_do_update(index_elements=["catalogue_id", "sku"],
                                      set_={f: stmt.excluded[f] for f in UPDATE_FIELDS})
    session.execute(stmt, rows)
    return len(skus) - len(existing), len(existing)


def _copy_upsert_lines(session, lines: list[str]) -> tuple[int, int]:
    """PostgreSQL: COPY into a temporary staging table, then one INSERT ... ON CONFLICT DO UPDATE
    that reports how many rows were new (xmax = 0) and how many replaced."""
    conn = session.connection().connection.driver_connection  # psycopg.Connection
    cols = ", ".join(PRODUCT_FIELDS)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS products_stage ON COMMIT DELETE ROWS AS "
                    f"SELECT {cols} FROM products WITH NO DATA")
        with cur.copy(f"COPY products_stage ({cols}) FROM STDIN") as copy:
            for i in range(0, len(lines), 2000):
                copy.write("".join(lines[i:i + 2000]))
        sets = ", ".join(f"{f} = EXCLUDED.{f}" for f in UPDATE_FIELDS)
        cur.execute(f"WITH up AS (INSERT INTO products ({cols}) SELECT {cols} FROM products_stage "
                    f"ON CONFLICT (catalogue_id, sku) DO UPDATE SET {sets} RETURNING (xmax = 0) AS created) "
                    f"SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created) FROM up")
        created, updated = cur.fetchone()
    return int(created), int(updated)


def import_path(db: Database, store, catalogue_id: int, path: str, fmt: str | None = None,
                workers: int = 1) -> ImportResult:
    """Import a file from disk (CLI, sample catalogue, benchmark)."""
    import os

    fmt = detect_format(path, None, fmt)
    with open(path, "rb") as fh:
        return import_file(db, store, catalogue_id, fh, fmt, os.path.basename(path), workers=workers)
