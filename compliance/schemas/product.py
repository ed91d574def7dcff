"""The product contract shared by the classify API, batch classify and catalogue imports."""
from __future__ import annotations

import math

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from ..engine.vocabulary import FORMAT_BITS, HBM_PACKAGINGS, KINDS
from .common import Number, StrictBoolean

MAX_COMPONENT_DEPTH = 16  # systems of systems of ...: deeper nesting is refused before it is loaded
positive = validate.Range(min=0, min_inclusive=False, error="must be greater than 0")
non_negative = validate.Range(min=0, error="must be 0 or more")


class ThroughputSchema(Schema):
    class Meta:
        unknown = RAISE

    format = fields.String(required=True, validate=validate.OneOf(sorted(FORMAT_BITS), error="unknown format {input!r}; use one of {choices}"),
                           metadata={"description": "Number format: " + ", ".join(f"{k} ({v} bits)" for k, v in FORMAT_BITS.items())})
    dense_tops = Number(validate=non_negative, metadata={"description": "Dense (non-sparse) TOPS or TFLOPS in this format"})
    sparse_tops = Number(validate=non_negative, metadata={
        "description": "A with-sparsity datasheet figure; the engine halves it and says so. Give dense_tops when you can."})

    @validates_schema
    def one_figure(self, data, **kwargs):
        if ("dense_tops" in data) == ("sparse_tops" in data):
            raise ValidationError("give exactly one of dense_tops or sparse_tops", "dense_tops")


class LogicDieSchema(Schema):
    class Meta:
        unknown = RAISE

    area_mm2 = Number(required=True, validate=positive, metadata={"description": "Die area in mm²"})
    non_planar = StrictBoolean(metadata={
        "description": "Made on a non-planar transistor process (FinFET/GAA): only these count for performance "
                       "density. Not given: unknown, and the answer is indeterminate where performance density decides."})


class ComponentSchema(Schema):
    class Meta:
        unknown = RAISE

    product = fields.Nested(lambda: ProductSchema(), required=True)
    count = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=1_000_000))


class SourceSchema(Schema):
    class Meta:
        unknown = RAISE

    fields_ = fields.List(fields.String(), data_key="fields")
    url = fields.String()
    title = fields.String()
    note = fields.String()


class ProductSchema(Schema):
    """A chip (ic), a high-bandwidth memory item (hbm) or a system of parts (system)."""

    class Meta:
        unknown = RAISE
        ordered = True

    sku = fields.String(validate=validate.Length(min=1, max=200), metadata={"description": "Stock-keeping unit; the catalogue key"})
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    vendor = fields.String(load_default="", validate=validate.Length(max=200))
    family = fields.String(validate=validate.Length(max=200), metadata={"description": "Product family, e.g. H20 (matched by overlays)"})
    kind = fields.String(load_default="ic", validate=validate.OneOf(KINDS))
    datacenter = StrictBoolean(metadata={"description": "Designed or marketed for use in data centers"})
    throughput = fields.List(fields.Nested(ThroughputSchema), metadata={"description": "Dense throughput per number format"})
    tpp = Number(validate=non_negative, metadata={"description": "Declared TPP (e.g. a vendor attestation), used instead of throughput"})
    die_area_mm2 = Number(validate=positive, metadata={"description": "Applicable die area: summed non-planar logic dies, mm²"})
    logic_dies = fields.List(fields.Nested(LogicDieSchema), metadata={"description": "Logic dies (HBM/DRAM stacks excluded)"})
    io_bandwidth_gb_per_s = Number(validate=non_negative, metadata={"description": "Aggregate bidirectional I/O to ICs other than memory, GB/s"})
    memory_bandwidth_gb_per_s = Number(validate=non_negative, metadata={
        "description": "IC: total DRAM/HBM bandwidth. HBM item: the stack's bandwidth. GB/s"})
    package_area_mm2 = Number(validate=positive, metadata={"description": "HBM: package or stack area, mm²"})
    hbm_packaging = fields.String(validate=validate.OneOf(HBM_PACKAGINGS), metadata={
        "description": "HBM items: standalone (the default: a stack or package sold as its own item), "
                       "interface_logic_die (fixed to a logic die that serves as its control interface: still HBM), "
                       "co_packaged_with_processor (the package's dominant function is processing: classify it by "
                       "its logic IC, as kind 'ic')"})
    transistors = Number(validate=non_negative, metadata={"description": "Aggregated approximate transistor count"})
    process = fields.String(validate=validate.Length(max=100))
    release_date = fields.String(validate=validate.Length(max=20), metadata={
        "description": "First commercially available: YYYY, YYYY-MM or YYYY-MM-DD (a partial date is a range; "
                       "other text is kept but read as unknown). Used by the January 2026 China review policy."})
    components = fields.List(fields.Nested(ComponentSchema), metadata={"description": "Systems: parts and counts"})
    sources = fields.List(fields.Nested(SourceSchema))
    notes = fields.String(validate=validate.Length(max=5000))

    @pre_load
    def limit_nesting(self, data, **kwargs):
        """Refuse components nested deeper than MAX_COMPONENT_DEPTH before loading them: loading
        (and evaluating) is recursive, so a deeply nested body would otherwise exhaust the stack."""
        level, current = 0, [data]
        while current:
            nxt = []
            for item in current:
                comps = item.get("components") if isinstance(item, dict) else None
                for comp in comps if isinstance(comps, list) else ():
                    if isinstance(comp, dict) and isinstance(comp.get("product"), dict):
                        nxt.append(comp["product"])
            if nxt:
                level += 1
                if level > MAX_COMPONENT_DEPTH:
                    raise ValidationError(f"systems may nest components at most {MAX_COMPONENT_DEPTH} levels deep",
                                          "components")
            current = nxt
        return data

    @validates_schema
    def finite_metrics(self, data, **kwargs):
        check_finite_metrics(data)

    @validates_schema
    def consistent(self, data, **kwargs):
        errors: dict[str, list[str]] = {}
        kind = data.get("kind", "ic")
        if data.get("die_area_mm2") is not None and data.get("logic_dies"):
            errors.setdefault("die_area_mm2", []).append("give die_area_mm2 or logic_dies, not both")
        if kind == "system" and not data.get("components"):
            errors.setdefault("components", []).append("a system needs at least one component")
        if kind != "system" and data.get("components"):
            errors.setdefault("components", []).append(f"only kind 'system' has components (kind is {kind!r})")
        if kind != "hbm" and data.get("package_area_mm2") is not None:
            errors.setdefault("package_area_mm2", []).append("package_area_mm2 applies to kind 'hbm' only")
        if kind != "hbm" and data.get("hbm_packaging") is not None:
            errors.setdefault("hbm_packaging", []).append("hbm_packaging applies to kind 'hbm' only")
        formats = [t["format"] for t in data.get("throughput") or []]
        dup = sorted({f for f in formats if formats.count(f) > 1})
        if dup:
            errors.setdefault("throughput", []).append(f"format listed twice: {', '.join(dup)}")
        if errors:
            raise ValidationError(errors)


def check_finite_metrics(spec: dict) -> None:
    """Raise ValidationError when the metrics derived from a loaded spec overflow to infinity
    (e.g. TOPS x bits, or TPP over a tiny die area): such a value cannot be compared or reported
    (JSON has no Infinity), so the field that causes it is named instead. Mirrors the arithmetic of
    engine.table.derive_metrics without building its notes (this runs for every imported row)."""
    if spec.get("kind") == "system":
        return  # a system's metrics come from its (separately checked) components
    isfinite = math.isfinite
    tpp = spec.get("tpp")
    tpp_field = "tpp"
    if tpp is None:
        tpp_field = "throughput"
        for entry in spec.get("throughput") or ():
            dense = entry.get("dense_tops")
            if dense is None and entry.get("sparse_tops") is not None:
                dense = entry["sparse_tops"] / 2.0
            if dense is not None:
                candidate = dense * FORMAT_BITS[entry["format"]]
                tpp = candidate if tpp is None else max(tpp, candidate)
    if tpp is not None and not isfinite(tpp):
        raise ValidationError(_OVERFLOW.format("tpp"), tpp_field)
    area_field = "logic_dies" if spec.get("logic_dies") else "die_area_mm2"
    if spec.get("logic_dies"):
        area = sum(d["area_mm2"] for d in spec["logic_dies"] if d.get("non_planar", True))
    else:
        area = spec.get("die_area_mm2")
    if area is not None and not isfinite(area):
        raise ValidationError(_OVERFLOW.format("applicable die area"), area_field)
    if area and tpp is not None and area > 0 and not isfinite(tpp / area):
        raise ValidationError(_OVERFLOW.format("performance_density"), area_field)
    mem, pkg = spec.get("memory_bandwidth_gb_per_s"), spec.get("package_area_mm2")
    if spec.get("kind") == "hbm" and mem is not None and pkg and not isfinite(mem / pkg):
        raise ValidationError(_OVERFLOW.format("memory_bandwidth_density"), "package_area_mm2")


_OVERFLOW = "too large or too small: the derived {} overflows (not a finite number)"
