"""Condition trees: validation against the vocabulary, and three-valued vectorised evaluation.

A condition is `{"all": [...]}`, `{"any": [...]}`, `{"not": {...}}` or a leaf
`{"metric": "tpp", "op": ">=", "value": 4800}`. Any node may carry `label` and `note`. A direct child of
a classification rule's top-level `all` may carry `release: "<why>"`: a note that releases items from
the paragraph its siblings describe (the 3A090 datacenter note), so that an item meeting the paragraph
but released by the note is explained as such (`release_parts`).

Evaluation is Kleene logic over whole columns: every node yields two boolean arrays,
`t` (definitely met) and `f` (definitely not met); a row where neither holds is unknown because an
input is missing. Leaves also yield the actual value and the margin (value - threshold), so the
explanation comes from the same pass as the decision.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, cast

import numpy as np
from numpy.typing import NDArray

from .vocabulary import METRICS, NUMERIC_OPS, OPERATORS

# A condition node as written in a pack (a mapping of JSON values).
Node = dict[str, Any]
BOOL_NODES = ("all", "any", "not")
NODE_KEYS = {"label", "note", "id", "release"}


@dataclass
class Truth:
    """Kleene truth columns: t = definitely true, f = definitely false, else unknown."""

    t: NDArray[np.bool_]
    f: NDArray[np.bool_]

    @property
    def unknown(self) -> NDArray[np.bool_]:
        return ~(self.t | self.f)


@dataclass
class LeafResult:
    """One evaluated leaf: enough to explain every row."""

    path: str
    label: str | None
    metric: str
    op: str
    threshold: Any
    truth: Truth
    values: np.ndarray | None  # numeric leaves only
    states: np.ndarray | None  # numeric/bool leaves only (KNOWN / MISSING / NOT_APPLICABLE)


def validate_condition(node: Any, path: str, groups: set[str] | None = None,
                       families: set[str] | None = None) -> list[str]:
    """Return every problem in a condition tree, each prefixed by its path."""
    errors: list[str] = []
    if not isinstance(node, dict):
        return [f"{path}: must be a mapping with 'all', 'any', 'not' or 'metric'"]
    bool_keys = [k for k in BOOL_NODES if k in node]
    extra = set(node) - NODE_KEYS - set(BOOL_NODES) - {"metric", "op", "value"}
    if extra:
        errors.append(f"{path}: unknown keys {sorted(extra)}")
    if "release" in node and (not isinstance(node["release"], str) or not node["release"].strip()):
        errors.append(f"{path}.release: must be a non-empty text (why the note releases the item)")
    if bool_keys:
        if len(bool_keys) > 1 or "metric" in node:
            errors.append(f"{path}: a node is exactly one of all / any / not / leaf")
            return errors
        key = bool_keys[0]
        child = node[key]
        if key == "not":
            errors += validate_condition(child, f"{path}.not", groups, families)
        elif not isinstance(child, list) or not child:
            errors.append(f"{path}.{key}: must be a non-empty list")
        else:
            for i, c in enumerate(child):
                errors += validate_condition(c, f"{path}.{key}[{i}]", groups, families)
        return errors
    metric = node.get("metric")
    if metric not in METRICS:
        errors.append(f"{path}.metric: unknown metric {metric!r}; known: {', '.join(METRICS)}")
        return errors
    m = METRICS[metric]
    op = node.get("op")
    if op not in OPERATORS[m.type]:
        errors.append(f"{path}.op: {op!r} is not valid for {m.type} metric {metric!r}; "
                      f"use one of {', '.join(OPERATORS[m.type])}")
        return errors
    if "value" not in node:
        errors.append(f"{path}.value: required")
        return errors
    value = node["value"]
    if m.type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{path}.value: must be a number, got {value!r}")
    elif m.type == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}.value: must be true or false, got {value!r}")
    elif m.type == "category":
        vals = value if op in ("in", "not_in") else [value]
        if op in ("in", "not_in") and not isinstance(value, list):
            errors.append(f"{path}.value: must be a list for op {op}")
        else:
            bad = [v for v in vals if v not in m.values]
            if bad:
                errors.append(f"{path}.value: {bad} not in {list(m.values)}")
    elif m.type == "date":
        try:
            date.fromisoformat(str(value))
        except ValueError:
            errors.append(f"{path}.value: must be a date (YYYY-MM-DD), got {value!r}")
    elif m.type == "family":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            errors.append(f"{path}.value: must be a list of model family ids, e.g. [nvidia/h20]")
        elif families is not None:
            bad = [v for v in value if v not in families]
            if bad:
                errors.append(f"{path}.value: unknown model family(s) {bad}; known: {sorted(families)}")
    elif m.type == "text":
        vals = value if isinstance(value, list) else [value]
        if not vals or not all(isinstance(v, str) and v for v in vals):
            errors.append(f"{path}.value: must be a pattern or a list of patterns")
    elif m.type == "country":
        vals = value if isinstance(value, list) else [value]
        if not vals or not all(isinstance(v, str) for v in vals):
            errors.append(f"{path}.value: must be a code or a list of codes")
        elif op in ("in_group", "not_in_group") and groups is not None:
            bad = [v for v in vals if v not in groups]
            if bad:
                errors.append(f"{path}.value: unknown country group(s) {bad}; known: {sorted(groups)}")
        elif op in ("in", "not_in"):
            from .countries import ISO_COUNTRIES

            bad = [v for v in vals if v not in ISO_COUNTRIES]
            if bad:
                errors.append(f"{path}.value: unknown country code(s) {bad}")
    return errors


def leaves(node: Node, path: str = "when") -> list[tuple[str, Node]]:
    """All leaves of a tree with their paths, in document order."""
    if "all" in node or "any" in node:
        key = "all" if "all" in node else "any"
        out: list[tuple[str, Node]] = []
        for i, c in enumerate(node[key]):
            out += leaves(c, f"{path}.{key}[{i}]")
        return out
    if "not" in node:
        return leaves(node["not"], f"{path}.not")
    return [(path, node)]


def release_parts(when: Node) -> tuple[list[tuple[str, Node]], list[tuple[str, Node]]]:
    """(paragraph children, release children) of a top-level `all`, each with its path; ([], []) if none."""
    children = when.get("all") if isinstance(when, dict) else None
    if not isinstance(children, list) or not any(isinstance(c, dict) and "release" in c for c in children):
        return [], []
    parts = [(f"when.all[{i}]", c) for i, c in enumerate(children)]
    return [p for p in parts if "release" not in p[1]], [p for p in parts if "release" in p[1]]


def misplaced_releases(node: Any, path: str = "when", top: bool = True) -> list[str]:
    """Paths of `release` keys anywhere but on a direct child of the top-level `all`."""
    out: list[str] = []
    if not isinstance(node, dict):
        return out
    if "release" in node and not (path.startswith("when.all[") and path.count("[") == 1):
        out.append(f"{path}.release")
    for key in ("all", "any"):
        if isinstance(node.get(key), list):
            out += [p for i, c in enumerate(node[key]) for p in misplaced_releases(c, f"{path}.{key}[{i}]", False)]
    if isinstance(node.get("not"), dict):
        out += misplaced_releases(node["not"], f"{path}.not", False)
    return out


def truth_from_leaves(node: Node, path: str, leaf_truth: dict[str, Truth]) -> Truth:
    """Recombine a (sub)tree's Kleene truth from its evaluated leaves (by path): no metric is read again."""
    if "all" in node or "any" in node:
        is_all = "all" in node
        key = "all" if is_all else "any"
        parts = [truth_from_leaves(c, f"{path}.{key}[{i}]", leaf_truth) for i, c in enumerate(node[key])]
        t, f = parts[0].t, parts[0].f
        for p in parts[1:]:
            t, f = (t & p.t, f | p.f) if is_all else (t | p.t, f & p.f)
        return Truth(t, f)
    if "not" in node:
        inner = truth_from_leaves(node["not"], f"{path}.not", leaf_truth)
        return Truth(inner.f, inner.t)
    return leaf_truth[path]


# A leaf's (truth, values, states): values and states only for numeric/bool leaves.
LeafOutput = tuple[Truth, np.ndarray | None, np.ndarray | None]
LeafFn = Callable[[Node], LeafOutput]


def evaluate_condition(node: Node, leaf_fn: LeafFn, sink: list[LeafResult] | None = None,
                       path: str = "when") -> Truth:
    """Evaluate a tree with `leaf_fn` for leaves; append each leaf's result to `sink`."""
    if "all" in node or "any" in node:
        is_all = "all" in node
        parts = [evaluate_condition(c, leaf_fn, sink, f"{path}.{'all' if is_all else 'any'}[{i}]")
                 for i, c in enumerate(node["all" if is_all else "any"])]
        shape = parts[0].t.shape
        if all(p.t.shape == shape for p in parts):  # one shape (the usual case): fold in order
            t, f = parts[0].t, parts[0].f
            for p in parts[1:]:  # not in place: leaf results are cached and shared
                t, f = (t & p.t, f | p.f) if is_all else (t | p.t, f & p.f)
            return Truth(t, f)
        # Kleene and/or are commutative and associative, so combine operands of the same shape first:
        # (k, 1) product columns with each other and (1, m) destination rows with each other, and
        # broadcast to (k, m) once at the end rather than at every step.
        by_shape: dict[tuple[int, ...], list[Truth]] = {}
        for p in parts:
            by_shape.setdefault(p.t.shape, []).append(p)
        combined = []
        for group in sorted(by_shape.values(), key=lambda g: g[0].t.size):
            t, f = group[0].t, group[0].f
            for p in group[1:]:  # not in place: leaf results are cached and shared
                t, f = (t & p.t, f | p.f) if is_all else (t | p.t, f & p.f)
            combined.append((t, f))
        t, f = combined[0]
        for pt, pf in combined[1:]:
            t, f = (t & pt, f | pf) if is_all else (t | pt, f & pf)
        return Truth(t, f)
    if "not" in node:
        inner = evaluate_condition(node["not"], leaf_fn, sink, f"{path}.not")
        return Truth(inner.f, inner.t)
    truth, values, states = leaf_fn(node)
    if sink is not None:
        sink.append(LeafResult(path, node.get("label"), node["metric"], node["op"], node["value"],
                               truth, values, states))
    return truth


def compare(values: np.ndarray, op: str, threshold: float) -> NDArray[np.bool_]:
    """Vectorised numeric comparison (NaN compares false)."""
    with np.errstate(invalid="ignore"):
        if op == ">=":
            return values >= threshold
        if op == ">":
            return values > threshold
        if op == "<":
            return values < threshold
        if op == "<=":
            return values <= threshold
        if op == "==":
            return cast("NDArray[np.bool_]", values == threshold)  # ndarray's __eq__ is typed as object's
        if op == "!=":
            return cast("NDArray[np.bool_]", values != threshold)  # ndarray's __ne__ is typed as object's
    raise ValueError(op)


def margin_of(values: np.ndarray, threshold: float) -> np.ndarray:
    """Margin = value - threshold (positive means above the threshold)."""
    return values - threshold


__all__ = ["Truth", "LeafResult", "validate_condition", "evaluate_condition", "leaves", "compare",
           "margin_of", "NUMERIC_OPS", "release_parts", "misplaced_releases", "truth_from_leaves"]
