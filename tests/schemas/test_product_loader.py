"""The columnar product loader gives exactly ProductSchema.load's answer: the same specs for valid rows
and the same errors, field by field, for invalid ones (property-based)."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from compliance.schemas.classify import BatchClassifyRequestSchema
from compliance.schemas.product import ProductSchema
from compliance.schemas.product_loader import ProductLoader

NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-10, max_value=10**30),
                    st.sampled_from([0, 0.0, -1, 1e308, 10**400, True, "5", None]))
GOOD_NUMBERS = st.floats(min_value=0.5, max_value=5e4, allow_nan=False)
TEXT = st.one_of(st.text(max_size=8), st.sampled_from(["", "x" * 300, "x" * 301]), st.integers(0, 3), st.none())


def _product(numbers):
    optional = {
        "sku": TEXT, "vendor": TEXT, "family": TEXT,
        "kind": st.sampled_from(["ic", "hbm", "system", "gpu", 3]),
        "datacenter": st.sampled_from([True, False, "true", 1, None]),
        "tpp": numbers, "die_area_mm2": numbers, "io_bandwidth_gb_per_s": numbers,
        "memory_bandwidth_gb_per_s": numbers, "package_area_mm2": numbers, "transistors": numbers,
        "throughput": st.lists(st.fixed_dictionaries(
            {"format": st.sampled_from(["fp8", "fp16", "int8", "fp99"])},
            optional={"dense_tops": numbers, "sparse_tops": numbers}), max_size=3),
        "logic_dies": st.lists(st.fixed_dictionaries({"area_mm2": numbers},
                                                     optional={"non_planar": st.sampled_from([True, False, "no"])}),
                               max_size=2),
        "sources": st.lists(st.fixed_dictionaries({"url": st.text(max_size=5)}), max_size=1),
        "colour": st.just("red"),
    }
    return st.fixed_dictionaries({"name": st.one_of(st.just("Chip"), TEXT)}, optional=optional)


ROWS = st.lists(st.one_of(_product(NUMBERS), _product(GOOD_NUMBERS), _product(GOOD_NUMBERS),
                          st.sampled_from(["H100", 5, None, []])), min_size=1, max_size=40)


def _marshmallow(rows):
    schema = ProductSchema()
    specs, errors = [], {}
    for i, raw in enumerate(rows):
        try:
            specs.append(schema.load(raw))
        except ValidationError as exc:
            specs.append(None)
            errors[i] = exc.messages
    return specs, errors


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS, repeat=st.integers(1, 3))
def test_the_loader_agrees_with_marshmallow_on_valid_and_invalid_rows(rows, repeat):
    loader = ProductLoader()
    rows = rows * repeat  # repeated shapes take the proven fast path
    assert loader.load_many(rows) == _marshmallow(rows)
    for raw in rows:  # and row by row, as imports use it
        try:
            expected = ("ok", ProductSchema().load(raw))
        except ValidationError as exc:
            expected = ("error", exc.messages)
        try:
            got = ("ok", loader.load(raw))
        except ValidationError as exc:
            got = ("error", exc.messages)
        assert got == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS)
def test_a_batch_request_reports_exactly_the_errors_plain_marshmallow_reports(rows):
    from marshmallow import fields

    class PlainBatch(BatchClassifyRequestSchema):
        products = fields.List(fields.Nested(ProductSchema), required=True)

    def outcome(schema):
        try:
            return "ok", schema.load({"products": rows})["products"]
        except ValidationError as exc:
            return "error", exc.messages

    assert outcome(BatchClassifyRequestSchema()) == outcome(PlainBatch())


def test_the_fast_path_is_really_taken_for_a_catalogue_of_one_shape():
    loader = ProductLoader()
    rows = [{"name": f"Chip {i}", "tpp": 100.0 + i, "throughput": [{"format": "fp8", "dense_tops": 1.5 * i + 1}]}
            for i in range(500)]
    specs, errors = loader.load_many(rows)
    assert not errors and specs == [ProductSchema().load(r) for r in rows]
    assert loader.stats["fast"] >= 499
