"""End to end on a REAL Celery worker, Redis and PostgreSQL: an admin publishes the April 2025 H20
overlay through draft operations, the worker re-evaluates the catalogue, exactly the H20 x China/Macau/D:5
rows appear in the change feed, a local HTTP server receives the signed webhook, and the summer 2025
review-policy change is recorded as denial -> approval for H20 x CN/HK."""
from __future__ import annotations

import json
import os

import pytest

from compliance.services.webhooks import SIGNATURE_HEADER, verify
from tests.conftest import H20, H100, RTX_4090_D, drop_pg_database, require_service, reserve_pg_url
from tests.integration.conftest import ROOT, WorkerEnv, wait_until
from tests.rulehelpers import (
    H20_APRIL_2025_OVERLAY,
    H20_SUMMER_2025_APPROVAL,
    Receiver,
    change_set,
    rules_without_h20_packs,
)

# Watched destinations: China (CN, HK), Macau, D:5 members (RU, VE, and IR, which is also embargoed),
# and unaffected ones (DE, JP, AE).
WATCHED = ["CN", "HK", "MO", "RU", "VE", "IR", "DE", "JP", "AE"]
SECRET = "s3cret-for-the-e2e-webhook-0123456789"


@pytest.fixture
def worker_env(tmp_path, redis_url, schema_templates):
    """Overrides the shared fixture: the database is seeded from rules/ WITHOUT the two 2025 H20 packs."""
    require_service("postgresql")
    from compliance import create_app

    db_url = reserve_pg_url()
    settings = {"DATABASE_URL": db_url, "CELERY_BROKER_URL": redis_url, "CELERY_RESULT_BACKEND": redis_url,
                "SAMPLE_CATALOGUE": "", "RULES_DIR": rules_without_h20_packs(tmp_path)}
    schema_templates.provision(db_url, settings["RULES_DIR"])
    app = create_app(settings)
    env = dict(os.environ, **settings, PYTHONPATH=str(ROOT), WEBHOOK_BACKOFF_SECONDS="0.5")
    yield WorkerEnv(db_url, redis_url, app, env)
    app.extensions["db"].dispose()
    drop_pg_database(db_url)


@pytest.fixture
def receiver():
    made = []

    def make(codes=()):
        r = Receiver(codes)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def _publish_via_draft(client, headers, op, reason, as_of):
    draft = client.post("/api/v1/rules/drafts", json={"title": reason}, headers=headers)
    assert draft.status_code == 201, draft.json
    edited = client.patch(f"/api/v1/rules/drafts/{draft.json['id']}", json={"ops": [op]}, headers=headers)
    assert edited.status_code == 200, edited.json
    assert edited.json["validation"]["valid"], edited.json["validation"]
    # Storm guard: one product of three changes (33% > 20%), so the first attempt needs confirmation.
    guarded = client.post(f"/api/v1/rules/drafts/{draft.json['id']}/publish",
                          json={"reason": reason, "as_of": as_of}, headers=headers)
    assert guarded.status_code == 428, guarded.json
    assert guarded.json["errors"]["preview"]["changed_products"] == 1
    published = client.post(f"/api/v1/rules/drafts/{draft.json['id']}/publish",
                            json={"reason": reason, "as_of": as_of, "confirm": True}, headers=headers)
    assert published.status_code == 201, published.json
    return published.json


def _run_done(client, headers, run_id):
    r = client.get(f"/api/v1/rules/reevaluations/{run_id}", headers=headers)
    return r.json if r.json["status"] in ("done", "failed") else None


def test_h20_overlay_publish_reevaluates_on_a_real_worker_and_sends_a_signed_webhook(
        worker_env, start_worker, receiver, headers_for):
    from compliance.services.catalogues import create_catalogue, upsert_products

    app = worker_env.app
    db = app.extensions["db"]
    client = app.test_client()
    admin = headers_for(app, "admin")
    viewer = headers_for(app, "viewer")
    admin_key = admin["Authorization"].split()[1]
    cat = create_catalogue(db, "e2e", destinations=WATCHED)
    upsert_products(db, cat.id, [dict(H20, sku="H20"), dict(H100, sku="H100"), dict(RTX_4090_D, sku="RTX-4090-D")])

    # Before: on 2025-03-01 the H20 needs no licence to China; Iran already needs one (embargo).
    before = client.post("/api/v1/classify", json={"product": H20, "as_of": "2025-03-01", "destinations": WATCHED},
                         headers=viewer).json
    already = {lic["destination"] for lic in before["licences"] if lic["requirement"] == "license_required"}
    assert already == {"IR"}

    hook = receiver()
    sub = client.post("/api/v1/webhooks", json={"url": hook.url, "secret": SECRET}, headers=admin)
    assert sub.status_code == 201, sub.json
    worker = start_worker(concurrency=2)

    # 1-3: publish the April 2025 overlay; the worker re-evaluates as of 2025-04-09.
    v2 = _publish_via_draft(client, admin, H20_APRIL_2025_OVERLAY, "H20 'is informed' letter", "2025-04-09")
    assert v2["number"] == 2 and v2["parent"] == 1
    run = wait_until(lambda: _run_done(client, admin, v2["run_id"]), timeout=60, message="re-evaluation run 1")
    assert run["status"] == "done", run
    feed = client.get(f"/api/v1/changes?revision={v2['revision']}", headers=viewer).json
    # Exactly H20 x {China (CN, HK), Macau, the D:5 members whose outcome changed}; IR was already
    # licence_required/presumption_of_denial by the embargo rule, so its outcome did not change.
    assert change_set(feed["items"]) == {("H20", "CN"), ("H20", "HK"), ("H20", "MO"), ("H20", "RU"), ("H20", "VE")}
    assert feed["total"] == 5 == run["change_records"]
    for item in feed["items"]:
        assert item["old"]["requirement"] == "no_license_required"
        assert item["new"] == {"eccn": None, "status": "not_controlled", "requirement": "license_required",
                               "review_policy": "presumption_of_denial"}
        assert item["cause_rule_ids"] == ["h20-letter-2025-04"]
        assert item["as_of"] == "2025-04-09"
    # Product standing refreshed with the new revision.
    products = {p["sku"]: p for p in _products(db, cat.id)}
    assert {p["classified_revision"] for p in products.values()} == {v2["revision"]}
    assert products["H100"]["eccn"] == "3A090.a" and products["H20"]["eccn"] is None

    # 4: the webhook arrives, signed over the raw body.
    wait_until(lambda: hook.requests, timeout=30, message="the webhook delivery")
    headers, body = hook.requests[0]
    assert verify(SECRET, body, headers[SIGNATURE_HEADER])
    assert not verify("another-secret-0123456789", body, headers[SIGNATURE_HEADER])
    event = json.loads(body)
    assert event["event"] == "changes.published" and event["id"] == headers["X-Compliance-Event-Id"]
    assert headers["X-Compliance-Timestamp"].isdigit()
    assert event["data"]["change_records"] == 5 and event["data"]["rule_version"] == 2
    assert event["data"]["feed"] == f"/api/v1/changes?revision={v2['revision']}"
    deliveries = wait_until(lambda: [d for d in client.get(f"/api/v1/webhooks/{sub.json['id']}/deliveries",
                                                           headers=admin).json["items"] if d["status"] == "delivered"],
                            timeout=30, message="the delivery to be logged")
    assert deliveries[0]["attempts"] == 1 and deliveries[0]["last_status_code"] == 200

    # The same run's chunks delivered again are no-ops (done chunks of a finished run are not claimed).
    celery = app.extensions["celery"]
    from sqlalchemy import select

    from compliance.models import ReevaluationChunk

    with db.session() as s:
        chunk_ids = s.scalars(select(ReevaluationChunk.id).where(ReevaluationChunk.run_id == v2["run_id"])).all()
    for cid in chunk_ids:
        again = celery.send_task("compliance.reeval.chunk", args=[v2["run_id"], cid], queue="reevaluation")
        assert again.get(timeout=60)["skipped"]
    assert _run_done(client, admin, v2["run_id"])["change_records"] == 5
    assert client.get("/api/v1/changes", headers=viewer).json["total"] == 5

    # 5: the summer 2025 review-policy change: H20 x CN/HK denial -> approval.
    v3 = _publish_via_draft(client, admin, H20_SUMMER_2025_APPROVAL, "H20 licences to be granted", "2025-08-01")
    run3 = wait_until(lambda: _run_done(client, admin, v3["run_id"]), timeout=60, message="re-evaluation run 2")
    assert run3["status"] == "done", run3
    feed3 = client.get("/api/v1/changes?version=3", headers=viewer).json
    assert change_set(feed3["items"]) == {("H20", "CN"), ("H20", "HK")}
    for item in feed3["items"]:
        assert item["old"]["review_policy"] == "presumption_of_denial"
        assert item["new"]["review_policy"] == "presumption_of_approval"
        assert item["old"]["requirement"] == item["new"]["requirement"] == "license_required"
        assert item["cause_rule_ids"] == ["h20-approval-2025-07"]
    wait_until(lambda: len(hook.requests) >= 2, timeout=30, message="the second webhook")
    assert json.loads(hook.requests[1][1])["data"]["rule_version"] == 3

    # Feed filters: product by sku and by id, destination, catalogue.
    h20_id = products["H20"]["id"]
    assert client.get(f"/api/v1/changes?product={h20_id}&destination=HK", headers=viewer).json["total"] == 2
    assert client.get("/api/v1/changes?product=H100", headers=viewer).json["total"] == 0
    assert client.get(f"/api/v1/changes?catalogue_id={cat.id}&per_page=3", headers=viewer).json["total"] == 7

    # Keys never reach the worker's log.
    assert admin_key not in worker.log()
    assert "compliance.reeval.chunk" in worker.log()


def _products(db, catalogue_id):
    from sqlalchemy import select

    from compliance.models import Product

    with db.session() as s:
        return [{"id": p.id, "sku": p.sku, "eccn": p.eccn, "status": p.status,
                 "classified_revision": p.classified_revision}
                for p in s.scalars(select(Product).where(Product.catalogue_id == catalogue_id))]


def test_a_webhook_that_fails_twice_is_retried_with_backoff_and_logged(worker_env, start_worker, receiver, headers_for):
    app = worker_env.app
    client = app.test_client()
    admin = headers_for(app, "admin")
    hook = receiver(codes=[500, 503])
    sub = client.post("/api/v1/webhooks", json={"url": hook.url, "secret": SECRET, "events": ["changes.published"]},
                      headers=admin).json
    start_worker(concurrency=1)
    assert client.post(f"/api/v1/webhooks/{sub['id']}/ping", headers=admin).status_code == 202

    def delivered():
        items = client.get(f"/api/v1/webhooks/{sub['id']}/deliveries", headers=admin).json["items"]
        return items if items and items[0]["status"] == "delivered" else None

    d = wait_until(delivered, timeout=60, message="delivery after retries")[0]
    assert d["attempts"] == 3
    assert [a["status_code"] for a in d["log"]] == [500, 503, 200]
    assert len(hook.requests) == 3
    # Every attempt carries the same event id and a valid signature over its body.
    assert len({h["X-Compliance-Event-Id"] for h, _ in hook.requests}) == 1
    assert all(verify(SECRET, body, h[SIGNATURE_HEADER]) for h, body in hook.requests)


def test_a_worker_killed_mid_run_is_recovered_by_the_sweeper_without_duplicates(worker_env, start_worker, headers_for):
    from sqlalchemy import func, select

    from compliance import create_app
    from compliance.models import ChangeRecord, ReevaluationChunk
    from compliance.services.catalogues import create_catalogue, upsert_products

    settings = {k: worker_env.env[k] for k in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND",
                                               "SAMPLE_CATALOGUE", "RULES_DIR")}
    app = create_app(dict(settings, AUDIT_CHUNK_SIZE="1"))  # the publish plans one chunk per product
    db = app.extensions["db"]
    client = app.test_client()
    admin = headers_for(app, "admin")
    cat = create_catalogue(db, "crash", destinations=["CN", "DE"])
    upsert_products(db, cat.id, [dict(H20, sku=f"H20-{i}") for i in range(150)])
    # One product per chunk, each held 0.2 s: 150 chunk tasks, and the kill lands with one in flight.
    short = {"JOB_LEASE_SECONDS": "2", "JOB_SWEEP_SECONDS": "1", "JOB_REQUEUE_SECONDS": "5"}
    worker = start_worker(concurrency=1, extra_env=short, slow=0.2)
    d = client.post("/api/v1/rules/drafts", json={}, headers=admin).json["id"]
    client.patch(f"/api/v1/rules/drafts/{d}", json={"ops": [H20_APRIL_2025_OVERLAY]}, headers=admin)
    pub = client.post(f"/api/v1/rules/drafts/{d}/publish",
                      json={"reason": "letter", "as_of": "2025-04-09", "confirm": True}, headers=admin).json

    def chunks_done():
        with db.session() as s:
            return s.scalar(select(func.count()).select_from(ReevaluationChunk).where(
                ReevaluationChunk.run_id == pub["run_id"], ReevaluationChunk.status == "done"))

    def leased():
        with db.session() as s:
            return s.scalar(select(func.count()).select_from(ReevaluationChunk).where(
                ReevaluationChunk.run_id == pub["run_id"], ReevaluationChunk.lease_owner.is_not(None)))

    wait_until(lambda: chunks_done() >= 5 and leased() == 1, timeout=60, interval=0.02,
               message="a few chunks to finish, one in flight")
    worker.kill()
    done_at_kill = chunks_done()
    assert done_at_kill < 150
    assert client.get(f"/api/v1/rules/reevaluations/{pub['run_id']}", headers=admin).json["status"] == "running"

    assert leased() == 1  # the chunk in flight when the worker died: only its lease expiring brings it back
    start_worker(concurrency=2, extra_env=short, beat=True)
    run = wait_until(lambda: _run_done(client, admin, pub["run_id"]), timeout=120, message="the recovered run")
    assert run["status"] == "done" and run["total"] == 150
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ChangeRecord)) == 150  # H20-i x CN, once each
        assert s.scalar(select(func.count(func.distinct(ChangeRecord.sku)))) == 150
    assert run["change_records"] == 150
    with db.session() as s:
        assert s.scalar(select(func.max(ReevaluationChunk.attempts)).where(
            ReevaluationChunk.run_id == pub["run_id"])) == 2  # the killed chunk ran again, once
    app.extensions["db"].dispose()
