"""Model families: a product's vendor and name, as typed, resolved to the families rules name.

Product letters bind named products ("the H20", "the MI308"). Catalogues spell vendors every way
("NVIDIA Corp.", "Advanced Micro Devices, Inc.") and name boards and modules after the chip, so the
rulebook carries an alias table of canonical vendors and a list of model families, and rules test
`model_family` instead of free text. Each product resolves, against the rulebook in force, to:

* a **match** of a family: the canonical vendor is the family's vendor and the declared `family`, or
  a run of words in the name, is one of the family's names ("HGX H20 141GB" is the H20);
* a **possible match**: the name or family names the model but the vendor is another or unknown, or
  the name contains the model's name inside a longer word ("H20E", "H-20"), and is not one of the
  family's known look-alikes ("H200"). A possible match is unknown, not "no": the answer flags it for
  review instead of answering "no licence required".

Resolution is pure string work per distinct model key; `ModelCatalog` caches it (bounded), and it
lives on the Rulebook, so every call and chunk evaluated with one revision reuses it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import chain, compress
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

# Words that say what kind of company a vendor is, not which one ("Nvidia Corporation" is NVIDIA).
LEGAL_SUFFIXES = frozenset({"inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited",
                            "llc", "plc", "gmbh", "ag", "sa", "bv", "nv", "kk", "srl", "spa", "oy", "ab"})
MAX_FAMILIES = 64  # one bit per family in a uint64
CACHE_LIMIT = 200_000  # distinct model keys remembered per rulebook (about 40 MB at most)
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_NOT_ALNUM_OR_LINE = bytes(c for c in range(128) if not (chr(c).isdigit() or "a" <= chr(c) <= "z" or c == 10))


def words(text: str | None) -> tuple[str, ...]:
    """Lower-case alphanumeric words of a text ("H20-96GB" -> ("h20", "96gb"))."""
    return tuple(w for w in _NON_ALNUM.split(str(text or "").lower()) if w)


def compact(text: str | None) -> str:
    """Lower-case letters and digits only ("H-20" -> "h20"): the words of `text`, joined."""
    return _NON_ALNUM.sub("", str(text or "").lower())


def normalise_vendor(text: str | None) -> str:
    """A vendor as typed, reduced to the words that name the company ("NVIDIA Corp." -> "nvidia")."""
    ws = list(words(text))
    while ws and ws[-1] in LEGAL_SUFFIXES:
        ws.pop()
    return " ".join(ws)


def split_model_key(key: str) -> tuple[str, str, str | None]:
    """(vendor, name, family) from a stored model key 'vendor/name|vendor/family'."""
    parts = str(key).split("|")
    vendor, _, name = parts[0].partition("/")
    family = parts[1].partition("/")[2] if len(parts) > 1 else None
    return vendor, name, family


@dataclass(frozen=True)
class Family:
    """One model family a rule can name, e.g. nvidia/h20."""

    id: str
    vendor: str
    name: str
    phrases: tuple[tuple[str, ...], ...]  # word runs that name the model
    compacts: tuple[str, ...]  # the same names, letters and digits only
    lookalikes: tuple[str, ...]  # other models whose names contain this one's ("h200" for H20)


class ModelCatalog:
    """Canonical vendors and model families of a rulebook, with a bounded cache of resolutions."""

    def __init__(self, vendors: Mapping[str, Mapping[str, Any]], families: Sequence[Mapping[str, Any]]):
        self.vendor_names: dict[str, str] = {v: spec.get("name") or v for v, spec in vendors.items()}
        self.aliases: dict[str, str] = {}
        for canonical, spec in vendors.items():
            for alias in [canonical, spec.get("name") or canonical, *(spec.get("aliases") or ())]:
                self.aliases[normalise_vendor(alias)] = canonical
        self.families: list[Family] = []
        for f in families:
            names = [f["name"], *(f.get("names") or ())]
            self.families.append(Family(
                id=f["id"], vendor=f["vendor"], name=f["name"],
                phrases=tuple(dict.fromkeys(words(n) for n in names if words(n))),
                compacts=tuple(dict.fromkeys(compact(n) for n in names if compact(n))),
                lookalikes=tuple(compact(n) for n in f.get("lookalikes") or () if compact(n))))
        self.index: dict[str, int] = {f.id: i for i, f in enumerate(self.families)}
        self._cache: dict[str, tuple[int, int]] = {}
        # Every way a family can be named (a word run, the family field, a name inside a longer word)
        # contains one of its compact names in the key's compact name or family; a key containing none
        # of them resolves to nothing, so one search settles most keys.
        needles = sorted({c for f in self.families for c in f.compacts}, key=lambda c: (-len(c), c))
        self._named = re.compile("|".join(map(re.escape, needles))) if needles else None
        self._needles = tuple(c.encode("ascii") for c in needles)

    def canonical_vendor(self, vendor: str | None) -> str | None:
        """The canonical vendor id of a vendor as typed, or None when the alias table does not know it."""
        return self.aliases.get(normalise_vendor(vendor))

    def bits(self, ids: Iterable[str]) -> int:
        """The bit mask of the named families."""
        out = 0
        for fid in ids:
            out |= 1 << self.index[fid]
        return out

    def resolve(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(match bits, possible-match bits) per model key, as uint64 arrays."""
        n = len(keys)
        if not self.families or not n:
            return np.zeros(n, dtype=np.uint64), np.zeros(n, dtype=np.uint64)
        table = cache = self._cache
        missing = [k for k in dict.fromkeys(keys) if k not in cache]
        if missing:
            fresh = dict.fromkeys(missing, (0, 0))
            for key in compress(missing, self._may_name(missing).tolist()):
                fresh[key] = self._resolve_one(key)
            if len(cache) + len(fresh) > CACHE_LIMIT:
                # A new catalogue of distinct names: start over rather than grow without bound.
                fresh.update((k, cache[k]) for k in dict.fromkeys(keys) if k in cache)
                cache.clear()
                table = fresh
                if len(fresh) <= CACHE_LIMIT:
                    cache.update(fresh)
            else:
                cache.update(fresh)
        out = np.fromiter(chain.from_iterable(map(table.__getitem__, keys)), dtype=np.uint64, count=2 * n)
        return out[0::2].copy(), out[1::2].copy()

    def _may_name(self, keys: list[str]) -> np.ndarray:
        """Per key: whether its letters and digits (vendor included) contain a family's compact name.
        False means the key names no family (see `_named`); True keys are resolved one by one. The keys
        are compacted and searched as one text, one line per key."""
        hit = np.zeros(len(keys), dtype=bool)
        if self._named is None:
            return hit
        raw = "\n".join(keys).lower().encode("ascii", "ignore")  # compact() keeps ASCII letters and digits only
        if raw.count(b"\n") != len(keys) - 1:  # a key holds a line break: search each key alone
            return np.array([self._named.search(compact(k)) is not None for k in keys], dtype=bool)
        flat = raw.translate(None, _NOT_ALNUM_OR_LINE)
        starts: list[int] = []
        for needle in self._needles:
            at = flat.find(needle)
            while at >= 0:
                starts.append(at)
                at = flat.find(needle, at + 1)
        if starts:
            breaks = np.flatnonzero(np.frombuffer(flat, dtype=np.uint8) == 10)
            hit[np.searchsorted(breaks, starts)] = True  # a match's line = the number of breaks before it
        return hit

    def _resolve_one(self, key: str) -> tuple[int, int]:
        vendor, name, family = split_model_key(key)
        name_compact, family_compact = compact(name), compact(family)
        if self._named is None or not (self._named.search(name_compact) or self._named.search(family_compact)):
            return 0, 0
        canonical = self.canonical_vendor(vendor)
        name_words, family_words = words(name), words(family)
        match = possible = 0
        for bit, f in enumerate(self.families):
            named = any(_contains_run(name_words, p) or family_words == p for p in f.phrases)
            if named and canonical == f.vendor:
                match |= 1 << bit
            elif named:
                possible |= 1 << bit  # the model's name under another or an unknown vendor
            elif any(c in name_compact or c in family_compact for c in f.compacts) and not any(
                    look in name_compact or look in family_compact for look in f.lookalikes):
                possible |= 1 << bit  # the name inside a longer word: "H20E", "H-20"
        return match, possible

    def labels(self, bits: int) -> list[str]:
        """Family names of a bit mask, e.g. ['H20']."""
        return [f.name for b, f in enumerate(self.families) if bits >> b & 1]


def _contains_run(ws: tuple[str, ...], run: tuple[str, ...]) -> bool:
    n = len(run)
    return any(ws[i:i + n] == run for i in range(len(ws) - n + 1))


def validate_models(vendors: Any, families: Any, path: str) -> list[str]:
    """Problems in one pack's `vendors` mapping and `families` list, with paths."""
    errors: list[str] = []
    if vendors is not None:
        if not isinstance(vendors, dict):
            errors.append(f"{path}.vendors: must be a mapping of canonical vendor id -> {{name, aliases}}")
        else:
            for vid, spec in vendors.items():
                vp = f"{path}.vendors.{vid}"
                if not isinstance(vid, str) or not re.fullmatch(r"[a-z0-9][a-z0-9 _-]*", vid):
                    errors.append(f"{vp}: the canonical id must be lower-case letters, digits, '-' or '_'")
                if not isinstance(spec, dict):
                    errors.append(f"{vp}: must be a mapping with name and aliases")
                    continue
                for k in sorted(set(spec) - {"name", "aliases", "note"}):
                    errors.append(f"{vp}.{k}: unknown key; use name, aliases, note")
                aliases = spec.get("aliases") or []
                if not isinstance(aliases, list) or not all(isinstance(a, str) and normalise_vendor(a) for a in aliases):
                    errors.append(f"{vp}.aliases: must be a list of vendor names")
    if families is not None:
        if not isinstance(families, list):
            errors.append(f"{path}.families: must be a list of {{id, vendor, name, names, lookalikes}}")
        else:
            for i, f in enumerate(families):
                fp = f"{path}.families[{i}]"
                if not isinstance(f, dict):
                    errors.append(f"{fp}: must be a mapping")
                    continue
                for k in sorted(set(f) - {"id", "vendor", "name", "names", "lookalikes", "note", "citation"}):
                    errors.append(f"{fp}.{k}: unknown key")
                if not isinstance(f.get("id"), str) or "/" not in f.get("id", ""):
                    errors.append(f"{fp}.id: required 'vendor/model' id, e.g. nvidia/h20")
                if not isinstance(f.get("vendor"), str):
                    errors.append(f"{fp}.vendor: required canonical vendor id")
                if not isinstance(f.get("name"), str) or not compact(f.get("name")):
                    errors.append(f"{fp}.name: required model name, e.g. H20")
                for k in ("names", "lookalikes"):
                    v = f.get(k, [])
                    if not isinstance(v, list) or not all(isinstance(x, str) and compact(x) for x in v):
                        errors.append(f"{fp}.{k}: must be a list of model names")
    return errors
