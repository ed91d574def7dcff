"""Orders: classify every line (one batch through the engine), screen every party, hold what needs a
licence, hits a list or cannot be decided, with the reasons and their citations; release a held line with a
licence that covers it (drawn down atomically) or with a second person's override; reject."""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..engine.errors import Conflict, InvalidInput, NotFound
from ..models import ActivityEvent, Licence, Order, OrderLine, Product
from . import licences as licence_svc
from .classification import classify_products, current_rulebook
from .paging import Page
from .screening import screen_parties
from .webhooks import enqueue_deliveries, enqueue_event


def order_parties(body: dict) -> list[dict]:
    """The parties to screen: the end user, each consignee, and the end user's parent where named."""
    eu = body["end_user"]
    parties = [{"role": "end_user", "name": eu["name"], "country": eu.get("country"), "address": eu.get("address")}]
    parties += [{"role": "consignee", "name": c["name"], "country": c.get("country"), "address": c.get("address")}
                for c in body.get("consignees") or ()]
    parent = eu.get("parent") or {}
    if parent.get("name"):
        parties.append({"role": "parent", "name": parent["name"], "country": parent.get("headquarters"),
                        "address": None})
    return parties


def _resolve_products(s, lines: list[dict]) -> list[dict]:
    """Each line's product spec: given inline, or the catalogue product (catalogue_id + sku), read in `s`."""
    wanted = {(ln["catalogue_id"], ln["sku"]) for ln in lines if "product" not in ln}
    found: dict[tuple[int, str], dict] = {}
    for cid in {c for c, _ in wanted}:
        skus = [sku for c, sku in wanted if c == cid]
        for p in s.scalars(select(Product).where(Product.catalogue_id == cid, Product.sku.in_(skus))):
            found[(cid, p.sku)] = {**p.spec, "sku": p.sku}
    specs, problems = [], {}
    for i, ln in enumerate(lines):
        if "product" in ln:
            specs.append(ln["product"])
        elif (ln["catalogue_id"], ln["sku"]) in found:
            specs.append(found[(ln["catalogue_id"], ln["sku"])])
        else:
            problems[f"lines.{i}.sku"] = [f"no product {ln['sku']!r} in catalogue {ln['catalogue_id']}"]
            specs.append({})
    if problems:
        raise InvalidInput("unknown catalogue product(s): " + "; ".join(f"{k}: {v[0]}" for k, v in problems.items()),
                           problems)
    return specs


def _screening_reasons(screening: list[dict]) -> list[dict]:
    reasons = []
    for res in screening:
        for h in res["hits"]:
            if h["cleared"]:
                continue
            e = h["entry"]
            req = e.get("license_requirement") or "see the list entry"
            policy = e.get("license_policy") or "see the list entry"
            reasons.append({"code": "screening_hit", "party_role": res["role"],
                            "message": f"{res['role'].replace('_', ' ')} {res['party']['name']!r} matches "
                                       f"{h['list']}/{h['source']} entry {e['name']!r} as {h['matched_name']!r} "
                                       f"(score {h['score']:g}): licence requirement: {req}; review policy: {policy}",
                            "citation": e.get("federal_register_notice") or e.get("source_list_url") or h["list"],
                            "entry_id": e["id"]})
    return reasons


def _line_reasons(decision: dict, ship_to: str) -> list[dict]:
    cls = decision["classification"]
    lic = decision["licences"][0]
    req = lic["requirement"]
    label = cls.get("eccn") or ("EAR99/not 3A090-4A090" if cls["status"] == "not_controlled" else "the item")
    if req == "license_required":
        return [{"code": "licence_required",
                 "message": f"{label} to {ship_to}: licence required (review policy: "
                            f"{lic.get('review_policy') or 'not stated'})",
                 "citation": "; ".join(lic.get("citations") or ()) or None}]
    if req == "indeterminate":
        missing = sorted(set(cls.get("missing") or ()) | set(lic.get("missing") or ()))
        return [{"code": "unknown_inputs",
                 "message": f"cannot decide {label} to {ship_to}: missing {', '.join(missing) or 'inputs'}",
                 "citation": None}]
    return []


# Decisions of order lines already classified, by (rule revision, date, destination, headquarters, transaction
# type, product): the engine is a pure function of these, so an order of catalogue products seen before (the
# usual order) is decided without evaluating them again; a publish is a new revision, hence new keys.
DECISION_CACHE_SIZE = 4096
_decisions: OrderedDict[tuple, dict] = OrderedDict()
_decisions_lock = threading.Lock()


def _product_key(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True, default=str, separators=(",", ":"))


def classify_lines(store, products: list[dict], order_date: date, ship_to: str, headquarters: str | None,
                   transaction_type: str, fresh: bool = False) -> tuple[list[dict], int, str]:
    """Each line's decision (one engine batch for the lines not decided before under the rules in force; the
    decisions are shared, read only), the rule version number and revision. The rules in force are read as /classify reads them (kept for
    RULE_VERSION_CACHE_SECONDS), or with `fresh` from the database (a re-check after a publish)."""
    number, rulebook = store.current_rulebook() if fresh else current_rulebook(store)
    revision = rulebook.revision
    keys = [(revision, order_date, ship_to, headquarters, transaction_type, _product_key(p)) for p in products]
    with _decisions_lock:
        out: list[dict | None] = [_decisions.get(k) for k in keys]
        for k, d in zip(keys, out):
            if d is not None:
                _decisions.move_to_end(k)
    missing: dict[tuple, int] = {}  # each distinct product not decided before, classified once
    for i, d in enumerate(out):
        if d is None:
            missing.setdefault(keys[i], i)
    if missing:
        fresh = classify_products(store, [products[i] for i in missing.values()], order_date, [ship_to],
                                  headquarters, revision=revision, transaction_type=transaction_type).all()
        records = {k: _decision_record(d) for k, d in zip(missing, fresh)}
        out = [records[k] if d is None else d for k, d in zip(keys, out)]
        with _decisions_lock:
            _decisions.update(records)
            while len(_decisions) > DECISION_CACHE_SIZE:
                _decisions.popitem(last=False)
    return out, number, revision  # type: ignore[return-value]  (no None left)


def _decision_record(d: dict) -> dict:
    """What an order keeps of a line's decision (its classification's outcome and the licence answers), as
    plain JSON values. Shared by every order that has the line: read only."""
    c = d["classification"]
    return json.loads(json.dumps({"classification": {"eccn": c.get("eccn"), "status": c["status"],
                                                     "reason": c.get("reason"), "missing": c.get("missing") or []},
                                  "licences": d["licences"], "ruleset_revision": d["ruleset_revision"],
                                  "as_of": d["as_of"]}, default=str))


def evaluate_order(db, store, order_date: date, ship_to: str, transaction_type: str, headquarters: str | None,
                   products: list[dict], parties: list[dict], threshold: float, sample_path: str | None,
                   session=None) -> dict:
    """The checks of one order (no writes): per line classification, licences and reasons; screening.
    `session`: the caller's, for the screening's queries."""
    decisions, number, revision = classify_lines(store, products, order_date, ship_to, headquarters,
                                                 transaction_type)
    answer = screen_parties(db, [{k: p[k] for k in ("name", "country", "address")} for p in parties],
                            threshold, sample_path, session)
    screening = [{"role": p["role"], **r} for p, r in zip(parties, answer["results"])]
    party_reasons = _screening_reasons(screening)
    lines = []
    for d in decisions:
        reasons = list(party_reasons) + _line_reasons(d, ship_to)
        lines.append({"decision": d, "reasons": reasons, "status": "held" if reasons else "released"})
    return {"lines": lines, "screening": screening, "lists": answer["lists"], "ruleset_revision": revision,
            "rule_version": number}


def create_order(db, store, body: dict, actor: str, threshold: float, sample_path: str | None) -> dict:
    """Check and store one order: its reads and writes in one session (one connection)."""
    lines_in = body["lines"]
    parties = order_parties(body)
    hq = ((body["end_user"].get("parent") or {}).get("headquarters"))
    with db.session() as s:
        products = _resolve_products(s, lines_in)
        checked = evaluate_order(db, store, body["date"], body["ship_to"], body["transaction_type"], hq, products,
                                 parties, threshold, sample_path, session=s)
        status = "held" if any(ln["status"] == "held" for ln in checked["lines"]) else "released"
        order = Order(reference=body["reference"], order_date=body["date"], ship_to=body["ship_to"],
                      transaction_type=body["transaction_type"], end_use=body.get("end_use"), headquarters=hq,
                      parties=parties, screening=checked["screening"], status=status,
                      ruleset_revision=checked["ruleset_revision"], rule_version=checked["rule_version"],
                      list_snapshots=[{k: v.isoformat() if isinstance(v, date) else v for k, v in sn.items()}
                                      for sn in checked["lists"]],
                      request=_jsonable(body), created_by=actor)
        s.add(order)
        s.flush()
        lines = []
        for i, (ln, spec, res) in enumerate(zip(lines_in, products, checked["lines"])):
            d = res["decision"]
            lines.append(OrderLine(order_id=order.id, seq=i + 1, sku=spec.get("sku") or ln.get("sku"),
                                   catalogue_id=ln.get("catalogue_id"), product=_jsonable(spec),
                                   quantity=ln["quantity"], value=ln.get("value"),
                                   eccn=d["classification"].get("eccn"), classification=_classification(d),
                                   licences=d["licences"], status=res["status"], reasons=res["reasons"],
                                   release_basis="auto" if res["status"] == "released" else None,
                                   released_at=_now() if res["status"] == "released" else None,
                                   released_by="system" if res["status"] == "released" else None))
        s.add_all(lines)
        s.add(ActivityEvent(actor=actor, action="order.create", target=f"order:{order.id}",
                            detail={"reference": order.reference, "status": status}))
        deliveries = []
        if status == "held":
            deliveries = enqueue_event(s, "order.held", {"order_id": order.id, "reference": order.reference,
                                                         "cause": "created"}, key=f"order.held:{order.id}:created")
        s.flush()
        enqueue_deliveries(s, deliveries)
        view = order_view(s, order, lines)
    return view


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _classification(d: dict) -> dict:
    c = d["classification"]
    return {"eccn": c.get("eccn"), "status": c["status"], "reason": c.get("reason"), "missing": c.get("missing") or [],
            "ruleset_revision": d["ruleset_revision"], "as_of": d["as_of"]}


def line_view(ln: OrderLine, lic: Licence | None) -> dict:
    return {"id": ln.id, "seq": ln.seq, "sku": ln.sku, "catalogue_id": ln.catalogue_id,
            "product": {k: ln.product.get(k) for k in ("sku", "name", "vendor") if ln.product.get(k) is not None},
            "quantity": ln.quantity, "value": ln.value, "status": ln.status, "classification": ln.classification,
            "licences": [{k: x.get(k) for k in ("destination", "requirement", "review_policy", "exceptions",
                                                "rule_ids", "citations", "missing", "notes")} for x in ln.licences],
            "reasons": ln.reasons,
            "licence": {"id": lic.id, "number": lic.number} if lic else None,
            "release": {"basis": ln.release_basis, "by": ln.released_by, "at": ln.released_at,
                        "reason": ln.release_reason} if ln.release_basis else None}


def order_view(s, order: Order, lines: list[OrderLine] | None = None) -> dict:
    """The order as the API answers it; `lines`: its lines when the caller holds them (in seq order)."""
    if lines is None:
        lines = list(s.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.seq)))
    lic_ids = {ln.licence_id for ln in lines if ln.licence_id}
    lics = {x.id: x for x in s.scalars(select(Licence).where(Licence.id.in_(lic_ids)))} if lic_ids else {}
    return {"id": order.id, "reference": order.reference, "date": order.order_date, "ship_to": order.ship_to,
            "transaction_type": order.transaction_type, "end_use": order.end_use,
            "headquarters": order.headquarters, "status": order.status, "needs_review": order.needs_review,
            "ruleset_revision": order.ruleset_revision, "rule_version": order.rule_version,
            "list_snapshots": [{**sn, "source_date": date.fromisoformat(sn["source_date"])}
                               if isinstance(sn.get("source_date"), str) else sn for sn in order.list_snapshots],
            "lines": [line_view(ln, lics.get(ln.licence_id)) for ln in lines],
            "screening": order.screening, "created_by": order.created_by, "created_at": order.created_at,
            "checked_at": order.checked_at,
            "decision": {"by": order.decided_by, "at": order.decided_at, "reason": order.decision_reason}
            if order.decided_by else None}


def get_order(db, order_id: int) -> dict:
    with db.session() as s:
        order = s.get(Order, order_id)
        if order is None:
            raise NotFound(f"no order {order_id}")
        return order_view(s, order)


def list_orders(db, page: int, per_page: int, status: str | None = None, ship_to: str | None = None,
                reference: str | None = None, needs_review: bool | None = None, reason: str | None = None) -> dict:
    with db.session() as s:
        q = select(Order)
        if status:
            q = q.where(Order.status == status)
        if ship_to:
            q = q.where(Order.ship_to == ship_to)
        if reference:
            q = q.where(Order.reference == reference)
        if needs_review is not None:
            q = q.where(Order.needs_review.is_(needs_review))
        if reason:  # orders with a held line held for this reason: in SQL, so the page and its total agree
            held = select(OrderLine.order_id).where(OrderLine.status == "held", _has_reason(s, reason))
            q = q.where(Order.id.in_(held))
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        orders = list(s.scalars(q.order_by(Order.id.desc()).offset((page - 1) * per_page).limit(per_page)))
        return Page([order_view(s, o) for o in orders], page, per_page, total)


def _has_reason(session, code: str):
    """OrderLine.reasons (a JSON list of {"code", ...}) holds a reason with this code: JSONB containment on
    PostgreSQL, json_each on SQLite."""
    from sqlalchemy import literal, text

    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return OrderLine.reasons.op("@>")(literal([{"code": code}], JSONB))
    return text("EXISTS (SELECT 1 FROM json_each(order_lines.reasons) "
                "WHERE json_extract(json_each.value, '$.code') = :reason_code)").bindparams(reason_code=code)


ORDER_ACTIONS = ("order.create", "order.line_release", "order.reject")


def order_activity(db, order_id: int) -> list[dict]:
    """The activity log's entries for one order (created, lines released, rejected), oldest first."""
    with db.session() as s:
        return [{"at": e.at, "actor": e.actor, "action": e.action, "reason": e.reason, "detail": e.detail}
                for e in s.scalars(select(ActivityEvent).where(ActivityEvent.action.in_(ORDER_ACTIONS),
                                                               ActivityEvent.target == f"order:{order_id}")
                                   .order_by(ActivityEvent.id))]


def _finish_if_done(s, order: Order, actor: str) -> list[int]:
    """Release the order when its last held line is released; the webhook deliveries to dispatch."""
    statuses = set(s.scalars(select(OrderLine.status).where(OrderLine.order_id == order.id)))
    if not statuses <= {"released"}:
        return []
    order.status = "released"
    order.decided_by, order.decided_at = actor, _now()
    order.needs_review = False
    return enqueue_event(s, "order.released", {"order_id": order.id, "reference": order.reference},
                         key=f"order.released:{order.id}:{order.decided_at.isoformat()}")


def release_line(db, order_id: int, line_id: int, actor: str, licence_id: int | None = None,
                 override: bool = False, reason: str | None = None, today: date | None = None) -> dict:
    """Release a held line with a licence that covers it (drawn down) or an officer's override (four eyes)."""
    if not override and licence_id is None:
        raise InvalidInput("give a licence_id, or override: true with a reason", {"licence_id": ["missing"]})
    if override and not (reason or "").strip():
        raise InvalidInput("an override needs a reason", {"reason": ["missing"]})
    today = today or date.today()
    try:
        with db.session() as s:
            order = s.get(Order, order_id)
            if order is None:
                raise NotFound(f"no order {order_id}")
            q = select(OrderLine).where(OrderLine.id == line_id, OrderLine.order_id == order_id)
            line = s.scalar(q.with_for_update() if db.is_postgres else q)
            if line is None:
                raise NotFound(f"order {order_id} has no line {line_id}")
            if line.status != "held":
                raise Conflict(f"line {line.seq} of order {order_id} is {line.status}, not held",
                               {"line": [f"is {line.status}"]})
            if override:
                if actor == order.created_by:
                    raise InvalidInput("four eyes: the person who created the order cannot override its holds",
                                       {"override": [f"{actor} created this order; another officer must release it"]})
                line.release_basis, line.release_reason = "override", reason.strip()
                detail = {"line": line.seq, "basis": "override", "reasons": line.reasons}
            else:
                lic = s.get(Licence, licence_id)
                if lic is None:
                    raise NotFound(f"no licence {licence_id}")
                problems = licence_svc.coverage_problems(lic, order, line, today)
                if problems:
                    raise InvalidInput(f"licence {lic.number} does not cover line {line.seq}: " + "; ".join(problems),
                                       {"licence_id": problems})
                licence_svc.draw_down(s, lic, line, actor)
                line.licence_id = lic.id
                line.release_basis, line.release_reason = "licence", (reason or "").strip() or None
                detail = {"line": line.seq, "basis": "licence", "licence": lic.number, "quantity": line.quantity,
                          "value": line.value or 0.0}
            line.status = "released"
            line.released_by, line.released_at = actor, _now()
            s.add(ActivityEvent(actor=actor, action="order.line_release", target=f"order:{order.id}",
                                reason=(reason or "").strip() or None, detail=detail))
            enqueue_deliveries(s, _finish_if_done(s, order, actor))
            s.flush()
            view = order_view(s, order)
    except IntegrityError:
        raise Conflict(f"line {line_id} of order {order_id} was released meanwhile", {"line": ["already released"]}) \
            from None
    return view


def reject_order(db, order_id: int, actor: str, reason: str) -> dict:
    if not (reason or "").strip():
        raise InvalidInput("a rejection needs a reason", {"reason": ["missing"]})
    with db.session() as s:
        order = s.get(Order, order_id)
        if order is None:
            raise NotFound(f"no order {order_id}")
        if order.status != "held":
            raise Conflict(f"order {order_id} is {order.status}; only a held order can be rejected",
                           {"status": [order.status]})
        for ln in s.scalars(select(OrderLine).where(OrderLine.order_id == order_id, OrderLine.status == "held")):
            ln.status = "rejected"
        order.status = "rejected"
        order.decided_by, order.decided_at, order.decision_reason = actor, _now(), reason.strip()
        s.add(ActivityEvent(actor=actor, action="order.reject", target=f"order:{order.id}", reason=reason.strip(),
                            detail={"reference": order.reference}))
        s.flush()
        return order_view(s, order)

