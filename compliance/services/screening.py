"""Screening parties against the lists in force (the newest snapshot of every list), and officers' reviews
of hits (clear a false positive, confirm a true one) with actor and reason."""
from __future__ import annotations

import threading
from datetime import date

from sqlalchemy import func, select

from ..engine.errors import InvalidInput, NotFound
from ..models import ActivityEvent, HitReview, ListEntry, ListSnapshot, ScreeningList
from .paging import Page
from .screening_lists import address_line, ensure_sample, entry_view
from .screening_match import Candidate, MatchIndex, party_fingerprint

_lock = threading.Lock()
_indexes: dict[tuple, tuple[MatchIndex, list[dict]]] = {}
_sampled: set[str] = set()


def current_snapshots(db) -> list[tuple[int, str, int]]:
    """(list id, list name, snapshot id) of the snapshot in force of every list that has one."""
    with db.session() as s:
        newest = (select(ListSnapshot.list_id, func.max(ListSnapshot.version).label("v"))
                  .group_by(ListSnapshot.list_id).subquery())
        rows = s.execute(select(ScreeningList.id, ScreeningList.name, ListSnapshot.id)
                         .join(ListSnapshot, ListSnapshot.list_id == ScreeningList.id)
                         .join(newest, (newest.c.list_id == ListSnapshot.list_id) & (newest.c.v == ListSnapshot.version))
                         .order_by(ScreeningList.id)).all()
        return [tuple(r) for r in rows]


def _expired(end_date: str | None, today: date) -> bool:
    if not end_date:
        return False
    try:
        return date.fromisoformat(end_date[:10]) < today
    except ValueError:
        return False


def load_index(db, sample_path: str | None = None, session=None) -> tuple[MatchIndex, list[dict]]:
    """The match index of the lists in force (cached per set of snapshots), and the snapshots it holds.
    `session`: the caller's, for the one query that checks the cache (no connection of its own)."""
    # Snapshots are immutable and never deleted, and their ids only grow: the newest id identifies the set of
    # snapshots in force, so one scalar query tells whether the cached index is still the right one.
    if db.url not in _sampled:  # once per process and database: the sample is loaded on first use
        ensure_sample(db, sample_path)
        _sampled.add(db.url)
    if session is not None:
        newest = session.scalar(select(func.max(ListSnapshot.id)))
    else:
        with db.session() as s:
            newest = s.scalar(select(func.max(ListSnapshot.id)))
    key = (db.url, newest, date.today())
    with _lock:
        cached = _indexes.get(key)
    if cached is not None:
        return cached
    snaps = current_snapshots(db)
    today = date.today()
    with db.session() as s:
        meta = {sid: s.get(ListSnapshot, sid) for _, _, sid in snaps}
        snapshots = [{"list": name, "list_id": lid, "snapshot_id": sid, "version": meta[sid].version,
                      "source_date": meta[sid].source_date, "entries": meta[sid].entries} for lid, name, sid in snaps]
        names = {sid: name for _, name, sid in snaps}
        entries = s.scalars(select(ListEntry).where(ListEntry.snapshot_id.in_(list(names))).order_by(ListEntry.id)) \
            if names else []
        candidates = [Candidate(e.id, names[e.snapshot_id], e.source, e.name, list(e.alt_names or ()),
                                list(e.countries or ()), [address_line(a) for a in e.addresses or () if address_line(a)],
                                e.content_sha, entry_view(e))
                      for e in entries if not _expired(e.end_date, today)]
    built = (MatchIndex(candidates), snapshots)
    with _lock:
        if len(_indexes) > 8:
            _indexes.clear()
        _indexes[key] = built
    return built


def _reviews_for(s, fingerprints: set[str]) -> dict[tuple[str, str, int], HitReview]:
    """The latest review of each (party fingerprint, entity key, list)."""
    out: dict[tuple[str, str, int], HitReview] = {}
    if not fingerprints:
        return out
    for r in s.scalars(select(HitReview).where(HitReview.party_fingerprint.in_(list(fingerprints)))
                       .order_by(HitReview.id)):
        out[(r.party_fingerprint, r.entity_key, r.list_id)] = r
    return out


def review_view(r: HitReview) -> dict:
    return {"id": r.id, "party": r.party, "party_fingerprint": r.party_fingerprint, "list_id": r.list_id,
            "entity_key": r.entity_key, "entry_id": r.entry_id, "entry_name": r.entry_name,
            "entry_content_sha": r.entry_content_sha, "matched_name": r.matched_name, "score": r.score,
            "decision": r.decision, "reason": r.reason, "actor": r.actor, "created_at": r.created_at}


def screen_parties(db, parties: list[dict], threshold: float, sample_path: str | None = None,
                   session=None) -> dict:
    """Screen each party (name, country, address) against every list in force: hits with score, list, entry,
    matched name and why; a hit an officer cleared for this party and this entry content is marked cleared.
    `session`: the caller's (its queries run there, with no connection of their own)."""
    index, snapshots = load_index(db, sample_path, session)
    list_ids = {sn["list"]: sn["list_id"] for sn in snapshots}
    prints = [party_fingerprint(p["name"], p.get("country"), p.get("address")) for p in parties]
    matches = [index.match(p["name"], p.get("country"), p.get("address"), threshold) for p in parties]
    hit_prints = {fp for fp, m in zip(prints, matches) if m}  # a review is of a hit: none to read without one
    if not hit_prints:
        reviews = {}
    elif session is not None:
        reviews = _reviews_for(session, hit_prints)
    else:
        with db.session() as s:
            reviews = _reviews_for(s, hit_prints)
    results = []
    for party, fp, found in zip(parties, prints, matches):
        hits = []
        for h in found:
            review = reviews.get((fp, h.entry.extra["entity_key"], list_ids[h.entry.list_name]))
            cleared = bool(review and review.decision == "cleared" and review.entry_content_sha == h.entry.content_sha)
            stale = bool(review and review.entry_content_sha != h.entry.content_sha)
            hits.append({"list": h.entry.list_name, "source": h.entry.source, "entry": h.entry.extra,
                         "matched_name": h.matched_name, "matched_kind": h.matched_kind, "score": h.score,
                         "components": h.components, "why": h.why, "cleared": cleared,
                         "review": review_view(review) if review else None,
                         "review_state": ("cleared" if cleared else "stale" if stale else
                                          review.decision if review else "unreviewed")})
        open_hits = [h for h in hits if not h["cleared"]]
        status = "hit" if open_hits else ("cleared" if hits else "clear")
        results.append({"party": {"name": party["name"], "country": party.get("country"),
                                  "address": party.get("address")},
                        "party_fingerprint": fp, "status": status, "hits": hits})
    return {"results": results, "threshold": threshold, "lists": snapshots}


def record_review(db, party: dict, entry_id: int, decision: str, reason: str, actor: str, threshold: float,
                  sample_path: str | None = None) -> dict:
    """Record an officer's decision on a hit of a party against an entry of a list in force."""
    if not reason or not reason.strip():
        raise InvalidInput("a review needs a reason", {"reason": ["missing"]})
    answer = screen_parties(db, [party], threshold, sample_path)["results"][0]
    hit = next((h for h in answer["hits"] if h["entry"]["id"] == entry_id), None)
    with db.session() as s:
        entry = s.get(ListEntry, entry_id)
        if entry is None:
            raise NotFound(f"no list entry {entry_id}")
        if hit is None:
            snap_ids = {sid for _, _, sid in current_snapshots(db)}
            if entry.snapshot_id not in snap_ids:
                raise InvalidInput(f"entry {entry_id} is not in a list in force (its snapshot was superseded)",
                                   {"entry_id": ["not in a list in force"]})
            raise InvalidInput(f"party {party['name']!r} does not hit entry {entry_id} ({entry.name!r}) at the "
                               f"threshold {threshold:g}", {"entry_id": ["not a hit of this party"]})
        snap = s.get(ListSnapshot, entry.snapshot_id)
        review = HitReview(party_fingerprint=answer["party_fingerprint"], party=answer["party"], list_id=snap.list_id,
                           entity_key=entry.entity_key, entry_id=entry.id, entry_content_sha=entry.content_sha,
                           entry_name=entry.name[:1000], matched_name=hit["matched_name"][:1000], score=hit["score"],
                           decision=decision, reason=reason.strip(), actor=actor)
        s.add(review)
        s.flush()
        s.add(ActivityEvent(actor=actor, action=f"screening.hit_{decision}", target=f"list_entry:{entry.id}",
                            reason=reason.strip(), detail={"party": answer["party"], "score": hit["score"],
                                                        "matched_name": hit["matched_name"], "review_id": review.id}))
        s.flush()
        return review_view(review)


def list_reviews(db, page: int, per_page: int, decision: str | None = None, actor: str | None = None,
                 entry_id: int | None = None) -> dict:

    with db.session() as s:
        q = select(HitReview)
        if decision:
            q = q.where(HitReview.decision == decision)
        if actor:
            q = q.where(HitReview.actor == actor)
        if entry_id:
            q = q.where(HitReview.entry_id == entry_id)
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        items = [review_view(r) for r in s.scalars(q.order_by(HitReview.id.desc()).offset((page - 1) * per_page)
                                                   .limit(per_page))]
        return Page(items, page, per_page, total)
