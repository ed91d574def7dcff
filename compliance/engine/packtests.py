"""Run the test cases that travel with each rule pack against a whole rulebook.

A case names a date, a product, destinations and an optional end user, and the expected outcome.
`eccn`, `status`, `rule_id`, `missing`, requirement, review_policy, exceptions and country_groups
must match exactly; `metrics` values must match to 0.01; `rule_ids` and `flags` must all be present,
`not_rule_ids` all absent; `reason_contains` is a substring of the classification reason; each of
`notes_contain` is a substring of some note and none of `notes_lack` is (classification and licences).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from .evaluate import evaluate
from .explain import classification_record, licence_record
from .rulebook import Rulebook
from .table import build_table


@dataclass
class CaseResult:
    pack: str
    name: str
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def run_case(rulebook: Rulebook, pack_id: str, case: dict[str, Any]) -> CaseResult:
    """Evaluate one pack test case and list every mismatch."""
    name = case.get("name", "<unnamed>")
    failures: list[str] = []
    try:
        as_of = date.fromisoformat(str(case["as_of"]))
        dests = list(case.get("destinations") or [])
        hq = (case.get("end_user") or {}).get("headquarters")
        result = evaluate(build_table([case["product"]]), rulebook, as_of, dests, hq,
                          case.get("transaction_type", "export"))
    except Exception as exc:  # a broken case is a failure to report, not a crash
        return CaseResult(pack_id, name, [f"could not evaluate: {exc}"])
    cls = classification_record(result, 0)
    expect = case.get("expect") or {}
    for key in ("eccn", "status", "rule_id"):
        if key in expect and cls.get(key) != expect[key]:
            failures.append(f"{key}: expected {expect[key]!r}, got {cls.get(key)!r}")
    if "missing" in expect and cls["missing"] != expect["missing"]:
        failures.append(f"missing: expected {expect['missing']}, got {cls['missing']}")
    if "reason_contains" in expect and expect["reason_contains"] not in cls["reason"]:
        failures.append(f"reason: {expect['reason_contains']!r} not in {cls['reason']!r}")
    failures += _notes("notes", cls["notes"], expect)
    for metric, want in (expect.get("metrics") or {}).items():
        got = cls["metrics"].get(metric)
        if got is None or abs(float(got) - float(want)) > 0.01:
            failures.append(f"metrics.{metric}: expected {want}, got {got}")
    for dest, want in (expect.get("licences") or {}).items():
        if dest not in dests:
            failures.append(f"licences.{dest}: not among the case's destinations")
            continue
        got = licence_record(result, 0, dests.index(dest))
        for key in ("requirement", "review_policy", "exceptions", "missing", "country_groups"):
            if key in want and got[key] != want[key]:
                failures.append(f"licences.{dest}.{key}: expected {want[key]!r}, got {got[key]!r}")
        for key in ("rule_ids", "flags"):
            absent = [x for x in want.get(key, []) if x not in got[key]]
            if absent:
                failures.append(f"licences.{dest}.{key}: {absent} not in {got[key]}")
        present = [x for x in want.get("not_rule_ids", []) if x in got["rule_ids"]]
        if present:
            failures.append(f"licences.{dest}.rule_ids: {present} should not be listed: {got['rule_ids']}")
        failures += _notes(f"licences.{dest}.notes", got["notes"], want)
    return CaseResult(pack_id, name, failures)


def _notes(where: str, notes: list[str], want: dict[str, Any]) -> list[str]:
    failures = [f"{where}: no note contains {text!r}: {notes}"
                for text in want.get("notes_contain", []) if not any(text in n for n in notes)]
    failures += [f"{where}: a note contains {text!r}: {notes}"
                 for text in want.get("notes_lack", []) if any(text in n for n in notes)]
    return failures


def run_pack_tests(rulebook: Rulebook) -> list[CaseResult]:
    """Every case of every pack, in order."""
    return [run_case(rulebook, pack_id, case) for pack_id, case in rulebook.tests()]
