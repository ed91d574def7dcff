"""Console pages over services that answer with a Page: a catalogue's audits (started with a transaction type),
an audit's page, and a webhook's deliveries."""
from __future__ import annotations

import re

from compliance.models import Audit
from compliance.services.catalogues import create_catalogue, upsert_products
from compliance.tasks import wait_for_embedded_jobs
from tests.conftest import H100
from tests.console.conftest import csrf_of
from tests.rulehelpers import Receiver


def _catalogue(app) -> int:
    db = app.extensions["db"]
    cat = create_catalogue(db, "console-tt", destinations=["CN"])
    upsert_products(db, cat.id, [{**H100, "sku": "H100"}])
    return cat.id


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_an_audit_started_as_a_reexport_is_stored_and_shown_as_one(app, signed_in):
    client = signed_in("auditor")
    cid = _catalogue(app)
    page = client.get(f"/catalogues/{cid}")
    assert '<option value="reexport"' in page.get_data(as_text=True)
    r = client.post(f"/catalogues/{cid}/audits", data={"csrf_token": csrf_of(page), "as_of": "2026-02-01",
                                                       "destinations": "CN", "transaction_type": "reexport"})
    assert r.status_code == 302, _text(r)
    wait_for_embedded_jobs(app)
    with app.extensions["db"].session() as s:
        audit = s.query(Audit).one()
        assert (audit.transaction_type, audit.status) == ("reexport", "done")
    assert "<dt>Transaction</dt><dd>reexport" in _text(client.get(r.headers["Location"]))
    assert "<td>reexport</td>" in _text(client.get(f"/catalogues/{cid}"))


def test_an_unknown_transaction_type_on_the_audit_form_is_a_422_naming_it(app, signed_in):
    client = signed_in("auditor")
    cid = _catalogue(app)
    token = csrf_of(client.get(f"/catalogues/{cid}"))
    r = client.post(f"/catalogues/{cid}/audits", data={"csrf_token": token, "transaction_type": "smuggle"})
    assert r.status_code == 422
    assert 'id="transaction_type-error"' in r.get_data(as_text=True)


def test_a_webhook_page_lists_its_deliveries(app, signed_in):
    from compliance.services.webhooks import create_subscription

    client = signed_in("admin")
    hook = Receiver(codes=[200])
    try:
        sub = create_subscription(app.extensions["db"], hook.url, "tests", secret="s" * 20,
                                  allowed_networks=app.config["COMPLIANCE"].webhook_allowed_networks)
        page = client.get(f"/admin/webhooks/{sub['id']}")
        assert "No deliveries." in _text(page)
        assert client.post(f"/admin/webhooks/{sub['id']}/ping", data={"csrf_token": csrf_of(page)}).status_code == 302
        wait_for_embedded_jobs(app)
        text = _text(client.get(f"/admin/webhooks/{sub['id']}"))
        assert "No deliveries." not in text and "<td>ping</td>" in text
    finally:
        hook.close()
