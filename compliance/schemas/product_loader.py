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
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
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


# A number outside [TINY, HUGE] (other than 0) is "extreme": products of such numbers (TOPS x bits,
# TPP / area) may overflow. Shapes without extreme numbers cannot overflow, so the finite-metrics check
# (`check_finite_metrics`) is skipped for their rows; shapes with one run it row by row.
HUGE, TINY = 1e150, 1e-150


def _extreme(f: float) -> int:
    a = abs(f)
    return int(a != 0 and not TINY <= a <= HUGE)


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
        return ("n", type(v).__name__, _against(f, bounds), _extreme(f))
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


def _scalar(field: fields.Field) -> tuple[Callable[[Any], tuple], Callable[[Any], Any], Column] | None:
    """(shape classifier, loader, column classifier) for a scalar field, or None when it is not on
    the fast path."""
    if isinstance(field, fields.Boolean):
        if field.validators:
            return None
        return _bool_key, _identity, _by_value(_bool_key, lambda col: _types_in(col, {bool}) and
                                               np.array(col, dtype=np.int64))
    if isinstance(field, fields.Float):
        bounds = _number_bounds(field)
        if bounds is None:
            return None
        return _number_classifier(bounds), float, _by_value(_number_classifier(bounds),
                                                            lambda col: _number_codes(col, bounds))
    if isinstance(field, fields.String):
        classifier = _string_classifier(field)
        if classifier is None:
            return None
        if any(isinstance(v, validate.OneOf) for v in field.validators):
            return classifier, _identity, _by_value(classifier, _enum_codes)
        bounds = _length_bounds(field) or ()
        return classifier, _identity, _by_value(classifier, lambda col: _types_in(col, {str}) and
                                                _against_codes(np.fromiter(map(len, col), np.float64, len(col)),
                                                               bounds))
    return None


# ---- column classifiers: one int code per value; equal codes imply equal shape keys ----

Column = Callable[[list], np.ndarray]
SLOW = -1  # a value outside the fast path: its row takes marshmallow


def _types_in(col: list, allowed: set) -> bool:
    return set(map(type, col)) <= allowed


def _against_codes(values: np.ndarray, bounds: tuple) -> np.ndarray:
    code = np.zeros(len(values), dtype=np.int64)
    for b in bounds:
        code = code * 3 + (np.sign(values - b).astype(np.int64) + 1)
    return code


def _number_codes(col: list, bounds: tuple) -> np.ndarray | bool:
    types = set(map(type, col))
    if not types <= {float, int}:
        return False
    try:
        values = np.array(col, dtype=np.float64)
    except OverflowError:
        return False
    finite = np.isfinite(values)
    safe = np.where(finite, values, 0.0)
    magnitude = np.abs(safe)
    extreme = ((magnitude != 0) & ((magnitude < TINY) | (magnitude > HUGE))).astype(np.int64)
    code = np.where(finite, 1 + 2 * _against_codes(safe, bounds) + extreme, 0)
    if len(types) > 1:  # the type is part of the shape
        code = code * 2 + np.fromiter((t is int for t in map(type, col)), bool, len(col))
    return code


def _enum_codes(col: list) -> np.ndarray | bool:
    if not _types_in(col, {str}):
        return False
    index: dict[str, int] = {}
    return np.fromiter((index.setdefault(v, len(index)) for v in col), np.int64, len(col))


def _combine(columns: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of code columns: (distinct code rows [u, c], index of each row's distinct row)."""
    if not columns:
        return np.zeros((1, 0), dtype=np.int64), np.zeros(n, dtype=np.int64)
    key = np.zeros(n, dtype=np.int64)
    radix = 1
    for col in columns:  # mixed radix: one integer per row while it fits 62 bits
        size = int(col.max()) + 2  # codes are >= SLOW (-1)
        radix *= size
        if radix >= 2**62:
            break
        key = key * size + (col + 1)
    else:
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return np.stack(columns, axis=1)[first], inverse.reshape(-1)
    uniq, inverse = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
    return uniq, inverse.reshape(-1)


def _groups(inverse: np.ndarray, count: int) -> list[np.ndarray]:
    """Positions of each distinct value of `inverse` (0 .. count-1), in order."""
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=count))[:-1]
    return np.split(order, bounds)


def _by_value(row_key: Callable[[Any], tuple | None], vectorised: Callable[[list], Any]) -> Column:
    """A column classifier: `vectorised` where it applies, else the row classifier value by value."""
    def classify(col: list) -> np.ndarray:
        codes = vectorised(col)
        if codes is not False:
            return codes  # type: ignore[no-any-return]
        index: dict[tuple, int] = {}
        keys = [row_key(v) for v in col]
        return np.array([SLOW if k is None else index.setdefault(k, len(index)) for k in keys], dtype=np.int64)
    return classify


def _identity(v: Any) -> Any:
    return v


def _numbers_in(key: tuple) -> Iterator[tuple]:
    """The number shapes ("n", type, bounds, extreme) or ("n", type, "overflow"|"special") of a shape
    key, nested lists included."""
    for _, kv in key:
        yield from _numbers_of(kv)


def _numbers_of(kv: tuple) -> Iterator[tuple]:
    if kv[0] == "n":
        yield kv
    elif kv[0] == "l":
        for item in kv[1]:
            yield from _numbers_in(item)


def _holds_extreme(key: tuple) -> bool:
    return any(len(n) != 4 or n[3] for n in _numbers_in(key))


class _Plan:
    """Per data key of one schema: how to classify a value's shape, and how to load it."""

    def __init__(self, schema: Schema):
        self.keys: dict[str, Callable[[Any], tuple]] = {}
        self.loaders: dict[str, Callable[[Any], Any]] = {}
        self.attributes: dict[str, str] = {}
        self.defaults: list[tuple[str, Any]] = []
        self.columns: dict[str, Column] = {}
        self.nested: dict[str, _Plan] = {}
        for name, field in schema.fields.items():
            data_key = field.data_key or name
            attribute = field.attribute or name
            if field.load_default is not missing:
                self.defaults.append((attribute, field.load_default))
            scalar = _scalar(field)
            if scalar is not None:
                self.keys[data_key], self.loaders[data_key], self.columns[data_key] = scalar
            elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested) and not field.validators:
                inner = field.inner.schema
                nested = _Plan(inner) if all(_scalar(f) for f in inner.fields.values()) else None
                if nested is None:
                    continue
                self.nested[data_key] = nested
                self.keys[data_key] = nested.list_key
                self.loaders[data_key] = nested.load_list
                self.columns[data_key] = nested.list_codes
            else:
                continue
            self.attributes[data_key] = attribute
        self.renamed = any(k != a for k, a in self.attributes.items())
        self.converting = {k for k, load in self.loaders.items() if load is not _identity}

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

    def item_codes(self, items: list) -> np.ndarray:
        """One code per object of this schema (equal codes: equal shapes), column by column."""
        codes = np.full(len(items), SLOW, dtype=np.int64)
        groups: dict[tuple, list[int]] = {}
        for i, item in enumerate(items):
            if type(item) is dict:
                groups.setdefault(tuple(item), []).append(i)
        index: dict[tuple, int] = {}
        for keys, idx in groups.items():
            classifiers = [self.columns.get(k) for k in keys]
            if any(c is None for c in classifiers):
                continue
            group = [items[i] for i in idx]
            cols = [classify([r[k] for r in group]) for k, classify in zip(keys, classifiers)]
            uniq, inverse = _combine(cols, len(idx))
            ids = np.array([SLOW if SLOW in row else index.setdefault((keys, tuple(row)), len(index))
                            for row in uniq.tolist()], dtype=np.int64)
            codes[np.array(idx)] = ids[inverse]
        return codes

    def list_codes(self, col: list) -> np.ndarray:
        """One code per list of objects of this schema (equal codes: equal shapes)."""
        if not _types_in(col, {list}):
            return _by_value(self.list_key, lambda c: False)(col)
        lengths = np.fromiter(map(len, col), np.int64, len(col))
        items = [item for v in col for item in v]
        item_codes = self.item_codes(items)
        if len(lengths) and (lengths == lengths[0]).all():  # the usual case: as many items in every list
            columns = list(item_codes.reshape(len(col), int(lengths[0])).T) if lengths[0] else []
            uniq, inverse = _combine(columns, len(col))
            ids = np.array([SLOW if SLOW in row else i for i, row in enumerate(uniq.tolist())], dtype=np.int64)
            return ids[inverse]  # type: ignore[no-any-return]
        index: dict[tuple, int] = {}
        out = np.empty(len(col), dtype=np.int64)
        for i, row in enumerate(np.split(item_codes, np.cumsum(lengths)[:-1])):
            key = tuple(row.tolist())
            out[i] = SLOW if SLOW in key else index.setdefault(key, len(index))
        return out

    def load(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        if self.renamed:
            out = {self.attributes[k]: self.loaders[k](v) for k, v in raw.items()}
        else:  # copy, then convert only what a field changes (numbers to float, nested lists)
            out = dict(raw)
            loaders = self.loaders
            for k in self.converting & raw.keys():
                out[k] = loaders[k](out[k])
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
        self._overflow: dict[tuple, bool] = {}
        self._loaders: dict[tuple, Callable[[Mapping[str, Any]], dict[str, Any]]] = {}
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
        """Load every row; return (specs with None for bad rows, {index: marshmallow messages}).

        Columnar: rows are grouped by their keys, each field's values are classified a column at a
        time (numpy over numbers and string lengths), and each distinct shape is looked up (or
        proven) once; only rows of unproven or invalid shapes go through marshmallow one by one."""
        n = len(rows)
        specs: list[dict[str, Any] | None] = [None] * n
        errors: dict[int, Any] = {}
        slow: list[int] = []
        for shape, idx in self._shapes(rows).items():
            fast = shape[0] != "row" and SLOW not in shape[-1]
            key = self.shape_key(rows[idx[0]]) if fast else None
            proven = key is not None and self._prove(key, rows[idx[0]])
            if not proven:
                slow += idx
                continue
            load = self._loader_of(key)
            if not self._may_overflow(key):
                for i in idx:
                    specs[i] = load(rows[i])
            else:
                for i in idx:
                    spec = load(rows[i])
                    try:
                        check_finite_metrics(spec)
                    except ValidationError as exc:
                        errors[i] = {exc.field_name: exc.messages}
                        continue
                    specs[i] = spec
            self.stats["fast"] += len(idx)
        for i in sorted(slow):
            try:
                specs[i] = self.load(rows[i])
            except ValidationError as exc:
                errors[i] = exc.messages
        return specs, dict(sorted(errors.items()))

    def _may_overflow(self, key: tuple) -> bool:
        """Can a derived metric of a row of this shape overflow? Only if it holds an extreme or
        non-finite number (`_extreme`): TOPS x 64 bits, or a quotient, of numbers within
        [TINY, HUGE] stays far below the float range."""
        hit = self._overflow.get(key)
        if hit is None:
            hit = self._overflow[key] = _holds_extreme(key)
        return hit

    def _loader_of(self, key: tuple) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
        """The fast load of rows of a proven shape, reduced to what the shape needs: a copy of the
        row with integers turned into floats, nested lists converted only where they hold integers,
        and the load defaults of the keys the shape lacks."""
        hit = self._loaders.get(key)
        if hit is not None:
            return hit
        plan = self.plan
        if plan.renamed:
            hit = plan.load
        else:
            convert = [(k, plan.loaders[k]) for k, kv in key if k in plan.converting and (
                k in plan.nested and plan.nested[k].defaults or any(n[1] != "float" for n in _numbers_of(kv)))]
            present = {plan.attributes[k] for k, _ in key}
            defaults = [(a, d) for a, d in plan.defaults if a not in present]

            def hit(raw: Mapping[str, Any]) -> dict[str, Any]:
                out = dict(raw)
                for k, load in convert:
                    out[k] = load(out[k])
                for attribute, default in defaults:
                    out[attribute] = default() if callable(default) else default
                return out
        if len(self._loaders) < MAX_SHAPES:
            self._loaders[key] = hit
        return hit

    def _prove(self, key: tuple, raw: Any) -> bool:
        """Is `key` a proven shape? The first time, prove it on `raw` (marshmallow == fast load)."""
        known = self.proven.get(key)
        if known is not None:
            return known
        try:
            spec = self.schema.load(raw)
        except ValidationError:
            return False  # an invalid row proves nothing; its rows take marshmallow
        try:
            ok = self.plan.load(raw) == spec
        except Exception:  # noqa: BLE001 - any surprise just keeps this shape on the slow path
            ok = False
        if len(self.proven) < MAX_SHAPES:
            self.proven[key] = ok
        return ok

    def _shapes(self, rows: Sequence[Any]) -> dict[tuple, list[int]]:
        """Row indices grouped by shape, computed column by column (at least as fine as shape_key)."""
        by_keys: dict[tuple, list[int]] = {}
        out: dict[tuple, list[int]] = {}
        for i, raw in enumerate(rows):
            if type(raw) is dict:
                by_keys.setdefault(tuple(raw), []).append(i)
            else:
                out[("row", i)] = [i]  # not an object: marshmallow names the problem
        for keys, idx in by_keys.items():
            classifiers = [self.plan.columns.get(k) for k in keys]
            if any(c is None for c in classifiers):
                out[("row", idx[0])] = idx  # an unknown or slow-path field: marshmallow for each
                continue
            group = [rows[i] for i in idx]
            codes = [classify([r[k] for r in group]) for k, classify in zip(keys, classifiers)]
            if not codes:
                out[(keys, ())] = idx
                continue
            uniq, inverse = _combine(codes, len(idx))
            positions = np.array(idx)
            for u, members in enumerate(_groups(inverse, len(uniq))):
                out[(keys, tuple(uniq[u].tolist()))] = positions[members].tolist()
        return out


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
