"""The classify page: the API's schema and service, explained per paragraph, destination and distance."""
from __future__ import annotations

import html as htmllib
import json
import re

from .conftest import csrf_of

H20_FORM = {"mode": "form", "product.name": "H20", "product.vendor": "NVIDIA", "product.kind": "ic",
            "product.datacenter": "true", "product.throughput.0.format": "fp16", "product.throughput.0.tops": "148",
            "product.die_area_mm2": "814", "as_of": "2025-05-01", "destinations": "CN, de", "transaction_type": "export"}
H20_BODY = {"product": {"name": "H20", "vendor": "NVIDIA", "kind": "ic", "datacenter": True,
                        "throughput": [{"format": "fp16", "dense_tops": 148}], "die_area_mm2": 814},
            "as_of": "2025-05-01", "destinations": ["CN", "DE"], "transaction_type": "export"}


def _post(client, data):
    token = csrf_of(client.get("/classify"))
    return client.post("/classify", data={**data, "csrf_token": token})


def _answer_json(response) -> dict:
    match = re.search(r"<summary>The answer as JSON.*?<pre>(.*?)</pre>", response.get_data(as_text=True), re.S)
    return json.loads(htmllib.unescape(match.group(1)))


def _text(response) -> str:
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))))


def test_the_form_gives_the_api_answer(client, signed_in, viewer_headers):
    page = _post(signed_in("viewer"), H20_FORM)
    assert page.status_code == 200
    api = client.post("/api/v1/classify", json=H20_BODY, headers=viewer_headers).get_json()
    assert _answer_json(page) == api


def test_pasted_json_gives_the_api_answer(client, signed_in, viewer_headers):
    page = _post(signed_in("viewer"), {"mode": "json", "json": json.dumps(H20_BODY)})
    api = client.post("/api/v1/classify", json=H20_BODY, headers=viewer_headers).get_json()
    assert _answer_json(page) == api


def test_each_threshold_and_destination_is_explained(signed_in):
    text = _text(_post(signed_in("viewer"), H20_FORM))
    assert "Not in 3A090/4A090" in text and "not controlled" in text
    # the example of the issue: the H20's TPP (148 x 16 = 2,368) is 2,432 below 3A090.a.1's 4,800
    assert "TPP may rise by less than 2,432 before 3A090.a.1 (TPP >= 4,800) = 152 dense fp16 TOPS" in text
    assert "3A090.a.1 tpp >= 4800 2368 -2432 not met" in text
    assert "3A090.a.2 tpp >= 1600 2368 +768 met" in text
    assert "CN D:1, D:4, D:5" in text and "DE A:5" in text


def test_controlled_chip_cites_rules_per_destination(signed_in):
    h100 = {**H20_FORM, "product.name": "H100", "product.throughput.0.format": "fp8", "product.throughput.0.tops": "1979"}
    text = _text(_post(signed_in("viewer"), h100))
    assert "3A090.a controlled" in text
    assert "license required" in text and "presumption of denial" in text
    assert "us-2023-10.licence.d5-macau" in text and "15 CFR 742.6(a)(6)(iii)" in text
    assert "TPP would have to fall by more than 11,032 to leave 3A090.a.1" in text


def test_bad_input_gets_the_api_message_next_to_the_field(client, signed_in, viewer_headers):
    bad = {**H20_FORM, "product.die_area_mm2": "abc", "destinations": "CN, XX", "product.name": ""}
    page = _post(signed_in("viewer"), bad)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    api = client.post("/api/v1/classify", headers=viewer_headers, json={
        **H20_BODY, "product": {**{k: v for k, v in H20_BODY["product"].items() if k != "name"}, "die_area_mm2": "abc"},
        "destinations": ["CN", "XX"]}).get_json()
    assert api["code"] == 422
    for field, problem in ((r"product\.die_area_mm2", api["errors"]["json"]["product"]["die_area_mm2"][0]),
                           (r"product\.name", api["errors"]["json"]["product"]["name"][0]),
                           ("destinations", "1: " + api["errors"]["json"]["destinations"]["1"][0])):
        match = re.search(rf'id="{field}-error" role="alert">([^<]+)<', html)
        assert match and htmllib.unescape(match.group(1)) == problem, field
    assert 'id="product.die_area_mm2" name="product.die_area_mm2" type="text" value="abc"' in html  # kept


def test_malformed_json_is_named(signed_in):
    text = _text(_post(signed_in("viewer"), {"mode": "json", "json": '{"product": '}))
    assert "json : not valid JSON: Expecting value" in text


def test_record_stores_a_decision_with_the_console_actor(app, signed_in):
    client = signed_in("viewer", "Rita")
    page = _post(client, {**H20_FORM, "record": "1"})
    number = re.search(r"Decision record</dt><dd>#(\d+)", page.get_data(as_text=True)).group(1)
    with app.extensions["db"].session() as s:
        from compliance.models import DecisionRecord

        rec = s.get(DecisionRecord, int(number))
        assert rec.actor.startswith("Rita (cck_")  # what the API records for the same key (actor_of)
