"""Classify products: the one use-case behind POST /classify, /classify/batch and the CLI."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from typing import Any, Iterator, Sequence

import numpy as np
import orjson

from ..db import Database
from ..engine import build_table, evaluate
from ..engine.errors import InvalidInput, NotFound
from ..engine.explain import MET_VALUES, Explanation
from ..engine.rulebook import Rulebook
from ..engine.rulebook import normalise as _jsonable
from ..engine.table import KNOWN, MISSING, NOT_APPLICABLE
from ..models import DecisionRecord, RuleVersion
from .committed import TimedCache, watch
from .rulebooks import RulebookStore

DISCLAIMER = ("Automated screening against encoded US export rules; not legal advice. "
              "Verify against the current EAR before exporting.")
DETAILS = ("full", "summary")
PRODUCT_FIELDS = ("sku", "name", "vendor", "kind")


@dataclass
class Decisions:
    """The decisions of one evaluated table, built column-wise from its explanation, read in slices."""

    explanation: Explanation
    products: Sequence[dict[str, Any]]
    as_of: date
    revision: str
    rule_version: int
    detail: str = "full"

    def __len__(self) -> int:
        return len(self.products)

    def slice(self, start: int, stop: int, encoded: bool = False) -> list[dict[str, Any]]:
        """The decision of each product in [start, stop).

        `encoded`: for an answer that is only encoded (the streamed batch): parts that many products share
        (a product's licence records: a 10,000-product batch has a few dozen distinct lists) and the
        condition records (built a column at a time, `_encoded_conditions`) are spliced in already
        encoded (`orjson.Fragment`). The bytes are the same as encoding the plain decisions
        (tests/services/test_encoded_decisions.py)."""
        ex = self.explanation
        rows = ex.table.top[start:stop]
        if self.detail == "summary":
            classifications = ex.classification_summaries(rows)
            licences = ex.licence_summaries()[start:stop]
        else:
            classifications = ex.classifications(rows, conditions=_encoded_conditions(ex, rows) if encoded else None)
            licences = ex.licences()[start:stop]
        if encoded:
            licences = self._encoded_lists(licences)
        common = {"as_of": self.as_of.isoformat(), "ruleset_revision": self.revision,
                  "rule_version": self.rule_version, "disclaimer": DISCLAIMER}
        return [{"product": {k: v for k in PRODUCT_FIELDS if (v := p.get(k)) is not None},
                 "classification": c, "licences": lic, **common}
                for p, c, lic in zip(self.products[start:stop], classifications, licences)]

    def _encoded_lists(self, lists: list[list[dict[str, Any]]]) -> list[Any]:
        """Each list of shared records encoded once (by the records' identities: the explanation keeps
        every record it handed out alive, so an identity stays its record's)."""
        memo = self.__dict__.setdefault("_list_fragments", {})
        out = []
        for lst in lists:
            key = tuple(map(id, lst))
            hit = memo.get(key)
            if hit is None:
                hit = memo[key] = orjson.Fragment(_dumps(lst))
            out.append(hit)
        return out

    def chunks(self, size: int = 500, encoded: bool = False) -> Iterator[list[dict[str, Any]]]:
        """All decisions, `size` products at a time (a response can stream them with flat memory);
        `encoded`: for encoding only (see `slice`)."""
        for start in range(0, len(self), size):
            yield self.slice(start, start + size, encoded)

    def all(self) -> list[dict[str, Any]]:
        return self.slice(0, len(self))


_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _default(value: Any) -> Any:  # as api/encoding.py's: rule values are JSON, dates and sets at most
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=_OPTIONS)


_VALUE, _MARGIN = "\x00value", "\x00margin"  # placeholders in a record template (no real value is a string)


def _template(record: dict[str, Any]) -> bytes:
    """`record` encoded as a %-format taking (value, margin) encodings for its placeholders; a record
    without them (a shared unknown one) takes both and shows neither (%.0b)."""
    enc = _dumps(record).replace(b"%", b"%%")
    value_mark, margin_mark = _dumps(_VALUE), _dumps(_MARGIN)
    if value_mark in enc:
        return enc.replace(value_mark, b"%b").replace(margin_mark, b"%b")
    return enc + b"%.0b%.0b"


def _encoded_conditions(ex: Explanation, rows: np.ndarray) -> list[orjson.Fragment]:
    """Per row, its condition records (`ex.conditions(rows)`) as one encoded JSON array, built a leaf at a
    time with C-level passes: a numeric leaf's record is one of a few templates (per met code and state)
    filled with the row's value and margin, whose encodings come from one `orjson.dumps` of the column; a
    record many rows share (kind, model, bool leaves) is encoded once."""
    if not len(rows):
        return []
    if not ex.leaves:
        return [orjson.Fragment(b"[]")] * len(rows)
    pick = itemgetter(*rows.tolist()) if len(rows) > 1 else (lambda seq: (seq[int(rows[0])],))
    columns: list[list[bytes]] = []
    for cl in ex.leaves:
        if cl.numeric:
            base, values, margins, unknown = ex.numeric_leaf_columns(cl)
            leaf = cl.leaf
            templates = np.empty(3 * 3, dtype=object)  # by met code * 3 + state
            for m in range(3):
                templates[m * 3 + KNOWN] = _template({**base, "met": MET_VALUES[m], "state": "known",
                                                      "value": _VALUE, "margin": _MARGIN})
                for state in (MISSING, NOT_APPLICABLE):
                    templates[m * 3 + state] = _template(unknown[(m, state)])
            met = np.where(leaf.truth.t[rows], 0, np.where(leaf.truth.f[rows], 1, 2))
            per_row = templates[met * 3 + leaf.states[rows]].tolist()
            v_enc = _dumps(pick(values))[1:-1].split(b",")
            g_enc = _dumps(pick(margins))[1:-1].split(b",")
            columns.append(list(map(bytes.__mod__, per_row, zip(v_enc, g_enc))))
        else:
            records = ex.leaf_records(cl, rows)  # shared records, all alive in the list: ids are theirs
            ids = list(map(id, records))
            encoded: dict[int, bytes] = {}
            for i, rec in dict(zip(ids, records)).items():
                encoded[i] = _dumps(rec)
            columns.append(list(map(encoded.__getitem__, ids)))
    return [orjson.Fragment(b"[" + b",".join(parts) + b"]") for parts in zip(*columns)]


CLASSIFIED_OBSERVERS: list = []
# The current rule version (number and Rulebook; or the version of a given revision) is kept for
# RULE_VERSION_CACHE_SECONDS (services/committed.py): a publish through this process is seen by the next
# classification (the commit that adds the version drops the entries); a publish from another process
# (another web worker, the CLI) within RULE_VERSION_CACHE_SECONDS.
RULE_VERSION_CACHE_SECONDS = 2.0
RULE_VERSIONS_CHANGED = watch(RuleVersion)
_current: TimedCache[tuple[int, Rulebook]] = TimedCache(RULE_VERSION_CACHE_SECONDS, RULE_VERSIONS_CHANGED)


def current_rulebook(store: RulebookStore, revision: str | None = None) -> tuple[int, Rulebook]:
    """`store.current_rulebook(revision)`, kept for a moment (see RULE_VERSION_CACHE_SECONDS)."""
    hit = _current.get(store, revision)
    if hit is not None:
        return hit
    token = _current.begin()
    found = store.current_rulebook(revision)
    _current.put(store, revision, found, token)
    return found


def classify_products(
    store: RulebookStore,
    products: Sequence[dict[str, Any]],
    as_of: date,
    destinations: Sequence[str] = (),
    headquarters: str | None = None,
    revision: str | None = None,
    detail: str = "full",
    transaction_type: str = "export",
) -> Decisions:
    """Evaluate products as one table; their decisions, with the rule version that decided them."""
    if detail not in DETAILS:
        raise InvalidInput(f"detail must be one of {', '.join(DETAILS)}", {"detail": [f"must be one of {DETAILS}"]})
    number, rulebook = current_rulebook(store, revision)
    dests = list(dict.fromkeys(destinations))
    result = evaluate(build_table(products), rulebook, as_of, dests, headquarters, transaction_type)
    for observe in CLASSIFIED_OBSERVERS:  # metrics (compliance/metrics.py) count products classified
        observe(len(products))
    return Decisions(Explanation.of(result), products, as_of, rulebook.revision, number, detail)


def record_decisions(db: Database, options: dict[str, Any], products: Sequence[dict[str, Any]],
                     decisions: list[dict[str, Any]], actor: str) -> None:
    """Store a decision record per product (its full spec, the options, the answer) and add its id."""
    with db.session() as s:
        records = [DecisionRecord(actor=actor, as_of=date.fromisoformat(d["as_of"]),
                                  ruleset_revision=d["ruleset_revision"],
                                  request=_jsonable({**options, "product": p}), response=d)
                   for p, d in zip(products, decisions)]
        s.add_all(records)
        s.flush()
        for d, rec in zip(decisions, records):
            d["decision_id"] = rec.id


def get_decision(db: Database, decision_id: int) -> DecisionRecord:
    """A stored decision record; 404 if there is none."""
    with db.session() as s:
        rec = s.get(DecisionRecord, decision_id)
        if rec is None:
            raise NotFound(f"no decision {decision_id}")
        s.expunge(rec)
        return rec


def check_batch_size(n: int, limit: int) -> None:
    if n > limit:
        raise InvalidInput(f"too many products: {n} > {limit}",
                           {"products": [f"at most {limit} products per call, got {n}"]})



