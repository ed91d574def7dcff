"""Engine test helpers: the bundled rulebook and a one-call `decide` helper."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from compliance.engine import build_table, evaluate, load_rulebook
from compliance.engine.explain import classification_record, licence_record

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture(scope="session")
def rulebook():
    return load_rulebook(str(RULES_DIR))


@pytest.fixture(scope="session")
def decide(rulebook):
    """decide(product, "2024-01-01", ["CN"], hq=None) -> (classification record, {dest: licence record})."""

    def run(product, as_of, destinations=(), hq=None):
        day = as_of if isinstance(as_of, date) else date.fromisoformat(as_of)
        dests = list(destinations)
        result = evaluate(build_table([product]), rulebook, day, dests, hq)
        return classification_record(result, 0), {d: licence_record(result, 0, j) for j, d in enumerate(dests)}

    return run
