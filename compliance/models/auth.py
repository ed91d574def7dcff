from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, utcnow

ROLES = ("viewer", "auditor", "admin")  # each role includes the ones before it
OVERLAP_HOURS_DEFAULT = 24  # rotation: the old key keeps working this long beside the new one
OVERLAP_HOURS_MAX = 720  # 30 days
EXPIRES_IN_DAYS_MAX = 3650  # the longest lifetime a new key may be given (10 years)


def as_utc(at: datetime) -> datetime:
    """A given time (an expiry typed on the command line, sent to the API) as aware UTC: a naive one is taken
    as UTC. Stored timestamps need no such step: models.base.UtcDateTime reads them back aware."""
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def expiry_problem(expires_at: datetime | None, now: datetime | None = None) -> str | None:
    """Why `expires_at` cannot be a new key's expiry (None: it can). A naive time is taken as UTC."""
    if expires_at is None:
        return None
    now = now or datetime.now(timezone.utc)
    at = as_utc(expires_at)
    if at <= now:
        return "must be in the future"
    if at > now + timedelta(days=EXPIRES_IN_DAYS_MAX):
        return f"must be at most {EXPIRES_IN_DAYS_MAX} days from now"
    return None


class ApiKey(Base):
    """An API key. Only the sha256 of the key is stored; `prefix` identifies it in lists and logs.

    A key may expire (`expires_at`). Rotation makes a new key for the same holder (`rotated_from_id` on it,
    unique: a key has at most one successor) and sets the old key's `replaced_by_id` and an expiry after the
    overlap period."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    rotated_from_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("api_keys.id", ondelete="SET NULL"), unique=True, index=True)
    replaced_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("api_keys.id", ondelete="SET NULL"))


class ConsoleSession(Base):
    """A signed-in web console session: the browser holds a random token, the database its sha256.

    The session acts as its API key (same role, same actor), so revoking the key ends it at once."""

    __tablename__ = "console_sessions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[int] = mapped_column(BigId, ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
