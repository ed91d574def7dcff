"""The ONE tabular writer of every export: rows (dicts) -> CSV, JSON Lines or XLSX, as a stream of pieces.

- CSV: a text cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab or CR first) is
  prefixed with ``'`` (the OWASP "CSV injection" advice); lists are joined with ``,``; objects are JSON.
- JSON Lines: one JSON object per line, values as they are (lists stay lists), nothing neutralised.
- XLSX: openpyxl in write-only mode (rows go to a temporary file as they come, memory stays flat); every
  text cell is written as a *string* cell, so Excel never evaluates it, and the text is kept exactly
  (no quote prefix: a re-import reads back what was exported). Characters XML cannot hold are dropped.
  The workbook is zipped when the last row is written, then sent in 64 KiB pieces.

Callers hand an iterator of dicts and the column order; the first piece is produced only after the
first row was read, so a 404/422 raised by the row source happens before a response starts.
"""
from __future__ import annotations

import csv
import io
import json
import tempfile
from datetime import date, datetime
from typing import Any, Iterable, Iterator, Sequence

FORMATS = ("csv", "jsonl", "xlsx")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 65536


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would evaluate (=, +, -, @, tab, CR first) is prefixed with a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _plain(value: Any) -> Any:
    """A value as one spreadsheet cell: None -> '', list -> 'a,b', dict -> JSON, dates -> ISO text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (str, int, float)) for v in value):
            return ",".join(str(v) for v in value)
        return json.dumps(value, default=str)
    if isinstance(value, dict):
        return json.dumps(value, default=str, sort_keys=True)
    return value


def iter_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]], delimiter: str = ",") -> Iterator[str]:
    """CSV text pieces (header first, about 64 KiB each), formula cells neutralised."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([neutralise(_plain(row.get(c))) for c in columns])
        if buf.tell() > CHUNK:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def iter_jsonl(columns: Sequence[str] | None, rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """JSON Lines pieces: each row (restricted to `columns` when given) as one line."""
    parts: list[str] = []
    size = 0
    for row in rows:
        line = json.dumps(row if columns is None else {c: row.get(c) for c in columns}, default=str) + "\n"
        parts.append(line)
        size += len(line)
        if size > CHUNK:
            yield "".join(parts)
            parts, size = [], 0
    yield "".join(parts)


def iter_xlsx(columns: Sequence[str], rows: Iterable[dict[str, Any]], title: str = "export") -> Iterator[bytes]:
    """An XLSX workbook (one sheet named `title`, header row first) in byte pieces."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31] or "export")

    def text_cell(value: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(ws, value=ILLEGAL_CHARACTERS_RE.sub("", value))
        cell.data_type = "s"  # a string, never a formula, whatever it starts with
        return cell

    ws.append([text_cell(c) for c in columns])
    for row in rows:
        out = []
        for c in columns:
            v = _plain(row.get(c))
            out.append(text_cell(v) if isinstance(v, str) else v)
        ws.append(out)
    with tempfile.TemporaryFile() as fh:
        wb.save(fh)
        fh.seek(0)
        while piece := fh.read(CHUNK):
            yield piece


def iter_export(fmt: str, columns: Sequence[str], rows: Iterable[dict[str, Any]], title: str = "export"):
    """The pieces of `rows` in `fmt` (csv, jsonl or xlsx)."""
    if fmt == "csv":
        return iter_csv(columns, rows)
    if fmt == "jsonl":
        return iter_jsonl(columns, rows)
    if fmt == "xlsx":
        return iter_xlsx(columns, rows, title)
    raise ValueError(f"unknown export format {fmt!r}")


def primed(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """`rows` with its first item already read, so errors of the row source (404, 422) are raised
    now, before a streamed response has started."""
    it = iter(rows)
    try:
        first = next(it)
    except StopIteration:
        return iter(())

    def chain():
        yield first
        yield from it

    return chain()
