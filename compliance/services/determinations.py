"""Classification determinations: an officer records a product's ECCN (or EAR99 / not subject) with its
basis and rule revision; a second person may have to approve it; a newer one supersedes it.

A determination is compared with the engine's answer for its product: the answer the officer saw (stored
with the determination) and the product's current standing (refreshed whenever the rules or the specs
change). Where the two disagree, or the computed answer has moved since, the determination needs review.
`sync_reviews` writes each such transition once to the determinations' change feed and notifies webhooks
(`determination.needs_review`); the re-evaluation after a publish and every product write call it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterable

from sqlalchemy import and_, func, or_, select

from ..db import Database
from ..engine.errors import Conflict, InvalidInput, NotFound
from ..engine.rulebook import content_hash
from ..engine.rulebook import normalise as _jsonable
from ..engine.vocabulary import ECCNS
from ..models import Catalogue, DecisionRecord, Determination, DeterminationPolicy, DeterminationReview, Product
from .paging import Page
from .webhooks import enqueue_deliveries

EAR99 = "EAR99"
NOT_SUBJECT = "NOT_SUBJECT"  # not subject to the EAR (e.g. published, or outside US jurisdiction)
_ECCN = re.compile(r"^[0-9][A-E][0-9]{3}(\.[a-z0-9]{1,3})*$")
_Z_PARAGRAPH = re.compile(r"\.z(\.|$)")  # x.z: items meeting or exceeding the 3A090 / 4A090 parameters
STATES = ("in_force", "pending_approval", "superseded")
BASIS_KEYS = ("spec_figures", "datasheet", "text")


def normalise_eccn(value: str) -> str:
    """The canonical form of a determined classification; 422 naming `eccn` if it is not one."""
    raw = (value or "").strip()
    upper = raw.upper().replace(" ", "_").replace("-", "_")
    if upper == EAR99:
        return EAR99
    if upper in (NOT_SUBJECT, "NOT_SUBJECT_TO_THE_EAR"):
        return NOT_SUBJECT
    eccn = raw[:5].upper() + raw[5:].lower()
    if not _ECCN.match(eccn):
        raise InvalidInput(f"unknown ECCN {value!r}", {"eccn": [
            f"unknown ECCN {value!r}: expected an ECCN such as 3A090.a or 5A992.c, EAR99, or NOT_SUBJECT"]})
    family = eccn[:5]
    if family in {e[:5] for e in ECCNS} and eccn not in ECCNS:
        known = ", ".join(e for e in ECCNS if e.startswith(family))
        raise InvalidInput(f"unknown ECCN {value!r}", {"eccn": [
            f"unknown ECCN {value!r}: {family} has the paragraphs {known}"]})
    return eccn


def agrees(determined: str, computed_eccn: str | None, computed_status: str | None) -> bool:
    """Does a determined classification agree with the engine's (3A090/4A090 only) answer?"""
    if computed_status == "indeterminate" or computed_status is None:
        return False
    if determined in ECCNS:
        return computed_status == "controlled" and computed_eccn == determined
    if _Z_PARAGRAPH.search(determined):
        return computed_status == "controlled"
    return computed_status == "not_controlled"  # EAR99, NOT_SUBJECT or another ECCN: not 3A090/4A090


def computed_label(eccn: str | None, status: str | None, missing: Iterable[str] = ()) -> str:
    if status == "controlled":
        return eccn or "controlled"
    if status == "indeterminate":
        gaps = ", ".join(missing)
        return f"indeterminate (missing {gaps})" if gaps else "indeterminate"
    if status == "not_controlled":
        return "not 3A090/4A090"
    return "unclassified"


def _day(dt: datetime | None) -> str:
    return dt.date().isoformat() if dt else "?"


def _short(revision: str | None) -> str:
    return (revision or "?")[:12]


# ---------------------------------------------------------------- views

@dataclass
class Standing:
    """A product's computed answer beside its determination in force (and one awaiting approval)."""

    product_id: int
    sku: str
    name: str
    computed: dict[str, Any]
    determination: dict[str, Any] | None
    pending: dict[str, Any] | None
    needs_review: bool
    reasons: list[str]

    @property
    def state(self) -> str:
        if self.determination is None:
            return "pending_approval" if self.pending else "undetermined"
        return "needs_review" if self.needs_review else "agrees"


def state_of(d: Determination) -> str:
    if d.superseded_by_id is not None:
        return "superseded"
    if d.approval_required and d.approved_at is None:
        return "pending_approval"
    return "in_force"


def determination_view(d: Determination) -> dict[str, Any]:
    return {"id": d.id, "catalogue_id": d.catalogue_id, "product_id": d.product_id, "sku": d.sku,
            "product_name": d.product_name, "eccn": d.eccn, "basis": d.basis, "state": state_of(d),
            "rule_version": d.rule_version, "ruleset_revision": d.ruleset_revision, "as_of": d.as_of,
            "computed": {"eccn": d.computed_eccn, "status": d.computed_status, "missing": list(d.computed_missing or [])},
            "agrees_with_computed": agrees(d.eccn, d.computed_eccn, d.computed_status),
            "decision_id": d.decision_id, "input_sha256": d.input_sha256,
            "recorded_by": d.recorded_by, "recorded_at": d.recorded_at,
            "approval": {"required": d.approval_required, "approved_by": d.approved_by, "approved_at": d.approved_at,
                         "note": d.approval_note},
            "superseded_by": d.superseded_by_id, "superseded_at": d.superseded_at}


def review_reasons(d: Determination, p: Product | None) -> list[str]:
    """Why an in-force determination needs review now (empty: it agrees and nothing moved)."""
    if p is None:
        return [f"the product {d.sku!r} is no longer in the catalogue; determined {d.eccn} on {_day(d.recorded_at)}"]
    out = []
    if not agrees(d.eccn, p.eccn, p.status):
        out.append(f"computed {computed_label(p.eccn, p.status)} under revision {_short(p.classified_revision)}; "
                   f"determined {d.eccn} on {_day(d.recorded_at)}")
    if (p.eccn, p.status) != (d.computed_eccn, d.computed_status):
        out.append(f"the computed answer changed from {computed_label(d.computed_eccn, d.computed_status)} "
                   f"(revision {_short(d.ruleset_revision)}) to {computed_label(p.eccn, p.status)} "
                   f"(revision {_short(p.classified_revision)}) since the determination of {_day(d.recorded_at)}")
    return out


def _computed(p: Product | None) -> dict[str, Any]:
    if p is None:
        return {"eccn": None, "status": None, "ruleset_revision": None, "classified_on": None}
    return {"eccn": p.eccn, "status": p.status, "ruleset_revision": p.classified_revision,
            "classified_on": p.classified_on}


def _in_force(catalogue_id: int):
    D = Determination
    return and_(D.catalogue_id == catalogue_id, D.superseded_by_id.is_(None),
                or_(D.approval_required.is_(False), D.approved_at.is_not(None)))


def _pending(catalogue_id: int):
    D = Determination
    return and_(D.catalogue_id == catalogue_id, D.superseded_by_id.is_(None), D.approval_required.is_(True),
                D.approved_at.is_(None))


# ---------------------------------------------------------------- policy

def get_policy(db: Database, catalogue_id: int) -> dict[str, Any]:
    with db.session() as s:
        _catalogue(s, catalogue_id)
        pol = s.get(DeterminationPolicy, catalogue_id)
        return _policy_view(catalogue_id, pol)


def set_policy(db: Database, catalogue_id: int, four_eyes: bool, actor: str) -> dict[str, Any]:
    """Require (or stop requiring) a second person's approval of this catalogue's new determinations."""
    with db.session() as s:
        _catalogue(s, catalogue_id)
        pol = s.get(DeterminationPolicy, catalogue_id)
        if pol is None:
            pol = DeterminationPolicy(catalogue_id=catalogue_id)
            s.add(pol)
        pol.four_eyes, pol.updated_by, pol.updated_at = bool(four_eyes), actor[:200], datetime.now(timezone.utc)
        s.flush()
        return _policy_view(catalogue_id, pol)


def _policy_view(catalogue_id: int, pol: DeterminationPolicy | None) -> dict[str, Any]:
    return {"catalogue_id": catalogue_id, "four_eyes": bool(pol and pol.four_eyes),
            "updated_by": pol.updated_by if pol else None, "updated_at": pol.updated_at if pol else None}


def _catalogue(session, catalogue_id: int) -> Catalogue:
    cat = session.get(Catalogue, catalogue_id)
    if cat is None:
        raise NotFound(f"no catalogue {catalogue_id}", {"catalogue_id": [f"unknown catalogue {catalogue_id}"]})
    return cat


# ---------------------------------------------------------------- record, approve

def _check_basis(basis: dict[str, Any] | None) -> dict[str, Any]:
    basis = {k: v for k, v in (basis or {}).items() if v not in (None, "", {}, [])}
    if not basis:
        raise InvalidInput("a determination needs a basis", {"basis": [
            "give at least one of spec_figures (the figures used), datasheet (a reference or attachment name) "
            "or text"]})
    return _jsonable(basis)


def record_determination(db: Database, store, catalogue_id: int, sku: str, eccn: str, basis: dict[str, Any],
                         actor: str, rule_revision: str | None = None, as_of: date | None = None) -> dict[str, Any]:
    """Record a determination for a catalogue product under a published revision (default: the current one).

    The engine's answer for the product's spec under that revision is stored with it (and as a decision
    record, so it can be replayed). Without four eyes it is in force at once and supersedes the previous one;
    with four eyes it waits for approval by someone else, and the previous one stays in force until then."""
    from ..schemas.product import ProductSchema
    from .classification import classify_products

    eccn = normalise_eccn(eccn)
    basis = _check_basis(basis)
    as_of = as_of or date.today()
    try:
        version, _ = store.current(rule_revision)
    except NotFound:
        raise InvalidInput(f"no published rule version with revision {rule_revision!r}", {"rule_revision": [
            f"unknown revision {rule_revision!r}: give the 64-character revision of a published version"]}) from None
    with db.session() as s:
        _catalogue(s, catalogue_id)
        product = s.scalar(select(Product).where(Product.catalogue_id == catalogue_id, Product.sku == sku)
                           .with_for_update())
        if product is None:
            raise NotFound(f"no product {sku!r} in catalogue {catalogue_id}", {"sku": [f"unknown SKU {sku!r}"]})
        spec = dict(product.spec)
        loaded = ProductSchema().load(spec)
        decision = classify_products(store, [loaded], as_of, revision=version.revision).all()[0]
        cls = decision["classification"]
        request = _jsonable({"as_of": as_of, "destinations": [], "transaction_type": "export",
                             "ruleset_revision": version.revision, "record": True, "detail": "full",
                             "product": loaded})
        record = DecisionRecord(actor=actor[:200], as_of=as_of, ruleset_revision=version.revision, request=request,
                                response=decision)
        s.add(record)
        s.flush()
        decision["decision_id"] = record.id
        pol = s.get(DeterminationPolicy, catalogue_id)
        four_eyes = bool(pol and pol.four_eyes)
        now = datetime.now(timezone.utc)
        det = Determination(
            catalogue_id=catalogue_id, product_id=product.id, sku=product.sku, product_name=product.name, eccn=eccn,
            basis=basis, spec=spec, rule_version=version.number, ruleset_revision=version.revision, as_of=as_of,
            computed_eccn=cls.get("eccn"), computed_status=cls["status"], computed_missing=list(cls.get("missing") or []),
            decision_id=record.id, recorded_by=actor[:200], recorded_at=now, approval_required=four_eyes,
            input_sha256=content_hash({"product": spec, "eccn": eccn, "basis": basis, "as_of": as_of.isoformat(),
                                       "ruleset_revision": version.revision}))
        s.add(det)
        s.flush()
        # An earlier determination still awaiting approval is withdrawn by the newer one.
        for old in s.scalars(select(Determination).where(_pending(catalogue_id), Determination.product_id == product.id,
                                                         Determination.id != det.id)):
            old.superseded_by_id, old.superseded_at = det.id, now
        if not four_eyes:
            _bring_into_force(s, det, now)
        s.flush()
        enqueue_deliveries(s, _sync(s, catalogue_id, "recorded", product_ids=[product.id]))
        view = determination_view(det)
    return view


def _bring_into_force(session, det: Determination, now: datetime) -> None:
    for old in session.scalars(select(Determination).where(_in_force(det.catalogue_id),
                                                           Determination.product_id == det.product_id,
                                                           Determination.id != det.id)):
        old.superseded_by_id, old.superseded_at = det.id, now


def approve_determination(db: Database, determination_id: int, actor: str, note: str | None = None) -> dict[str, Any]:
    """The second person's approval: it puts the determination in force (superseding the previous one)."""
    with db.session() as s:
        det = s.get(Determination, determination_id)
        if det is None:
            raise NotFound(f"no determination {determination_id}")
        s.scalar(select(Product.id).where(Product.id == det.product_id).with_for_update())  # one writer per product
        s.refresh(det)
        if not det.approval_required:
            raise Conflict(f"determination {det.id} did not need approval (its catalogue had no four-eyes rule)",
                           {"determination_id": ["does not need approval"]})
        if det.approved_at is not None:
            raise Conflict(f"determination {det.id} was already approved by {det.approved_by}",
                           {"determination_id": ["already approved"]})
        if det.superseded_by_id is not None:
            raise Conflict(f"determination {det.id} was superseded by {det.superseded_by_id}",
                           {"determination_id": [f"superseded by {det.superseded_by_id}"]})
        if actor == det.recorded_by:
            raise InvalidInput("the approver must differ from the person who recorded the determination",
                               {"approved_by": [f"must differ from recorded_by ({det.recorded_by}): four eyes"]})
        now = datetime.now(timezone.utc)
        det.approved_by, det.approved_at, det.approval_note = actor[:200], now, note
        _bring_into_force(s, det, now)
        s.flush()
        enqueue_deliveries(s, _sync(s, det.catalogue_id, "recorded", product_ids=[det.product_id]))
        view = determination_view(det)
    return view


# ---------------------------------------------------------------- reading

def get_determination(db: Database, determination_id: int) -> dict[str, Any]:
    with db.session() as s:
        det = s.get(Determination, determination_id)
        if det is None:
            raise NotFound(f"no determination {determination_id}")
        return determination_view(det)


def list_determinations(db: Database, page: int = 1, per_page: int = 100, catalogue_id: int | None = None,
                        sku: str | None = None, eccn: str | None = None, recorded_by: str | None = None,
                        state: str | None = None) -> dict[str, Any]:
    """Every determination (the history, superseded ones too), newest first."""
    D = Determination
    cond = []
    if catalogue_id is not None:
        cond.append(D.catalogue_id == catalogue_id)
    if sku:
        cond.append(D.sku == sku)
    if eccn:
        cond.append(D.eccn == normalise_eccn(eccn))
    if recorded_by:
        cond.append(D.recorded_by == recorded_by)
    if state == "superseded":
        cond.append(D.superseded_by_id.is_not(None))
    elif state == "pending_approval":
        cond.append(and_(D.superseded_by_id.is_(None), D.approval_required.is_(True), D.approved_at.is_(None)))
    elif state == "in_force":
        cond.append(and_(D.superseded_by_id.is_(None), or_(D.approval_required.is_(False), D.approved_at.is_not(None))))
    q = select(D).where(*cond)
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        items = [determination_view(d) for d in
                 s.scalars(q.order_by(D.id.desc()).offset((page - 1) * per_page).limit(per_page))]
    return page_dict(items, page, per_page, total)


def page_dict(items: list, page: int, per_page: int, total: int, **about: Any) -> Page:
    return Page(items, page, per_page, int(total), about)


def catalogue_standings(db: Database, catalogue_id: int, page: int = 1, per_page: int = 100,
                        needs_review: bool | None = None, state: str | None = None,
                        sku: str | None = None) -> dict[str, Any]:
    """Computed vs determined for the catalogue's products (every product; or those needing review)."""
    with db.session() as s:
        _catalogue(s, catalogue_id)
        standings = _standings(s, catalogue_id, sku)
    if needs_review is not None:
        standings = [x for x in standings if x.needs_review == needs_review]
    if state:
        standings = [x for x in standings if x.state == state]
    counts = {"products": len(standings), "needs_review": sum(x.needs_review for x in standings)}
    start = (page - 1) * per_page
    return page_dict(standings[start:start + per_page], page, per_page, len(standings), counts=counts)


def product_standing(db: Database, catalogue_id: int, sku: str) -> Standing:
    with db.session() as s:
        _catalogue(s, catalogue_id)
        found = _standings(s, catalogue_id, sku)
    if not found:
        raise NotFound(f"no product {sku!r} in catalogue {catalogue_id}", {"sku": [f"unknown SKU {sku!r}"]})
    return found[0]


def _standings(session, catalogue_id: int, sku: str | None = None) -> list[Standing]:
    """Every product (and every in-force determination whose product was deleted), ordered by product id."""
    D = Determination
    pq = select(Product).where(Product.catalogue_id == catalogue_id)
    dq_force = select(D).where(_in_force(catalogue_id))
    dq_pending = select(D).where(_pending(catalogue_id))
    if sku is not None:
        pq, dq_force, dq_pending = pq.where(Product.sku == sku), dq_force.where(D.sku == sku), dq_pending.where(D.sku == sku)
    force = {d.product_id: d for d in session.scalars(dq_force)}
    pending = {d.product_id: d for d in session.scalars(dq_pending)}
    out = []
    seen = set()
    for p in session.scalars(pq.order_by(Product.id)):
        seen.add(p.id)
        out.append(_standing(p.id, p.sku, p.name, p, force.get(p.id), pending.get(p.id)))
    for pid, d in sorted(force.items()):
        if pid not in seen:
            out.append(_standing(pid, d.sku, d.product_name, None, d, pending.get(pid)))
    return out


def _standing(pid: int, sku: str, name: str, p: Product | None, d: Determination | None,
              pending: Determination | None) -> Standing:
    reasons = review_reasons(d, p) if d is not None else []
    return Standing(pid, sku, name, _computed(p), determination_view(d) if d else None,
                    determination_view(pending) if pending else None, bool(reasons), reasons)


def audit_needs_review(db: Database, audit_id: int) -> dict[str, Any]:
    """In-force determinations that disagree with an audit's own answers (its pinned revision and date),
    counted and listed."""
    from ..models import Audit, AuditResult

    with db.session() as s:
        audit = s.get(Audit, audit_id)
        if audit is None:
            raise NotFound(f"no audit {audit_id}")
        rows = s.execute(select(Determination, AuditResult.eccn, AuditResult.status)
                         .join(AuditResult, AuditResult.product_id == Determination.product_id)
                         .where(AuditResult.audit_id == audit_id, _in_force(audit.catalogue_id))
                         .order_by(Determination.product_id)).all()
        return _disagreements(rows, audit.ruleset_revision)


def _disagreements(rows, revision: str) -> dict[str, Any]:
    items = []
    for d, eccn, status in rows:
        if not agrees(d.eccn, eccn, status):
            items.append({"determination_id": d.id, "product_id": d.product_id, "sku": d.sku, "determined": d.eccn,
                          "computed": {"eccn": eccn, "status": status},
                          "reason": f"computed {computed_label(eccn, status)} under revision {_short(revision)}; "
                                    f"determined {d.eccn} on {_day(d.recorded_at)}"})
    return {"needs_review": len(items), "items": items}


# ---------------------------------------------------------------- the change feed (kept true)

def sync_reviews(session, catalogue_id: int, cause: str, run_id: int | None = None,
                 product_ids: Iterable[int] | None = None, lo_id: int | None = None,
                 hi_id: int | None = None, skus: list[str] | None = None) -> list[int]:
    """Record, once, each in-force determination whose product's computed answer moved since it was last
    seen (or that disagrees on record), inside the caller's transaction; queue `determination.needs_review`
    webhooks. Returns the webhook delivery ids to send after commit (`webhooks.enqueue_deliveries`)."""
    return _sync(session, catalogue_id, cause, run_id, product_ids, lo_id, hi_id, skus)


def _sync(session, catalogue_id: int, cause: str, run_id: int | None = None,
          product_ids: Iterable[int] | None = None, lo_id: int | None = None, hi_id: int | None = None,
          skus: list[str] | None = None) -> list[int]:
    D, R = Determination, DeterminationReview
    q = select(D, Product).outerjoin(Product, Product.id == D.product_id).where(_in_force(catalogue_id))
    if product_ids is not None:
        q = q.where(D.product_id.in_(list(product_ids)))
    if skus is not None and len(skus) <= 1000:  # a big import checks the whole catalogue's determinations
        q = q.where(D.sku.in_(skus))
    if lo_id is not None:
        q = q.where(D.product_id >= lo_id)
    if hi_id is not None:
        q = q.where(D.product_id <= hi_id)
    pairs = session.execute(q).all()
    if not pairs:
        return []
    last: dict[int, DeterminationReview] = {}
    for r in session.scalars(select(R).where(R.determination_id.in_([d.id for d, _ in pairs])).order_by(R.id)):
        last[r.determination_id] = r
    events = []
    for d, p in pairs:
        prev = last.get(d.id)
        seen = (prev.new_eccn, prev.new_status) if prev else (d.computed_eccn, d.computed_status)
        seen_rev = prev.new_revision if prev else d.ruleset_revision
        now_eccn, now_status = (p.eccn, p.status) if p is not None else (None, None)
        now_rev = p.classified_revision if p is not None else None
        moved = (now_eccn, now_status) != seen
        first_disagreement = prev is None and not moved and not agrees(d.eccn, now_eccn, now_status)
        if not moved and not first_disagreement:
            continue
        key = f"{d.id}:{now_rev}:{now_eccn}:{now_status}:{'' if moved else 'recorded'}"
        if session.scalar(select(R.id).where(R.key == key)) is not None:
            continue
        reasons = review_reasons(d, p)
        row = R(key=key[:200], determination_id=d.id, catalogue_id=catalogue_id, product_id=d.product_id, sku=d.sku,
                cause=cause if moved else "recorded", run_id=run_id, determined_eccn=d.eccn, old_eccn=seen[0],
                old_status=seen[1], old_revision=seen_rev, new_eccn=now_eccn, new_status=now_status,
                new_revision=now_rev, needs_review=bool(reasons),
                reason="; ".join(reasons) or f"the computed answer is back to {computed_label(now_eccn, now_status)}")
        session.add(row)
        session.flush()
        if row.needs_review:
            events.append(row)
    if not events:
        return []
    from .webhooks import enqueue_event

    ids: list[int] = []
    for row in events:
        ids += enqueue_event(session, "determination.needs_review", review_view(row), key=f"determination-review:{row.id}")
    return ids


def review_view(r: DeterminationReview) -> dict[str, Any]:
    return {"id": r.id, "determination_id": r.determination_id, "catalogue_id": r.catalogue_id,
            "product_id": r.product_id, "sku": r.sku, "cause": r.cause, "run_id": r.run_id,
            "determined_eccn": r.determined_eccn, "needs_review": r.needs_review, "reason": r.reason,
            "old": {"eccn": r.old_eccn, "status": r.old_status, "ruleset_revision": r.old_revision},
            "new": {"eccn": r.new_eccn, "status": r.new_status, "ruleset_revision": r.new_revision},
            "created_at": r.created_at.isoformat() if r.created_at else None}


def list_reviews(db: Database, page: int = 1, per_page: int = 100, catalogue_id: int | None = None,
                 sku: str | None = None, revision: str | None = None, run_id: int | None = None,
                 determination_id: int | None = None) -> dict[str, Any]:
    """The determinations' change feed, newest first."""
    R = DeterminationReview
    cond = []
    if catalogue_id is not None:
        cond.append(R.catalogue_id == catalogue_id)
    if sku:
        cond.append(R.sku == sku)
    if revision:
        r = revision.lower()
        cond.append(R.new_revision == r if len(r) == 64 else R.new_revision.like(r + "%"))
    if run_id is not None:
        cond.append(R.run_id == run_id)
    if determination_id is not None:
        cond.append(R.determination_id == determination_id)
    q = select(R).where(*cond)
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        items = [review_view(r) for r in s.scalars(q.order_by(R.id.desc()).offset((page - 1) * per_page).limit(per_page))]
    return page_dict(items, page, per_page, total)
