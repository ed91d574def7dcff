"""The rules API's schemas declare every field the services send: a dump drops undeclared fields, so for
each service answer the schema's dump must equal the answer itself (nothing silently lost)."""
from __future__ import annotations

import copy
import dataclasses
import json
from datetime import date

from compliance.engine import describe_vocabulary, load_rulebook_content
from compliance.schemas.admin_rules import (
    ContentDiffSchema,
    DraftSchema,
    ImpactPreviewSchema,
    PublishedSchema,
    RunSchema,
    ValidationReportSchema,
    VersionDetailSchema,
    VersionDiffSchema,
    VersionSchema,
)
from compliance.schemas.rules import RulePackSchema, RuleSchema, VocabularySchema
from compliance.services import rule_diff, rule_drafts, rule_publish, rule_versions
from compliance.services.reevaluation import get_run, list_runs
from compliance.tasks import wait_for_embedded_jobs
from tests.rulehelpers import H20_APRIL_2025_OVERLAY, ROOT, make_scenario_catalogue, rules_without_h20_packs


def _json(value):
    return json.loads(json.dumps(value))


def assert_dumps_whole(schema, answer) -> None:
    """`schema` dumps `answer` to the same JSON: every key it sends is declared."""
    dumped, raw = _json(schema.dump(answer)), _json(answer)
    assert dumped == raw, {k: raw[k] for k in set(raw) - set(dumped)} if isinstance(raw, dict) else raw


def test_every_draft_version_preview_publish_and_run_answer_is_declared(make_app, tmp_path):
    # A share of 1 lets an unconfirmed publish through: its answer then carries the dry run's impact.
    app = make_app(RULES_DIR=rules_without_h20_packs(tmp_path), STORM_GUARD_SHARE="1")
    make_scenario_catalogue(app)
    db = app.extensions["db"]

    draft = rule_drafts.create_draft(db, "tests", title="schemas")
    assert_dumps_whole(DraftSchema(), draft)
    edited = rule_drafts.apply_edits(db, draft["id"], [H20_APRIL_2025_OVERLAY], "tests")
    assert edited["validation"]["valid"] and "revision" in edited["validation"]
    assert_dumps_whole(DraftSchema(), edited)
    assert_dumps_whole(DraftSchema(), rule_drafts.get_draft(db, draft["id"]))
    assert_dumps_whole(ValidationReportSchema(), rule_drafts.validate_draft(db, draft["id"]))
    preview = rule_publish.preview_draft(app, draft["id"], item_limit=2)
    assert preview["catalogues"][0]["items_truncated"] and preview["catalogues"][0]["transitions"]
    assert_dumps_whole(ImpactPreviewSchema(), preview)

    broken = rule_drafts.create_draft(db, "tests", title="broken")
    content = copy.deepcopy(edited["content"])
    content["packs"][0]["rules"][0]["effective_from"] = "2024-13-45"
    invalid = rule_drafts.replace_content(db, broken["id"], content, "tests")
    assert invalid["validation"]["tests"] is None and invalid["validation"]["errors"]
    assert_dumps_whole(DraftSchema(), invalid)
    assert_dumps_whole(ValidationReportSchema(), rule_drafts.validate_draft(db, broken["id"]))
    assert_dumps_whole(DraftSchema(), rule_drafts.discard_draft(db, broken["id"], "tests"))
    for item in rule_drafts.list_drafts(db):
        assert_dumps_whole(DraftSchema(), item)

    published = rule_publish.publish_draft(app, draft["id"], "tests", "schemas")
    assert "impact" in published
    assert_dumps_whole(PublishedSchema(), published)
    assert_dumps_whole(RunSchema(), get_run(db, published["run_id"]))  # pending or already done
    wait_for_embedded_jobs(app)
    rollback = rule_publish.rollback_to(app, 1, "tests", "undo", confirm=True)
    assert "impact" not in rollback
    assert_dumps_whole(PublishedSchema(), rollback)
    wait_for_embedded_jobs(app)
    runs = list_runs(db).items
    assert [r["status"] for r in runs] == ["done", "done"] and runs[0]["counts"]["transitions"]
    for run in runs:
        assert_dumps_whole(RunSchema(), run)
    for version in rule_versions.list_versions(db):
        assert_dumps_whole(VersionSchema(), version)
    assert_dumps_whole(VersionDetailSchema(), rule_versions.version_detail(db, 2))
    assert_dumps_whole(VersionDiffSchema(), rule_diff.diff_versions(db, 1, 2))


def test_a_diff_of_every_kind_of_change_is_declared():
    old = load_rulebook_content(ROOT / "rules")
    new = copy.deepcopy(old)
    groups = new["country_groups"]["groups"]
    first, second, *_ = sorted(groups)
    groups.pop(first)                                               # a group removed
    groups["Z:1"] = {"members": ["CN", {"country": "RU", "from": "2024-01-01"}]}  # one added, with a dated entry
    groups[second]["members"] = list(groups[second]["members"])[1:] + ["KP"]    # one changed
    groups[second]["note"] = "changed"
    new["country_groups"]["aliases"] = {"MO": "CN"}                 # aliases added, removed
    pack = new["packs"][0]
    pack["title"] += " (revised)"                                   # a pack field
    pack["tests"] = (pack.get("tests") or [])[1:]                   # its tests
    moved = pack["rules"].pop()                                     # a rule moved to another pack
    new["packs"][1]["rules"].append(moved)
    new["packs"].pop()                                              # a pack removed
    diff = rule_diff.diff_contents(old, new)
    kinds = {g["change"] for g in diff["country_groups"]}
    assert kinds == {"added", "removed", "changed"} and diff["packs"]["changed"] and diff["packs"]["removed"]
    assert diff["rules"]["changed"] and diff["rules"]["removed"] and diff["aliases"]["added"]
    assert_dumps_whole(ContentDiffSchema(), diff)


def test_rules_packs_and_vocabulary_are_declared(app):
    _, rulebook = app.extensions["rulebooks"].current()
    for rule in rulebook.rules:
        assert_dumps_whole(RuleSchema(), rule.describe())
    # A rule with every optional attribute set describes itself with exactly the schema's fields.
    full = dataclasses.replace(next(r for r in rulebook.rules if r.kind == "licence"), eccn="3A090.a",
                               notes="n", source_url="https://example.org/rule", compliance_from=date(2025, 1, 1),
                               uncertain="u", effective_to=date(2026, 1, 1))
    assert set(full.describe()) == set(RuleSchema().fields)
    assert_dumps_whole(RuleSchema(), full.describe())
    for pack in rulebook.packs:
        view = {k: pack.get(k) for k in RulePackSchema().fields if k != "rules"} | {
            "rules": [r["id"] for r in pack["rules"]]}
        assert_dumps_whole(RulePackSchema(), view)
    vocabulary = describe_vocabulary()
    assert any("values" in m for m in vocabulary["metrics"]) and not all("values" in m for m in vocabulary["metrics"])
    assert_dumps_whole(VocabularySchema(), vocabulary)
