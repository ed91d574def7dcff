"""The decision log: every stored classify decision, every determination and every audit result, listed
and filtered in one place, each with the SHA-256 of its canonical input; and the replay of a stored
decision on the revision it cited (which must answer identically) beside the current revision's answer."""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import cast, func, literal, null, or_, select, union_all

from ..db import Database
from ..engine.errors import InvalidInput, NotFound
from ..engine.rulebook import content_hash
from ..models import Audit, AuditResult, DecisionRecord, Determination
from .determinations import normalise_eccn, page_dict

KINDS = ("classify", "determination", "audit")
# Keys of a stored answer that are not part of the decision itself.
VOLATILE = ("decision_id",)


def input_sha256(request: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of a stored request."""
    return content_hash(request)


def _classify_select(eccn_filter: str | None):
    D = DecisionRecord
    product = func.coalesce(D.request["product"]["sku"].as_string(), D.request["product"]["name"].as_string())
    eccn = D.response["classification"]["eccn"].as_string()
    status = D.response["classification"]["status"].as_string()
    q = select(literal("classify").label("kind"), D.id.label("decision_id"),
               cast(null(), D.id.type).label("determination_id"), cast(null(), D.id.type).label("audit_id"),
               cast(null(), D.id.type).label("product_id"), product.label("product"), eccn.label("eccn"),
               status.label("status"), D.as_of.label("as_of"), D.ruleset_revision.label("revision"),
               D.actor.label("actor"), D.created_at.label("at")
               ).where(D.id.not_in(select(Determination.decision_id).where(Determination.decision_id.is_not(None))))
    return q, {"product": product, "eccn": eccn, "actor": D.actor, "revision": D.ruleset_revision, "at": D.created_at}


def _determination_select():
    T = Determination
    q = select(literal("determination").label("kind"), T.decision_id.label("decision_id"),
               T.id.label("determination_id"), cast(null(), T.id.type).label("audit_id"),
               T.product_id.label("product_id"), T.sku.label("product"), T.eccn.label("eccn"),
               T.computed_status.label("status"), T.as_of.label("as_of"), T.ruleset_revision.label("revision"),
               T.recorded_by.label("actor"), T.recorded_at.label("at"))
    return q, {"product": T.sku, "eccn": T.eccn, "actor": T.recorded_by, "revision": T.ruleset_revision,
               "at": T.recorded_at, "alt_product": T.product_name}


def _audit_select():
    A, R = Audit, AuditResult
    at = func.coalesce(A.finished_at, A.created_at)
    q = select(literal("audit").label("kind"), cast(null(), A.id.type).label("decision_id"),
               cast(null(), A.id.type).label("determination_id"), A.id.label("audit_id"),
               R.product_id.label("product_id"), R.sku.label("product"), R.eccn.label("eccn"), R.status.label("status"),
               A.as_of.label("as_of"), A.ruleset_revision.label("revision"), A.requested_by.label("actor"),
               at.label("at")).join(A, A.id == R.audit_id).where(A.status == "done")
    return q, {"product": R.sku, "eccn": R.eccn, "actor": A.requested_by, "revision": A.ruleset_revision, "at": at}


def _filtered(q, cols: dict, kind: str, product: str | None, eccn: str | None, actor: str | None,
              revision: str | None, since: datetime | None, until: datetime | None):
    if product:
        conds = [cols["product"] == product]
        if "alt_product" in cols:
            conds.append(cols["alt_product"] == product)
        if kind == "classify":
            conds.append(DecisionRecord.request["product"]["name"].as_string() == product)
        q = q.where(or_(*conds))
    if eccn:
        if eccn.lower() == "none":
            q = q.where(cols["eccn"].is_(None))
        else:
            q = q.where(cols["eccn"] == eccn)
    if actor:
        q = q.where(cols["actor"] == actor)
    if revision:
        r = revision.lower()
        q = q.where(cols["revision"] == r if len(r) == 64 else cols["revision"].like(r + "%"))
    if since is not None:
        q = q.where(cols["at"] >= since)
    if until is not None:
        q = q.where(cols["at"] < until)
    return q


def _bounds(date_from: date | None, date_to: date | None) -> tuple[datetime | None, datetime | None]:
    if date_from and date_to and date_to < date_from:
        raise InvalidInput("'to' is before 'from'", {"to": ["must not be before 'from'"]})
    since = datetime.combine(date_from, time.min, timezone.utc) if date_from else None
    until = datetime.combine(date_to + timedelta(days=1), time.min, timezone.utc) if date_to else None
    return since, until


def list_decisions(db: Database, page: int = 1, per_page: int = 100, kind: str | None = None,
                   product: str | None = None, eccn: str | None = None, actor: str | None = None,
                   revision: str | None = None, date_from: date | None = None,
                   date_to: date | None = None) -> dict[str, Any]:
    """One page of the decision log, newest first, filtered by kind, product (SKU or name), ECCN ('none':
    outside 3A090/4A090), actor, revision (or a prefix of it) and date."""
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"unknown kind {kind!r}", {"kind": [f"must be one of {', '.join(KINDS)}"]})
    if eccn and eccn.lower() != "none" and kind in (None, "determination"):
        try:
            eccn_det = normalise_eccn(eccn)
        except InvalidInput:
            eccn_det = eccn
    else:
        eccn_det = eccn
    since, until = _bounds(date_from, date_to)
    parts = []
    for name, (q, cols) in (("classify", _classify_select(eccn)), ("determination", _determination_select()),
                            ("audit", _audit_select())):
        if kind in (None, name):
            value = eccn_det if name == "determination" else eccn
            parts.append(_filtered(q, cols, name, product, value, actor, revision, since, until))
    u = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery()
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(u)) or 0
        rows = s.execute(select(u).order_by(u.c.at.desc(), u.c.kind, u.c.decision_id.desc(), u.c.audit_id.desc(),
                                            u.c.product_id).offset((page - 1) * per_page).limit(per_page)).all()
        ids = [r.decision_id for r in rows if r.decision_id is not None]
        requests = dict(s.execute(select(DecisionRecord.id, DecisionRecord.request)
                                  .where(DecisionRecord.id.in_(ids))).all()) if ids else {}
        dets = {r.determination_id for r in rows if r.determination_id is not None}
        det_hash = dict(s.execute(select(Determination.id, Determination.input_sha256)
                                  .where(Determination.id.in_(dets))).all()) if dets else {}
    items = [_entry(r, requests.get(r.decision_id), det_hash.get(r.determination_id)) for r in rows]
    return page_dict(items, page, per_page, total)


def _entry(r, request: dict | None, det_sha: str | None) -> dict[str, Any]:
    at = r.at
    if isinstance(at, str):  # SQLite returns the union's datetimes as text
        at = datetime.fromisoformat(at)
    as_of = r.as_of if not isinstance(r.as_of, str) else date.fromisoformat(r.as_of)
    item = {"kind": r.kind, "decision_id": r.decision_id, "determination_id": r.determination_id,
            "audit_id": r.audit_id, "product_id": r.product_id, "product": r.product, "eccn": r.eccn,
            "status": r.status, "as_of": as_of, "ruleset_revision": r.revision, "actor": r.actor, "at": at,
            "input_sha256": input_sha256(request) if request is not None else None,
            "replay": f"/api/v1/decisions/{r.decision_id}/replay" if r.decision_id is not None else None}
    if r.kind == "determination":
        item["determination_sha256"] = det_sha
    if r.kind == "audit":
        # An audit result keeps the answer, not the spec it was computed from (the product may have changed
        # since): it is listed and filtered here but cannot be replayed.
        item["note"] = "audit results store the answer, not the input spec: not replayable"
    return item


def replay_decision(db: Database, store, decision_id: int) -> dict[str, Any]:
    """Re-run a stored decision on the revision it cited: is the answer identical? And what would the
    current revision answer (as of the same date)?"""
    from ..schemas.product import ProductSchema
    from .classification import classify_products

    with db.session() as s:
        rec = s.get(DecisionRecord, decision_id)
        if rec is None:
            raise NotFound(f"no decision {decision_id}")
        request, stored, revision, as_of = dict(rec.request), dict(rec.response), rec.ruleset_revision, rec.as_of
    product = ProductSchema().load(request["product"])
    hq = (request.get("end_user") or {}).get("headquarters")
    options = dict(destinations=request.get("destinations") or [], headquarters=hq,
                   detail=request.get("detail") or "full", transaction_type=request.get("transaction_type") or "export")
    again = _plain(classify_products(store, [product], as_of, revision=revision, **options).all()[0])
    current_version, _ = store.current()
    now = (again if current_version.revision == revision else
           _plain(classify_products(store, [product], as_of, revision=current_version.revision, **options).all()[0]))
    expected = {k: v for k, v in stored.items() if k not in VOLATILE}
    differences = _differences(expected, again)
    changed = _differences(_core(again), _core(now))
    return {"decision_id": decision_id, "input_sha256": input_sha256(request), "ruleset_revision": revision,
            "as_of": as_of, "identical": not differences, "differences": differences[:50],
            "answer": again,
            "current": {"ruleset_revision": current_version.revision, "rule_version": current_version.number,
                        "same_as_recorded": not changed, "differences": changed[:50], "answer": now}}


def _plain(decision: dict[str, Any]) -> dict[str, Any]:
    """The answer as it is stored (JSON): what a stored answer is compared with."""
    return json.loads(json.dumps(decision, default=str))


def _core(decision: dict[str, Any]) -> dict[str, Any]:
    """The decision without the fields that name the revision that made it."""
    return {k: v for k, v in decision.items() if k not in ("ruleset_revision", "rule_version", *VOLATILE)}


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths where two JSON values differ (a stored answer against a replayed one)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            p = f"{path}.{k}" if path else str(k)
            if k not in a or k not in b:
                out.append(f"{p}: {'added' if k not in a else 'missing'}")
            else:
                out += _differences(a[k], b[k], p)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items, now {len(b)}"]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += _differences(x, y, f"{path}[{i}]")
        return out
    if a != b and not (isinstance(a, (int, float)) and isinstance(b, (int, float)) and float(a) == float(b)):
        return [f"{path}: {a!r} -> {b!r}"]
    return []


