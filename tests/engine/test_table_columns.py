"""The column-wise table build (`_build_columns`) gives exactly the row-by-row table (`_build_rows`)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.engine.table import COLUMNAR_MIN, _build_columns, _build_rows, build_table
from compliance.engine.vocabulary import FORMAT_BITS, HBM_PACKAGINGS

number = st.one_of(st.floats(min_value=0, max_value=1e6, allow_nan=False), st.integers(0, 10**6),
                   st.sampled_from([0.0, 0.5, 1e-9, 4800.0, 1600.0]))
positive = st.floats(min_value=1e-3, max_value=5e3, allow_nan=False)
entry = st.fixed_dictionaries({"format": st.sampled_from(sorted(FORMAT_BITS))}).flatmap(
    lambda e: st.one_of(st.fixed_dictionaries({**{k: st.just(v) for k, v in e.items()}, "dense_tops": number}),
                        st.fixed_dictionaries({**{k: st.just(v) for k, v in e.items()}, "sparse_tops": number})))
die = st.fixed_dictionaries({"area_mm2": positive}, optional={"non_planar": st.booleans()})
text = st.sampled_from(["", "NVIDIA", " Acme  Corp ", "amd", "H20", "MI308", "X  1"])

ic_or_hbm = st.fixed_dictionaries(
    {"name": text},
    optional={
        "kind": st.sampled_from(["ic", "hbm"]), "vendor": text, "family": text, "tpp": number,
        "throughput": st.lists(entry, max_size=3), "die_area_mm2": st.one_of(positive, st.just(0.0)),
        "logic_dies": st.lists(die, max_size=3), "io_bandwidth_gb_per_s": number,
        "memory_bandwidth_gb_per_s": number, "package_area_mm2": positive, "transistors": number,
        "datacenter": st.booleans(), "hbm_packaging": st.sampled_from(HBM_PACKAGINGS),
        "release_date": st.sampled_from(["2023", "2024-02", "2025-10-17", "soon", "2023-13"]),
    })


def _same(a, b) -> None:
    assert a.n == b.n
    for m in a.values:
        np.testing.assert_array_equal(a.values[m], b.values[m], err_msg=m)
        np.testing.assert_array_equal(a.states[m], b.states[m], err_msg=m)
    for name in ("kind", "model", "parent", "count", "depth", "top", "release", "hbm_packaging"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert list(a.notes) == list(b.notes)
    assert a.tpp_source == b.tpp_source


@settings(max_examples=300, deadline=None)
@given(st.lists(ic_or_hbm, min_size=1, max_size=40))
def test_columns_equal_rows(products):
    for p in products:  # hbm_packaging applies to HBM items only (the schema refuses it elsewhere)
        if p.get("kind") != "hbm":
            p.pop("hbm_packaging", None)
    _same(_build_columns(products), _build_rows(products))


def test_build_table_takes_the_columnar_path_for_a_batch():
    products = [{"name": f"Chip {i}", "vendor": "Acme", "throughput": [{"format": "fp8", "dense_tops": 100.0 * i}],
                 "die_area_mm2": 500.0} for i in range(COLUMNAR_MIN)]
    table = build_table(products)
    assert table.notes[3] == ["tpp = 300 dense fp8 TOPS x 8 bits = 2400"]
    _same(table, _build_rows(products))
    systems = products + [{"name": "Box", "kind": "system", "components": [{"product": products[0], "count": 8}]}]
    assert build_table(systems).n == COLUMNAR_MIN + 2  # systems: row by row, parts flattened
