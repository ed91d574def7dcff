"""POST /classify's product goes through the shared fast loader (ProductField): the same spec or the same
errors as Nested(ProductSchema), on valid and broken products."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields

from compliance.schemas.classify import ClassifyRequestSchema
from compliance.schemas.product import ProductSchema
from tests.api.test_classify_detail import PRODUCT


class _Reference(Schema):
    product = fields.Nested(ProductSchema, required=True)


ODD = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                st.text(max_size=5), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                          st.integers(), max_size=2))
FIELDS = st.sampled_from(["tpp", "die_area_mm2", "kind", "name", "vendor", "datacenter", "throughput", "family",
                          "memory_bandwidth_gb_per_s", "io_bandwidth_gb_per_s", "bogus", "components"])


def _outcome(load, body):
    try:
        return "ok", load(body)
    except ValidationError as exc:
        return "error", exc.messages


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(product=PRODUCT, changes=st.dictionaries(FIELDS, ODD, max_size=2), drop=st.lists(FIELDS, max_size=2))
def test_the_fast_product_field_answers_as_nested(product, changes, drop):
    broken = {k: v for k, v in {**product, **changes}.items() if k not in drop}
    for candidate in (product, broken):
        got = _outcome(lambda b: ClassifyRequestSchema(only=("product",)).load(b)["product"], {"product": candidate})
        want = _outcome(lambda b: _Reference().load(b)["product"], {"product": candidate})
        if want[0] == "error":
            assert got[0] == "error" and got[1]["product"] == want[1]["product"]
        else:
            assert got == want


def test_a_product_that_is_not_an_object_is_refused_as_nested_refuses_it():
    for value in (None, 3, "H100", [1]):
        got = _outcome(lambda b: ClassifyRequestSchema(only=("product",)).load(b), {"product": value})
        want = _outcome(lambda b: _Reference().load(b), {"product": value})
        assert got == want and got[0] == "error"
