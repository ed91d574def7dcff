"""Migration 0018: the activity log's table is renamed audit_events -> activity_events (rows, indexes,
primary key and, on PostgreSQL, the id sequence follow) and the duplicate ix_change_records_run_id goes;
the downgrade restores both. On SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from compliance.db import alembic_config
from compliance.models import Base
from tests.conftest import create_pg_database, drop_pg_database

BEFORE = "0017_import_jobs"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
    else:
        url = create_pg_database()
        yield url
        drop_pg_database(url)


def _names(engine, table: str) -> dict[str, object]:
    insp = sa.inspect(engine)
    return {"tables": set(insp.get_table_names()), "indexes": {i["name"] for i in insp.get_indexes(table)},
            "pk": insp.get_pk_constraint(table)["name"]}


def _insert(conn, table: str, action: str) -> None:
    conn.execute(sa.text(f"INSERT INTO {table} (at, actor, action, target, reason, detail) "
                         "VALUES (:at, 'tests', :action, 'draft:1', 'why', NULL)"),
                 {"at": "2026-01-01 00:00:00+00:00", "action": action})


def _rows(conn, table: str) -> list[tuple]:
    return [tuple(r) for r in conn.execute(sa.text(f"SELECT id, actor, action, target, reason FROM {table} ORDER BY id"))]


def _our_diffs(engine) -> list:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    flat = [d for d in diffs if isinstance(d, tuple)] + [x for d in diffs if isinstance(d, list) for x in d]
    return [d for d in flat if any(n in repr(d) for n in ("activity_events", "audit_events", "change_records"))
            and d[0] not in ("add_fk", "remove_fk")]


def test_the_table_is_renamed_with_its_rows_and_back(url):
    cfg = alembic_config(url)
    command.upgrade(cfg, BEFORE)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            _insert(conn, "audit_events", "rules.publish")
            _insert(conn, "audit_events", "api_key.create")
            before = _rows(conn, "audit_events")
        assert "ix_change_records_run_id" in _names(engine, "change_records")["indexes"]

        command.upgrade(cfg, "head")
        engine.dispose()
        names = _names(engine, "activity_events")
        assert "activity_events" in names["tables"] and "audit_events" not in names["tables"]
        assert names["indexes"] == {"ix_activity_events_action", "ix_activity_events_at"}
        assert names["pk"] == "pk_activity_events"
        assert "ix_change_records_run_id" not in _names(engine, "change_records")["indexes"]
        assert "uq_change_records_run_cell" in {u["name"] for u in sa.inspect(engine).get_unique_constraints(
            "change_records")}
        with engine.begin() as conn:
            assert _rows(conn, "activity_events") == before
            _insert(conn, "activity_events", "webhook.create")  # the id keeps counting after the last row
            after = _rows(conn, "activity_events")
        assert len(after) == 3 and after[2][0] > before[1][0]
        assert _our_diffs(engine) == []  # the models say what the migrated schema is
        if url.startswith("postgresql"):
            with engine.connect() as conn:
                seqs = set(conn.execute(sa.text("SELECT sequence_name FROM information_schema.sequences")).scalars())
            assert "activity_events_id_seq" in seqs and "audit_events_id_seq" not in seqs

        command.downgrade(cfg, BEFORE)
        engine.dispose()
        names = _names(engine, "audit_events")
        assert "audit_events" in names["tables"] and "activity_events" not in names["tables"]
        assert names["indexes"] == {"ix_audit_events_action", "ix_audit_events_at"}
        assert names["pk"] == "pk_audit_events"
        assert "ix_change_records_run_id" in _names(engine, "change_records")["indexes"]
        with engine.begin() as conn:
            assert _rows(conn, "audit_events") == after
            _insert(conn, "audit_events", "webhook.delete")
            assert len(_rows(conn, "audit_events")) == 4

        command.upgrade(cfg, "head")  # and up again
        engine.dispose()
        with engine.connect() as conn:
            assert len(_rows(conn, "activity_events")) == 4
    finally:
        engine.dispose()
