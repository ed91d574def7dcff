"""Licences: the register (number, holder, ECCNs or products, destinations, parties, quantity and value
limits, validity) and the draw-down of a released order line, atomic under concurrent releases."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select, update

from ..engine.errors import Conflict, InvalidInput, NotFound
from ..models import ActivityEvent, Licence, LicenceDrawdown, Order, OrderLine
from .paging import Page
from .screening_match import normalise


def licence_view(lic: Licence) -> dict:
    return {"id": lic.id, "number": lic.number, "holder": lic.holder, "eccns": lic.eccns, "products": lic.products,
            "destinations": lic.destinations, "parties": lic.parties, "quantity_limit": lic.quantity_limit,
            "value_limit": lic.value_limit, "quantity_used": lic.quantity_used, "value_used": lic.value_used,
            "quantity_remaining": None if lic.quantity_limit is None else lic.quantity_limit - lic.quantity_used,
            "value_remaining": None if lic.value_limit is None else lic.value_limit - lic.value_used,
            "valid_from": lic.valid_from, "valid_to": lic.valid_to, "notes": lic.notes,
            "created_by": lic.created_by, "created_at": lic.created_at}


def create_licence(db, body: dict, actor: str) -> dict:
    if body["valid_to"] < body["valid_from"]:
        raise InvalidInput("valid_to is before valid_from", {"valid_to": ["must not be before valid_from"]})
    with db.session() as s:
        if s.scalar(select(Licence.id).where(Licence.number == body["number"])) is not None:
            raise Conflict(f"licence {body['number']} exists", {"number": ["already registered"]})
        lic = Licence(number=body["number"], holder=body["holder"], eccns=[e.upper() if e.upper() == "EAR99" else e
                                                                           for e in body.get("eccns") or []],
                      products=body.get("products") or [], destinations=body["destinations"],
                      parties=body.get("parties") or [], quantity_limit=body.get("quantity_limit"),
                      value_limit=body.get("value_limit"), valid_from=body["valid_from"], valid_to=body["valid_to"],
                      notes=body.get("notes"), created_by=actor, quantity_used=0, value_used=0.0)
        s.add(lic)
        s.flush()
        s.add(ActivityEvent(actor=actor, action="licence.create", target=f"licence:{lic.id}",
                            detail={"number": lic.number, "destinations": lic.destinations}))
        s.flush()
        return licence_view(lic)


def get_licence(db, licence_id: int) -> dict:
    with db.session() as s:
        lic = s.get(Licence, licence_id)
        if lic is None:
            raise NotFound(f"no licence {licence_id}")
        view = licence_view(lic)
        view["drawdowns"] = [{"order_line_id": d.order_line_id, "quantity": d.quantity, "value": d.value,
                              "actor": d.actor, "at": d.at}
                             for d in s.scalars(select(LicenceDrawdown).where(LicenceDrawdown.licence_id == lic.id)
                                                .order_by(LicenceDrawdown.id))]
        return view


def list_licences(db, page: int, per_page: int, destination: str | None = None, valid_on: date | None = None,
                  holder: str | None = None) -> dict:
    """The register, oldest first; `holder` (the console's filter) matches part of the holder, any case."""
    with db.session() as s:
        q = select(Licence)
        if valid_on:
            q = q.where(Licence.valid_from <= valid_on, Licence.valid_to >= valid_on)
        rows = list(s.scalars(q.order_by(Licence.id)))
        if destination:
            rows = [x for x in rows if destination in x.destinations]
        if holder:
            needle = holder.casefold()
            rows = [x for x in rows if needle in x.holder.casefold()]
        total = len(rows)
        items = [licence_view(x) for x in rows[(page - 1) * per_page: page * per_page]]
        return Page(items, page, per_page, total)


def licence_releases(db, licence_id: int) -> list[dict]:
    """The order lines a licence released (read-only): each draw-down with its order and line."""
    with db.session() as s:
        if s.get(Licence, licence_id) is None:
            raise NotFound(f"no licence {licence_id}")
        rows = s.execute(select(LicenceDrawdown, OrderLine, Order)
                         .join(OrderLine, OrderLine.id == LicenceDrawdown.order_line_id)
                         .join(Order, Order.id == OrderLine.order_id)
                         .where(LicenceDrawdown.licence_id == licence_id).order_by(LicenceDrawdown.id)).all()
        return [{"order_id": o.id, "reference": o.reference, "ship_to": o.ship_to, "order_status": o.status,
                 "line_id": ln.id, "seq": ln.seq, "sku": ln.sku, "eccn": ln.eccn, "line_status": ln.status,
                 "quantity": d.quantity, "value": d.value, "actor": d.actor, "at": d.at} for d, ln, o in rows]


def balance_problems(lic: Licence, line) -> list[str]:
    """Why the licence's balance cannot take the line (read-only: the draw-down decides, atomically)."""
    qty, value = line.quantity, float(line.value or 0.0)
    problems = []
    if lic.quantity_limit is not None and lic.quantity_used + qty > lic.quantity_limit:
        problems.append(f"quantity left {lic.quantity_limit - lic.quantity_used}, the line needs {qty}")
    if lic.value_limit is not None and lic.value_used + value > lic.value_limit:
        problems.append(f"value left {lic.value_limit - lic.value_used:g}, the line needs {value:g}")
    return problems


def release_options(db, order_id: int, today: date | None = None) -> dict[int, list[dict]]:
    """For each held line of the order, the licences of the register for its destination, each with why it
    would not cover the line today (empty: it covers it). Read-only: release_line checks again as it draws."""
    today = today or date.today()
    with db.session() as s:
        order = s.get(Order, order_id)
        if order is None:
            raise NotFound(f"no order {order_id}")
        held = list(s.scalars(select(OrderLine).where(OrderLine.order_id == order_id, OrderLine.status == "held")
                              .order_by(OrderLine.seq)))
        if not held:
            return {}
        lics = [x for x in s.scalars(select(Licence).order_by(Licence.id)) if order.ship_to in x.destinations]
        return {ln.id: [{"licence": licence_view(lic),
                         "problems": coverage_problems(lic, order, ln, today) + balance_problems(lic, ln)}
                        for lic in lics] for ln in held}


def coverage_problems(lic: Licence, order, line, today: date) -> list[str]:
    """Why this licence does not cover this held line today (empty: it does, subject to its balance)."""
    problems = []
    if not lic.valid_from <= today <= lic.valid_to:
        problems.append(f"not valid on {today.isoformat()} (valid {lic.valid_from} to {lic.valid_to})")
    if order.ship_to not in lic.destinations:
        problems.append(f"does not cover destination {order.ship_to} (covers {', '.join(lic.destinations)})")
    if lic.products or lic.eccns:
        by_product = bool(line.sku) and line.sku in lic.products
        by_eccn = bool(line.eccn) and line.eccn in lic.eccns
        if not (by_product or by_eccn):
            problems.append(f"covers neither {line.eccn or 'an undetermined ECCN'} nor {line.sku or 'this product'}")
    elif not line.eccn:
        problems.append("the line's ECCN is undetermined and the licence names no products")
    if lic.parties:
        named = {normalise(p) for p in lic.parties}
        end_user = next(p for p in order.parties if p["role"] == "end_user")
        if normalise(end_user["name"]) not in named:
            problems.append(f"does not name the end user {end_user['name']!r}")
    elif any(r["code"] == "screening_hit" for r in line.reasons):
        problems.append("the line is held for a screening hit and the licence names no parties")
    return problems  # the balance is checked by the draw-down itself (atomically)


def draw_down(s, lic: Licence, line, actor: str) -> None:
    """Draw the line's quantity and value from the licence in one conditional UPDATE: it only applies while
    the balance allows it, so concurrent releases cannot overdraw (the loser gets a 409)."""
    qty, value = line.quantity, float(line.value or 0.0)
    stmt = (update(Licence).where(Licence.id == lic.id)
            .where((Licence.quantity_limit.is_(None)) | (Licence.quantity_used + qty <= Licence.quantity_limit))
            .where((Licence.value_limit.is_(None)) | (Licence.value_used + value <= Licence.value_limit))
            .values(quantity_used=Licence.quantity_used + qty, value_used=Licence.value_used + value)
            .execution_options(synchronize_session=False))
    if s.execute(stmt).rowcount != 1:
        s.refresh(lic)
        q_left = "unlimited" if lic.quantity_limit is None else str(lic.quantity_limit - lic.quantity_used)
        v_left = "unlimited" if lic.value_limit is None else f"{lic.value_limit - lic.value_used:g}"
        raise Conflict(f"licence {lic.number} is exhausted for this line (quantity {qty}, value {value:g}): "
                       f"remaining quantity {q_left}, value {v_left}", {"licence_id": ["exhausted"]})
    s.add(LicenceDrawdown(licence_id=lic.id, order_line_id=line.id, quantity=qty, value=value, actor=actor))
    s.flush()
    s.refresh(lic)
