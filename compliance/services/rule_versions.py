"""Rule versions: drafts and their edit operations, validation, impact preview, publish, rollback,
diffs between versions and the audit trail of rule changes.

Published versions are immutable rows; a publish inserts version N+1 whose parent is version N.
`rule_versions.number` is UNIQUE, so two concurrent publishes from the same base cannot both land:
the loser's INSERT fails (IntegrityError) and it answers 409 with its draft still open.
"""
from __future__ import annotations

import copy
import io
import logging
import re
import zipfile
from datetime import date
from typing import Any, Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from ..db import Database
from ..engine import Rulebook, RulebookInvalid
from ..engine.countries import COUNTRY_INDEX
from ..engine.errors import ComplianceError, Conflict, InvalidInput, NotFound
from ..engine.packtests import run_pack_tests
from ..engine.rulebook import canonical_json, normalise
from ..engine.vocabulary import REQUIREMENTS, REVIEW_POLICIES
from ..models import AuditEvent, RuleDraft, RuleVersion
from ..models.base import iso_utc
from .paging import Page
from .rule_export import dump_yaml

log = logging.getLogger(__name__)


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


# ---------------------------------------------------------------- versions

def version_summary(v: RuleVersion) -> dict[str, Any]:
    return {"number": v.number, "revision": v.revision, "parent": _parent_number(v), "author": v.author,
            "reason": v.reason, "created_at": iso_utc(v.created_at),
            "packs": len(v.content.get("packs") or []),
            "rules": sum(len(p.get("rules") or []) for p in v.content.get("packs") or [])}


def _parent_number(v: RuleVersion) -> int | None:
    # Versions form a chain: number N's parent is N-1 (enforced at publish).
    return v.number - 1 if v.parent_id is not None else None


def list_versions(db: Database) -> list[dict[str, Any]]:
    with db.session() as s:
        return [version_summary(v) for v in s.scalars(select(RuleVersion).order_by(RuleVersion.number.desc()))]


def get_version(session, number: int) -> RuleVersion:
    v = session.scalar(select(RuleVersion).where(RuleVersion.number == number))
    if v is None:
        raise NotFound(f"no rule version {number}", {"number": [f"unknown version {number}"]})
    return v


def current_version(session) -> RuleVersion:
    v = session.scalar(select(RuleVersion).order_by(RuleVersion.number.desc()).limit(1))
    if v is None:
        raise NotFound("no published rule version")
    return v


def version_detail(db: Database, number: int) -> dict[str, Any]:
    with db.session() as s:
        v = get_version(s, number)
        return version_summary(v) | {"content": v.content}


def export_version(db: Database, number: int, fmt: str = "zip") -> tuple[bytes, str, str]:
    """The version in the rules/ YAML layout: a zip of files, or one multi-document YAML bundle."""
    with db.session() as s:
        v = get_version(s, number)
        content = v.content
    files: list[tuple[str, str]] = []
    for i, pack in enumerate(content["packs"]):
        # The index prefix keeps the pack order (part of the content hash) when rules/ is loaded back.
        start = str(pack.get("effective_from") or "0000-00-00")
        files.append((f"packs/{i:03d}-{start}-{pack['id']}.yaml", dump_yaml(pack)))
    files.append(("country_groups.yaml", dump_yaml(content["country_groups"])))
    if fmt == "yaml":
        body = "".join(f"--- # {name}\n{text}" for name, text in files)
        return body.encode("utf-8"), "application/yaml", f"rules-v{number}.yaml"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files:
            zf.writestr(f"rules-v{number}/{name}", text)
    return buf.getvalue(), "application/zip", f"rules-v{number}.zip"


# ---------------------------------------------------------------- drafts

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


def _base_number(session, d: RuleDraft) -> int:
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
        s.add(AuditEvent(actor=actor, action="rules.draft.create", target=f"draft:{d.id}",
                         detail={"base_version": base.number, "title": title}))
        return draft_view(d, base.number)


def list_drafts(db: Database, status: str | None = None) -> list[dict[str, Any]]:
    with db.session() as s:
        q = select(RuleDraft).order_by(RuleDraft.id.desc())
        if status:
            q = q.where(RuleDraft.status == status)
        return [draft_view(d, _base_number(s, d), with_content=False, published_number=_published_number(s, d))
                for d in s.scalars(q)]


def _get_draft(session, draft_id: int, lock: bool = False) -> RuleDraft:
    q = select(RuleDraft).where(RuleDraft.id == draft_id)
    if lock:
        q = q.with_for_update()
    d = session.scalar(q)
    if d is None:
        raise NotFound(f"no draft {draft_id}", {"draft_id": [f"unknown draft {draft_id}"]})
    return d


def _open_draft(session, draft_id: int, lock: bool = False) -> RuleDraft:
    d = _get_draft(session, draft_id, lock)
    if d.status != "open":
        raise Conflict(f"draft {draft_id} is {d.status}; only open drafts can change",
                       {"draft_id": [f"draft is {d.status}"]})
    return d


def get_draft(db: Database, draft_id: int) -> dict[str, Any]:
    with db.session() as s:
        d = _get_draft(s, draft_id)
        return draft_view(d, _base_number(s, d), validate_content(d.content), published_number=_published_number(s, d))


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
        s.add(AuditEvent(actor=actor, action="rules.draft.edit", target=f"draft:{d.id}",
                         detail={"ops": [o.get("op") for o in ops]}))
        s.flush()
        return draft_view(d, _base_number(s, d), validate_content(d.content))

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
        s.add(AuditEvent(actor=actor, action="rules.draft.replace", target=f"draft:{d.id}", detail=None))
        s.flush()
        return draft_view(d, _base_number(s, d), validate_content(d.content))

    return _write(db, draft_id, if_match, work)


def discard_draft(db: Database, draft_id: int, actor: str, if_match: str | None = None,
                  require_if_match: bool = False) -> dict[str, Any]:
    def work(s) -> dict[str, Any]:
        d = _open_draft(s, draft_id, lock=True)
        check_if_match(d, if_match, require_if_match)
        d.status = "discarded"
        s.add(AuditEvent(actor=actor, action="rules.draft.discard", target=f"draft:{d.id}", detail=None))
        s.flush()
        return draft_view(d, _base_number(s, d), with_content=False)

    return _write(db, draft_id, if_match, work)


# ---------------------------------------------------------------- edit operations

def _find_rule(content: dict, rule_id: str, field: str = "rule_id") -> tuple[dict, int, dict]:
    for pack in content.get("packs") or []:
        for i, rule in enumerate(pack.get("rules") or []):
            if rule.get("id") == rule_id:
                return pack, i, rule
    raise InvalidInput(f"no rule {rule_id!r}", {field: [f"no rule with id {rule_id!r} in the draft"]})


def _find_pack(content: dict, pack_id: str, field: str = "pack_id") -> dict:
    for pack in content.get("packs") or []:
        if pack.get("id") == pack_id:
            return pack
    raise InvalidInput(f"no pack {pack_id!r}", {field: [f"no pack with id {pack_id!r} in the draft"]})


_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _walk(node: Any, path: str) -> tuple[Any, Any]:
    """Resolve 'when.any[0].all[1]' inside a rule; return (parent container, key) of the last step."""
    tokens = []
    for part in path.split("."):
        pos = 0
        for m in _TOKEN.finditer(part):
            if m.start() != pos:
                raise InvalidInput("bad path", {"path": [f"cannot parse {path!r} (use e.g. when.any[0].all[1])"]})
            tokens.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
            pos = m.end()
        if pos != len(part) or not part:
            raise InvalidInput("bad path", {"path": [f"cannot parse {path!r} (use e.g. when.any[0].all[1])"]})
    parent, key = None, None
    cur = node
    for tok in tokens:
        ok = (isinstance(tok, int) and isinstance(cur, list) and 0 <= tok < len(cur)) or \
             (isinstance(tok, str) and isinstance(cur, dict) and tok in cur)
        if not ok:
            raise InvalidInput("bad path", {"path": [f"{path!r} does not exist in the rule (stopped at {tok!r})"]})
        parent, key, cur = cur, tok, cur[tok]
    return parent, key


def _require(op: dict, *names: str) -> None:
    missing = {n: ["required"] for n in names if op.get(n) in (None, "")}
    if missing:
        raise InvalidInput(f"missing {', '.join(missing)}", missing)


def _check_date(value: Any, field: str) -> str:
    try:
        return (value if isinstance(value, date) else date.fromisoformat(str(value))).isoformat()
    except ValueError:
        raise InvalidInput(f"{field}: not a date", {field: [f"not a date (YYYY-MM-DD): {value!r}"]}) from None


def _op_set_threshold(content: dict, op: dict) -> None:
    _require(op, "rule_id", "path")
    if "value" not in op:
        raise InvalidInput("missing value", {"value": ["required"]})
    _, _, rule = _find_rule(content, op["rule_id"])
    path = op["path"]
    path = path if path.startswith("when") else f"when.{path}"
    parent, key = _walk(rule, path)
    target = parent[key]
    if isinstance(target, dict) and "metric" in target:
        target["value"] = op["value"]
    elif key == "value":
        parent[key] = op["value"]
    else:
        raise InvalidInput("not a leaf", {"path": [f"{op['path']!r} is not a condition leaf or its value"]})


def _op_add_rule(content: dict, op: dict) -> None:
    _require(op, "pack_id", "rule")
    if not isinstance(op["rule"], dict) or not op["rule"].get("id"):
        raise InvalidInput("rule needs an id", {"rule.id": ["required"]})
    pack = _find_pack(content, op["pack_id"])
    for p in content.get("packs") or []:
        if any(r.get("id") == op["rule"]["id"] for r in p.get("rules") or []):
            raise InvalidInput("duplicate rule id", {"rule.id": [f"rule {op['rule']['id']!r} already exists"]})
    pack.setdefault("rules", []).append(copy.deepcopy(op["rule"]))


def _op_update_rule(content: dict, op: dict) -> None:
    _require(op, "rule_id", "changes")
    if not isinstance(op["changes"], dict):
        raise InvalidInput("changes must be a mapping", {"changes": ["must be a mapping of rule fields"]})
    if "id" in op["changes"]:
        raise InvalidInput("cannot rename", {"changes.id": ["rule ids cannot change; end the rule and add a new one"]})
    _, _, rule = _find_rule(content, op["rule_id"])
    for k, v in op["changes"].items():
        if v is None:
            rule.pop(k, None)
        else:
            rule[k] = copy.deepcopy(v)


def _op_end_rule(content: dict, op: dict) -> None:
    _require(op, "rule_id", "effective_to")
    _, _, rule = _find_rule(content, op["rule_id"])
    rule["effective_to"] = _check_date(op["effective_to"], "effective_to")


def _op_remove_rule(content: dict, op: dict) -> None:
    _require(op, "rule_id")
    pack, i, _ = _find_rule(content, op["rule_id"])
    del pack["rules"][i]


def _op_add_pack(content: dict, op: dict) -> None:
    _require(op, "pack")
    pack = op["pack"]
    if not isinstance(pack, dict) or not pack.get("id"):
        raise InvalidInput("pack needs an id", {"pack.id": ["required"]})
    if any(p.get("id") == pack["id"] for p in content.get("packs") or []):
        raise InvalidInput("duplicate pack", {"pack.id": [f"pack {pack['id']!r} already exists"]})
    content.setdefault("packs", []).append(copy.deepcopy(pack))


def _op_remove_pack(content: dict, op: dict) -> None:
    _require(op, "pack_id")
    pack = _find_pack(content, op["pack_id"])
    content["packs"].remove(pack)


def _op_set_country_group(content: dict, op: dict) -> None:
    _require(op, "group", "members")
    if not isinstance(op["group"], str) or not 0 < len(op["group"]) <= 50:
        raise InvalidInput("group must be a group name", {"group": ["must be a group name such as 'D:5'"]})
    members = op["members"]
    if not isinstance(members, list):
        raise InvalidInput("members must be a list", {"members": ["must be a list of ISO codes"]})
    codes = [m if isinstance(m, str) else m.get("country") if isinstance(m, dict) else None for m in members]
    bad = [m for m, code in zip(members, codes) if not isinstance(code, str) or code not in COUNTRY_INDEX]
    if bad:
        raise InvalidInput("unknown countries", {"members": [f"unknown country code(s): {bad}"]})
    groups = content.setdefault("country_groups", {}).setdefault("groups", {})
    spec = groups.setdefault(op["group"], {"effective_from": "2022-01-01", "title": op.get("title") or op["group"]})
    spec["members"] = copy.deepcopy(members)


def _vendor_home(content: dict, vendor: str, pack_id: Any) -> dict:
    """The pack that defines `vendor`, else the named pack (default: the alias table, vendor-aliases)."""
    for pack in content.get("packs") or []:
        if isinstance(pack.get("vendors"), dict) and vendor in pack["vendors"]:
            return pack
    return _find_pack(content, pack_id or "vendor-aliases")


def _op_set_vendor(content: dict, op: dict) -> None:
    """Create or replace a canonical vendor and its aliases (the alias table product letters match on)."""
    _require(op, "vendor")
    vendor, aliases = op["vendor"], op.get("aliases", [])
    if not isinstance(vendor, str) or not re.fullmatch(r"[a-z0-9][a-z0-9 _-]*", vendor):
        raise InvalidInput("bad vendor id", {"vendor": ["must be a canonical vendor id: lower-case letters, "
                                                        "digits, '-' or '_' (e.g. nvidia)"]})
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise InvalidInput("bad aliases", {"aliases": ["must be a list of vendor names as catalogues spell them"]})
    name = op.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InvalidInput("bad name", {"name": ["must be the vendor's display name"]})
    pack = _vendor_home(content, vendor, op.get("pack_id"))
    vendors = pack.setdefault("vendors", {})
    if op.get("remove"):
        vendors.pop(vendor, None)
        return
    spec = dict(vendors.get(vendor) or {})
    spec["name"] = name or spec.get("name") or vendor
    spec["aliases"] = list(dict.fromkeys(a.strip() for a in aliases))
    if op.get("note"):
        spec["note"] = str(op["note"])
    vendors[vendor] = spec


def _op_set_family(content: dict, op: dict) -> None:
    """Create or replace a model family ({id, vendor, name, names?, lookalikes?, citation?}) in a pack."""
    _require(op, "family")
    fam = op["family"]
    if not isinstance(fam, dict) or not isinstance(fam.get("id"), str) or "/" not in fam["id"]:
        raise InvalidInput("family needs an id", {"family.id": ["required 'vendor/model' id, e.g. nvidia/h20"]})
    for pack in content.get("packs") or []:
        for i, f in enumerate(pack.get("families") or []):
            if isinstance(f, dict) and f.get("id") == fam["id"]:
                pack["families"][i] = copy.deepcopy(fam)
                return
    if not op.get("pack_id"):
        raise InvalidInput("pack_id required", {"pack_id": [f"family {fam['id']!r} is new: name the pack to add it to"]})
    _find_pack(content, op["pack_id"]).setdefault("families", []).append(copy.deepcopy(fam))


def overlay_rule(op: dict) -> dict:
    """Expand an overlay ('H20: licence required for China from 2025-04-09') into a licence rule."""
    errors: dict[str, list[str]] = {}
    for name in ("id", "title", "citation", "effective_from"):
        if op.get(name) in (None, "", []):
            errors[name] = ["required"]
    products = op.get("products") or []
    families = op.get("families") or []
    if not isinstance(families, list) or not all(isinstance(f, str) and "/" in f for f in families):
        errors["families"] = ["must be a list of model family ids, e.g. 'nvidia/h20'"]
    elif not (products or families):
        errors["families"] = ["give families (model family ids, matched on canonical vendor + model family) "
                              "or products (name patterns)"]
    elif not isinstance(products, list) or not all(isinstance(p, str) and p.strip() for p in products):
        errors["products"] = ["must be a list of product patterns, e.g. 'nvidia/h20' or 'H20'"]
    dests = op.get("destinations") or []
    groups = op.get("groups") or []
    hq = op.get("headquarters") or []
    hq_groups = op.get("headquarters_groups") or []
    for name, codes in (("destinations", dests), ("headquarters", hq)):
        if not isinstance(codes, list) or any(not isinstance(c, str) or c.upper() not in COUNTRY_INDEX for c in codes):
            errors[name] = [f"must be a list of ISO country codes, got {codes!r}"]
    for name, gs in (("groups", groups), ("headquarters_groups", hq_groups)):
        if not isinstance(gs, list) or not all(isinstance(g, str) for g in gs):
            errors[name] = ["must be a list of country group names, e.g. D:5"]
    if not (dests or groups or hq or hq_groups) and "destinations" not in errors:
        errors["destinations"] = ["give at least one of destinations, groups, headquarters, headquarters_groups"]
    requirement = op.get("requirement", "license_required")
    if requirement not in REQUIREMENTS[:2]:
        errors["requirement"] = [f"must be one of {list(REQUIREMENTS[:2])}"]
    policy = op.get("review_policy")
    if policy is not None and policy not in REVIEW_POLICIES:
        errors["review_policy"] = [f"must be one of {list(REVIEW_POLICIES)}"]
    precedence = op.get("precedence", 30)
    if not isinstance(precedence, int) or isinstance(precedence, bool):
        errors["precedence"] = ["must be an integer"]
    if op.get("effective_from") not in (None, ""):
        try:
            _check_date(op["effective_from"], "effective_from")
        except InvalidInput as exc:
            errors.update(exc.errors)
    if op.get("effective_to") not in (None, ""):
        try:
            _check_date(op["effective_to"], "effective_to")
        except InvalidInput as exc:
            errors.update(exc.errors)
    if errors:
        raise InvalidInput("invalid overlay", errors)
    patterns = []
    for p in products:
        p = " ".join(p.lower().split())
        patterns.append(p if "/" in p else f"*/{p}")
    where: list[dict] = []
    if dests:
        where.append({"metric": "destination", "op": "in", "value": [c.upper() for c in dests]})
    if groups:
        where.append({"metric": "destination", "op": "in_group", "value": list(groups)})
    if hq:
        where.append({"metric": "headquarters", "op": "in", "value": [c.upper() for c in hq]})
    if hq_groups:
        where.append({"metric": "headquarters", "op": "in_group", "value": list(hq_groups)})
    effect: dict[str, Any] = {"requirement": requirement}
    if policy:
        effect["review_policy"] = policy
    if requirement == "license_required" and op.get("exceptions_blocked", True):
        effect["exceptions_blocked"] = True
    rule = {"id": op["id"], "kind": "licence", "title": op["title"], "citation": op["citation"],
            "effective_from": _check_date(op["effective_from"], "effective_from"), "precedence": precedence,
            "overlay": True,
            "when": {"all": [{"metric": "model_family", "op": "in", "value": list(families)} if families else
                             {"metric": "model", "op": "matches", "value": patterns},
                             where[0] if len(where) == 1 else {"any": where}]},
            "effect": effect}
    if op.get("effective_to"):
        rule["effective_to"] = _check_date(op["effective_to"], "effective_to")
    for k in ("notes", "source_url"):
        if op.get(k):
            rule[k] = op[k]
    return rule


def _op_add_overlay(content: dict, op: dict) -> None:
    rule = overlay_rule(op)
    for p in content.get("packs") or []:
        if any(r.get("id") == rule["id"] for r in p.get("rules") or []):
            raise InvalidInput("duplicate rule id", {"id": [f"rule {rule['id']!r} already exists"]})
    if op.get("pack_id"):
        _find_pack(content, op["pack_id"]).setdefault("rules", []).append(rule)
        if op.get("tests"):
            _find_pack(content, op["pack_id"]).setdefault("tests", []).extend(copy.deepcopy(op["tests"]))
        return
    pack_id = f"overlay-{rule['id']}"
    if any(p.get("id") == pack_id for p in content.get("packs") or []):
        raise InvalidInput("duplicate pack", {"id": [f"pack {pack_id!r} already exists"]})
    pack = {"id": pack_id, "title": op["title"], "citation": op["citation"], "effective_from": rule["effective_from"],
            "notes": op.get("notes") or "Product overlay added through the admin API.", "rules": [rule]}
    if op.get("tests"):
        pack["tests"] = copy.deepcopy(op["tests"])
    content.setdefault("packs", []).append(pack)


OPS: dict[str, Callable[[dict, dict], None]] = {
    "set_threshold": _op_set_threshold,
    "add_rule": _op_add_rule,
    "update_rule": _op_update_rule,
    "end_rule": _op_end_rule,
    "remove_rule": _op_remove_rule,
    "add_pack": _op_add_pack,
    "remove_pack": _op_remove_pack,
    "add_overlay": _op_add_overlay,
    "set_country_group": _op_set_country_group,
    "set_vendor": _op_set_vendor,
    "set_family": _op_set_family,
}


def apply_op(content: dict, op: dict) -> None:
    if not isinstance(op, dict):
        raise InvalidInput("op must be a mapping", {"op": ["each operation must be a mapping with 'op'"]})
    fn = OPS.get(op.get("op"))
    if fn is None:
        raise InvalidInput("unknown op", {"op": [f"must be one of {sorted(OPS)}, got {op.get('op')!r}"]})
    fn(content, op)


# ---------------------------------------------------------------- validation

def build_rulebook(content: Any) -> Rulebook:
    """Rulebook(content), where a validator crash on malformed input is a 422, never a 500."""
    try:
        return Rulebook(content)
    except RulebookInvalid:
        raise
    except (TypeError, AttributeError, KeyError, ValueError, IndexError) as exc:
        # The engine's validators assume some shapes (e.g. group members as strings or mappings).
        log.info("malformed rulebook content: %r", exc)
        raise RulebookInvalid([f"content: malformed rulebook ({type(exc).__name__}: {exc}); "
                               "check the shapes of packs, rules and country_groups"]) from None


def validate_content(content: Any) -> dict[str, Any]:
    """Schema errors (with paths) and pack test failures, all at once."""
    try:
        rulebook = build_rulebook(content)
    except RulebookInvalid as exc:
        return {"valid": False, "errors": list(exc.errors), "tests": None}
    results = run_pack_tests(rulebook)
    failures = [f"packs({r.pack}).tests[{r.name}]: {f}" for r in results for f in r.failures]
    return {"valid": not failures, "errors": failures, "revision": rulebook.revision,
            "tests": {"passed": sum(r.passed for r in results), "failed": sum(not r.passed for r in results)}}


def validate_draft(db: Database, draft_id: int) -> dict[str, Any]:
    with db.session() as s:
        d = _get_draft(s, draft_id)
        content = d.content
    return validate_content(content)


def _validated_rulebook(content: dict) -> Rulebook:
    report = validate_content(content)
    if not report["valid"]:
        raise RulebookInvalid(report["errors"])
    return build_rulebook(content)


# ---------------------------------------------------------------- preview and publish

def preview_draft(app, draft_id: int, as_of: date | None = None, destinations: list[str] | None = None,
                  item_limit: int = 1000) -> dict[str, Any]:
    """Dry run: what would change in every catalogue if the draft were published (nothing is written)."""
    from .reevaluation import impact_preview

    db = app.extensions["db"]
    store = app.extensions["rulebooks"]
    with db.session() as s:
        d = _get_draft(s, draft_id)
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
    """Publish in one transaction: version N+1, a pending re-evaluation run and an audit event.
    The re-evaluation is enqueued only after the commit. What is published is the draft as it was read
    here (and as `if_match` names it): an edit that lands before the publish commits makes it fail."""
    db = app.extensions["db"]
    with db.session() as s:
        d = _get_draft(s, draft_id)
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
    new_rb = _validated_rulebook(content)
    with db.session() as s:
        base = current_version(s)
        if draft_id is not None:
            d = _get_draft(s, draft_id)
            if d.base_version_id != base.id:
                raise Conflict(
                    f"version {base.number} was published after this draft was made from version "
                    f"{_base_number(s, d)}; the draft is still open: start a new draft from version {base.number} "
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
                d = _get_draft(s, draft_id, lock=True)
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
            s.add(AuditEvent(actor=actor, action="rules.rollback" if rollback_of else "rules.publish",
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
            _changed_while_publishing(_get_draft(s, draft_id), if_match)
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


# ---------------------------------------------------------------- diff and audit trail

def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flat(v, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: value}


def diff_contents(old: dict, new: dict) -> dict[str, Any]:
    """Rules added/removed/changed (field level), packs added/removed/changed, country group changes."""
    def rules_of(content):
        return {r["id"]: (p["id"], r) for p in content.get("packs") or [] for r in p.get("rules") or []}

    old_r, new_r = rules_of(old), rules_of(new)
    changed = []
    for rid in sorted(set(old_r) & set(new_r)):
        a, b = _flat(old_r[rid][1]), _flat(new_r[rid][1])
        fields = [{"field": k, "from": a.get(k), "to": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        if old_r[rid][0] != new_r[rid][0]:
            fields.append({"field": "pack", "from": old_r[rid][0], "to": new_r[rid][0]})
        if fields:
            changed.append({"id": rid, "pack": new_r[rid][0], "changes": fields})
    old_p = {p["id"]: p for p in old.get("packs") or []}
    new_p = {p["id"]: p for p in new.get("packs") or []}
    packs_changed = []
    for pid in sorted(set(old_p) & set(new_p)):
        a = {k: v for k, v in old_p[pid].items() if k not in ("rules", "tests")}
        b = {k: v for k, v in new_p[pid].items() if k not in ("rules", "tests")}
        fields = [{"field": k, "from": a.get(k), "to": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        if old_p[pid].get("tests") != new_p[pid].get("tests"):
            fields.append({"field": "tests", "from": len(old_p[pid].get("tests") or []),
                           "to": len(new_p[pid].get("tests") or [])})
        if fields:
            packs_changed.append({"id": pid, "changes": fields})
    og = (old.get("country_groups") or {}).get("groups") or {}
    ng = (new.get("country_groups") or {}).get("groups") or {}

    def members(spec):
        # dated entries compare by canonical JSON: key order differs between stores (JSONB sorts keys)
        return {m if isinstance(m, str) else canonical_json(m) for m in (spec or {}).get("members") or []}

    groups = []
    for g in sorted(set(og) | set(ng)):
        if g not in og:
            groups.append({"group": g, "change": "added", "members": sorted(members(ng[g]))})
        elif g not in ng:
            groups.append({"group": g, "change": "removed", "members": sorted(members(og[g]))})
        elif og[g] != ng[g]:
            a, b = members(og[g]), members(ng[g])
            groups.append({"group": g, "change": "changed", "added": sorted(b - a), "removed": sorted(a - b),
                           "fields": [k for k in sorted(set(og[g]) | set(ng[g])) if k != "members" and og[g].get(k) != ng[g].get(k)]})
    oa = (old.get("country_groups") or {}).get("aliases") or {}
    na = (new.get("country_groups") or {}).get("aliases") or {}
    return {
        "rules": {"added": [{"id": r, "pack": new_r[r][0]} for r in sorted(set(new_r) - set(old_r))],
                  "removed": [{"id": r, "pack": old_r[r][0]} for r in sorted(set(old_r) - set(new_r))],
                  "changed": changed},
        "packs": {"added": sorted(set(new_p) - set(old_p)), "removed": sorted(set(old_p) - set(new_p)),
                  "changed": packs_changed},
        "country_groups": groups,
        "aliases": {"added": sorted(set(na) - set(oa)), "removed": sorted(set(oa) - set(na)),
                    "changed": sorted(a for a in set(oa) & set(na) if oa[a] != na[a])},
    }


def diff_versions(db: Database, from_number: int, to_number: int) -> dict[str, Any]:
    with db.session() as s:
        a = get_version(s, from_number)
        b = get_version(s, to_number)
        return {"from": from_number, "to": to_number, "from_revision": a.revision, "to_revision": b.revision} \
            | diff_contents(a.content, b.content)


def trail_query(action: str | None = None, actor: str | None = None):
    """The audit events matching an action (``*`` wildcards) and an actor."""
    q = select(AuditEvent)
    if action:
        q = q.where(AuditEvent.action.like(action.replace("*", "%")))
    if actor:
        q = q.where(AuditEvent.actor == actor)
    return q


def audit_trail(db: Database, page: int = 1, per_page: int = 100, action: str | None = None,
                actor: str | None = None) -> Page:
    """Who changed what, when and why (rules, keys and webhooks), newest first: a page of AuditEvents
    (the API's AuditEventSchema dumps them)."""
    with db.session() as s:
        q = trail_query(action, actor)
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        items = list(s.scalars(q.order_by(AuditEvent.id.desc()).offset((page - 1) * per_page).limit(per_page)))
    return Page(items, page, per_page, total)
