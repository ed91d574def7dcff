"""The streamed batch answer splices pre-encoded parts (licence lists, condition records built a leaf at a
time): its bytes are exactly those of encoding the plain decisions, on random products, dates, destinations
and chunk sizes, for both detail levels."""
from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.api.encoding import dumps_bytes, stream_object
from compliance.engine import build_table, evaluate, load_rulebook
from compliance.engine.explain import Explanation
from compliance.schemas.product_loader import default_loader
from compliance.services.classification import Decisions
from tests.api.test_classify_detail import PRODUCT

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from classify_api import synthetic_products  # noqa: E402

RULEBOOK = load_rulebook(str(ROOT / "rules"))
DATES = ["2022-11-01", "2023-06-01", "2024-05-01", "2025-05-01", "2026-02-01", "2026-06-01"]
DESTINATIONS = ["CN", "HK", "MO", "AE", "DE", "IL", "SG", "RU"]


def _decisions(products, as_of, destinations, hq, detail):
    specs, errors = default_loader().load_many(products)
    assert not errors
    ev = evaluate(build_table(specs), RULEBOOK, date.fromisoformat(as_of), destinations, hq)
    return Decisions(Explanation.of(ev), specs, date.fromisoformat(as_of), RULEBOOK.revision, 3, detail)


def _streams(d: Decisions, size: int) -> tuple[bytes, bytes]:
    head = {"count": len(d), "as_of": d.as_of.isoformat()}
    encoded = b"".join(stream_object(head, "results", d.chunks(size, encoded=True)))
    plain = b"".join(stream_object(head, "results", d.chunks(size)))
    return encoded, plain


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(products=st.lists(PRODUCT, min_size=1, max_size=12), as_of=st.sampled_from(DATES),
       destinations=st.lists(st.sampled_from(DESTINATIONS), max_size=4, unique=True),
       hq=st.sampled_from([None, "CN", "SG", "US"]), detail=st.sampled_from(["full", "summary"]),
       size=st.integers(1, 5))
def test_the_encoded_answer_is_byte_for_byte_the_plain_one(products, as_of, destinations, hq, detail, size):
    encoded, plain = _streams(_decisions(products, as_of, destinations, hq, detail), size)
    assert encoded == plain


@pytest.mark.parametrize("detail", ["full", "summary"])
def test_a_large_batch_of_every_kind_encodes_the_same(detail):
    products = synthetic_products(3000, seed=11)
    d = _decisions(products, "2026-06-01", ["CN", "AE", "DE", "SG"], None, detail)
    encoded, plain = _streams(d, 500)
    assert encoded == plain
    assert len(orjson.loads(encoded)["results"]) == 3000


def test_the_plain_decisions_are_still_plain_dicts():
    d = _decisions(synthetic_products(20), "2026-06-01", ["CN"], None, "full")
    first = d.all()[0]
    assert isinstance(first["classification"]["conditions"], list)
    assert all(isinstance(c, dict) for c in first["classification"]["conditions"])
    assert isinstance(first["licences"][0], dict)
    assert dumps_bytes(first) == orjson.dumps(d.slice(0, 1, encoded=True)[0])
