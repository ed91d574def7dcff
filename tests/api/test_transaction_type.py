"""transaction_type on POST /classify and /classify/batch: export (the default), reexport, in_country_transfer."""
from __future__ import annotations

from tests.conftest import H100


def test_an_export_of_an_h100_to_china_in_2026_is_case_by_case_by_default(post):
    body = post("/api/v1/classify", {"product": H100, "as_of": "2026-02-01", "destinations": ["CN"]}).get_json()
    assert body["licences"][0]["review_policy"] == "case_by_case"


def test_a_reexport_keeps_the_presumption_of_denial(post):
    body = post("/api/v1/classify", {"product": H100, "as_of": "2026-02-01", "destinations": ["CN"],
                                     "transaction_type": "reexport"}).get_json()
    lic = body["licences"][0]
    assert lic["requirement"] == "license_required" and lic["review_policy"] == "presumption_of_denial"


def test_the_batch_takes_the_same_field(post):
    r = post("/api/v1/classify/batch", {"products": [H100, H100], "as_of": "2026-02-01", "destinations": ["CN"],
                                        "transaction_type": "in_country_transfer"})
    assert r.status_code == 200
    assert [d["licences"][0]["review_policy"] for d in r.get_json()["results"]] == ["presumption_of_denial"] * 2


def test_an_unknown_transaction_type_is_a_422_naming_the_field(post):
    r = post("/api/v1/classify", {"product": H100, "transaction_type": "smuggle"})
    assert r.status_code == 422
    assert "transaction_type" in r.get_json()["errors"]["json"]


def test_a_logic_die_without_non_planar_is_accepted_and_left_unknown(post):
    product = {"name": "X", "vendor": "Example", "datacenter": True, "tpp": 3000, "logic_dies": [{"area_mm2": 200}]}
    c = post("/api/v1/classify", {"product": product, "as_of": "2024-06-01"}).get_json()["classification"]
    assert c["status"] == "indeterminate" and c["missing"] == ["performance_density"]
    assert any("logic_dies[0].non_planar" in n for n in c["notes"])


def test_hbm_packaging_is_only_for_hbm_items(post):
    r = post("/api/v1/classify", {"product": dict(H100, hbm_packaging="standalone")})
    assert r.status_code == 422 and "hbm_packaging" in r.get_json()["errors"]["json"]["product"]
