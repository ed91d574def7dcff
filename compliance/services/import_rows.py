"""Validating one batch of raw import rows: each becomes a Product row to write, its every problem, or a
system deferred until the SKUs its components name are stored. Runs in the import's worker processes
for big files (the pool's initializer pins the rulebook).

Every row goes through `ProductSchema` (the classify API's contract); every problem of a row is reported
(one line each, same row number).
"""
from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from ..schemas.product_loader import default_loader
from .import_cells import CsvRow, RowError, csv_row_to_partial_spec
from .import_writer import copy_line, product_rows

_WORKER_STATE: dict[str, Any] = {}


def init_worker(rulebook_content: dict) -> None:
    """Pool initializer: the pinned rulebook, rebuilt once per worker process."""
    from ..engine import Rulebook

    _WORKER_STATE["rulebook"] = Rulebook(rulebook_content)


def prepare_star(args) -> list[tuple]:
    return prepare_batch(*args)


def prepare_batch(items: list[tuple[int, Any]], catalogue_id: int, revision: str, as_copy: bool,
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
            out[pos] = ("ok", out_row(items, pos, out), spec["sku"], copy_line(r) if as_copy else r)
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


def is_reference(comp: Any) -> bool:
    return (isinstance(comp, dict) and isinstance(comp.get("product"), dict)
            and set(comp["product"]) == {"sku"})


def _has_references(raw: dict) -> bool:
    comps = raw.get("components")
    return isinstance(comps, list) and any(is_reference(c) for c in comps)
