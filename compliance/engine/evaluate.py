"""The evaluator: one vectorised pass over a table of products, for classification and licences.

`evaluate(table, rulebook, as_of, destinations, headquarters)` is the only code path: a single
API request is a table of one row, a batch audit chunk is a table of 50,000.

Classification: the classification rules in force are tried in precedence order; the first rule
definitely met sets the ECCN. If a higher rule is unknown for a row (an input is missing), the
row is `indeterminate` and the missing inputs are named. Systems are classified after their
components (deepest first), through the `contains_3a090a` / `contains_3a090b` metrics.

Licences: rows are (product x destination). Product leaves are evaluated as (k, 1) columns and
destination leaves as (1, m) rows, and numpy broadcasting combines them into (k, m) without
materialising the cross product of inputs. Precedence (documented in rules/README.md):
  * requirement: license_required if any matching rule requires one; indeterminate if none does
    but one might (unknown); else no_license_required;
  * review policy: from the highest-precedence matching rule that sets one;
  * exceptions: the union over matching rules, cleared by a matching `exceptions_blocked` rule,
    and only reported where a licence is required;
  * rule ids / citations: every licence rule that matched.
"""
from __future__ import annotations

import fnmatch
import re
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable, Sequence

import numpy as np

from .conditions import LeafResult, Truth, compare, evaluate_condition
from .countries import COUNTRY_INDEX, ISO_COUNTRIES
from .errors import InvalidInput
from .rulebook import InForce, Rule, Rulebook
from .table import KIND_CODE, KNOWN, MISSING, NOT_APPLICABLE, ProductTable
from .vocabulary import ECCNS, EXCEPTIONS, METRICS, REQUIREMENTS, REVIEW_POLICIES, STATUSES

ECCN_UNKNOWN = -1
ECCN_NONE = len(ECCNS)
ECCN_CODE = {e: i for i, e in enumerate(ECCNS)} | {"none": ECCN_NONE}
CONTROLLED, NOT_CONTROLLED, INDETERMINATE = 0, 1, 2
LICENCE_REQUIRED, NO_LICENCE_REQUIRED, REQ_INDETERMINATE = 0, 1, 2
POLICY_NONE, POLICY_UNKNOWN = -1, -2
EXC_BIT = {e: 1 << i for i, e in enumerate(EXCEPTIONS)}
STATE_NAMES = {KNOWN: "known", MISSING: "missing", NOT_APPLICABLE: "not_applicable"}
DERIVED = ("contains_3a090a", "contains_3a090b")
A_CODES = np.array([ECCN_CODE["3A090.a"], ECCN_CODE["4A090.a"]])
B_CODES = np.array([ECCN_CODE["3A090.b"], ECCN_CODE["4A090.b"]])
HQ_NONE = -1


def _key(node: dict) -> str:
    return json.dumps([node["metric"], node["op"], node["value"]], sort_keys=True)


def _match_models(table: ProductTable, patterns: Sequence[str]) -> np.ndarray:
    """Glob-match 'vendor/name|vendor/family' keys; evaluated once per distinct key."""
    # One compiled alternation of the glob patterns, tried once per distinct key part.
    regex = re.compile("|".join(f"(?:{fnmatch.translate(p.lower())})" for p in patterns))
    uniq, codes = table.model_index()
    hit = np.array([any(regex.match(k) for k in str(u).split("|")) for u in uniq], dtype=bool)
    return hit[codes] if len(uniq) else np.zeros(table.n, dtype=bool)


class _ProductLeaves:
    """Evaluates product-scope leaves over every row of a table, caching static ones."""

    def __init__(self, table: ProductTable):
        self.table = table
        self.derived_values: dict[str, np.ndarray] = {}
        self.derived_states: dict[str, np.ndarray] = {}
        self.cache: dict[str, tuple[Truth, np.ndarray | None, np.ndarray | None]] = {}

    def __call__(self, node: dict):
        metric = node["metric"]
        if metric in DERIVED:
            return self._numeric(node, self.derived_values[metric], self.derived_states[metric])
        key = _key(node)
        hit = self.cache.get(key)
        if hit is None:
            hit = self._evaluate(node)
            self.cache[key] = hit
        return hit

    def _evaluate(self, node: dict):
        t = self.table
        metric, op, value = node["metric"], node["op"], node["value"]
        mtype = METRICS[metric].type
        if mtype in ("number", "bool"):
            return self._numeric(node, t.values[metric], t.states[metric])
        if metric == "kind":
            targets = value if isinstance(value, list) else [value]
            res = np.isin(t.kind, [KIND_CODE[v] for v in targets])
            if op in ("!=", "not_in"):
                res = ~res
            return Truth(res, ~res), None, None
        if metric == "model":
            res = _match_models(t, value if isinstance(value, list) else [value])
            if t.has_components:  # a system matches when any part of it matches
                for d in range(int(t.depth.max()), 0, -1):
                    rows = np.nonzero((t.depth == d) & res)[0]
                    res[t.parent[rows]] = True
            return Truth(res, ~res), None, None
        raise InvalidInput(f"metric {metric!r} cannot be used in a product condition")

    @staticmethod
    def _numeric(node: dict, values: np.ndarray, states: np.ndarray):
        value = node["value"]
        threshold = float(value) if not isinstance(value, bool) else (1.0 if value else 0.0)
        known = states == KNOWN
        met = compare(values, node["op"], threshold)
        t = known & met
        f = (known & ~met) | (states == NOT_APPLICABLE)
        return Truth(t, f), values, states


@dataclass
class Evaluation:
    """Columnar results for the top-level products of a table (and their licences)."""

    table: ProductTable
    rulebook: Rulebook
    rules: InForce
    as_of: date
    eccn: np.ndarray  # int8[n] per table row
    status: np.ndarray  # int8[n]
    decided_by: np.ndarray  # int16[n]: index into rules.classification, -1 none
    class_leaves: list[list[LeafResult]]  # per classification rule
    class_truths: list[Truth]  # per classification rule
    derived_values: dict[str, np.ndarray]
    derived_states: dict[str, np.ndarray]
    destinations: list[str] = field(default_factory=list)
    headquarters: np.ndarray | None = None  # int[k] country index or HQ_NONE
    requirement: np.ndarray | None = None  # int8[k, m]
    policy: np.ndarray | None = None  # int8[k, m]
    exceptions: np.ndarray | None = None  # uint8[k, m]
    flags: np.ndarray | None = None  # uint32[k, m]
    rule_bits: np.ndarray | None = None  # uint64[k, m]
    flag_names: list[str] = field(default_factory=list)
    licence_leaves: list[list[LeafResult]] = field(default_factory=list)
    licence_truths: list[Truth] = field(default_factory=list)

    @property
    def revision(self) -> str:
        return self.rulebook.revision

    # ---- columnar views (used by audits and re-evaluation) ----
    def top_eccn_labels(self) -> np.ndarray:
        labels = np.array(list(ECCNS) + [""] + [""], dtype=object)  # index -1 -> "" as well
        return labels[self.eccn[self.table.top]]

    def top_status_labels(self) -> np.ndarray:
        return np.array(STATUSES, dtype=object)[self.status[self.table.top]]

    def requirement_labels(self) -> np.ndarray:
        return np.array(REQUIREMENTS, dtype=object)[self.requirement]

    def policy_labels(self) -> np.ndarray:
        labels = np.array(list(REVIEW_POLICIES) + [None, None], dtype=object)  # -2, -1 -> None
        return labels[self.policy]

    def exception_labels(self) -> np.ndarray:
        return _bits_to_labels(self.exceptions, list(EXCEPTIONS))

    def rule_id_labels(self) -> np.ndarray:
        return _bits_to_labels(self.rule_bits, [r.id for r in self.rules.licence])

    def deciding_rule_ids(self) -> np.ndarray:
        ids = np.array([r.id for r in self.rules.classification] + [""], dtype=object)
        return ids[self.decided_by[self.table.top]]

    # ---- per-row explanations (used by the classify API and the CLI) ----
    def classification_record(self, i: int) -> dict[str, Any]:
        """Full explanation of top-level product i."""
        row = int(self.table.top[i])
        return self._classification_of_row(row, with_components=True)

    def _classification_of_row(self, row: int, with_components: bool) -> dict[str, Any]:
        t = self.table
        eccn_code = int(self.eccn[row])
        status = STATUSES[int(self.status[row])]
        by = int(self.decided_by[row])
        rules = self.rules.classification
        conditions = []
        for ri, rule in enumerate(rules):
            for leaf in self.class_leaves[ri]:
                conditions.append(self._leaf_record(rule, leaf, row))
        missing = self._missing(row) if status == "indeterminate" else []
        deciding = rules[by] if by >= 0 else None
        record: dict[str, Any] = {
            "eccn": ECCNS[eccn_code] if 0 <= eccn_code < len(ECCNS) else None,
            "status": status,
            "rule_id": deciding.id if deciding and status == "controlled" else None,
            "citation": deciding.citation if deciding and status == "controlled" else None,
            "reason": self._reason(row, status, deciding, conditions, missing),
            "conditions": conditions,
            "missing": missing,
            "metrics": self._metrics(row),
            "notes": list(t.notes[row]) if t.notes else [],
        }
        if with_components and t.kind[row] == KIND_CODE["system"]:
            children = np.nonzero(t.parent == row)[0]
            record["components"] = [
                # no table row index here: it depends on what else was in the batch
                {"count": int(t.count[c]), "model": str(t.model[c]).split("|")[0],
                 **{k: v for k, v in self._classification_of_row(int(c), True).items()
                    if k in ("eccn", "status", "rule_id", "missing", "metrics", "components")}}
                for c in children
            ]
        return record

    def _leaf_record(self, rule: Rule, leaf: LeafResult, row: int) -> dict[str, Any]:
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
            out["value"] = (KIND_NAMES[int(self.table.kind[row])] if leaf.metric == "kind"
                            else str(self.table.model[row]).split("|")[0])
        return out

    def _metrics(self, row: int) -> dict[str, Any]:
        t = self.table
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
                out[m] = int(self.derived_values[m][row]) if self.derived_states[m][row] == KNOWN else None
        return out

    def _missing(self, row: int) -> list[str]:
        """Inputs whose absence left this row undecided."""
        by = int(self.decided_by[row])
        missing: list[str] = []
        for ri in range(0, by + 1):
            if not self.class_truths[ri].unknown[row]:
                continue
            for leaf in self.class_leaves[ri]:
                if leaf.truth.t[row] or leaf.truth.f[row] or leaf.states is None:
                    continue
                if leaf.metric in DERIVED:
                    for c in np.nonzero(self.table.parent == row)[0]:
                        if self.status[c] == INDETERMINATE:
                            name = str(self.table.model[c]).split("|")[0]
                            missing += [f"components[{name}].{m}" for m in self._missing(int(c))]
                elif leaf.metric not in missing:
                    missing.append(leaf.metric)
        return list(dict.fromkeys(missing))

    def _reason(self, row, status, deciding, conditions, missing) -> str:
        if status == "controlled":
            met = {(c["metric"], c["op"], c["threshold"]): c for c in conditions
                   if c["rule_id"] == deciding.id and c["met"] and "margin" in c}
            detail = "; ".join(f"{c['metric']} {_num(c['value'])} {c['op']} {c['threshold']} "
                               f"(margin {c['margin']:+g})" for c in met.values())
            return f"{deciding.eccn}: {deciding.title} [{deciding.citation}]" + (f": {detail}" if detail else "")
        if status == "indeterminate":
            return ("cannot decide: missing " + ", ".join(missing) +
                    (f" (needed by {deciding.id})" if deciding else ""))
        if not self.rules.classification:
            return "no classification rules in force on this date"
        failed = {}
        for c in conditions:
            if c["met"] is False and c.get("margin") is not None:
                failed.setdefault((c["metric"], c["op"], c["threshold"]), c["margin"])
        detail = "; ".join(f"{m} {op} {thr} (margin {mg:+g})" for (m, op, thr), mg in failed.items())
        return "no 3A090/4A090 paragraph is met" + (f": {detail}" if detail else "")

    def licence_record(self, i: int, j: int) -> dict[str, Any]:
        """Licence determination for top-level product i and destination j."""
        dest = self.destinations[j]
        groups = self.rulebook.country_groups
        req = REQUIREMENTS[int(self.requirement[i, j])]
        pol_code = int(self.policy[i, j])
        bits = int(self.rule_bits[i, j])
        matched = [r for li, r in enumerate(self.rules.licence) if bits >> li & 1]
        record: dict[str, Any] = {
            "destination": dest,
            "evaluated_as": groups.resolve(dest),
            "country_groups": groups.groups_of(groups.resolve(dest), self.as_of),
            "requirement": req,
            "review_policy": REVIEW_POLICIES[pol_code] if pol_code >= 0 else None,
            "exceptions": [e for e in EXCEPTIONS if int(self.exceptions[i, j]) & EXC_BIT[e]],
            "rule_ids": [r.id for r in matched],
            "citations": list(dict.fromkeys(r.citation for r in matched)),
            "rules": [{"id": r.id, "title": r.title, "citation": r.citation, "precedence": r.precedence,
                       "effect": r.effect} for r in matched],
            "flags": [name for b, name in enumerate(self.flag_names) if int(self.flags[i, j]) >> b & 1],
            "missing": [],
            "notes": [],
        }
        if req != "no_license_required" or pol_code == POLICY_UNKNOWN:
            unknown_inputs = []
            shape = self.requirement.shape
            for li, rule in enumerate(self.rules.licence):
                if not np.broadcast_to(self.licence_truths[li].unknown, shape)[i, j]:
                    continue
                for leaf in self.licence_leaves[li]:
                    t = np.broadcast_to(leaf.truth.t, self.requirement.shape)[i, j]
                    f = np.broadcast_to(leaf.truth.f, self.requirement.shape)[i, j]
                    if not t and not f:
                        name = "classification" if leaf.metric == "eccn" else leaf.metric
                        unknown_inputs.append(name)
            record["missing"] = list(dict.fromkeys(unknown_inputs))
        if pol_code == POLICY_UNKNOWN and req == "license_required":
            record["notes"].append("review policy depends on a missing input: " + ", ".join(record["missing"]))
        if self.headquarters is None or int(self.headquarters[i]) == HQ_NONE:
            record["notes"].append("end-user headquarters not given: the headquarters rule was not applied")
        if dest != groups.resolve(dest):
            record["notes"].append(f"{dest} is evaluated as {groups.resolve(dest)}")
        return record


KIND_NAMES = {v: k for k, v in KIND_CODE.items()}


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() and abs(v) < 2**53 else round(float(v), 6)


def _bits_to_labels(bits: np.ndarray, names: list[str]) -> np.ndarray:
    """Map each bitmask to a comma-joined label, computing each distinct mask once."""
    flat = bits.reshape(-1)
    uniq, inverse = np.unique(flat, return_inverse=True)
    labels = np.array([",".join(n for b, n in enumerate(names) if int(u) >> b & 1) for u in uniq], dtype=object)
    return labels[inverse].reshape(bits.shape)


def _classify(table: ProductTable, rules: Sequence[Rule]):
    n = table.n
    leaf_fn = _ProductLeaves(table)
    system = table.kind == KIND_CODE["system"]
    eccn = np.full(n, ECCN_NONE, dtype=np.int8)
    status = np.full(n, NOT_CONTROLLED, dtype=np.int8)
    decided_by = np.full(n, -1, dtype=np.int16)
    for m in DERIVED:
        leaf_fn.derived_values[m] = np.zeros(n)
        st = np.full(n, NOT_APPLICABLE, dtype=np.int8)
        st[system] = KNOWN
        leaf_fn.derived_states[m] = st
    max_depth = int(table.depth.max()) if n else 0
    sinks: list[list[LeafResult]] = []
    truths: list[Truth] = []
    for d in range(max_depth, -1, -1):
        if d < max_depth:
            _aggregate_components(table, d, eccn, status, leaf_fn)
        e_d = np.full(n, ECCN_NONE, dtype=np.int8)
        s_d = np.full(n, NOT_CONTROLLED, dtype=np.int8)
        b_d = np.full(n, -1, dtype=np.int16)
        decided = np.zeros(n, dtype=bool)
        sinks, truths = [], []
        for ri, rule in enumerate(rules):
            sink: list[LeafResult] = []
            truth = evaluate_condition(rule.when, leaf_fn, sink)
            sinks.append(sink)
            truths.append(truth)
            new = ~decided & truth.t
            e_d[new] = ECCN_CODE[rule.eccn]
            s_d[new] = CONTROLLED
            b_d[new] = ri
            decided |= new
            blocked = ~decided & truth.unknown
            e_d[blocked] = ECCN_UNKNOWN
            s_d[blocked] = INDETERMINATE
            b_d[blocked] = ri
            decided |= blocked
        at = table.depth == d
        eccn[at], status[at], decided_by[at] = e_d[at], s_d[at], b_d[at]
    return eccn, status, decided_by, sinks, truths, leaf_fn


def _aggregate_components(table: ProductTable, d: int, eccn, status, leaf_fn: _ProductLeaves) -> None:
    """Set contains_3a090a/b of systems at depth d from their children at depth d + 1."""
    children = np.nonzero(table.depth == d + 1)[0]
    parents = table.parent[children]
    unknown = np.zeros(table.n, dtype=bool)
    np.logical_or.at(unknown, parents, status[children] == INDETERMINATE)
    for metric, codes in (("contains_3a090a", A_CODES), ("contains_3a090b", B_CODES)):
        counts = np.zeros(table.n)
        np.add.at(counts, parents, np.isin(eccn[children], codes) * table.count[children])
        at = (table.depth == d) & (table.kind == KIND_CODE["system"])
        leaf_fn.derived_values[metric][at] = counts[at]
        st = leaf_fn.derived_states[metric]
        st[at] = np.where(unknown[at] & (counts[at] == 0), MISSING, KNOWN)


def _country_codes(codes: Iterable[str], field_name: str) -> np.ndarray:
    out = []
    for c in codes:
        if c not in COUNTRY_INDEX:
            raise InvalidInput(f"{field_name}: unknown country code {c!r}", {field_name: [f"unknown country code {c!r}"]})
        out.append(COUNTRY_INDEX[c])
    return np.array(out, dtype=np.int64)


def evaluate(
    table: ProductTable,
    rulebook: Rulebook,
    as_of: date,
    destinations: Sequence[str] = (),
    headquarters: str | Sequence[str | None] | None = None,
) -> Evaluation:
    """Classify every row of `table` as of `as_of`, and determine licences for each destination.

    `headquarters` is one country code for every product, or one per top-level product (None allowed).
    """
    rules = rulebook.in_force(as_of)
    eccn, status, decided_by, sinks, truths, leaf_fn = _classify(table, rules.classification)
    result = Evaluation(
        table=table, rulebook=rulebook, rules=rules, as_of=as_of, eccn=eccn, status=status,
        decided_by=decided_by, class_leaves=sinks, class_truths=truths, derived_values=leaf_fn.derived_values,
        derived_states=leaf_fn.derived_states, destinations=list(destinations),
    )
    k, m = len(table.top), len(result.destinations)
    if isinstance(headquarters, str) or headquarters is None:
        hq = np.full(k, HQ_NONE if headquarters is None else _country_codes([headquarters], "end_user.headquarters")[0])
    else:
        if len(headquarters) != k:
            raise InvalidInput(f"headquarters: {len(headquarters)} given for {k} products",
                               {"end_user.headquarters": [f"give one per product ({k}), or one for all"]})
        hq = np.array([HQ_NONE if h is None else _country_codes([h], "end_user.headquarters")[0]
                       for h in headquarters], dtype=np.int64)
    result.headquarters = hq
    dest_codes = _country_codes(result.destinations, "destinations")
    _licences(result, leaf_fn, dest_codes, hq, k, m)
    return result


def _licences(result: Evaluation, leaf_fn: _ProductLeaves, dest_codes: np.ndarray, hq: np.ndarray,
              k: int, m: int) -> None:
    table, rules, groups = result.table, result.rules.licence, result.rulebook.country_groups
    if len(rules) > 64:
        raise InvalidInput(f"{len(rules)} licence rules in force on {result.as_of}; at most 64 are supported")
    matrix = groups.matrix(result.as_of)
    alias = np.arange(len(ISO_COUNTRIES))
    for a, target in groups.aliases.items():
        alias[COUNTRY_INDEX[a]] = COUNTRY_INDEX[target]
    dest_eval = alias[dest_codes]
    hq_eval = np.where(hq == HQ_NONE, HQ_NONE, alias[np.where(hq == HQ_NONE, 0, hq)])
    top = table.top
    all_top = k == table.n  # no component rows, so top is 0..n-1
    top_eccn = result.eccn[top]
    top_known = result.status[top] != INDETERMINATE
    cache: dict[str, tuple] = {}

    def country_membership(codes: np.ndarray, node: dict) -> np.ndarray:
        vals = node["value"] if isinstance(node["value"], list) else [node["value"]]
        valid = codes != HQ_NONE
        safe = np.where(valid, codes, 0)
        if node["op"] in ("in", "not_in"):
            targets = [COUNTRY_INDEX[groups.resolve(v)] for v in vals]
            res = np.isin(safe, targets)
        else:
            res = matrix[[groups.index[g] for g in vals]][:, safe].any(axis=0)
        res &= valid
        return ~res if node["op"].startswith("not_") else res

    def leaf(node: dict):
        key = _key(node)
        if key in cache:
            return cache[key]
        metric = node["metric"]
        if metric == "destination":
            res = country_membership(dest_eval, node).reshape(1, m)
            out = (Truth(res, ~res), None, None)
        elif metric == "headquarters":
            res = country_membership(hq_eval, node).reshape(k, 1)
            out = (Truth(res, ~res), None, None)
        elif metric == "eccn":
            vals = node["value"] if isinstance(node["value"], list) else [node["value"]]
            res = np.isin(top_eccn, [ECCN_CODE[v] for v in vals])
            if node["op"] in ("!=", "not_in"):
                res = ~res
            out = (Truth((res & top_known).reshape(k, 1), (~res & top_known).reshape(k, 1)), None, None)
        else:
            truth, values, states = leaf_fn(node)
            if all_top:  # every row is a top-level product: views, no copies
                out = (Truth(truth.t.reshape(k, 1), truth.f.reshape(k, 1)), values, states)
            else:
                out = (Truth(truth.t[top].reshape(k, 1), truth.f[top].reshape(k, 1)),
                       None if values is None else values[top], None if states is None else states[top])
        cache[key] = out
        return out

    shape = (k, m)
    req_t = np.zeros(shape, dtype=bool)
    req_u = np.zeros(shape, dtype=bool)
    policy = np.full(shape, POLICY_NONE, dtype=np.int8)
    pol_done = np.zeros(shape, dtype=bool)
    exc = np.zeros(shape, dtype=np.uint8)
    exc_blocked = np.zeros(shape, dtype=bool)
    flag_names = sorted({f for r in rules for f in r.effect.get("flags", [])})
    flags = np.zeros(shape, dtype=np.uint32)
    bits = np.zeros(shape, dtype=np.uint64)
    sinks: list[list[LeafResult]] = []
    truths: list[Truth] = []
    # No destinations: there is no (product, destination) cell to decide, so no rule is evaluated.
    for li, rule in enumerate(rules if m else ()):
        sink: list[LeafResult] = []
        truth = evaluate_condition(rule.when, leaf, sink)
        sinks.append(sink)
        truths.append(truth)
        t = np.broadcast_to(truth.t, shape)
        u = np.broadcast_to(truth.unknown, shape)
        if not t.any() and not u.any():
            continue
        # ufuncs with where= update in place; boolean fancy indexing would copy twice per rule.
        np.bitwise_or(bits, np.uint64(1 << li), out=bits, where=t)
        eff = rule.effect
        if eff.get("requirement") == "license_required":
            req_t |= t
            req_u |= u
        if eff.get("review_policy"):
            open_ = ~pol_done
            new = open_ & t
            np.copyto(policy, np.int8(REVIEW_POLICIES.index(eff["review_policy"])), where=new)
            blocked = open_ & u
            np.copyto(policy, np.int8(POLICY_UNKNOWN), where=blocked)
            pol_done |= new
            pol_done |= blocked
        for e in eff.get("exceptions", []):
            np.bitwise_or(exc, np.uint8(EXC_BIT[e]), out=exc, where=t)
        if eff.get("exceptions_blocked"):
            exc_blocked |= t
        for fl in eff.get("flags", []):
            np.bitwise_or(flags, np.uint32(1 << flag_names.index(fl)), out=flags, where=t)
    requirement = np.where(req_t, LICENCE_REQUIRED, np.where(req_u, REQ_INDETERMINATE, NO_LICENCE_REQUIRED)
                           ).astype(np.int8)
    exc[exc_blocked | (requirement != LICENCE_REQUIRED)] = 0
    policy[(requirement != LICENCE_REQUIRED) & (policy != POLICY_UNKNOWN)] = POLICY_NONE
    policy[requirement == NO_LICENCE_REQUIRED] = POLICY_NONE
    result.requirement, result.policy, result.exceptions = requirement, policy, exc
    result.flags, result.flag_names, result.rule_bits, result.licence_leaves = flags, flag_names, bits, sinks
    result.licence_truths = truths
