"""Published rule versions: seeding from rules/, the current version, and a per-revision cache."""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from sqlalchemy import func, select

from ..db import Database
from ..engine import Rulebook, load_rulebook_content
from ..engine.errors import NotFound
from ..models import RuleVersion

log = logging.getLogger(__name__)


class RulebookStore:
    """Reads published versions from the database; Rulebook objects are cached by revision."""

    def __init__(self, db: Database, rules_dir: str, cache_size: int = 16):
        self.db = db
        self.rules_dir = rules_dir
        self._cache: OrderedDict[str, Rulebook] = OrderedDict()
        self._lock = threading.Lock()
        self.cache_size = cache_size

    def seed(self) -> RuleVersion | None:
        """On first start, publish the bundled rules/ as version 1. Idempotent."""
        with self.db.session() as s:
            if s.scalar(select(func.count()).select_from(RuleVersion)):
                return None
            rulebook = Rulebook(load_rulebook_content(self.rules_dir))
            version = RuleVersion(number=1, revision=rulebook.revision, parent_id=None, author="system",
                                  reason=f"seeded from bundled {self.rules_dir}", content=rulebook.content)
            s.add(version)
            self._remember(rulebook)
            log.info("seeded rule version 1 (revision %s)", rulebook.revision[:12])
            return version

    def current_version(self, session) -> RuleVersion:
        version = session.scalar(select(RuleVersion).order_by(RuleVersion.number.desc()).limit(1))
        if version is None:
            raise NotFound("no published rule version")
        return version

    def version_by_revision(self, session, revision: str) -> RuleVersion:
        version = session.scalar(select(RuleVersion).where(RuleVersion.revision == revision)
                                 .order_by(RuleVersion.number.desc()).limit(1))
        if version is None:
            raise NotFound(f"no published rule version with revision {revision!r}",
                           {"ruleset_revision": [f"unknown revision {revision!r}"]})
        return version

    def rulebook_for(self, version: RuleVersion) -> Rulebook:
        """The validated Rulebook of a published version (cached by content revision)."""
        with self._lock:
            hit = self._cache.get(version.revision)
            if hit is not None:
                self._cache.move_to_end(version.revision)
                return hit
        rulebook = Rulebook(version.content)
        self._remember(rulebook)
        return rulebook

    def current(self, revision: str | None = None) -> tuple[RuleVersion, Rulebook]:
        """The current published version (or the one with `revision`) and its Rulebook."""
        with self.db.session() as s:
            version = self.version_by_revision(s, revision) if revision else self.current_version(s)
            s.expunge(version)
        return version, self.rulebook_for(version)

    def current_rulebook(self, revision: str | None = None) -> tuple[int, Rulebook]:
        """(version number, Rulebook) of the current published version (or the one with `revision`).

        What a classification needs, read with one narrow query (number and revision; the content only
        when the revision's Rulebook is not cached yet): always the version in force at the query, so a
        publish from any process is seen by the next request, with no cache to invalidate."""
        query = select(RuleVersion.number, RuleVersion.revision).order_by(RuleVersion.number.desc()).limit(1)
        if revision:
            query = query.where(RuleVersion.revision == revision)
        with self.db.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            if revision:
                raise NotFound(f"no published rule version with revision {revision!r}",
                               {"ruleset_revision": [f"unknown revision {revision!r}"]})
            raise NotFound("no published rule version")
        with self._lock:
            hit = self._cache.get(row.revision)
            if hit is not None:
                self._cache.move_to_end(row.revision)
                return row.number, hit
        version, rulebook = self.current(row.revision)
        return version.number, rulebook

    def _remember(self, rulebook: Rulebook) -> None:
        with self._lock:
            self._cache[rulebook.revision] = rulebook
            self._cache.move_to_end(rulebook.revision)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
