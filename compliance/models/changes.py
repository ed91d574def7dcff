"""Re-evaluation runs with their chunks, the change records they find."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, JobChunkColumns, Json, utcnow


class ReevaluationRun(Base):
    """Re-evaluation of every catalogue after a publish (old version -> new version, as of a date)."""

    __tablename__ = "reevaluation_runs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    from_version_id: Mapped[int | None] = mapped_column(ForeignKey("rule_versions.id"))
    to_version_id: Mapped[int] = mapped_column(ForeignKey("rule_versions.id"))
    as_of: Mapped[date]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|running|done|failed
    total: Mapped[int] = mapped_column(Integer, default=0)
    changed_products: Mapped[int] = mapped_column(Integer, default=0)
    change_records: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict] = mapped_column(Json, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ReevaluationChunk(JobChunkColumns, Base):
    __tablename__ = "reevaluation_chunks"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reevaluation_runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    catalogue_id: Mapped[int] = mapped_column(ForeignKey("catalogues.id", ondelete="CASCADE"))
    lo_id: Mapped[int] = mapped_column(BigInteger)
    hi_id: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(Integer)
    counts: Mapped[dict] = mapped_column(Json, default=dict)


class ChangeRecord(Base):
    """A product x destination whose outcome changed between two rule revisions (or two dates)."""

    __tablename__ = "change_records"
    __table_args__ = (
        # Every run records its own changes (a re-publish of an earlier revision pair on the same day too);
        # a chunk run twice within its run inserts nothing new (ON CONFLICT DO NOTHING).
        UniqueConstraint("run_id", "product_id", "destination", name="uq_change_records_run_cell"),
        Index("ix_change_records_catalogue_id_id", "catalogue_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No index of its own: uq_change_records_run_cell starts with run_id (migration 0018 dropped the duplicate).
    run_id: Mapped[int | None] = mapped_column(ForeignKey("reevaluation_runs.id", ondelete="SET NULL"))
    catalogue_id: Mapped[int] = mapped_column(ForeignKey("catalogues.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(BigInteger, index=True)
    sku: Mapped[str] = mapped_column(String(200))
    destination: Mapped[str] = mapped_column(String(2), index=True)
    as_of: Mapped[date]
    from_revision: Mapped[str] = mapped_column(String(64))
    to_revision: Mapped[str] = mapped_column(String(64), index=True)
    old_eccn: Mapped[str | None] = mapped_column(String(16))
    new_eccn: Mapped[str | None] = mapped_column(String(16))
    old_status: Mapped[str | None] = mapped_column(String(16))
    new_status: Mapped[str | None] = mapped_column(String(16))
    old_requirement: Mapped[str | None] = mapped_column(String(24))
    new_requirement: Mapped[str | None] = mapped_column(String(24))
    old_review_policy: Mapped[str | None] = mapped_column(String(32))
    new_review_policy: Mapped[str | None] = mapped_column(String(32))
    cause_rule_ids: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
