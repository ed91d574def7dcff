"""The activity log: who changed what, when, why (rules, API keys, webhooks, orders, screening), newest first."""
from __future__ import annotations

from sqlalchemy import func, select

from ..db import Database
from ..models import ActivityEvent
from .paging import Page


def activity_query(action: str | None = None, actor: str | None = None):
    """The activity events matching an action (``*`` wildcards) and an actor."""
    q = select(ActivityEvent)
    if action:
        q = q.where(ActivityEvent.action.like(action.replace("*", "%")))
    if actor:
        q = q.where(ActivityEvent.actor == actor)
    return q


def activity_page(db: Database, page: int = 1, per_page: int = 100, action: str | None = None,
                  actor: str | None = None) -> Page:
    """A page of the activity log, newest first: ActivityEvent rows (the API's AuditEventSchema dumps them)."""
    with db.session() as s:
        q = activity_query(action, actor)
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        items = list(s.scalars(q.order_by(ActivityEvent.id.desc()).offset((page - 1) * per_page).limit(per_page)))
    return Page(items, page, per_page, total)
