"""An evaluation and its explanation are freed by reference counting alone, with no reference cycle: the
classify API pauses the cyclic collector while it builds answers (api/gc_pause.py), so a cycle there kept
every batch's arrays alive under load (a web worker grew by hundreds of MB)."""
from __future__ import annotations

import gc
import weakref
from datetime import date

from compliance.engine import build_table, evaluate
from compliance.engine.explain import Explanation
from tests.conftest import H20, H100


def test_an_explained_evaluation_is_freed_without_the_cyclic_collector(rulebook):
    products = [H100 | {"sku": f"a{i}"} for i in range(50)] + [H20 | {"sku": f"b{i}"} for i in range(50)]
    gc.collect()
    gc.disable()
    try:
        ev = evaluate(build_table(products), rulebook, date(2025, 6, 1), ["CN", "AE"])
        explanation = Explanation.of(ev)
        assert Explanation.of(ev) is explanation  # computed once and kept with the evaluation
        explanation.classifications(ev.table.top)
        explanation.licences()
        dead_ev, dead_explanation = weakref.ref(ev), weakref.ref(explanation)
        del ev, explanation
        assert dead_ev() is None and dead_explanation() is None, "a reference cycle keeps them alive"
    finally:
        gc.enable()


def test_an_explanation_outlives_the_name_of_its_evaluation(rulebook):
    """Holding only the explanation (as services.classification.Decisions does) keeps what it reads."""
    explanation = Explanation.of(evaluate(build_table([H100]), rulebook, date(2025, 6, 1), ["CN"]))
    gc.collect()
    assert explanation.classifications(explanation.table.top)[0]["eccn"] == "3A090.a"
    assert explanation.licences()[0][0]["requirement"] == "license_required"
