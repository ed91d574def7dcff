"""Re-evaluation after a publish (embedded jobs; SQLite and PostgreSQL): change records only where an
outcome changed, systems included, idempotent re-runs, refreshed product standing."""
from __future__ import annotations

from sqlalchemy import func, select, update

from compliance.models import ChangeRecord, Product, ReevaluationChunk, ReevaluationRun
from compliance.services.catalogues import create_catalogue, upsert_products
from compliance.services.reevaluation import get_run, run_chunk
from compliance.tasks import wait_for_embedded_jobs
from tests.conftest import H20, H100, HBM3E
from tests.rulehelpers import H20_APRIL_2025_OVERLAY, rules_without_h20_packs

HGX_H20 = {"name": "HGX H20 8-GPU", "vendor": "NVIDIA", "kind": "system", "datacenter": True,
           "components": [{"count": 8, "product": H20}]}


def test_reevaluation_records_changes_once_for_chips_and_systems(make_app, db_url, tmp_path, headers_for):
    app = make_app(DATABASE_URL=db_url, RULES_DIR=rules_without_h20_packs(tmp_path), AUDIT_CHUNK_SIZE="2")
    db = app.extensions["db"]
    a = create_catalogue(db, "a", destinations=["CN", "DE"])
    b = create_catalogue(db, "b", destinations=["MO"])
    upsert_products(db, a.id, [dict(H20, sku="H20"), dict(H100, sku="H100"), dict(HBM3E, sku="HBM"),
                               dict(HGX_H20, sku="HGX-H20")])
    upsert_products(db, b.id, [dict(H20, sku="H20-b")])
    admin = headers_for(app, "admin")
    client = app.test_client()
    d = client.post("/api/v1/rules/drafts", json={}, headers=admin).json["id"]
    client.patch(f"/api/v1/rules/drafts/{d}", json={"ops": [H20_APRIL_2025_OVERLAY]}, headers=admin)
    pub = client.post(f"/api/v1/rules/drafts/{d}/publish", json={"reason": "letter", "as_of": "2025-05-01",
                                                                 "confirm": True}, headers=admin).json
    wait_for_embedded_jobs(app)
    run = client.get(f"/api/v1/rules/reevaluations/{pub['run_id']}", headers=admin).json
    assert run["status"] == "done" and run["total"] == 5 and run["counts"]["chunks"] == 3
    with db.session() as s:
        got = {(c.sku, c.destination) for c in s.scalars(select(ChangeRecord))}
    assert got == {("H20", "CN"), ("HGX-H20", "CN"), ("H20-b", "MO")}
    assert run["change_records"] == 3 and run["changed_products"] == 3

    # Every chunk delivered again once done is a no-op; re-running them by hand writes nothing new.
    with db.session() as s:
        chunk_ids = s.scalars(select(ReevaluationChunk.id).where(ReevaluationChunk.run_id == pub["run_id"])).all()
    store = app.extensions["rulebooks"]
    assert all(run_chunk(db, store, pub["run_id"], cid)["skipped"] for cid in chunk_ids)
    with db.session() as s:
        s.execute(update(ReevaluationChunk).values(status="pending"))
        s.execute(update(ReevaluationRun).values(status="running"))
    outs = [run_chunk(db, store, pub["run_id"], cid) for cid in chunk_ids]
    assert [o["finalized"] for o in outs] == [False, False, True]  # the last chunk finalizes, once
    again = get_run(db, pub["run_id"])
    assert again["change_records"] == 3 and again["status"] == "done"
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ChangeRecord)) == 3
        assert s.scalar(select(func.count()).select_from(ReevaluationRun)) == 1
        standing = {p.sku: (p.eccn, p.status, p.classified_revision) for p in s.scalars(select(Product))}
    assert standing["H100"] == ("3A090.a", "controlled", pub["revision"])
    assert standing["HBM"] == ("3A090.c", "controlled", pub["revision"])
    assert standing["H20"] == (None, "not_controlled", pub["revision"])


def test_publish_rollback_republish_on_one_day_records_every_runs_changes(make_app, db_url, tmp_path, headers_for):
    """Issue 12 item 5: the third run repeats the first run's revision pair on the same day; its changes are
    recorded and attributed to it (they used to be dropped as duplicates, reporting 0 changed products)."""
    app = make_app(DATABASE_URL=db_url, RULES_DIR=rules_without_h20_packs(tmp_path))
    db = app.extensions["db"]
    cat = create_catalogue(db, "a", destinations=["CN", "MO"])
    upsert_products(db, cat.id, [dict(H20, sku="H20"), dict(H100, sku="H100"), dict(HGX_H20, sku="HGX-H20")])
    admin = headers_for(app, "admin")
    client = app.test_client()
    d = client.post("/api/v1/rules/drafts", json={}, headers=admin).json["id"]
    client.patch(f"/api/v1/rules/drafts/{d}", json={"ops": [H20_APRIL_2025_OVERLAY]}, headers=admin)
    body = {"reason": "letter", "as_of": "2025-05-01", "confirm": True}
    runs = [client.post(f"/api/v1/rules/drafts/{d}/publish", json=body, headers=admin).json]  # v1 -> v2
    wait_for_embedded_jobs(app)
    runs.append(client.post("/api/v1/rules/versions/1/rollback", json=dict(body, reason="undo"), headers=admin).json)
    wait_for_embedded_jobs(app)  # v2 -> v3 (= v1's content)
    runs.append(client.post("/api/v1/rules/versions/2/rollback", json=dict(body, reason="redo"), headers=admin).json)
    wait_for_embedded_jobs(app)  # v3 -> v4 (= v2's content): the same revision pair as the first run
    assert runs[0]["revision"] == runs[2]["revision"] != runs[1]["revision"]
    views = [client.get(f"/api/v1/rules/reevaluations/{r['run_id']}", headers=admin).json for r in runs]
    assert [v["status"] for v in views] == ["done"] * 3
    assert [v["change_records"] for v in views] == [4, 4, 4]  # H20 and HGX-H20 x CN and MO, each time
    assert [v["changed_products"] for v in views] == [2, 2, 2]
    with db.session() as s:
        per_run = dict(s.execute(select(ChangeRecord.run_id, func.count()).group_by(ChangeRecord.run_id)).all())
        first = {(c.sku, c.destination, c.new_requirement)
                 for c in s.scalars(select(ChangeRecord).where(ChangeRecord.run_id == runs[0]["run_id"]))}
        third = {(c.sku, c.destination, c.new_requirement)
                 for c in s.scalars(select(ChangeRecord).where(ChangeRecord.run_id == runs[2]["run_id"]))}
    assert per_run == {r["run_id"]: 4 for r in runs}
    assert first == third and {x[2] for x in first} == {"license_required"}
