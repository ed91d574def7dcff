"""Licence determination: destinations, headquarters, groups, exceptions, review-policy precedence."""
from __future__ import annotations

from datetime import date

import pytest

from compliance.engine import build_table, evaluate
from compliance.engine.errors import InvalidInput
from compliance.engine.explain import licence_record
from tests.conftest import H20, H100, HBM3E, RTX_4090

AS_OF = "2024-06-01"
MID_B = {"name": "Mid-range DC accelerator", "vendor": "Example", "kind": "ic", "datacenter": True,
         "tpp": 4000, "die_area_mm2": 1000}  # 3A090.b, datacenter: NAC/ACA eligible


def test_hong_kong_is_evaluated_as_china(decide):
    _, lic = decide(H100, AS_OF, ["HK", "CN"])
    assert lic["HK"]["evaluated_as"] == "CN"
    assert any("HK is evaluated as CN" in n for n in lic["HK"]["notes"])
    for key in ("requirement", "review_policy", "exceptions", "rule_ids"):
        assert lic["HK"][key] == lic["CN"][key]


def test_hong_kong_headquarters_count_as_china(decide):
    _, lic = decide(H100, AS_OF, ["DE"], hq="HK")
    assert lic["DE"]["requirement"] == "license_required"
    assert lic["DE"]["rule_ids"] == ["us-2023-10.licence.headquarters"]


@pytest.mark.parametrize("dest", ["IL", "CY", "TW"])
def test_a5_and_a6_members_are_excluded_even_when_in_d_groups(decide, dest):
    _, lic = decide(H100, AS_OF, [dest])
    assert lic[dest]["requirement"] == "no_license_required"


def test_israel_is_in_d4_and_a6_and_needs_no_licence(decide, rulebook):
    assert set(rulebook.country_groups.groups_of("IL", date(2024, 6, 1))) >= {"D:4", "A:6"}
    _, lic = decide(H100, AS_OF, ["IL", "AE"])
    assert lic["IL"]["requirement"] == "no_license_required"
    assert lic["AE"]["requirement"] == "license_required"  # D:4 only


@pytest.mark.parametrize("dest, policy", [("CN", "presumption_of_denial"), ("MO", "presumption_of_denial"),
                                          ("RU", "presumption_of_denial"), ("AE", "presumption_of_approval"),
                                          ("VN", "presumption_of_approval"), ("SA", "presumption_of_approval")])
def test_review_policy_is_denial_for_d5_and_macau_and_approval_for_other_d_groups(decide, dest, policy):
    _, lic = decide(H100, AS_OF, [dest])
    assert lic[dest]["requirement"] == "license_required"
    assert lic[dest]["review_policy"] == policy


def test_the_headquarters_rule_reaches_every_destination(decide):
    _, lic = decide(H100, AS_OF, ["DE", "US", "JP"], hq="CN")
    for dest in ("DE", "US", "JP"):
        assert lic[dest]["requirement"] == "license_required"
        assert lic[dest]["review_policy"] == "presumption_of_denial"


def test_without_headquarters_the_record_says_the_rule_was_not_applied(decide):
    _, lic = decide(H100, AS_OF, ["DE"])
    assert any("headquarters not given" in n for n in lic["DE"]["notes"])
    _, lic = decide(H100, AS_OF, ["DE"], hq="FR")
    assert not any("headquarters not given" in n for n in lic["DE"]["notes"])
    assert lic["DE"]["requirement"] == "no_license_required"


@pytest.mark.parametrize("dest", ["IR", "KP", "SY", "CU"])
def test_embargoed_destinations_are_flagged_and_lose_licence_exceptions(decide, dest):
    _, lic = decide(RTX_4090, AS_OF, [dest])
    assert lic[dest]["requirement"] == "license_required"
    assert "embargoed_destination" in lic[dest]["flags"]
    assert lic[dest]["exceptions"] == []
    assert lic[dest]["review_policy"] == "presumption_of_denial"


def test_even_an_uncontrolled_chip_needs_a_licence_to_an_embargoed_destination(decide):
    cls, lic = decide(H20, AS_OF, ["IR"])
    assert cls["eccn"] is None
    assert lic["IR"]["requirement"] == "license_required"


def test_russia_is_flagged_for_the_746_8_review(decide):
    _, lic = decide(H20, AS_OF, ["RU"])
    assert lic["RU"]["flags"] == ["check_746_8_russia_belarus"]


def test_nac_for_d5_and_aca_for_other_d_groups_after_the_split(decide):
    _, lic = decide(MID_B, AS_OF, ["CN", "MO", "AE", "DE"])
    assert lic["CN"]["exceptions"] == ["NAC"]
    assert lic["MO"]["exceptions"] == ["NAC"]
    assert lic["AE"]["exceptions"] == ["ACA"]
    assert lic["DE"]["exceptions"] == []  # no licence needed: exceptions are not reported


def test_a_d5_headquartered_buyer_gets_nac_not_aca(decide):
    _, lic = decide(MID_B, AS_OF, ["AE"], hq="RU")
    assert lic["AE"]["exceptions"] == ["NAC"]


def test_datacenter_3a090a_items_are_never_exception_eligible(decide):
    _, lic = decide(H100, AS_OF, ["CN", "AE"])
    assert lic["CN"]["exceptions"] == [] and lic["AE"]["exceptions"] == []


def test_consumer_3a090b_does_not_exist_so_no_exception_question_arises(decide):
    consumer = MID_B | {"datacenter": False}
    cls, lic = decide(consumer, AS_OF, ["CN"])
    assert cls["eccn"] is None and lic["CN"]["requirement"] == "no_license_required"


def test_licence_exception_hbm_only_below_3_3_gb_s_per_mm2(decide):
    low = {"name": "HBM2", "vendor": "Example", "kind": "hbm", "memory_bandwidth_gb_per_s": 300, "package_area_mm2": 110}
    _, lic_low = decide(low, "2025-01-01", ["CN"])
    _, lic_high = decide(HBM3E, "2025-01-01", ["CN"])
    assert lic_low["CN"]["exceptions"] == ["HBM"]
    assert lic_high["CN"]["exceptions"] == []


def test_hbm_needs_no_licence_outside_china_macau_and_d5(decide):
    _, lic = decide(HBM3E, "2025-01-01", ["AE", "VN", "DE"])
    assert all(r["requirement"] == "no_license_required" for r in lic.values())


def test_the_overlay_blocks_exceptions_on_h20(decide):
    _, lic = decide(H20, "2025-05-01", ["CN"])
    assert lic["CN"]["exceptions"] == []


def test_review_policy_comes_from_the_highest_precedence_matching_rule(decide):
    # From 2025-07-14 both the April letter (denial, precedence 30) and the approval (35) match H20 to CN.
    _, lic = decide(H20, "2025-08-01", ["CN"])
    assert lic["CN"]["review_policy"] == "presumption_of_approval"
    assert set(lic["CN"]["rule_ids"]) == {"us-2025-04.overlay.nvidia-h20", "us-2025-07.overlay.h20-mi308-approval"}


def test_january_2026_case_by_case_outranks_the_d5_denial(decide):
    _, lic = decide(H100, "2026-02-01", ["CN"])
    assert lic["CN"]["review_policy"] == "case_by_case"
    assert "us-2023-10.licence.d5-macau" in lic["CN"]["rule_ids"]
    assert "us-2026-01.policy.china-case-by-case" in lic["CN"]["rule_ids"]


def test_embargo_outranks_every_other_review_policy(decide):
    _, lic = decide(H100, "2026-02-01", ["IR"])
    assert lic["IR"]["review_policy"] == "presumption_of_denial"
    assert lic["IR"]["rules"][0]["precedence"] == 90


def test_h20_after_january_2026_keeps_the_summer_2025_approval(decide):
    # H20 is not 3A090, so the January 2026 policy (for 3A090/4A090 items) does not reach it.
    _, lic = decide(H20, "2026-02-01", ["CN"])
    assert lic["CN"]["review_policy"] == "presumption_of_approval"


def test_licence_requirement_is_indeterminate_when_classification_is(decide):
    _, lic = decide({"name": "x", "vendor": "Example", "kind": "ic", "datacenter": True, "tpp": 3000}, AS_OF,
                    ["CN", "DE", "IR"])
    assert lic["CN"]["requirement"] == "indeterminate"
    assert lic["CN"]["review_policy"] is None
    assert lic["DE"]["requirement"] == "no_license_required"   # no rule could require one
    assert lic["IR"]["requirement"] == "license_required"      # embargo needs no classification


def test_citations_name_every_matching_rule(decide):
    _, lic = decide(H100, AS_OF, ["CN"])
    assert "15 CFR 742.6(a)(6)(iii) (88 FR 73458)" in lic["CN"]["citations"]
    assert len(lic["CN"]["citations"]) == len(set(lic["CN"]["citations"]))


def test_an_unknown_destination_code_is_rejected_naming_the_field(rulebook):
    with pytest.raises(InvalidInput) as exc:
        evaluate(build_table([H100]), rulebook, date(2024, 6, 1), ["XX"])
    assert "destinations" in exc.value.errors


def test_an_unknown_headquarters_code_is_rejected_naming_the_field(rulebook):
    with pytest.raises(InvalidInput) as exc:
        evaluate(build_table([H100]), rulebook, date(2024, 6, 1), ["CN"], "ZZ")
    assert "end_user.headquarters" in exc.value.errors


def test_one_headquarters_per_product_or_one_for_all(rulebook):
    table = build_table([H100, H20])
    per_product = evaluate(table, rulebook, date(2024, 6, 1), ["DE"], ["CN", None])
    assert [licence_record(per_product, i, 0)["requirement"] for i in range(2)] == [
        "license_required", "no_license_required"]
    with pytest.raises(InvalidInput) as exc:
        evaluate(table, rulebook, date(2024, 6, 1), ["DE"], ["CN"])
    assert "end_user.headquarters" in exc.value.errors
