"""Published rule versions, read: the list, one version with its content, the version in force.

Published versions are immutable rows; a publish (services/rule_publish.py) inserts version N+1 whose parent is
version N.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..db import Database
from ..engine.errors import NotFound
from ..models import RuleVersion
from ..models.base import iso_utc


def version_summary(v: RuleVersion) -> dict[str, Any]:
    return {"number": v.number, "revision": v.revision, "parent": _parent_number(v), "author": v.author,
            "reason": v.reason, "created_at": iso_utc(v.created_at),
            "packs": len(v.content.get("packs") or []),
            "rules": sum(len(p.get("rules") or []) for p in v.content.get("packs") or [])}


def _parent_number(v: RuleVersion) -> int | None:
    # Versions form a chain: number N's parent is N-1 (enforced at publish).
    return v.number - 1 if v.parent_id is not None else None


def list_versions(db: Database) -> list[dict[str, Any]]:
    with db.session() as s:
        return [version_summary(v) for v in s.scalars(select(RuleVersion).order_by(RuleVersion.number.desc()))]


def get_version(session, number: int) -> RuleVersion:
    v = session.scalar(select(RuleVersion).where(RuleVersion.number == number))
    if v is None:
        raise NotFound(f"no rule version {number}", {"number": [f"unknown version {number}"]})
    return v


def current_version(session) -> RuleVersion:
    v = session.scalar(select(RuleVersion).order_by(RuleVersion.number.desc()).limit(1))
    if v is None:
        raise NotFound("no published rule version")
    return v


def version_detail(db: Database, number: int) -> dict[str, Any]:
    with db.session() as s:
        v = get_version(s, number)
        return version_summary(v) | {"content": v.content}
