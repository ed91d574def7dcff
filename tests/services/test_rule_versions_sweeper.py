"""A run left pending by a crash (publish committed, enqueue lost) is restarted by the sweeper."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update

from compliance.models import ChangeRecord, ReevaluationRun, RuleVersion
from compliance.services import rule_versions as rv
from compliance.tasks import sweep, wait_for_embedded_jobs
from tests.rulehelpers import H20_APRIL_2025_OVERLAY, make_scenario_catalogue, rules_without_h20_packs


def test_the_sweeper_finishes_a_run_whose_enqueue_was_lost(make_app, tmp_path):
    app = make_app(RULES_DIR=rules_without_h20_packs(tmp_path))
    db = app.extensions["db"]
    make_scenario_catalogue(app)
    d = rv.create_draft(db, "admin")
    rv.apply_edits(db, d["id"], [H20_APRIL_2025_OVERLAY], "admin")
    content = rv.get_draft(db, d["id"])["content"]
    # Simulate "committed but never enqueued": insert version 2 and a pending run directly.
    with db.session() as s:
        v1 = s.scalar(select(RuleVersion).where(RuleVersion.number == 1))
        v2 = RuleVersion(number=2, revision=rv.build_rulebook(content).revision, parent_id=v1.id, author="a",
                         reason="r", content=content)
        s.add(v2)
        s.flush()
        run = ReevaluationRun(from_version_id=v1.id, to_version_id=v2.id, as_of=datetime(2025, 4, 9).date())
        s.add(run)
        s.flush()
        run_id = run.id
    assert sweep.apply().result["sweep_reevaluations"] == []  # too recent to be considered stalled
    with db.session() as s:
        s.execute(update(ReevaluationRun).values(created_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    assert sweep.apply().result["sweep_reevaluations"] == [run_id]
    wait_for_embedded_jobs()
    with db.session() as s:
        assert s.get(ReevaluationRun, run_id).status == "done"
        assert s.scalar(select(func.count()).select_from(ChangeRecord)) == 4  # H20 x CN, HK, MO, RU
