"""Canonical model keys (a re-evaluation speed-up) never change an outcome."""
from __future__ import annotations

from datetime import date

import numpy as np

from compliance.engine import build_table, evaluate, load_rulebook
from compliance.services.product_columns import ChunkPart
from compliance.services.reevaluation import model_pattern_sets, with_canonical_models
from tests.conftest import H20, H100, RTX_4090_D
from tests.rulehelpers import ROOT

NAMES = ["H20", "H20 NVL", "HGX H20", "H100 SXM5", "Instinct MI308X", "MI308", "GeForce RTX 4090 D", "Chip 7"]
VENDORS = ["NVIDIA", "AMD", "Example"]


def test_outcomes_with_canonical_model_keys_equal_the_originals():
    rng = np.random.default_rng(7)
    base = [H20, H100, RTX_4090_D]
    products = []
    for i in range(300):
        p = dict(base[i % 3], name=NAMES[rng.integers(len(NAMES))], vendor=VENDORS[rng.integers(len(VENDORS))])
        if i % 4 == 0:
            p["family"] = NAMES[rng.integers(len(NAMES))]
        products.append(p)
    products.append({"name": "HGX H20 8-GPU", "vendor": "NVIDIA", "kind": "system", "datacenter": True,
                     "components": [{"count": 8, "product": H20}]})
    rb = load_rulebook(str(ROOT / "rules"))
    table = build_table(products)
    part = ChunkPart(np.arange(len(products)), [str(i) for i in range(len(products))], table)
    canon = with_canonical_models(part, model_pattern_sets(rb))
    assert len(set(canon.table.model.tolist())) < len(set(table.model.tolist()))
    dests = ["CN", "HK", "MO", "RU", "DE", "SG"]
    for day in (date(2025, 4, 8), date(2025, 4, 15), date(2025, 8, 1)):
        a = evaluate(table, rb, day, dests, "CN")
        b = evaluate(canon.table, rb, day, dests, "CN")
        for name in ("requirement", "policy", "exceptions", "rule_bits", "flags"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), (day, name)
        assert np.array_equal(a.eccn, b.eccn) and np.array_equal(a.status, b.status)
    # The overlays matched some products and not others (the test is not vacuous).
    ev = evaluate(table, rb, date(2025, 4, 15), ["CN"])
    for rule_id in ("us-2025-04.overlay.nvidia-h20", "us-2025-04.overlay.amd-mi308"):
        bit = [r.id for r in ev.rules.licence].index(rule_id)
        hits = int(((ev.rule_bits[:, 0] >> np.uint64(bit)) & np.uint64(1)).sum())
        assert 10 < hits < len(products) - 10, (rule_id, hits)
