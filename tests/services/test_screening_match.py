"""Name normalisation and scoring of restricted-party screening (compliance/services/screening_match.py)."""
from __future__ import annotations

import pytest

from compliance.services.screening_match import (
    DEFAULT_THRESHOLD,
    Candidate,
    MatchIndex,
    normalise,
    party_fingerprint,
    tokens,
)


def entry(i, name, alt=(), countries=("CN",), addresses=()):
    return Candidate(i, "csl", "EL", name, list(alt), list(countries), list(addresses), f"sha{i}", {"entity_key": str(i)})


INDEX = MatchIndex([
    entry(1, "Huawei Technologies Co., Ltd.", ["Huawei"], addresses=["Bantian Huawei Base, Longgang District, Shenzhen"]),
    entry(2, "Sugon", ["Dawning Information Industry", "Zhongke Shuguang"]),
    entry(3, "Inspur Group Co., Ltd."),
    entry(4, "Semiconductor Manufacturing International Corporation", ["SMIC"]),
    entry(5, "Huawei Cloud Beijing"),
    entry(6, "Huawei Technologies Düsseldorf GmbH", countries=("DE",)),
    entry(7, "Moore Threads Intelligent Technology (Beijing) Co., Ltd.", ["摩尔线程智能科技（北京）有限责任公司"]),
])


@pytest.mark.parametrize("raw, expected", [
    ("HUAWEI TECHNOLOGIES CO., LTD.", "huawei"),
    ("Huawei Technologies Düsseldorf GmbH", "huawei dusseldorf"),
    ("Sugon Information Industry Co. Ltd", "sugon information industry"),
    ("Semiconductor Manufacturing Intl. Corp.", "semiconductor manufacturing international"),
    ("AT&T Inc.", "at t"),  # "&" is "and", a stopword
    ("The Company", "the company"),  # a name made only of legal words and stopwords keeps them
    ("摩尔线程智能科技（北京）有限责任公司", "摩尔线程智能科技 北京"),
    ("Société Générale S.A.", "societe generale"),
])
def test_normalisation_drops_case_punctuation_diacritics_and_legal_forms(raw, expected):
    assert normalise(raw) == expected


def test_tokens_of_a_blank_name_are_empty():
    assert tokens("  ., ") == []


def best(name, country=None, address=None, threshold=DEFAULT_THRESHOLD):
    hits = INDEX.match(name, country, address, threshold)
    return (hits[0].entry.id, hits[0].score, hits[0]) if hits else (None, 0.0, None)


@pytest.mark.parametrize("name, country, entry_id", [
    ("Huawei Technologies Co Ltd", "CN", 1),        # legal-form change
    ("Huawai Technologies", None, 1),               # typo
    ("Technologies Huawei", None, 1),               # reordered
    ("Shuguang Zhongke", None, 2),                  # reordered alias
    ("Zhong Ke Shu Guang", None, 2),                # transliteration split into syllables
    ("Dawning Information Industry Co., Ltd.", "CN", 2),
    ("Inspru Group", "CN", 3),                       # transposition
    ("SMIC", None, 4),
    ("Semiconductor Manufacturing Intl Corp", "CN", 4),
    ("Huawei Technologies Duesseldorf", "DE", 6),   # German transliteration of the umlaut
    ("摩尔线程智能科技（北京）有限公司", None, 7),       # the Chinese alias with another legal form
])
def test_variants_of_listed_names_are_hits(name, country, entry_id):
    found, score, hit = best(name, country)
    assert found == entry_id, (name, INDEX.match(name, country))
    assert score >= DEFAULT_THRESHOLD
    assert hit.matched_name and "threshold" in hit.why


@pytest.mark.parametrize("name, country", [
    ("Inspire Group", "CN"),                         # a different word, two edits from Inspur
    ("Siemens AG", "DE"),
    ("Shanghai Integrated Circuit Design Co", "CN"),
    ("Huawei Cloud Berlin", "DE"),                   # listed elsewhere, not in this index
    ("Sugarcane Trading", "CN"),
])
def test_near_names_are_not_hits(name, country):
    assert INDEX.match(name, country) == [], name


def test_country_is_a_supporting_signal_both_ways():
    _, same, hit = best("Huawei Technologies", "CN")
    _, other, hit_other = best("Huawei Technologies", "US")
    assert same == 100.0 and hit.components["country"] > 0
    assert other < same and hit_other.components["country"] < 0
    assert "not the entry's (CN)" in hit_other.why
    # a fuzzy name in another country drops below the threshold
    assert best("Huawai Technologies", None)[0] == 1
    assert best("Huawai Technologies", "US")[0] is None


def test_a_matching_address_adds_to_the_score_and_says_so():
    _, plain, _ = best("Huawai Technologies")
    _, with_address, hit = best("Huawai Technologies", address="Bantian Huawei Base, Longgang, Shenzhen")
    assert with_address > plain and hit.components["address"] > 0 and "address matches" in hit.why


def test_the_threshold_is_applied_and_one_hit_per_entry():
    hits = INDEX.match("Huawei", None, None, 60)
    ids = [h.entry.id for h in hits]
    assert len(ids) == len(set(ids)) and ids[0] == 1
    assert all(h.score >= 60 for h in hits)
    assert INDEX.match("Huawei", None, None, 100.0)[0].score == 100.0


def test_party_fingerprint_changes_with_name_country_or_address_only():
    a = party_fingerprint("Acme Co., Ltd.", "cn", "1 Road")
    assert a == party_fingerprint("ACME co ltd", "CN", "1 road")
    assert a != party_fingerprint("Acme", "HK", "1 Road")
    assert a != party_fingerprint("Acme", "CN", "2 Road")
