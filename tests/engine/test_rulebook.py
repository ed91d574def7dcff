"""Rulebook validation (every error at once, with its path), content hashing and effective dating."""
from __future__ import annotations

import copy
from datetime import date

import pytest

from compliance.engine import Rulebook, RulebookInvalid, canonical_json, content_hash, load_rulebook_content
from tests.engine.conftest import RULES_DIR


@pytest.fixture(scope="module")
def content():
    return load_rulebook_content(RULES_DIR)


def rule_path(content, rule_id):
    for pi, pack in enumerate(content["packs"]):
        for ri, rule in enumerate(pack["rules"]):
            if rule["id"] == rule_id:
                return pi, ri, f"packs[{pi}]({pack['id']}).rules[{ri}]"
    raise KeyError(rule_id)


def errors_of(content) -> list[str]:
    with pytest.raises(RulebookInvalid) as exc:
        Rulebook(content)
    return exc.value.errors


def test_the_bundled_rules_are_valid(content):
    rb = Rulebook(content)
    assert len(rb.rules) >= 20 and len(rb.revision) == 64


def test_every_error_is_reported_at_once_with_its_path(content):
    broken = copy.deepcopy(content)
    pa, ra, a = rule_path(broken, "us-2023-10.3a090.a")
    pb, rb_, b = rule_path(broken, "us-2023-10.licence.d1-d4-d5")
    pc, rc, c = rule_path(broken, "us-2024-12.3a090.c")
    pd, rd, d = rule_path(broken, "us-2025-04.overlay.nvidia-h20")
    pe, re_, e = rule_path(broken, "us-2023-10.4a090.b")
    rule_a = broken["packs"][pa]["rules"][ra]
    rule_a["when"]["all"][1]["any"][0]["metric"] = "tops"                              # bad metric
    broken["packs"][pb]["rules"][rb_]["when"]["all"][1]["value"] = ["D:9"]              # unknown group
    broken["packs"][pc]["rules"][rc]["when"]["all"][2]["op"] = "matches"                # bad op for a number
    broken["packs"][pd]["rules"][rd]["when"]["all"][1]["any"][1]["value"] = ["CN", "XX"]  # unknown country
    broken["packs"][pe]["rules"][re_]["effective_from"] = "2023-13-01"                  # bad date
    broken["packs"][pe]["rules"][re_]["effective_to"] = "2023-02-30"                    # impossible date
    errors = errors_of(broken)
    expected = [
        f"{a}.when.all[1].any[0].metric: unknown metric 'tops'",
        f"{b}.when.all[1].value: unknown country group(s) ['D:9']",
        f"{c}.when.all[2].op: 'matches' is not valid for number metric 'memory_bandwidth_density'",
        f"{d}.when.all[1].any[1].value: unknown country code(s) ['XX']",
        f"{e}.effective_from: not a date (YYYY-MM-DD): '2023-13-01'",
        f"{e}.effective_to: not a date (YYYY-MM-DD): '2023-02-30'",
    ]
    for want in expected:
        assert any(err.startswith(want) for err in errors), (want, errors)
    assert len(errors) == len(expected)


def test_effective_to_before_effective_from_is_an_error(content):
    broken = copy.deepcopy(content)
    pi, ri, path = rule_path(broken, "us-2023-01.licence.macau")
    broken["packs"][pi]["rules"][ri]["effective_to"] = "2022-12-31"
    assert errors_of(broken) == [f"{path}.effective_to: 2022-12-31 is before effective_from 2023-01-17"]


def test_compliance_from_must_fall_after_effective_from_and_within_the_rule(content):
    broken = copy.deepcopy(content)
    pi, ri, path = rule_path(broken, "us-2024-12.licence.hbm")
    broken["packs"][pi]["rules"][ri]["compliance_from"] = "2024-12-02"
    assert errors_of(broken) == [f"{path}.compliance_from: 2024-12-02 must be after effective_from 2024-12-02"]
    broken["packs"][pi]["rules"][ri].update(compliance_from="2025-02-01", effective_to="2025-01-31")
    assert errors_of(broken) == [f"{path}.compliance_from: 2025-02-01 is after effective_to 2025-01-31"]
    broken["packs"][pi]["rules"][ri].update(compliance_from="2024-13-01", effective_to=None)
    assert errors_of(broken)[0].startswith(f"{path}.compliance_from: not a date")


def test_release_is_only_allowed_on_a_top_level_child_of_a_classification_rule(content):
    broken = copy.deepcopy(content)
    pi, ri, path = rule_path(broken, "us-2023-10.3a090.a")
    rule = broken["packs"][pi]["rules"][ri]
    rule["when"]["all"][1]["any"][0]["release"] = "no"  # inside a paragraph
    rule["when"]["all"][2]["release"] = ""  # empty text
    errors = errors_of(broken)
    assert f"{path}.when.all[1].any[0].release: `release` is only allowed on a direct child of a classification " \
           "rule's top-level `all`" in errors
    assert f"{path}.when.all[2].release: must be a non-empty text (why the note releases the item)" in errors
    broken = copy.deepcopy(content)
    pi, ri, path = rule_path(broken, "us-2023-10.licence.d5-macau")
    broken["packs"][pi]["rules"][ri]["when"]["all"][0]["release"] = "x"
    assert errors_of(broken) == [f"{path}.when.all[0].release: `release` is only allowed on a direct child of a "
                                 "classification rule's top-level `all`"]


def test_uncertain_must_be_text(content):
    broken = copy.deepcopy(content)
    pi, ri, path = rule_path(broken, "us-2023-10.licence.d1-d4-d5")
    broken["packs"][pi]["rules"][ri]["uncertain"] = 3
    assert errors_of(broken) == [f"{path}.uncertain: must be a non-empty text (what is uncertain, and why)"]


def test_duplicate_rule_ids_are_errors_naming_both_places(content):
    broken = copy.deepcopy(content)
    pi, ri, first = rule_path(broken, "us-2023-10.3a090.a")
    pj, rj, second = rule_path(broken, "us-2023-10.3a090.b")
    broken["packs"][pj]["rules"][rj]["id"] = "us-2023-10.3a090.a"
    assert errors_of(broken) == [f"{second}.id: duplicate rule id 'us-2023-10.3a090.a' (also at {first})"]


def test_duplicate_pack_ids_are_errors(content):
    broken = copy.deepcopy(content)
    broken["packs"].append(copy.deepcopy(broken["packs"][0]) | {"rules": []})
    errors = errors_of(broken)
    assert any(e.startswith(f"packs[{len(broken['packs']) - 1}].id: duplicate pack id") for e in errors)


def test_classification_rules_cannot_test_licence_only_metrics(content):
    broken = copy.deepcopy(content)
    pi, ri, path = rule_path(broken, "us-2023-10.3a090.a")
    broken["packs"][pi]["rules"][ri]["when"]["all"].append({"metric": "destination", "op": "in", "value": ["CN"]})
    assert errors_of(broken) == [f"{path}.when: classification rules cannot test ['destination']"]


@pytest.mark.parametrize("mutate, fragment", [
    (lambda r: r.pop("citation"), ".citation: required string"),
    (lambda r: r.update(kind="policy"), ".kind: must be one of"),
    (lambda r: r.update(precedence="high"), ".precedence: must be an integer"),
    (lambda r: r.update(eccn="3A090.z"), ".eccn: must be one of"),
    (lambda r: r.update(colour="red"), ".colour: unknown key"),
    (lambda r: r.update(when={"all": []}), ".when.all: must be a non-empty list"),
    (lambda r: r.update(when={"all": [{"metric": "tpp", "op": ">=", "value": "4800"}]}),
     ".when.all[0].value: must be a number"),
    (lambda r: r.update(when={"any": [], "all": []}), ".when: a node is exactly one of"),
])
def test_classification_rule_problems_are_named(content, mutate, fragment):
    broken = copy.deepcopy(content)
    pi, ri, path = rule_path(broken, "us-2023-10.3a090.b")
    mutate(broken["packs"][pi]["rules"][ri])
    errors = errors_of(broken)
    assert any(e.startswith(path + fragment) for e in errors), errors


@pytest.mark.parametrize("effect, fragment", [
    ({"requirement": "maybe"}, ".effect.requirement: must be one of"),
    ({"review_policy": "lenient"}, ".effect.review_policy: must be one of"),
    ({"exceptions": ["GBS"]}, ".effect.exceptions: must be a list drawn from"),
    ({"flags": "x"}, ".effect.flags: must be a list of strings"),
    ({"colour": "red"}, ".effect.colour: unknown key"),
    ({}, ".effect: required mapping"),
])
def test_licence_effect_problems_are_named(content, effect, fragment):
    broken = copy.deepcopy(content)
    pi, ri, path = rule_path(broken, "us-2023-10.licence.d5-macau")
    broken["packs"][pi]["rules"][ri]["effect"] = effect
    errors = errors_of(broken)
    assert any(e.startswith(path + fragment) for e in errors), errors


def test_country_group_problems_are_named(content):
    broken = copy.deepcopy(content)
    broken["country_groups"]["groups"]["D:1"]["members"].append("XX")
    broken["country_groups"]["aliases"]["HK"] = {"treated_as": "ZZ"}
    errors = errors_of(broken)
    n = len(broken["country_groups"]["groups"]["D:1"]["members"]) - 1
    assert f"country_groups.groups.D:1.members[{n}]: unknown country code 'XX'" in errors
    assert any(e.startswith("country_groups.aliases.HK") for e in errors)


def test_the_content_hash_does_not_depend_on_key_order(content):
    reordered = {"country_groups": content["country_groups"],
                 "packs": [dict(reversed(list(p.items()))) for p in content["packs"]]}
    assert canonical_json(reordered) == canonical_json(content)
    assert Rulebook(reordered).revision == Rulebook(content).revision == content_hash(Rulebook(content).content)


def test_the_revision_does_not_depend_on_pack_order(content):
    shuffled = dict(content, packs=list(reversed(content["packs"])))
    assert Rulebook(shuffled).revision == Rulebook(content).revision


def test_the_content_hash_changes_when_a_threshold_changes(content):
    changed = copy.deepcopy(content)
    pi, ri, _ = rule_path(changed, "us-2023-10.3a090.a")
    changed["packs"][pi]["rules"][ri]["when"]["all"][1]["any"][0]["value"] = 4801
    assert Rulebook(changed).revision != Rulebook(content).revision


def test_dates_and_strings_hash_the_same(content):
    as_dates = copy.deepcopy(content)
    as_dates["packs"][0]["effective_from"] = date.fromisoformat(content["packs"][0]["effective_from"])
    assert content_hash(as_dates) == content_hash(content)


@pytest.mark.parametrize("as_of, present, absent", [
    ("2022-10-06", ["us-2022-08.overlay.nvidia-a100-h100"], ["us-2022-10.3a090.a"]),
    ("2022-10-07", ["us-2022-10.3a090.a"], ["us-2022-08.overlay.nvidia-a100-h100", "us-2023-10.3a090.a"]),
    ("2023-11-16", ["us-2022-10.3a090.a", "us-2023-01.licence.macau"], ["us-2023-10.3a090.a"]),
    ("2023-11-17", ["us-2023-10.3a090.a", "us-2023-10.exception.nac"], ["us-2022-10.3a090.a"]),
    ("2024-04-04", ["us-2024-04.exception.aca"], ["us-2023-10.exception.nac"]),
    ("2026-01-15", ["us-2026-01.policy.china-case-by-case", "us-2025-07.overlay.h20-mi308-approval"], []),
])
def test_in_force_picks_rules_by_date(content, as_of, present, absent):
    live = Rulebook(content).in_force(date.fromisoformat(as_of))
    ids = [r.id for r in live.classification + live.licence]
    assert all(p in ids for p in present), ids
    assert not any(a in ids for a in absent), ids


def test_in_force_orders_rules_by_precedence_highest_first(content):
    live = Rulebook(content).in_force(date(2025, 1, 1))
    precedences = [r.precedence for r in live.classification]
    assert precedences == sorted(precedences, reverse=True)
    assert [r.eccn for r in live.classification][:4] == ["3A090.a", "3A090.c", "3A090.c", "3A090.b"]
