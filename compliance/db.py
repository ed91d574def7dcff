"""Database engine, sessions and migrations. Services own transactions via `Database.session()`.

Services that start background work record it on their session with `enqueue_after_commit()`; the
app factory installs `Database.sender`, which publishes each recorded task once (and only if) the
transaction commits. Services therefore never import tasks, Celery or Flask.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Database:
    """One engine and session factory per app (and per worker process)."""

    def __init__(self, url: str):
        self.url = url
        kwargs: dict = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=10)
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        # send(task_name, args) -> None, raising when the broker is unreachable; set by the app factory.
        self.sender: Callable[[str, list], None] | None = None
        event.listen(self.Session, "after_commit", self._send_recorded)
        event.listen(self.Session, "after_rollback", lambda s: s.info.pop(_ENQUEUE, None))

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error."""
        session = self.Session()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _send_recorded(self, session: Session) -> None:
        failed: Exception | None = None
        for item in session.info.pop(_ENQUEUE, []):
            try:
                if failed is not None:  # one failure is enough: do not wait on a dead broker per task
                    raise failed
                if self.sender is None:
                    raise RuntimeError("no task sender installed")
                self.sender(item.task, item.args)
            except Exception as exc:  # broker down: the work is recorded; the sweeper sends it later
                if failed is None:
                    log.warning("could not enqueue %s%s after commit (%s: %s); the sweeper will send it",
                                item.task, item.args, type(exc).__name__, exc)
                failed = exc
                if item.on_unsent is not None:
                    try:
                        item.on_unsent()
                    except Exception:
                        log.exception("on_unsent of %s failed", item.task)

    def upgrade(self) -> None:
        """Bring the schema to the latest Alembic revision."""
        from alembic import command

        command.upgrade(alembic_config(self.url), "head")

    def dispose(self) -> None:
        self.engine.dispose()


_ENQUEUE = "compliance.enqueue_after_commit"


@dataclass(frozen=True)
class _Enqueue:
    task: str
    args: list
    on_unsent: Callable[[], Any] | None


def enqueue_after_commit(session: Session, task: str, args: list,
                         on_unsent: Callable[[], Any] | None = None) -> None:
    """Send Celery task `task` with `args` once `session`'s transaction has committed (never on rollback).

    If it cannot be sent (broker unreachable), `on_unsent()` runs so the caller can mark the work as not
    yet enqueued for the sweeper; the request that created the work still succeeds."""
    session.info.setdefault(_ENQUEUE, []).append(_Enqueue(task, list(args), on_unsent))


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def alembic_config(url: str):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg
