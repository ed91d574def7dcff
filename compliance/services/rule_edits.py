"""The edit language of rule drafts: operations on rulebook content, applied in place (pure: no database).

`apply_op(content, op)` dispatches on `op["op"]` (the keys of OPS); a bad operation is an InvalidInput naming
the field. `overlay_rule` expands a product overlay into a licence rule.
"""
from __future__ import annotations

import copy
import re
from datetime import date
from typing import Any, Callable

from ..engine.countries import COUNTRY_INDEX
from ..engine.errors import InvalidInput
from ..engine.vocabulary import REQUIREMENTS, REVIEW_POLICIES


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
