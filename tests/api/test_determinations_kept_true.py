"""Kept true: a publish that moves a product's computed answer, or a spec change, flags its determination
needs_review in the determinations' change feed and as a signed `determination.needs_review` webhook; the
decision made under the old revision still replays identically (SQLite and PostgreSQL, embedded jobs)."""
from __future__ import annotations

import json
import time

from compliance.services.webhooks import SIGNATURE_HEADER, verify
from compliance.tasks import wait_for_embedded_jobs
from tests.conftest import H100
from tests.rulehelpers import Receiver

SECRET = "s3cret-for-determinations"
EDGE_NPU = {"name": "Edge NPU 20", "vendor": "Acme", "kind": "ic", "datacenter": False,
            "throughput": [{"format": "int8", "dense_tops": 20}], "die_area_mm2": 100}
# A rule (no pack test reaches it) that classifies exactly the Edge NPU's TPP (160) as 3A090.b.
EDGE_RULE = {"op": "add_rule", "pack_id": "us-2023-10-advanced-computing-rewrite", "rule": {
    "id": "test.edge-npu-band", "kind": "classification", "eccn": "3A090.b", "title": "test band 150 <= TPP < 161",
    "citation": "test", "effective_from": "2023-11-17", "precedence": 250,
    "when": {"all": [{"metric": "kind", "op": "==", "value": "ic"}, {"metric": "tpp", "op": ">=", "value": 150},
                     {"metric": "tpp", "op": "<", "value": 161}]}}}


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_publish_that_flips_a_product_marks_its_determination_needs_review(make_app, db_url, headers_for):
    app = make_app(DATABASE_URL=db_url)
    client = app.test_client()
    officer, admin = headers_for(app, "auditor"), headers_for(app, "admin")
    cid = client.post("/api/v1/catalogues", json={"name": "edge", "destinations": ["CN"]}, headers=officer).json["id"]
    for sku, spec in (("npu20", EDGE_NPU), ("h100", H100)):
        assert client.put(f"/api/v1/catalogues/{cid}/products/{sku}", json=spec, headers=officer).status_code == 201
    hook = Receiver()
    try:
        sub = client.post("/api/v1/webhooks", json={"url": hook.url, "secret": SECRET,
                                                    "events": ["determination.needs_review"]}, headers=admin)
        assert sub.status_code == 201, sub.json
        npu = client.post(f"/api/v1/catalogues/{cid}/determinations", headers=officer, json={
            "sku": "npu20", "eccn": "EAR99", "basis": {"spec_figures": {"tpp": 160}, "text": "edge part"}}).json
        h100 = client.post(f"/api/v1/catalogues/{cid}/determinations", headers=officer, json={
            "sku": "h100", "eccn": "3A090.a", "basis": {"datasheet": "H100 datasheet v1"}}).json
        assert npu["agrees_with_computed"] and h100["agrees_with_computed"]
        old_revision = npu["ruleset_revision"]

        d = client.post("/api/v1/rules/drafts", json={}, headers=admin).json["id"]
        r = client.patch(f"/api/v1/rules/drafts/{d}", json={"ops": [EDGE_RULE]}, headers=admin)
        assert r.status_code == 200, r.json
        pub = client.post(f"/api/v1/rules/drafts/{d}/publish", json={"reason": "edge band", "confirm": True},
                          headers=admin)
        assert pub.status_code in (200, 201, 202), pub.json
        wait_for_embedded_jobs(app)
        new_revision = pub.json["revision"]
        assert new_revision != old_revision

        st = {x["sku"]: x for x in client.get(f"/api/v1/catalogues/{cid}/determinations", headers=officer).json["items"]}
        assert st["h100"]["state"] == "agrees"
        assert st["npu20"]["state"] == "needs_review" and st["npu20"]["computed"]["eccn"] == "3A090.b"
        assert st["npu20"]["reasons"][0].startswith(f"computed 3A090.b under revision {new_revision[:12]}; "
                                                    "determined EAR99 on ")
        feed = client.get(f"/api/v1/determinations/reviews?revision={new_revision}", headers=officer).json["items"]
        assert [(x["sku"], x["cause"], x["old"]["status"], x["new"]["eccn"]) for x in feed] == [
            ("npu20", "rule_change", "not_controlled", "3A090.b")]
        assert feed[0]["run_id"] == pub.json["run_id"]

        assert _wait_for(lambda: len(hook.requests) >= 1)
        headers, body = hook.requests[0]
        assert verify(SECRET, body, headers[SIGNATURE_HEADER])
        event = json.loads(body)
        assert event["event"] == "determination.needs_review"
        assert event["data"]["determination_id"] == npu["id"] and event["data"]["sku"] == "npu20"

        # The determination's decision, made under the old revision, replays identically; the current
        # revision answers differently.
        replay = client.post(f"/api/v1/decisions/{npu['decision_id']}/replay", headers=officer).json
        assert replay["identical"] is True and replay["ruleset_revision"] == old_revision
        assert replay["current"]["ruleset_revision"] == new_revision
        assert replay["current"]["same_as_recorded"] is False
        assert replay["current"]["answer"]["classification"]["eccn"] == "3A090.b"

        # Re-running the publish's re-evaluation adds nothing to the feed (each transition once).
        from compliance.services.determinations import list_reviews

        assert list_reviews(app.extensions["db"]).total == 1

        # A new determination resolves it.
        fixed = client.post(f"/api/v1/catalogues/{cid}/determinations", headers=officer, json={
            "sku": "npu20", "eccn": "3A090.b", "basis": {"text": "re-reviewed under the new band"}}).json
        assert fixed["ruleset_revision"] == new_revision
        st = client.get(f"/api/v1/catalogues/{cid}/determinations?sku=npu20", headers=officer).json["items"][0]
        assert st["state"] == "agrees" and st["determination"]["id"] == fixed["id"]
    finally:
        hook.close()


def test_a_spec_change_marks_the_determination_needs_review(make_app, db_url, headers_for):
    app = make_app(DATABASE_URL=db_url)
    client = app.test_client()
    officer = headers_for(app, "auditor")
    cid = client.post("/api/v1/catalogues", json={"name": "edge", "destinations": ["CN"]}, headers=officer).json["id"]
    client.put(f"/api/v1/catalogues/{cid}/products/npu", json=EDGE_NPU, headers=officer)
    client.post(f"/api/v1/catalogues/{cid}/determinations", headers=officer,
                json={"sku": "npu", "eccn": "EAR99", "basis": {"text": "small"}})
    faster = dict(EDGE_NPU, throughput=[{"format": "int8", "dense_tops": 900}], datacenter=True)
    assert client.put(f"/api/v1/catalogues/{cid}/products/npu", json=faster, headers=officer).status_code == 200
    st = client.get(f"/api/v1/catalogues/{cid}/determinations?sku=npu", headers=officer).json["items"][0]
    assert st["state"] == "needs_review" and st["computed"]["eccn"] == "3A090.a"
    feed = client.get(f"/api/v1/determinations/reviews?catalogue_id={cid}", headers=officer).json["items"]
    assert [(x["cause"], x["new"]["eccn"]) for x in feed] == [("spec_change", "3A090.a")]
    # An audit counts and lists the determinations its answers contradict.
    a = client.post(f"/api/v1/catalogues/{cid}/audits", json={"destinations": ["CN"]}, headers=officer).json
    wait_for_embedded_jobs(app)
    status = client.get(f"/api/v1/audits/{a['id']}", headers=officer).json
    assert status["status"] == "done" and status["counts"]["determinations_needing_review"] == 1
    listed = client.get(f"/api/v1/audits/{a['id']}/determinations", headers=officer).json
    assert [(x["sku"], x["determined"]) for x in listed["items"]] == [("npu", "EAR99")]
    log = client.get("/api/v1/decisions?kind=audit&product=npu", headers=officer).json
    assert [(x["kind"], x["audit_id"], x["eccn"]) for x in log["items"]] == [("audit", a["id"], "3A090.a")]
