"""A stored product's licence inputs (release_date, hbm_packaging) are columns that batch jobs read: written by
every product write, filled for existing products by migration 0013, and giving the same table as the spec."""
from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command

from compliance.db import alembic_config
from compliance.engine import build_table
from compliance.services.product_columns import ROW_COLUMNS, product_columns, table_from_rows
from tests.conftest import H100, HBM3E, create_pg_database, drop_pg_database

SPECS = [{**H100, "sku": "H100"},                                     # a month: 2022-09-01 .. 2022-09-30
         {**H100, "sku": "NODATE", "release_date": None},              # not given: unknown
         {**HBM3E, "sku": "HBM-CO", "hbm_packaging": "interface_logic_die"},
         {**H100, "sku": "DAY", "release_date": "2026-01-15"}]


def _spec(p: dict) -> dict:
    return {k: v for k, v in p.items() if v is not None}


def test_the_columns_give_the_table_the_spec_gives():
    specs = [_spec(p) for p in SPECS]
    cols = [product_columns(s) for s in specs]
    assert (cols[0]["release_first"], cols[0]["release_last"]) == (date(2022, 9, 1).toordinal(),
                                                                  date(2022, 9, 30).toordinal())
    assert cols[1]["release_first"] is None and cols[2]["hbm_packaging"] != 0
    _, _, from_columns = table_from_rows([(i, *(c[k] for k in ROW_COLUMNS[1:])) for i, c in enumerate(cols)])
    from_specs = build_table(specs)
    np.testing.assert_array_equal(from_columns.release, from_specs.release)
    np.testing.assert_array_equal(from_columns.hbm_packaging, from_specs.hbm_packaging)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
    else:
        url = create_pg_database()
        yield url
        drop_pg_database(url)


def test_migration_0013_fills_the_columns_of_existing_products(url):
    cfg = alembic_config(url)
    command.upgrade(cfg, "0012_audit_transaction_type")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            cid = conn.execute(sa.text("INSERT INTO catalogues (name, description, destinations, created_at, "
                                       "updated_at) VALUES ('old', '', '[]', :t, :t) RETURNING id"),
                               {"t": "2026-01-01 00:00:00"}).scalar_one()
            for p in SPECS + [{"sku": "SYS", "name": "Box", "kind": "system", "release_date": "2020",
                               "components": [{"product": {"sku": "H100"}, "count": 8}]}]:
                conn.execute(sa.text(
                    "INSERT INTO products (catalogue_id, sku, name, vendor, kind, spec, pd_na, model_key, "
                    "has_components, created_at, updated_at) VALUES (:c, :sku, :name, '', :kind, :spec, false, '', "
                    ":sys, :t, :t)"), {"c": cid, "sku": p["sku"], "name": p["name"], "kind": p.get("kind", "ic"),
                                       "spec": json.dumps(_spec(p)), "sys": p.get("kind") == "system",
                                       "t": "2026-01-01 00:00:00"})
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            got = {r[0]: r[1:] for r in conn.execute(sa.text(
                "SELECT sku, release_first, release_last, hbm_packaging FROM products"))}
    finally:
        engine.dispose()
    expected = {p["sku"]: (c["release_first"], c["release_last"], c["hbm_packaging"])
                for p in SPECS for c in [product_columns(_spec(p))]}
    assert {k: v for k, v in got.items() if k != "SYS"} == expected
    assert got["SYS"] == (None, None, 0)  # a system's come from its parts
    assert got["DAY"][0] == got["DAY"][1] == date(2026, 1, 15).toordinal()
