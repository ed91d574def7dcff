"""Explanations: an evaluation's arrays turned, column by column, into the answers people read.

`Explanation(ev)` is the one explanation path. It works on whole columns of the evaluation: per
classification leaf (met / state / value / margin over every row), the missing inputs of every row
and every licence cell (bitsets over leaf positions, decoded once per distinct bitset), and licence
records built once per distinct cell signature and shared by every cell that has it. The per-row
records of the classify API, the CLI and the pack tests (`classification_record`, `licence_record`),
the `summary` projection, and the compact columns of audit reports (`margins_and_missing`) are all
read from it, so they cannot disagree.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .codes import (
    CONTROLLED,
    ECCN_LABELS,
    HQ_NONE,
    INDETERMINATE,
    NO_LICENCE_REQUIRED,
    NOT_CONTROLLED,
    POLICY_UNKNOWN,
    STATUS_LABELS,
    exception_names,
    policy_label,
)
from .conditions import LeafResult, release_parts, truth_from_leaves
from .evaluate import DERIVED, Evaluation, family_bits
from .rulebook import Rule
from .table import KIND_CODE, KNOWN, MISSING, NOT_APPLICABLE
from .vocabulary import HBM_PACKAGINGS, METRICS, REQUIREMENTS

KIND_NAMES = {v: k for k, v in KIND_CODE.items()}
STATE_NAMES = {KNOWN: "known", MISSING: "missing", NOT_APPLICABLE: "not_applicable"}
SYSTEM = KIND_CODE["system"]
# The fields of the `summary` detail level: a projection of the full answer, at the same paths.
SUMMARY_CLASSIFICATION = ("eccn", "status", "missing")
SUMMARY_LICENCE = ("destination", "requirement", "review_policy", "exceptions", "rule_ids")
_MET = (True, False, None)  # met code -> JSON value
MET_VALUES = _MET
# A paragraph a row meets but is released from: (rule index, paragraph name, release text, met numeric leaf positions).
Released = tuple[int, str, str, tuple[int, ...]]


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() and abs(v) < 2**53 else round(float(v), 6)


_NUMS_PYTHON = 8  # up to this many values, `_num` one by one is cheaper than numpy's fixed costs


def _nums(values: np.ndarray) -> list[float | int]:
    """`_num` over a float column (NaN positions are left as floats; callers never read them)."""
    if len(values) <= _NUMS_PYTHON:
        return [_num(v) for v in values.tolist()]
    with np.errstate(invalid="ignore"):
        integral = (values == np.trunc(values)) & (np.abs(values) < 2**53)
    out = values.astype(object)
    idx = np.nonzero(integral)[0]
    if len(idx):
        out[idx] = values[idx].astype(np.int64).astype(object)
    with np.errstate(invalid="ignore", over="ignore"):
        # A value with at most 6 decimals is its own round(v, 6) (below 1e9, where half an ulp is far
        # below 5e-7); numpy can tell those apart, Python's correctly rounded round() does the rest.
        short = (np.round(values, 6) == values) & (np.abs(values) < 1e9)
    rest = np.nonzero(~integral & ~short & np.isfinite(values))[0]
    if len(rest):
        out[rest] = _round6(values[rest])
    return out.tolist()  # type: ignore[no-any-return]  # tolist() of an object array is typed Any


def _round6(values: np.ndarray) -> list[float]:
    """[round(v, 6) for v in values], the same floats, in numpy where the decision is clear.

    Python rounds v's exact value to 6 decimals (k / 10**6, ties to even) and returns the float nearest
    k / 10**6. Below 1e9, v * 1e6 is within 2**-52 of its exact value relative, so its floor and
    fraction give k unless the fraction is that close to one half; k / 1e6 (exact integer over exact
    1e6, correctly rounded) is then the same float, with v's sign (round(-1e-7, 6) is -0.0). The rest,
    and ties, go through Python's round()."""
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = values * 1e6
        floor = np.floor(scaled)
        frac = scaled - floor
        clear = (np.abs(values) < 1e9) & (np.abs(frac - 0.5) > np.abs(scaled) * 2.0**-50 + 1e-300)
        rounded = np.copysign((floor + (frac > 0.5)) / 1e6, values)
    out = rounded.astype(object)
    unclear = np.nonzero(~clear)[0]
    if len(unclear):
        out[unclear] = [round(v, 6) for v in values[unclear].tolist()]
    return out.tolist()  # type: ignore[no-any-return]  # tolist() of an object array is typed Any


_FACTORIZE_PYTHON = 32  # up to this many rows, a dict of tuples is cheaper than a np.unique per column


def _factorize(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of equal-length integer columns: (first position of each, index per row). Callers
    depend only on rows with equal values sharing an index, not on the order of the distinct rows."""
    n = len(columns[0])
    if n <= _FACTORIZE_PYTHON:
        index: dict[tuple[int, ...], int] = {}
        first_of: list[int] = []
        inverse_of: list[int] = []
        for pos, row in enumerate(zip(*(col.tolist() for col in columns))):
            code = index.get(row)
            if code is None:
                code = index[row] = len(index)
                first_of.append(pos)
            inverse_of.append(code)
        return np.array(first_of, dtype=np.int64), np.array(inverse_of, dtype=np.int64)
    key = np.zeros(n, dtype=np.int64)
    radix = 1
    for col in columns:
        _, codes = np.unique(col, return_inverse=True)
        size = int(codes.max()) + 1 if n else 1
        if radix * size >= 2**62:  # keep the combined key within 64 bits: re-number it first
            _, key = np.unique(key, return_inverse=True)
            radix = int(key.max()) + 1
        key = key * size + codes.reshape(-1)
        radix *= size
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def _bitset_columns(n: int, positions: int) -> np.ndarray:
    return np.zeros((max(1, (positions + 63) // 64), n), dtype=np.uint64)


def _set_bit(words: np.ndarray, position: int, where: np.ndarray) -> None:
    w, b = divmod(position, 64)
    np.bitwise_or(words[w], np.uint64(1 << b), out=words[w], where=where)


def _bit_positions(word_values: Sequence[int]) -> list[int]:
    out = []
    for w, word in enumerate(word_values):
        word = int(word)
        while word:
            low = word & -word
            out.append(w * 64 + low.bit_length() - 1)
            word ^= low
    return out


@dataclass(frozen=True)
class _ClassLeaf:
    """One classification leaf at its position in document order (rule by rule)."""

    position: int
    rule_index: int
    rule: Rule
    leaf: LeafResult

    @property
    def numeric(self) -> bool:
        return self.leaf.values is not None and METRICS[self.leaf.metric].type == "number"

    @property
    def key(self) -> tuple[str, str, Any]:
        return (self.leaf.metric, self.leaf.op, self.leaf.threshold)


class Explanation:
    """Every explanation of one evaluation, computed over whole columns."""

    def __init__(self, ev: Evaluation):
        # A shallow copy (the same arrays), so that the explanation `of` keeps on `ev` does not point back
        # at `ev`: a cycle there lives until the cyclic collector runs, and the classify API pauses it
        # while answers are built (api/gc_pause.py), so under load every batch's arrays piled up.
        self.ev = copy.copy(ev)
        self.table = ev.table
        rules = ev.rules.classification
        self.leaves = [_ClassLeaf(p, ri, rules[ri], leaf) for p, (ri, leaf) in
                       enumerate((ri, leaf) for ri in range(len(rules)) for leaf in ev.class_leaves[ri])]
        self._values: dict[int, tuple[np.ndarray, list[float | int]]] = {}
        self._raw_values: dict[int, tuple[np.ndarray, list[float]]] = {}
        self._margin_columns: dict[int, list[float | int]] = {}
        self._missing: list[tuple[str, ...]] | None = None
        self._leaf_records: dict[int, list[dict[str, Any]]] = {}
        self._licences: list[list[dict[str, Any]]] | None = None
        self._licence_summaries: list[list[dict[str, Any]]] | None = None
        self._reasons: list[str] | None = None
        self._explaining: list[list[int]] | None = None
        self._words: np.ndarray | None = None
        self._released: list[tuple[Released, ...]] | None = None

    @classmethod
    def of(cls, ev: Evaluation) -> "Explanation":
        """The explanation of `ev`, computed once and kept with it."""
        cached = ev.__dict__.get("_explanation")
        if cached is None:
            cached = ev.__dict__["_explanation"] = cls(ev)
        return cached

    # ---- shared columns ----

    def values(self, column: np.ndarray) -> list[float | int]:
        """A metric column as the JSON numbers the API shows (computed once per column)."""
        hit = self._values.get(id(column))
        if hit is None:  # keyed by identity; the column is kept with it so the id stays its own
            hit = self._values[id(column)] = (column, _nums(column))
        return hit[1]

    def missing(self) -> list[tuple[str, ...]]:
        """Per table row: the inputs whose absence left it undecided (empty unless indeterminate)."""
        if self._missing is None:
            ev, n = self.ev, self.table.n
            words = _bitset_columns(n, len(self.leaves))
            indeterminate = ev.status == INDETERMINATE
            rule_unknown = [indeterminate & (ev.decided_by >= ri) & truth.unknown
                            for ri, truth in enumerate(ev.class_truths)]
            for cl in self.leaves:
                if cl.leaf.states is None:  # kind and model leaves are always known
                    continue
                _set_bit(words, cl.position, rule_unknown[cl.rule_index] & cl.leaf.truth.unknown)
            derived = {cl.position for cl in self.leaves if cl.leaf.metric in DERIVED}
            self._missing = self._decode_per_row(words, self._missing_names,
                                                 lambda positions: not derived.intersection(positions))
        return self._missing

    def _missing_names(self, row: int, positions: list[int], done: list[tuple[str, ...]]) -> tuple[str, ...]:
        names: list[str] = []
        for p in positions:
            metric = self.leaves[p].leaf.metric
            if metric in DERIVED:  # a system: name what its undecided parts are missing
                t = self.table
                for c in np.nonzero(t.parent == row)[0]:
                    if self.ev.status[c] == INDETERMINATE:
                        part = str(t.model[c]).split("|")[0]
                        names += [f"components[{part}].{m}" for m in done[int(c)]]
            else:
                names.append(metric)
        return tuple(dict.fromkeys(names))

    def _decode_per_row(self, words: np.ndarray, decode: Callable[[int, list[int], list[Any]], Any],
                        shareable: Callable[[list[int]], bool] | None = None) -> list[Any]:
        """Decode each row's bitset once per distinct bitset; rows whose bitset is not `shareable`
        (a system naming its parts) are decoded one by one, deepest rows first."""
        n = words.shape[1]
        out: list[Any] = [()] * n
        nonzero = np.nonzero(words.any(axis=0))[0]
        if not len(nonzero):
            return out
        sub = words[:, nonzero]
        first, inverse = _factorize(list(sub))
        positions = [_bit_positions(u) for u in sub[:, first].T.tolist()]
        shared = [shareable is None or shareable(ps) for ps in positions]
        decoded: dict[int, Any] = {}
        late = []
        for row, u in zip(nonzero.tolist(), inverse.tolist()):
            if not shared[u]:
                late.append(row)
            elif u in decoded:
                out[row] = decoded[u]
            else:
                out[row] = decoded[u] = decode(row, positions[u], out)
        if late:
            depth = self.table.depth
            for row in sorted(late, key=lambda r: -int(depth[r])):
                out[row] = decode(row, positions[inverse[np.searchsorted(nonzero, row)]], out)
        return out

    # ---- classification ----

    def leaf_records(self, cl: _ClassLeaf, rows: np.ndarray) -> list[dict[str, Any]]:
        """The condition record of leaf `cl` for each of `rows` (shared where rows agree)."""
        leaf, rule = cl.leaf, cl.rule
        static: dict[str, Any] = {"rule_id": rule.id, "eccn": rule.eccn, "path": leaf.path, "metric": leaf.metric,
                                  "op": leaf.op, "threshold": leaf.threshold}
        met = np.where(leaf.truth.t[rows], 0, np.where(leaf.truth.f[rows], 1, 2)).tolist()
        label = {"label": leaf.label} if leaf.label else {}
        if leaf.values is None:  # kind / packaging / model: always known, the value is the product's own
            states_of: list[str] = ["known"] * len(rows)
            names: list[str | None]
            if leaf.metric == "kind":
                names = [KIND_NAMES[k] for k in self.table.kind[rows].tolist()]
            elif leaf.metric == "hbm_packaging":  # an HBM item's packaging; nothing for other kinds
                hbm = (self.table.kind[rows] == KIND_CODE["hbm"]).tolist()
                assert self.table.hbm_packaging is not None  # ProductTable.__post_init__ fills it in
                names = [HBM_PACKAGINGS[p] if h else None
                         for p, h in zip(self.table.hbm_packaging[rows].tolist(), hbm)]
                states_of = ["known" if h else "not_applicable" for h in hbm]
            else:
                names = [m.split("|")[0] for m in self.table.model[rows].tolist()]
            shared: dict[tuple[int, str | None, str], dict[str, Any]] = {}
            out = []
            for m, name, st in zip(met, names, states_of):
                rec = shared.get((m, name, st))
                if rec is None:
                    rec = shared[(m, name, st)] = {**static, "met": _MET[m], **label, "state": st, "value": name}
                out.append(rec)
            return out
        assert leaf.states is not None  # a leaf with values (numeric or bool) has states too
        if METRICS[leaf.metric].type == "bool":
            states = leaf.states[rows].tolist()
            unknown_recs = self._unknown_records(static, label)
            known = {(m, v): {**static, "met": _MET[m], **label, "state": "known", "value": v}
                     for m in range(3) for v in (True, False)}
            raw = leaf.values[rows].tolist()
            return [known[(m, bool(v))] if s == KNOWN else unknown_recs[(m, s)]
                    for m, s, v in zip(met, states, raw)]
        base, values, margins, unknown_recs = self.numeric_leaf_columns(cl)
        states = leaf.states[rows].tolist()
        return [{**base, "met": _MET[m], "state": "known", "value": values[r], "margin": margins[r]} if s == KNOWN
                else unknown_recs[(m, s)]
                for m, s, r in zip(met, states, rows.tolist())]

    @staticmethod
    def _unknown_records(static: dict[str, Any], label: dict[str, Any]) -> dict[tuple[int, int], dict[str, Any]]:
        return {(m, s): {**static, "met": _MET[m], **label, "state": STATE_NAMES[s], "value": None, "margin": None}
                for m in range(3) for s in (MISSING, NOT_APPLICABLE)}

    def numeric_leaf_columns(self, cl: _ClassLeaf) -> tuple[
            dict[str, Any], list[float | int], list[float | int], dict[tuple[int, int], dict[str, Any]]]:
        """The parts of numeric leaf `cl`'s condition records: (the fields every known row's record starts
        with, value per table row, margin per table row, the shared record of each (met code, state) that is
        not known). A known row's record is `{**base, "met": MET_VALUES[met], "state": "known", "value": ...,
        "margin": ...}`, its met code 0 where `cl.leaf.truth.t`, 1 where `.f`, else 2 (`leaf_records`)."""
        leaf, rule = cl.leaf, cl.rule
        assert leaf.values is not None  # numeric leaves carry values
        static: dict[str, Any] = {"rule_id": rule.id, "eccn": rule.eccn, "path": leaf.path, "metric": leaf.metric,
                                  "op": leaf.op, "threshold": leaf.threshold}
        label = {"label": leaf.label} if leaf.label else {}
        return ({**static, **label}, self.values(leaf.values), self._margins(cl.position),
                self._unknown_records(static, label))

    def conditions(self, rows: np.ndarray) -> list[tuple[dict[str, Any], ...]]:
        """Per row of `rows`: every classification leaf's record, in document order."""
        if not self.leaves:
            return [()] * len(rows)
        return list(zip(*(self.leaf_records(cl, rows) for cl in self.leaves)))

    def _explaining_bits(self) -> np.ndarray:
        """Bits per table row, the numeric leaves that explain its status, one per (metric, op, threshold):
        controlled, the met leaves of the deciding rule; not controlled, the failed leaves of every rule."""
        ev, n = self.ev, self.table.n
        words = _bitset_columns(n, len(self.leaves))
        controlled = ev.status == CONTROLLED
        not_controlled = ev.status == NOT_CONTROLLED
        seen_failed: dict[tuple[str, str, Any], np.ndarray] = {}
        seen_in_rule: dict[tuple[str, str, Any], np.ndarray] = {}
        current_rule = -1
        for cl in self.leaves:
            if not cl.numeric:
                continue
            if cl.rule_index != current_rule:
                current_rule, seen_in_rule = cl.rule_index, {}
            leaf = cl.leaf
            known = leaf.states == KNOWN
            met = controlled & (ev.decided_by == cl.rule_index) & leaf.truth.t & known
            failed = not_controlled & leaf.truth.f & known
            key = cl.key
            if key in seen_in_rule:
                met &= ~seen_in_rule[key]
            if key in seen_failed:
                failed &= ~seen_failed[key]
            seen_in_rule[key] = seen_in_rule.get(key, np.zeros(n, dtype=bool)) | met
            seen_failed[key] = seen_failed.get(key, np.zeros(n, dtype=bool)) | failed
            _set_bit(words, cl.position, met | failed)
        return words

    def explaining_leaves(self) -> list[list[int]]:
        """Per table row, the positions of the leaves that explain its status (see _explaining_bits)."""
        if self._explaining is None:
            self._words = self._explaining_bits()
            self._explaining = self._decode_per_row(self._words, lambda row, positions, done: positions)
        return self._explaining

    def released(self) -> list[tuple[Released, ...]]:
        """Per table row: the paragraphs it meets but is released from by a note, as
        ((rule index, paragraph name, release text, met numeric leaf positions), ...); empty for most rows.

        A classification rule whose top-level `all` has children marked `release` (the 3A090 datacenter
        note) releases a not-controlled row when every other child is met and a release child is not.
        """
        if self._released is not None:
            return self._released
        ev, n = self.ev, self.table.n
        not_controlled = ev.status == NOT_CONTROLLED
        words = _bitset_columns(n, len(self.leaves))
        per_rule: dict[int, tuple[np.ndarray, str]] = {}
        for ri, rule in enumerate(ev.rules.classification):
            paragraph, releases = release_parts(rule.when)
            if not releases or not paragraph:
                continue
            sink = ev.class_leaves[ri]
            by_path = {leaf.path: leaf.truth for leaf in sink}
            met = not_controlled.copy()
            for path, node in paragraph:
                met &= truth_from_leaves(node, path, by_path).t
            freed = np.zeros(n, dtype=bool)
            for path, node in releases:
                freed |= truth_from_leaves(node, path, by_path).f
            rows = met & freed
            if not rows.any():
                continue
            per_rule[ri] = (rows, "; ".join(node["release"] for _, node in releases))
            inside = tuple(path + "." for path, _ in paragraph)
            for cl in self.leaves:
                if cl.rule_index == ri and cl.leaf.path.startswith(inside):
                    _set_bit(words, cl.position, rows & cl.leaf.truth.t)
        out: list[tuple[Released, ...]] = [()] * n
        if per_rule:
            positions = self._decode_per_row(words, lambda row, ps, done: ps)
            for row in np.nonzero(np.any([rows for rows, _ in per_rule.values()], axis=0))[0].tolist():
                found = []
                for ri, (rows, text) in per_rule.items():
                    if rows[row]:
                        mine = [p for p in positions[row] if self.leaves[p].rule_index == ri]
                        numeric = {self.leaves[p].key: p for p in reversed(mine) if self.leaves[p].numeric}
                        found.append((ri, self._paragraph_name(ri, mine), text, tuple(sorted(numeric.values()))))
                out[row] = tuple(found)
        self._released = out
        return out

    def _paragraph_name(self, ri: int, positions: list[int]) -> str:
        """'3A090.a.2' from the rule's ECCN and the labels of its met leaves ('a.2'); else the ECCN."""
        eccn = self.ev.rules.classification[ri].eccn or ""
        labels = list(dict.fromkeys(label for p in positions if (label := self.leaves[p].leaf.label)))
        stem, _, letter = eccn.rpartition(".")
        names = [f"{stem}.{lb}" if lb.startswith(letter + ".") else f"{eccn} ({lb})" for lb in labels]
        return " and ".join(names) if names else eccn

    def reasons(self) -> list[str]:
        """Per table row: the sentence that explains its classification."""
        if self._reasons is not None:
            return self._reasons
        ev = self.ev
        rules = ev.rules.classification
        items = self.explaining_leaves()
        missing = self.missing()
        released = self.released()
        status = ev.status.tolist()
        decided_by = ev.decided_by.tolist()
        heads = [f"{r.eccn}: {r.title} [{r.citation}]" for r in rules]
        out = []
        for row in range(self.table.n):
            st, by = status[row], decided_by[row]
            positions = items[row]
            if st == CONTROLLED:
                detail = "; ".join(self._met_text(p, row) for p in positions)
                out.append(heads[by] + (f": {detail}" if detail else ""))
            elif st == INDETERMINATE:
                out.append("cannot decide: missing " + ", ".join(missing[row])
                           + (f" (needed by {rules[by].id})" if by >= 0 else ""))
            elif not rules:
                out.append("no classification rules in force on this date")
            elif released[row]:
                parts = []
                for ri, name, text, met in released[row]:
                    detail = "; ".join(self._met_text(p, row) for p in met)
                    parts.append(f"meets {name}, not controlled: {text} [{rules[ri].citation}]"
                                 + (f" ({detail})" if detail else ""))
                failed = "; ".join(self._failed_text(p, row) for p in positions)
                out.append("; ".join(parts) + (f"; no other paragraph is met: {failed}" if failed else ""))
            else:
                detail = "; ".join(self._failed_text(p, row) for p in positions)
                out.append("no 3A090/4A090 paragraph is met" + (f": {detail}" if detail else ""))
        self._reasons = out
        return out

    def _raw(self, column: np.ndarray) -> list[float]:
        hit = self._raw_values.get(id(column))
        if hit is None:
            hit = self._raw_values[id(column)] = (column, column.tolist())
        return hit[1]

    def _margins(self, position: int) -> list[float | int]:
        """`_num(value - threshold)` of leaf `position` for every row (computed once per leaf)."""
        hit = self._margin_columns.get(position)
        if hit is None:
            leaf = self.leaves[position].leaf
            assert leaf.values is not None  # only numeric leaves (which carry values) have margins
            hit = self._margin_columns[position] = _nums(leaf.values - float(leaf.threshold))
        return hit

    def _met_text(self, position: int, row: int) -> str:
        leaf = self.leaves[position].leaf
        assert leaf.values is not None  # only numeric leaves (which carry values) explain a status
        value = self.values(leaf.values)[row]
        return f"{leaf.metric} {value} {leaf.op} {leaf.threshold} (margin {self._margins(position)[row]:+g})"

    def _failed_text(self, position: int, row: int) -> str:
        leaf = self.leaves[position].leaf
        return f"{leaf.metric} {leaf.op} {leaf.threshold} (margin {self._margins(position)[row]:+g})"

    def metrics(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """Per row of `rows`: every engine metric (None where not known), its TPP source and kind."""
        t = self.table
        names = list(t.values)
        columns = []
        for metric in names:
            known = (t.states[metric][rows] == KNOWN).tolist()
            if metric == "datacenter":
                vals = [bool(v) for v in t.values[metric][rows].tolist()]
            else:
                all_vals = self.values(t.values[metric])
                vals = [all_vals[r] for r in rows.tolist()]
            columns.append([v if k else None for v, k in zip(vals, known)])
        na_codes = np.zeros(len(rows), dtype=np.int64)
        for b, metric in enumerate(names):
            na_codes |= (t.states[metric][rows] == NOT_APPLICABLE).astype(np.int64) << b
        na_lists = {int(c): [m for b, m in enumerate(names) if int(c) >> b & 1] for c in np.unique(na_codes)}
        sources = [t.tpp_source[r] for r in rows.tolist()] if t.tpp_source else [None] * len(rows)
        out = []
        for r, src, na, kind, *vals in zip(rows.tolist(), sources, na_codes.tolist(), t.kind[rows].tolist(),
                                           *columns):
            rec = dict(zip(names, vals))
            rec["tpp_source"] = src
            rec["not_applicable"] = list(na_lists[na])
            rec["kind"] = KIND_NAMES[kind]
            if kind == SYSTEM:
                for m in DERIVED:
                    rec[m] = int(self.ev.derived_values[m][r]) if self.ev.derived_states[m][r] == KNOWN else None
            out.append(rec)
        return out

    def classifications(self, rows: np.ndarray, with_components: bool = True,
                        conditions: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """The full classification record of each table row in `rows`. `conditions`: per row, what to show
        as its conditions instead of the list of `self.conditions(rows)` (the same records, encoded)."""
        ev, t = self.ev, self.table
        rules = ev.rules.classification
        eccn = ECCN_LABELS[ev.eccn[rows]].tolist()
        status = STATUS_LABELS[ev.status[rows]].tolist()
        decided_by = ev.decided_by[rows].tolist()
        if conditions is None:
            conditions = [list(c) for c in self.conditions(rows)]
        missing, reasons = self.missing(), self.reasons()
        metrics = self.metrics(rows)
        out = []
        for r, e, st, by, conds, mets, kind in zip(rows.tolist(), eccn, status, decided_by, conditions, metrics,
                                                    t.kind[rows].tolist()):
            deciding = rules[by] if by >= 0 and st == "controlled" else None
            notes = list(t.notes[r]) if t.notes else []
            if deciding is not None and deciding.compliance_from is not None and ev.as_of < deciding.compliance_from:
                notes.append(compliance_date_text(deciding))
            if deciding is not None and deciding.uncertain:
                notes.append(uncertain_text(deciding))
            rec: dict[str, Any] = {
                "eccn": e, "status": st,
                "rule_id": deciding.id if deciding else None,
                "citation": deciding.citation if deciding else None,
                "reason": reasons[r],
                "conditions": conds,
                "missing": list(missing[r]),
                "metrics": mets,
                "notes": notes,
            }
            if with_components and kind == SYSTEM:
                children = np.nonzero(t.parent == r)[0]
                parts = self.classifications(children)
                rec["components"] = [
                    # no table row index here: it depends on what else was in the batch
                    {"count": int(t.count[c]), "model": str(t.model[c]).split("|")[0],
                     **{k: v for k, v in part.items()
                        if k in ("eccn", "status", "rule_id", "missing", "metrics", "components")}}
                    for c, part in zip(children.tolist(), parts)
                ]
            out.append(rec)
        return out

    def classification_summaries(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """The summary classification record (eccn, status, missing) of each row, shared where equal."""
        eccn = ECCN_LABELS[self.ev.eccn[rows]].tolist()
        status = STATUS_LABELS[self.ev.status[rows]].tolist()
        missing = self.missing()
        shared: dict[tuple[str | None, str, tuple[str, ...]], dict[str, Any]] = {}
        out = []
        for r, e, st in zip(rows.tolist(), eccn, status):
            key = (e, st, missing[r])
            rec = shared.get(key)
            if rec is None:
                rec = shared[key] = {"eccn": e, "status": st, "missing": list(missing[r])}
            out.append(rec)
        return out

    # ---- licences ----

    def licences(self) -> list[list[dict[str, Any]]]:
        """Per top-level product, the licence record of each destination (one dict per distinct cell)."""
        if self._licences is None:
            self._licences = self._licence_grid(self._licence_record)
        return self._licences

    def licence_summaries(self) -> list[list[dict[str, Any]]]:
        """Per top-level product, the summary licence record of each destination."""
        if self._licence_summaries is None:
            self._licence_summaries = self._licence_grid(
                lambda sig: {k: v for k, v in self._licence_record(sig).items() if k in SUMMARY_LICENCE})
        return self._licence_summaries

    def _licence_grid(self, build: Callable[[list[int]], dict[str, Any]]) -> list[list[dict[str, Any]]]:
        ev = self.ev
        k, m = len(self.table.top), len(ev.destinations)
        if not m:
            return [[] for _ in range(k)]
        sig, words = self._cell_signatures()
        stacked = np.concatenate([sig, words], axis=0)  # one column per cell
        first, inverse = _factorize(list(stacked))
        records = np.empty(len(first), dtype=object)
        for u, row in enumerate(stacked[:, first].T.tolist()):
            records[u] = build(row)
        return records[inverse].reshape(k, m).tolist()  # type: ignore[no-any-return]  # tolist() of an object array is typed Any

    def _cell_signatures(self) -> tuple[np.ndarray, np.ndarray]:
        """Per (product, destination) cell, everything its licence record depends on, as integers."""
        ev = self.ev
        requirement, policy, headquarters = ev.requirement, ev.policy, ev.headquarters
        exceptions, rule_bits, flags, notice_bits = ev.exceptions, ev.rule_bits, ev.flags, ev.notice_bits
        assert (requirement is not None and policy is not None and headquarters is not None  # set by evaluate()
                and exceptions is not None and rule_bits is not None and flags is not None and notice_bits is not None)
        k, m = requirement.shape
        shape = (k, m)
        hq_none = np.broadcast_to((headquarters == HQ_NONE).reshape(k, 1), shape)
        sig = np.stack([
            np.broadcast_to(np.arange(m).reshape(1, m), shape).astype(np.uint64),
            requirement.astype(np.int64).astype(np.uint64),
            (policy.astype(np.int64) + 8).astype(np.uint64),
            exceptions.astype(np.uint64),
            rule_bits.astype(np.uint64),
            flags.astype(np.uint64),
            hq_none.astype(np.uint64),
            notice_bits.astype(np.uint64),
            np.broadcast_to(self._possible_families().reshape(k, 1), shape),
        ]).reshape(9, k * m)
        positions = [(li, leaf) for li in range(len(ev.licence_leaves)) for leaf in ev.licence_leaves[li]]
        words = _bitset_columns(k * m, len(positions))
        need = (requirement != NO_LICENCE_REQUIRED) | (policy == POLICY_UNKNOWN)
        rule_unknown = [need & truth.unknown for truth in ev.licence_truths]  # (k, m): broadcast by &
        for p, (li, leaf) in enumerate(positions):
            mask = rule_unknown[li] & leaf.truth.unknown
            if mask.any():
                _set_bit(words, p, mask.reshape(-1))
        self._licence_positions = positions
        return sig, words

    def _possible_families(self) -> np.ndarray:
        """Per top-level product: the model families it only possibly is (a look-alike name), as bits."""
        if not self.ev.rulebook.models.families:
            return np.zeros(len(self.table.top), dtype=np.uint64)
        possible: np.ndarray = family_bits(self.table, self.ev.rulebook)[1][self.table.top]
        return possible.astype(np.uint64)

    def _licence_record(self, sig: list[int]) -> dict[str, Any]:
        ev = self.ev
        j, req_code, pol_code, exc, bits, flags, hq_none, notice_bits, possible = sig[:9]
        pol_code -= 8
        dest = ev.destinations[j]
        groups = ev.rulebook.country_groups
        evaluated_as = groups.resolve(dest)
        req = REQUIREMENTS[req_code]
        matched = [r for li, r in enumerate(ev.rules.licence) if bits >> li & 1]
        names = [("classification" if self._licence_positions[p][1].metric == "eccn"
                  else self._licence_positions[p][1].metric) for p in _bit_positions(sig[9:])]
        missing = list(dict.fromkeys(names))
        notes = []
        if pol_code == POLICY_UNKNOWN and req == "license_required":
            notes.append("review policy depends on a missing input: " + ", ".join(missing))
        if possible and "model_family" in missing:
            models = ev.rulebook.models
            named = ", ".join(f"{name} ({fid})" for name, fid in zip(models.labels(possible), (
                f.id for b, f in enumerate(models.families) if possible >> b & 1)))
            notes.append(f"possible match: {named}: the vendor or name is close to a model a product letter names "
                         "but does not match it exactly; review it, or give the product's family or fix its vendor")
        if hq_none:
            notes.append("end-user headquarters not given: the headquarters rule was not applied")
        if dest != evaluated_as:
            notes.append(f"{dest} is evaluated as {evaluated_as}")
        for li, r in enumerate(ev.rules.licence):  # notices: what the answer must be read with, cited
            if notice_bits >> li & 1:
                notes.append(notice_text(r))
        policy_rule = next((r for r in matched if r.effect.get("review_policy")), None) if pol_code >= 0 else None
        for r in matched:
            if r.compliance_from is not None and ev.as_of < r.compliance_from:
                notes.append(compliance_date_text(r))
            # a policy rule's uncertainty is about its policy: said where it set the answer's policy
            if r.uncertain and (r is policy_rule or not r.effect.get("review_policy")):
                notes.append(uncertain_text(r))
        return {
            "destination": dest,
            "evaluated_as": evaluated_as,
            "country_groups": groups.groups_of(evaluated_as, ev.as_of),
            "requirement": req,
            "review_policy": policy_label(pol_code),
            "exceptions": exception_names(exc),
            "rule_ids": [r.id for r in matched],
            "citations": list(dict.fromkeys(r.citation for r in matched)),
            "rules": [{"id": r.id, "title": r.title, "citation": r.citation, "precedence": r.precedence,
                       "effect": r.effect} for r in matched],
            "flags": [name for b, name in enumerate(ev.flag_names) if flags >> b & 1],
            "missing": missing,
            "notes": notes,
        }

    # ---- compact columns (audit reports) ----

    def margins_and_missing(self) -> tuple[list[str], list[str]]:
        """Compact per-product explanations: controlled, the met numeric leaves of the deciding rule
        (``tpp>=4800:+11032``); not controlled, the failed numeric leaves of every rule in force;
        indeterminate, the missing inputs (``;``-joined)."""
        top = self.table.top
        if self._words is None:
            self._words = self._explaining_bits()
        words = self._words[:, top]
        margins = [""] * len(top)
        for cl in self.leaves:
            w, b = divmod(cl.position, 64)
            idx = np.nonzero(words[w] & np.uint64(1 << b))[0]
            if not len(idx):
                continue
            leaf = cl.leaf
            assert leaf.values is not None  # explaining leaves are numeric ones, which carry values
            prefix = f"{leaf.metric}{leaf.op}{leaf.threshold:g}:"
            diffs = (leaf.values[top[idx]] - float(leaf.threshold)).tolist()
            for i, v in zip(idx.tolist(), diffs):
                text = f"{prefix}{v:+g}"
                margins[i] = text if not margins[i] else margins[i] + ";" + text
        released = self.released()
        for i, row in enumerate(top.tolist()):
            if released[row]:  # a paragraph met but released by its note: say so first, with its margins
                tokens = []
                for _, name, text, met in released[row]:
                    tokens.append(f"meets {name} (not controlled: {text})")
                    for p in met:
                        leaf = self.leaves[p].leaf
                        assert leaf.values is not None  # a released paragraph's met leaves listed here are numeric
                        v = self._raw(leaf.values)[row] - float(leaf.threshold)
                        tokens.append(f"{leaf.metric}{leaf.op}{leaf.threshold:g}:{v:+g}")
                margins[i] = ";".join(tokens + ([margins[i]] if margins[i] else []))
        missing = self.missing()
        return margins, [";".join(missing[row]) for row in top.tolist()]


def notice_text(rule: Rule) -> str:
    """A notice rule in an answer: its note (or title) with its citation and id."""
    text = rule.effect.get("note") or rule.title
    return f"{text} [{rule.citation}] ({rule.id})"


def uncertain_text(rule: Rule) -> str:
    """A deciding rule whose reading our sources leave uncertain."""
    return f"Uncertain ({rule.id}): {rule.uncertain} [{rule.citation}]"


def compliance_date_text(rule: Rule) -> str:
    """A rule in force but not yet due: effective, with a later compliance date."""
    assert rule.compliance_from is not None  # only called for a rule that has one
    return (f"{rule.id} is effective from {rule.effective_from.isoformat()} but its compliance date is "
            f"{rule.compliance_from.isoformat()} [{rule.citation}]")


# ---- the per-row API (CLI, pack tests, engine tests) ----

def classification_record(ev: Evaluation, i: int) -> dict[str, Any]:
    """Full explanation of top-level product i."""
    row = ev.table.top[i:i + 1]
    return Explanation.of(ev).classifications(row)[0]


def licence_record(ev: Evaluation, i: int, j: int) -> dict[str, Any]:
    """Licence determination for top-level product i and destination j."""
    return Explanation.of(ev).licences()[i][j]


def margins_and_missing(ev: Evaluation) -> tuple[list[str], list[str]]:
    """Compact per-product explanation columns of an audit report (see Explanation.margins_and_missing)."""
    return Explanation.of(ev).margins_and_missing()
