"""detail=summary is a projection of detail=full: every field they share agrees (property-based)."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.engine.explain import SUMMARY_CLASSIFICATION, SUMMARY_LICENCE
from tests.conftest import A800, H20, H100, HBM3E, RTX_4090

POSITIVE = st.floats(min_value=1, max_value=40_000, allow_nan=False)
IC = st.fixed_dictionaries(
    {"name": st.sampled_from(["H20", "MI308X", "Chip", "GeForce RTX 4090 D"]),
     "vendor": st.sampled_from(["NVIDIA", "AMD", "Acme"])},
    optional={"sku": st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=6),  # NUL: a 422 (test_hostile_input)
              "family": st.sampled_from(["H20", "H100", "X"]),
              "datacenter": st.booleans(), "tpp": POSITIVE, "die_area_mm2": st.floats(50, 1000),
              "io_bandwidth_gb_per_s": st.floats(10, 2000), "memory_bandwidth_gb_per_s": st.floats(100, 9000),
              "throughput": st.lists(st.fixed_dictionaries({"format": st.sampled_from(["fp8", "fp16"]),
                                                            "dense_tops": st.floats(1, 5000)}),
                                     max_size=1)})
PRODUCT = st.one_of(IC, st.sampled_from([H100, A800, H20, RTX_4090, HBM3E]),
                    IC.map(lambda p: {"name": "Box", "kind": "system", "components": [{"count": 4, "product": p}]}))
REQUEST = st.fixed_dictionaries({
    "products": st.lists(PRODUCT, min_size=1, max_size=8),
    "as_of": st.sampled_from(["2022-11-01", "2023-06-01", "2024-05-01", "2025-05-01", "2026-02-01"]),
    "destinations": st.lists(st.sampled_from(["CN", "HK", "MO", "AE", "DE", "IL", "SG", "RU"]), max_size=4,
                             unique=True),
}, optional={"end_user": st.fixed_dictionaries({"headquarters": st.sampled_from(["CN", "SG", "US"])})})


def _project(decision: dict) -> dict:
    return {**decision,
            "classification": {k: decision["classification"][k] for k in SUMMARY_CLASSIFICATION},
            "licences": [{k: lic[k] for k in SUMMARY_LICENCE} for lic in decision["licences"]]}


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=REQUEST)
def test_summary_agrees_with_full_on_every_shared_field(post, request):
    full = post("/api/v1/classify/batch", request)
    summary = post("/api/v1/classify/batch", {**request, "detail": "summary"})
    assert full.status_code == summary.status_code == 200, full.get_data(as_text=True)[:500]
    full, summary = full.get_json(), summary.get_json()
    assert {k: v for k, v in summary.items() if k != "results"} == {k: v for k, v in full.items() if k != "results"}
    assert summary["results"] == [_project(d) for d in full["results"]]
    one = post("/api/v1/classify", {**{k: v for k, v in request.items() if k != "products"},
                                    "product": request["products"][0], "detail": "summary"}).get_json()
    assert json.dumps(one, sort_keys=True) == json.dumps(summary["results"][0], sort_keys=True)


def test_a_summary_holds_only_the_summary_fields(post):
    body = post("/api/v1/classify", {"product": H20, "as_of": "2025-05-01", "destinations": ["CN"],
                                     "detail": "summary"}).get_json()
    assert set(body["classification"]) == set(SUMMARY_CLASSIFICATION)
    assert set(body["licences"][0]) == set(SUMMARY_LICENCE)
    assert body["licences"][0]["requirement"] == "license_required"
    assert body["product"] == {"name": "H20", "vendor": "NVIDIA", "kind": "ic"}


def test_an_unknown_detail_is_422_naming_it(post):
    r = post("/api/v1/classify", {"product": H20, "detail": "everything"})
    assert r.status_code == 422 and "detail: " in r.get_json()["message"]
