"""Loading product specs at speed: ProductSchema's own answer, proven once per row shape.

`ProductSchema.load`'s outcome for a row depends only on its *shape*: which keys are present and, per
value, its type and where it falls against the field's validators (a number against each Range bound,
finiteness; a string's length against each Length bound, or its exact value where OneOf applies; an
exact boolean). `shape_key` computes that shape from the schema's own fields and validators, so a new
field or validator is covered without editing this module. A field whose kind or validator it does
not understand (nested products, free-form lists, a regexp ...) keeps its rows on the marshmallow path.

The first row of each shape goes through marshmallow AND `fast_load`; only if both succeed with
identical output is the shape remembered, and later rows of that shape are loaded by `fast_load`
(the fields' conversions and load defaults). Schema-level validators see the same keys and enum
values for every row of a shape, so their verdict is the shape's; the one check that depends on
magnitudes, `check_finite_metrics`, runs on every fast row. Invalid rows always take marshmallow, so
their errors are marshmallow's, word for word.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

from marshmallow import Schema, ValidationError, fields, missing, validate

from .product import ProductSchema, check_finite_metrics

MAX_SHAPES = 100_000  # remembered shapes (a cache bound, not a correctness limit)
_UNUSUAL = ("?",)


def _number_bounds(field: fields.Field) -> tuple[float, ...] | None:
    bounds: list[float] = []
    for v in field.validators:
        if not isinstance(v, validate.Range):
            return None
        bounds += [b for b in (v.min, v.max) if b is not None]
    return tuple(sorted(set(bounds)))


def _length_bounds(field: fields.Field) -> tuple[int, ...] | None:
    bounds: list[int] = []
    for v in field.validators:
        if not isinstance(v, validate.Length):
            return None
        bounds += [b for b in (v.min, v.max, v.equal) if b is not None]
    return tuple(sorted(set(bounds)))


def _against(x: float, bounds: tuple) -> tuple:
    return tuple((x > b) - (x < b) for b in bounds)


def _number_classifier(bounds: tuple[float, ...]) -> Callable[[Any], tuple]:
    def key(v: Any) -> tuple:
        if v is True or v is False or not isinstance(v, (int, float)):
            return (*_UNUSUAL, type(v).__name__)
        try:
            f = float(v)
        except OverflowError:
            return ("n", type(v).__name__, "overflow")
        if not math.isfinite(f):
            return ("n", type(v).__name__, "special")
        return ("n", type(v).__name__, _against(f, bounds))
    return key


def _string_classifier(field: fields.Field) -> Callable[[Any], tuple] | None:
    if any(isinstance(v, validate.OneOf) for v in field.validators):
        if len(field.validators) != 1:
            return None

        def enum_key(v: Any) -> tuple:
            return ("e", v) if isinstance(v, str) else (*_UNUSUAL, type(v).__name__)
        return enum_key
    bounds = _length_bounds(field)
    if bounds is None:
        return None

    def text_key(v: Any) -> tuple:
        return ("s", _against(len(v), bounds)) if isinstance(v, str) else (*_UNUSUAL, type(v).__name__)
    return text_key


def _bool_key(v: Any) -> tuple:
    return ("b", v) if v is True or v is False else (*_UNUSUAL, type(v).__name__)


def _scalar(field: fields.Field) -> tuple[Callable[[Any], tuple], Callable[[Any], Any]] | None:
    """(shape classifier, loader) for a scalar field, or None when it is not on the fast path."""
    if isinstance(field, fields.Boolean):
        return (_bool_key, _identity) if not field.validators else None
    if isinstance(field, fields.Float):
        bounds = _number_bounds(field)
        return (_number_classifier(bounds), float) if bounds is not None else None
    if isinstance(field, fields.String):
        classifier = _string_classifier(field)
        return (classifier, _identity) if classifier is not None else None
    return None


def _identity(v: Any) -> Any:
    return v


class _Plan:
    """Per data key of one schema: how to classify a value's shape, and how to load it."""

    def __init__(self, schema: Schema):
        self.keys: dict[str, Callable[[Any], tuple]] = {}
        self.loaders: dict[str, Callable[[Any], Any]] = {}
        self.attributes: dict[str, str] = {}
        self.defaults: list[tuple[str, Any]] = []
        for name, field in schema.fields.items():
            data_key = field.data_key or name
            attribute = field.attribute or name
            if field.load_default is not missing:
                self.defaults.append((attribute, field.load_default))
            scalar = _scalar(field)
            if scalar is not None:
                self.keys[data_key], self.loaders[data_key] = scalar
            elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested) and not field.validators:
                inner = field.inner.schema
                nested = _Plan(inner) if all(_scalar(f) for f in inner.fields.values()) else None
                if nested is not None:
                    self.keys[data_key] = nested.list_key
                    self.loaders[data_key] = nested.load_list
            else:
                continue
            self.attributes[data_key] = attribute

    def shape(self, raw: Mapping[str, Any]) -> tuple | None:
        keys = self.keys
        out = []
        for k, v in raw.items():
            classify = keys.get(k)
            if classify is None:
                return None
            kv = classify(v)
            if kv is None:
                return None
            out.append((k, kv))
        return tuple(out)

    def list_key(self, items: Any) -> tuple | None:
        if not isinstance(items, list):
            return None
        out = []
        for item in items:
            if not isinstance(item, dict):
                return None
            s = self.shape(item)
            if s is None:
                return None
            out.append(s)
        return ("l", tuple(out))

    def load(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        loaders, attributes = self.loaders, self.attributes
        out = {attributes[k]: loaders[k](v) for k, v in raw.items()}
        for attribute, default in self.defaults:
            if attribute not in out:
                out[attribute] = default() if callable(default) else default
        return out

    def load_list(self, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [self.load(item) for item in items]


class ProductLoader:
    """ProductSchema.load for many rows, through the proven-equivalent fast path where shapes allow."""

    def __init__(self, schema: Schema | None = None):
        self.schema = schema or ProductSchema()
        self.plan = _Plan(self.schema)
        self.proven: dict[tuple, bool] = {}
        self.stats = {"fast": 0, "slow": 0}

    def shape_key(self, raw: Mapping[str, Any]) -> tuple | None:
        """The validation-relevant shape of a row, or None when the row is outside the fast path."""
        return self.plan.shape(raw) if isinstance(raw, dict) else None

    def fast_load(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """What ProductSchema.load returns for a row of a proven shape."""
        return self.plan.load(raw)

    def load(self, raw: Any) -> dict[str, Any]:
        """ProductSchema.load(raw): the same result, or the same ValidationError."""
        key = self.shape_key(raw)
        if key is not None and self.proven.get(key):
            self.stats["fast"] += 1
            spec = self.plan.load(raw)
            try:
                check_finite_metrics(spec)  # the shape keeps signs and bounds, not magnitudes
            except ValidationError as exc:  # as marshmallow reports a schema validator's error
                raise ValidationError({exc.field_name: exc.messages}) from None
            return spec
        self.stats["slow"] += 1
        spec = self.schema.load(raw)  # raises ValidationError for bad rows: never proven
        if key is not None and key not in self.proven and len(self.proven) < MAX_SHAPES:
            try:
                self.proven[key] = self.plan.load(raw) == spec
            except Exception:  # noqa: BLE001 - any surprise just keeps this shape on the slow path
                self.proven[key] = False
        return spec

    def load_many(self, rows: Sequence[Any]) -> tuple[list[dict[str, Any] | None], dict[int, Any]]:
        """Load every row; return (specs with None for bad rows, {index: marshmallow messages})."""
        specs: list[dict[str, Any] | None] = []
        errors: dict[int, Any] = {}
        for i, raw in enumerate(rows):
            try:
                specs.append(self.load(raw))
            except ValidationError as exc:
                specs.append(None)
                errors[i] = exc.messages
        return specs, errors


_DEFAULT: ProductLoader | None = None


def default_loader() -> ProductLoader:
    """The process-wide loader (its proven shapes are shared by imports and batch classification)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ProductLoader()
    return _DEFAULT


def load_product(raw: Any) -> dict[str, Any]:
    """ProductSchema.load(raw) through the process-wide loader."""
    return default_loader().load(raw)
