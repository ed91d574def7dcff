"""Factories for the objects most tests need: products, catalogues with products, API keys.

They go through the services (the same validation and writes as the API), so what they make is
what a user could have made; names are unique per test unless given."""
from __future__ import annotations

import itertools
from typing import Any, Iterable

from tests.conftest import H100

_serial = itertools.count(1)


def product(base: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A product spec: `base` (H100 by default) with `fields` over it; the SKU defaults to a new one."""
    spec = {**(H100 if base is None else base), **fields}
    spec.setdefault("sku", f"SKU-{next(_serial)}")
    return spec


def catalogue(app, products: Iterable[dict[str, Any]] = (), name: str | None = None,
              destinations: list[str] | None = None) -> int:
    """A catalogue holding `products` (upserted by SKU); returns its id."""
    from compliance.services.catalogues import create_catalogue, upsert_products

    db = app.extensions["db"]
    cat = create_catalogue(db, name or f"catalogue-{next(_serial)}", destinations=destinations)
    specs = list(products)
    if specs:
        upsert_products(db, cat.id, specs)
    return cat.id


def api_headers(app, role: str) -> dict[str, str]:
    """Authorization headers carrying a new API key of `role`."""
    from compliance.auth import create_api_key

    _, plain = create_api_key(app.extensions["db"], f"test {role}", role, actor="tests")
    return {"Authorization": f"Bearer {plain}"}
