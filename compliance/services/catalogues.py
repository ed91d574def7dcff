"""Catalogues and their products: create, upsert by SKU (imports, CRUD), listing."""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import select

from ..db import Database
from ..engine.errors import Conflict
from ..models import Catalogue, Product
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


def _jsonable(value: Any) -> Any:
    from datetime import date

    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value
