"""products: an index for the substring filter `q` on SKU and name (console and API product lists)

`q` matches a product whose SKU or name contains it, case-insensitively. Without an index that reads
every row of the catalogue (886 ms at 100,000 products on SQLite). This adds:

* PostgreSQL: trigram GIN indexes (pg_trgm) on lower(sku) and lower(name); `lower(x) LIKE '%q%'` uses
  them for q of three characters or more. pg_trgm is a trusted extension (PostgreSQL 13+): the database
  owner may create it. Where it cannot be created, the indexes are skipped (a warning) and `q` still works.
* SQLite: an FTS5 table `products_text` with the trigram tokenizer (SQLite 3.34+), external content over
  products (sku, name), kept in step by triggers; `q` of three characters or more is looked up there.
  Where FTS5 or the trigram tokenizer is missing, it is skipped and `q` still works.

Revision ID: 0016_products_text_search
Revises: 0015_rule_draft_row_version
"""
import logging

import sqlalchemy as sa
from alembic import op

revision = "0016_products_text_search"
down_revision = "0015_rule_draft_row_version"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

SQLITE_UP = [
    "CREATE VIRTUAL TABLE products_text USING fts5(sku, name, content='products', content_rowid='id', "
    "tokenize='trigram')",
    "CREATE TRIGGER products_text_ai AFTER INSERT ON products BEGIN "
    "INSERT INTO products_text(rowid, sku, name) VALUES (new.id, new.sku, new.name); END",
    "CREATE TRIGGER products_text_ad AFTER DELETE ON products BEGIN "
    "INSERT INTO products_text(products_text, rowid, sku, name) VALUES ('delete', old.id, old.sku, old.name); END",
    "CREATE TRIGGER products_text_au AFTER UPDATE OF sku, name ON products BEGIN "
    "INSERT INTO products_text(products_text, rowid, sku, name) VALUES ('delete', old.id, old.sku, old.name); "
    "INSERT INTO products_text(rowid, sku, name) VALUES (new.id, new.sku, new.name); END",
    "INSERT INTO products_text(products_text) VALUES ('rebuild')",
]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS products_text_au", "DROP TRIGGER IF EXISTS products_text_ad",
               "DROP TRIGGER IF EXISTS products_text_ai", "DROP TABLE IF EXISTS products_text"]
PG_UP = ["CREATE EXTENSION IF NOT EXISTS pg_trgm",
         "CREATE INDEX ix_products_sku_trgm ON products USING gin (lower(sku) gin_trgm_ops)",
         "CREATE INDEX ix_products_name_trgm ON products USING gin (lower(name) gin_trgm_ops)"]
PG_DOWN = ["DROP INDEX IF EXISTS ix_products_name_trgm", "DROP INDEX IF EXISTS ix_products_sku_trgm"]


def _pg_trgm() -> None:
    """The trigram indexes, in a savepoint: where pg_trgm cannot be created (not installed, no privilege),
    skip them and keep the migration's transaction."""
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            for sql in PG_UP:
                bind.execute(sa.text(sql))
    except sa.exc.DBAPIError as exc:
        log.warning("skipped the pg_trgm indexes on products (the product filter q still works, without an "
                    "index): %s", str(exc).splitlines()[0])


def _sqlite_fts5() -> None:
    bind = op.get_bind()
    version = tuple(int(x) for x in bind.execute(sa.text("SELECT sqlite_version()")).scalar().split("."))
    fts5 = bind.execute(sa.text("SELECT sqlite_compileoption_used('ENABLE_FTS5')")).scalar()
    if version < (3, 34) or not fts5:
        log.warning("skipped the FTS5 trigram table products_text (SQLite %s, FTS5 %s): the product filter q "
                    "still works, without an index", ".".join(map(str, version)), "yes" if fts5 else "no")
        return
    for sql in SQLITE_UP:
        bind.execute(sa.text(sql))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _pg_trgm()
    else:
        _sqlite_fts5()


def downgrade() -> None:
    for sql in (PG_DOWN if op.get_bind().dialect.name == "postgresql" else SQLITE_DOWN):
        op.execute(sql)
