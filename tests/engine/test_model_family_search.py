"""The batched search that settles keys naming no family (ModelCatalog._may_name) gives the answers of the
full per-key resolution: every key of a seeded fuzz, of look-alike spellings and of awkward text resolves
exactly as the word-run / family / inside-a-word rules say, key by key."""
from __future__ import annotations

import random

import numpy as np
import pytest

from compliance.engine.vendors import ModelCatalog, _contains_run, compact, split_model_key, words


def reference(catalog: ModelCatalog, key: str) -> tuple[int, int]:
    """The resolution rules, written out per family with no shortcut (the module docstring's three cases)."""
    vendor, name, family = split_model_key(key)
    canonical = catalog.canonical_vendor(vendor)
    name_words, family_words = words(name), words(family)
    name_compact, family_compact = compact(name), compact(family)
    match = possible = 0
    for bit, f in enumerate(catalog.families):
        named = any(_contains_run(name_words, p) or family_words == p for p in f.phrases)
        if named and canonical == f.vendor:
            match |= 1 << bit
        elif named:
            possible |= 1 << bit
        elif any(c in name_compact or c in family_compact for c in f.compacts) and not any(
                look in name_compact or look in family_compact for look in f.lookalikes):
            possible |= 1 << bit
    return match, possible


def spellings(catalog: ModelCatalog) -> list[str]:
    """Family names, look-alikes and vendor aliases, spelt the ways catalogues spell them."""
    names = sorted({n for f in catalog.families for n in (f.name, *(" ".join(p) for p in f.phrases))}
                   | {look for f in catalog.families for look in f.lookalikes})
    vendors = sorted(set(catalog.aliases)) + ["", "acme", "supermicro"]
    out = []
    for name in names:
        for variant in (name, name.upper(), name.replace("0", "-0"), f"hgx {name} 141gb", f"{name}e", f"x{name}",
                        f"{name[:2]} {name[2:]}", f"{name}\u00e9", f"\uff28{name}"):
            for vendor in vendors[:6]:
                out.append(f"{vendor}/{variant}")
                out.append(f"{vendor}/server|{vendor}/{variant}")
    return out


def fuzz(catalog: ModelCatalog, n: int, seed: int) -> list[str]:
    """Random keys over the characters of the family names, separators and a few others."""
    rng = random.Random(seed)
    alphabet = sorted(set("".join(c for f in catalog.families for c in f.compacts))) + list(" -_./|\u212a\u00e9")
    pieces = [c for f in catalog.families for c in f.compacts] + sorted(catalog.aliases)
    keys = []
    for _ in range(n):
        parts = [rng.choice(pieces) if rng.random() < 0.3 else "".join(rng.choices(alphabet, k=rng.randint(0, 8)))
                 for _ in range(rng.randint(1, 4))]
        keys.append(rng.choice(["", " ", "-", "/", "|"]).join(parts))
    return keys


@pytest.fixture
def catalog(rulebook):
    models = rulebook.models
    return ModelCatalog({v: {"name": models.vendor_names[v],
                             "aliases": [a for a, c in models.aliases.items() if c == v]} for v in models.vendor_names},
                        [{"id": f.id, "vendor": f.vendor, "name": f.name, "names": [" ".join(p) for p in f.phrases],
                          "lookalikes": list(f.lookalikes)} for f in models.families])


def test_the_rulebook_has_families_to_search_for(catalog):
    assert len(catalog.families) >= 5 and catalog._named is not None


@pytest.mark.parametrize("source", ["spellings", "fuzz", "bench"])
def test_batched_resolution_equals_the_rules_key_by_key(catalog, source):
    if source == "spellings":
        keys = spellings(catalog)
    elif source == "fuzz":
        keys = fuzz(catalog, 20_000, seed=20261204)
    else:
        keys = [f"bench/chip {i}|bench/fam{i % 500}" for i in range(2_000)] + ["nvidia/hgx h20|nvidia/h20"]
    match, possible = catalog.resolve(keys)
    expected = np.array([reference(catalog, k) for k in keys], dtype=np.uint64).reshape(len(keys), 2)
    assert (match == expected[:, 0]).all() and (possible == expected[:, 1]).all()
    # The cases the search must not settle early do occur: both matches and possible matches.
    if source != "bench":
        assert expected[:, 0].any() and expected[:, 1].any()


def test_keys_with_line_breaks_duplicates_and_cached_keys_resolve_alike(catalog):
    keys = ["nvidia/h20\nsecond line", "nvidia/x\n", "nvidia/h20", "nvidia/h20", "acme/h-20", "\n", "", "a100"]
    first = catalog.resolve(keys[:3])
    both = catalog.resolve(keys)  # some cached now, some not
    expected = np.array([reference(catalog, k) for k in keys], dtype=np.uint64).reshape(len(keys), 2)
    assert (both[0] == expected[:, 0]).all() and (both[1] == expected[:, 1]).all()
    assert (first[0] == expected[:3, 0]).all() and (first[1] == expected[:3, 1]).all()
    assert int(both[0][2]) == catalog.bits(["nvidia/h20"])
