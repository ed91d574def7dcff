"""Determinations in the console: record one on a product's page, four eyes (approval by someone else, never
the recorder), bad input next to the field with the API's words, the catalogue's computed-vs-determined list
and its export, and roles."""
from __future__ import annotations

import re

from tests.console.conftest import csrf_of
from tests.factories import api_headers, product


def catalogue(app, specs):
    """A catalogue whose products were written (and so classified) through the API, as a user would."""
    client, headers = app.test_client(), api_headers(app, "auditor")
    cid = client.post("/api/v1/catalogues", json={"name": f"det-{id(specs)}", "destinations": ["CN"]},
                      headers=headers).get_json()["id"]
    for spec in specs:
        assert client.put(f"/api/v1/catalogues/{cid}/products/{spec['sku']}", json=spec,
                          headers=headers).status_code in (200, 201)
    return cid


def _page(client, cid, sku):
    response = client.get(f"/catalogues/{cid}/products/{sku}")
    assert response.status_code == 200
    return response


def _record(client, cid, sku, **form):
    token = csrf_of(_page(client, cid, sku))
    return client.post(f"/catalogues/{cid}/products/{sku}/determinations", data={"csrf_token": token, **form})


def test_record_shows_computed_beside_determined_and_the_history(app, signed_in):
    cid = catalogue(app, [product(sku="H100-A")])
    officer = signed_in("auditor", "Officer Ana")
    response = _record(officer, cid, "H100-A", eccn="3a090.a", **{"basis.datasheet": "H100 datasheet rev 3",
                                                                  "basis.spec_figures": '{"tpp": 15832}'})
    assert response.status_code == 302 and response.headers["Location"].endswith("#determination")
    html = _page(officer, cid, "H100-A").get_data(as_text=True)
    section = html[html.index('id="determination"'):html.index('id="timeline"')]
    assert "3A090.a" in section and "ds-agrees" in section and "Officer Ana" in section
    assert "determination-history" in section and "H100 datasheet rev 3" in section

    # A second determination that disagrees with the engine supersedes the first and needs review.
    assert _record(officer, cid, "H100-A", eccn="EAR99", **{"basis.text": "marketing says consumer"}).status_code == 302
    html = _page(officer, cid, "H100-A").get_data(as_text=True)
    section = html[html.index('id="determination"'):html.index('id="timeline"')]
    assert "ds-needs_review" in section and "ds-superseded" in section
    assert re.search(r"computed 3A090\.a .*determined EAR99", section)


def test_bad_input_is_shown_next_to_the_field_and_nothing_is_recorded(app, signed_in):
    from compliance.services.determinations import list_determinations

    cid = catalogue(app, [product(sku="H100-B")])
    officer = signed_in("auditor")
    response = _record(officer, cid, "H100-B", eccn="", **{"basis.text": ""})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="eccn-error"' in html
    response = _record(officer, cid, "H100-B", eccn="3A090.a", **{"basis.spec_figures": "{tpp: 1", "basis.text": "x"})
    assert response.status_code == 422 and "not valid JSON" in response.get_data(as_text=True)
    response = _record(officer, cid, "H100-B", eccn="9Z999.zz", **{"basis.text": "made up"})
    assert response.status_code == 422 and "eccn" in response.get_data(as_text=True).lower()
    # the form keeps what was typed
    assert 'value="9Z999.zz"' in response.get_data(as_text=True)
    assert list_determinations(app.extensions["db"], catalogue_id=cid).total == 0


def test_four_eyes_the_recorder_cannot_approve_another_person_can(app, signed_in):
    cid = catalogue(app, [product(sku="H100-C")])
    admin = signed_in("admin", "Admin Bo")
    token = csrf_of(admin.get(f"/catalogues/{cid}/determinations"))
    assert admin.post(f"/catalogues/{cid}/determination-policy",
                      data={"csrf_token": token, "four_eyes": "on"}).status_code == 302
    recorder = signed_in("auditor", "Recorder Cy")
    assert _record(recorder, cid, "H100-C", eccn="3A090.a", **{"basis.text": "TPP 15,832"}).status_code == 302
    html = _page(recorder, cid, "H100-C").get_data(as_text=True)
    assert 'id="pending"' in html and "ds-pending_approval" in html
    det_id = re.search(r'/determinations/(\d+)/approve', html).group(1)

    response = recorder.post(f"/determinations/{det_id}/approve", data={"csrf_token": csrf_of(_page(recorder, cid, "H100-C"))})
    assert response.status_code == 422 and "must differ" in response.get_data(as_text=True)

    approver = signed_in("auditor", "Approver Di")
    response = approver.post(f"/determinations/{det_id}/approve",
                             data={"csrf_token": csrf_of(_page(approver, cid, "H100-C")), "note": "checked the datasheet"})
    assert response.status_code == 302
    html = _page(approver, cid, "H100-C").get_data(as_text=True)
    assert "ds-agrees" in html and "approved by Approver Di" in html and 'id="pending"' not in html
    # approving twice is the API's 409, shown as a message
    response = approver.post(f"/determinations/{det_id}/approve", data={"csrf_token": csrf_of(_page(approver, cid, "H100-C"))})
    assert response.status_code == 409 and "already approved" in response.get_data(as_text=True)


def test_catalogue_list_filters_by_state_and_exports(app, signed_in):
    cid = catalogue(app, [product(sku="P1"), product(sku="P2"), product(sku="P3")])
    officer = signed_in("auditor")
    _record(officer, cid, "P1", eccn="3A090.a", **{"basis.text": "ok"})
    _record(officer, cid, "P2", eccn="EAR99", **{"basis.text": "wrong on purpose"})
    html = officer.get(f"/catalogues/{cid}/determinations").get_data(as_text=True)
    assert "3 products" in html and "<strong>1</strong> need review" in html
    html = officer.get(f"/catalogues/{cid}/determinations?state=needs_review").get_data(as_text=True)
    rows = html[html.index('id="standings"'):]
    assert "P2" in rows and ">P1<" not in rows and ">P3<" not in rows
    html = officer.get(f"/catalogues/{cid}/determinations?state=undetermined").get_data(as_text=True)
    rows = html[html.index('id="standings"'):]
    assert ">P3<" in rows and ">P2<" not in rows
    bad = officer.get(f"/catalogues/{cid}/determinations?state=bogus")
    assert bad.status_code == 400 and "state: must be one of" in bad.get_data(as_text=True)
    export = officer.get(f"/catalogues/{cid}/determinations/export.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    body = export.get_data(as_text=True)
    assert "EAR99" in body and "3A090.a" in body


def test_viewer_reads_but_cannot_record_or_set_policy(app, signed_in):
    cid = catalogue(app, [product(sku="V1")])
    viewer = signed_in("viewer")
    html = _page(viewer, cid, "V1").get_data(as_text=True)
    assert "ds-undetermined" in html and "record-determination" not in html
    token = csrf_of(viewer.get("/sign-in"))
    assert viewer.post(f"/catalogues/{cid}/products/V1/determinations",
                       data={"csrf_token": token, "eccn": "EAR99", "basis.text": "x"}).status_code == 403
    assert viewer.post(f"/catalogues/{cid}/determination-policy",
                       data={"csrf_token": token, "four_eyes": "on"}).status_code == 403
    assert viewer.get(f"/catalogues/{cid}/determinations/export.csv").status_code == 403
