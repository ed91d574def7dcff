"""Admins edit the vendor alias table and the model families that product letters match on
(edit ops set_vendor, set_family, and add_overlay with families), and a publish applies them."""
from __future__ import annotations

import pytest

from compliance.tasks import wait_for_embedded_jobs

# An H20 whose vendor a catalogue spells in a way the bundled alias table does not know.
H20_RESELLER_SPELLING = {"name": "H20 96GB", "vendor": "NV Hopper Trading", "kind": "ic", "datacenter": True,
                         "throughput": [{"format": "fp16", "dense_tops": 148}], "die_area_mm2": 814}
NEW_LETTER_CHIP = {"name": "Accelerator Z9 Pro", "vendor": "Example Silicon Ltd.", "kind": "ic", "datacenter": True,
                   "tpp": 1000, "die_area_mm2": 800}


@pytest.fixture
def app(make_app, db_url):
    return make_app(DATABASE_URL=db_url)


@pytest.fixture
def admin(app, headers_for):
    return headers_for(app, "admin")


def _classify(client, headers, product, as_of="2025-05-01"):
    r = client.post("/api/v1/classify", json={"product": product, "as_of": as_of, "destinations": ["CN", "DE"]},
                    headers=headers)
    assert r.status_code == 200, r.json
    return {lic["destination"]: lic for lic in r.json["licences"]}


def _edit(client, headers, ops):
    d = client.post("/api/v1/rules/drafts", json={"title": "aliases"}, headers=headers)
    assert d.status_code == 201, d.json
    return client.patch(f"/api/v1/rules/drafts/{d.json['id']}", json={"ops": ops}, headers=headers)


def _publish(client, headers, draft_id):
    r = client.post(f"/api/v1/rules/drafts/{draft_id}/publish",
                    json={"reason": "alias table", "as_of": "2025-05-01", "confirm": True}, headers=headers)
    assert r.status_code == 201, r.json
    wait_for_embedded_jobs(client.application)


def test_an_alias_added_by_an_admin_turns_a_possible_match_into_the_letter(app, admin):
    client = app.test_client()
    before = _classify(client, admin, H20_RESELLER_SPELLING)
    assert before["CN"]["requirement"] == "indeterminate" and before["CN"]["missing"] == ["model_family"]
    r = _edit(client, admin, [{"op": "set_vendor", "vendor": "nvidia",
                               "aliases": ["NVIDIA", "Nvidia Corporation", "NV Hopper Trading"]}])
    assert r.status_code == 200, r.json
    assert r.json["validation"]["valid"], r.json["validation"]
    pack = next(p for p in r.json["content"]["packs"] if p["id"] == "vendor-aliases")
    assert pack["vendors"]["nvidia"] == {"name": "NVIDIA", "aliases": ["NVIDIA", "Nvidia Corporation",
                                                                        "NV Hopper Trading"]}
    _publish(client, admin, r.json["id"])
    after = _classify(client, admin, H20_RESELLER_SPELLING)
    assert after["CN"]["requirement"] == "license_required"
    assert after["CN"]["rule_ids"] == ["us-2025-04.overlay.nvidia-h20"]
    assert after["DE"]["requirement"] == "no_license_required"


def test_an_alias_that_already_names_another_vendor_makes_the_draft_invalid(app, admin):
    r = _edit(app.test_client(), admin, [{"op": "set_vendor", "vendor": "amd", "aliases": ["AMD", "Nvidia Corporation"]}])
    assert r.status_code == 200
    assert r.json["validation"]["valid"] is False
    assert any("Nvidia Corporation" in e and "already names vendor" in e for e in r.json["validation"]["errors"])


def test_a_new_vendor_family_and_letter_bind_the_product_by_family_not_by_free_text(app, admin):
    client = app.test_client()
    assert _classify(client, admin, NEW_LETTER_CHIP)["CN"]["requirement"] == "no_license_required"
    r = _edit(client, admin, [
        {"op": "set_vendor", "vendor": "example-silicon", "name": "Example Silicon",
         "aliases": ["Example Silicon Ltd", "ExSi"]},
        {"op": "set_family", "pack_id": "vendor-aliases",
         "family": {"id": "example-silicon/z9", "vendor": "example-silicon", "name": "Z9", "lookalikes": ["Z90"]}},
        {"op": "add_overlay", "id": "z9-letter", "title": "Z9 letter: licence for China",
         "citation": "Illustrative letter (test data)", "effective_from": "2025-04-01",
         "families": ["example-silicon/z9"], "destinations": ["CN"], "review_policy": "presumption_of_denial"},
    ])
    assert r.status_code == 200, r.json
    assert r.json["validation"]["valid"], r.json["validation"]
    rule = next(x for p in r.json["content"]["packs"] for x in p["rules"] if x["id"] == "z9-letter")
    assert rule["when"]["all"][0] == {"metric": "model_family", "op": "in", "value": ["example-silicon/z9"]}
    _publish(client, admin, r.json["id"])
    assert _classify(client, admin, NEW_LETTER_CHIP)["CN"]["requirement"] == "license_required"
    # Spelled another way by a known alias: still the family. A look-alike name: not the family.
    assert _classify(client, admin, dict(NEW_LETTER_CHIP, vendor="ExSi"))["CN"]["rule_ids"] == ["z9-letter"]
    lookalike = _classify(client, admin, dict(NEW_LETTER_CHIP, name="Accelerator Z90"))
    assert lookalike["CN"]["requirement"] == "no_license_required"
    assert _classify(client, admin, NEW_LETTER_CHIP, as_of="2025-03-31")["CN"]["requirement"] == "no_license_required"


@pytest.mark.parametrize("op, field", [
    ({"op": "set_vendor", "vendor": "NVIDIA Corp", "aliases": []}, "ops[0].vendor"),
    ({"op": "set_vendor", "vendor": "nvidia", "aliases": "NVIDIA"}, "ops[0].aliases"),
    ({"op": "set_vendor", "vendor": "nvidia", "aliases": [""]}, "ops[0].aliases"),
    ({"op": "set_vendor", "aliases": ["x"]}, "ops[0].vendor"),
    ({"op": "set_vendor", "vendor": "newco", "aliases": ["x"], "pack_id": "nope"}, "ops[0].pack_id"),
    ({"op": "set_family", "family": {"vendor": "nvidia", "name": "X"}}, "ops[0].family.id"),
    ({"op": "set_family", "family": {"id": "nvidia/x", "vendor": "nvidia", "name": "X"}}, "ops[0].pack_id"),
    ({"op": "add_overlay", "id": "x", "title": "x", "citation": "c", "effective_from": "2025-01-01",
      "destinations": ["CN"]}, "ops[0].families"),
    ({"op": "add_overlay", "id": "x", "title": "x", "citation": "c", "effective_from": "2025-01-01",
      "families": ["h20"], "destinations": ["CN"]}, "ops[0].families"),
])
def test_bad_vendor_and_family_ops_are_422_naming_the_field(app, admin, op, field):
    r = _edit(app.test_client(), admin, [op])
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert field in r.get_json()["errors"], r.get_json()
