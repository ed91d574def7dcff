"""Writing validated products: their Product column rows with the current standing, upserted by SKU
(SQLite: INSERT ... ON CONFLICT; PostgreSQL: COPY into a staging table, then one INSERT ... ON CONFLICT)."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import select

from ..db import Database
from ..engine import build_table, evaluate
from ..models import Product
from ..schemas.product import ProductSchema
from .determinations import sync_reviews
from .product_columns import ROW_COLUMNS, product_columns, table_from_rows
from .webhooks import enqueue_deliveries

PRODUCT_FIELDS = ("catalogue_id", "sku", "name", "vendor", "family", "kind", "spec", "tpp", "tpp_source",
                  "performance_density", "pd_na", "io_bandwidth", "memory_bandwidth_density", "dram_bandwidth",
                  "transistors", "datacenter", "model_key", "release_first", "release_last", "hbm_packaging",
                  "has_components", "eccn", "status",
                  "classified_revision", "classified_on", "created_at", "updated_at")
UPDATE_FIELDS = tuple(f for f in PRODUCT_FIELDS if f not in ("catalogue_id", "sku", "created_at"))


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
        rows.append({**c, "catalogue_id": catalogue_id, "spec": to_jsonable(wire) if jsonable else wire, "eccn": eccn, "status": status,
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
            counts = _copy_upsert_lines(s, [copy_line(r) for r in rows])
        else:
            counts = _sqlite_upsert(s, catalogue_id, rows)
        # determinations of the written products whose computed answer moved now need review
        enqueue_deliveries(s, sync_reviews(s, catalogue_id, "spec_change", skus=[r["sku"] for r in rows]))
    return counts


def write_payloads(db: Database, catalogue_id: int, pending: dict[str, Any], as_copy: bool,
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


def copy_line(r: dict) -> str:
    """One products_stage row in COPY text format (tab-separated, \\N for NULL)."""
    return "\t".join(_copy_value(r[f]) for f in PRODUCT_FIELDS) + "\n"


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value
