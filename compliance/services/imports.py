"""Bulk catalogue imports from CSV (comma, semicolon or tab separated; .tsv), XLSX, JSON and JSON Lines.

Every row goes through `ProductSchema` (the classify API's contract). Good rows are upserted by
SKU (re-importing a file creates no duplicates); bad rows are reported one line each as
``{"row": n, "field": "...", "problem": "..."}``; ``imported + rejected == rows_read`` always.
Rows are numbered from 1 in file order (CSV: the header is not a row; JSON Lines: blank lines are
skipped and not counted). Duplicate SKUs within one file: the last row wins and every earlier one
is reported as a warning (``"warning": true``), not as a rejection.

Every problem of a row is reported (one line each, same row number): a row with a bad ``tpp`` and a
bad ``datacenter`` cell gets two lines; ``rejected`` counts rows, not lines.

CSV separators: the header decides. Comma, semicolon and tab are tried and the one that splits the
header into the most known column names wins (``.tsv`` / ``format=tsv``: tab). In a semicolon-separated
file (European spreadsheet exports) a number may use a decimal comma (``989,5``). A cell that starts with
``'`` and then ``=``, ``+``, ``-`` or ``@`` (how exports neutralise formulas) is read without the quote.

XLSX: the first sheet, or the one named by ``sheet=``; the first row is the header, the same columns as
CSV; number cells are read as numbers, text cells as CSV cells, formula cells by their saved value.

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
eccn, status,               written by the catalogue export; ignored on import
classified_revision,
classified_on, computed_tpp,
performance_density
==========================  ===============================================================

In JSON / JSON Lines a component may also be a reference ``{"product": {"sku": "X"}, "count": 8}``
(an object with only a ``sku``), resolved the same way as CSV components.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import IO, Any, Callable, Iterator

from marshmallow import ValidationError
from sqlalchemy import select, update

from ..db import Database
from ..engine import build_table, evaluate
from ..engine.errors import InvalidInput, NotFound
from ..engine.vocabulary import FORMAT_BITS
from ..models import Catalogue, ImportReport, Product
from ..schemas.common import NUL_PROBLEM, nul_paths
from ..schemas.product import ProductSchema
from ..schemas.product_loader import default_loader
from .determinations import sync_reviews
from .product_columns import ROW_COLUMNS, product_columns, table_from_rows
from .webhooks import enqueue_deliveries

FORMATS = ("csv", "tsv", "xlsx", "json", "jsonl")
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DELIMITERS = (",", ";", "\t")
NEUTRALISED = ("=", "+", "-", "@", "\t", "\r")  # a CSV export writes these first characters after a quote
TEXT_COLUMNS = ("sku", "name", "vendor", "family", "kind", "process", "release_date", "hbm_packaging", "notes")
NUMBER_COLUMNS = ("tpp", "die_area_mm2", "io_bandwidth_gb_per_s", "memory_bandwidth_gb_per_s", "package_area_mm2",
                  "transistors")
OTHER_COLUMNS = ("datacenter", "throughput", "logic_dies", "components", "source_url")
PER_FORMAT_COLUMNS = {f"{kind}_{fmt}_tops": (fmt, f"{kind}_tops") for fmt in FORMAT_BITS for kind in ("dense", "sparse")}
CSV_COLUMNS = TEXT_COLUMNS + NUMBER_COLUMNS + OTHER_COLUMNS + tuple(PER_FORMAT_COLUMNS)
# Written by the catalogue export (the product's standing and computed metrics), ignored on import, so an
# exported file can be edited and imported back as it is.
EXPORT_ONLY_COLUMNS = ("eccn", "status", "classified_revision", "classified_on", "computed_tpp", "performance_density")
BATCH_ROWS = 20_000
MAX_REPORTED = 100_000  # error lines kept in the stored report (counts stay exact beyond it)


class RowError(Exception):
    """A row that cannot become a product: which field and what is wrong (`problems`: every one)."""

    def __init__(self, field_name: str, problem: str, more: list[tuple[str, str]] | None = None):
        super().__init__(problem)
        self.field = field_name
        self.problem = problem
        self.problems = [(field_name, problem)] + list(more or [])

    def __reduce__(self):
        # Rows travel to the validation pool pickled; the default (cls, self.args) would call
        # RowError(problem) in the worker, which then dies unpickling its task and the import hangs.
        return (type(self), (self.field, self.problem, self.problems[1:]))


# ---------------------------------------------------------------- parsing

def detect_format(filename: str | None, content_type: str | None = None, explicit: str | None = None) -> str:
    """csv / tsv / xlsx / json / jsonl from an explicit choice, the file name, or the content type."""
    known = "csv, tsv, xlsx, json or jsonl"
    if explicit:
        fmt = explicit.lower().lstrip(".")
        fmt = {"ndjson": "jsonl"}.get(fmt, fmt)
        if fmt not in FORMATS:
            raise InvalidInput(f"unknown format {explicit!r}; use {known}",
                               {"format": [f"must be one of {', '.join(FORMATS)}, got {explicit!r}"]})
        return fmt
    name = (filename or "").lower()
    for suffix, fmt in ((".csv", "csv"), (".tsv", "tsv"), (".tab", "tsv"), (".xlsx", "xlsx"), (".xlsm", "xlsx"),
                        (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json")):
        if name.endswith(suffix):
            return fmt
    if name.endswith(".xls"):
        raise InvalidInput("old Excel .xls workbooks are not read: save the sheet as .xlsx or CSV",
                           {"format": ["xls is not supported; use xlsx or csv"]})
    ctype = (content_type or "").split(";")[0].strip().lower()
    fmt = {"text/csv": "csv", "text/tab-separated-values": "tsv", XLSX_MEDIA_TYPE: "xlsx",
           "application/json": "json", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl"}.get(ctype)
    if fmt:
        return fmt
    raise InvalidInput("cannot tell the file format: name the file .csv, .tsv, .xlsx, .json or .jsonl, or pass format=",
                       {"format": ["unknown; give format=csv|tsv|xlsx|json|jsonl"]})


def iter_rows(stream: IO[bytes], fmt: str, convert_csv: bool = True,
              sheet: str | None = None) -> Iterator[tuple[int, dict | RowError]]:
    """(row number, raw product dict or RowError) for every row of the file (CSV and XLSX rows stay
    unconverted `CsvRow`s when convert_csv is False: the prepare step converts them)."""
    if fmt == "xlsx":
        yield from _iter_xlsx(stream, sheet, convert_csv)
        return
    tabular = fmt in ("csv", "tsv")
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="" if tabular else None)
    try:
        if tabular:
            yield from _iter_csv(text, convert_csv, delimiter="\t" if fmt == "tsv" else None)
        elif fmt == "jsonl":
            yield from _iter_jsonl(text)
        else:
            yield from _iter_json(text)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                           {"file": ["not UTF-8 text"]}) from None
    finally:
        text.detach()


def _nul_error(problems: list[tuple[str, str]]) -> RowError:
    """The row's every field holding a NUL character (no database column can store one)."""
    return RowError(problems[0][0], problems[0][1], problems[1:])


def _iter_json(text: IO[str]) -> Iterator[tuple[int, dict | RowError]]:
    raw = text.read()
    escaped_nul = "\\u0000" in raw  # JSON carries a NUL only escaped: walk the rows for it only then
    try:
        data = json.loads(raw)
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
        if escaped_nul and isinstance(item, dict) and (paths := nul_paths(item)):
            yield i, _nul_error([(p, NUL_PROBLEM) for p in paths])
            continue
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
        if "\\u0000" in line and isinstance(item, dict) and (paths := nul_paths(item)):
            yield n, _nul_error([(p, NUL_PROBLEM) for p in paths])
            continue
        yield n, item if isinstance(item, dict) else RowError("_row", f"expected an object, got {type(item).__name__}")


def _sniff_delimiter(first_line: str) -> str:
    """The separator that splits the header line into the most known column names (comma on a tie)."""
    def score(d: str) -> int:
        cells = next(csv.reader([first_line], delimiter=d), [])
        return sum(c.strip() in CSV_COLUMNS for c in cells)

    return max(DELIMITERS, key=lambda d: (score(d), d == ","))


def _iter_csv(text: IO[str], convert: bool = True, delimiter: str | None = None) -> Iterator[tuple[int, dict | RowError]]:
    first = text.readline()
    if delimiter is None:
        delimiter = _sniff_delimiter(first)
    reader = csv.reader(itertools.chain([first] if first else [], text), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput("file is empty: a CSV import needs a header row", {"file": ["empty"]}) from None
    except csv.Error as exc:
        raise InvalidInput(f"unreadable CSV header: {exc}", {"file": [str(exc)]}) from None
    decimal_comma = delimiter == ";"

    def cells_of():
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RowError("_row", f"unreadable CSV row: {exc}")
                continue
            yield [c[1:] if c[:1] == "'" and c[1:2] in NEUTRALISED else c for c in cells]

    yield from _iter_table(header, cells_of(), convert, decimal_comma, "CSV")


def _check_header(header: list[str], kind: str) -> None:
    unknown = [h for h in header if h not in CSV_COLUMNS and h not in EXPORT_ONLY_COLUMNS]
    if unknown or "name" not in header:
        problems = []
        if unknown:
            problems.append(f"unknown column(s): {', '.join(repr(u[:40]) for u in unknown[:10])}")
        if "name" not in header:
            problems.append("missing required column 'name'")
        raise InvalidInput(f"bad {kind} header: " + "; ".join(problems) + f" (known columns: {', '.join(CSV_COLUMNS[:20])}, ...)",
                           {"header": problems})
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise InvalidInput(f"bad {kind} header: column(s) listed twice: {', '.join(dup)}", {"header": [f"duplicate {dup}"]})


def _iter_table(header: list[str], rows: Iterator[list[str] | RowError], convert: bool, decimal_comma: bool,
                kind: str) -> Iterator[tuple[int, dict | RowError]]:
    """Header + rows of text cells (CSV or a sheet) -> numbered CsvRows (or specs, or RowErrors)."""
    header = [h.strip() for h in header]
    _check_header(header, kind)
    width = len(header)
    n = 0
    for cells in rows:
        if isinstance(cells, RowError):
            n += 1
            yield n, cells
            continue
        if not cells or all(not c.strip() for c in cells):
            continue
        n += 1
        if len(cells) != width:
            yield n, RowError("_row", f"expected {width} cells, got {len(cells)}")
            continue
        if "\x00" in "".join(cells):
            yield n, _nul_error([(h, NUL_PROBLEM) for h, c in zip(header, cells) if "\x00" in c])
            continue
        row = CsvRow(zip(header, cells))
        row.decimal_comma = decimal_comma
        if not convert:
            yield n, row
            continue
        try:
            yield n, csv_row_to_spec(row, decimal_comma)
        except RowError as exc:
            yield n, exc


def _xlsx_text(value: Any) -> str:
    """One sheet cell as the CSV cell text it stands for."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    return str(value)


def _iter_xlsx(stream: IO[bytes], sheet: str | None, convert: bool) -> Iterator[tuple[int, dict | RowError]]:
    import tempfile
    import zipfile

    from openpyxl import load_workbook

    if not (hasattr(stream, "seekable") and stream.seekable()):  # a request body: openpyxl needs to seek
        spool = tempfile.TemporaryFile()
        while piece := stream.read(1 << 20):
            spool.write(piece)
        spool.seek(0)
        stream = spool
    try:
        wb = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InvalidInput(f"file is not a readable XLSX workbook ({type(exc).__name__}: {str(exc)[:200]})",
                           {"file": ["not an XLSX workbook"]}) from None
    try:
        if sheet:
            if sheet not in wb.sheetnames:
                raise InvalidInput(f"no sheet {sheet!r} in the workbook (sheets: {', '.join(wb.sheetnames)})",
                                   {"sheet": [f"unknown sheet; one of {wb.sheetnames}"]})
            ws = wb[sheet]
        else:
            ws = wb.worksheets[0]
        values = ws.iter_rows(values_only=True)
        header = next(values, None)
        if header is None or all(v is None for v in header):
            raise InvalidInput(f"sheet {ws.title!r} is empty: an XLSX import needs a header row",
                               {"file": ["empty sheet"]})
        header = [_xlsx_text(v) for v in header]
        while header and not header[-1].strip():  # trailing empty header cells: unused columns
            header.pop()
        width = len(header)

        def rows():
            for r in values:
                cells = [_xlsx_text(v) for v in r]
                extra = cells[width:]
                cells = cells[:width] + [""] * (width - len(cells))
                if any(c.strip() for c in extra):
                    yield RowError("_row", f"cells beyond the header's {width} columns")
                    continue
                yield cells

        yield from _iter_table(header, rows(), convert, False, "XLSX")
    finally:
        wb.close()


def _number(col: str, text: str, decimal_comma: bool = False) -> float | int:
    if decimal_comma and "," in text and "." not in text:
        text = text.replace(",", ".", 1) if text.count(",") == 1 else text
    try:
        v = float(text)
    except ValueError:
        raise RowError(col, f"must be a number, got {text!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise RowError(col, f"must be a finite number, got {text!r}")
    return int(v) if v.is_integer() and "." not in text and "e" not in text.lower() else v


def csv_row_to_spec(row: dict[str, str], decimal_comma: bool = False) -> dict[str, Any]:
    """One CSV row (column -> cell text) as a product spec for ProductSchema (see the module doc).
    Raises a RowError carrying every bad cell's problem."""
    spec, problems = csv_row_to_partial_spec(row, decimal_comma)
    if problems:
        raise RowError(problems[0][0], problems[0][1], problems[1:])
    return spec


def csv_row_to_partial_spec(row: dict[str, str], decimal_comma: bool = False) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """(spec of the cells that converted, [(column, problem)] of those that did not)."""
    spec: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []

    def number(col: str, text: str):
        return _number(col, text, decimal_comma)

    for col in TEXT_COLUMNS:
        v = row.get(col, "").strip()
        if v:
            spec[col] = v
    for col in NUMBER_COLUMNS:
        v = row.get(col, "").strip()
        if v:
            try:
                spec[col] = number(col, v)
            except RowError as exc:
                problems.append((exc.field, exc.problem))
    dc = row.get("datacenter", "").strip().lower()
    if dc:
        if dc not in ("true", "false"):
            problems.append(("datacenter", f"must be true or false, got {row['datacenter']!r}"))
        else:
            spec["datacenter"] = dc == "true"
    throughput: list[dict[str, Any]] = []
    try:
        for item in filter(None, (p.strip() for p in row.get("throughput", "").split(";"))):
            parts = [p.strip() for p in item.split(":")]
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2].lower() not in ("sparse", "dense")):
                raise RowError("throughput", f"expected 'format:tops' or 'format:tops:sparse', got {item!r}")
            key = "sparse_tops" if len(parts) == 3 and parts[2].lower() == "sparse" else "dense_tops"
            throughput.append({"format": parts[0].lower(), key: number("throughput", parts[1])})
    except RowError as exc:
        problems.append((exc.field, exc.problem))
    for col, (fmt, key) in PER_FORMAT_COLUMNS.items():
        v = row.get(col, "").strip()
        if v:
            try:
                throughput.append({"format": fmt, key: number(col, v)})
            except RowError as exc:
                problems.append((exc.field, exc.problem))
    if throughput:
        spec["throughput"] = throughput
    dies = []
    try:
        for item in filter(None, (p.strip() for p in row.get("logic_dies", "").split(";"))):
            parts = [p.strip() for p in item.split(":")]
            if len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("np", "planar")):
                raise RowError("logic_dies", f"expected 'area' or 'area:np' or 'area:planar', got {item!r}")
            dies.append({"area_mm2": number("logic_dies", parts[0]),
                         **({"non_planar": parts[1].lower() == "np"} if len(parts) == 2 else {})})
    except RowError as exc:
        problems.append((exc.field, exc.problem))
    if dies:
        spec["logic_dies"] = dies
    comps = []
    for item in filter(None, (p.strip() for p in row.get("components", "").split(";"))):
        sku, _, count = item.rpartition("*") if "*" in item else (item, "", "1")
        try:
            n = int(count)
        except ValueError:
            problems.append(("components", f"count must be a whole number in {item!r}"))
            break
        if not sku.strip():
            problems.append(("components", f"missing SKU in {item!r}"))
            break
        comps.append({"product": {"sku": sku.strip()}, "count": n})
    if comps:
        spec["components"] = comps
    url = row.get("source_url", "").strip()
    if url:
        spec["sources"] = [{"url": url}]
    return spec, problems


def spec_to_csv_row(spec: dict[str, Any]) -> dict[str, Any]:
    """A stored product spec as one row of the CSV layout (the inverse of csv_row_to_spec): what the
    catalogue export writes, so an exported file imports back to the same products. Systems name
    their components by SKU; extra source fields (title, note) are not columns (JSON Lines keeps them)."""
    row: dict[str, Any] = {c: spec.get(c) for c in TEXT_COLUMNS + NUMBER_COLUMNS if spec.get(c) not in (None, "")}
    if spec.get("datacenter") is not None:
        row["datacenter"] = "true" if spec["datacenter"] else "false"
    items = []
    for t in spec.get("throughput") or []:
        if t.get("sparse_tops") is not None:
            items.append(f"{t['format']}:{_num_text(t['sparse_tops'])}:sparse")
        elif t.get("dense_tops") is not None:
            items.append(f"{t['format']}:{_num_text(t['dense_tops'])}")
    if items:
        row["throughput"] = ";".join(items)
    dies = [_num_text(d["area_mm2"]) + ("" if d.get("non_planar") is None else (":np" if d["non_planar"] else ":planar"))
            for d in spec.get("logic_dies") or []]
    if dies:
        row["logic_dies"] = ";".join(dies)
    comps = []
    for c in spec.get("components") or []:
        p = c.get("product") or {}
        comps.append(f"{p.get('sku') or p.get('name')}*{c.get('count', 1)}")
    if comps:
        row["components"] = ";".join(comps)
    urls = [src["url"] for src in spec.get("sources") or [] if src.get("url")]
    if urls:
        row["source_url"] = urls[0]
    return row


def _num_text(v: Any) -> str:
    return repr(int(v)) if isinstance(v, float) and v.is_integer() and abs(v) < 2**53 else str(v)


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

    def _reject(self, entries: list[dict]) -> None:
        """One rejected row, with every problem found in it (one entry each)."""
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.extend(entries)


class CsvRow(dict):
    """A CSV (or sheet) row's cells by column, not yet converted (conversion runs in the prepare step).
    `decimal_comma`: the file is semicolon-separated, so ``989,5`` is a number."""

    decimal_comma = False


def _prepare(items: list[tuple[int, Any]], catalogue_id: int, revision: str, as_copy: bool,
             rulebook=None) -> list[tuple]:
    """Validate a batch of rows and build their Product rows. Runs in a worker process for big files.

    Returns ("ok", row, sku, payload) | ("err", row, [(field, problem), ...]) | ("defer", row, raw) per row,
    in input order; payload is a COPY text line (PostgreSQL) or a column dict.
    """
    rulebook = rulebook if rulebook is not None else _WORKER_STATE["rulebook"]
    loader = default_loader()
    out: list[tuple] = []
    good: list[tuple[int, dict, dict]] = []
    for row, raw in items:
        if isinstance(raw, CsvRow):
            partial, problems = csv_row_to_partial_spec(raw, getattr(raw, "decimal_comma", False))
            if problems:
                out.append(("err", row, problems + _other_problems(loader, partial, problems)))
                continue
            raw = partial
        if isinstance(raw, RowError):
            out.append(("err", row, raw.problems))
            continue
        if _has_references(raw):
            out.append(("defer", row, raw))
            continue
        try:
            spec = loader.load(raw)
        except ValidationError as exc:
            out.append(("err", row, _flatten(exc.messages) or [("_row", "invalid")]))
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


def _other_problems(loader, partial: dict, problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The schema's problems with the cells that did convert (so one upload shows every bad cell), less
    those a cell that did not convert explains (a missing figure, a whole-row rule)."""
    bad = {f for f, _ in problems}
    if bad & {"throughput", "tpp", "logic_dies", "die_area_mm2"} or any(f.startswith(("dense_", "sparse_")) for f in bad):
        bad |= {"throughput", "tpp", "logic_dies", "die_area_mm2"}
    try:
        loader.load(partial)
    except ValidationError as exc:
        return [(f, p) for f, p in _flatten(exc.messages) if f.split(".")[0] not in bad and f != "_row"]
    return []


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
                batch_rows: int = BATCH_ROWS, workers: int = 1, sheet: str | None = None,
                progress: Callable[[], None] | None = None) -> ImportResult:
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
            progress()

    rows = iter_rows(stream, fmt, convert_csv=False, sheet=sheet)
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
            result._reject([row_error(row, "components", f"unknown component SKU(s): {', '.join(missing)} "
                                                         "(not in this file or the catalogue)")])
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
        rows = [(0, *(cols[i][c] for c in ROW_COLUMNS[1:])) for i in plain]
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
                  "transistors", "datacenter", "model_key", "release_first", "release_last", "hbm_packaging",
                  "has_components", "eccn", "status",
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
                workers: int = 1, sheet: str | None = None,
                progress: Callable[[int], None] | None = None) -> ImportResult:
    """Import a file from disk (CLI, sample catalogue, benchmark). `progress(bytes read so far)` is
    called after each batch of rows."""
    import os

    fmt = detect_format(path, None, fmt)
    with open(path, "rb") as fh:
        report = None if progress is None else (lambda: progress(fh.tell()))
        result = import_file(db, store, catalogue_id, fh, fmt, os.path.basename(path), workers=workers, sheet=sheet,
                             progress=report)
        if progress is not None:
            progress(os.path.getsize(path))
        return result
