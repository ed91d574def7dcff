"""The catalogue, audit, point-in-time and webhook schemas declare every field their services send: a dump drops
undeclared fields, so for each service answer the schema's dump must equal the answer itself."""
from __future__ import annotations

import io
import json
from datetime import date

from compliance.schemas.audit import AuditResultSchema, AuditSchema, AuditSummarySchema
from compliance.schemas.catalogue import CatalogueProductSchema, CatalogueSchema, ImportReportSchema
from compliance.schemas.changes import (
    CATALOGUE_AS_OF_FIELDS,
    CATALOGUE_DIFF_FIELDS,
    CatalogueAsOfItemSchema,
    CatalogueDiffItemSchema,
    CreatedWebhookSchema,
    DeliverySchema,
    WebhookSchema,
)
from compliance.schemas.common import page_of
from compliance.services import audit_results, audits
from compliance.services import catalogues as cat_svc
from compliance.services import webhooks as wh
from compliance.services.point_in_time import catalogue_as_of, catalogue_diff
from compliance.tasks import wait_for_embedded_jobs
from tests.conftest import H20, H100, HBM3E

HGX_H20 = {"name": "HGX H20 8-GPU", "vendor": "NVIDIA", "kind": "system", "datacenter": True,
           "components": [{"count": 8, "product": H20}]}
CSV = ("sku,name,vendor,datacenter,throughput,die_area_mm2\n"
       "A,Chip A,NVIDIA,true,fp8:1979,814\nB,Chip B,NVIDIA,maybe,fp8:1,814\nA,Chip A again,NVIDIA,true,fp8:10,814\n")


def _json(value):
    return json.loads(json.dumps(value))


def assert_dumps_whole(schema, answer) -> None:
    dumped, raw = _json(schema.dump(answer)), _json(answer)
    assert dumped == raw, {k: raw[k] for k in set(raw) - set(dumped)} if isinstance(raw, dict) else raw


def assert_page_dumps_whole(schema, page) -> None:
    raw = {"items": page.items, "page": page.page, "per_page": page.per_page, "total": page.total,
           "pages": page.pages, **page.extra}
    assert_dumps_whole(schema, raw)
    assert _json(schema.dump(page)) == _json(raw)  # the Page itself, as the API dumps it


def test_every_catalogue_import_and_audit_answer_is_declared(app, client, auditor_headers):
    db, store = app.extensions["db"], app.extensions["rulebooks"]
    cat = cat_svc.create_catalogue(db, "schemas", destinations=["CN", "DE"])
    cat_svc.upsert_products(db, cat.id, [dict(H100, sku="H100"), dict(H20, sku="H20"), dict(HBM3E, sku="HBM"),
                                         dict(HGX_H20, sku="HGX")])
    r = client.post(f"/api/v1/catalogues/{cat.id}/imports", headers=auditor_headers, content_type="multipart/form-data",
                    data={"file": (io.BytesIO(CSV.encode()), "p.csv")})
    report = cat_svc.import_report(db, r.json["id"])
    assert report["errors"] and report["warnings"]
    assert_dumps_whole(ImportReportSchema(), report)
    assert_page_dumps_whole(page_of(ImportReportSchema)(), cat_svc.import_reports(db, cat.id))
    assert_dumps_whole(CatalogueSchema(), cat_svc.catalogue_summary(db, cat_svc.get_catalogue(db, cat.id)))

    product = cat_svc.get_product(db, cat.id, "A")
    dumped = CatalogueProductSchema().dump(product)
    assert dumped["metrics"]["tpp"] == product.tpp and dumped["spec"] == product.spec
    assert {c.name for c in product.__table__.columns} >= set(dumped) - {"metrics"}

    pending = audits.create_audit(db, store, cat.id, date(2026, 2, 1), None, "US", "tests", enqueue=False,
                                  transaction_type="reexport")
    running = audit_results.audit_status(db, pending.id)
    assert running["status"] == "pending" and running["timings"]["finished_at"] is None
    assert_dumps_whole(AuditSchema(), running | {"url": "/api/v1/audits/1"})
    audits.start_audit(db, pending.id)
    wait_for_embedded_jobs(app)
    done = audit_results.audit_status(db, pending.id)
    assert done["status"] == "done" and "determinations_needing_review" in done["counts"]
    assert_dumps_whole(AuditSchema(), done)
    assert_page_dumps_whole(page_of(AuditSummarySchema)(), audit_results.list_audits(db, cat.id))
    results = audit_results.audit_results_page(db, store, pending.id, 1, 100)
    assert results.total == 5 * 2 and any(r["rule_ids"] for r in results.items)
    assert_page_dumps_whole(page_of(AuditResultSchema)(), results)


def test_point_in_time_answers_are_declared(app):
    db = app.extensions["db"]
    cat = cat_svc.create_catalogue(db, "pit-schemas", destinations=["CN", "DE"])
    cat_svc.upsert_products(db, cat.id, [dict(H100, sku="H100"), dict(H20, sku="H20"), dict(HGX_H20, sku="HGX")])
    diff = catalogue_diff(app, cat.id, date(2025, 4, 8), date(2025, 4, 9))
    assert diff.items and diff.extra["transitions"]
    assert_page_dumps_whole(page_of(CatalogueDiffItemSchema, **CATALOGUE_DIFF_FIELDS)(), diff)
    as_of = catalogue_as_of(app, cat.id, date(2025, 6, 1))
    assert as_of.items and as_of.extra["requirements"]
    assert_page_dumps_whole(page_of(CatalogueAsOfItemSchema, **CATALOGUE_AS_OF_FIELDS)(), as_of)


def test_webhook_answers_are_declared(app):
    db = app.extensions["db"]
    created = wh.create_subscription(db, "http://127.0.0.1:9/hook", "tests", events=["ping", "audit.completed"],
                                     allowed_networks=app.config["COMPLIANCE"].webhook_allowed_networks)
    assert created["secret"].startswith("whsec_")
    assert_dumps_whole(CreatedWebhookSchema(), created)
    assert_dumps_whole(WebhookSchema(), wh.list_subscriptions(db)[0])
    wh.ping(db, created["id"], "tests")
    wait_for_embedded_jobs(app, cancel_timers=True)
    deliveries = wh.list_deliveries(db, created["id"])
    assert deliveries.items and deliveries.items[0]["log"]
    assert_page_dumps_whole(page_of(DeliverySchema)(), deliveries)
    assert_dumps_whole(WebhookSchema(), wh.deactivate_subscription(db, created["id"], "tests"))
