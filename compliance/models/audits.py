from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, JobChunkColumns, Json, utcnow


class Audit(Base):
    """A catalogue audit pinned to one rule version, one date and a list of destinations."""

    __tablename__ = "audits"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    catalogue_id: Mapped[int] = mapped_column(ForeignKey("catalogues.id", ondelete="CASCADE"), index=True)
    rule_version_id: Mapped[int] = mapped_column(ForeignKey("rule_versions.id"))
    ruleset_revision: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[date]
    destinations: Mapped[list] = mapped_column(Json)
    headquarters: Mapped[str | None] = mapped_column(String(2))
    # export | reexport | in_country_transfer (engine.vocabulary.TRANSACTION_TYPES), for every product
    transaction_type: Mapped[str] = mapped_column(String(24), default="export", server_default="export")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|running|done|failed
    total: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict] = mapped_column(Json, default=dict)
    timings: Mapped[dict] = mapped_column(Json, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class AuditChunk(JobChunkColumns, Base):
    """A slice [lo_id, hi_id] of the catalogue's product ids; the unit of Celery work."""

    __tablename__ = "audit_chunks"
    __table_args__ = (UniqueConstraint("audit_id", "seq"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("audits.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    lo_id: Mapped[int] = mapped_column(BigInteger)
    hi_id: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(Integer)
    counts: Mapped[dict] = mapped_column(Json, default=dict)
    seconds: Mapped[float | None] = mapped_column(Float)


class AuditResult(Base):
    """One row per product per audit. `outcomes` encodes the licence result of each destination
    of the audit, in the audit's destination order: 'req:policy:exceptions:rule_bits' joined by ';'
    (codes from compliance.engine.evaluate; rule_bits index the licence rules in force for the
    audit's pinned revision and date). Decoded by compliance.services.audit_outcomes."""

    __tablename__ = "audit_results"
    __table_args__ = (UniqueConstraint("audit_id", "product_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("audits.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(BigInteger)
    sku: Mapped[str] = mapped_column(String(200))
    eccn: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    margins: Mapped[str] = mapped_column(Text, default="")
    missing: Mapped[str] = mapped_column(Text, default="")
    outcomes: Mapped[str] = mapped_column(Text)
