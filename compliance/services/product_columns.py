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
    """Products of one id range that share a loading path, with their table."""

    ids: np.ndarray
    skus: list[str]
    table: ProductTable


def table_from_rows(rows: Iterable[tuple]) -> tuple[np.ndarray, list[str], ProductTable]:
    """Rows of (id, sku, kind, tpp, pd, pd_na, io, mbd, dram, transistors, datacenter, model_key, release_first,
    release_last, hbm_packaging) (ROW_COLUMNS)."""
    rows = list(rows)
    if not rows:
        return np.zeros(0, dtype=np.int64), [], ProductTable.from_columns({}, np.zeros(0, dtype=np.int8))
    cols = list(zip(*rows))
    ids = np.fromiter(cols[0], dtype=np.int64, count=len(rows))

    def f(col) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in col], dtype=np.float64)

    dc = np.array([np.nan if v is None else (1.0 if v else 0.0) for v in cols[10]], dtype=np.float64)
    table = ProductTable.from_columns(
        {"tpp": f(cols[3]), "performance_density": f(cols[4]),
         "performance_density__na": np.array([bool(v) for v in cols[5]]),
         "io_bandwidth": f(cols[6]), "memory_bandwidth_density": f(cols[7]), "dram_bandwidth": f(cols[8]),
         "transistors": f(cols[9]), "datacenter": dc, "release_date_first": f(cols[12]),
         "release_date_last": f(cols[13]), "hbm_packaging": np.array([v or 0 for v in cols[14]], dtype=np.int8)},
        kind=np.array(cols[2], dtype=object), model=np.array(cols[11], dtype=object))
    return ids, list(cols[1]), table


def load_chunk(session: Session, catalogue_id: int, lo_id: int, hi_id: int) -> list[ChunkPart]:
    """Products with lo_id <= id <= hi_id of a catalogue, as engine tables (systems separately)."""
    P = Product
    base = (P.catalogue_id == catalogue_id) & (P.id >= lo_id) & (P.id <= hi_id)
    rows = session.execute(select(*(getattr(P, c) for c in ROW_COLUMNS))
                           .where(base & ~P.has_components).order_by(P.id)).all()
    parts = []
    ids, skus, table = table_from_rows(rows)
    if len(ids):
        parts.append(ChunkPart(ids, skus, table))
    systems = session.execute(select(P.id, P.sku, P.spec).where(base & P.has_components).order_by(P.id)).all()
    if systems:
        parts.append(ChunkPart(np.array([r[0] for r in systems], dtype=np.int64), [r[1] for r in systems],
                               build_table([r[2] for r in systems])))
    return parts


def id_ranges(session: Session, catalogue_id: int, chunk_size: int) -> list[tuple[int, int, int]]:
    """Split a catalogue's product ids into (lo_id, hi_id, size) ranges of at most chunk_size products."""
    ids = session.scalars(select(Product.id).where(Product.catalogue_id == catalogue_id).order_by(Product.id)).all()
    out = []
    for start in range(0, len(ids), chunk_size):
        part = ids[start:start + chunk_size]
        out.append((int(part[0]), int(part[-1]), len(part)))
    return out
