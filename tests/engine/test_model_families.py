"""Product letters bind canonical vendor + model family: aliases, word-run names, possible matches, the cache."""
from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from compliance.engine import build_table, evaluate
from compliance.engine.explain import licence_record
from compliance.engine.table import model_key
from compliance.engine.vendors import CACHE_LIMIT, ModelCatalog, normalise_vendor

H20_SPEC = {"kind": "ic", "datacenter": True, "tpp": 2368, "die_area_mm2": 814}


@pytest.mark.parametrize("typed, canonical", [("NVIDIA", "nvidia"), ("Nvidia Corporation", "nvidia"),
                                              ("NVIDIA Corp.", "nvidia"), ("nvidia corp", "nvidia"),
                                              ("Advanced Micro Devices", "amd"),
                                              ("Advanced Micro Devices, Inc.", "amd"), ("AMD", "amd"),
                                              ("Acme", None), ("", None)])
def test_vendor_spellings_resolve_to_one_canonical_vendor(rulebook, typed, canonical):
    assert rulebook.models.canonical_vendor(typed) == canonical


def test_legal_suffixes_are_dropped_but_not_words_that_name_the_company():
    assert normalise_vendor("Advanced Micro Devices, Inc.") == "advanced micro devices"
    assert normalise_vendor("Co") == ""  # nothing left: no vendor


@pytest.mark.parametrize("vendor, name, family, outcome", [
    ("NVIDIA", "H20", None, "match"),
    ("Nvidia Corporation", "HGX H20 141GB", None, "match"),
    ("NVIDIA Corp.", "H20-96GB", None, "match"),
    ("NVIDIA", "Hopper China SKU", "H20", "match"),
    ("NVIDIA", "H20E", None, "possible"),
    ("NVIDIA", "H-20 card", None, "possible"),
    ("Nvdia", "H20", None, "possible"),
    ("Supermicro", "SYS-821GE H20 server", None, "possible"),
    ("NVIDIA", "H200 NVL", None, "none"),
    ("NVIDIA", "GH200 Grace Hopper", None, "none"),
    ("NVIDIA", "H100 SXM5", None, "none"),
    ("AMD", "Instinct MI300X", None, "none"),
])
def test_h20_names_resolve_to_match_possible_or_none(rulebook, vendor, name, family, outcome):
    key = model_key({"vendor": vendor, "name": name, **({"family": family} if family else {})})
    match, possible = rulebook.models.resolve([key])
    bit = rulebook.models.bits(["nvidia/h20"])
    got = "match" if int(match[0]) & bit else ("possible" if int(possible[0]) & bit else "none")
    assert got == outcome


def test_a_possible_match_makes_the_china_answer_indeterminate_and_leaves_other_destinations_alone(rulebook):
    ev = evaluate(build_table([dict(H20_SPEC, name="H20E", vendor="NVIDIA")]), rulebook, date(2025, 5, 1), ["CN", "DE"])
    cn, de = licence_record(ev, 0, 0), licence_record(ev, 0, 1)
    assert cn["requirement"] == "indeterminate" and cn["missing"] == ["model_family"]
    assert de["requirement"] == "no_license_required"


def test_a_system_inherits_a_possible_match_from_a_part(rulebook):
    server = {"name": "Server 8x", "vendor": "Acme", "kind": "system", "datacenter": True,
              "components": [{"count": 8, "product": dict(H20_SPEC, name="H20", vendor="Nvdia")}]}
    ev = evaluate(build_table([server]), rulebook, date(2025, 5, 1), ["CN"])
    assert licence_record(ev, 0, 0)["requirement"] == "indeterminate"


def test_an_alias_added_in_a_new_rule_version_re_evaluates_stored_model_keys(rulebook):
    from compliance.engine import Rulebook

    product = dict(H20_SPEC, name="H20", vendor="Team Green Semiconductors")
    before = evaluate(build_table([product]), rulebook, date(2025, 5, 1), ["CN"])
    assert licence_record(before, 0, 0)["requirement"] == "indeterminate"  # unknown vendor: possible match
    content = rulebook.content
    packs = [dict(p, vendors=dict(p["vendors"], nvidia=dict(
                 p["vendors"]["nvidia"], aliases=p["vendors"]["nvidia"]["aliases"] + ["Team Green Semiconductors"])))
             if p["id"] == "vendor-aliases" else p for p in content["packs"]]
    newer = Rulebook(dict(content, packs=packs))
    after = evaluate(build_table([product]), newer, date(2025, 5, 1), ["CN"])
    assert licence_record(after, 0, 0)["requirement"] == "license_required"
    assert newer.revision != rulebook.revision


def test_resolutions_are_cached_per_rulebook_and_reused_across_tables(rulebook):
    keys = [f"vendor{i}/accelerator {i}" for i in range(50)] + ["nvidia/h20"]
    rulebook.models.resolve(keys)
    cached = dict(rulebook.models._cache)
    assert set(keys) <= set(cached)
    calls = []
    original = rulebook.models._resolve_one
    rulebook.models._resolve_one = lambda k: calls.append(k) or original(k)
    try:
        match, _ = rulebook.models.resolve(keys)
    finally:
        del rulebook.models._resolve_one
    assert calls == [] and int(match[-1]) == rulebook.models.bits(["nvidia/h20"])


def test_the_cache_is_bounded():
    catalog = ModelCatalog({"nvidia": {"name": "NVIDIA"}}, [{"id": "nvidia/h20", "vendor": "nvidia", "name": "H20"}])
    catalog.resolve([f"v/{i}" for i in range(CACHE_LIMIT + 10)])
    assert len(catalog._cache) <= CACHE_LIMIT
    match, possible = catalog.resolve(["nvidia/h20", "v/x"])
    assert list(match.astype(bool)) == [True, False] and not possible.any()


def test_a_family_naming_an_unknown_vendor_is_a_validation_error(rulebook):
    from compliance.engine import Rulebook, RulebookInvalid

    content = rulebook.content
    packs = [dict(p, families=[dict(p["families"][0], vendor="nvidai")] + p["families"][1:])
             if p["id"] == "us-2025-04-h20-mi308-letters" else p for p in content["packs"]]
    with pytest.raises(RulebookInvalid) as err:
        Rulebook(dict(content, packs=packs))
    assert any("families[0].vendor: unknown vendor 'nvidai'" in e for e in err.value.errors)


def test_an_unknown_family_in_a_rule_is_a_validation_error(rulebook):
    from compliance.engine import Rulebook, RulebookInvalid

    content = rulebook.content
    packs = []
    for p in content["packs"]:
        if p["id"] == "us-2025-07-h20-mi308-approvals":
            rule = dict(p["rules"][0])
            rule["when"] = {"all": [{"metric": "model_family", "op": "in", "value": ["nvidia/h2o"]},
                                    rule["when"]["all"][1]]}
            p = dict(p, rules=[rule])
        packs.append(p)
    with pytest.raises(RulebookInvalid) as err:
        Rulebook(dict(content, packs=packs))
    assert any("unknown model family(s) ['nvidia/h2o']" in e for e in err.value.errors)


def test_family_bits_of_a_big_table_come_from_one_resolution_per_distinct_key(rulebook):
    from compliance.engine import ProductTable

    models = np.array(["nvidia corp./hgx h20", "acme/x"] * 50_000, dtype=object)
    t = ProductTable.from_columns({"tpp": np.full(100_000, 100.0)}, np.zeros(100_000, dtype=np.int8), models)
    ev = evaluate(t, rulebook, date(2025, 5, 1), ["CN"])
    req = ev.requirement_labels()[:, 0]
    assert set(req[0::2]) == {"license_required"} and set(req[1::2]) == {"no_license_required"}
