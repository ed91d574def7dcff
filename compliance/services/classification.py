"""Classify products: the one use-case behind POST /classify, /classify/batch and the CLI."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Iterator, Sequence

from ..db import Database
from ..engine import build_table, evaluate
from ..engine.errors import InvalidInput, NotFound
from ..engine.explain import Explanation
from ..engine.rulebook import Rulebook
from ..engine.rulebook import normalise as _jsonable
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

    def slice(self, start: int, stop: int) -> list[dict[str, Any]]:
        """The decision of each product in [start, stop)."""
        ex = self.explanation
        rows = ex.table.top[start:stop]
        if self.detail == "summary":
            classifications = ex.classification_summaries(rows)
            licences = ex.licence_summaries()[start:stop]
        else:
            classifications = ex.classifications(rows)
            licences = ex.licences()[start:stop]
        common = {"as_of": self.as_of.isoformat(), "ruleset_revision": self.revision,
                  "rule_version": self.rule_version, "disclaimer": DISCLAIMER}
        return [{"product": {k: v for k in PRODUCT_FIELDS if (v := p.get(k)) is not None},
                 "classification": c, "licences": lic, **common}
                for p, c, lic in zip(self.products[start:stop], classifications, licences)]

    def chunks(self, size: int = 500) -> Iterator[list[dict[str, Any]]]:
        """All decisions, `size` products at a time (a response can stream them with flat memory)."""
        for start in range(0, len(self), size):
            yield self.slice(start, start + size)

    def all(self) -> list[dict[str, Any]]:
        return self.slice(0, len(self))


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



