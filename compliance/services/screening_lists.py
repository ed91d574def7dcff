"""Screening lists: parsing the Consolidated Screening List (CSV, TSV, JSON) and custom lists, importing a
file as a dated immutable snapshot with its delta against the previous snapshot, and reading them back."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from ..engine.countries import COUNTRY_INDEX
from ..engine.errors import Conflict, InvalidInput, NotFound
from ..models import ActivityEvent, ListEntry, ListSnapshot, ScreeningList, SnapshotChange
from .paging import Page

CSL_LIST = "csl"
FORMATS = ("csv", "tsv", "json")
# The columns of the CSL files (checked against published CSV headers), and what we keep of each.
KNOWN_COLUMNS = {
    "_id", "id", "source", "entity_number", "type", "programs", "name", "title", "addresses",
    "federal_register_notice", "start_date", "end_date", "standard_order", "license_requirement", "license_policy",
    "call_sign", "vessel_type", "gross_tonnage", "gross_registered_tonnage", "vessel_flag", "vessel_owner",
    "remarks", "source_list_url", "alt_names", "citizenships", "dates_of_birth", "nationalities", "places_of_birth",
    "source_information_url", "ids",
    # custom lists may give a party's country and address directly
    "country", "address",
}
MODELLED = {"_id", "id", "source", "entity_number", "type", "programs", "name", "addresses", "federal_register_notice",
            "start_date", "end_date", "license_requirement", "license_policy", "remarks", "source_list_url",
            "alt_names", "country", "address"}
# Short codes of the CSL's sources: "Entity List (EL) - Bureau of Industry and Security" -> "EL".
_SOURCE_CODE = re.compile(r"\(([A-Za-z0-9\-]{2,12})\)")
SOURCE_CODES = {"entity list": "EL", "denied persons list": "DPL", "unverified list": "UVL",
                "military end user": "MEU", "specially designated nationals": "SDN"}
COUNTRY_NAMES = {
    "china": "CN", "people's republic of china": "CN", "china, people's republic of": "CN", "hong kong": "HK",
    "taiwan": "TW", "russia": "RU", "russian federation": "RU", "iran": "IR", "belarus": "BY",
    "united arab emirates": "AE", "uae": "AE", "u.a.e.": "AE", "singapore": "SG", "pakistan": "PK",
    "germany": "DE", "france": "FR", "united kingdom": "GB", "japan": "JP", "south korea": "KR",
    "north korea": "KP", "syria": "SY", "turkey": "TR", "turkiye": "TR", "india": "IN", "malaysia": "MY",
    "united states": "US", "usa": "US", "brazil": "BR", "vietnam": "VN", "burma": "MM", "myanmar": "MM",
    "cuba": "CU", "venezuela": "VE", "netherlands": "NL", "italy": "IT", "spain": "ES", "canada": "CA",
}
MAX_ERRORS = 10_000


@dataclass
class Parsed:
    rows_read: int = 0
    entries: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)


def detect_format(filename: str, content_type: str | None, explicit: str | None) -> str:
    if explicit:
        return explicit
    name = (filename or "").lower()
    for fmt in FORMATS:
        if name.endswith("." + fmt):
            return fmt
    ctype = (content_type or "").lower()
    if "json" in ctype:
        return "json"
    if "tab-separated" in ctype:
        return "tsv"
    if "csv" in ctype:
        return "csv"
    raise InvalidInput("cannot tell the file's format: name it .csv, .tsv or .json, or pass format=",
                       {"format": ["give csv, tsv or json"]})


def _split(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    return [p.strip() for p in str(value).split(";") if p.strip()]


def _country(value, problems: list[str], where: str) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    if text.upper() in COUNTRY_INDEX:
        return text.upper()
    code = COUNTRY_NAMES.get(text.casefold())
    if code:
        return code
    problems.append(f"{where}: unknown country {text!r} (kept without a country)")
    return None


def _address_dict(item, problems: list[str], where: str) -> dict:
    if isinstance(item, dict):
        out = {k: (str(item[k]).strip() if item.get(k) is not None else None)
               for k in ("address", "city", "state", "postal_code", "country")}
        out["country"] = _country(item.get("country"), problems, where)
        return out
    # CSV: "street, city, state, postal code, country" with the country last
    parts = [p.strip() for p in str(item).split(",")]
    country = _country(parts[-1], problems, where) if parts else None
    rest = parts[:-1] if country else parts
    return {"address": ", ".join(p for p in rest if p), "city": None, "state": None, "postal_code": None,
            "country": country}


def address_line(addr: dict) -> str:
    return ", ".join(str(addr[k]) for k in ("address", "city", "state", "postal_code") if addr.get(k))


def source_code(source: str | None, default: str) -> str:
    if not source:
        return default
    m = _SOURCE_CODE.search(source)
    if m:
        return m.group(1).upper()
    low = source.casefold()
    for prefix, code in SOURCE_CODES.items():
        if low.startswith(prefix):
            return code
    return re.sub(r"[^A-Z0-9]", "", source.upper())[:16] or default


def _text(value, limit: int | None = None) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value).strip()
    if not text:
        return None
    return text[:limit] if limit else text


def _entry_from_row(row: dict, n: int, default_source: str, errors: list[dict]) -> dict | None:
    def err(fieldname: str, message: str, kept: bool = False) -> None:
        if len(errors) < MAX_ERRORS:
            errors.append({"row": n, "field": fieldname, "message": message, "kept": kept})

    name = row.get("name")
    if not isinstance(name, str) or not name.strip():
        err("name", "missing: every entry needs a name")
        return None
    if len(name) > 1000:
        err("name", "longer than 1000 characters")
        return None
    raw_alt = row.get("alt_names")
    if raw_alt is not None and not isinstance(raw_alt, (str, list)):
        err("alt_names", "must be a list of names or a '; '-separated string")
        return None
    raw_addr = row.get("addresses")
    if raw_addr is None or raw_addr == "":
        raw_addr = []
    if isinstance(raw_addr, str):
        raw_addr = [a for a in raw_addr.split(";") if a.strip()]
    if not isinstance(raw_addr, list):
        err("addresses", "must be a list of addresses or a '; '-separated string")
        return None
    problems: list[str] = []
    addresses = [_address_dict(a, problems, f"addresses[{i}].country") for i, a in enumerate(raw_addr)]
    if row.get("country") or row.get("address"):  # the simple columns of a custom list
        addresses.append({"address": _text(row.get("address")), "city": None, "state": None, "postal_code": None,
                          "country": _country(row.get("country"), problems, "country")})
    for p in problems:
        err(p.split(":")[0], p.split(": ", 1)[1], kept=True)
    source_name = _text(row.get("source"), 300) or ""
    entry = {
        "source": source_code(source_name, default_source), "source_name": source_name,
        "entity_number": _text(row.get("entity_number"), 100), "type": _text(row.get("type"), 50),
        "name": name.strip(), "alt_names": _split(raw_alt), "addresses": addresses,
        "countries": sorted({a["country"] for a in addresses if a.get("country")}),
        "programs": _split(row.get("programs")),
        "federal_register_notice": _text(row.get("federal_register_notice"), 500),
        "start_date": _text(row.get("start_date"), 32), "end_date": _text(row.get("end_date"), 32),
        "license_requirement": _text(row.get("license_requirement")), "license_policy": _text(row.get("license_policy")),
        "remarks": _text(row.get("remarks")), "source_list_url": _text(row.get("source_list_url"), 2000),
        "extra": {k: v for k, v in row.items() if k not in MODELLED and v not in (None, "", [])},
    }
    given_id = _text(row.get("_id") or row.get("id"), 200)
    entry["entity_key"] = given_id or "h:" + hashlib.sha1(
        f"{entry['source']}\x1f{entry['name']}\x1f{entry['entity_number'] or ''}".encode()).hexdigest()
    entry["content_sha"] = content_sha(entry)
    return entry


CONTENT_FIELDS = ("source", "type", "name", "alt_names", "addresses", "programs", "federal_register_notice",
                  "start_date", "end_date", "license_requirement", "license_policy", "remarks")


def content_sha(entry: dict) -> str:
    canon = json.dumps({k: entry.get(k) for k in CONTENT_FIELDS}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def parse_list(data: bytes, fmt: str, default_source: str = "CSL") -> Parsed:
    """Every row of a list file: good ones as entries, bad ones reported (row number, field, problem)."""
    out = Parsed()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the file is not UTF-8 ({exc})", {"file": ["not UTF-8"]}) from None
    rows: list[dict]
    if fmt == "json":
        try:
            doc = json.loads(text) if text.strip() else []
        except ValueError as exc:
            raise InvalidInput(f"the file is not valid JSON ({exc})", {"file": ["not valid JSON"]}) from None
        if isinstance(doc, dict):
            doc = doc.get("results", doc.get("entries"))
        if not isinstance(doc, list):
            raise InvalidInput("a JSON list file is a list of entries or {\"results\": [...]}",
                               {"file": ["expected a list of entries or {\"results\": [...]}"]})
        rows = doc
    elif fmt in ("csv", "tsv"):
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
        if reader.fieldnames is None:
            rows = []
        else:
            if "name" not in reader.fieldnames:
                raise InvalidInput("the file has no 'name' column", {"file": [f"columns are {reader.fieldnames}"]})
            rows = list(reader)
    else:
        raise InvalidInput(f"unknown format {fmt!r}", {"format": ["give csv, tsv or json"]})
    seen: set[str] = set()
    unknown: set[str] = set()
    for n, row in enumerate(rows, 1):
        out.rows_read += 1
        if not isinstance(row, dict):
            out.errors.append({"row": n, "field": "", "message": "not an object", "kept": False})
            continue
        if None in row:  # csv: more cells than header columns
            out.errors.append({"row": n, "field": "", "message": "more cells than columns", "kept": False})
            continue
        unknown |= {k for k in row if k not in KNOWN_COLUMNS}
        entry = _entry_from_row(row, n, default_source, out.errors)
        if entry is None:
            continue
        if entry["entity_key"] in seen:
            out.errors.append({"row": n, "field": "_id", "message": f"duplicate id {entry['entity_key']!r}",
                               "kept": False})
            continue
        seen.add(entry["entity_key"])
        out.entries.append(entry)
    out.unknown_columns = sorted(unknown)
    return out


# ---------- lists and snapshots ----------

def _list_by_name(s, name: str) -> ScreeningList | None:
    return s.scalar(select(ScreeningList).where(ScreeningList.name == name))


def create_list(db, name: str, description: str, actor: str, kind: str = "custom") -> dict:
    with db.session() as s:
        if _list_by_name(s, name) is not None:
            raise Conflict(f"a list named {name!r} exists", {"name": ["already used"]})
        lst = ScreeningList(name=name, kind=kind, description=description, created_by=actor)
        s.add(lst)
        s.flush()
        s.add(ActivityEvent(actor=actor, action="screening.list_create", target=f"screening_list:{lst.id}",
                            detail={"name": name, "kind": kind}))
        s.flush()
        return list_view(s, lst)


def list_view(s, lst: ScreeningList) -> dict:
    snap = s.scalar(select(ListSnapshot).where(ListSnapshot.list_id == lst.id).order_by(ListSnapshot.version.desc())
                    .limit(1))
    count = s.scalar(select(func.count()).select_from(ListSnapshot).where(ListSnapshot.list_id == lst.id))
    return {"id": lst.id, "name": lst.name, "kind": lst.kind, "description": lst.description,
            "created_by": lst.created_by, "created_at": lst.created_at, "snapshots": count,
            "current": snapshot_view(snap, lst.name) if snap else None}


def list_lists(db) -> list[dict]:
    with db.session() as s:
        return [list_view(s, lst) for lst in s.scalars(select(ScreeningList).order_by(ScreeningList.id))]


def get_list(db, list_id: int) -> dict:
    with db.session() as s:
        lst = s.get(ScreeningList, list_id)
        if lst is None:
            raise NotFound(f"no screening list {list_id}")
        view = list_view(s, lst)
        view["history"] = [snapshot_view(x, lst.name) for x in s.scalars(
            select(ListSnapshot).where(ListSnapshot.list_id == lst.id).order_by(ListSnapshot.version.desc()))]
        return view


def snapshot_view(snap: ListSnapshot, list_name: str) -> dict:
    return {"id": snap.id, "list_id": snap.list_id, "list": list_name, "version": snap.version,
            "source_date": snap.source_date, "previous_id": snap.previous_id, "filename": snap.filename,
            "format": snap.format, "sha256": snap.sha256, "rows_read": snap.rows_read, "entries": snap.entries,
            "rejected": snap.rejected, "errors": snap.errors, "unknown_columns": snap.unknown_columns,
            "delta": {"added": snap.added, "removed": snap.removed, "changed": snap.changed},
            "imported_by": snap.imported_by, "imported_at": snap.imported_at}


def get_snapshot(db, snapshot_id: int) -> dict:
    with db.session() as s:
        snap = s.get(ListSnapshot, snapshot_id)
        if snap is None:
            raise NotFound(f"no list snapshot {snapshot_id}")
        return snapshot_view(snap, s.get(ScreeningList, snap.list_id).name)


def _diff_fields(old: ListEntry, new: dict) -> list[str]:
    return [f for f in CONTENT_FIELDS if getattr(old, f) != new.get(f)]


def import_snapshot(db, list_id: int, data: bytes, fmt: str, filename: str, source_date: date | None,
                    actor: str) -> dict:
    """Parse a list file and store it as the list's next snapshot, with its delta against the previous one.

    Bad rows are reported and left out; the good ones make the snapshot. A file identical to the current
    snapshot (same SHA-256) is refused with 409 rather than stored twice."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}", {"format": ["give csv, tsv or json"]})
    digest = hashlib.sha256(data).hexdigest()
    with db.session() as s:
        lst = s.get(ScreeningList, list_id)
        if lst is None:
            raise NotFound(f"no screening list {list_id}")
        parsed = parse_list(data, fmt, "CUSTOM" if lst.kind == "custom" else "CSL")
        prev = s.scalar(select(ListSnapshot).where(ListSnapshot.list_id == list_id)
                        .order_by(ListSnapshot.version.desc()).limit(1))
        if prev is not None and prev.sha256 == digest:
            raise Conflict(f"this file is already snapshot {prev.id} (version {prev.version}) of {lst.name!r}",
                           {"file": ["identical to the current snapshot"]})
        snap = ListSnapshot(list_id=list_id, version=(prev.version + 1) if prev else 1,
                            source_date=source_date or date.today(), previous_id=prev.id if prev else None,
                            filename=filename[:500], format=fmt, sha256=digest, rows_read=parsed.rows_read,
                            entries=len(parsed.entries),
                            rejected=sum(1 for e in parsed.errors if not e.get("kept")),
                            errors=parsed.errors, unknown_columns=parsed.unknown_columns, imported_by=actor)
        s.add(snap)
        s.flush()
        rows = [{**e, "snapshot_id": snap.id} for e in parsed.entries]
        for i in range(0, len(rows), 2000):
            s.execute(insert(ListEntry), rows[i:i + 2000])
        new_ids = dict(s.execute(select(ListEntry.entity_key, ListEntry.id).where(ListEntry.snapshot_id == snap.id)).all())
        changes: list[dict] = []
        by_key = {e["entity_key"]: e for e in parsed.entries}
        if prev is not None:
            old_entries = {e.entity_key: e for e in s.scalars(select(ListEntry).where(ListEntry.snapshot_id == prev.id))}
            for key, e in by_key.items():
                old = old_entries.get(key)
                if old is None:
                    changes.append({"entity_key": key, "change": "added", "name": e["name"][:1000], "source": e["source"],
                                    "fields": [], "entry_id": new_ids[key], "previous_entry_id": None})
                elif old.content_sha != e["content_sha"]:
                    changes.append({"entity_key": key, "change": "changed", "name": e["name"][:1000],
                                    "source": e["source"], "fields": _diff_fields(old, e), "entry_id": new_ids[key],
                                    "previous_entry_id": old.id})
            for key, old in old_entries.items():
                if key not in by_key:
                    changes.append({"entity_key": key, "change": "removed", "name": old.name, "source": old.source,
                                    "fields": [], "entry_id": None, "previous_entry_id": old.id})
        else:
            changes = [{"entity_key": k, "change": "added", "name": e["name"][:1000], "source": e["source"],
                        "fields": [], "entry_id": new_ids[k], "previous_entry_id": None} for k, e in by_key.items()]
        for i in range(0, len(changes), 2000):
            s.execute(insert(SnapshotChange), [{**c, "snapshot_id": snap.id} for c in changes[i:i + 2000]])
        snap.added = sum(1 for c in changes if c["change"] == "added")
        snap.removed = sum(1 for c in changes if c["change"] == "removed")
        snap.changed = sum(1 for c in changes if c["change"] == "changed")
        s.add(ActivityEvent(actor=actor, action="screening.import", target=f"list_snapshot:{snap.id}",
                            detail={"list": lst.name, "version": snap.version, "entries": snap.entries,
                                 "rejected": snap.rejected, "added": snap.added, "removed": snap.removed,
                                 "changed": snap.changed, "sha256": digest, "filename": filename[:500]}))
        s.flush()
        view = snapshot_view(snap, lst.name)
        from .order_recheck import request_recheck  # open orders are re-screened against the new snapshot

        request_recheck(s, f"list_snapshot:{view['id']}")
    return view


def _page(items: list, page: int, per_page: int, total: int) -> Page:
    return Page(items, page, per_page, total)


def snapshot_changes(db, snapshot_id: int, page: int, per_page: int, change: str | None = None) -> dict:
    with db.session() as s:
        if s.get(ListSnapshot, snapshot_id) is None:
            raise NotFound(f"no list snapshot {snapshot_id}")
        q = select(SnapshotChange).where(SnapshotChange.snapshot_id == snapshot_id)
        if change:
            q = q.where(SnapshotChange.change == change)
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        items = [{"entity_key": c.entity_key, "change": c.change, "name": c.name, "source": c.source,
                  "fields": c.fields, "entry_id": c.entry_id, "previous_entry_id": c.previous_entry_id}
                 for c in s.scalars(q.order_by(SnapshotChange.id).offset((page - 1) * per_page).limit(per_page))]
        return _page(items, page, per_page, total)


def entry_view(e: ListEntry) -> dict:
    return {"id": e.id, "snapshot_id": e.snapshot_id, "entity_key": e.entity_key, "source": e.source,
            "source_name": e.source_name, "entity_number": e.entity_number, "type": e.type, "name": e.name,
            "alt_names": e.alt_names, "addresses": e.addresses, "countries": e.countries, "programs": e.programs,
            "federal_register_notice": e.federal_register_notice, "start_date": e.start_date, "end_date": e.end_date,
            "license_requirement": e.license_requirement, "license_policy": e.license_policy, "remarks": e.remarks,
            "source_list_url": e.source_list_url, "content_sha": e.content_sha}


def snapshot_entries(db, snapshot_id: int, page: int, per_page: int, q: str | None = None,
                     source: str | None = None) -> dict:
    with db.session() as s:
        if s.get(ListSnapshot, snapshot_id) is None:
            raise NotFound(f"no list snapshot {snapshot_id}")
        query = select(ListEntry).where(ListEntry.snapshot_id == snapshot_id)
        if q:
            query = query.where(func.lower(ListEntry.name).contains(q.lower()))
        if source:
            query = query.where(ListEntry.source == source.upper())
        total = s.scalar(select(func.count()).select_from(query.subquery()))
        items = [entry_view(e) for e in s.scalars(query.order_by(ListEntry.id).offset((page - 1) * per_page)
                                                  .limit(per_page))]
        return _page(items, page, per_page, total)


def ensure_csl_list(db, actor: str = "system") -> int:
    """The id of the CSL list, creating it (empty) if it does not exist yet."""
    with db.session() as s:
        lst = _list_by_name(s, CSL_LIST)
        if lst is not None:
            return lst.id
    try:
        return create_list(db, CSL_LIST, "Consolidated Screening List (trade.gov): Entity List, DPL, UVL, MEU, "
                           "SDN and the other lists it consolidates", actor, kind="csl")["id"]
    except (Conflict, IntegrityError):  # created meanwhile by another request
        with db.session() as s:
            return _list_by_name(s, CSL_LIST).id


def ensure_sample(db, sample_path: str | None) -> None:
    """On first use, the bundled sample of real Entity List entries becomes the CSL list's first snapshot."""
    if not sample_path:
        return
    with db.session() as s:
        lst = _list_by_name(s, CSL_LIST)
        if lst is not None and s.scalar(select(func.count()).select_from(ListSnapshot)
                                        .where(ListSnapshot.list_id == lst.id)):
            return
    path = Path(sample_path)
    data = path.read_bytes()
    sample_date = json.loads(data).get("_sample_date")
    list_id = ensure_csl_list(db, "sample")
    try:
        import_snapshot(db, list_id, data, "json", path.name,
                        date.fromisoformat(sample_date) if sample_date else None, "sample")
    except (Conflict, IntegrityError):
        pass  # imported meanwhile by another request

