"""Explanations: an evaluation's arrays turned into the answers people read.

Per-row records (the classify API, the CLI and the pack tests) and the compact per-product
explanation columns of audit reports both come from here, from the leaves of the one evaluation
pass, never from a second implementation of the rules.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .codes import (
    CONTROLLED,
    HQ_NONE,
    INDETERMINATE,
    NOT_CONTROLLED,
    POLICY_UNKNOWN,
    eccn_label,
    exception_names,
    policy_label,
)
from .conditions import LeafResult
from .evaluate import DERIVED, Evaluation
from .rulebook import Rule
from .table import KIND_CODE, KNOWN, NOT_APPLICABLE
from .vocabulary import METRICS, REQUIREMENTS, STATUSES

KIND_NAMES = {v: k for k, v in KIND_CODE.items()}
STATE_NAMES = {KNOWN: "known", 1: "missing", NOT_APPLICABLE: "not_applicable"}


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() and abs(v) < 2**53 else round(float(v), 6)


def classification_record(ev: Evaluation, i: int) -> dict[str, Any]:
    """Full explanation of top-level product i."""
    row = int(ev.table.top[i])
    return _classification_of_row(ev, row, with_components=True)


def _classification_of_row(ev: Evaluation, row: int, with_components: bool) -> dict[str, Any]:
    t = ev.table
    eccn_code = int(ev.eccn[row])
    status = STATUSES[int(ev.status[row])]
    by = int(ev.decided_by[row])
    rules = ev.rules.classification
    conditions = []
    for ri, rule in enumerate(rules):
        for leaf in ev.class_leaves[ri]:
            conditions.append(_leaf_record(ev, rule, leaf, row))
    missing = _missing(ev, row) if status == "indeterminate" else []
    deciding = rules[by] if by >= 0 else None
    record: dict[str, Any] = {
        "eccn": eccn_label(eccn_code),
        "status": status,
        "rule_id": deciding.id if deciding and status == "controlled" else None,
        "citation": deciding.citation if deciding and status == "controlled" else None,
        "reason": _reason(ev, row, status, deciding, conditions, missing),
        "conditions": conditions,
        "missing": missing,
        "metrics": _metrics(ev, row),
        "notes": list(t.notes[row]) if t.notes else [],
    }
    if with_components and t.kind[row] == KIND_CODE["system"]:
        children = np.nonzero(t.parent == row)[0]
        record["components"] = [
            # no table row index here: it depends on what else was in the batch
            {"count": int(t.count[c]), "model": str(t.model[c]).split("|")[0],
             **{k: v for k, v in _classification_of_row(ev, int(c), True).items()
                if k in ("eccn", "status", "rule_id", "missing", "metrics", "components")}}
            for c in children
        ]
    return record


def _leaf_record(ev: Evaluation, rule: Rule, leaf: LeafResult, row: int) -> dict[str, Any]:
    t, f = bool(leaf.truth.t[row]), bool(leaf.truth.f[row])
    out: dict[str, Any] = {
        "rule_id": rule.id, "eccn": rule.eccn, "path": leaf.path, "metric": leaf.metric,
        "op": leaf.op, "threshold": leaf.threshold, "met": True if t else (False if f else None),
    }
    if leaf.label:
        out["label"] = leaf.label
    if leaf.values is not None:
        state = int(leaf.states[row])
        out["state"] = STATE_NAMES[state]
        if state == KNOWN:
            v = float(leaf.values[row])
            out["value"] = bool(v) if METRICS[leaf.metric].type == "bool" else _num(v)
            if METRICS[leaf.metric].type == "number":
                out["margin"] = _num(v - float(leaf.threshold))
        else:
            out["value"] = None
            out["margin"] = None
    else:
        out["state"] = "known"
        out["value"] = (KIND_NAMES[int(ev.table.kind[row])] if leaf.metric == "kind"
                        else str(ev.table.model[row]).split("|")[0])
    return out


def _metrics(ev: Evaluation, row: int) -> dict[str, Any]:
    t = ev.table
    out: dict[str, Any] = {}
    for metric, vals in t.values.items():
        state = int(t.states[metric][row])
        if state == KNOWN:
            v = float(vals[row])
            out[metric] = bool(v) if metric == "datacenter" else _num(v)
        else:
            out[metric] = None
    out["tpp_source"] = t.tpp_source[row] if t.tpp_source else None
    out["not_applicable"] = [m for m in t.values if int(t.states[m][row]) == NOT_APPLICABLE]
    out["kind"] = KIND_NAMES[int(t.kind[row])]
    if t.kind[row] == KIND_CODE["system"]:
        for m in DERIVED:
            out[m] = int(ev.derived_values[m][row]) if ev.derived_states[m][row] == KNOWN else None
    return out


def _missing(ev: Evaluation, row: int) -> list[str]:
    """Inputs whose absence left this row undecided."""
    by = int(ev.decided_by[row])
    missing: list[str] = []
    for ri in range(0, by + 1):
        if not ev.class_truths[ri].unknown[row]:
            continue
        for leaf in ev.class_leaves[ri]:
            if leaf.truth.t[row] or leaf.truth.f[row] or leaf.states is None:
                continue
            if leaf.metric in DERIVED:
                for c in np.nonzero(ev.table.parent == row)[0]:
                    if ev.status[c] == INDETERMINATE:
                        name = str(ev.table.model[c]).split("|")[0]
                        missing += [f"components[{name}].{m}" for m in _missing(ev, int(c))]
            elif leaf.metric not in missing:
                missing.append(leaf.metric)
    return list(dict.fromkeys(missing))


def _reason(ev: Evaluation, row, status, deciding, conditions, missing) -> str:
    if status == "controlled":
        met = {(c["metric"], c["op"], c["threshold"]): c for c in conditions
               if c["rule_id"] == deciding.id and c["met"] and "margin" in c}
        detail = "; ".join(f"{c['metric']} {_num(c['value'])} {c['op']} {c['threshold']} "
                           f"(margin {c['margin']:+g})" for c in met.values())
        return f"{deciding.eccn}: {deciding.title} [{deciding.citation}]" + (f": {detail}" if detail else "")
    if status == "indeterminate":
        return ("cannot decide: missing " + ", ".join(missing) +
                (f" (needed by {deciding.id})" if deciding else ""))
    if not ev.rules.classification:
        return "no classification rules in force on this date"
    failed = {}
    for c in conditions:
        if c["met"] is False and c.get("margin") is not None:
            failed.setdefault((c["metric"], c["op"], c["threshold"]), c["margin"])
    detail = "; ".join(f"{m} {op} {thr} (margin {mg:+g})" for (m, op, thr), mg in failed.items())
    return "no 3A090/4A090 paragraph is met" + (f": {detail}" if detail else "")


def licence_record(ev: Evaluation, i: int, j: int) -> dict[str, Any]:
    """Licence determination for top-level product i and destination j."""
    dest = ev.destinations[j]
    groups = ev.rulebook.country_groups
    req = REQUIREMENTS[int(ev.requirement[i, j])]
    pol_code = int(ev.policy[i, j])
    bits = int(ev.rule_bits[i, j])
    matched = [r for li, r in enumerate(ev.rules.licence) if bits >> li & 1]
    record: dict[str, Any] = {
        "destination": dest,
        "evaluated_as": groups.resolve(dest),
        "country_groups": groups.groups_of(groups.resolve(dest), ev.as_of),
        "requirement": req,
        "review_policy": policy_label(pol_code),
        "exceptions": exception_names(int(ev.exceptions[i, j])),
        "rule_ids": [r.id for r in matched],
        "citations": list(dict.fromkeys(r.citation for r in matched)),
        "rules": [{"id": r.id, "title": r.title, "citation": r.citation, "precedence": r.precedence,
                   "effect": r.effect} for r in matched],
        "flags": [name for b, name in enumerate(ev.flag_names) if int(ev.flags[i, j]) >> b & 1],
        "missing": [],
        "notes": [],
    }
    if req != "no_license_required" or pol_code == POLICY_UNKNOWN:
        unknown_inputs = []
        shape = ev.requirement.shape
        for li in range(len(ev.rules.licence)):
            if not np.broadcast_to(ev.licence_truths[li].unknown, shape)[i, j]:
                continue
            for leaf in ev.licence_leaves[li]:
                t = np.broadcast_to(leaf.truth.t, ev.requirement.shape)[i, j]
                f = np.broadcast_to(leaf.truth.f, ev.requirement.shape)[i, j]
                if not t and not f:
                    name = "classification" if leaf.metric == "eccn" else leaf.metric
                    unknown_inputs.append(name)
        record["missing"] = list(dict.fromkeys(unknown_inputs))
    if pol_code == POLICY_UNKNOWN and req == "license_required":
        record["notes"].append("review policy depends on a missing input: " + ", ".join(record["missing"]))
    if ev.headquarters is None or int(ev.headquarters[i]) == HQ_NONE:
        record["notes"].append("end-user headquarters not given: the headquarters rule was not applied")
    if dest != groups.resolve(dest):
        record["notes"].append(f"{dest} is evaluated as {groups.resolve(dest)}")
    return record


# ---- compact explanation columns (audit reports) ----

def _append(out: list[str], idx: np.ndarray, texts: Sequence[str]) -> None:
    for i, t in zip(idx.tolist(), texts):
        out[i] = t if not out[i] else out[i] + ";" + t


def margins_and_missing(ev: Evaluation) -> tuple[list[str], list[str]]:
    """Compact per-product explanations computed from the evaluation's leaves.

    controlled: the met numeric leaves of the deciding rule (``tpp>=4800:+11032``); not controlled:
    the failed numeric leaves of every classification rule in force; indeterminate: the missing inputs.
    """
    top = ev.table.top
    k = len(top)
    margins = [""] * k
    missing = [""] * k
    status = ev.status[top]
    by = ev.decided_by[top]
    seen_failed: set[tuple] = set()
    missing_masks: dict[str, np.ndarray] = {}
    for ri, leaves in enumerate(ev.class_leaves):
        unknown_rule = ev.class_truths[ri].unknown[top]
        seen_in_rule: set[tuple] = set()
        for leaf in leaves:
            lkey = (leaf.metric, leaf.op, str(leaf.threshold))
            if lkey in seen_in_rule:
                continue
            seen_in_rule.add(lkey)
            if leaf.values is None or leaf.metric not in METRICS:
                if leaf.metric in DERIVED:
                    mask = (status == INDETERMINATE) & (by >= ri) & unknown_rule & \
                        ~leaf.truth.t[top] & ~leaf.truth.f[top]
                    if mask.any():
                        missing_masks["components"] = missing_masks.get("components", np.zeros(k, bool)) | mask
                continue
            t = leaf.truth.t[top]
            f = leaf.truth.f[top]
            states = leaf.states[top]
            if leaf.metric in DERIVED:
                mask = (status == INDETERMINATE) & (by >= ri) & unknown_rule & ~t & ~f
                if mask.any():
                    missing_masks["components"] = missing_masks.get("components", np.zeros(k, bool)) | mask
                continue
            numeric = METRICS[leaf.metric].type == "number"
            prefix = f"{leaf.metric}{leaf.op}{leaf.threshold:g}:" if numeric else ""
            if numeric:
                idx = np.nonzero((status == CONTROLLED) & (by == ri) & t & (states == KNOWN))[0]
                if len(idx):
                    vals = leaf.values[top][idx] - float(leaf.threshold)
                    _append(margins, idx, [f"{prefix}{v:+g}" for v in vals.tolist()])
                key = (leaf.metric, leaf.op, float(leaf.threshold))
                if key not in seen_failed:
                    seen_failed.add(key)
                    idx = np.nonzero((status == NOT_CONTROLLED) & f & (states == KNOWN))[0]
                    if len(idx):
                        vals = leaf.values[top][idx] - float(leaf.threshold)
                        _append(margins, idx, [f"{prefix}{v:+g}" for v in vals.tolist()])
            mask = (status == INDETERMINATE) & (by >= ri) & unknown_rule & ~t & ~f
            if mask.any():
                missing_masks[leaf.metric] = missing_masks.get(leaf.metric, np.zeros(k, bool)) | mask
    for metric, mask in missing_masks.items():
        idx = np.nonzero(mask)[0]
        _append(missing, idx, [metric] * len(idx))
    return margins, missing
