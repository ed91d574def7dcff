"""Classification determinations: an officer's signed record of a product's ECCN, and its review feed."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, Json, utcnow


class Determination(Base):
    """One determination of one catalogue product. Its content is never updated: a new determination
    supersedes it (superseded_by_id/at are set once) and an approval is recorded once (approved_by/at)."""

    __tablename__ = "determinations"
    __table_args__ = (Index("ix_determinations_catalogue_id_product_id", "catalogue_id", "product_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    catalogue_id: Mapped[int] = mapped_column(ForeignKey("catalogues.id", ondelete="CASCADE"))
    # No foreign key: the history outlives a deleted product (sku and the spec snapshot stay).
    product_id: Mapped[int] = mapped_column(BigInteger)
    sku: Mapped[str] = mapped_column(String(200), index=True)
    product_name: Mapped[str] = mapped_column(String(300), default="")
    eccn: Mapped[str] = mapped_column(String(32), index=True)  # an ECCN, EAR99 or NOT_SUBJECT
    basis: Mapped[dict] = mapped_column(Json)  # {"spec_figures": {...}, "datasheet": "...", "text": "..."}
    spec: Mapped[dict] = mapped_column(Json)  # the product's spec when the determination was made
    input_sha256: Mapped[str] = mapped_column(String(64), index=True)
    rule_version: Mapped[int] = mapped_column(Integer)
    ruleset_revision: Mapped[str] = mapped_column(String(64), index=True)
    as_of: Mapped[date]
    # The engine's answer the officer saw (same revision, same date, same spec).
    computed_eccn: Mapped[str | None] = mapped_column(String(16))
    computed_status: Mapped[str] = mapped_column(String(16))
    computed_missing: Mapped[list] = mapped_column(Json, default=list)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decision_records.id", ondelete="SET NULL"))
    recorded_by: Mapped[str] = mapped_column(String(200), index=True)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    approval_required: Mapped[bool] = mapped_column(Boolean, default=False)
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[datetime | None]
    approval_note: Mapped[str | None] = mapped_column(Text)
    superseded_by_id: Mapped[int | None] = mapped_column(BigInteger)
    superseded_at: Mapped[datetime | None]


class DeterminationPolicy(Base):
    """Per-catalogue settings of determinations (four eyes: a second person must approve)."""

    __tablename__ = "determination_policies"
    catalogue_id: Mapped[int] = mapped_column(ForeignKey("catalogues.id", ondelete="CASCADE"), primary_key=True)
    four_eyes: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeterminationReview(Base):
    """The determinations' change feed: a determination whose product's computed answer moved (a rule
    publish or a spec change) or disagrees with it. `key` makes each transition recorded once."""

    __tablename__ = "determination_reviews"
    __table_args__ = (Index("ix_determination_reviews_catalogue_id_id", "catalogue_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    determination_id: Mapped[int] = mapped_column(ForeignKey("determinations.id", ondelete="CASCADE"), index=True)
    catalogue_id: Mapped[int] = mapped_column(ForeignKey("catalogues.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(BigInteger, index=True)
    sku: Mapped[str] = mapped_column(String(200))
    cause: Mapped[str] = mapped_column(String(16))  # recorded | rule_change | spec_change
    run_id: Mapped[int | None] = mapped_column(BigInteger)
    determined_eccn: Mapped[str] = mapped_column(String(32))
    old_eccn: Mapped[str | None] = mapped_column(String(16))
    old_status: Mapped[str | None] = mapped_column(String(16))
    old_revision: Mapped[str | None] = mapped_column(String(64))
    new_eccn: Mapped[str | None] = mapped_column(String(16))
    new_status: Mapped[str | None] = mapped_column(String(16))
    new_revision: Mapped[str | None] = mapped_column(String(64), index=True)
    needs_review: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
