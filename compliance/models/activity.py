"""The activity log: one row per change anyone made (rules, API keys, webhooks, orders, screening)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, Json, utcnow


class ActivityEvent(Base):
    """Who did what, to what, when, why: written by every service that changes rules, keys, webhooks, orders,
    screening lists or reviews (read back by services/activity_log.py)."""

    __tablename__ = "activity_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict | None] = mapped_column(Json)
