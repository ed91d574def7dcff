from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, Json, utcnow


class DecisionRecord(Base):
    """A stored classify decision (request, response, revision), kept when the caller asks."""

    __tablename__ = "decision_records"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200), default="")
    as_of: Mapped[date]
    ruleset_revision: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict] = mapped_column(Json)
    response: Mapped[dict] = mapped_column(Json)
