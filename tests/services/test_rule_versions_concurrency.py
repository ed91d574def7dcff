"""Two admins publish at the same moment from drafts on the same base (PostgreSQL): one wins, the other
gets 409, and nothing is half-applied."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from compliance.models import ReevaluationRun, RuleDraft, RuleVersion
from compliance.services.catalogues import create_catalogue, upsert_products
from compliance.tasks import wait_for_embedded_jobs
from tests.conftest import H20, H100

OPS_A = [{"op": "set_threshold", "rule_id": "us-2023-10.3a090.a", "path": "when.all[1].any[0]", "value": 4810}]
OPS_B = [{"op": "set_threshold", "rule_id": "us-2023-10.3a090.a", "path": "when.all[1].any[0]", "value": 4820}]


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_publishes_one_wins_the_other_gets_409_and_nothing_is_half_applied(
        make_app, pg_url, headers_for, round_):
    # STORM_GUARD_SHARE=1: the guard never trips, but each publish still runs its impact preview
    # between reading the current version and inserting, which widens the race window.
    app = make_app(DATABASE_URL=pg_url, STORM_GUARD_SHARE="1")
    db = app.extensions["db"]
    cat = create_catalogue(db, "c", destinations=["CN", "DE"])
    upsert_products(db, cat.id, [dict(H20, sku=f"H20-{i}") for i in range(200)] + [dict(H100, sku="H100")])
    admins = [headers_for(app, "admin"), headers_for(app, "admin")]
    drafts = []
    for h, ops in zip(admins, (OPS_A, OPS_B)):
        client = app.test_client()
        d = client.post("/api/v1/rules/drafts", json={}, headers=h).json
        assert client.patch(f"/api/v1/rules/drafts/{d['id']}", json={"ops": ops}, headers=h).status_code == 200
        drafts.append(d["id"])
    barrier = threading.Barrier(2)
    results: dict[int, object] = {}

    def publish(i: int) -> None:
        client = app.test_client()
        barrier.wait()
        results[i] = client.post(f"/api/v1/rules/drafts/{drafts[i]}/publish", json={"reason": f"admin {i}"},
                                 headers=admins[i])

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    codes = sorted(r.status_code for r in results.values())
    assert codes == [201, 409], [r.json for r in results.values()]
    winner = next(i for i, r in results.items() if r.status_code == 201)
    loser = 1 - winner
    assert results[winner].json["number"] == 2
    assert "base_version" in results[loser].json["errors"]
    wait_for_embedded_jobs(app)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(RuleVersion)) == 2
        assert s.scalar(select(func.count()).select_from(ReevaluationRun)) == 1
        assert s.get(RuleDraft, drafts[winner]).status == "published"
        loser_draft = s.get(RuleDraft, drafts[loser])
        assert loser_draft.status == "open" and loser_draft.published_version_id is None
        v2 = s.scalar(select(RuleVersion).where(RuleVersion.number == 2))
        assert v2.reason == f"admin {winner}"


def test_the_database_itself_refuses_a_second_version_with_the_same_number(make_app, pg_url):
    app = make_app(DATABASE_URL=pg_url)
    db = app.extensions["db"]
    with db.session() as s:
        v1 = s.scalar(select(RuleVersion).where(RuleVersion.number == 1))
        content, rev, vid = v1.content, v1.revision, v1.id
    with db.session() as s:
        s.add(RuleVersion(number=2, revision=rev, parent_id=vid, author="a", reason="r", content=content))
    with pytest.raises(IntegrityError):
        with db.session() as s:
            s.add(RuleVersion(number=2, revision=rev, parent_id=vid, author="b", reason="r", content=content))
