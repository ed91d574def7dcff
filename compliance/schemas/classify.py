"""Contracts of POST /classify and POST /classify/batch."""
from __future__ import annotations

from datetime import date, timedelta

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from marshmallow.utils import is_collection

from ..engine.vocabulary import TRANSACTION_TYPES
from .common import CountryCode, StrictBoolean
from .product import ProductSchema
from .product_loader import default_loader

DETAIL_DESCRIPTION = ("`full` (default): every condition with its value and margin, metrics, notes, and per "
                      "destination the matched rules and citations. `summary`: the product, ECCN, status and "
                      "missing inputs, and per destination the requirement, review policy, exceptions and rule "
                      "ids, at the same paths as in `full`.")


class EndUserSchema(Schema):
    class Meta:
        unknown = RAISE

    headquarters = CountryCode(metadata={"description": "Country of the end user's (or its ultimate parent's) headquarters"})
    name = fields.String(validate=validate.Length(max=300))


def _today() -> date:
    return date.today()


# The first 3A090/4A090 rule took effect on 2022-10-07 (87 FR 62186); nothing is encoded before it.
FIRST_RULE_DATE = date(2022, 10, 7)
MAX_YEARS_AHEAD = 3


def supported_as_of(value: date) -> None:
    """Dates the encoded rules can answer for: from the first rule to a few years ahead (further is likely a typo,
    and the rules in force then are unknowable)."""
    latest = date.today() + timedelta(days=round(365.25 * MAX_YEARS_AHEAD))
    if not FIRST_RULE_DATE <= value <= latest:
        raise ValidationError(f"{value.isoformat()} is outside the supported range {FIRST_RULE_DATE.isoformat()} to "
                              f"{latest.isoformat()}: the encoded rules begin with the 2022-10-07 rule "
                              f"(no 3A090/4A090 before it), and dates more than {MAX_YEARS_AHEAD} years ahead are refused")


class _DecisionOptions(Schema):
    class Meta:
        unknown = RAISE

    as_of = fields.Date(load_default=_today, validate=supported_as_of, metadata={
        "description": "Evaluate the rules in force on this date (YYYY-MM-DD); default today. Supported: 2022-10-07 "
                       "(the first 3A090/4A090 rule) to three years from today; outside it: 422 naming as_of"})
    destinations = fields.List(CountryCode(), load_default=list, validate=validate.Length(max=250),
                               metadata={"description": "ISO country codes; HK is evaluated as CN"})
    end_user = fields.Nested(EndUserSchema)
    transaction_type = fields.String(load_default="export", validate=validate.OneOf(TRANSACTION_TYPES), metadata={
        "description": "export (from the US; the default), reexport (from abroad) or in_country_transfer. The January "
                       "2026 China case-by-case policy covers exports from the US only."})
    ruleset_revision = fields.String(validate=validate.Length(equal=64),
                                     metadata={"description": "Evaluate with this published revision instead of the current one"})
    record = StrictBoolean(load_default=False, metadata={"description": "Store a decision record and return its id"})
    detail = fields.String(load_default="full", validate=validate.OneOf(["full", "summary"]),
                           metadata={"description": DETAIL_DESCRIPTION})


class ProductList(fields.List):
    """A list of products, loaded by the shared fast loader: the same specs and the same errors
    (`{index: {field: [problem]}}`) as `List(Nested(ProductSchema))`, without marshmallow per row."""

    def __init__(self, **kwargs):
        super().__init__(fields.Nested(ProductSchema), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not is_collection(value):
            raise self.make_error("invalid")
        specs, errors = default_loader().load_many(value)
        if any(item is None for item in value):  # a field-level error, as Nested reports it
            errors = {**errors, **{i: [self.inner.error_messages["null"]] for i, item in enumerate(value)
                                   if item is None}}
            errors = dict(sorted(errors.items()))
        if errors:
            raise ValidationError(errors, valid_data=[s for s in specs if s is not None])
        return specs


class ProductField(fields.Nested):
    """`Nested(ProductSchema)` loaded by the shared fast loader: the same spec, or the same errors (the
    loader proves each row shape against ProductSchema once and sends invalid rows through it)."""

    def __init__(self, **kwargs):
        super().__init__(ProductSchema, **kwargs)

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        if not isinstance(value, dict) or partial:
            return super()._deserialize(value, attr, data, partial=partial, **kwargs)
        try:
            return default_loader().load(value)
        except ValidationError as error:  # as Nested re-raises its schema's errors
            raise ValidationError(error.messages, valid_data=error.valid_data) from error


class ClassifyRequestSchema(_DecisionOptions):
    product = ProductField(required=True)


class BatchClassifyRequestSchema(_DecisionOptions):
    products = ProductList(required=True, validate=validate.Length(min=1),
                           metadata={"description": "Up to BATCH_MAX_PRODUCTS products (default 10,000)"})


class ConditionSchema(Schema):
    rule_id = fields.String()
    eccn = fields.String(allow_none=True)
    path = fields.String()
    label = fields.String()
    metric = fields.String()
    op = fields.String()
    threshold = fields.Raw()
    value = fields.Raw(allow_none=True)
    margin = fields.Float(allow_none=True, metadata={"description": "value - threshold"})
    met = fields.Boolean(allow_none=True, metadata={"description": "null when an input is missing"})
    state = fields.String(metadata={"description": "known | missing | not_applicable"})


class ClassificationSchema(Schema):
    eccn = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "controlled | not_controlled | indeterminate"})
    rule_id = fields.String(allow_none=True)
    citation = fields.String(allow_none=True)
    reason = fields.String()
    conditions = fields.List(fields.Nested(ConditionSchema))
    missing = fields.List(fields.String())
    metrics = fields.Dict()
    notes = fields.List(fields.String())
    components = fields.List(fields.Dict())


class LicenceSchema(Schema):
    destination = fields.String()
    evaluated_as = fields.String()
    country_groups = fields.List(fields.String())
    requirement = fields.String(metadata={"description": "license_required | no_license_required | indeterminate"})
    review_policy = fields.String(allow_none=True)
    exceptions = fields.List(fields.String())
    rule_ids = fields.List(fields.String())
    citations = fields.List(fields.String())
    rules = fields.List(fields.Dict())
    flags = fields.List(fields.String())
    missing = fields.List(fields.String())
    notes = fields.List(fields.String())


class DecisionSchema(Schema):
    product = fields.Dict()
    classification = fields.Nested(ClassificationSchema)
    licences = fields.List(fields.Nested(LicenceSchema))
    as_of = fields.Date()
    ruleset_revision = fields.String()
    rule_version = fields.Integer()
    decision_id = fields.Integer()
    disclaimer = fields.String()


class BatchDecisionSchema(Schema):
    results = fields.List(fields.Nested(DecisionSchema))
    count = fields.Integer()
    as_of = fields.Date()
    ruleset_revision = fields.String()
    rule_version = fields.Integer()


class DecisionRecordSchema(Schema):
    """A stored decision: what was asked, what was answered, under which revision."""

    id = fields.Integer()
    created_at = fields.DateTime()
    actor = fields.String()
    as_of = fields.Date()
    ruleset_revision = fields.String()
    request = fields.Dict(metadata={"description": "The request: options and the full product spec"})
    response = fields.Dict(metadata={"description": "The decision as it was answered"})
