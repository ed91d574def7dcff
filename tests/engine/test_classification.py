"""Classification precedence: 3A090.a before .b, the datacenter note, systems, three-valued logic."""
from __future__ import annotations

import pytest

from tests.conftest import H20, H100, RTX_4090, RTX_4090_D


def chip(name="Test chip", **spec):
    return {"name": name, "vendor": "Example", "kind": "ic", "datacenter": True} | spec


def system(name, *parts, **spec):
    return {"name": name, "vendor": "Example", "kind": "system", "datacenter": True,
            "components": [{"count": n, "product": p} for n, p in parts]} | spec


AS_OF = "2024-06-01"


@pytest.mark.parametrize("tpp, area, eccn", [
    (4800, 2000, "3A090.a"),   # a.1 at the threshold
    (4799, 2000, "3A090.b"),   # b.1: 2400 <= tpp < 4800 and 1.6 <= PD (2.3995) < 5.92
    (1600, 270, "3A090.a"),    # a.2: PD 5.93 >= 5.92
    (1600, 271, "3A090.b"),    # PD 5.904 < 5.92 but >= 3.2: b.2
    (1600, 500, "3A090.b"),    # PD exactly 3.2: b.2's lower bound is inclusive
    (2400, 1500, "3A090.b"),   # b.1 at its lower TPP and PD bounds (PD 1.6)
    (2399, 1499, None),        # just under b.1 and PD 1.6 < 3.2
    (1599, 100, None),         # PD 16 but tpp below 1600: nothing
])
def test_the_2023_thresholds(decide, tpp, area, eccn):
    cls, _ = decide(chip(tpp=tpp, die_area_mm2=area), AS_OF)
    assert cls["eccn"] == eccn, cls["reason"]


def test_3a090a_takes_precedence_over_3a090b_when_both_could_apply(decide, rulebook):
    # tpp 5000 and PD 4.0: 3A090.a via a.1; b.2's PD band also holds, but .a ranks higher.
    cls, _ = decide(chip(tpp=5000, die_area_mm2=1250), AS_OF)
    assert cls["eccn"] == "3A090.a"
    b2 = [c for c in cls["conditions"] if c["rule_id"] == "us-2023-10.3a090.b" and c.get("label") == "b.2"]
    assert all(c["met"] for c in b2)


def test_an_unknown_higher_rule_makes_the_product_indeterminate_even_if_a_lower_one_is_met(decide):
    # datacenter unknown: a.2 (PD 6.0) is met on numbers, but .a depends on the datacenter note.
    product = {"name": "x", "vendor": "Example", "kind": "ic", "tpp": 3000, "die_area_mm2": 500}
    cls, _ = decide(product, AS_OF)
    assert cls["status"] == "indeterminate"
    assert cls["missing"] == ["datacenter"]


def test_consumer_parts_are_3a090a_only_through_a1(decide):
    dense_consumer = chip(datacenter=False, tpp=4700, die_area_mm2=300)  # PD 15.7: a.2 on numbers
    cls, _ = decide(dense_consumer, AS_OF)
    assert cls["eccn"] is None
    assert decide(dense_consumer | {"datacenter": True}, AS_OF)[0]["eccn"] == "3A090.a"
    assert decide(chip(datacenter=False, tpp=4800, die_area_mm2=300), AS_OF)[0]["eccn"] == "3A090.a"


def test_a_consumer_part_is_never_3a090b(decide):
    cls, _ = decide(chip(datacenter=False, tpp=4000, die_area_mm2=1000), AS_OF)
    assert cls["eccn"] is None


def test_rtx_4090_is_3a090a_and_the_4090_d_is_not(decide):
    assert decide(RTX_4090, AS_OF)[0]["eccn"] == "3A090.a"          # 660.6 x 8 = 5284.8
    cls, _ = decide(RTX_4090_D, AS_OF)                               # 588.35 x 8 = 4706.8 < 4800
    assert cls["eccn"] is None and cls["metrics"]["tpp"] == pytest.approx(4706.8)


def test_the_reason_cites_the_rule_and_the_margins(decide):
    cls, _ = decide(H100, AS_OF)
    assert cls["reason"].startswith("3A090.a: ")
    assert "88 FR 73458" in cls["reason"] and "margin +11032" in cls["reason"]


# ---- systems ----

def test_a_server_of_3a090a_chips_is_4a090a(decide):
    cls, _ = decide(system("DGX", (8, H100)), AS_OF)
    assert cls["eccn"] == "4A090.a"
    assert cls["metrics"]["contains_3a090a"] == 8
    assert cls["components"][0]["eccn"] == "3A090.a" and cls["components"][0]["count"] == 8


def test_a_server_of_3a090b_chips_is_4a090b(decide):
    cls, _ = decide(system("mid", (4, chip(tpp=4000, die_area_mm2=1000))), AS_OF)
    assert cls["eccn"] == "4A090.b"
    assert cls["metrics"]["contains_3a090b"] == 4


def test_a_system_with_both_a_and_b_parts_is_4a090a(decide):
    cls, _ = decide(system("mixed", (1, chip(tpp=4000, die_area_mm2=1000)), (1, H100)), AS_OF)
    assert cls["eccn"] == "4A090.a"


def test_a_system_of_uncontrolled_parts_is_not_controlled(decide):
    cls, _ = decide(system("h20 box", (8, H20)), AS_OF)
    assert (cls["eccn"], cls["status"]) == (None, "not_controlled")


def test_nested_systems_classify_from_the_innermost_parts(decide):
    board = system("baseboard", (8, H100))
    rack = system("rack", (4, board))
    cls, _ = decide(rack, AS_OF)
    assert cls["eccn"] == "4A090.a"
    assert cls["components"][0]["eccn"] == "4A090.a"
    assert cls["components"][0]["components"][0]["eccn"] == "3A090.a"


def test_a_system_with_an_indeterminate_part_is_indeterminate_and_names_the_part(decide):
    mystery = chip("Mystery", tpp=3000)  # no die area
    cls, _ = decide(system("box", (2, mystery), (1, H20)), AS_OF)
    assert cls["status"] == "indeterminate"
    assert cls["missing"] == ["components[example/mystery].performance_density"]


def test_a_known_3a090a_part_decides_a_system_even_beside_an_indeterminate_one(decide):
    cls, _ = decide(system("box", (1, chip("Mystery", tpp=3000)), (1, H100)), AS_OF)
    assert cls["eccn"] == "4A090.a" and cls["status"] == "controlled"


def test_a_system_takes_the_highest_per_ic_tpp_of_its_parts(decide):
    cls, _ = decide(system("box", (8, H100), (2, H20)), AS_OF)
    assert cls["metrics"]["tpp"] == pytest.approx(15832)
    assert any("highest per-IC tpp" in n for n in cls["notes"])


def test_systems_under_the_2022_rule_are_4a090a(decide):
    assert decide(system("DGX", (8, H100)), "2023-06-01")[0]["eccn"] == "4A090.a"


def test_hbm_co_packaged_inside_a_system_does_not_make_it_4a090(decide):
    from tests.conftest import HBM3E

    cls, _ = decide(system("box", (6, HBM3E), (1, H20)), "2025-01-01")
    assert cls["eccn"] is None
    assert cls["components"][0]["eccn"] == "3A090.c"
