"""GET /rules (in force on a date, plus history) and GET /rules/vocabulary."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from marshmallow import RAISE

from ..auth import require_role
from ..engine import describe_vocabulary
from ..schemas.common import ErrorSchema
from ..schemas.rules import RulesInForceSchema, RulesQuerySchema, VocabularySchema
from .blueprint import Blueprint

blp = Blueprint("rules", __name__, url_prefix="/api/v1", description="Rule versions in force and their history")


@blp.route("/rules")
class Rules(MethodView):
    @require_role("viewer")
    @blp.arguments(RulesQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, RulesInForceSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No published version has that ruleset_revision")
    def get(self, query):
        """The rules in force on a date (with citations), every rule's effective dates, and the packs."""
        version, rulebook = current_app.extensions["rulebooks"].current(query.get("ruleset_revision"))
        as_of = query["as_of"]
        live = rulebook.in_force(as_of)
        kind = query.get("kind")
        in_force = [r.describe() for r in live.classification + live.licence if not kind or r.kind == kind]
        out = {
            "as_of": as_of,
            "rule_version": version.number,
            "ruleset_revision": rulebook.revision,
            "in_force": in_force,
            "country_groups": {g: rulebook.country_groups.members(g, as_of) for g in rulebook.country_groups.names},
            "country_aliases": rulebook.country_groups.aliases,
            "packs": [{k: p.get(k) for k in ("id", "title", "citation", "published", "effective_from",
                                            "source_url", "status", "notes")} | {"rules": [r["id"] for r in p["rules"]]}
                      for p in rulebook.packs],
        }
        if query["history"]:
            out["history"] = sorted((r.describe() for r in rulebook.rules if not kind or r.kind == kind),
                                    key=lambda r: (r["effective_from"], r["id"]))
        return out


@blp.route("/rules/vocabulary")
class Vocabulary(MethodView):
    @require_role("viewer")
    @blp.response(200, VocabularySchema)
    def get(self):
        """Metrics, operators, formats and result values that rules and products may use."""
        return describe_vocabulary()
