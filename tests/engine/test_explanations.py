"""What the answers say: condition values, reasons, margins, rule ids and notices (issue 9 items 6, 7, 9, 10, 12)."""
from __future__ import annotations

from tests.conftest import H20, H100, HBM3E, RTX_4090_D


def _conds(cls, metric):
    return [c for c in cls["conditions"] if c["metric"] == metric]


def test_the_hbm_packaging_condition_reports_the_packaging_not_the_model(decide):
    # regression: the leaf showed the product's model key ("nvidia/h20") as its value
    for packaging in ("standalone", "interface_logic_die", "co_packaged_with_processor"):
        cls, _ = decide(HBM3E | {"hbm_packaging": packaging}, "2025-01-01")
        (cond,) = _conds(cls, "hbm_packaging")
        assert cond["value"] == packaging and cond["state"] == "known"
        assert cond["met"] is (packaging != "co_packaged_with_processor")
    cls, _ = decide(HBM3E, "2025-01-01")
    assert _conds(cls, "hbm_packaging")[0]["value"] == "standalone"  # the default


def test_the_hbm_packaging_condition_of_a_logic_ic_is_not_applicable(decide):
    cls, _ = decide(H20, "2025-06-01")
    (cond,) = _conds(cls, "hbm_packaging")
    assert cond["value"] is None and cond["state"] == "not_applicable" and cond["met"] is False
    assert "nvidia" not in str(cond["value"])


# ---- item 10: a paragraph met, released by the datacenter note

def test_a_part_released_by_the_datacenter_note_says_which_paragraph_it_meets(decide):
    cls, lic = decide(RTX_4090_D, "2024-06-01", ["CN"])  # TPP 4706.8, PD 7.73, not a datacenter part
    assert cls["status"] == "not_controlled" and cls["eccn"] is None
    assert cls["reason"].startswith("meets 3A090.a.2, not controlled: not designed for datacenters and TPP < 4800")
    assert "tpp 4706.8 >= 1600" in cls["reason"] and "performance_density 7.728736 >= 5.92" in cls["reason"]
    assert "no 3A090/4A090 paragraph is met" not in cls["reason"]
    assert lic["CN"]["requirement"] == "no_license_required"


def test_the_same_numbers_in_a_datacenter_part_are_controlled_and_a_part_meeting_nothing_says_so(decide):
    cls, _ = decide(RTX_4090_D | {"datacenter": True}, "2024-06-01")
    assert cls["eccn"] == "3A090.a" and "meets" not in cls["reason"]
    cls, _ = decide(H20, "2024-06-01")  # TPP 2368, PD 2.91: no paragraph, released or not
    assert cls["reason"].startswith("no 3A090/4A090 paragraph is met")


def test_a_consumer_part_in_the_3a090b_band_names_3a090b(decide):
    part = {"name": "b-band GPU", "vendor": "Example", "kind": "ic", "datacenter": False, "tpp": 3000,
            "die_area_mm2": 700}  # PD 4.29: b.1 and b.2 on numbers
    cls, _ = decide(part, "2024-06-01")
    assert cls["reason"].startswith("meets 3A090.b.1 and 3A090.b.2, not controlled: not designed for datacenters")
    # before the 2023 rule there is no datacenter note, and nothing to release from
    cls, _ = decide(part | {"io_bandwidth_gb_per_s": 64}, "2023-06-01")
    assert cls["reason"].startswith("no 3A090/4A090 paragraph is met")


def test_the_margins_column_names_the_released_paragraph(rulebook):
    from datetime import date

    from compliance.engine import build_table, evaluate
    from compliance.engine.explain import margins_and_missing

    ev = evaluate(build_table([RTX_4090_D, H20, H100]), rulebook, date(2024, 6, 1), ["CN"])
    margins, missing = margins_and_missing(ev)
    assert margins[0].startswith("meets 3A090.a.2 (not controlled: not designed for datacenters and TPP < 4800);"
                                 "tpp>=1600:+3106.8;performance_density>=5.92:+1.80874;")
    assert not margins[1].startswith("meets") and margins[1].startswith("tpp>=4800:-2432")
    assert margins[2].startswith("tpp>=4800:+11032")
    assert missing == ["", "", ""]


# ---- item 12: rule ids list what decided the answer

def test_rule_ids_leave_out_exceptions_that_do_not_apply(decide):
    rtx_4090 = RTX_4090_D | {"name": "GeForce RTX 4090", "throughput": [{"format": "fp8", "dense_tops": 660.6}]}
    _, lic = decide(rtx_4090, "2024-06-01", ["RU", "CN", "AE", "DE"])
    # Russia: 746.8 requires a licence and blocks NAC (740.8(b)): NAC matched on the item but decided nothing
    assert lic["RU"]["exceptions"] == [] and "us-2024-04.exception.nac" not in lic["RU"]["rule_ids"]
    assert lic["RU"]["rule_ids"][0] == "us-746.8.russia.ccl"
    # China: NAC does apply, so it is listed with the rules that require the licence
    assert lic["CN"]["exceptions"] == ["NAC"] and "us-2024-04.exception.nac" in lic["CN"]["rule_ids"]
    assert lic["AE"]["exceptions"] == ["ACA"] and "us-2024-04.exception.aca" in lic["AE"]["rule_ids"]
    assert lic["DE"]["rule_ids"] == [] and lic["DE"]["citations"] == [] and lic["DE"]["rules"] == []


def test_rule_ids_keep_every_rule_that_requires_the_licence_and_the_one_that_set_the_policy(decide):
    _, lic = decide(H100, "2026-02-01", ["CN"])
    assert lic["CN"]["review_policy"] == "case_by_case"
    assert lic["CN"]["rule_ids"] == ["us-2026-01.policy.china-case-by-case", "us-2023-10.licence.d5-macau",
                                     "us-2023-10.licence.d1-d4-d5"]


def test_a_flag_only_rule_is_a_notice_with_its_citation_not_a_reason(decide):
    _, lic = decide(H100, "2022-06-01", ["RU"])  # before the 2022 rule: only the 746.8 flag
    assert lic["RU"]["requirement"] == "no_license_required"
    assert lic["RU"]["flags"] == ["check_746_8_russia_belarus"] and lic["RU"]["rule_ids"] == []
    assert any("(us-746.flag.russia-belarus)" in n and "[" in n for n in lic["RU"]["notes"])


# ---- items 6, 7, 9: notices and dates in the answer

def test_hbm_between_effective_and_compliance_dates_says_so(decide):
    for day, due in (("2024-12-01", None), ("2024-12-02", True), ("2024-12-30", True), ("2024-12-31", False)):
        cls, lic = decide(HBM3E, day, ["CN"])
        said = [n for n in cls["notes"] + lic["CN"]["notes"] if "compliance date is 2024-12-31" in n]
        if due is None:
            assert cls["eccn"] is None and not said
        else:
            assert cls["eccn"] == "3A090.c" and bool(said) is due, (day, said)


def test_every_3a090a_answer_says_ai_diffusion_is_not_applied(decide):
    for day, shown in (("2025-01-12", False), ("2025-01-13", True), ("2025-05-14", True), ("2026-06-01", True)):
        _, lic = decide(H100, day, ["DE", "CN", "SG"])
        for dest, rec in lic.items():
            assert ("ai_diffusion_not_applied" in rec["flags"]) is shown, (day, dest)
            assert any("90 FR 4544" in n and "742.6(a)(6)(iii)(A)" in n for n in rec["notes"]) is shown
            assert "us-2025-01.notice.ai-diffusion" not in rec["rule_ids"]
        assert lic["DE"]["requirement"] == "no_license_required"  # never applied


def test_a_system_under_the_china_caps_says_the_per_chip_reading_is_uncertain(decide):
    server = {"name": "HGX H100 8-GPU", "vendor": "NVIDIA", "kind": "system", "datacenter": True,
              "components": [{"count": 8, "product": H100 | {"release_date": "2022-09"}}]}
    cls, lic = decide(server, "2026-02-01", ["CN", "DE"])
    assert cls["eccn"] == "4A090.a"
    assert lic["CN"]["review_policy"] == "case_by_case" and "system_caps_uncertain" in lic["CN"]["flags"]
    assert any(n.startswith("Uncertain: for a system the January 2026 case-by-case caps") for n in lic["CN"]["notes"])
    assert "system_caps_uncertain" not in lic["DE"]["flags"]


def test_a_look_alike_name_is_answered_with_the_possible_match_named(decide):
    # item 1: "possible match: H20" rather than a silent no
    cases = [H20 | {"name": "H20E", "family": None}, H20 | {"vendor": "Nvdia"}]
    for product in cases:
        _, lic = decide(product, "2025-05-01", ["CN", "DE"])
        assert lic["CN"]["requirement"] == "indeterminate" and lic["CN"]["missing"] == ["model_family"]
        assert any(n.startswith("possible match: H20 (nvidia/h20):") for n in lic["CN"]["notes"]), lic["CN"]["notes"]
        assert not any(n.startswith("possible match") for n in lic["DE"]["notes"])  # nothing to decide there
    _, lic = decide(H20, "2025-05-01", ["CN"])  # the H20 itself: matched, nothing possible
    assert lic["CN"]["requirement"] == "license_required"
    assert not any(n.startswith("possible match") for n in lic["CN"]["notes"])
