"""Issue 8: re-evaluation writes only what changed (embedded jobs; SQLite and PostgreSQL). Products imported
with their standing keep their rows when a publish does not move them; the moved ones alone are updated;
every changed cell is still recorded, attributed to its run."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from compliance.models import ChangeRecord, Product, ReevaluationChunk
from compliance.services.catalogues import create_catalogue
from compliance.services.import_writer import write_products
from compliance.tasks import wait_for_embedded_jobs
from tests.conftest import H20, H100, RTX_4090_D
from tests.rulehelpers import H20_SUMMER_2025_APPROVAL, rules_without_h20_packs

# Both 4800 thresholds of 3A090.a lowered to 4705: the RTX 4090 D (TPP 4706.8) becomes 3A090.a, nothing else moves.
LOWER_A1 = [
    {"op": "set_threshold", "rule_id": "us-2023-10.3a090.a", "path": "when.all[1].any[0]", "value": 4705},
    {"op": "set_threshold", "rule_id": "us-2023-10.3a090.a", "path": "when.all[2].any[1].value", "value": 4705},
]
HGX_H100 = {"name": "HGX H100 8-GPU", "vendor": "NVIDIA", "kind": "system", "datacenter": True,
            "components": [{"count": 8, "product": H100}]}


def _publish(client, admin, ops, reason):
    d = client.post("/api/v1/rules/drafts", json={}, headers=admin).json["id"]
    assert client.patch(f"/api/v1/rules/drafts/{d}", json={"ops": ops}, headers=admin).status_code == 200
    pub = client.post(f"/api/v1/rules/drafts/{d}/publish", json={"reason": reason, "confirm": True}, headers=admin)
    assert pub.status_code == 201, pub.json
    return pub.json


def _rows(db):
    with db.session() as s:
        return {p.sku: (p.eccn, p.status, p.classified_revision, p.classified_on, p.updated_at)
                for p in s.scalars(select(Product))}


def _chunk_counts(db, run_id):
    with db.session() as s:
        return [c.counts for c in s.scalars(select(ReevaluationChunk).where(ReevaluationChunk.run_id == run_id))]


def test_only_products_whose_standing_moved_are_updated_and_every_change_is_recorded(make_app, db_url, tmp_path,
                                                                                   headers_for):
    app = make_app(DATABASE_URL=db_url, RULES_DIR=rules_without_h20_packs(tmp_path))
    db, store = app.extensions["db"], app.extensions["rulebooks"]
    cat = create_catalogue(db, "imported", destinations=["CN", "DE"])
    v1, rb1 = store.current()
    write_products(db, cat.id, [dict(H20, sku="H20"), dict(H100, sku="H100"), dict(RTX_4090_D, sku="RTX-4090-D"),
                                dict(HGX_H100, sku="HGX-H100")], rb1, v1.revision)
    imported = _rows(db)
    assert imported["RTX-4090-D"][:3] == (None, "not_controlled", v1.revision)
    assert imported["HGX-H100"][:3] == ("4A090.a", "controlled", v1.revision)
    client, admin = app.test_client(), headers_for(app, "admin")

    # 1: a classification threshold: the RTX 4090 D's standing moves, nobody else's.
    v2 = _publish(client, admin, LOWER_A1, "lower 3A090.a")
    wait_for_embedded_jobs(app)
    after = _rows(db)
    assert after["RTX-4090-D"][:4] == ("3A090.a", "controlled", v2["revision"], date.today())
    assert after["RTX-4090-D"][4] != imported["RTX-4090-D"][4]
    for sku in ("H20", "H100", "HGX-H100"):
        assert after[sku] == imported[sku], sku  # not written at all: same revision, same updated_at
    assert sum(c["updated_products"] for c in _chunk_counts(db, v2["run_id"])) == 1
    with db.session() as s:
        first = {(c.sku, c.destination, c.old_eccn, c.new_eccn, c.run_id) for c in s.scalars(select(ChangeRecord))}
    assert first == {("RTX-4090-D", d, None, "3A090.a", v2["run_id"]) for d in ("CN", "DE")}

    # 2: a licence-only change (H20 to China: presumption of approval): cells change, no standing does.
    v3 = _publish(client, admin, [H20_SUMMER_2025_APPROVAL], "H20 approval")
    wait_for_embedded_jobs(app)
    assert _rows(db) == after
    assert [c["updated_products"] for c in _chunk_counts(db, v3["run_id"])] == [0]
    with db.session() as s:
        third = {(c.sku, c.destination, c.old_requirement, c.new_requirement)
                 for c in s.scalars(select(ChangeRecord).where(ChangeRecord.run_id == v3["run_id"]))}
    assert third == {("H20", "CN", "no_license_required", "license_required")}
    view = client.get(f"/api/v1/rules/reevaluations/{v3['run_id']}", headers=admin).json
    assert view["status"] == "done" and view["change_records"] == 1 and view["changed_products"] == 1
