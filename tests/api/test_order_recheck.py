"""Open orders are re-checked when a list snapshot is imported or a rule version is published: a line
that becomes held is in the change feed and fires order.held; a line no longer blocked is flagged for
review, never released silently (embedded jobs, SQLite and PostgreSQL)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from compliance.models import WebhookDelivery
from compliance.services.webhooks import create_subscription
from compliance.tasks import wait_for_embedded_jobs
from tests.conftest import H20
from tests.rulehelpers import H20_APRIL_2025_OVERLAY, rules_without_h20_packs

SMALL = {"name": "Edge NPU", "vendor": "Acme", "kind": "ic", "datacenter": False,
         "throughput": [{"format": "int8", "dense_tops": 20}], "die_area_mm2": 50}


@pytest.fixture
def app(make_app, db_url):
    return make_app(DATABASE_URL=db_url)


@pytest.fixture
def auditor(app, headers_for):
    return headers_for(app, "auditor")


def create(client, headers, name="Nova Wafer Trading", ship_to="DE", product=SMALL, ref="PO-1"):
    r = client.post("/api/v1/orders", headers=headers, json={
        "reference": ref, "date": "2025-05-01", "ship_to": ship_to,
        "end_user": {"name": name, "country": ship_to}, "lines": [{"product": product, "quantity": 4}]})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def custom_list(client, headers, csv_text, list_id=None):
    if list_id is None:
        r = client.post("/api/v1/screening/lists", json={"name": "own-denied"}, headers=headers)
        assert r.status_code == 201, r.get_json()
        list_id = r.get_json()["id"]
    r = client.post(f"/api/v1/screening/lists/{list_id}/snapshots?format=csv", data=csv_text,
                    headers={**headers, "Content-Type": "text/csv"})
    assert r.status_code == 201, r.get_json()
    wait_for_embedded_jobs(client.application, timeout=120)
    return list_id, r.get_json()["id"]


def test_a_new_snapshot_holds_a_released_order_and_fires_order_held(app, client, auditor):
    create_subscription(app.extensions["db"], "http://127.0.0.1:9/hook", "tests", events=["order.held"],
                        allowed_networks=app.config["COMPLIANCE"].webhook_allowed_networks)
    o = create(client, auditor)
    assert o["status"] == "released"
    _, snap_id = custom_list(client, auditor, "name,country\nNova Wafer Trading,DE\n")
    after = client.get(f"/api/v1/orders/{o['id']}", headers=auditor).get_json()
    assert after["status"] == "held"
    reason = after["lines"][0]["reasons"][0]
    assert reason["code"] == "screening_hit" and "own-denied" in reason["message"]
    assert after["lines"][0]["release"] is None
    feed = client.get("/api/v1/orders/changes?kind=held", headers=auditor).get_json()["items"]
    assert [(c["order_id"], c["cause"], c["old_status"], c["new_status"]) for c in feed] == [
        (o["id"], f"list_snapshot:{snap_id}", "released", "held")]
    with app.extensions["db"].session() as s:
        d = s.scalar(select(WebhookDelivery).where(WebhookDelivery.event == "order.held"))
    assert d.payload["data"] == {"order_id": o["id"], "reference": "PO-1", "cause": f"list_snapshot:{snap_id}"}


def test_a_held_line_no_longer_blocked_is_flagged_for_review_not_released(client, auditor):
    list_id, _ = custom_list(client, auditor, "name,country\nNova Wafer Trading,DE\n")
    o = create(client, auditor)
    assert o["status"] == "held"
    custom_list(client, auditor, "name,country\nSomeone Else Entirely,FR\n", list_id)
    after = client.get(f"/api/v1/orders/{o['id']}", headers=auditor).get_json()
    assert after["status"] == "held" and after["needs_review"] is True
    assert after["lines"][0]["status"] == "held" and after["lines"][0]["reasons"] == []
    feed = client.get(f"/api/v1/orders/changes?order_id={o['id']}", headers=auditor).get_json()["items"]
    assert [c["kind"] for c in feed] == ["no_longer_blocked"]
    assert feed[0]["old_reasons"][0]["code"] == "screening_hit"
    queue = client.get("/api/v1/orders?needs_review=true", headers=auditor).get_json()["items"]
    assert [x["id"] for x in queue] == [o["id"]]


def test_a_rule_publish_rechecks_open_orders(make_app, tmp_path, headers_for):
    app = make_app(RULES_DIR=rules_without_h20_packs(tmp_path))
    client = app.test_client()
    auditor, admin = headers_for(app, "auditor"), headers_for(app, "admin")
    o = create(client, auditor, name="Blue River Labs", ship_to="CN", product=dict(H20, sku="H20-96GB"))
    assert o["status"] == "released"
    draft = client.post("/api/v1/rules/drafts", json={"title": "H20 letter"}, headers=admin).get_json()
    edited = client.patch(f"/api/v1/rules/drafts/{draft['id']}", json={"ops": [H20_APRIL_2025_OVERLAY]},
                          headers=admin)
    assert edited.status_code == 200 and edited.get_json()["validation"]["valid"], edited.get_json()
    published = client.post(f"/api/v1/rules/drafts/{draft['id']}/publish",
                            json={"reason": "H20 letter", "as_of": "2025-05-01", "confirm": True}, headers=admin)
    assert published.status_code == 201, published.get_json()
    wait_for_embedded_jobs(client.application, timeout=120)
    after = client.get(f"/api/v1/orders/{o['id']}", headers=auditor).get_json()
    assert after["status"] == "held"
    reason = after["lines"][0]["reasons"][0]
    assert reason["code"] == "licence_required" and "8-K" in reason["citation"]
    feed = client.get("/api/v1/orders/changes", headers=auditor).get_json()["items"]
    assert feed[0]["cause"] == f"rule_version:{published.get_json()['number']}" and feed[0]["kind"] == "held"
