"""Short-lived caches of database rows, dropped when this process commits a change to them.

A classify call used to spend most of its time on two queries that almost never change answer: the
caller's API key and the current rule version. `TimedCache` keeps such answers for a few seconds.
Two things bound how stale an entry can be:

- a commit in THIS process that changes a watched model (any session: ORM inserts, updates and
  deletes, and ORM bulk `update(Model)` / `delete(Model)` statements) bumps the model's `Generation`,
  which drops every entry at once: a revocation or a publish through this process is seen by the
  very next request;
- a change made by another process (another web worker, the CLI, a database console) is seen when
  the entry's time is up: at most `seconds` later.

A lookup that started before a bump never stores its (possibly old) answer (`begin()` / `put()`).
"""
from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Generic, Hashable, TypeVar

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

V = TypeVar("V")
_MARKS = "compliance.committed.changed"
_lock = threading.Lock()


class Generation:
    """A counter bumped after each commit that changed `model` (ignoring changes to `ignore` only)."""

    def __init__(self, model: type, ignore: tuple[str, ...] = ()):
        self.model = model
        self.ignore = frozenset(ignore)
        self.value = 0

    def bump(self) -> None:
        with _lock:
            self.value += 1

    def _changed(self, obj: Any) -> bool:
        if not self.ignore:
            return True
        state = inspect(obj)
        return any(attr.history.has_changes() for attr in state.attrs if attr.key not in self.ignore)


_WATCHED: list[Generation] = []


def watch(model: type, ignore: tuple[str, ...] = ()) -> Generation:
    """The generation of `model`: bumped after every commit that inserts, deletes or changes one (a
    change of only the `ignore` attributes does not count)."""
    gen = Generation(model, ignore)
    _WATCHED.append(gen)
    return gen


def _mark(session: Session, gen: Generation) -> None:
    session.info.setdefault(_MARKS, set()).add(id(gen))


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    for gen in _WATCHED:
        if any(isinstance(o, gen.model) for o in session.new) or \
                any(isinstance(o, gen.model) for o in session.deleted) or \
                any(isinstance(o, gen.model) and gen._changed(o) for o in session.dirty):
            _mark(session, gen)


@event.listens_for(Session, "do_orm_execute")
def _bulk(state: Any) -> None:
    if state.is_update or state.is_delete:
        mapper = state.bind_mapper
        for gen in _WATCHED:
            if mapper is not None and mapper.class_ is gen.model:
                _mark(state.session, gen)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    marks = session.info.pop(_MARKS, None)
    if marks:
        for gen in _WATCHED:
            if id(gen) in marks:
                gen.bump()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_MARKS, None)


class TimedCache(Generic[V]):
    """Values kept for `seconds`, per owner (held weakly: a database or a store) and key, all dropped when
    `generation` moves on."""

    def __init__(self, seconds: float, generation: Generation, max_entries: int = 10_000):
        self.seconds = seconds
        self.generation = generation
        self.max_entries = max_entries
        self._entries: weakref.WeakKeyDictionary[Any, dict[Hashable, tuple[float, int, V]]] = \
            weakref.WeakKeyDictionary()

    def get(self, owner: Any, key: Hashable) -> V | None:
        entries = self._entries.get(owner)
        hit = entries.get(key) if entries else None
        if hit is None:
            return None
        deadline, gen, value = hit
        if gen != self.generation.value or time.monotonic() >= deadline:
            entries.pop(key, None)  # type: ignore[union-attr]
            return None
        return value

    def begin(self) -> int:
        """A token for `put`: the generation before the lookup whose answer will be stored."""
        return self.generation.value

    def put(self, owner: Any, key: Hashable, value: V, token: int) -> None:
        """Keep `value` unless a watched change was committed since `begin()` gave `token`."""
        if token != self.generation.value or self.seconds <= 0:
            return
        with _lock:
            entries = self._entries.get(owner)
            if entries is None:
                entries = self._entries[owner] = {}
            if len(entries) >= self.max_entries:
                entries.clear()
            entries[key] = (time.monotonic() + self.seconds, token, value)

    def clear(self) -> None:
        with _lock:
            self._entries.clear()
