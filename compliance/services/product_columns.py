"""The bridge between stored products and the engine: spec -> metric columns, columns -> ProductTable.

Imports store each product's engine metrics in columns, so batch jobs (audits, re-evaluation,
impact previews) load a chunk straight into numpy without re-parsing specs. Systems are the
exception: they are rebuilt from their specs, because their metrics come from their parts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..engine import ProductTable, build_table, derive_metrics
from ..engine.table import PACKAGING_CODE, model_key, release_range
from ..models import Product

METRIC_COLUMNS = ("tpp", "performance_density", "io_bandwidth", "memory_bandwidth_density", "dram_bandwidth",
                  "transistors")


def licence_columns(spec: dict[str, Any]) -> dict[str, Any]:
    """The release date range (day ordinals; None: not given or unreadable) and the HBM packaging code of a
    spec, as build_table reads them (a system's come from its parts: not stored)."""
    kind = spec.get("kind", "ic")
    if kind == "system":
        return {"release_first": None, "release_last": None, "hbm_packaging": 0}
    released = release_range(spec["release_date"]) if spec.get("release_date") else None
    return {"release_first": None if released is None else int(released[0]),
            "release_last": None if released is None else int(released[1]),
            "hbm_packaging": PACKAGING_CODE[spec.get("hbm_packaging") or "standalone"] if kind == "hbm" else 0}


def product_columns(spec: dict[str, Any]) -> dict[str, Any]:
    """The Product column values of one validated spec (used by imports and CRUD)."""
    kind = spec.get("kind", "ic")
    out: dict[str, Any] = {
        "sku": spec.get("sku") or spec["name"],
        "name": spec["name"],
        "vendor": spec.get("vendor") or "",
        "family": spec.get("family"),
        "kind": kind,
        "model_key": model_key(spec),
        "has_components": kind == "system",
        "datacenter": spec.get("datacenter"),
        **licence_columns(spec),
    }
    if kind == "system":
        out.update({m: None for m in METRIC_COLUMNS}, tpp_source="components", pd_na=False)
        return out
    m = derive_metrics(spec)
    out.update({k: (None if m.get(k) is None else float(m[k])) for k in METRIC_COLUMNS})
    out["tpp_source"] = m["tpp_source"]
    out["pd_na"] = bool(m.get("performance_density__na"))
    return out


# The Product columns a plain (non-system) product's table row is built from, in table_from_rows' order.
ROW_COLUMNS = ("id", "sku", "kind", "tpp", "performance_density", "pd_na", "io_bandwidth", "memory_bandwidth_density",
               "dram_bandwidth", "transistors", "datacenter", "model_key", "release_first", "release_last",
               "hbm_packaging")


@dataclass
class ChunkPart:
    """Products of one id range that share a loading path, with their table and their stored standing."""

    ids: np.ndarray
    skus: list[str]
    table: ProductTable
    eccn: np.ndarray | None = None  # object: the stored ECCN label per product (None: none or not yet)
    status: np.ndarray | None = None  # object: the stored status label per product


def _floats(col: Iterable[Any]) -> np.ndarray:
    """A column of numbers (None = missing) as float64 with NaN; booleans become 1.0 / 0.0."""
    return np.array(col, dtype=np.float64)  # numpy turns None into NaN when the dtype is float


def _table(cols: list[tuple]) -> ProductTable:
    """The table of plain products from the columns of ROW_COLUMNS[2:] (kind ... hbm_packaging), each a
    sequence over the same rows."""
    (kind, tpp, pd_, pd_na, io, mbd, dram, transistors, datacenter, model, release_first, release_last,
     hbm_packaging) = cols
    return ProductTable.from_columns(
        {"tpp": _floats(tpp), "performance_density": _floats(pd_),
         "performance_density__na": np.array(pd_na, dtype=bool),  # None (not stored) is False
         "io_bandwidth": _floats(io), "memory_bandwidth_density": _floats(mbd), "dram_bandwidth": _floats(dram),
         "transistors": _floats(transistors), "datacenter": _floats(datacenter),
         "release_date_first": _floats(release_first), "release_date_last": _floats(release_last),
         "hbm_packaging": np.array([v or 0 for v in hbm_packaging], dtype=np.int8)},
        kind=np.array(kind, dtype=object), model=np.array(model, dtype=object))


def table_from_rows(rows: Iterable[tuple]) -> tuple[np.ndarray, list[str], ProductTable]:
    """Rows of (id, sku, kind, tpp, pd, pd_na, io, mbd, dram, transistors, datacenter, model_key, release_first,
    release_last, hbm_packaging) (ROW_COLUMNS)."""
    rows = list(rows)
    if not rows:
        return np.zeros(0, dtype=np.int64), [], ProductTable.from_columns({}, np.zeros(0, dtype=np.int8))
    cols = list(zip(*rows))
    return np.array(cols[0], dtype=np.int64), list(cols[1]), _table(cols[2:len(ROW_COLUMNS)])


_T = Product.__table__.c
# What a chunk reads of a plain product: the table's columns, then its stored standing.
PLAIN_COLUMNS = (*(_T[c] for c in ROW_COLUMNS), _T.eccn, _T.status)


def load_chunk(session: Session, catalogue_id: int, lo_id: int, hi_id: int) -> list[ChunkPart]:
    """Products with lo_id <= id <= hi_id of a catalogue, as engine tables (systems separately), with
    their stored standing. A Core select by id range on the session's connection: its columns go
    straight into numpy arrays, no ORM objects."""
    conn = session.connection()
    base = (_T.catalogue_id == catalogue_id) & (_T.id >= lo_id) & (_T.id <= hi_id)
    parts = []
    cols = list(zip(*conn.execute(select(*PLAIN_COLUMNS).where(base & ~_T.has_components).order_by(_T.id)).all()))
    if cols:
        n = len(ROW_COLUMNS)
        parts.append(ChunkPart(np.array(cols[0], dtype=np.int64), list(cols[1]), _table(cols[2:n]),
                               np.array(cols[n], dtype=object), np.array(cols[n + 1], dtype=object)))
    systems = conn.execute(select(_T.id, _T.sku, _T.spec, _T.eccn, _T.status)
                           .where(base & _T.has_components).order_by(_T.id)).all()
    if systems:
        cols = list(zip(*systems))
        parts.append(ChunkPart(np.array(cols[0], dtype=np.int64), list(cols[1]), build_table(list(cols[2])),
                               np.array(cols[3], dtype=object), np.array(cols[4], dtype=object)))
    return parts
