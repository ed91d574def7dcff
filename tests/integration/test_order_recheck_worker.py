"""On a REAL Celery worker, Redis and PostgreSQL: importing a list snapshot makes the worker re-check the
open orders; the released order whose end user is now listed is held and the signed order.held webhook
reaches a local receiver."""
from __future__ import annotations

import json

from compliance.services.webhooks import SIGNATURE_HEADER, create_subscription, verify
from tests.integration.conftest import wait_until
from tests.rulehelpers import Receiver

SECRET = "s3cret-for-the-order-webhook-0123456789"
SMALL = {"name": "Edge NPU", "vendor": "Acme", "kind": "ic", "datacenter": False,
         "throughput": [{"format": "int8", "dense_tops": 20}], "die_area_mm2": 50}


def test_a_list_import_rechecks_open_orders_on_a_real_worker(worker_env, start_worker, headers_for):
    app = worker_env.app
    client = app.test_client()
    auditor = headers_for(app, "auditor")
    receiver = Receiver()
    try:
        create_subscription(app.extensions["db"], receiver.url, "tests", secret=SECRET, events=["order.held"],
                            allowed_networks=app.config["COMPLIANCE"].webhook_allowed_networks)
        start_worker()
        r = client.post("/api/v1/orders", headers=auditor, json={
            "reference": "PO-W", "date": "2025-05-01", "ship_to": "DE",
            "end_user": {"name": "Nova Wafer Trading", "country": "DE"},
            "lines": [{"product": SMALL, "quantity": 4}]})
        assert r.status_code == 201 and r.get_json()["status"] == "released", r.get_json()
        order_id = r.get_json()["id"]
        lid = client.post("/api/v1/screening/lists", json={"name": "own-denied"}, headers=auditor).get_json()["id"]
        r = client.post(f"/api/v1/screening/lists/{lid}/snapshots?format=csv",
                        data="name,country\nNova Wafer Trading,DE\n", headers={**auditor, "Content-Type": "text/csv"})
        assert r.status_code == 201, r.get_json()

        def held():
            return client.get(f"/api/v1/orders/{order_id}", headers=auditor).get_json()["status"] == "held"

        wait_until(held, timeout=90, message="the worker to hold the order")
        wait_until(lambda: receiver.requests, timeout=60, message="the order.held webhook")
        headers, body = receiver.requests[0]
        assert verify(SECRET, body, headers[SIGNATURE_HEADER])
        payload = json.loads(body)
        assert payload["event"] == "order.held" and payload["data"]["order_id"] == order_id
    finally:
        receiver.close()
