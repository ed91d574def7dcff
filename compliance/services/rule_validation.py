"""The validity of rulebook content: schema errors with their paths, pack test failures (pure: no database)."""
from __future__ import annotations

import logging
from typing import Any

from ..engine import Rulebook, RulebookInvalid
from ..engine.packtests import run_pack_tests

log = logging.getLogger(__name__)


def build_rulebook(content: Any) -> Rulebook:
    """Rulebook(content), where a validator crash on malformed input is a 422, never a 500."""
    try:
        return Rulebook(content)
    except RulebookInvalid:
        raise
    except (TypeError, AttributeError, KeyError, ValueError, IndexError) as exc:
        # The engine's validators assume some shapes (e.g. group members as strings or mappings).
        log.info("malformed rulebook content: %r", exc)
        raise RulebookInvalid([f"content: malformed rulebook ({type(exc).__name__}: {exc}); "
                               "check the shapes of packs, rules and country_groups"]) from None


def validate_content(content: Any) -> dict[str, Any]:
    """Schema errors (with paths) and pack test failures, all at once."""
    try:
        rulebook = build_rulebook(content)
    except RulebookInvalid as exc:
        return {"valid": False, "errors": list(exc.errors), "tests": None}
    results = run_pack_tests(rulebook)
    failures = [f"packs({r.pack}).tests[{r.name}]: {f}" for r in results for f in r.failures]
    return {"valid": not failures, "errors": failures, "revision": rulebook.revision,
            "tests": {"passed": sum(r.passed for r in results), "failed": sum(not r.passed for r in results)}}

def validated_rulebook(content: dict) -> Rulebook:
    """The Rulebook of valid content; RulebookInvalid (422) with every error otherwise."""
    report = validate_content(content)
    if not report["valid"]:
        raise RulebookInvalid(report["errors"])
    return build_rulebook(content)
