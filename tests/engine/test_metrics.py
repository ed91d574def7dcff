"""Derived metrics: TPP, performance density, memory bandwidth density, and what is missing."""
from __future__ import annotations

import pytest

from compliance.engine import build_table, derive_metrics
from compliance.engine.table import KNOWN, MISSING, NOT_APPLICABLE
from tests.conftest import A800, H20, H100, HBM3E


def chip(**spec):
    base = {"name": "Test chip", "vendor": "Example", "kind": "ic", "datacenter": True}
    return base | spec


def test_tpp_is_the_maximum_over_formats_not_the_sum():
    m = derive_metrics(chip(throughput=[{"format": "fp16", "dense_tops": 300},
                                        {"format": "int8", "dense_tops": 600},
                                        {"format": "fp32", "dense_tops": 100}]))
    # BIS's example: 300 dense FP16 x 16 = 4800 and 600 dense INT8 x 8 = 4800; fp32 gives 3200.
    assert m["tpp"] == 4800
    assert m["tpp"] != 4800 + 4800 + 3200


def test_tpp_picks_the_format_with_the_highest_product_of_tops_and_bits():
    m = derive_metrics(chip(throughput=[{"format": "fp8", "dense_tops": 1979}, {"format": "fp16", "dense_tops": 989.5},
                                        {"format": "fp64", "dense_tops": 67}]))
    assert m["tpp"] == pytest.approx(15832)
    assert m["tpp_source"] == "throughput:fp8"
    assert any("1979 dense fp8 TOPS x 8 bits" in n for n in m["notes"])


def test_a_declared_tpp_wins_over_the_throughput_table_and_is_recorded():
    m = derive_metrics(chip(tpp=5000, throughput=[{"format": "fp16", "dense_tops": 148}]))
    assert m["tpp"] == 5000
    assert m["tpp_source"] == "declared"
    assert any("declared tpp 5000 used" in n and "2368" in n for n in m["notes"])


def test_a_declared_tpp_alone_is_used():
    m = derive_metrics(chip(tpp=2368))
    assert (m["tpp"], m["tpp_source"]) == (2368, "declared")


def test_sparse_figures_are_halved_with_a_note():
    m = derive_metrics(chip(throughput=[{"format": "fp8", "sparse_tops": 3958}]))
    assert m["tpp"] == pytest.approx(1979 * 8)
    assert any("sparse figure 3958 halved to dense 1979" in n for n in m["notes"])


def test_a_dense_figure_beats_a_halved_sparse_one_only_when_larger():
    m = derive_metrics(chip(throughput=[{"format": "fp8", "sparse_tops": 1000}, {"format": "fp16", "dense_tops": 300}]))
    assert m["tpp"] == 4800  # fp16 300 x 16 = 4800 > fp8 500 x 8 = 4000
    assert m["tpp_source"] == "throughput:fp16"


def test_tf32_counts_as_32_bits_with_a_note():
    m = derive_metrics(chip(throughput=[{"format": "tf32", "dense_tops": 100}]))
    assert m["tpp"] == 3200
    assert any("TF32" in n and "32" in n for n in m["notes"])


def test_formats_other_than_tf32_carry_no_ambiguity_note():
    m = derive_metrics(chip(throughput=[{"format": "fp32", "dense_tops": 100}]))
    assert not any("TF32" in n for n in m["notes"])


@pytest.mark.parametrize("fmt, bits", [("fp64", 64), ("fp32", 32), ("fp16", 16), ("bf16", 16), ("fp8", 8),
                                       ("int8", 8), ("fp6", 6), ("fp4", 4), ("int4", 4)])
def test_bit_lengths_follow_the_primer(fmt, bits):
    assert derive_metrics(chip(throughput=[{"format": fmt, "dense_tops": 10}]))["tpp"] == 10 * bits


def test_performance_density_sums_only_non_planar_logic_dies():
    m = derive_metrics(chip(tpp=4800, logic_dies=[{"area_mm2": 400, "non_planar": True},
                                                  {"area_mm2": 400, "non_planar": True},
                                                  {"area_mm2": 1000, "non_planar": False}]))
    assert m["applicable_die_area_mm2"] == 800
    assert m["performance_density"] == pytest.approx(6.0)


def test_without_a_non_planar_die_performance_density_is_not_applicable():
    m = derive_metrics(chip(tpp=3000, logic_dies=[{"area_mm2": 200, "non_planar": False}]))
    assert m["performance_density"] is None
    assert m["performance_density__na"] is True
    assert any("PD prongs not met" in n for n in m["notes"])


def test_pd_undefined_means_the_pd_prongs_are_not_met(decide):
    # tpp 3000 with PD >= 3.2 would be 3A090.b; with PD undefined the prongs are simply not met.
    planar = chip(tpp=3000, logic_dies=[{"area_mm2": 200, "non_planar": False}])
    cls, _ = decide(planar, "2024-06-01")
    assert (cls["eccn"], cls["status"]) == (None, "not_controlled")
    assert "performance_density" in cls["metrics"]["not_applicable"]
    pd_leaves = [c for c in cls["conditions"] if c["metric"] == "performance_density"]
    assert pd_leaves and all(c["met"] is False and c["state"] == "not_applicable" for c in pd_leaves)


def test_a_planar_die_with_tpp_at_least_4800_is_still_3a090a_by_a1(decide):
    cls, _ = decide(chip(tpp=5000, logic_dies=[{"area_mm2": 200, "non_planar": False}]), "2024-06-01")
    assert cls["eccn"] == "3A090.a"


def test_hbm_memory_bandwidth_density_is_bandwidth_over_package_area():
    m = derive_metrics(HBM3E)
    assert m["memory_bandwidth_density"] == pytest.approx(1228.8 / 121)
    assert m["dram_bandwidth"] is None  # an HBM item's bandwidth is not a chip's DRAM bandwidth


def test_an_ic_memory_bandwidth_is_its_dram_bandwidth():
    m = derive_metrics(H100)
    assert m["dram_bandwidth"] == 3350
    assert m["memory_bandwidth_density"] is None


def test_metrics_that_do_not_exist_for_hbm_are_not_applicable_rather_than_missing():
    t = build_table([HBM3E])
    for metric in ("tpp", "performance_density", "io_bandwidth", "dram_bandwidth"):
        assert t.states[metric][0] == NOT_APPLICABLE, metric
    assert t.states["memory_bandwidth_density"][0] == KNOWN


def test_missing_inputs_are_marked_missing():
    t = build_table([chip(name="bare")])
    for metric in ("tpp", "performance_density", "io_bandwidth", "dram_bandwidth", "transistors"):
        assert t.states[metric][0] == MISSING, metric
    assert t.tpp_source[0] == "missing"


@pytest.mark.parametrize("product, as_of, missing", [
    (chip(name="no tpp", die_area_mm2=800), "2024-06-01", ["tpp", "performance_density"]),  # PD derives from tpp
    (chip(name="no die", tpp=3000), "2024-06-01", ["performance_density"]),
    (chip(name="no io", tpp=5000), "2023-06-01", ["io_bandwidth"]),
    ({"name": "no datacenter flag", "vendor": "Example", "kind": "ic", "tpp": 3000, "die_area_mm2": 500},
     "2024-06-01", ["datacenter"]),
    ({"name": "hbm no area", "vendor": "Example", "kind": "hbm", "memory_bandwidth_gb_per_s": 1000},
     "2025-01-01", ["memory_bandwidth_density"]),
])
def test_missing_inputs_make_the_result_indeterminate_and_are_named(decide, product, as_of, missing):
    cls, lic = decide(product, as_of, ["CN"])
    assert cls["status"] == "indeterminate"
    assert cls["eccn"] is None
    assert cls["missing"] == missing
    assert "cannot decide: missing" in cls["reason"]
    assert lic["CN"]["requirement"] == "indeterminate"
    assert "classification" in lic["CN"]["missing"]


def test_a_missing_input_that_cannot_change_the_answer_does_not_block_it(decide):
    # tpp 1000 fails every 2023 prong whatever the die area is.
    cls, _ = decide(chip(name="small", tpp=1000), "2024-06-01")
    assert cls["status"] == "not_controlled"
    assert cls["missing"] == []


@pytest.mark.parametrize("product, tpp, pd", [(H100, 15832, 19.45), (A800, 4992, 6.04), (H20, 2368, 2.91)])
def test_worked_examples_give_the_primers_tpp_and_pd(decide, product, tpp, pd):
    cls, _ = decide(product, "2024-06-01")
    assert cls["metrics"]["tpp"] == pytest.approx(tpp)
    assert cls["metrics"]["performance_density"] == pytest.approx(pd, abs=0.005)
