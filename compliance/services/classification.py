"""Classify products: the one use-case behind POST /classify, /classify/batch and the CLI."""
from __future__ import annotations

from datetime import date
from typing import Any, Sequence

from ..db import Database
from ..engine import build_table, evaluate
from ..engine.errors import InvalidInput
from ..engine.explain import classification_record, licence_record
from ..engine.rulebook import normalise as _jsonable
from ..models import DecisionRecord
from .rulebooks import RulebookStore

DISCLAIMER = ("Automated screening against encoded US export rules; not legal advice. "
              "Verify against the current EAR before exporting.")


def classify_products(
    store: RulebookStore,
    products: Sequence[dict[str, Any]],
    as_of: date,
    destinations: Sequence[str] = (),
    headquarters: str | None = None,
    revision: str | None = None,
) -> tuple[list[dict[str, Any]], Any]:
    """Evaluate products as one table; return one decision dict per product and the rule version."""
    version, rulebook = store.current(revision)
    dests = list(dict.fromkeys(destinations))
    result = evaluate(build_table(products), rulebook, as_of, dests, headquarters)
    decisions = []
    for i, product in enumerate(products):
        decisions.append({
            "product": {k: product.get(k) for k in ("sku", "name", "vendor", "kind") if product.get(k) is not None},
            "classification": classification_record(result, i),
            "licences": [licence_record(result, i, j) for j in range(len(dests))],
            "as_of": as_of.isoformat(),
            "ruleset_revision": rulebook.revision,
            "rule_version": version.number,
            "disclaimer": DISCLAIMER,
        })
    return decisions, version


def record_decision(db: Database, request: dict[str, Any], decision: dict[str, Any], actor: str) -> int:
    """Store a decision record (request + response + revision) and return its id."""
    with db.session() as s:
        rec = DecisionRecord(actor=actor, as_of=date.fromisoformat(decision["as_of"]),
                             ruleset_revision=decision["ruleset_revision"], request=_jsonable(request),
                             response=decision)
        s.add(rec)
        s.flush()
        return rec.id


def check_batch_size(n: int, limit: int) -> None:
    if n > limit:
        raise InvalidInput(f"too many products: {n} > {limit}",
                           {"products": [f"at most {limit} products per call, got {n}"]})

