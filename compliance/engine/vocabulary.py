"""The vocabulary the engine exports: metrics, operators, number formats and result values.

Rules are validated against this vocabulary, so a rule can only talk about things the engine
knows how to compute. Nothing here imports Flask, SQLAlchemy or Celery.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Bit length per number format (regulation primer §1). TF32 is ambiguous; we treat it as 32.
FORMAT_BITS: dict[str, int] = {
    "fp64": 64,
    "int64": 64,
    "fp32": 32,
    "int32": 32,
    "tf32": 32,
    "fp16": 16,
    "bf16": 16,
    "int16": 16,
    "fp8": 8,
    "int8": 8,
    "fp6": 6,
    "fp4": 4,
    "int4": 4,
}
FORMAT_NOTES: dict[str, str] = {
    "tf32": "TF32 bit length is ambiguous; treated as 32 bits",
}

KINDS = ("ic", "hbm", "system")
STATUSES = ("controlled", "not_controlled", "indeterminate")
REQUIREMENTS = ("license_required", "no_license_required", "indeterminate")
REVIEW_POLICIES = ("presumption_of_denial", "case_by_case", "presumption_of_approval")
EXCEPTIONS = ("NAC", "ACA", "HBM")
ECCNS = ("3A090.a", "3A090.b", "3A090.c", "4A090.a", "4A090.b")
RULE_KINDS = ("classification", "licence")
# Who moves the item: an export from the US (the default), a reexport from abroad, or a transfer within
# one foreign country. The January 2026 China policy applies to exports from the US only.
TRANSACTION_TYPES = ("export", "reexport", "in_country_transfer")
# How an HBM item is packaged (15 CFR 774, 3A090.c note): a stack or package sold as its own item, a stack
# fixed to a logic die that serves as its control interface (still HBM), or HBM co-packaged with a
# processing die (the package's dominant function is processing: classified by its logic IC, not 3A090.c).
HBM_PACKAGINGS = ("standalone", "interface_logic_die", "co_packaged_with_processor")


@dataclass(frozen=True)
class Metric:
    """A named input a condition can test."""

    name: str
    type: str  # number | bool | category | country | text
    unit: str
    scope: str  # product | destination | end_user
    description: str
    values: tuple[str, ...] = ()  # allowed values for categories


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("tpp", "number", "", "product",
               "Total processing performance: max over formats of 2 x MacTOPS x bit length (dense)."),
        Metric("performance_density", "number", "TPP/mm2", "product",
               "TPP divided by the summed area of non-planar logic dies; undefined without such dies."),
        Metric("io_bandwidth", "number", "GB/s", "product",
               "Aggregate bidirectional I/O bandwidth to ICs other than volatile memory."),
        Metric("memory_bandwidth_density", "number", "GB/s/mm2", "product",
               "HBM sold as its own item: bandwidth / package area."),
        Metric("dram_bandwidth", "number", "GB/s", "product",
               "Total DRAM/HBM bandwidth of the chip (memory_bandwidth_gb_per_s of an IC)."),
        Metric("transistors", "number", "count", "product", "Aggregated approximated transistor count."),
        Metric("datacenter", "bool", "", "product", "Designed or marketed for use in data centers."),
        Metric("release_date", "date", "date", "product",
               "When the item was first commercially available (YYYY, YYYY-MM or YYYY-MM-DD; a partial date "
               "is a range). Systems: their own, else the latest of their parts."),
        Metric("hbm_packaging", "category", "", "product",
               "HBM items: standalone, interface_logic_die (still HBM) or co_packaged_with_processor "
               "(classified by its logic IC).", HBM_PACKAGINGS),
        Metric("kind", "category", "", "product", "ic, hbm or system.", KINDS),
        Metric("model_family", "family", "", "product",
               "Model family from the canonical vendor (alias table) and the family or name; a look-alike "
               "name is unknown (a possible match). Systems also match their components."),
        Metric("model", "text", "", "product",
               "Raw 'vendor/name' and 'vendor/family' as typed, lower-case (prefer model_family)."),
        Metric("eccn", "category", "", "product",
               "The ECCN found by the classification rules (licence rules only).", ECCNS + ("none",)),
        Metric("contains_3a090a", "number", "count", "product",
               "Systems: number of components (recursively) classified 3A090.a / 4A090.a."),
        Metric("contains_3a090b", "number", "count", "product",
               "Systems: number of components (recursively) classified 3A090.b / 4A090.b."),
        Metric("contains_3a090c", "number", "count", "product",
               "Systems: number of HBM components (recursively) classified 3A090.c."),
        Metric("contains_logic_ic", "number", "count", "product",
               "Systems: number of IC components (recursively), whatever their classification."),
        Metric("destination", "country", "", "destination",
               "Destination country (ISO 3166 alpha-2; HK is evaluated as CN)."),
        Metric("headquarters", "country", "", "end_user",
               "Country where the end user or its ultimate parent is headquartered."),
        Metric("transaction_type", "category", "", "transaction",
               "export (from the US; the default), reexport or in_country_transfer.", TRANSACTION_TYPES),
    )
}

# Which operators each metric type accepts.
OPERATORS: dict[str, tuple[str, ...]] = {
    "number": (">=", ">", "<", "<=", "==", "!="),
    "bool": ("==", "!="),
    "category": ("==", "!=", "in", "not_in"),
    "text": ("matches",),  # glob patterns, case-insensitive
    "family": ("in", "not_in"),
    "date": (">=", ">", "<", "<="),  # ISO dates; a partial input date is a range (unknown where it straddles)  # model family ids defined in the packs' `families`
    "country": ("in", "not_in", "in_group", "not_in_group"),
}
NUMERIC_OPS = (">=", ">", "<", "<=")


def describe() -> dict[str, Any]:
    """The vocabulary as plain data (served by the API and used in rules/README.md)."""
    return {
        "metrics": [
            {"name": m.name, "type": m.type, "unit": m.unit, "scope": m.scope,
             "description": m.description, "operators": list(OPERATORS[m.type]),
             **({"values": list(m.values)} if m.values else {})}
            for m in METRICS.values()
        ],
        "formats": FORMAT_BITS,
        "kinds": list(KINDS),
        "eccns": list(ECCNS),
        "requirements": list(REQUIREMENTS),
        "review_policies": list(REVIEW_POLICIES),
        "exceptions": list(EXCEPTIONS),
        "transaction_types": list(TRANSACTION_TYPES),
        "hbm_packagings": list(HBM_PACKAGINGS),
    }
