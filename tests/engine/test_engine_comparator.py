"""The engine agrees, cell by cell, with the hand-coded NumPy evaluation that bench/engine_comparator.py times.

The comparator writes out the rules in force on 2026-06-01 by hand; if the bundled rules change, this test
fails (the rules it codes are listed, and every output cell is compared), so the benchmark's ratio is always
measured against an evaluation that gives the same answers.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

from bench.engine_comparator import AS_OF, check_rules, disagreements, engine_arrays, numpy_evaluate
from bench.engine_throughput import synthetic_columns
from compliance.engine import ProductTable, evaluate
from compliance.engine.vocabulary import TRANSACTION_TYPES

# every group the rules name, aliases (HK), embargoed and sanctioned destinations, and none of them
DESTINATIONS = ["CN", "HK", "MO", "RU", "BY", "IR", "CU", "KP", "AE", "SA", "VN", "IL", "SG", "DE", "US", "TW",
                "KH", "CY", "NI", "IN"]
HEADQUARTERS = ["CN", "HK", "MO", "RU", "IR", "AE", "SA", "VN", "IL", "SG", "DE", "US", None]


def test_the_comparator_codes_the_rules_in_force(rulebook):
    check_rules(rulebook)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_engine_equals_the_hand_coded_numpy_evaluation(rulebook, seed):
    rng = random.Random(seed)
    cols, kind, model = synthetic_columns(4000, seed=seed)
    table = ProductTable.from_columns(cols, kind, model)
    dests = rng.sample(DESTINATIONS, 12)
    hq = [rng.choice(HEADQUARTERS) for _ in range(table.n)] if seed % 2 else rng.choice(HEADQUARTERS)
    txn = [rng.choice(TRANSACTION_TYPES) for _ in range(table.n)] if seed % 2 else "export"
    engine = engine_arrays(evaluate(table, rulebook, AS_OF, dests, hq, txn))
    hand = numpy_evaluate(ProductTable.from_columns(cols, kind, model), rulebook, dests, hq, txn)
    assert disagreements(engine, hand) == {}
    # the comparison sees every outcome, so agreeing is not trivial
    assert set(np.unique(engine["status"]).tolist()) == {0, 1, 2}
    assert len(np.unique(engine["requirement"])) == 3
    assert len(np.unique(engine["policy"])) >= 4
    assert len(np.unique(engine["exceptions"])) >= 3
    assert len(np.unique(engine["rule_bits"])) >= 10
    assert len(np.unique(engine["notice_bits"])) >= 3  # none, AI Diffusion, Russia/Belarus flags


def test_a_wrong_comparator_cell_is_seen(rulebook):
    cols, kind, model = synthetic_columns(500, seed=9)
    table = ProductTable.from_columns(cols, kind, model)
    engine = engine_arrays(evaluate(table, rulebook, AS_OF, ["CN", "DE"], "SG"))
    hand = numpy_evaluate(table, rulebook, ["CN", "DE"], "SG")
    hand["requirement"][3, 1] ^= 1
    assert disagreements(engine, hand) == {"requirement": 1}
