"""A run recorded while the broker was unreachable (publish committed, chunk tasks never sent) is sent by
the sweeper and completes."""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from compliance.models import ChangeRecord, ReevaluationChunk, ReevaluationRun, RuleVersion
from compliance.services import rule_drafts, rule_validation
from compliance.services.reevaluation import create_run
from compliance.tasks import wait_for_embedded_jobs
from tests.rulehelpers import H20_APRIL_2025_OVERLAY, make_scenario_catalogue, rules_without_h20_packs


def test_the_sweeper_finishes_a_run_whose_enqueue_failed(make_app, tmp_path):
    app = make_app(RULES_DIR=rules_without_h20_packs(tmp_path), AUDIT_CHUNK_SIZE="2")
    db = app.extensions["db"]
    make_scenario_catalogue(app)
    d = rule_drafts.create_draft(db, "admin")
    rule_drafts.apply_edits(db, d["id"], [H20_APRIL_2025_OVERLAY], "admin")
    content = rule_drafts.get_draft(db, d["id"])["content"]
    sender, db.sender = db.sender, None  # the broker is down: sending after commit fails
    try:
        with db.session() as s:
            v1 = s.scalar(select(RuleVersion).where(RuleVersion.number == 1))
            v2 = RuleVersion(number=2, revision=rule_validation.build_rulebook(content).revision, parent_id=v1.id, author="a",
                             reason="r", content=content)
            s.add(v2)
            s.flush()
            run_id = create_run(s, v1.id, v2.id, date(2025, 4, 9), 2).id
    finally:
        db.sender = sender
    wait_for_embedded_jobs(app)
    with db.session() as s:
        assert s.get(ReevaluationRun, run_id).status == "pending"
        unsent = s.scalar(select(func.count()).select_from(ReevaluationChunk).where(
            ReevaluationChunk.run_id == run_id, ReevaluationChunk.enqueued_at.is_(None)))
    assert unsent >= 2  # recorded as not sent
    out = app.extensions["celery"].tasks["compliance.sweep"].apply().result
    assert out["reevaluations"] == {"finalized": 0, "enqueued_chunks": unsent}
    wait_for_embedded_jobs(app)
    with db.session() as s:
        assert s.get(ReevaluationRun, run_id).status == "done"
        assert s.scalar(select(func.count()).select_from(ChangeRecord)) == 4  # H20 x CN, HK, MO, RU
    assert app.extensions["celery"].tasks["compliance.sweep"].apply().result["reevaluations"] == {"finalized": 0, "enqueued_chunks": 0}
