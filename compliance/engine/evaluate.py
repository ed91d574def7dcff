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
  * rule ids / citations: the matching rules that decided the answer (`deciding_bits`); rules that only
    set flags or a note are notices, shown beside the answer with their citations.
"""
from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Iterable, Sequence, cast

import numpy as np
from numpy.typing import NDArray

from .codes import (
    CONTROLLED,
    ECCN_CODE,
    ECCN_LABELS,
    ECCN_NONE,
    ECCN_UNKNOWN,
    EXC_BIT,
    HQ_NONE,
    INDETERMINATE,
    LICENCE_REQUIRED,
    NO_LICENCE_REQUIRED,
    NOT_CONTROLLED,
    POLICY_LABELS,
    POLICY_NONE,
    POLICY_UNKNOWN,
    REQ_INDETERMINATE,
    REQUIREMENT_LABELS,
    STATUS_LABELS,
    bits_to_labels,
)
from .conditions import LeafOutput, LeafResult, Node, Truth, compare, evaluate_condition
from .countries import COUNTRY_INDEX, ISO_COUNTRIES
from .errors import InvalidInput
from .rulebook import InForce, Rule, Rulebook
from .table import KIND_CODE, KNOWN, MISSING, NOT_APPLICABLE, PACKAGING_CODE, ProductTable
from .vendors import CACHE_LIMIT
from .vocabulary import EXCEPTIONS, METRICS, REVIEW_POLICIES, TRANSACTION_TYPES

DERIVED = ("contains_3a090a", "contains_3a090b", "contains_3a090c", "contains_logic_ic")
A_CODES = np.array([ECCN_CODE["3A090.a"], ECCN_CODE["4A090.a"]])
B_CODES = np.array([ECCN_CODE["3A090.b"], ECCN_CODE["4A090.b"]])
C_CODES = np.array([ECCN_CODE["3A090.c"]])
TRANSACTION_CODE = {t: i for i, t in enumerate(TRANSACTION_TYPES)}


_KEYS: dict[int, tuple[Node, str]] = {}  # id(node) -> (node, key): the node is kept, so its id stays its own
_KEYS_LIMIT = 100_000


def _key(node: Node) -> str:
    """The cache key of a leaf (metric, op, value), computed once per leaf node of a rulebook."""
    hit = _KEYS.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    key = json.dumps([node["metric"], node["op"], node["value"]], sort_keys=True)
    if len(_KEYS) >= _KEYS_LIMIT:
        _KEYS.clear()
    _KEYS[id(node)] = (node, key)
    return key


def _member(codes: np.ndarray, targets: Sequence[int], size: int) -> NDArray[np.bool_]:
    """np.isin(codes, targets) for codes in [0, size): one lookup table, no sort (tables of one row pay
    for every numpy call)."""
    table = np.zeros(size, dtype=bool)
    table[list(targets)] = True
    return cast("NDArray[np.bool_]", table[codes])


def _match_models(table: ProductTable, rulebook: Rulebook, patterns: Sequence[str]) -> np.ndarray:
    """Glob-match raw 'vendor/name|vendor/family' keys; each distinct key is matched once per rulebook."""
    uniq, codes = table.model_index()
    if not uniq:
        return np.zeros(table.n, dtype=bool)
    memo = rulebook.pattern_cache.setdefault(tuple(patterns), {})
    missing = [k for k in uniq if k not in memo]
    if missing:
        if len(memo) + len(missing) > CACHE_LIMIT:
            memo.clear()
        # One compiled alternation of the glob patterns, tried once per distinct key part.
        regex = re.compile("|".join(f"(?:{fnmatch.translate(p.lower())})" for p in patterns))
        for k in missing:
            memo[k] = any(regex.match(part) for part in str(k).split("|"))
    hit = np.fromiter((memo[k] for k in uniq), dtype=bool, count=len(uniq))
    return cast("NDArray[np.bool_]", hit[codes])  # indexed by an array: an array


def _propagate_up(table: ProductTable, mask: np.ndarray) -> np.ndarray:
    """A system has what any of its parts has (deepest first); returns a new array."""
    out = mask.copy()
    if table.has_components:
        for d in range(int(table.depth.max()), 0, -1):
            rows = np.nonzero(table.depth == d)[0]
            if out.dtype == bool:
                np.logical_or.at(out, table.parent[rows], out[rows])
            else:
                np.bitwise_or.at(out, table.parent[rows], out[rows])
    return out


def family_bits(table: ProductTable, rulebook: Rulebook) -> tuple[np.ndarray, np.ndarray]:
    """(match bits, possible-match bits) per table row, systems including their parts; cached per table."""
    cached = table._family_bits
    if cached is None or cached[0] is not rulebook.models:
        uniq, codes = table.model_index()
        match, possible = rulebook.models.resolve(uniq)
        match, possible = _propagate_up(table, match[codes]), _propagate_up(table, possible[codes])
        cached = table._family_bits = (rulebook.models, match, possible & ~match)
    return cached[1], cached[2]


class _ProductLeaves:
    """Evaluates product-scope leaves over every row of a table, caching static ones."""

    def __init__(self, table: ProductTable, rulebook: Rulebook):
        self.table = table
        self.rulebook = rulebook
        self.derived_values: dict[str, np.ndarray] = {}
        self.derived_states: dict[str, np.ndarray] = {}
        self.cache: dict[str, LeafOutput] = {}

    def __call__(self, node: Node) -> LeafOutput:
        metric = node["metric"]
        if metric in DERIVED:
            return self._numeric(node, self.derived_values[metric], self.derived_states[metric])
        key = _key(node)
        hit = self.cache.get(key)
        if hit is None:
            hit = self._evaluate(node)
            self.cache[key] = hit
        return hit

    def _evaluate(self, node: Node) -> LeafOutput:
        t = self.table
        metric, op, value = node["metric"], node["op"], node["value"]
        mtype = METRICS[metric].type
        if mtype in ("number", "bool"):
            return self._numeric(node, t.values[metric], t.states[metric])
        if metric == "kind":
            targets = value if isinstance(value, list) else [value]
            res = _member(t.kind, [KIND_CODE[v] for v in targets], len(KIND_CODE))
            if op in ("!=", "not_in"):
                res = ~res
            return Truth(res, ~res), None, None
        if metric == "hbm_packaging":  # HBM items only: not met for anything else, whatever the operator
            targets = value if isinstance(value, list) else [value]
            hbm = t.kind == KIND_CODE["hbm"]
            assert t.hbm_packaging is not None  # ProductTable.__post_init__ fills it in
            res = _member(t.hbm_packaging, [PACKAGING_CODE[v] for v in targets], len(PACKAGING_CODE))
            if op in ("!=", "not_in"):
                res = ~res
            return Truth(res & hbm, ~res | ~hbm), None, None
        if mtype == "date":
            return self._date(node)
        if metric == "model":
            # a system matches when any part of it matches
            res = _propagate_up(t, _match_models(t, self.rulebook, value if isinstance(value, list) else [value]))
            return Truth(res, ~res), None, None
        if metric == "model_family":
            match, possible = family_bits(t, self.rulebook)
            wanted = np.uint64(self.rulebook.models.bits(value))
            hit = (match & wanted) != 0
            maybe = (possible & wanted) != 0  # a look-alike name: unknown, never a silent "no"
            if op == "not_in":
                return Truth(~hit & ~maybe, hit), None, None
            return Truth(hit, ~hit & ~maybe), None, None
        raise InvalidInput(f"metric {metric!r} cannot be used in a product condition")

    def _date(self, node: Node) -> LeafOutput:
        """A date leaf over [first, last] possible days: unknown where the range straddles the threshold."""
        threshold = float(date.fromisoformat(str(node["value"])).toordinal())
        assert self.table.release is not None  # ProductTable.__post_init__ fills it in
        first, last = self.table.release[:, 0], self.table.release[:, 1]
        op = node["op"]
        with np.errstate(invalid="ignore"):
            if op in ("<=", "<"):
                t, f = compare(last, op, threshold), compare(first, ">" if op == "<=" else ">=", threshold)
            else:
                t, f = compare(first, op, threshold), compare(last, "<" if op == ">=" else "<=", threshold)
        return Truth(t, f), None, None

    @staticmethod
    def _numeric(node: Node, values: np.ndarray, states: np.ndarray) -> LeafOutput:
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
    transaction: np.ndarray | None = None  # int8[k] index into TRANSACTION_TYPES
    requirement: np.ndarray | None = None  # int8[k, m]
    policy: np.ndarray | None = None  # int8[k, m]
    exceptions: np.ndarray | None = None  # uint8[k, m]
    flags: np.ndarray | None = None  # uint32[k, m]
    rule_bits: np.ndarray | None = None  # uint64[k, m]: the licence rules that decided each answer
    notice_bits: np.ndarray | None = None  # uint64[k, m]: matched rules that only tell (flags, notes)
    matched_bits: np.ndarray | None = None  # uint64[k, m]: every licence rule that matched
    flag_names: list[str] = field(default_factory=list)
    licence_leaves: list[list[LeafResult]] = field(default_factory=list)
    licence_truths: list[Truth] = field(default_factory=list)

    @property
    def revision(self) -> str:
        return self.rulebook.revision

    # ---- columnar views (used by audits and re-evaluation) ----
    def top_eccn_labels(self) -> np.ndarray:
        """ECCN per top-level product; "" where none applies or it cannot be decided."""
        labels: np.ndarray = ECCN_LABELS[self.eccn[self.table.top]]
        labels[labels == None] = ""  # noqa: E711 (element-wise comparison)
        return labels

    def top_status_labels(self) -> np.ndarray:
        return cast(np.ndarray, STATUS_LABELS[self.status[self.table.top]])  # indexed by an array: an array

    # The licence columns below are None only until evaluate() has run _licences.
    def requirement_labels(self) -> np.ndarray:
        assert self.requirement is not None  # set by evaluate()
        return cast(np.ndarray, REQUIREMENT_LABELS[self.requirement])  # indexed by an array: an array

    def policy_labels(self) -> np.ndarray:
        assert self.policy is not None  # set by evaluate()
        return cast(np.ndarray, POLICY_LABELS[self.policy])  # indexed by an array: an array

    def exception_labels(self) -> np.ndarray:
        assert self.exceptions is not None  # set by evaluate()
        return bits_to_labels(self.exceptions, list(EXCEPTIONS))

    def rule_id_labels(self) -> np.ndarray:
        assert self.rule_bits is not None  # set by evaluate()
        return bits_to_labels(self.rule_bits, [r.id for r in self.rules.licence])

    def deciding_rule_ids(self) -> np.ndarray:
        ids = np.array([r.id for r in self.rules.classification] + [""], dtype=object)
        return cast(np.ndarray, ids[self.decided_by[self.table.top]])  # indexed by an array: an array


def _classify(table: ProductTable, rulebook: Rulebook, rules: Sequence[Rule]) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, list[list[LeafResult]], list[Truth], _ProductLeaves]:
    n = table.n
    leaf_fn = _ProductLeaves(table, rulebook)
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
            assert rule.eccn is not None  # validate_rulebook: every classification rule sets one
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


def _aggregate_components(table: ProductTable, d: int, eccn: np.ndarray, status: np.ndarray,
                          leaf_fn: _ProductLeaves) -> None:
    """Set contains_3a090a/b of systems at depth d from their children at depth d + 1."""
    children = np.nonzero(table.depth == d + 1)[0]
    parents = table.parent[children]
    unknown = np.zeros(table.n, dtype=bool)
    np.logical_or.at(unknown, parents, status[children] == INDETERMINATE)
    is_ic = (table.kind[children] == KIND_CODE["ic"]).astype(np.float64)
    sub_ics = leaf_fn.derived_values["contains_logic_ic"][children]  # parts of parts (already aggregated)
    for metric, hits in (("contains_3a090a", np.isin(eccn[children], A_CODES)),
                         ("contains_3a090b", np.isin(eccn[children], B_CODES)),
                         ("contains_3a090c", np.isin(eccn[children], C_CODES)),
                         ("contains_logic_ic", None)):
        counts = np.zeros(table.n)
        if hits is None:
            np.add.at(counts, parents, (is_ic + sub_ics) * table.count[children])
        else:
            np.add.at(counts, parents, hits * table.count[children])
        at = (table.depth == d) & (table.kind == KIND_CODE["system"])
        leaf_fn.derived_values[metric][at] = counts[at]
        st = leaf_fn.derived_states[metric]
        st[at] = KNOWN if hits is None else np.where(unknown[at] & (counts[at] == 0), MISSING, KNOWN)


def _country_codes(codes: Iterable[str], field_name: str) -> np.ndarray:
    out = []
    for c in codes:
        if c not in COUNTRY_INDEX:
            raise InvalidInput(f"{field_name}: unknown country code {c!r}", {field_name: [f"unknown country code {c!r}"]})
        out.append(COUNTRY_INDEX[c])
    return np.array(out, dtype=np.int64)


def _transaction_codes(value: str | Sequence[str], k: int) -> np.ndarray:
    if isinstance(value, str) and value in TRANSACTION_CODE:  # one for all: no per-product list
        return np.full(k, TRANSACTION_CODE[value], dtype=np.int8)
    values = [value] * k if isinstance(value, str) else list(value)
    if len(values) != k:
        raise InvalidInput(f"transaction_type: {len(values)} given for {k} products",
                           {"transaction_type": [f"give one per product ({k}), or one for all"]})
    bad = sorted({str(v) for v in values if v not in TRANSACTION_CODE})
    if bad:
        raise InvalidInput(f"transaction_type: unknown {bad}",
                           {"transaction_type": [f"must be one of {list(TRANSACTION_TYPES)}, got {bad}"]})
    return np.array([TRANSACTION_CODE[v] for v in values], dtype=np.int8)


def evaluate(
    table: ProductTable,
    rulebook: Rulebook,
    as_of: date,
    destinations: Sequence[str] = (),
    headquarters: str | Sequence[str | None] | None = None,
    transaction_type: str | Sequence[str] = "export",
) -> Evaluation:
    """Classify every row of `table` as of `as_of`, and determine licences for each destination.

    `headquarters` is one country code for every product, or one per top-level product (None allowed).
    `transaction_type` (export, reexport, in_country_transfer) likewise: one for all, or one per product.
    """
    rules = rulebook.in_force(as_of)
    eccn, status, decided_by, sinks, truths, leaf_fn = _classify(table, rulebook, rules.classification)
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
    result.transaction = _transaction_codes(transaction_type, k)
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
    transaction = result.transaction
    assert transaction is not None  # evaluate() sets it before calling _licences
    cache: dict[str, LeafOutput] = {}

    def country_membership(codes: np.ndarray, node: Node) -> np.ndarray:
        vals = node["value"] if isinstance(node["value"], list) else [node["value"]]
        valid = codes != HQ_NONE
        safe = np.where(valid, codes, 0)
        if node["op"] in ("in", "not_in"):
            targets = [COUNTRY_INDEX[groups.resolve(v)] for v in vals]
            res = _member(safe, targets, len(ISO_COUNTRIES))
        else:
            # .any(axis=0) of a 2-D [group x destination] matrix: an array
            res = cast("NDArray[np.bool_]", matrix[[groups.index[g] for g in vals]][:, safe].any(axis=0))
        res &= valid
        return ~res if node["op"].startswith("not_") else res

    def leaf(node: Node) -> LeafOutput:
        key = _key(node)
        if key in cache:
            return cache[key]
        metric = node["metric"]
        out: LeafOutput
        if metric == "destination":
            res = country_membership(dest_eval, node).reshape(1, m)
            out = (Truth(res, ~res), None, None)
        elif metric == "headquarters":
            res = country_membership(hq_eval, node).reshape(k, 1)
            out = (Truth(res, ~res), None, None)
        elif metric == "transaction_type":
            vals = node["value"] if isinstance(node["value"], list) else [node["value"]]
            res = _member(transaction, [TRANSACTION_CODE[v] for v in vals], len(TRANSACTION_CODE))
            if node["op"] in ("!=", "not_in"):
                res = ~res
            out = (Truth(res.reshape(k, 1), ~res.reshape(k, 1)), None, None)
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
        # (k, 1), (1, m) or (k, m): every use below broadcasts to (k, m) itself
        t, u = truth.t, truth.unknown
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
    decided, notices = deciding_bits(rules if m else (), bits, requirement, policy, exc)
    result.requirement, result.policy, result.exceptions = requirement, policy, exc
    result.flags, result.flag_names, result.licence_leaves = flags, flag_names, sinks
    result.rule_bits, result.notice_bits, result.matched_bits = decided, notices, bits
    result.licence_truths = truths


def rule_masks(rules: Sequence[Rule]) -> dict[str, int]:
    """Bit masks over the licence rules in force, by what each rule's effect does."""
    masks = {"requirement": 0, "policy": 0, "flags": 0, "notice": 0} | {f"exception:{e}": 0 for e in EXCEPTIONS}
    for li, rule in enumerate(rules):
        eff, bit = rule.effect, 1 << li
        if eff.get("requirement") == "license_required" or eff.get("exceptions_blocked"):
            masks["requirement"] |= bit
        if eff.get("review_policy"):
            masks["policy"] |= bit
        for e in eff.get("exceptions", []):
            masks[f"exception:{e}"] |= bit
        if eff.get("flags"):
            masks["flags"] |= bit
        if not (eff.get("requirement") == "license_required" or eff.get("exceptions_blocked")
                or eff.get("review_policy") or eff.get("exceptions")):
            masks["notice"] |= bit  # flags / a note only: it tells, it decides nothing
    return masks


def deciding_bits(rules: Sequence[Rule], bits: np.ndarray, requirement: np.ndarray, policy: np.ndarray,
                  exceptions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of the licence rules matched per cell (`bits`), (those that decided the answer, the notices).

    Decided: where a licence is required, every matching rule that requires one (or blocks exceptions), and
    the rule that set the review policy (the highest-precedence matching policy rule: the lowest set bit,
    rules being in precedence order); each exception rule whose exception is in the answer. A rule that
    matched but changed nothing (NAC where no licence is needed or exceptions are blocked, a lower policy
    outranked) is not listed. Notices: rules that only set flags or a note (and flag rules that decided
    nothing), reported beside the answer with their citation, not as its reasons.
    """
    masks = rule_masks(rules)
    required = requirement == LICENCE_REQUIRED
    decided = np.where(required, bits & np.uint64(masks["requirement"]), np.uint64(0))
    with_policy = bits & np.uint64(masks["policy"])
    first_policy = with_policy & (~with_policy + np.uint64(1))  # lowest set bit = highest precedence
    np.bitwise_or(decided, first_policy, out=decided, where=required & (policy >= 0))
    for e in EXCEPTIONS:
        if masks[f"exception:{e}"]:
            np.bitwise_or(decided, bits & np.uint64(masks[f"exception:{e}"]), out=decided,
                          where=(exceptions & np.uint8(EXC_BIT[e])) != 0)
    notices = bits & (np.uint64(masks["notice"]) | (np.uint64(masks["flags"]) & ~decided))
    return decided, notices
