"""Differences between two rulebook contents, field by field: rules, packs, country groups, aliases."""
from __future__ import annotations

from typing import Any

from ..db import Database
from ..engine.rulebook import canonical_json
from .rule_versions import get_version


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
