"""Classify: a form for one chip (or pasted JSON) -> the API's ClassifyRequestSchema -> the API's
classify_products -> the decision explained per paragraph and threshold, per destination, and
"what would it take" in the chip's own units."""
from __future__ import annotations

import json
from datetime import date
from typing import Any

from flask import g, render_template, request

from ..engine.vocabulary import FORMAT_BITS, HBM_PACKAGINGS, KINDS, TRANSACTION_TYPES
from ..schemas.classify import ClassifyRequestSchema
from ..services.classification import classify_products, record_decisions
from .blueprint import _db, _store, blp, role_required
from .charts import paragraph
from .forms import codes, load, number, parse_json

PRODUCT_NUMBERS = ("tpp", "die_area_mm2", "io_bandwidth_gb_per_s", "memory_bandwidth_gb_per_s", "package_area_mm2",
                   "transistors")
PRODUCT_TEXTS = ("name", "vendor", "family", "process", "release_date", "sku")
THROUGHPUT_ROWS = 3
UNITS = {"tpp": "", "performance_density": "TPP/mm²", "io_bandwidth": "GB/s", "memory_bandwidth_density": "GB/s/mm²",
         "dram_bandwidth": "GB/s", "transistors": "transistors"}
LABELS = {"tpp": "TPP", "performance_density": "performance density", "io_bandwidth": "I/O bandwidth",
          "memory_bandwidth_density": "memory bandwidth density", "dram_bandwidth": "DRAM bandwidth",
          "transistors": "transistor count"}


def body_from_form(form) -> dict[str, Any]:
    """The request body the API would receive for these form fields (empty fields: not given)."""
    product: dict[str, Any] = {}
    for name in PRODUCT_TEXTS:
        if form.get(f"product.{name}", "").strip():
            product[name] = form[f"product.{name}"].strip()
    for name in ("kind", "hbm_packaging"):
        if form.get(f"product.{name}"):
            product[name] = form[f"product.{name}"]
    if form.get("product.datacenter") in ("true", "false"):
        product["datacenter"] = form["product.datacenter"] == "true"
    for name in PRODUCT_NUMBERS:
        if form.get(f"product.{name}", "").strip():
            product[name] = number(form[f"product.{name}"])
    rows = []
    for i in range(THROUGHPUT_ROWS):
        figure = form.get(f"product.throughput.{i}.tops", "").strip()
        if figure:
            kind = "sparse_tops" if form.get(f"product.throughput.{i}.sparse") else "dense_tops"
            rows.append({"format": form.get(f"product.throughput.{i}.format", ""), kind: number(figure)})
    if rows:
        product["throughput"] = rows
    body: dict[str, Any] = {"product": product}
    if form.get("as_of", "").strip():
        body["as_of"] = form["as_of"].strip()
    if form.get("destinations", "").strip():
        body["destinations"] = codes(form["destinations"])
    if form.get("end_user.headquarters", "").strip():
        body["end_user"] = {"headquarters": form["end_user.headquarters"].strip()}
    if form.get("transaction_type"):
        body["transaction_type"] = form["transaction_type"]
    if form.get("record"):
        body["record"] = True
    return body


def _fmt(x: float) -> str:
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:,.4g}"


def paragraphs(decision: dict) -> list[dict[str, Any]]:
    """The decision's conditions grouped by rule (paragraph), in the engine's order."""
    groups: dict[str, dict[str, Any]] = {}
    for c in decision["classification"].get("conditions") or []:
        grp = groups.setdefault(c["rule_id"], {"rule_id": c["rule_id"], "eccn": c.get("eccn"), "conditions": []})
        grp["conditions"].append(c | {"paragraph": paragraph(c.get("eccn"), c.get("label"))})
    return list(groups.values())


def what_it_would_take(decision: dict) -> list[dict[str, str]]:
    """How far each numeric threshold is, in the chip's own units (TPP as TOPS of its format, PD as TPP
    at its die area or as die area), one line per threshold the explanation measured."""
    metrics = decision["classification"].get("metrics") or {}
    source = metrics.get("tpp_source") or ""
    bits = FORMAT_BITS.get(source.split(":", 1)[1]) if source.startswith("throughput:") else None
    tpp, pd = metrics.get("tpp"), metrics.get("performance_density")
    area = tpp / pd if tpp and pd else None
    seen, out = set(), []
    for c in decision["classification"].get("conditions") or []:
        metric, margin, op = c.get("metric"), c.get("margin"), c.get("op")
        if metric not in UNITS or margin is None or op not in (">=", ">", "<", "<=") or c.get("met") is None:
            continue
        where = paragraph(c.get("eccn"), c.get("label"))
        key = (metric, op, c.get("threshold"), where)
        if key in seen:
            continue
        seen.add(key)
        rising = op in (">=", ">")
        distance = abs(margin)
        name, unit = LABELS[metric], UNITS[metric]
        test = f"{name} {op} {_fmt(c['threshold'])}{(' ' + unit) if unit else ''}"
        if c["met"]:
            verb = "fall" if rising else "rise"
            strict = "more than " if op in (">=", "<=") else ""
            line = f"{name} would have to {verb} by {strict}{_fmt(distance)} {unit}".rstrip() + f" to leave {where}"
        else:
            verb = "rise" if rising else "fall"
            strict = "less than " if op in (">=", "<=") else ""
            line = f"{name} may {verb} by {strict}{_fmt(distance)} {unit}".rstrip() + f" before {where}"
        own = []
        if metric == "tpp" and bits:
            own.append(f"{_fmt(distance / bits)} dense {source.split(':', 1)[1]} TOPS")
        if metric == "performance_density" and area:
            own.append(f"TPP {_fmt(distance * area)} at the same die area ({_fmt(area)} mm²)")
            if bits:
                own.append(f"{_fmt(distance * area / bits)} dense {source.split(':', 1)[1]} TOPS")
            if c["threshold"]:
                own.append(f"or a die area of {_fmt(tpp / c['threshold'])} mm² at the same TPP")
        out.append({"paragraph": where, "test": test, "line": line, "own_units": "; ".join(own),
                    "met": c["met"], "rule_id": c["rule_id"]})
    return out


def _form_defaults() -> dict[str, str]:
    return {"as_of": date.today().isoformat(), "destinations": "CN, AE, DE", "product.kind": "ic",
            "product.throughput.0.format": "fp8", "transaction_type": "export"}


@blp.route("/classify", methods=["GET", "POST"])
@role_required("viewer")
def classify():
    form = dict(_form_defaults())
    errors: dict[str, list[str]] = {}
    decision = None
    mode = request.form.get("mode", request.args.get("mode", "form"))
    if request.method == "POST":
        form = request.form.to_dict()
        if mode == "json":
            raw, errors = parse_json(form.get("json", ""), "json")
            if not errors and isinstance(raw, dict) and "product" not in raw:
                raw = {"product": raw}  # a bare product: classified with the defaults
            body = raw
        else:
            body = body_from_form(request.form)
        if not errors:
            loaded, errors = load(ClassifyRequestSchema(), body)
            if loaded is not None:
                decision = _decide(loaded)
    return render_template("console/classify.html", form=form, errors=errors, decision=decision, mode=mode,
                           formats=sorted(FORMAT_BITS, key=lambda f: (-FORMAT_BITS[f], f)), kinds=KINDS,
                           packagings=HBM_PACKAGINGS, transaction_types=TRANSACTION_TYPES,
                           rows=range(THROUGHPUT_ROWS), paragraphs=paragraphs(decision) if decision else [],
                           distances=what_it_would_take(decision) if decision else [],
                           decision_json=json.dumps(decision, indent=2) if decision else "")


def _decide(body: dict) -> dict:
    """What POST /api/v1/classify does with a loaded body (same service calls, same actor)."""
    hq = (body.get("end_user") or {}).get("headquarters")
    decision = classify_products(_store(), [body["product"]], body["as_of"], body["destinations"], hq,
                                 body.get("ruleset_revision"), body["detail"], body["transaction_type"]).all()
    if body.get("record"):
        options = {k: v for k, v in body.items() if k != "product"}
        record_decisions(_db(), options, [body["product"]], decision, g.actor)
    return decision[0]
