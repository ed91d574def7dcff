"""One evaluator: a table of N products gives exactly the answers of N tables of one.

A small seeded random generator (no extra dependency) draws products across the whole input space:
ICs and HBM items with and without every input, sparse figures, planar dies, systems (nested, with
indeterminate parts), model names that hit the overlays, and random dates, destinations and
headquarters.
"""
from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from compliance.engine import ProductTable, build_table, derive_metrics, evaluate
from compliance.engine.explain import classification_record, licence_record, margins_and_missing
from compliance.engine.table import model_key
from compliance.engine.vocabulary import FORMAT_BITS

FIRST, LAST = date(2022, 10, 7), date(2026, 11, 30)
COUNTRIES = ["CN", "HK", "MO", "RU", "IR", "CU", "AE", "SA", "VN", "IL", "SG", "DE", "US", "JP", "IN", "BR", "TW"]
NAMES = [("NVIDIA", "H20"), ("NVIDIA", "H100 SXM5"), ("NVIDIA", "A100 PCIe"), ("AMD", "Instinct MI308X"),
         ("Example", "Chip"), ("NVIDIA", "HGX H20"), ("Acme", "Accel"), ("Nvidia Corporation", "H20 96GB"),
         ("Nvdia", "H20"), ("NVIDIA", "H20E"), ("Advanced Micro Devices, Inc.", "MI308X"), ("NVIDIA", "H800 PCIe"),
         ("NVIDIA", "L40S"), ("AMD", "Instinct MI250X")]


def random_ic(rng: random.Random) -> dict:
    vendor, name = rng.choice(NAMES)
    p: dict = {"name": name, "vendor": vendor, "kind": "ic"}
    if rng.random() < 0.9:
        p["datacenter"] = rng.random() < 0.6
    r = rng.random()
    if r < 0.2:
        p["tpp"] = rng.choice([rng.uniform(0, 25000), rng.choice([1600, 2400, 4800, 4799.99, 21000])])
    elif r < 0.9:
        fmts = rng.sample(sorted(FORMAT_BITS), rng.randint(1, 3))
        p["throughput"] = [{"format": f, ("dense_tops" if rng.random() < 0.8 else "sparse_tops"):
                            rng.uniform(1, 4000 / FORMAT_BITS[f] * rng.choice([1, 2, 4]))} for f in fmts]
    r = rng.random()
    if r < 0.5:
        p["die_area_mm2"] = rng.uniform(100, 1600)
    elif r < 0.8:
        p["logic_dies"] = [{"area_mm2": rng.uniform(50, 900),
                            **({"non_planar": rng.random() < 0.8} if rng.random() < 0.85 else {})}
                           for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.7:
        p["io_bandwidth_gb_per_s"] = rng.choice([rng.uniform(0, 1800), 600, 599.9])
    if rng.random() < 0.7:
        p["memory_bandwidth_gb_per_s"] = rng.choice([rng.uniform(100, 9000), 6500])
    if rng.random() < 0.8:
        p["release_date"] = rng.choice(["2022", "2024-06", "2026-01", "2026-01-15", "2026-01-16", "2025-12-31",
                                        "Q3 2023"])
    return p


def random_hbm(rng: random.Random) -> dict:
    p: dict = {"name": "HBM stack", "vendor": "Example", "kind": "hbm"}
    if rng.random() < 0.9:
        p["memory_bandwidth_gb_per_s"] = rng.uniform(100, 1500)
    if rng.random() < 0.85:
        p["package_area_mm2"] = rng.uniform(90, 200)
    if rng.random() < 0.3:
        p["hbm_packaging"] = rng.choice(["standalone", "interface_logic_die", "co_packaged_with_processor"])
    return p


def random_product(rng: random.Random, depth: int = 0) -> dict:
    r = rng.random()
    if r < 0.12 and depth < 2:
        parts = [{"count": rng.randint(1, 8), "product": random_product(rng, depth + 1)}
                 for _ in range(rng.randint(1, 3))]
        vendor, name = rng.choice(NAMES)
        p = {"name": name, "vendor": vendor, "kind": "system", "components": parts}
        if rng.random() < 0.8:
            p["datacenter"] = True
        return p
    return random_hbm(rng) if r < 0.22 else random_ic(rng)


def random_date(rng: random.Random) -> date:
    return FIRST + timedelta(days=rng.randint(0, (LAST - FIRST).days))


def comparable(record: dict) -> str:
    return json.dumps(record, sort_keys=True, default=str)


@pytest.mark.parametrize("seed", range(12))
def test_evaluating_n_products_as_one_table_equals_evaluating_each_alone(rulebook, seed):
    rng = random.Random(seed)
    products = [random_product(rng) for _ in range(40)]
    as_of = random_date(rng)
    dests = rng.sample(COUNTRIES, rng.randint(1, 6))
    hq = [rng.choice(COUNTRIES + [None] * 6) for _ in products]
    tx = [rng.choice(["export", "export", "reexport", "in_country_transfer"]) for _ in products]

    batch = evaluate(build_table(products), rulebook, as_of, dests, hq, tx)
    margins = margins_and_missing(batch)
    for i, product in enumerate(products):
        alone = evaluate(build_table([product]), rulebook, as_of, dests, hq[i], tx[i])
        context = f"seed {seed}, product {i}, {as_of}: {json.dumps(product)[:300]}"
        assert (margins[0][i], margins[1][i]) == tuple(col[0] for col in margins_and_missing(alone)), context
        assert comparable(classification_record(batch, i)) == comparable(classification_record(alone, 0)), context
        for j in range(len(dests)):
            assert comparable(licence_record(batch, i, j)) == comparable(licence_record(alone, 0, j)), context


def test_the_generator_covers_every_outcome(rulebook):
    """Guard against a generator too tame to catch anything."""
    rng = random.Random(99)
    products = [random_product(rng) for _ in range(400)]
    result = evaluate(build_table(products), rulebook, date(2025, 8, 1), ["CN", "AE", "DE"])
    eccns = set(result.top_eccn_labels())
    statuses = set(result.top_status_labels())
    assert {"3A090.a", "3A090.b", "3A090.c", "4A090.a", ""} <= eccns
    assert statuses == {"controlled", "not_controlled", "indeterminate"}
    assert set(result.requirement_labels().ravel()) == {"license_required", "no_license_required", "indeterminate"}


# ---- the fast path: ProductTable.from_columns ----

SAMPLE = Path(__file__).resolve().parents[2] / "compliance" / "data" / "sample_catalogue.json"


def columns_of(products: list[dict]) -> tuple[dict, list[str], list[str]]:
    """Metric columns as a batch import would store them (NaN = missing, __na = not applicable)."""
    cols: dict[str, list] = {m: [] for m in ("tpp", "performance_density", "io_bandwidth",
                                             "memory_bandwidth_density", "dram_bandwidth", "transistors",
                                             "datacenter", "performance_density__na")}
    for p in products:
        m = derive_metrics(p)
        for k in cols:
            if k == "performance_density__na":
                cols[k].append(bool(m[k]))
            else:
                v = m.get(k)
                cols[k].append(np.nan if v is None else float(v))
    return ({k: np.array(v) for k, v in cols.items()}, [p.get("kind", "ic") for p in products],
            [model_key(p) for p in products])


@pytest.mark.parametrize("as_of", ["2023-06-01", "2024-02-01", "2024-06-01", "2025-01-01", "2025-05-01",
                                   "2025-08-01", "2026-02-01"])
def test_from_columns_gives_the_same_answers_as_build_table_on_the_sample_catalogue(rulebook, as_of):
    from compliance.schemas.product import ProductSchema

    raw = json.loads(SAMPLE.read_text())["products"]
    products = [ProductSchema().load(p) for p in raw if p.get("kind", "ic") != "system"]
    assert len(products) >= 20
    day = date.fromisoformat(as_of)
    dests = ["CN", "HK", "MO", "AE", "DE", "IR"]
    cols, kinds, models = columns_of(products)
    fast = evaluate(ProductTable.from_columns(cols, kinds, models), rulebook, day, dests, "SG")
    slow = evaluate(build_table(products), rulebook, day, dests, "SG")
    np.testing.assert_array_equal(fast.top_eccn_labels(), slow.top_eccn_labels())
    np.testing.assert_array_equal(fast.top_status_labels(), slow.top_status_labels())
    np.testing.assert_array_equal(fast.requirement_labels(), slow.requirement_labels())
    np.testing.assert_array_equal(fast.policy_labels(), slow.policy_labels())
    np.testing.assert_array_equal(fast.exception_labels(), slow.exception_labels())
    np.testing.assert_array_equal(fast.rule_id_labels(), slow.rule_id_labels())
    for i in range(len(products)):
        a, b = classification_record(fast, i), classification_record(slow, i)
        for key in ("eccn", "status", "rule_id", "missing", "conditions"):
            assert a[key] == b[key], (products[i]["name"], key)


def test_from_columns_accepts_kind_codes_and_fills_absent_columns_as_missing(rulebook):
    t = ProductTable.from_columns({"tpp": np.array([5000.0, np.nan])}, np.array([0, 0]))
    r = evaluate(t, rulebook, date(2024, 6, 1))
    assert list(r.top_eccn_labels()) == ["3A090.a", ""]  # a.1 needs neither datacenter nor PD
    assert list(r.top_status_labels()) == ["controlled", "indeterminate"]
    assert classification_record(r, 1)["missing"] == ["tpp", "performance_density", "datacenter"]
