"""Publishing rule content as a new version: a draft (with its dry run, the impact preview) or, as a
rollback, an earlier version's content.

A publish inserts version N+1, whose parent is version N, in one transaction with its activity event, its
re-evaluation run, the re-check of open orders (both sent after the commit).
`rule_versions.number` is UNIQUE, so two concurrent publishes from the same base cannot both land:
the loser's INSERT fails (IntegrityError); it answers 409 with its draft still open.
"""
from __future__ import annotations

import copy
import logging
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from ..engine.errors import Conflict, InvalidInput
from ..models import ActivityEvent, RuleDraft, RuleVersion
from .rule_drafts import (
    PreconditionFailed,
    PreconditionRequired,
    base_version_number,
    check_if_match,
    draft_etag,
    load_draft,
)
from .rule_validation import build_rulebook, validate_content, validated_rulebook
from .rule_versions import current_version, get_version, version_summary

log = logging.getLogger(__name__)


def preview_draft(app, draft_id: int, as_of: date | None = None, destinations: list[str] | None = None,
                  item_limit: int = 1000) -> dict[str, Any]:
    """Dry run: what would change in every catalogue if the draft were published (nothing is written)."""
    from .reevaluation import impact_preview

    db = app.extensions["db"]
    store = app.extensions["rulebooks"]
    with db.session() as s:
        d = load_draft(s, draft_id)
        base = s.get(RuleVersion, d.base_version_id)
        content = d.content
        s.expunge(base)
    new_rb = build_rulebook(content)  # schema errors -> 422; failing pack tests are reported, not fatal
    validation = validate_content(content)
    old_rb = store.rulebook_for(base)
    out = impact_preview(db, old_rb, new_rb, as_of or date.today(), destinations, item_limit)
    return {"draft": draft_id, "base_version": base.number, "from_revision": old_rb.revision,
            "to_revision": new_rb.revision, "validation": validation} | out


def publish_draft(app, draft_id: int, actor: str, reason: str, as_of: date | None = None,
                  confirm: bool = False, if_match: str | None = None, require_if_match: bool = False) -> dict[str, Any]:
    """Publish in one transaction: version N+1, a pending re-evaluation run and an activity event.
    The re-evaluation is enqueued only after the commit. What is published is the draft as it was read
    here (and as `if_match` names it): an edit that lands before the publish commits makes it fail."""
    db = app.extensions["db"]
    with db.session() as s:
        d = load_draft(s, draft_id)
        if d.status != "open":
            raise Conflict(f"draft {draft_id} is {d.status}", {"draft_id": [f"draft is {d.status}"]})
        check_if_match(d, if_match, require_if_match)
        content, row_version = d.content, d.row_version
    return _publish(app, content, actor, reason, as_of or date.today(), confirm, draft_id=draft_id,
                    draft_row_version=row_version, if_match=if_match)


def rollback_to(app, number: int, actor: str, reason: str, as_of: date | None = None,
                confirm: bool = False) -> dict[str, Any]:
    """Publish an earlier version's content as a new version."""
    db = app.extensions["db"]
    with db.session() as s:
        v = get_version(s, number)
        content = copy.deepcopy(v.content)
    return _publish(app, content, actor, reason, as_of or date.today(), confirm, rollback_of=number)


def _publish(app, content: dict, actor: str, reason: str, as_of: date, confirm: bool,
             draft_id: int | None = None, rollback_of: int | None = None, draft_row_version: int | None = None,
             if_match: str | None = None) -> dict[str, Any]:
    from .order_recheck import request_recheck
    from .reevaluation import create_run, impact_preview

    if not reason or not reason.strip():
        raise InvalidInput("a reason is required", {"reason": ["required: say why the rules change"]})
    db = app.extensions["db"]
    store = app.extensions["rulebooks"]
    config = app.config["COMPLIANCE"]
    new_rb = validated_rulebook(content)
    with db.session() as s:
        base = current_version(s)
        if draft_id is not None:
            d = load_draft(s, draft_id)
            if d.base_version_id != base.id:
                raise Conflict(
                    f"version {base.number} was published after this draft was made from version "
                    f"{base_version_number(s, d)}; the draft is still open: start a new draft from version {base.number} "
                    "and re-apply the edits", {"base_version": [f"stale: current version is {base.number}"]})
        s.expunge(base)
    if base.revision == new_rb.revision:
        raise InvalidInput("nothing to publish: the content equals the current version",
                           {"content": ["identical to the current version"]})
    old_rb = store.rulebook_for(base)
    preview = None
    if not confirm:
        preview = impact_preview(db, old_rb, new_rb, as_of, None, item_limit=0)
        if preview["share_changed"] > config.STORM_GUARD_SHARE:
            raise PreconditionRequired(
                f"this publish would change {preview['changed_products']} of {preview['total_products']} products "
                f"({preview['share_changed']:.1%} > STORM_GUARD_SHARE {config.STORM_GUARD_SHARE:.0%}); "
                "resend with confirm=true", {"confirm": ["required for this publish"], "preview": preview})
    try:
        with db.session() as s:
            if draft_id is not None:
                d = load_draft(s, draft_id, lock=True)
                if d.status != "open" or d.base_version_id != base.id:
                    raise Conflict("the draft changed while publishing", {"draft_id": ["changed concurrently"]})
                if d.row_version != draft_row_version:  # edited since its content was validated above
                    _changed_while_publishing(d, if_match)
            version = RuleVersion(number=base.number + 1, revision=new_rb.revision, parent_id=base.id,
                                  author=actor, reason=reason, content=new_rb.content)
            s.add(version)
            s.flush()  # UNIQUE(number): a concurrent publish of N+1 fails here or at commit
            if draft_id is not None:
                d.status = "published"
                d.published_version_id = version.id
            run = create_run(s, base.id, version.id, as_of, config.AUDIT_CHUNK_SIZE)  # sent after commit
            s.add(ActivityEvent(actor=actor, action="rules.rollback" if rollback_of else "rules.publish",
                                target=f"rule_version:{version.number}", reason=reason,
                                detail={"number": version.number, "revision": version.revision,
                                     "parent": base.number, "parent_revision": base.revision,
                                     "draft": draft_id, "rollback_of": rollback_of, "run": run.id,
                                     "as_of": as_of.isoformat(), "confirmed": confirm}))
            result = version_summary(version) | {"run_id": run.id, "as_of": as_of.isoformat()}
            run_id = run.id
            request_recheck(s, f"rule_version:{version.number}")  # issue 11: open orders re-checked, after commit
    except IntegrityError:
        raise Conflict("another publish landed at the same time; nothing was applied and the draft is still open",
                       {"base_version": ["stale: a concurrent publish won"]}) from None
    except StaleDataError:  # the draft's conditional UPDATE found another row version (SQLite: no FOR UPDATE)
        with db.session() as s:
            _changed_while_publishing(load_draft(s, draft_id), if_match)
    if preview is not None:
        result["impact"] = {k: preview[k] for k in ("total_products", "changed_products", "changed_rows",
                                                   "share_changed")}
    log.info("published rule version %s (run %s)", result["number"], run_id)
    return result


def _changed_while_publishing(d: RuleDraft, if_match: str | None) -> None:
    current = draft_etag(d)
    message = (f"draft {d.id} was changed by someone else while it was being published (current ETag {current}); "
               "nothing was published and the draft is still open: review it again and publish")
    if if_match is not None:
        raise PreconditionFailed(message, {"If-Match": [f"stale: the draft's current ETag is {current}"]}, current)
    raise Conflict(message, {"draft_id": ["changed concurrently"]})
