"""The product filter `q` (SKU or name contains q, case-insensitively) through migration 0016's index.

On SQLite a q of three characters or more is looked up in the FTS5 trigram table kept by triggers; on
PostgreSQL the LIKE is served by trigram indexes. Either way the answer must be exactly the products a
plain substring test picks, after inserts, renames, upserts by import and deletes.
"""
from __future__ import annotations

import io

import pytest
from sqlalchemy import text

from compliance.services import catalogues as svc
from compliance.services.imports import import_file

NAMES = [
    ("A100-PCIE", "NVIDIA A100 80GB PCIe"), ("h100-sxm", "H100 SXM5"), ("MI300X", "Instinct MI300X"),
    ("pct-50%", "Fifty per cent_off"), ("und_er", "Under score"), ("quo\"te", 'Say "hello"'),
    ("UNI-1", "Ascend 910B Straße"), ("UNI-2", "ÉCLAIR accelerator"), ("BS-1", "back\\slash"),
    ("SYN-00090001", "Synthetic 1"), ("SYN-00190009", "Synthetic 2"), ("X-9", "Gaudi 3"),
]
QUERIES = ["a100", "A100", "h100-s", "sxm", "300", "mi", "x", "%", "50%", "_", "und_", "r_s", '"', 'o"t',
           '"hello"', "straße", "STRASSE", "éclair", "ÉCLAIR", "\\", "k\\s", "syn-0009", "0009", "9000",
           "nothing here", "  ", "a1 00", "Synthetic", "c 1"]


def _expected(rows, q):
    return sorted(sku for sku, name in rows if q.lower() in sku.lower() or q.lower() in name.lower())


def _spec(sku, name):
    from compliance.schemas.product import ProductSchema

    return ProductSchema().load({"sku": sku, "name": name, "vendor": "V", "datacenter": True,
                                 "throughput": [{"format": "fp16", "dense_tops": 100}], "die_area_mm2": 800})


def _found(db, cat_id, q):
    page = svc.list_products(db, cat_id, 1, 1000, q=q)
    assert page.total == len(page.items)
    return sorted(p.sku for p in page.items)


def _check_all(db, cat_id, rows, queries=QUERIES):
    for q in queries:
        assert _found(db, cat_id, q) == _expected(rows, q), q


def test_q_finds_exactly_the_substring_matches_through_writes(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    store = app.extensions["rulebooks"]
    cat = svc.create_catalogue(db, "text", destinations=["CN"])
    other = svc.create_catalogue(db, "other", destinations=["CN"])
    rows = list(NAMES)
    for sku, name in rows:
        svc.put_product(db, store, cat.id, _spec(sku, name))
    svc.put_product(db, store, other.id, _spec("A100-OTHER", "NVIDIA A100 elsewhere"))
    _check_all(db, cat.id, rows)
    assert _found(db, other.id, "a100") == ["A100-OTHER"]  # each catalogue sees its own products

    # a rename by PUT, a delete, and an import that upserts (renames one, adds one)
    svc.put_product(db, store, cat.id, _spec("X-9", "Renamed accelerator"))
    rows = [(s, "Renamed accelerator" if s == "X-9" else n) for s, n in rows]
    svc.delete_product(db, cat.id, "MI300X")
    rows = [(s, n) for s, n in rows if s != "MI300X"]
    csv = ("sku,name,vendor,datacenter,tpp\n"
           "h100-sxm,Hopper H100 renamed,NVIDIA,true,100\n"
           "NEW-1,Gaudi three,Intel,true,100\n").encode()
    result = import_file(db, store, cat.id, io.BytesIO(csv), "csv", "x.csv")
    assert result.imported == 2
    rows = [(s, "Hopper H100 renamed" if s == "h100-sxm" else n) for s, n in rows] + [("NEW-1", "Gaudi three")]
    _check_all(db, cat.id, rows, QUERIES + ["gaudi", "hopper", "mi300", "gaudi 3", "renamed"])


def test_the_index_is_there_and_is_used(make_app, db_url):
    """Not only right, but served by the index: the FTS5 table on SQLite, the trigram indexes on PostgreSQL."""
    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    with db.engine.connect() as conn:
        if db.is_sqlite:
            assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'products_text'")).scalar() == 1
        else:
            names = set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'products'")).scalars())
            assert {"ix_products_sku_trgm", "ix_products_name_trgm"} <= names
            conn.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(conn.execute(text(
                "EXPLAIN SELECT id FROM products WHERE lower(sku) LIKE '%a100%' OR lower(name) LIKE '%a100%'"
            )).scalars())
            assert "ix_products_sku_trgm" in plan and "ix_products_name_trgm" in plan, plan


@pytest.mark.parametrize("q", ["%", "_", "50%"])
def test_like_wildcards_in_q_are_literal(make_app, q):
    app = make_app()
    db, store = app.extensions["db"], app.extensions["rulebooks"]
    cat = svc.create_catalogue(db, "wild", destinations=["CN"])
    for sku, name in [("plain", "plain"), ("pct-50%", "fifty"), ("und_er", "under")]:
        svc.put_product(db, store, cat.id, _spec(sku, name))
    assert _found(db, cat.id, q) == _expected([("plain", "plain"), ("pct-50%", "fifty"), ("und_er", "under")], q)


def test_sqlite_looks_q_up_in_the_fts5_table_from_three_characters(make_app):
    db = make_app().extensions["db"]
    with db.session() as s:
        assert "products_text MATCH" in str(svc.text_match(s, "a100"))  # 3+ characters: the FTS5 table
        assert "products_text" not in str(svc.text_match(s, "a1"))  # shorter: a scan of the rows
