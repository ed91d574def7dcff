"""The catalogue's tabular cell grammar: a row of text cells (CSV or a sheet) to a product spec
(`csv_row_to_spec`, every bad cell reported) or a stored spec back to such a row (`spec_to_csv_row`).

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

from typing import Any

from ..engine.vocabulary import FORMAT_BITS

TEXT_COLUMNS = ("sku", "name", "vendor", "family", "kind", "process", "release_date", "hbm_packaging", "notes")
NUMBER_COLUMNS = ("tpp", "die_area_mm2", "io_bandwidth_gb_per_s", "memory_bandwidth_gb_per_s", "package_area_mm2",
                  "transistors")
OTHER_COLUMNS = ("datacenter", "throughput", "logic_dies", "components", "source_url")
PER_FORMAT_COLUMNS = {f"{kind}_{fmt}_tops": (fmt, f"{kind}_tops") for fmt in FORMAT_BITS for kind in ("dense", "sparse")}
CSV_COLUMNS = TEXT_COLUMNS + NUMBER_COLUMNS + OTHER_COLUMNS + tuple(PER_FORMAT_COLUMNS)
# Written by the catalogue export (the product's standing and computed metrics), ignored on import, so an
# exported file can be edited and imported back as it is.
EXPORT_ONLY_COLUMNS = ("eccn", "status", "classified_revision", "classified_on", "computed_tpp", "performance_density")


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


class CsvRow(dict):
    """A CSV (or sheet) row's cells by column, not yet converted (conversion runs in the prepare step).
    `decimal_comma`: the file is semicolon-separated, so ``989,5`` is a number."""

    decimal_comma = False


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
