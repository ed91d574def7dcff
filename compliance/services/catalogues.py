"""Catalogues and their products: create, upsert by SKU (imports, CRUD), listing."""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import literal_column, select

from ..db import Database
from ..engine.errors import Conflict
from ..engine.rulebook import normalise as _jsonable
from ..models import Catalogue, Product
from ..schemas.catalogue import PRODUCT_SORTS
from .paging import Page
from .product_columns import product_columns

# Watched destinations of a new catalogue when none are given: every country in D:1, D:4, D:5,
# E:1, E:2, plus Hong Kong and Macau (where the encoded rules can change outcomes).
DEFAULT_WATCH_GROUPS = ("D:1", "D:4", "D:5", "E:1", "E:2")


def default_destinations(rulebook) -> list[str]:
    from datetime import date

    groups = rulebook.country_groups
    codes = {c for g in DEFAULT_WATCH_GROUPS if g in groups.index for c in groups.members(g, date.today())}
    return sorted(codes | {"HK", "MO"})


def create_catalogue(db: Database, name: str, description: str = "", destinations: list[str] | None = None,
                     rulebook=None) -> Catalogue:
    """Create a catalogue; 409 if the name is taken."""
    with db.session() as s:
        if s.scalar(select(Catalogue.id).where(Catalogue.name == name)) is not None:
            raise Conflict(f"a catalogue named {name!r} already exists", {"name": ["already exists"]})
        if destinations is None:
            destinations = default_destinations(rulebook) if rulebook is not None else ["CN", "HK", "MO"]
        cat = Catalogue(name=name, description=description, destinations=list(destinations))
        s.add(cat)
        s.flush()
        s.expunge(cat)
        return cat


def upsert_products(db: Database, catalogue_id: int, specs: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Insert or update validated product specs by SKU (the SKU defaults to the name)."""
    created = updated = 0
    with db.session() as s:
        for spec in specs:
            cols = product_columns(spec)
            existing = s.scalar(select(Product).where(Product.catalogue_id == catalogue_id,
                                                      Product.sku == cols["sku"]))
            if existing is None:
                s.add(Product(catalogue_id=catalogue_id, spec=_jsonable(spec), **cols))
                created += 1
            else:
                for k, v in cols.items():
                    setattr(existing, k, v)
                existing.spec = _jsonable(spec)
                updated += 1
    return {"created": created, "updated": updated}



# ---------------------------------------------------------------- catalogues, products, imports

def get_catalogue(db: Database, catalogue_id: int) -> Catalogue:
    """A catalogue by id (404 if absent)."""
    from ..engine.errors import NotFound

    with db.session() as s:
        cat = s.get(Catalogue, catalogue_id)
        if cat is None:
            raise NotFound(f"no catalogue {catalogue_id}")
        s.expunge(cat)
        return cat


def catalogue_by_name(db: Database, name: str) -> Catalogue | None:
    with db.session() as s:
        cat = s.scalar(select(Catalogue).where(Catalogue.name == name))
        if cat is not None:
            s.expunge(cat)
        return cat


def catalogue_summary(db: Database, cat: Catalogue) -> dict[str, Any]:
    """A catalogue with its product count and counts per current status."""
    from sqlalchemy import func

    with db.session() as s:
        rows = s.execute(select(Product.status, func.count()).where(Product.catalogue_id == cat.id)
                         .group_by(Product.status)).all()
    by_status = {st or "unclassified": n for st, n in rows}
    return {"id": cat.id, "name": cat.name, "description": cat.description, "destinations": cat.destinations,
            "products": sum(by_status.values()), "by_status": by_status,
            "created_at": cat.created_at.isoformat() if cat.created_at else None,
            "updated_at": cat.updated_at.isoformat() if cat.updated_at else None}


def list_catalogues(db: Database) -> list[Catalogue]:
    with db.session() as s:
        cats = list(s.scalars(select(Catalogue).order_by(Catalogue.id)))
        for c in cats:
            s.expunge(c)
        return cats


def delete_catalogue(db: Database, catalogue_id: int) -> None:
    """Delete a catalogue with its products, import reports and audits."""
    from sqlalchemy import delete

    from ..models import Audit, AuditChunk, AuditResult, ImportReport

    get_catalogue(db, catalogue_id)
    with db.session() as s:
        audit_ids = select(Audit.id).where(Audit.catalogue_id == catalogue_id)
        s.execute(delete(AuditResult).where(AuditResult.audit_id.in_(audit_ids)))
        s.execute(delete(AuditChunk).where(AuditChunk.audit_id.in_(audit_ids)))
        s.execute(delete(Audit).where(Audit.catalogue_id == catalogue_id))
        s.execute(delete(ImportReport).where(ImportReport.catalogue_id == catalogue_id))
        s.execute(delete(Product).where(Product.catalogue_id == catalogue_id))
        s.execute(delete(Catalogue).where(Catalogue.id == catalogue_id))


def list_products(db: Database, catalogue_id: int, page: int, per_page: int, vendor: str | None = None,
                  eccn: str | None = None, status: str | None = None, q: str | None = None, sort: str = "id"
                  ) -> Page:
    """One page of a catalogue's products (`models.Product`) matching the filters. `sort` is one of
    PRODUCT_SORTS, '-' first for descending (ties, and the default, by id)."""
    from sqlalchemy import func

    from ..engine.errors import InvalidInput

    column = sort.lstrip("-")
    if column not in PRODUCT_SORTS:
        raise InvalidInput(f"cannot sort by {column!r}", {"sort": [f"must be one of {', '.join(PRODUCT_SORTS)}"]})
    order = getattr(Product, column)
    order = order.desc().nulls_last() if sort.startswith("-") else order.asc().nulls_last()

    get_catalogue(db, catalogue_id)
    cond = Product.catalogue_id == catalogue_id
    if vendor:
        cond &= func.lower(Product.vendor) == vendor.lower()
    if eccn:
        cond &= (Product.eccn.is_(None) if eccn.lower() == "none" else Product.eccn == eccn)
    if status:
        cond &= Product.status == status
    with db.session() as s:
        if q:
            cond &= text_match(s, q)
        total = s.scalar(select(func.count()).select_from(Product).where(cond))
        items = list(s.scalars(select(Product).where(cond).order_by(order, Product.id)
                               .offset((page - 1) * per_page).limit(per_page)))
        for p in items:
            s.expunge(p)
    return Page(items, page, per_page, int(total or 0))


def text_match(session, q: str):
    """Products whose SKU or name contains `q`, case-insensitively (`%` and `_` are literal).

    Through the index of migration 0016 where there is one: PostgreSQL's trigram indexes serve the LIKE
    below; on SQLite, a q of three characters or more is looked up in the FTS5 trigram table products_text
    (its case folding is Unicode's, like PostgreSQL's lower()). Shorter q, or a database without the index,
    reads the rows."""
    from sqlalchemy import column, func, literal, table

    if session.bind.dialect.name == "sqlite" and len(q) >= 3 and session.scalar(
            select(literal(1)).select_from(table("sqlite_master", column("name")))
            .where(column("name") == "products_text")):
        fts = table("products_text", column("rowid"))
        phrase = '"' + q.replace('"', '""') + '"'
        return Product.id.in_(select(fts.c.rowid).where(literal_column("products_text").op("MATCH")(phrase)))
    like = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return func.lower(Product.sku).like(like, escape="\\") | func.lower(Product.name).like(like, escape="\\")


def product_points(db: Database, catalogue_id: int, limit: int = 3000) -> dict[str, Any]:
    """(sku, name, eccn, status, tpp, performance_density) of the products that have both metrics, for a
    chart: all of them up to `limit`, past it an even sample by id (`sampled` says so)."""
    from sqlalchemy import func

    get_catalogue(db, catalogue_id)
    cond = (Product.catalogue_id == catalogue_id) & Product.tpp.is_not(None) & Product.performance_density.is_not(None)
    cols = (Product.sku, Product.name, Product.eccn, Product.status, Product.tpp, Product.performance_density)
    with db.session() as s:
        total = int(s.scalar(select(func.count()).select_from(Product).where(cond)) or 0)
        q = select(*cols).where(cond)
        step = -(-total // limit) if total > limit else 1
        if step > 1:
            q = q.where(Product.id % step == 0)
        rows = s.execute(q.order_by(Product.id).limit(limit)).all()
    points = [{"sku": r[0], "name": r[1], "eccn": r[2], "status": r[3], "tpp": r[4], "performance_density": r[5]}
              for r in rows]
    return {"total": total, "shown": len(points), "sampled": step > 1, "points": points}


def import_reports(db: Database, catalogue_id: int, page: int = 1, per_page: int = 100) -> Page:
    """One page of a catalogue's import reports, newest first, without their row errors."""
    from sqlalchemy import func

    from ..models import ImportReport
    from .imports import report_dict

    get_catalogue(db, catalogue_id)
    cond = ImportReport.catalogue_id == catalogue_id
    with db.session() as s:
        total = int(s.scalar(select(func.count()).select_from(ImportReport).where(cond)) or 0)
        reps = s.scalars(select(ImportReport).where(cond).order_by(ImportReport.id.desc())
                         .offset((page - 1) * per_page).limit(per_page)).all()
        items = [{k: v for k, v in report_dict(r).items() if k not in ("errors", "warnings")} for r in reps]
    return Page(items, page, per_page, total)


def import_report(db: Database, report_id: int) -> dict[str, Any]:
    """One import report with every rejected row (404 if absent)."""
    from ..engine.errors import NotFound
    from ..models import ImportReport
    from .imports import report_dict

    with db.session() as s:
        rep = s.get(ImportReport, report_id)
        if rep is None:
            raise NotFound(f"no import report {report_id}")
        return report_dict(rep)


def get_product(db: Database, catalogue_id: int, sku: str) -> Product:
    from ..engine.errors import NotFound

    with db.session() as s:
        p = s.scalar(select(Product).where(Product.catalogue_id == catalogue_id, Product.sku == sku))
        if p is None:
            raise NotFound(f"no product {sku!r} in catalogue {catalogue_id}")
        s.expunge(p)
        return p


def put_product(db: Database, store, catalogue_id: int, spec: dict[str, Any]) -> tuple[Product, bool]:
    """Create or replace one validated product (standing refreshed); returns (product, created)."""
    from .import_writer import write_products

    get_catalogue(db, catalogue_id)
    version, rulebook = store.current()
    spec = dict(spec)
    spec["sku"] = spec.get("sku") or spec["name"]
    created, _ = write_products(db, catalogue_id, [spec], rulebook, version.revision)
    return get_product(db, catalogue_id, spec["sku"]), bool(created)


def delete_product(db: Database, catalogue_id: int, sku: str) -> None:
    from sqlalchemy import delete

    get_product(db, catalogue_id, sku)
    with db.session() as s:
        s.execute(delete(Product).where(Product.catalogue_id == catalogue_id, Product.sku == sku))


def ensure_sample_catalogue(app, path: str) -> dict[str, Any] | None:
    """Import the bundled sample catalogue once; the import report dict, or None if already there."""
    import json
    from pathlib import Path

    from .imports import import_path

    db = app.extensions["db"]
    store = app.extensions["rulebooks"]
    meta = json.loads(Path(path).read_text(encoding="utf-8")).get("catalogue") or {}
    name = meta.get("name") or "Sample catalogue"
    if catalogue_by_name(db, name) is not None:
        return None
    _, rulebook = store.current()
    cat = create_catalogue(db, name, meta.get("description", ""), rulebook=rulebook)
    return import_path(db, store, cat.id, path, "json").as_dict()
