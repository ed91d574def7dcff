"""Rule drafts: open copies of a published version that edits change, each write guarded by its ETag
(If-Match, RFC 9110).

The edit language itself is services/rule_edits.py; a draft becomes a version through services/rule_publish.py.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from ..db import Database
from ..engine.errors import ComplianceError, Conflict, InvalidInput, NotFound
from ..engine.rulebook import normalise
from ..models import ActivityEvent, RuleDraft, RuleVersion
from ..models.base import iso_utc
from .rule_edits import apply_op
from .rule_validation import validate_content
from .rule_versions import current_version, get_version


class PreconditionRequired(ComplianceError):
    """428: the storm guard (the publish would change too many products; resend with confirm=true), or a
    draft write without If-Match where DRAFT_IF_MATCH=required."""

    status = 428


class PreconditionFailed(ComplianceError):
    """412: the If-Match of a draft write names a version of the draft that is no longer current.
    `etag` is the current one (the API sends it as the ETag header)."""

    status = 412

    def __init__(self, message: str, errors: dict, etag: str | None):
        super().__init__(message, errors)
        self.etag = etag

def draft_etag(d: RuleDraft) -> str:
    """The draft's entity tag (a strong ETag, quoted): its write counter, which every write increments."""
    return f'"{d.row_version}"'


def etag_matches(if_match: str, current: str) -> bool:
    """RFC 9110 If-Match with the strong comparison: `*` or any listed tag equal to `current`; weak tags
    (W/"...") never match. A tag sent without its quotes is taken as quoted (curl users forget them)."""
    for part in if_match.split(","):
        part = part.strip()
        if part == "*":
            return True
        if not part or part.startswith("W/"):
            continue
        if not (len(part) >= 2 and part[0] == part[-1] == '"'):
            part = f'"{part}"'
        if part == current:
            return True
    return False


def check_if_match(d: RuleDraft, if_match: str | None, require: bool = False) -> None:
    """The precondition of a draft write: 412 when If-Match names another version of the draft,
    428 when it is missing and required (DRAFT_IF_MATCH=required); no If-Match otherwise passes."""
    current = draft_etag(d)
    if if_match is None:
        if require:
            raise PreconditionRequired(
                f"send If-Match with the draft's ETag (current: {current}) so that edits cannot overwrite "
                "each other; GET the draft to read it", {"If-Match": [f"required: the draft's ETag, now {current}"]})
        return
    if not etag_matches(if_match, current):
        raise PreconditionFailed(
            f"draft {d.id} was changed by someone else since you read it (If-Match {if_match.strip()[:100]}, "
            f"current ETag {current}); nothing was applied: GET the draft again and redo the change on it",
            {"If-Match": [f"stale: the draft's current ETag is {current}"]}, current)


def _current_etag(db: Database, draft_id: int) -> str | None:
    with db.session() as s:
        d = s.get(RuleDraft, draft_id)
        return draft_etag(d) if d is not None else None


def current_etag(db: Database, draft_id: int) -> str:
    """The draft's ETag now (404 if there is no such draft), without loading or validating its content."""
    etag = _current_etag(db, draft_id)
    if etag is None:
        raise NotFound(f"no draft {draft_id}", {"draft_id": [f"unknown draft {draft_id}"]})
    return etag


def _write(db: Database, draft_id: int, if_match: str | None, work: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Run `work(session)` in one transaction. The check and the write are atomic: the draft is read FOR
    UPDATE (PostgreSQL) and its UPDATE is conditional on the row version it read (every database), so a
    write that lands in between makes this one fail: 412 with an If-Match, 409 without."""
    try:
        with db.session() as s:
            return work(s)
    except StaleDataError:
        current = _current_etag(db, draft_id)
        if if_match is not None:
            raise PreconditionFailed(
                f"draft {draft_id} was changed by someone else while this request ran (current ETag {current}); "
                "nothing was applied: GET the draft again and redo the change on it",
                {"If-Match": [f"stale: the draft's current ETag is {current}"]}, current) from None
        raise Conflict(f"draft {draft_id} was changed by someone else while this request ran; nothing was applied: "
                       "try again", {"draft_id": ["changed concurrently"]}) from None


def draft_view(d: RuleDraft, base_number: int | None = None, validation: dict | None = None,
               with_content: bool = True, published_number: int | None = None) -> dict[str, Any]:
    out = {"id": d.id, "etag": draft_etag(d), "base_version": base_number, "published_version": published_number,
           "author": d.author, "title": d.title, "status": d.status,
           "created_at": iso_utc(d.created_at),
           "updated_at": iso_utc(d.updated_at)}
    if with_content:
        out["content"] = d.content
    if validation is not None:
        out["validation"] = validation
    return out


def base_version_number(session, d: RuleDraft) -> int:
    return session.get(RuleVersion, d.base_version_id).number


def _published_number(session, d: RuleDraft) -> int | None:
    return session.get(RuleVersion, d.published_version_id).number if d.published_version_id else None


def create_draft(db: Database, actor: str, base_version: int | None = None, title: str = "") -> dict[str, Any]:
    """A new open draft holding a copy of a published version (default: the current one)."""
    with db.session() as s:
        if base_version is not None and s.scalar(select(RuleVersion.id).where(RuleVersion.number == base_version)) is None:
            raise InvalidInput(f"no rule version {base_version}", {"base_version": [f"unknown version {base_version}"]})
        base = get_version(s, base_version) if base_version is not None else current_version(s)
        d = RuleDraft(base_version_id=base.id, author=actor, title=title, content=copy.deepcopy(base.content))
        s.add(d)
        s.flush()
        s.add(ActivityEvent(actor=actor, action="rules.draft.create", target=f"draft:{d.id}",
                            detail={"base_version": base.number, "title": title}))
        return draft_view(d, base.number)


def list_drafts(db: Database, status: str | None = None) -> list[dict[str, Any]]:
    with db.session() as s:
        q = select(RuleDraft).order_by(RuleDraft.id.desc())
        if status:
            q = q.where(RuleDraft.status == status)
        return [draft_view(d, base_version_number(s, d), with_content=False, published_number=_published_number(s, d))
                for d in s.scalars(q)]


def load_draft(session, draft_id: int, lock: bool = False) -> RuleDraft:
    q = select(RuleDraft).where(RuleDraft.id == draft_id)
    if lock:
        q = q.with_for_update()
    d = session.scalar(q)
    if d is None:
        raise NotFound(f"no draft {draft_id}", {"draft_id": [f"unknown draft {draft_id}"]})
    return d


def _open_draft(session, draft_id: int, lock: bool = False) -> RuleDraft:
    d = load_draft(session, draft_id, lock)
    if d.status != "open":
        raise Conflict(f"draft {draft_id} is {d.status}; only open drafts can change",
                       {"draft_id": [f"draft is {d.status}"]})
    return d


def get_draft(db: Database, draft_id: int) -> dict[str, Any]:
    with db.session() as s:
        d = load_draft(s, draft_id)
        return draft_view(d, base_version_number(s, d), validate_content(d.content), published_number=_published_number(s, d))


def apply_edits(db: Database, draft_id: int, ops: list[dict[str, Any]], actor: str, if_match: str | None = None,
                require_if_match: bool = False) -> dict[str, Any]:
    """Apply a list of edit operations atomically (all or none) and report the draft's validity.
    `if_match`: the draft's ETag as the caller read it (412 if it is no longer current)."""

    def work(s) -> dict[str, Any]:
        d = _open_draft(s, draft_id, lock=True)
        check_if_match(d, if_match, require_if_match)
        content = copy.deepcopy(d.content)
        errors: dict[str, list[str]] = {}
        for i, op in enumerate(ops):
            try:
                apply_op(content, op)
            except InvalidInput as exc:
                for key, msgs in (exc.errors or {f"ops[{i}]": [exc.message]}).items():
                    errors.setdefault(f"ops[{i}].{key}" if not key.startswith("ops[") else key, []).extend(msgs)
        if errors:
            raise InvalidInput(f"{len(errors)} edit operation problem(s); nothing was applied", errors)
        d.content = normalise(content)
        flag_modified(d, "content")  # a write even when the content comes out equal: the ETag changes
        s.add(ActivityEvent(actor=actor, action="rules.draft.edit", target=f"draft:{d.id}",
                            detail={"ops": [o.get("op") for o in ops]}))
        s.flush()
        return draft_view(d, base_version_number(s, d), validate_content(d.content))

    return _write(db, draft_id, if_match, work)


def replace_content(db: Database, draft_id: int, content: dict[str, Any], actor: str, if_match: str | None = None,
                    require_if_match: bool = False) -> dict[str, Any]:
    """PUT the whole rulebook content (power users); validity is reported, not enforced, until publish."""
    if not isinstance(content, dict):
        raise InvalidInput("content must be a mapping", {"content": ["must be a mapping with packs and country_groups"]})

    def work(s) -> dict[str, Any]:
        d = _open_draft(s, draft_id, lock=True)
        check_if_match(d, if_match, require_if_match)
        d.content = normalise(content)
        flag_modified(d, "content")  # a write even when the content comes out equal: the ETag changes
        s.add(ActivityEvent(actor=actor, action="rules.draft.replace", target=f"draft:{d.id}", detail=None))
        s.flush()
        return draft_view(d, base_version_number(s, d), validate_content(d.content))

    return _write(db, draft_id, if_match, work)


def discard_draft(db: Database, draft_id: int, actor: str, if_match: str | None = None,
                  require_if_match: bool = False) -> dict[str, Any]:
    def work(s) -> dict[str, Any]:
        d = _open_draft(s, draft_id, lock=True)
        check_if_match(d, if_match, require_if_match)
        d.status = "discarded"
        s.add(ActivityEvent(actor=actor, action="rules.draft.discard", target=f"draft:{d.id}", detail=None))
        s.flush()
        return draft_view(d, base_version_number(s, d), with_content=False)

    return _write(db, draft_id, if_match, work)


def validate_draft(db: Database, draft_id: int) -> dict[str, Any]:
    with db.session() as s:
        d = load_draft(s, draft_id)
        content = d.content
    return validate_content(content)
