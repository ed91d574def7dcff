"""Orders (transactions): parties, lines with their classification, holds and releases; licences with
their atomic draw-down."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, JobChunkColumns, Json, utcnow


class Order(Base):
    """One order as checked: its parties and their screening, its lines, and the order-level status
    (held while any line is held; released when every line is released; rejected)."""

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_status_id", "status", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(200), index=True)
    order_date: Mapped[date]
    ship_to: Mapped[str] = mapped_column(String(2), index=True)
    transaction_type: Mapped[str] = mapped_column(String(24))
    end_use: Mapped[str | None] = mapped_column(Text)
    headquarters: Mapped[str | None] = mapped_column(String(2))
    parties: Mapped[list] = mapped_column(Json)  # [{"role", "name", "country", "address", "parent": {...}}]
    screening: Mapped[list] = mapped_column(Json)  # per party: {"role", "party", "status", "hits": [...]}
    status: Mapped[str] = mapped_column(String(16))  # held | released | rejected
    ruleset_revision: Mapped[str] = mapped_column(String(64))
    rule_version: Mapped[int] = mapped_column(Integer)
    list_snapshots: Mapped[list] = mapped_column(Json, default=list)
    request: Mapped[dict] = mapped_column(Json)
    created_by: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)
    needs_review: Mapped[bool] = mapped_column(default=False)  # a re-check found a held line no longer blocked


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "seq"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str | None] = mapped_column(String(200))
    catalogue_id: Mapped[int | None] = mapped_column(BigInteger)
    product: Mapped[dict] = mapped_column(Json)  # the spec classified
    quantity: Mapped[int] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float)
    eccn: Mapped[str | None] = mapped_column(String(16))
    classification: Mapped[dict] = mapped_column(Json)
    licences: Mapped[list] = mapped_column(Json)  # the engine's licence answers for the destination
    status: Mapped[str] = mapped_column(String(16))  # held | released | rejected
    reasons: Mapped[list] = mapped_column(Json)  # [{"code", "message", "citation"}]
    licence_id: Mapped[int | None] = mapped_column(ForeignKey("licences.id"))
    released_by: Mapped[str | None] = mapped_column(String(200))
    released_at: Mapped[datetime | None]
    release_basis: Mapped[str | None] = mapped_column(String(16))  # auto | licence | override
    release_reason: Mapped[str | None] = mapped_column(Text)


class Licence(Base):
    """A licence the company holds. `quantity_used` and `value_used` only move through the conditional
    UPDATE of a draw-down, so two concurrent releases can never overdraw it."""

    __tablename__ = "licences"
    __table_args__ = (
        CheckConstraint("quantity_limit IS NULL OR quantity_used <= quantity_limit", name="quantity_within_limit"),
        CheckConstraint("value_limit IS NULL OR value_used <= value_limit", name="value_within_limit"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(100), unique=True)
    holder: Mapped[str] = mapped_column(String(300))
    eccns: Mapped[list] = mapped_column(Json, default=list)  # ECCNs covered (e.g. 3A090.a); empty: any
    products: Mapped[list] = mapped_column(Json, default=list)  # SKUs covered; empty: any with a covered ECCN
    destinations: Mapped[list] = mapped_column(Json)  # ISO codes
    parties: Mapped[list] = mapped_column(Json, default=list)  # end users named on the licence; empty: any
    quantity_limit: Mapped[int | None] = mapped_column(Integer)
    value_limit: Mapped[float | None] = mapped_column(Float)
    quantity_used: Mapped[int] = mapped_column(Integer, default=0)
    value_used: Mapped[float] = mapped_column(Float, default=0.0)
    valid_from: Mapped[date]
    valid_to: Mapped[date]
    notes: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LicenceDrawdown(Base):
    __tablename__ = "licence_drawdowns"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id", ondelete="CASCADE"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id", ondelete="CASCADE"), unique=True)
    quantity: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderChange(Base):
    """The orders' change feed: what a re-check (after a list snapshot or a rule publish) changed on an open
    order's line: held (a new reason), no_longer_blocked (held, but nothing holds it any more: flagged for
    review, never released silently) or reasons_changed."""

    __tablename__ = "order_changes"
    __table_args__ = (Index("ix_order_changes_order_id_id", "order_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    line_id: Mapped[int | None] = mapped_column(BigInteger)
    line_seq: Mapped[int | None] = mapped_column(Integer)
    cause: Mapped[str] = mapped_column(String(64), index=True)  # list_snapshot:<id> | rule_version:<n>
    kind: Mapped[str] = mapped_column(String(24), index=True)  # held | no_longer_blocked | reasons_changed
    old_status: Mapped[str] = mapped_column(String(16))
    new_status: Mapped[str] = mapped_column(String(16))
    old_reasons: Mapped[list] = mapped_column(Json, default=list)
    new_reasons: Mapped[list] = mapped_column(Json, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderRecheck(Base):
    """A re-check of every open order after a list snapshot or a rule publish: a job of
    compliance.services.jobs (chunks of order ids; counts summed from the chunks when it finishes)."""

    __tablename__ = "order_rechecks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cause: Mapped[str] = mapped_column(String(64), unique=True)  # list_snapshot:<id> | rule_version:<n>
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|running|done|failed
    total: Mapped[int] = mapped_column(Integer, default=0)  # open orders when it was planned
    counts: Mapped[dict] = mapped_column(Json, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class OrderRecheckChunk(JobChunkColumns, Base):
    """A range [lo_id, hi_id] of open order ids of a re-check; the unit of Celery work."""

    __tablename__ = "order_recheck_chunks"
    __table_args__ = (UniqueConstraint("recheck_id", "seq"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    recheck_id: Mapped[int] = mapped_column(ForeignKey("order_rechecks.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    lo_id: Mapped[int] = mapped_column(BigInteger)
    hi_id: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(Integer)
    counts: Mapped[dict] = mapped_column(Json, default=dict)
