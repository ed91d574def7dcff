"""Rulebooks: rule packs plus country groups, validated, content-hashed and effective-dated.

A rulebook is plain data: `{"packs": [...], "country_groups": {...}}`. Its revision is the sha256
of its canonical JSON (sorted keys, no whitespace), so every decision can cite exactly the rules
it came from. `in_force(as_of)` picks the rules whose [effective_from, effective_to] covers a date.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, cast

from .conditions import misplaced_releases, release_parts, validate_condition
from .countries import CountryGroups, validate_country_groups
from .errors import RulebookInvalid
from .vendors import MAX_FAMILIES, ModelCatalog, normalise_vendor, validate_models
from .vocabulary import ECCNS, EXCEPTIONS, METRICS, REQUIREMENTS, REVIEW_POLICIES, RULE_KINDS

LICENCE_ONLY_METRICS = {"eccn", "destination", "headquarters", "transaction_type"}
EFFECT_KEYS = {"requirement", "review_policy", "exceptions", "exceptions_blocked", "flags", "note"}
RULE_KEYS = {"id", "kind", "title", "eccn", "when", "effect", "precedence", "effective_from",
             "effective_to", "compliance_from", "citation", "source_url", "notes", "overlay", "uncertain"}
PACK_KEYS = {"id", "title", "citation", "published", "effective_from", "source_url", "notes", "rules",
             "tests", "status", "vendors", "families"}


def canonical_json(data: Any) -> str:
    """Canonical JSON: sorted keys, compact separators, dates as ISO strings."""
    return json.dumps(normalise(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalise(data: Any) -> Any:
    """Dates to ISO strings, tuples to lists: the JSON form that is stored and hashed."""
    if isinstance(data, dict):
        return {str(k): normalise(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [normalise(v) for v in data]
    if isinstance(data, date):
        return data.isoformat()
    return data


def content_hash(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def _date(value: Any, path: str, errors: list[str]) -> date | None:
    if value is None:
        return None
    try:
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        errors.append(f"{path}: not a date (YYYY-MM-DD): {value!r}")
        return None


@dataclass(frozen=True)
class Rule:
    """One validated rule, with the pack it belongs to."""

    id: str
    kind: str
    title: str
    when: dict[str, Any]
    precedence: int
    effective_from: date
    effective_to: date | None
    citation: str
    pack_id: str
    eccn: str | None = None
    effect: dict[str, Any] = field(default_factory=dict)
    notes: str | None = None
    source_url: str | None = None
    compliance_from: date | None = None  # in force from effective_from, but due only from this day
    uncertain: str | None = None  # what in this rule our sources leave uncertain: said in every answer it decides

    def in_force(self, as_of: date) -> bool:
        return self.effective_from <= as_of and (self.effective_to is None or as_of <= self.effective_to)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "kind": self.kind, "title": self.title, "pack": self.pack_id,
            "citation": self.citation, "effective_from": self.effective_from.isoformat(),
            "effective_to": self.effective_to.isoformat() if self.effective_to else None,
            "precedence": self.precedence, "when": self.when,
        }
        if self.eccn:
            out["eccn"] = self.eccn
        if self.effect:
            out["effect"] = self.effect
        if self.notes:
            out["notes"] = self.notes
        if self.source_url:
            out["source_url"] = self.source_url
        if self.compliance_from:
            out["compliance_from"] = self.compliance_from.isoformat()
        if self.uncertain:
            out["uncertain"] = self.uncertain
        return out


@dataclass(frozen=True)
class InForce:
    """The rules of a rulebook in force on one date, in evaluation order (highest precedence first)."""

    as_of: date
    classification: tuple[Rule, ...]
    licence: tuple[Rule, ...]


def validate_rulebook(content: Any) -> list[str]:
    """Every problem in a rulebook, each with its path (e.g. packs[2].rules[0].when.all[1].value)."""
    errors: list[str] = []
    if not isinstance(content, dict):
        return ["rulebook: must be a mapping with 'packs' and 'country_groups'"]
    errors += validate_country_groups(content.get("country_groups"))
    groups = set((content.get("country_groups") or {}).get("groups") or {}) if isinstance(
        content.get("country_groups"), dict) else set()
    packs = content.get("packs")
    if not isinstance(packs, list):
        return errors + ["packs: required list"]
    errors += _validate_models(packs)
    # the ids as written: validate_models reports a family without a string id
    families: set[Any] = {f.get("id") for p in packs if isinstance(p, dict) and isinstance(p.get("families"), list)
                for f in p["families"] if isinstance(f, dict)}
    seen_rules: dict[str, str] = {}
    seen_packs: set[str] = set()
    for pi, pack in enumerate(packs):
        pp = f"packs[{pi}]"
        if not isinstance(pack, dict):
            errors.append(f"{pp}: must be a mapping")
            continue
        pid = pack.get("id")
        if not isinstance(pid, str) or not pid:
            errors.append(f"{pp}.id: required string")
        elif pid in seen_packs:
            errors.append(f"{pp}.id: duplicate pack id {pid!r}")
        else:
            seen_packs.add(pid)
        pp = f"packs[{pi}]({pid})" if isinstance(pid, str) else pp
        for key in set(pack) - PACK_KEYS:
            errors.append(f"{pp}.{key}: unknown key")
        for key in ("title", "citation"):
            if not isinstance(pack.get(key), str) or not pack.get(key):
                errors.append(f"{pp}.{key}: required string")
        _date(pack.get("effective_from"), f"{pp}.effective_from", errors)
        _date(pack.get("published"), f"{pp}.published", errors)
        rules = pack.get("rules")
        if not isinstance(rules, list):
            errors.append(f"{pp}.rules: required list (may be empty, with notes saying why)")
            rules = []
        for ri, rule in enumerate(rules):
            errors += _validate_rule(rule, f"{pp}.rules[{ri}]", groups, seen_rules, families)
        tests = pack.get("tests", [])
        if not isinstance(tests, list):
            errors.append(f"{pp}.tests: must be a list")
    return errors


def _validate_models(packs: list[Any]) -> list[str]:
    """Vendor aliases and model families across packs: well formed, unique, and consistent."""
    errors: list[str] = []
    vendors: dict[str, str] = {}
    aliases: dict[str, tuple[str, str]] = {}
    families: dict[Any, str] = {}  # by id as written (validate_models reports one that is not a string)
    for pi, pack in enumerate(packs):
        if not isinstance(pack, dict):
            continue
        pp = f"packs[{pi}]({pack.get('id')})"
        errors += validate_models(pack.get("vendors"), pack.get("families"), pp)
        for vid, spec in (pack.get("vendors") or {}).items() if isinstance(pack.get("vendors"), dict) else ():
            if vid in vendors:
                errors.append(f"{pp}.vendors.{vid}: vendor defined twice (also in {vendors[vid]})")
            vendors[vid] = pp
            names = [vid, *(spec.get("aliases") or [])] if isinstance(spec, dict) and isinstance(
                spec.get("aliases") or [], list) else [vid]
            for alias in names:
                key = normalise_vendor(alias) if isinstance(alias, str) else ""
                if key in aliases and aliases[key][0] != vid:
                    errors.append(f"{pp}.vendors.{vid}.aliases: {alias!r} already names vendor {aliases[key][0]!r}")
                aliases.setdefault(key, (vid, pp))
    for pi, pack in enumerate(packs):
        if not isinstance(pack, dict) or not isinstance(pack.get("families"), list):
            continue
        pp = f"packs[{pi}]({pack.get('id')})"
        for fi, f in enumerate(pack["families"]):
            if not isinstance(f, dict):
                continue
            fid = f.get("id")
            if fid in families:
                errors.append(f"{pp}.families[{fi}].id: family {fid!r} defined twice (also in {families[fid]})")
            families[fid] = pp
            if isinstance(f.get("vendor"), str) and f["vendor"] not in vendors:
                errors.append(f"{pp}.families[{fi}].vendor: unknown vendor {f['vendor']!r}; "
                              f"define it under some pack's vendors (known: {sorted(vendors)})")
    if len(families) > MAX_FAMILIES:
        errors.append(f"families: {len(families)} defined; at most {MAX_FAMILIES} are supported")
    return errors


def _validate_rule(rule: Any, rp: str, groups: set[str], seen: dict[str, str],
                   families: set[str] | None = None) -> list[str]:
    errors: list[str] = []
    if not isinstance(rule, dict):
        return [f"{rp}: must be a mapping"]
    rid = rule.get("id")
    if not isinstance(rid, str) or not rid:
        errors.append(f"{rp}.id: required string")
    elif rid in seen:
        errors.append(f"{rp}.id: duplicate rule id {rid!r} (also at {seen[rid]})")
    else:
        seen[rid] = rp
    for key in set(rule) - RULE_KEYS:
        errors.append(f"{rp}.{key}: unknown key")
    kind = rule.get("kind")
    if kind not in RULE_KINDS:
        errors.append(f"{rp}.kind: must be one of {list(RULE_KINDS)}")
    if not isinstance(rule.get("citation"), str) or not rule.get("citation"):
        errors.append(f"{rp}.citation: required string")
    if not isinstance(rule.get("title"), str) or not rule.get("title"):
        errors.append(f"{rp}.title: required string")
    if not isinstance(rule.get("precedence", 0), int) or isinstance(rule.get("precedence"), bool):
        errors.append(f"{rp}.precedence: must be an integer")
    start = _date(rule.get("effective_from"), f"{rp}.effective_from", errors)
    if rule.get("effective_from") is None:
        errors.append(f"{rp}.effective_from: required date")
    end = _date(rule.get("effective_to"), f"{rp}.effective_to", errors)
    if start and end and end < start:
        errors.append(f"{rp}.effective_to: {end} is before effective_from {start}")
    if "uncertain" in rule and (not isinstance(rule["uncertain"], str) or not rule["uncertain"].strip()):
        errors.append(f"{rp}.uncertain: must be a non-empty text (what is uncertain, and why)")
    due = _date(rule.get("compliance_from"), f"{rp}.compliance_from", errors)
    if start and due and due <= start:
        errors.append(f"{rp}.compliance_from: {due} must be after effective_from {start}")
    if end and due and due > end:
        errors.append(f"{rp}.compliance_from: {due} is after effective_to {end}")
    when = rule.get("when")
    if when is None:
        errors.append(f"{rp}.when: required condition")
    else:
        errors += validate_condition(when, f"{rp}.when", groups, families)
        misplaced = misplaced_releases(when)
        if kind != "classification":
            misplaced += [p + ".release" for p, _ in release_parts(when)[1]]
        for where in misplaced:
            errors.append(f"{rp}.{where}: `release` is only allowed on a direct child of a classification "
                          "rule's top-level `all`")
        if kind == "classification":
            used = _metrics_used(when)
            bad = sorted(used & LICENCE_ONLY_METRICS)
            if bad:
                errors.append(f"{rp}.when: classification rules cannot test {bad}")
    if kind == "classification":
        if rule.get("eccn") not in ECCNS:
            errors.append(f"{rp}.eccn: must be one of {list(ECCNS)}")
        if rule.get("effect"):
            errors.append(f"{rp}.effect: classification rules set an eccn, not an effect")
    elif kind == "licence":
        effect = rule.get("effect")
        if not isinstance(effect, dict) or not effect:
            errors.append(f"{rp}.effect: required mapping (requirement / review_policy / exceptions / flags)")
        else:
            for key in set(effect) - EFFECT_KEYS:
                errors.append(f"{rp}.effect.{key}: unknown key")
            req = effect.get("requirement")
            if req is not None and req not in REQUIREMENTS[:2]:
                errors.append(f"{rp}.effect.requirement: must be one of {list(REQUIREMENTS[:2])}")
            pol = effect.get("review_policy")
            if pol is not None and pol not in REVIEW_POLICIES:
                errors.append(f"{rp}.effect.review_policy: must be one of {list(REVIEW_POLICIES)}")
            exc = effect.get("exceptions", [])
            if not isinstance(exc, list) or any(e not in EXCEPTIONS for e in exc):
                errors.append(f"{rp}.effect.exceptions: must be a list drawn from {list(EXCEPTIONS)}")
            flags = effect.get("flags", [])
            if not isinstance(flags, list) or not all(isinstance(x, str) for x in flags):
                errors.append(f"{rp}.effect.flags: must be a list of strings")
        if rule.get("eccn") is not None:
            errors.append(f"{rp}.eccn: only classification rules set an eccn")
    return errors


def _metrics_used(node: Any) -> set[str]:
    if not isinstance(node, dict):
        return set()
    if "all" in node or "any" in node:
        out: set[str] = set()
        for c in node.get("all") or node.get("any") or []:
            out |= _metrics_used(c)
        return out
    if "not" in node:
        return _metrics_used(node["not"])
    return {node["metric"]} if node.get("metric") in METRICS else set()


class Rulebook:
    """A validated, immutable rulebook. Construction raises RulebookInvalid listing every error."""

    def __init__(self, content: Mapping[str, Any]):
        content = normalise(content)
        errors = validate_rulebook(content)
        if errors:
            raise RulebookInvalid(errors)
        # Pack order carries no meaning (precedence decides), so the canonical form sorts packs by id:
        # a rulebook exported to files and loaded back keeps its revision whatever the file names.
        content = dict(content, packs=sorted(content["packs"], key=lambda p: p["id"]))
        self.content: dict[str, Any] = content
        self.revision: str = content_hash(content)
        self.country_groups = CountryGroups(content["country_groups"])
        self.packs: list[dict[str, Any]] = content["packs"]
        rules: list[Rule] = []
        for pack in self.packs:
            for r in pack["rules"]:
                rules.append(Rule(
                    id=r["id"], kind=r["kind"], title=r["title"], when=r["when"],
                    precedence=int(r.get("precedence", 0)),
                    effective_from=date.fromisoformat(r["effective_from"]),
                    effective_to=date.fromisoformat(r["effective_to"]) if r.get("effective_to") else None,
                    citation=r["citation"], pack_id=pack["id"], eccn=r.get("eccn"),
                    effect=r.get("effect") or {}, notes=r.get("notes"), source_url=r.get("source_url"),
                    compliance_from=date.fromisoformat(r["compliance_from"]) if r.get("compliance_from") else None,
                    uncertain=r.get("uncertain"),
                ))
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.models = ModelCatalog(
            {vid: spec for p in self.packs for vid, spec in (p.get("vendors") or {}).items()},
            [f for p in self.packs for f in p.get("families") or ()])
        self.pattern_cache: dict[tuple[str, ...], dict[str, bool]] = {}  # `model` glob leaves, per pattern list
        self.rules_by_id: dict[str, Rule] = {r.id: r for r in rules}
        self._in_force: dict[date, InForce] = {}

    def in_force(self, as_of: date) -> InForce:
        """Rules in force on `as_of`, ordered by precedence (highest first), then id."""
        cached = self._in_force.get(as_of)
        if cached is None:
            live = sorted((r for r in self.rules if r.in_force(as_of)), key=lambda r: (-r.precedence, r.id))
            cached = InForce(as_of, tuple(r for r in live if r.kind == "classification"),
                             tuple(r for r in live if r.kind == "licence"))
            self._in_force[as_of] = cached
        return cached

    def earliest_date(self) -> date:
        return min(r.effective_from for r in self.rules)

    def tests(self) -> Iterable[tuple[str, dict[str, Any]]]:
        """Every test case of every pack, as (pack id, case)."""
        for pack in self.packs:
            for case in pack.get("tests") or ():
                yield pack["id"], case

    def pack_of(self, rule_id: str) -> dict[str, Any]:
        pid = self.rules_by_id[rule_id].pack_id
        return next(p for p in self.packs if p["id"] == pid)


def load_rulebook_content(directory: str | Path) -> dict[str, Any]:
    """Read rules/: every packs/*.yaml (sorted by name) and country_groups.yaml."""
    import yaml

    # libyaml's parser with the safe constructor: the same values as yaml.safe_load, ten times faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    directory = Path(directory)
    packs = []
    for path in sorted((directory / "packs").glob("*.yaml")):
        with path.open(encoding="utf-8") as fh:
            packs.append(yaml.load(fh, Loader=loader))
    with (directory / "country_groups.yaml").open(encoding="utf-8") as fh:
        groups = yaml.load(fh, Loader=loader)
    return cast("dict[str, Any]", normalise({"packs": packs, "country_groups": groups}))  # a dict stays a dict


@lru_cache(maxsize=8)
def load_rulebook(directory: str) -> Rulebook:
    """Load and validate the rulebook in `directory` (cached per path)."""
    return Rulebook(load_rulebook_content(directory))
