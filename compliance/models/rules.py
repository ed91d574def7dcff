from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, Json, utcnow


class RuleVersion(Base):
    """An immutable published rulebook (all packs + country groups). Never updated after insert."""

    __tablename__ = "rule_versions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)  # 1, 2, 3 ... in publish order
    revision: Mapped[str] = mapped_column(String(64), index=True)  # sha256 of canonical JSON content
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("rule_versions.id"))
    author: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    content: Mapped[dict] = mapped_column(Json)


class RuleDraft(Base):
    """A working copy of a rulebook, based on a published version. Published drafts are frozen.

    `row_version` counts the draft's writes: SQLAlchemy's version counter makes every UPDATE of a draft
    conditional on the value it read (``WHERE row_version = :read``) and increments it, and the API sends it
    as the draft's ETag (If-Match: a stale one is 412)."""

    __tablename__ = "rule_drafts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    base_version_id: Mapped[int] = mapped_column(ForeignKey("rule_versions.id"))
    author: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300), default="")
    content: Mapped[dict] = mapped_column(Json)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | published | discarded
    published_version_id: Mapped[int | None] = mapped_column(ForeignKey("rule_versions.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    row_version: Mapped[int] = mapped_column(Integer, server_default="1")

    __mapper_args__ = {"version_id_col": row_version}
