"""The primer's worked examples and the day-before / day-of boundary of every rule version."""
from __future__ import annotations

import pytest

from tests.conftest import A800, H20, H100, HBM3E, RTX_4090

# Synthetic figures (not a datasheet): below every 3A090 prong, so only the overlay can bind it.
MI308 = {"name": "Instinct MI308X", "vendor": "AMD", "kind": "ic", "datacenter": True, "tpp": 2300,
         "die_area_mm2": 1000}


# ---- worked examples (primer section 4) ----

@pytest.mark.parametrize("product, eccn_2022, eccn_2023", [
    (H100, "3A090.a", "3A090.a"),
    (A800, None, "3A090.a"),
    (H20, None, None),
])
def test_worked_examples_under_the_2022_and_2023_rules(decide, product, eccn_2022, eccn_2023):
    cls_2022, _ = decide(product, "2023-06-01")
    cls_2023, _ = decide(product, "2024-06-01")
    assert cls_2022["eccn"] == eccn_2022
    assert cls_2023["eccn"] == eccn_2023
    assert cls_2022["status"] == ("controlled" if eccn_2022 else "not_controlled")
    assert cls_2023["status"] == ("controlled" if eccn_2023 else "not_controlled")


def test_h100_is_3a090a_through_a1_under_the_2023_rule(decide):
    cls, _ = decide(H100, "2024-06-01")
    assert cls["rule_id"] == "us-2023-10.3a090.a"
    a1 = [c for c in cls["conditions"] if c.get("label") == "a.1"]
    assert a1 and a1[0]["met"] is True and a1[0]["margin"] == pytest.approx(15832 - 4800)
    assert "88 FR 73458" in cls["citation"]


def test_a800_falls_outside_the_2022_rule_only_because_of_its_io(decide):
    cls, _ = decide(A800, "2023-06-01")
    io = [c for c in cls["conditions"] if c["metric"] == "io_bandwidth"]
    assert io[0]["met"] is False and io[0]["margin"] == -200
    tpp = [c for c in cls["conditions"] if c["metric"] == "tpp" and c["rule_id"] == "us-2022-10.3a090.a"]
    assert tpp[0]["met"] is True


# ---- every version boundary: day before / day of ----

def test_h100_is_not_3a090_the_day_before_the_october_2022_rule(decide):
    cls, lic = decide(H100, "2022-10-06", ["CN", "DE"])
    assert cls["eccn"] is None
    # ...but the August 2022 letter still binds it for China.
    assert lic["CN"]["requirement"] == "license_required"
    assert lic["CN"]["rule_ids"] == ["us-2022-08.overlay.nvidia-a100-h100"]


def test_h100_is_3a090a_from_2022_10_07(decide):
    cls, lic = decide(H100, "2022-10-07", ["CN", "HK", "DE"])
    assert cls["eccn"] == "3A090.a"
    assert cls["rule_id"] == "us-2022-10.3a090.a"
    assert lic["CN"]["rule_ids"] == ["us-2022-10.licence.china"]
    assert lic["HK"]["requirement"] == "license_required"
    assert lic["DE"]["requirement"] == "no_license_required"


def test_nothing_is_classified_before_the_first_rule(decide):
    cls, lic = decide(H100, "2022-06-01", ["CN"])
    assert cls["status"] == "not_controlled"
    assert cls["reason"] == "no classification rules in force on this date"
    assert lic["CN"]["requirement"] == "no_license_required"


@pytest.mark.parametrize("as_of, requirement", [("2023-01-16", "no_license_required"),
                                                ("2023-01-17", "license_required")])
def test_macau_joins_the_2022_licence_requirement_on_2023_01_17(decide, as_of, requirement):
    _, lic = decide(H100, as_of, ["MO"])
    assert lic["MO"]["requirement"] == requirement


def test_a800_changes_from_free_to_3a090a_between_2023_11_16_and_17(decide):
    before, _ = decide(A800, "2023-11-16", ["CN"])
    after, lic_after = decide(A800, "2023-11-17", ["CN"])
    assert before["eccn"] is None
    assert after["eccn"] == "3A090.a" and lic_after["CN"]["requirement"] == "license_required"
    assert after["rule_id"] == "us-2023-10.3a090.a"


@pytest.mark.parametrize("as_of, requirement", [("2023-10-22", "no_license_required"),
                                                ("2023-10-23", "license_required"),
                                                ("2023-11-16", "license_required")])
def test_the_early_effect_letter_binds_the_a800_from_2023_10_23(decide, as_of, requirement):
    _, lic = decide(A800, as_of, ["CN"])
    assert lic["CN"]["requirement"] == requirement
    if requirement == "license_required":
        assert "us-2023-10.overlay.nvidia-early-d5-macau" in lic["CN"]["rule_ids"]


def test_the_2022_rule_still_applies_on_its_last_day_2023_11_16(decide):
    cls, _ = decide(H100, "2023-11-16")
    assert cls["rule_id"] == "us-2022-10.3a090.a"


@pytest.mark.parametrize("as_of, requirement", [("2023-10-22", "no_license_required"),
                                                ("2023-11-17", "license_required")])
def test_vietnam_d1_needs_a_licence_from_the_2023_rule(decide, as_of, requirement):
    _, lic = decide(dict(H100, name="Accelerator X", vendor="Example"), as_of, ["VN"])
    if as_of == "2023-10-22":
        _, named = decide(H100, "2023-10-23", ["VN"])  # the H100 itself: by the early-effect letter
        assert named["VN"]["requirement"] == "license_required"
    assert lic["VN"]["requirement"] == requirement


@pytest.mark.parametrize("as_of, exceptions", [("2024-04-03", ["NAC"]), ("2024-04-04", ["ACA"])])
def test_nac_splits_into_nac_and_aca_on_2024_04_04(decide, as_of, exceptions):
    _, lic = decide(RTX_4090, as_of, ["AE", "CN"])
    assert lic["AE"]["exceptions"] == exceptions
    assert lic["CN"]["exceptions"] == ["NAC"]


@pytest.mark.parametrize("as_of, eccn, requirement", [("2024-12-01", None, "no_license_required"),
                                                      ("2024-12-02", "3A090.c", "license_required")])
def test_hbm_becomes_3a090c_on_2024_12_02(decide, as_of, eccn, requirement):
    cls, lic = decide(HBM3E, as_of, ["CN"])
    assert cls["eccn"] == eccn
    assert lic["CN"]["requirement"] == requirement


@pytest.mark.parametrize("as_of, requirement", [("2025-04-08", "no_license_required"),
                                                ("2025-04-09", "license_required")])
def test_h20_needs_licence_for_china_after_april_2025(decide, as_of, requirement):
    cls, lic = decide(H20, as_of, ["CN"])
    assert cls["eccn"] is None  # not 3A090 by arithmetic: the overlay alone binds it
    assert lic["CN"]["requirement"] == requirement


@pytest.mark.parametrize("as_of, requirement", [("2025-04-14", "no_license_required"),
                                                ("2025-04-15", "license_required")])
def test_mi308_needs_licence_for_china_from_2025_04_15(decide, as_of, requirement):
    _, lic = decide(MI308, as_of, ["CN"])
    assert lic["CN"]["requirement"] == requirement


@pytest.mark.parametrize("as_of, policy", [("2025-07-13", "presumption_of_denial"),
                                           ("2025-07-14", "presumption_of_approval")])
def test_h20_china_review_policy_turns_to_approval_on_2025_07_14(decide, as_of, policy):
    _, lic = decide(H20, as_of, ["CN", "MO"])
    assert lic["CN"]["requirement"] == "license_required"
    assert lic["CN"]["review_policy"] == policy
    assert lic["MO"]["review_policy"] == "presumption_of_denial"


@pytest.mark.parametrize("as_of, policy", [("2026-01-14", "presumption_of_denial"),
                                           ("2026-01-15", "case_by_case")])
def test_h100_china_review_becomes_case_by_case_on_2026_01_15(decide, as_of, policy):
    cls, lic = decide(H100, as_of, ["CN", "RU"])
    assert cls["eccn"] == "3A090.a"  # the classification itself does not change
    assert lic["CN"]["review_policy"] == policy
    assert lic["RU"]["review_policy"] == "presumption_of_denial"


def test_the_ai_diffusion_rule_never_creates_a_licence_requirement(decide, rulebook):
    _, lic = decide(H100, "2025-03-01", ["DE", "IN", "BR"])
    assert {d: r["requirement"] for d, r in lic.items()} == {
        "DE": "no_license_required", "IN": "no_license_required", "BR": "no_license_required"}
    pack = next(p for p in rulebook.packs if p["id"] == "us-2025-01-ai-diffusion")
    assert pack["status"] == "never_in_force"
    # its one rule only tells: no requirement, policy or exception, so it can never decide an answer
    (rule,) = pack["rules"]
    assert set(rule["effect"]) == {"flags", "note"}
    for r in lic.values():
        assert r["flags"] == ["ai_diffusion_not_applied"] and r["rule_ids"] == []
        assert any(n.startswith("Not applied: the AI Diffusion framework (90 FR 4544") for n in r["notes"])
