"""Reading an import file: its format (from the choice, the name or the content type), then its rows one
by one as raw product dicts, unconverted cell rows or row errors.

CSV separators: the header decides. Comma, semicolon, tab are tried; the one that splits the
header into the most known column names wins (``.tsv`` / ``format=tsv``: tab). In a semicolon-separated
file (European spreadsheet exports) a number may use a decimal comma (``989,5``). A cell that starts with
``'``, then ``=``, ``+``, ``-`` or ``@`` (how exports neutralise formulas) is read without the quote.

XLSX: the first sheet, or the one named by ``sheet=``; the first row is the header, the same columns as
CSV; number cells are read as numbers, text cells as CSV cells, formula cells by their saved value.

Rows are numbered from 1 in file order (CSV: the header is not a row; JSON Lines: blank lines are
skipped, not counted). The columns, the cell grammar: services/import_cells.py.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import date, datetime
from typing import IO, Any, Iterator

from ..engine.errors import InvalidInput
from ..schemas.common import NUL_PROBLEM, nul_paths
from .import_cells import CSV_COLUMNS, EXPORT_ONLY_COLUMNS, CsvRow, RowError, csv_row_to_spec

FORMATS = ("csv", "tsv", "xlsx", "json", "jsonl")
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DELIMITERS = (",", ";", "\t")
NEUTRALISED = ("=", "+", "-", "@", "\t", "\r")  # a CSV export writes these first characters after a quote


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
